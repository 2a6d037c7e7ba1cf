//! The forecast: what a budget's period will have used at its end.
//!
//! # The rule
//!
//! `projected = used so far + Σ over the rest of the period of (the day's
//! rate × the share of the day still to come)`.
//!
//! The rates come from the 14 whole local days before today (the budget's
//! zone), split into working days (Monday to Friday) and weekend days,
//! because teams that rest on weekends would otherwise see every Friday's
//! projection overshoot: a working day's rate is the average over the
//! working days among them, a weekend day's the average over the weekend
//! days. Days before the first one with any usage do not count (a new
//! instance averages over the days it has); when one kind has no day left,
//! the other kind's average stands in. With no history at all, the period
//! so far is the history: `used ÷ time elapsed × time remaining`, once a
//! day has passed (before that there is no forecast).
//!
//! Each remaining day adds its rate times the share of it still to come
//! (a 23- or 25-hour day counts as one day), rounded to the unit once per
//! day. Everything is integer arithmetic on the measure's unit (micro-USD
//! or tokens).

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::period::{Window, local_midnight};

/// Days of history the rates come from.
pub const HISTORY_DAYS: i64 = 14;

/// The projection and what it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forecast {
    /// Used at the period's end, if the rates hold.
    pub projected: i64,
    /// Average per working day and per weekend day (rounded, for display).
    pub weekday_rate: i64,
    pub weekend_rate: i64,
    /// How many days of history the rates stand on (0: the period so far).
    pub history_days: usize,
}

/// A day of history: the local date and what it used.
pub type DayUsage = (Date, i64);

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The history's (sum, days) per kind: working days, weekend days. Days
/// before the first with usage are left out.
fn sums(history: &[DayUsage]) -> ([i128; 2], [i128; 2]) {
    let mut sum = [0i128; 2];
    let mut days = [0i128; 2];
    let first_used = history.iter().position(|(_, used)| *used > 0);
    for (day, used) in history.iter().skip(first_used.unwrap_or(history.len())) {
        let kind = usize::from(is_weekend(*day));
        sum[kind] += i128::from(*used);
        days[kind] += 1;
    }
    (sum, days)
}

/// `numerator / denominator`, rounded half up (both non-negative).
fn div_round(numerator: i128, denominator: i128) -> i128 {
    if denominator == 0 {
        0
    } else {
        (2 * numerator + denominator) / (2 * denominator)
    }
}

/// The projection at `now` for a period `window` in `zone` that has used
/// `used`, with `history` the whole local days before today (oldest
/// first). `None` before there is anything to go on.
pub fn project(
    used: i64,
    now: Timestamp,
    window: &Window,
    zone: &TimeZone,
    history: &[DayUsage],
) -> Result<Option<Forecast>, jiff::Error> {
    let (sum, days) = sums(history);
    let history_days = usize::try_from(days[0] + days[1]).unwrap_or(usize::MAX);
    if history_days == 0 {
        return Ok(from_period_so_far(used, now, window));
    }
    // Per kind: (sum, days) with the other kind standing in when empty.
    let rate = |kind: usize| {
        if days[kind] > 0 {
            (sum[kind], days[kind])
        } else {
            (sum[1 - kind], days[1 - kind])
        }
    };
    let mut rest: i128 = 0;
    let mut day = now.to_zoned(zone.clone()).date();
    let mut from = now;
    while from < window.end {
        let next = local_midnight(day.checked_add(1.day())?, zone)?.min(window.end);
        let day_start = local_midnight(day, zone)?;
        let day_length = i128::from(next.as_millisecond() - day_start.as_millisecond()).max(1);
        let to_come = i128::from(next.as_millisecond() - from.as_millisecond());
        let (kind_sum, kind_days) = rate(usize::from(is_weekend(day)));
        rest += div_round(kind_sum * to_come, kind_days * day_length);
        day = day.checked_add(1.day())?;
        from = next;
    }
    let rounded = |kind: usize| {
        let (s, d) = rate(kind);
        i64::try_from(div_round(s, d)).unwrap_or(i64::MAX)
    };
    Ok(Some(Forecast {
        projected: i64::try_from(i128::from(used) + rest).unwrap_or(i64::MAX),
        weekday_rate: rounded(0),
        weekend_rate: rounded(1),
        history_days,
    }))
}

