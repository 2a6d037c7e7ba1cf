//! The usage part of `/metrics`: tokens, cost and events by user and
//! model over the current UTC month, and how much of each budget is used.
//!
//! # Cardinality
//!
//! At most [`TOP`] users × [`TOP`] models (the largest by cost over the
//! month), plus `user="other"` and `model="other"` holding the rest
//! summed, so a series count is at most `(TOP + 1)²` per metric whatever
//! the number of users and models; the sum of every series is the
//! month's total. Budget ratios: one series per budget, and for an
//! each-member budget the [`TOP`] members with the largest share used
//! (the rest are left out; `tokentally_budget_members` says how many
//! there are).
//!
//! Read from the rollups: [`TOP`] + 3 reads of one month each, a few rows
//! per group, whatever the number of events.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::Connection;

use super::label;
use crate::budgets::{self, Standing};
use crate::db::DbError;
use crate::model::{Scope, Totals};
use crate::usage::query::{self, Filters, QueryError};
use crate::usage::rollup::Dim;

/// Users and models kept by name; the rest are `other`.
pub const TOP: usize = 20;
/// The label of what the cap sums.
pub const OTHER: &str = "other";

/// The current UTC month at `now`, `[start, end)`.
pub fn month(now: Timestamp) -> Result<(Timestamp, Timestamp), jiff::Error> {
    let first = now.to_zoned(TimeZone::UTC).date().first_of_month();
    let start = first.to_zoned(TimeZone::UTC)?.timestamp();
    let end = first
        .checked_add(jiff::Span::new().months(1))?
        .to_zoned(TimeZone::UTC)?
        .timestamp();
    Ok((start, end))
}

fn refused(e: impl std::fmt::Display) -> DbError {
    DbError::Refused(e.to_string())
}

fn db(e: QueryError) -> DbError {
    match e {
        QueryError::Db(e) => e,
        other => refused(other),
    }
}

/// (user, model) → totals over `[from, to)`, capped at [`TOP`] × [`TOP`].
pub fn grid(
    conn: &Connection,
    from: Timestamp,
    to: Timestamp,
) -> Result<BTreeMap<(String, String), Totals>, DbError> {
    let all = Filters::default();
    let top_users =
        query::top(conn, Scope::Everyone, from, to, &all, Dim::User, TOP).map_err(db)?;
    let top_models =
        query::top(conn, Scope::Everyone, from, to, &all, Dim::Model, TOP).map_err(db)?;
    let kept_models: Vec<&str> = top_models.rows.iter().map(|(m, _)| m.as_str()).collect();
    let model_label = |model: &str| {
        if kept_models.contains(&model) {
            model.to_owned()
        } else {
            OTHER.to_owned()
        }
    };
    let mut grid: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let mut add = |user: &str, model: String, totals: &Totals| -> Result<(), DbError> {
        grid.entry((user.to_owned(), model))
            .or_default()
            .checked_add(totals)
            .map_err(refused)
    };
    // Each kept user by model; what they leave of each model is the others'.
    let mut by_model: HashMap<String, Totals> = HashMap::new();
    // `top` reads every group anyway; no limit keeps them all.
    let every_model = usize::MAX;
    for (model, totals) in query::top(
        conn,
        Scope::Everyone,
        from,
        to,
        &all,
        Dim::Model,
        every_model,
    )
    .map_err(db)?
    .rows
    {
        by_model.insert(model, totals);
    }
    for (user, _) in &top_users.rows {
        let filters = Filters {
            users: vec![user.clone()],
            ..Filters::default()
        };
        let models = query::top(
            conn,
            Scope::Everyone,
            from,
            to,
            &filters,
            Dim::Model,
            every_model,
        )
        .map_err(db)?;
        for (model, totals) in models.rows {
            if let Some(rest) = by_model.get_mut(&model) {
                rest.checked_add_signed(&totals, -1).map_err(refused)?;
            }
            add(user, model_label(&model), &totals)?;
        }
    }
    if top_users.other.is_some() {
        for (model, rest) in by_model {
            if rest.calls != 0 {
                add(OTHER, model_label(&model), &rest)?;
            }
        }
    }
    Ok(grid)
}

/// (budget, member or "", used ÷ amount).
pub type Ratio = (String, String, f64);

/// The budgets' part of the exposition.
pub struct BudgetSeries {
    pub ratios: Vec<Ratio>,
    /// (budget, standings it has).
    pub members: Vec<(String, usize)>,
}

/// Prints one value of a total.
type Value = fn(&Totals) -> String;

/// Every budget's standings: (budget name, member or "", used / amount),
/// each-member budgets capped at [`TOP`] members; and each budget's
/// member count.
pub fn budget_ratios(conn: &Connection, now: Timestamp) -> Result<BudgetSeries, DbError> {
    let mut ratios = Vec::new();
    let mut members = Vec::new();
    for budget in budgets::store::list(conn)? {
        let mut standings: Vec<Standing> = budgets::standings(conn, &budget, now)?;
        standings.sort_by_key(|s| std::cmp::Reverse(s.basis_points()));
        members.push((budget.name.clone(), standings.len()));
        for standing in standings.iter().take(TOP) {
            let member = standing
                .member
                .as_ref()
                .map(|(_, name)| name.clone())
                .unwrap_or_default();
            let ratio = standing.used as f64 / standing.amount.max(1) as f64;
            ratios.push((budget.name.clone(), member, ratio));
        }
    }
    Ok(BudgetSeries { ratios, members })
}

/// The usage section of the exposition, at `now`.
pub fn render(conn: &Connection, now: Timestamp) -> Result<String, DbError> {
    let (from, to) = month(now).map_err(refused)?;
    let grid = grid(conn, from, to)?;
    let BudgetSeries { ratios, members } = budget_ratios(conn, now)?;
    let mut out = String::new();
    let window = format!("the current UTC month (from {from})");
    let series: [(&str, &str, Value); 3] = [
        ("tokentally_usage_tokens", "Tokens (all four kinds)", |t| {
            t.all_tokens().to_string()
        }),
        ("tokentally_usage_cost_usd", "Cost in US dollars", |t| {
            format!("{:.6}", t.cost_micros as f64 / 1e6)
        }),
        ("tokentally_usage_events", "Events", |t| t.calls.to_string()),
    ];
    for (name, what, value) in series {
        let _ = writeln!(
            out,
            "# HELP {name} {what} by user and model over {window}; the {TOP} largest users and models by cost, the rest as \"{OTHER}\".\n# TYPE {name} gauge"
        );
        for ((user, model), totals) in &grid {
            let _ = writeln!(
                out,
                "{name}{{user=\"{}\",model=\"{}\"}} {}",
                label(user),
                label(model),
                value(totals)
            );
        }
    }
    out.push_str("# HELP tokentally_budget_used_ratio Used share of each budget's current period (1 = all of it); each-member budgets: the members with the largest share.\n# TYPE tokentally_budget_used_ratio gauge\n");
    for (budget, member, ratio) in &ratios {
        let _ = writeln!(
            out,
            "tokentally_budget_used_ratio{{budget=\"{}\",member=\"{}\"}} {ratio}",
            label(budget),
            label(member)
        );
    }
    out.push_str("# HELP tokentally_budget_members Standings of each budget (members with usage, for each-member budgets; else 1).\n# TYPE tokentally_budget_members gauge\n");
    for (budget, count) in &members {
        let _ = writeln!(
            out,
            "tokentally_budget_members{{budget=\"{}\"}} {count}",
            label(budget)
        );
    }
    Ok(out)
}
