//! Watching budgets: after usage is stored, in the same transaction, every
//! budget whose current period the new usage falls in is evaluated, and
//! each threshold it reached and each projection past it is recorded as an
//! alert (`alerts::record`, once per key) with a delivery per channel.
//!
//! Keys: `threshold:{budget}:r{revision}:u{member or 0}:{period start
//! ms}:{percent}` and `projected:{budget}:r{revision}:u{member or
//! 0}:{period start ms}`. A changed budget has a new revision, so what it
//! crosses after the change alerts afresh; what it had already crossed
//! when it was set or changed is recorded quietly ([`settle`]), so nobody
//! is told about the past unless they asked.

use jiff::Timestamp;
use rusqlite::Connection;
use serde_json::json;

use super::status::{Standing, standings};
use super::store::{self, Budget, BudgetScope};
use super::unusual::UnusualWatch;
use crate::alerts::{self, AlertKind, Destination, NewAlert};
use crate::db::DbError;

/// Evaluates every budget whose current period overlaps `[first_ms,
/// last_ms]` (the times of the usage just stored), and the unusual-usage
/// rule when some of it is in the last hour and the rule is due
/// ([`UnusualWatch::due`]); records what is reached. Runs in the caller's
/// transaction.
pub fn after_usage(
    conn: &Connection,
    now: Timestamp,
    first_ms: i64,
    last_ms: i64,
    unusual: &UnusualWatch,
) -> Result<usize, DbError> {
    let mut recorded = 0;
    let recent = last_ms >= now.as_millisecond() - 3_600_000;
    if recent && unusual.rule.is_on() && unusual.due(now.as_millisecond()) {
        recorded += super::unusual::check(conn, &unusual.rule, now)?;
    }
    for budget in store::list(conn)? {
        let window = budget
            .period
            .window_at(&budget.time_zone(), now)
            .map_err(|e| DbError::Refused(e.to_string()))?;
        if last_ms < window.start_ms() || first_ms >= window.end_ms() {
            continue;
        }
        recorded += evaluate(conn, &budget, now, false)?;
    }
    Ok(recorded)
}

/// [`after_usage`] for what one insert stored (nothing to do when it
/// stored nothing).
pub fn after_insert(
    conn: &Connection,
    now: Timestamp,
    outcome: &crate::usage::store::InsertOutcome,
    unusual: &UnusualWatch,
) -> Result<usize, DbError> {
    match outcome.span {
        Some((first_ms, last_ms)) => after_usage(conn, now, first_ms, last_ms, unusual),
        None => Ok(0),
    }
}

/// Evaluates every budget and the unusual-usage rule (the worker's
/// periodic pass: usage that changed without being stored through ingest,
/// such as a re-pricing or a link, and the batches that came while the
/// rule was not due).
pub fn all(conn: &Connection, now: Timestamp, unusual: &UnusualWatch) -> Result<usize, DbError> {
    let mut recorded = super::unusual::check(conn, &unusual.rule, now)?;
    for budget in store::list(conn)? {
        recorded += evaluate(conn, &budget, now, false)?;
    }
    Ok(recorded)
}

/// Records, without sending, what `budget` has reached at `now`: called
/// when it is created or changed, so that only later crossings alert.
pub fn settle(conn: &Connection, budget: &Budget, now: Timestamp) -> Result<usize, DbError> {
    evaluate(conn, budget, now, true)
}

