//! A budget's period: a calendar day, week or month in a time zone, as the
//! UTC instants of its edges. Edges are local midnights from the zone's
//! rules (jiff), so a day across a DST change is 23 or 25 hours long and a
//! month is whatever its days add up to; a midnight that does not exist
//! (a zone whose clocks jump at 00:00) is the first instant of that day.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// How long a budget's period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    /// Weeks starting on `start` (Monday unless configured).
    Week {
        start: Weekday,
    },
    Month,
}

/// One period: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn start_ms(&self) -> i64 {
        self.start.as_millisecond()
    }

    pub fn end_ms(&self) -> i64 {
        self.end.as_millisecond()
    }

    pub fn contains(&self, at_ms: i64) -> bool {
        self.start_ms() <= at_ms && at_ms < self.end_ms()
    }
}

impl Period {
    /// The stored and typed name: `day`, `week`, `month`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week { .. } => "week",
            Period::Month => "month",
        }
    }

    /// `day`, `week` or `month`; a week starts on `week_start`.
    pub fn parse(name: &str, week_start: Weekday) -> Option<Period> {
        match name {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week { start: week_start }),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    /// The period that holds `at` in `zone`.
    pub fn window_at(self, zone: &TimeZone, at: Timestamp) -> Result<Window, jiff::Error> {
        let today = at.to_zoned(zone.clone()).date();
        let first = self.first_day(today)?;
        let next = self.next_first_day(first)?;
        Ok(Window {
            start: local_midnight(first, zone)?,
            end: local_midnight(next, zone)?,
        })
    }

    /// The first local day of the period holding `day`.
    fn first_day(self, day: Date) -> Result<Date, jiff::Error> {
        match self {
            Period::Day => Ok(day),
            Period::Week { start } => {
                let back = (day.weekday().to_monday_zero_offset() - start.to_monday_zero_offset())
                    .rem_euclid(7);
                day.checked_sub(i64::from(back).days())
            }
            Period::Month => Ok(day.first_of_month()),
        }
    }

    fn next_first_day(self, first: Date) -> Result<Date, jiff::Error> {
        match self {
            Period::Day => first.tomorrow(),
            Period::Week { .. } => first.checked_add(7.days()),
            Period::Month => first.checked_add(1.month()),
        }
    }
}

/// The first instant of `day` in `zone`.
pub fn local_midnight(day: Date, zone: &TimeZone) -> Result<Timestamp, jiff::Error> {
    Ok(day.to_zoned(zone.clone())?.start_of_day()?.timestamp())
}

/// The ISO number of a weekday (1 = Monday … 7 = Sunday), as stored.
pub fn weekday_number(day: Weekday) -> i64 {
    i64::from(day.to_monday_one_offset())
}

/// The weekday of an ISO number; `None` outside 1..=7.
pub fn weekday_of_number(number: i64) -> Option<Weekday> {
    i8::try_from(number)
        .ok()
        .and_then(|n| Weekday::from_monday_one_offset(n).ok())
}

/// A weekday by name (`monday`, `mon`, any case).
pub fn parse_weekday(name: &str) -> Option<Weekday> {
    let lower = name.to_ascii_lowercase();
    [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ]
    .into_iter()
    .find(|day| {
        let full = format!("{day:?}").to_ascii_lowercase();
        lower == full || (lower.len() == 3 && full.starts_with(&lower))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn window(period: Period, zone: &str, at: &str) -> (String, String) {
        let zone = TimeZone::get(zone).expect("zone");
        let w = period.window_at(&zone, ts(at)).expect("window");
        (w.start.to_string(), w.end.to_string())
    }

    #[test]
    fn a_berlin_month_ends_at_local_midnight_across_the_october_change() {
        // October 2026 in Berlin: CEST (+2) until the 25th, then CET (+1).
        assert_eq!(
            window(Period::Month, "Europe/Berlin", "2026-10-31T22:59:59Z"),
            ("2026-09-30T22:00:00Z".into(), "2026-10-31T23:00:00Z".into())
        );
        assert_eq!(
            window(Period::Month, "Europe/Berlin", "2026-10-31T23:00:00Z"),
            ("2026-10-31T23:00:00Z".into(), "2026-11-30T23:00:00Z".into())
        );
    }

    #[test]
    fn a_berlin_week_starting_monday_spans_the_march_change() {
        // Sunday 2026-03-29 02:00 CET → 03:00 CEST: a 167-hour week.
        let (start, end) = window(
            Period::Week {
                start: Weekday::Monday,
            },
            "Europe/Berlin",
            "2026-03-29T12:00:00Z",
        );
        assert_eq!(
            (start.as_str(), end.as_str()),
            ("2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z")
        );
        let hours = (ts(&end).as_second() - ts(&start).as_second()) / 3600;
        assert_eq!(hours, 167);
    }

    #[test]
    fn weeks_start_on_the_configured_day() {
        // 2026-12-01 is a Tuesday.
        let sunday = Period::Week {
            start: Weekday::Sunday,
        };
        assert_eq!(
            window(sunday, "UTC", "2026-12-01T10:00:00Z"),
            ("2026-11-29T00:00:00Z".into(), "2026-12-06T00:00:00Z".into())
        );
        let tuesday = Period::Week {
            start: Weekday::Tuesday,
        };
        assert_eq!(
            window(tuesday, "UTC", "2026-12-01T00:00:00Z"),
            ("2026-12-01T00:00:00Z".into(), "2026-12-08T00:00:00Z".into())
        );
    }

    #[test]
    fn a_kolkata_day_starts_at_half_past_six_utc() {
        assert_eq!(
            window(Period::Day, "Asia/Kolkata", "2026-06-15T18:29:59Z"),
            ("2026-06-14T18:30:00Z".into(), "2026-06-15T18:30:00Z".into())
        );
        assert_eq!(
            window(Period::Day, "Asia/Kolkata", "2026-06-15T18:30:00Z"),
            ("2026-06-15T18:30:00Z".into(), "2026-06-16T18:30:00Z".into())
        );
    }

    #[test]
    fn a_utc_month_of_february() {
        assert_eq!(
            window(Period::Month, "UTC", "2028-02-29T23:59:59Z"),
            ("2028-02-01T00:00:00Z".into(), "2028-03-01T00:00:00Z".into())
        );
    }

    #[test]
    fn weekday_names_and_numbers() {
        assert_eq!(parse_weekday("Sunday"), Some(Weekday::Sunday));
        assert_eq!(parse_weekday("mon"), Some(Weekday::Monday));
        assert_eq!(parse_weekday("funday"), None);
        assert_eq!(weekday_of_number(7), Some(Weekday::Sunday));
        assert_eq!(weekday_of_number(0), None);
        assert_eq!(weekday_number(Weekday::Monday), 1);
    }
}
