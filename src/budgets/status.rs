//! Where a budget stands now: its period, what it has used, what is left,
//! the percentage, the forecast and when it resets — per member for an
//! each-member budget. Read from the rollups through the usage planner, so
//! it costs a few rows per day of the period and of the history, whatever
//! the number of events.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::Connection;

use super::forecast::{self, Forecast};
use super::period::Window;
use super::store::{Budget, BudgetScope, Measure};
use crate::db::DbError;
use crate::model::{Scope, Totals, UserId};
use crate::usage::query::{self, Filters, QueryError};

/// One budget's standing (for one member of an each-member budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The member, for an each-member budget.
    pub member: Option<(UserId, String)>,
    pub window: Window,
    pub used: i64,
    pub amount: i64,
    pub forecast: Option<Forecast>,
}

impl Standing {
    pub fn remaining(&self) -> i64 {
        self.amount.saturating_sub(self.used).max(0)
    }

    /// Used as a share of the amount, in basis points (10000 = 100 %).
    pub fn basis_points(&self) -> i64 {
        let share = i128::from(self.used) * 10_000 / i128::from(self.amount.max(1));
        i64::try_from(share).unwrap_or(i64::MAX)
    }

    /// Whether `percent` of the amount is reached.
    pub fn reached(&self, percent: i64) -> bool {
        i128::from(self.used) * 100 >= i128::from(self.amount) * i128::from(percent)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("time zone arithmetic: {0}")]
    Time(#[from] jiff::Error),
}

impl From<DbError> for StatusError {
    fn from(e: DbError) -> Self {
        StatusError::Query(QueryError::Db(e))
    }
}

impl From<StatusError> for DbError {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::Query(QueryError::Db(e)) => e,
            other => DbError::Refused(other.to_string()),
        }
    }
}

/// The usage scope, filters and grouping a budget counts.
fn reach(budget: &Budget) -> (Scope, Filters, bool) {
    match &budget.scope {
        BudgetScope::Everyone => (Scope::Everyone, Filters::default(), false),
        BudgetScope::Team { id, .. } => (Scope::Team(*id), Filters::default(), false),
        BudgetScope::User { id, .. } => (Scope::User(*id), Filters::default(), false),
        BudgetScope::Model(model) => (
            Scope::Everyone,
            Filters {
                models: vec![model.clone()],
                ..Filters::default()
            },
            false,
        ),
        BudgetScope::EachMember => (Scope::Everyone, Filters::default(), true),
    }
}

/// The measure's amount in `totals`.
pub fn measured(measure: Measure, totals: &Totals) -> i64 {
    match measure {
        Measure::Cost => totals.cost_micros,
        Measure::Tokens => totals.all_tokens(),
    }
}

/// Where `budget` stands at `now`: one standing, or one per member with
/// usage in the period or its history (each-member budgets).
pub fn standings(
    conn: &Connection,
    budget: &Budget,
    now: Timestamp,
) -> Result<Vec<Standing>, StatusError> {
    let zone = budget.time_zone();
    let window = budget.period.window_at(&zone, now)?;
    let history = forecast::history_ranges(now, &zone)?;
    let mut ranges = vec![(window.start_ms(), window.end_ms())];
    ranges.extend(history.iter().map(|(_, start, end)| (*start, *end)));
    let (scope, filters, by_user) = reach(budget);
    let groups = query::range_totals(conn, scope, &filters, by_user, &ranges)?;
    let names = if by_user {
        member_names(conn)?
    } else {
        HashMap::new()
    };
    let mut standings = Vec::with_capacity(groups.len());
    for (group, cells) in groups {
        let used = measured(budget.measure, &cells[0]);
        let days: Vec<forecast::DayUsage> = history
            .iter()
            .zip(&cells[1..])
            .map(|((day, _, _), cell)| (*day, measured(budget.measure, cell)))
            .collect();
        let member = by_user.then(|| {
            let name = names.get(&group).cloned().unwrap_or_default();
            (UserId(group), name)
        });
        standings.push(Standing {
            member,
            window,
            used,
            amount: budget.amount,
            forecast: forecast::project(used, now, &window, &zone, &days)?,
        });
    }
    Ok(standings)
}

fn member_names(conn: &Connection) -> Result<HashMap<i64, String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id, username FROM users")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The period's usage day by day, summed as it grew: what the budget's
/// chart draws (a solid line to today, then the forecast dashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burn {
    /// Each local day of the period, `2026-12-01`.
    pub days: Vec<String>,
    /// Used by the end of each day up to today (today: so far).
    pub used: Vec<i64>,
}

/// [`Burn`] of `budget` at `now`, for one member of an each-member budget
/// (`member`) or the whole scope.
pub fn burn(
    conn: &Connection,
    budget: &Budget,
    member: Option<UserId>,
    now: Timestamp,
) -> Result<Burn, StatusError> {
    use jiff::ToSpan;
    let zone = budget.time_zone();
    let window = budget.period.window_at(&zone, now)?;
    let mut day = window.start.to_zoned(zone.clone()).date();
    let mut days = Vec::new();
    let mut ranges = Vec::new();
    loop {
        let start = super::period::local_midnight(day, &zone)?;
        if start >= window.end {
            break;
        }
        let next = day.checked_add(1.day())?;
        let end = super::period::local_midnight(next, &zone)?.min(window.end);
        days.push(day.to_string());
        if start <= now {
            ranges.push((start.as_millisecond(), end.as_millisecond()));
        }
        day = next;
    }
    let (mut scope, filters, _) = reach(budget);
    if let Some(member) = member {
        scope = Scope::User(member);
    }
    let groups = query::range_totals(conn, scope, &filters, false, &ranges)?;
    let mut running = 0i64;
    let used = groups
        .first()
        .map(|(_, cells)| {
            cells
                .iter()
                .map(|cell| {
                    running = running.saturating_add(measured(budget.measure, cell));
                    running
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Burn { days, used })
}