/// Records every threshold `budget` has reached and its projection past
/// the amount, once each; `quiet` records without delivering.
pub fn evaluate(
    conn: &Connection,
    budget: &Budget,
    now: Timestamp,
    quiet: bool,
) -> Result<usize, DbError> {
    if all_recorded(conn, budget, now)? {
        return Ok(0);
    }
    let mut recorded = 0;
    for standing in standings(conn, budget, now)? {
        let destinations = destinations(conn, budget, &standing)?;
        for percent in &budget.thresholds {
            if !standing.reached(*percent) {
                break;
            }
            let alert = new_alert(budget, &standing, AlertKind::Threshold, *percent, quiet);
            recorded += usize::from(
                alerts::record(conn, &alert, &destinations, now.as_millisecond())?.is_some(),
            );
        }
        let projected_over = standing
            .forecast
            .is_some_and(|f| f.projected > standing.amount);
        if projected_over && !standing.reached(100) {
            let alert = new_alert(budget, &standing, AlertKind::Projected, 100, quiet);
            recorded += usize::from(
                alerts::record(conn, &alert, &destinations, now.as_millisecond())?.is_some(),
            );
        }
    }
    Ok(recorded)
}

/// Whether every alert a pooled budget can give this period is recorded
/// already: then usage stored after it needs no reading at all (most
/// ingest batches of a busy month, once its thresholds are behind it).
/// Each member's share is not known without reading, so an each-member
/// budget is always evaluated.
fn all_recorded(conn: &Connection, budget: &Budget, now: Timestamp) -> Result<bool, DbError> {
    if budget.scope == BudgetScope::EachMember {
        return Ok(false);
    }
    let window = budget
        .period
        .window_at(&budget.time_zone(), now)
        .map_err(|e| DbError::Refused(e.to_string()))?;
    let start = window.start_ms();
    let (id, revision) = (budget.id, budget.revision);
    let mut keys: Vec<String> = budget
        .thresholds
        .iter()
        .map(|t| format!("threshold:{id}:r{revision}:u0:{start}:{t}"))
        .collect();
    // Past 100 %, no projection alert can come; short of it, it can.
    if budget.thresholds.last().is_none_or(|t| *t < 100) {
        keys.push(format!("projected:{id}:r{revision}:u0:{start}"));
    }
    for key in keys {
        if !alerts::store::exists(conn, &key)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn new_alert(
    budget: &Budget,
    standing: &Standing,
    kind: AlertKind,
    percent: i64,
    quiet: bool,
) -> NewAlert {
    let member = standing.member.as_ref().map(|(id, _)| *id);
    let subject = member.or(match &budget.scope {
        BudgetScope::User { id, .. } => Some(*id),
        _ => None,
    });
    let key_member = member.map_or(0, |m| m.0);
    let start = standing.window.start_ms();
    let key = match kind {
        AlertKind::Threshold => format!(
            "threshold:{}:r{}:u{key_member}:{start}:{percent}",
            budget.id, budget.revision
        ),
        _ => format!(
            "{}:{}:r{}:u{key_member}:{start}",
            kind.name(),
            budget.id,
            budget.revision
        ),
    };
    NewAlert {
        kind,
        budget_id: Some(budget.id),
        user: subject,
        period_start_ms: start,
        period_end_ms: standing.window.end_ms(),
        threshold: percent,
        measure: budget.measure.name(),
        used: standing.used,
        amount: Some(standing.amount),
        projected: standing.forecast.map(|f| f.projected),
        details: json!({
            "budget": budget.name,
            "scope": budget.scope.label(),
            "member": standing.member.as_ref().map(|(_, name)| name),
            "period": budget.period.name(),
            "time_zone": budget.zone,
        }),
        idempotency_key: key,
        quiet,
    }
}

/// The budget's channels, and the person's own email for a budget on one
/// person (a user budget, or their share of an each-member budget).
fn destinations(
    conn: &Connection,
    budget: &Budget,
    standing: &Standing,
) -> Result<Vec<Destination>, DbError> {
    let mut destinations: Vec<Destination> = budget
        .channels
        .iter()
        .map(|id| Destination::Channel(*id))
        .collect();
    let person = match (&budget.scope, &standing.member) {
        (_, Some((id, _))) => Some(*id),
        (BudgetScope::User { id, .. }, None) => Some(*id),
        _ => None,
    };
    if let Some(email) = person
        .map(|p| alerts::store::email_of(conn, p))
        .transpose()?
        .flatten()
    {
        destinations.push(Destination::Email(email));
    }
    Ok(destinations)
}
