//! Buckets in a time zone: the local hours, days, weeks or months that a
//! range `[from, to)` spans, as half-open ranges of UTC milliseconds.

use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The most buckets one query may ask for.
pub const MAX_BUCKETS: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSize {
    Hour,
    Day,
    /// Weeks starting on `start` (Monday: ISO weeks).
    Week {
        start: Weekday,
    },
    Month,
}

impl BucketSize {
    pub fn name(self) -> &'static str {
        match self {
            BucketSize::Hour => "hour",
            BucketSize::Day => "day",
            BucketSize::Week { .. } => "week",
            BucketSize::Month => "month",
        }
    }
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Named by its local start: `2026-03-08`, `2026-W10`, `2026-03`,
    /// `2026-03-08T14`.
    pub label: String,
    /// The local start with its offset (RFC 3339).
    pub start_local: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    #[error("the range is empty: `from` must be before `to`")]
    EmptyRange,
    #[error("the range has more than {MAX_BUCKETS} buckets; choose a larger bucket")]
    TooMany,
    #[error("a date in the range is outside the supported calendar: {0}")]
    Calendar(String),
}

fn calendar(e: jiff::Error) -> BucketError {
    BucketError::Calendar(e.to_string())
}

/// The local start of the period containing `local`.
fn period_start(local: DateTime, size: BucketSize) -> Result<DateTime, BucketError> {
    let midnight = local.date().to_datetime(jiff::civil::Time::midnight());
    Ok(match size {
        BucketSize::Hour => local
            .with()
            .minute(0)
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .map_err(calendar)?,
        BucketSize::Day => midnight,
        BucketSize::Week { start } => {
            let back = (local.date().weekday().to_monday_zero_offset()
                - start.to_monday_zero_offset())
            .rem_euclid(7);
            midnight
                .checked_sub(i64::from(back).days())
                .map_err(calendar)?
        }
        BucketSize::Month => local
            .date()
            .first_of_month()
            .to_datetime(jiff::civil::Time::midnight()),
    })
}

fn next_period(start: DateTime, size: BucketSize) -> Result<DateTime, BucketError> {
    let step = match size {
        BucketSize::Hour => 1.hour(),
        BucketSize::Day => 1.day(),
        BucketSize::Week { .. } => 7.days(),
        BucketSize::Month => 1.month(),
    };
    start.checked_add(step).map_err(calendar)
}

fn label(start: DateTime, size: BucketSize) -> String {
    match size {
        BucketSize::Hour => start.strftime("%Y-%m-%dT%H").to_string(),
        BucketSize::Day => start.strftime("%Y-%m-%d").to_string(),
        BucketSize::Week {
            start: Weekday::Monday,
        } => {
            let week = start.date().iso_week_date();
            format!("{:04}-W{:02}", week.year(), week.week())
        }
        BucketSize::Week { .. } => start.strftime("%Y-%m-%d").to_string(),
        BucketSize::Month => start.strftime("%Y-%m").to_string(),
    }
}

/// The instant a local time begins at in `tz`. A time skipped by a DST
/// gap resolves to the first instant after the gap, which is where a day
/// without a midnight begins.
fn instant(local: DateTime, tz: &TimeZone) -> Result<Timestamp, BucketError> {
    Ok(tz
        .to_ambiguous_zoned(local)
        .compatible()
        .map_err(calendar)?
        .timestamp())
}

