//! Unusual usage: an alert when a person's usage in the last hour rises
//! far above their own baseline — a runaway agent loop, a leaked key.
//!
//! # The rule
//!
//! At `now` (the time of an ingest that stored usage inside the last
//! hour), for every user with usage in the last 60 minutes
//! `[now − 1 h, now]`, and for each measure (tokens, all four kinds; cost):
//!
//! * `used` is the user's total of the measure in the last 60 minutes;
//! * the **baseline** is the 95th percentile (nearest rank) of the user's
//!   336 hourly totals (whole UTC hours, idle hours counted as 0) over the
//!   14 days that end at the start of the UTC hour holding `now − 1 h` (so
//!   the window being judged is never part of its own baseline);
//! * it alerts when `used > max(factor × baseline, floor)`, the number
//!   of calls in the last hour is also above `factor ×` the 95th
//!   percentile of the user's hourly calls, and the user had usage in at
//!   least [`MIN_ACTIVE_HOURS`] of those 336 hours.
//!
//! The floor keeps small numbers quiet whatever the baseline (a person
//! who used nothing for two weeks and then a little); the calls keep one
//! huge call (a long context read from cache) from passing for a runaway
//! loop, which makes many; the history requirement keeps a new user from
//! alerting on their first busy day. On a year of the standard workload
//! the calls test is what takes the false alerts to zero
//! (BENCHMARKS.md).
//!
//! # Knobs (the config file; `README.md`)
//!
//! * `unusual_factor` (default 5; 0 switches the rule off);
//! * `unusual_floor_tokens` (default 1,000,000 tokens in the hour; 0:
//!   tokens never alert);
//! * `unusual_floor_cost` (default 5 USD in the hour; 0: cost never
//!   alerts);
//! * `unusual_channels` (default none): the channels, by name, that get
//!   every unusual-usage alert besides the person's own email.
//!
//! # Once per episode
//!
//! The key is `unusual:u{user}:{UTC hour start ms}`, and a user who had an
//! unusual-usage alert in the last [`COOL_DOWN_MS`] (6 hours) gets no new
//! one: a two-hour loop alerts once; a loop that runs all day alerts again
//! every six hours at most.
//!
//! # Per person, not per source
//!
//! The rollups keep user × source only by day and month, so a source's
//! own hourly baseline would have to be summed from the raw events
//! (BENCHMARKS.md has what that costs). The rule judges the person; the
//! alert names the hour's three largest sources (read only when it
//! alerts), which says which tool is looping.
//!
//! # Cost
//!
//! One rollup read of everyone's last hour per ingest that stored usage in
//! the last hour; the 336-hour baseline only for users already past a
//! floor (BENCHMARKS.md, "Unusual usage").

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use crate::alerts::{self, AlertKind, Destination, NewAlert};
use crate::db::DbError;
use crate::model::{Scope, Totals, UserId};
use crate::usage::query::{self, Filters};

const MS_PER_HOUR: i64 = 3_600_000;
/// Hours of baseline: 14 days.
pub const BASELINE_HOURS: i64 = 14 * 24;
/// Hours with usage a user needs in the baseline before they can alert.
pub const MIN_ACTIVE_HOURS: usize = 24;
/// No new unusual-usage alert for a user within this long of the last.
pub const COOL_DOWN_MS: i64 = 6 * MS_PER_HOUR;

/// The rule's knobs (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct UnusualRule {
    /// Times the baseline; 0 switches the rule off.
    pub factor: f64,
    /// Tokens in the hour below which nothing alerts; 0: tokens never do.
    pub floor_tokens: i64,
    /// Cost (micro-USD) in the hour below which nothing alerts; 0: cost
    /// never does.
    pub floor_cost_micros: i64,
    /// Channels (by name) that get every unusual-usage alert.
    pub channels: Vec<String>,
}

impl Default for UnusualRule {
    fn default() -> Self {
        // The heaviest person of the standard workload averages ~0.4M
        // tokens and ~$1 an active hour: the floors are above that, the
        // factor far above anyone's own p95 (BENCHMARKS.md: no false alert
        // in a year of it).
        Self {
            factor: 5.0,
            floor_tokens: 1_000_000,
            floor_cost_micros: 5_000_000,
            channels: Vec::new(),
        }
    }
}

/// The rule and when it last ran, shared by every store of a process.
///
/// The check reads everyone's last hour; run after every stored batch it
/// was a quarter of the server's CPU under the load benchmark (twenty
/// 100-event batches a second). After an ingest it now runs at most once
/// per [`CHECK_EVERY_MS`] of the clock, and the budget watcher runs it
/// every 30 s besides, so a loop is still caught within a minute.
#[derive(Debug)]
pub struct UnusualWatch {
    pub rule: UnusualRule,
    /// Clock time (ms) of the last run after an ingest; `i64::MIN`: never.
    last_ms: std::sync::atomic::AtomicI64,
}