/// No history: the period's own pace, once a day of it has passed.
fn from_period_so_far(used: i64, now: Timestamp, window: &Window) -> Option<Forecast> {
    const DAY_MS: i128 = 86_400_000;
    let elapsed = i128::from(now.as_millisecond() - window.start_ms());
    let remaining = i128::from(window.end_ms() - now.as_millisecond()).max(0);
    if elapsed < DAY_MS {
        return None;
    }
    let rest = div_round(i128::from(used) * remaining, elapsed);
    let per_day = i64::try_from(div_round(i128::from(used) * DAY_MS, elapsed)).unwrap_or(i64::MAX);
    Some(Forecast {
        projected: i64::try_from(i128::from(used) + rest).unwrap_or(i64::MAX),
        weekday_rate: per_day,
        weekend_rate: per_day,
        history_days: 0,
    })
}

/// The `HISTORY_DAYS` local days before the one holding `now`, as UTC
/// ranges `(date, start_ms, end_ms)`, oldest first.
pub fn history_ranges(
    now: Timestamp,
    zone: &TimeZone,
) -> Result<Vec<(Date, i64, i64)>, jiff::Error> {
    let today = now.to_zoned(zone.clone()).date();
    let mut ranges = Vec::with_capacity(HISTORY_DAYS as usize);
    for back in (1..=HISTORY_DAYS).rev() {
        let day = today.checked_sub(back.days())?;
        let start = local_midnight(day, zone)?.as_millisecond();
        let end = local_midnight(day.checked_add(1.day())?, zone)?.as_millisecond();
        ranges.push((day, start, end));
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budgets::period::Period;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    /// 14 days before Monday 2026-06-15: 100 a working day, 10 a weekend day.
    fn history() -> Vec<DayUsage> {
        history_from("2026-06-01")
    }

    fn history_from(first: &str) -> Vec<DayUsage> {
        let first: Date = first.parse().expect("date");
        (0..14)
            .map(|i| {
                let day = first.checked_add(i.days()).expect("day");
                (day, if is_weekend(day) { 10 } else { 100 })
            })
            .collect()
    }

    #[test]
    fn working_days_and_weekends_have_their_own_rates() {
        let zone = TimeZone::UTC;
        let now = ts("2026-06-15T00:00:00Z");
        let window = Period::Month.window_at(&zone, now).expect("window");
        let forecast = project(1_000, now, &window, &zone, &history())
            .expect("time")
            .expect("a forecast");
        // June 15–30: 12 working days, 4 weekend days.
        assert_eq!(forecast.projected, 1_000 + 12 * 100 + 4 * 10);
        assert_eq!((forecast.weekday_rate, forecast.weekend_rate), (100, 10));
        assert_eq!(forecast.history_days, 14);
    }

    #[test]
    fn the_rest_of_today_counts_for_its_share() {
        let zone = TimeZone::UTC;
        // Tuesday June 30, 18:00: a quarter of the month's last day to go.
        let now = ts("2026-06-30T18:00:00Z");
        let window = Period::Month.window_at(&zone, now).expect("window");
        let days = history_from("2026-06-16");
        let forecast = project(500, now, &window, &zone, &days)
            .expect("time")
            .expect("a forecast");
        assert_eq!(forecast.projected, 500 + 25);
    }

    #[test]
    fn days_before_the_first_usage_do_not_count() {
        let zone = TimeZone::UTC;
        let now = ts("2026-06-15T00:00:00Z");
        let window = Period::Day.window_at(&zone, now).expect("window");
        let mut days = history();
        for day in days.iter_mut().take(10) {
            day.1 = 0;
        }
        // Left: Thu 11 (100), Fri 12 (100), Sat 13 (10), Sun 14 (10).
        let forecast = project(0, now, &window, &zone, &days)
            .expect("time")
            .expect("a forecast");
        assert_eq!(forecast.history_days, 4);
        assert_eq!(forecast.projected, 100);
    }

    #[test]
    fn with_no_history_the_period_s_own_pace_after_a_day() {
        let zone = TimeZone::UTC;
        let window = Period::Month
            .window_at(&zone, ts("2026-06-10T00:00:00Z"))
            .expect("window");
        let empty: Vec<DayUsage> = Vec::new();
        let early = project(50, ts("2026-06-01T12:00:00Z"), &window, &zone, &empty).expect("time");
        assert_eq!(early, None);
        // 10 days in, 300 used: 30 a day for the 20 left.
        let later = project(300, ts("2026-06-11T00:00:00Z"), &window, &zone, &empty)
            .expect("time")
            .expect("a forecast");
        assert_eq!(later.projected, 900);
        assert_eq!(later.history_days, 0);
    }
}