/// The buckets of `[from, to)` in `tz`. The first and last are partial when
/// `from` or `to` is not at a bucket boundary; empty buckets (an hour
/// skipped by DST) are left out.
pub fn buckets(
    from: Timestamp,
    to: Timestamp,
    tz: &TimeZone,
    size: BucketSize,
) -> Result<Vec<Bucket>, BucketError> {
    if from >= to {
        return Err(BucketError::EmptyRange);
    }
    let (from_ms, to_ms) = (from.as_millisecond(), to.as_millisecond());
    let mut local = period_start(tz.to_datetime(from), size)?;
    let mut out = Vec::new();
    loop {
        let next = next_period(local, size)?;
        let start_ms = instant(local, tz)?.as_millisecond().max(from_ms);
        let end_ms = instant(next, tz)?.as_millisecond().min(to_ms);
        if start_ms < end_ms {
            if out.len() == MAX_BUCKETS {
                return Err(BucketError::TooMany);
            }
            let zoned = tz
                .to_ambiguous_zoned(local)
                .compatible()
                .map_err(calendar)?;
            out.push(Bucket {
                start_ms,
                end_ms,
                label: label(local, size),
                start_local: zoned
                    .timestamp()
                    .to_zoned(tz.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string(),
            });
        }
        if end_ms >= to_ms {
            return Ok(out);
        }
        local = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).expect("zone")
    }

    #[test]
    fn new_york_days_across_spring_forward_are_23_hours() {
        let tz = zone("America/New_York");
        let days = buckets(
            ts("2026-03-07T05:00:00Z"),
            ts("2026-03-10T04:00:00Z"),
            &tz,
            BucketSize::Day,
        )
        .expect("buckets");
        let labels: Vec<_> = days.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["2026-03-07", "2026-03-08", "2026-03-09"]);
        let hours: Vec<_> = days
            .iter()
            .map(|b| (b.end_ms - b.start_ms) / 3_600_000)
            .collect();
        assert_eq!(hours, [24, 23, 24]);
        assert_eq!(days[1].start_local, "2026-03-08T00:00:00-05:00");
    }

    #[test]
    fn kathmandu_days_start_at_a_quarter_hour() {
        let tz = zone("Asia/Kathmandu");
        let days = buckets(
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-03T00:00:00Z"),
            &tz,
            BucketSize::Day,
        )
        .expect("buckets");
        // Local midnight is 18:15 UTC the day before: partial first and last.
        assert_eq!(days.len(), 3);
        assert_eq!(
            days[1].start_ms,
            ts("2026-01-01T18:15:00Z").as_millisecond()
        );
        assert_eq!(
            days[0].start_ms,
            ts("2026-01-01T00:00:00Z").as_millisecond()
        );
    }

    #[test]
    fn weeks_months_and_hours_are_named_by_their_local_start() {
        let tz = zone("Europe/London");
        let iso = buckets(
            ts("2026-03-02T00:00:00Z"),
            ts("2026-03-16T00:00:00Z"),
            &tz,
            BucketSize::Week {
                start: Weekday::Monday,
            },
        )
        .expect("weeks");
        assert_eq!(
            iso.iter().map(|b| b.label.clone()).collect::<Vec<_>>(),
            ["2026-W10", "2026-W11"]
        );
        let sunday = buckets(
            ts("2026-03-02T00:00:00Z"),
            ts("2026-03-09T00:00:00Z"),
            &tz,
            BucketSize::Week {
                start: Weekday::Sunday,
            },
        )
        .expect("weeks");
        assert_eq!(
            sunday[0].label, "2026-03-01",
            "the week that began on Sunday 1 March"
        );
        // April 1 begins at 23:00 UTC the day before (BST).
        let months = buckets(
            ts("2026-01-15T00:00:00Z"),
            ts("2026-03-31T23:00:00Z"),
            &tz,
            BucketSize::Month,
        )
        .expect("months");
        assert_eq!(
            months.iter().map(|b| b.label.clone()).collect::<Vec<_>>(),
            ["2026-01", "2026-02", "2026-03"]
        );
        // March 29 2026: London springs forward at 01:00, so hour 01 is missing.
        let hours = buckets(
            ts("2026-03-29T00:00:00Z"),
            ts("2026-03-29T03:00:00Z"),
            &tz,
            BucketSize::Hour,
        )
        .expect("hours");
        assert_eq!(
            hours.iter().map(|b| b.label.clone()).collect::<Vec<_>>(),
            ["2026-03-29T00", "2026-03-29T02", "2026-03-29T03"]
        );
    }

    #[test]
    fn limits() {
        let tz = TimeZone::UTC;
        assert_eq!(
            buckets(
                ts("2026-01-01T00:00:00Z"),
                ts("2026-01-01T00:00:00Z"),
                &tz,
                BucketSize::Day
            ),
            Err(BucketError::EmptyRange)
        );
        assert_eq!(
            buckets(
                ts("2000-01-01T00:00:00Z"),
                ts("2026-01-01T00:00:00Z"),
                &tz,
                BucketSize::Hour
            ),
            Err(BucketError::TooMany)
        );
    }
}