/// The least time between two checks after ingests.
pub const CHECK_EVERY_MS: i64 = 60_000;

impl Default for UnusualWatch {
    fn default() -> Self {
        UnusualWatch::new(UnusualRule::default())
    }
}

impl UnusualWatch {
    pub fn new(rule: UnusualRule) -> UnusualWatch {
        UnusualWatch {
            rule,
            last_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// Whether an ingest at `now_ms` should run the check (and, if so,
    /// that it runs now). A clock set back starts over.
    pub fn due(&self, now_ms: i64) -> bool {
        use std::sync::atomic::Ordering;
        let last = self.last_ms.load(Ordering::Relaxed);
        let waited = now_ms.checked_sub(last).unwrap_or(i64::MAX);
        if (0..CHECK_EVERY_MS).contains(&waited) {
            return false;
        }
        self.last_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

impl UnusualRule {
    /// The rule switched off.
    pub fn off() -> Self {
        Self {
            factor: 0.0,
            ..Self::default()
        }
    }

    pub fn is_on(&self) -> bool {
        self.factor > 0.0 && (self.floor_tokens > 0 || self.floor_cost_micros > 0)
    }

    /// Whether `totals` are past a floor (the cheap test before the
    /// baseline is read).
    fn past_a_floor(&self, totals: &Totals) -> bool {
        (self.floor_tokens > 0 && totals.all_tokens() > self.floor_tokens)
            || (self.floor_cost_micros > 0 && totals.cost_micros > self.floor_cost_micros)
    }
}

/// What one measure found for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub measure: &'static str,
    pub used: i64,
    pub baseline_p95: i64,
    /// `max(factor × baseline, floor)`: what `used` went past.
    pub limit: i64,
}

/// Checks every user with usage in the hour before `now`; records an
/// alert for each that is unusual (once per episode). Returns how many
/// were recorded. Runs in the caller's transaction.
pub fn check(conn: &Connection, rule: &UnusualRule, now: Timestamp) -> Result<usize, DbError> {
    if !rule.is_on() {
        return Ok(0);
    }
    let now_ms = now.as_millisecond();
    let window = (now_ms - MS_PER_HOUR, now_ms + 1);
    let last_hour =
        query::range_totals(conn, Scope::Everyone, &Filters::default(), true, &[window])
            .map_err(query_error)?;
    let mut recorded = 0;
    for (user, cells) in last_hour {
        let Some(used) = cells.first() else { continue };
        if !rule.past_a_floor(used) {
            continue;
        }
        let Some(finding) = judge(conn, rule, UserId(user), now_ms, used)? else {
            continue;
        };
        recorded += usize::from(record(conn, rule, UserId(user), now_ms, used, finding)?);
    }
    Ok(recorded)
}

/// The user's hourly totals over the baseline, oldest first.
pub fn baseline_hours(
    conn: &Connection,
    user: UserId,
    now_ms: i64,
) -> Result<Vec<Totals>, DbError> {
    let end = (now_ms - MS_PER_HOUR).div_euclid(MS_PER_HOUR) * MS_PER_HOUR;
    let ranges: Vec<(i64, i64)> = (0..BASELINE_HOURS)
        .rev()
        .map(|i| (end - (i + 1) * MS_PER_HOUR, end - i * MS_PER_HOUR))
        .collect();
    let groups = query::range_totals(conn, Scope::User(user), &Filters::default(), false, &ranges)
        .map_err(query_error)?;
    Ok(groups
        .into_iter()
        .next()
        .map(|(_, cells)| cells)
        .unwrap_or_else(|| vec![Totals::default(); ranges.len()]))
}

fn query_error(e: query::QueryError) -> DbError {
    match e {
        query::QueryError::Db(e) => e,
        other => DbError::Refused(other.to_string()),
    }
}

/// The 95th percentile (nearest rank) of `values`; 0 when empty.
pub fn p95(mut values: Vec<i64>) -> i64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = (values.len() * 95).div_ceil(100).max(1);
    values[rank - 1]
}

/// Whether `used` (the user's last hour) is unusual against their
/// baseline: the measure that is (cost first), or `None`.
pub fn judge(
    conn: &Connection,
    rule: &UnusualRule,
    user: UserId,
    now_ms: i64,
    used: &Totals,
) -> Result<Option<Finding>, DbError> {
    let hours = baseline_hours(conn, user, now_ms)?;
    Ok(judge_against(rule, &hours, used))
}

/// Reads one measure out of a total.
type Measure = fn(&Totals) -> i64;

/// [`judge`] on a baseline already read.
pub fn judge_against(rule: &UnusualRule, hours: &[Totals], used: &Totals) -> Option<Finding> {
    if !rule.is_on() || hours.iter().filter(|h| h.calls > 0).count() < MIN_ACTIVE_HOURS {
        return None;
    }
    let calls_p95 = p95(hours.iter().map(|h| h.calls).collect());
    if (used.calls as f64) <= calls_p95 as f64 * rule.factor {
        return None;
    }
    let measures: [(&'static str, i64, Measure); 2] = [
        ("cost", rule.floor_cost_micros, |t| t.cost_micros),
        ("tokens", rule.floor_tokens, Totals::all_tokens),
    ];
    measures.into_iter().find_map(|(measure, floor, of)| {
        if floor <= 0 {
            return None;
        }
        let baseline_p95 = p95(hours.iter().map(of).collect());
        let scaled = (baseline_p95 as f64 * rule.factor).ceil();
        let limit = if scaled >= i64::MAX as f64 {
            i64::MAX
        } else {
            (scaled as i64).max(floor)
        };
        let used = of(used);
        (used > limit).then_some(Finding {
            measure,
            used,
            baseline_p95,
            limit,
        })
    })
}

/// Records the alert unless the user had one within the cool-down.
fn record(
    conn: &Connection,
    rule: &UnusualRule,
    user: UserId,
    now_ms: i64,
    used: &Totals,
    finding: Finding,
) -> Result<bool, DbError> {
    let recent = conn
        .prepare_cached(
            "SELECT 1 FROM alerts WHERE user_id = ?1 AND kind = 'unusual' AND created_ms > ?2
             LIMIT 1",
        )?
        .query_row([user.0, now_ms - COOL_DOWN_MS], |_| Ok(()))
        .optional()?
        .is_some();
    if recent {
        return Ok(false);
    }
    let hour_start = now_ms.div_euclid(MS_PER_HOUR) * MS_PER_HOUR;
    let username: Option<String> = conn
        .prepare_cached("SELECT username FROM users WHERE id = ?1")?
        .query_row([user.0], |row| row.get(0))
        .optional()?;
    let mut alert = NewAlert {
        kind: AlertKind::Unusual,
        budget_id: None,
        user: Some(user),
        period_start_ms: now_ms - MS_PER_HOUR,
        period_end_ms: now_ms,
        threshold: 0,
        measure: finding.measure,
        used: finding.used,
        amount: Some(finding.limit),
        projected: None,
        details: json!({
            "member": username,
            "rule": "last hour above factor × p95 of the hourly usage of the 14 days before, and above the floor",
            "factor": rule.factor,
            "baseline_p95": finding.baseline_p95,
            "floor": if finding.measure == "cost" { rule.floor_cost_micros } else { rule.floor_tokens },
            "tokens": used.all_tokens(),
            "cost_micros": used.cost_micros,
            "calls": used.calls,
        }),
        idempotency_key: format!("unusual:u{}:{hour_start}", user.0),
        quiet: false,
    };
    alert.details["sources"] = top_sources(conn, user, now_ms)?;
    let destinations = destinations(conn, rule, user)?;
    Ok(alerts::record(conn, &alert, &destinations, now_ms)?.is_some())
}

/// The user's three largest sources of the last hour by tokens (which
/// tool is looping): read only for an alert.
fn top_sources(conn: &Connection, user: UserId, now_ms: i64) -> Result<serde_json::Value, DbError> {
    let (from, to) = (
        Timestamp::from_millisecond(now_ms - MS_PER_HOUR)
            .map_err(|e| DbError::Refused(e.to_string()))?,
        Timestamp::from_millisecond(now_ms + 1).map_err(|e| DbError::Refused(e.to_string()))?,
    );
    let top = query::top(
        conn,
        Scope::User(user),
        from,
        to,
        &Filters::default(),
        crate::usage::rollup::Dim::Source,
        3,
    )
    .map_err(query_error)?;
    Ok(top
        .rows
        .into_iter()
        .map(|(source, totals)| json!({"source": source, "tokens": totals.all_tokens(), "cost_micros": totals.cost_micros}))
        .collect())
}

/// The configured channels that exist, and the person's own email.
fn destinations(
    conn: &Connection,
    rule: &UnusualRule,
    user: UserId,
) -> Result<Vec<Destination>, DbError> {
    let mut destinations = Vec::new();
    for name in &rule.channels {
        let id: Option<i64> = conn
            .prepare_cached("SELECT id FROM channels WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?;
        destinations.extend(id.map(Destination::Channel));
    }
    if let Some(email) = alerts::store::email_of(conn, user)? {
        destinations.push(Destination::Email(email));
    }
    Ok(destinations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_after_ingest_runs_once_a_minute_and_again_after_a_clock_set_back() {
        let watch = UnusualWatch::default();
        let t = 1_781_524_800_000;
        assert!(watch.due(t), "never run: due");
        assert!(!watch.due(t));
        assert!(!watch.due(t + CHECK_EVERY_MS - 1));
        assert!(watch.due(t + CHECK_EVERY_MS));
        assert!(!watch.due(t + CHECK_EVERY_MS + 1));
        assert!(watch.due(t - 5_000), "a clock set back starts over");
    }
}
