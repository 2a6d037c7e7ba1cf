//! `tokentally budget …`: budgets from the shell. A running server picks
//! them up on its next evaluation (they are read from the database each
//! time). Every change is audited in its transaction.

use std::path::Path;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::usage::{UsageCommandError, open};
use crate::audit;
use crate::budgets::Standing;
use crate::budgets::period::parse_weekday;
use crate::budgets::status::{StatusError, standings};
use crate::budgets::store::{self, Budget, BudgetError, Measure, NewBudget};
use crate::budgets::watch;
use crate::db::{Db, DbError};
use crate::model::format::decimal;
use crate::model::{Action, Unit};

#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Set a budget: an amount of money (US dollars, like prices) or of
    /// tokens per day, week or month, for a scope
    Add(AddArgs),
    /// List budgets: used, remaining, percentage, projection and the next
    /// reset
    List {
        /// JSON, one object per budget
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        unit: super::unit::UnitArgs,
    },
    /// Remove a budget (its past alerts stay)
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Its name: letters, digits, '.', '-', '_' or '@'
    pub name: String,
    /// day, week or month (calendar periods in --time-zone)
    #[arg(long)]
    pub period: String,
    /// Money per period, in US dollars (e.g. 250 or 99.5)
    #[arg(long, conflicts_with = "tokens", required_unless_present = "tokens")]
    pub amount: Option<String>,
    /// Tokens per period (every kind counted)
    #[arg(long)]
    pub tokens: Option<i64>,
    /// everyone, team:NAME, user:NAME, model:NAME or each-member (the
    /// same amount for each member on their own)
    #[arg(long, default_value = "everyone")]
    pub scope: String,
    /// IANA time zone of the period's edges; default: the instance's
    /// (`time_zone` in the configuration, TOKENTALLY_TIME_ZONE), else UTC
    #[arg(long, env = "TOKENTALLY_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// The first day of a week (monday … sunday)
    #[arg(long, default_value = "monday")]
    pub week_start: String,
    /// Percentages that alert, ascending
    #[arg(long, default_value = "50,80,100")]
    pub thresholds: String,
    /// A channel its alerts go to (repeat for several)
    #[arg(long = "channel")]
    pub channels: Vec<String>,
    /// Also alert for thresholds the period has already passed (by
    /// default they are recorded quietly: only later crossings alert)
    #[arg(long)]
    pub alert_past: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetCommandError {
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Open(#[from] UsageCommandError),
    #[error(transparent)]
    Status(#[from] StatusError),
}

impl From<DbError> for BudgetCommandError {
    fn from(e: DbError) -> Self {
        BudgetCommandError::Budget(BudgetError::Db(e))
    }
}

/// What the instance's configuration gives the commands: the unit money
/// is shown in (`list`) and the zone of a budget given none.
pub struct Instance {
    pub unit: Unit,
    pub time_zone: Option<String>,
}

pub async fn run(
    command: BudgetCommand,
    db_path: &Path,
    instance: Instance,
) -> Result<(), BudgetCommandError> {
    let db = open(db_path).await?;
    let outcome = dispatch(&db, command, instance).await;
    db.shutdown().await;
    outcome
}

fn new_budget(args: AddArgs, zone: Option<String>) -> Result<(NewBudget, bool), BudgetError> {
    let AddArgs {
        name,
        period,
        amount,
        tokens,
        scope,
        time_zone,
        week_start,
        thresholds,
        channels,
        alert_past,
    } = args;
    let invalid = |field, reason: String| BudgetError::Invalid { field, reason };
    let (measure, amount) = match (amount, tokens) {
        (Some(text), _) => (
            Measure::Cost,
            crate::usage::prices::parse_micros(&text).map_err(|r| invalid("amount", r))?,
        ),
        (None, Some(tokens)) => (Measure::Tokens, tokens),
        (None, None) => return Err(invalid("amount", "give --amount or --tokens".into())),
    };
    let week_start = parse_weekday(&week_start)
        .ok_or_else(|| invalid("week_start", "a weekday: monday … sunday".into()))?;
    Ok((
        NewBudget {
            name,
            period,
            week_start,
            zone: time_zone.or(zone).unwrap_or_else(|| "UTC".to_owned()),
            measure,
            amount,
            scope,
            thresholds: store::parse_thresholds(&thresholds)?,
            channels,
            created_by: None,
        },
        alert_past,
    ))
}

async fn dispatch(
    db: &Db,
    command: BudgetCommand,
    instance: Instance,
) -> Result<(), BudgetCommandError> {
    let now = Timestamp::now();
    match command {
        BudgetCommand::Add(args) => {
            let (new, alert_past) = new_budget(args, instance.time_zone)?;
            let (budget, passed) = db
                .write(move |conn| {
                    let budget = store::create(conn, &new, now.as_millisecond())?;
                    let passed = if alert_past {
                        watch::evaluate(conn, &budget, now, false)?
                    } else {
                        watch::settle(conn, &budget, now)?
                    };
                    let target = format!("budget:{}", budget.name);
                    audit::record_cli(conn, Action::BudgetCreate, target, budget.describe())?;
                    Ok::<_, BudgetError>((budget, passed))
                })
                .await?;
            println!("created budget {}", budget.name);
            if passed > 0 {
                let how = if alert_past {
                    "alerting now"
                } else {
                    "recorded without alerting"
                };
                println!("{passed} thresholds already passed this period: {how}");
            }
        }
        BudgetCommand::List { json, .. } => {
            let rows = db
                .read(move |conn| {
                    let mut rows = Vec::new();
                    for budget in store::list(conn)? {
                        let standing = standings(conn, &budget, now)?;
                        rows.push((budget, standing));
                    }
                    Ok::<_, BudgetCommandError>(rows)
                })
                .await?;
            for (budget, standing) in &rows {
                print_budget(budget, standing, &instance.unit, json);
            }
        }
        BudgetCommand::Remove { name } => {
            let removed = db
                .write(move |conn| {
                    let budget = store::remove(conn, &name)?;
                    let target = format!("budget:{}", budget.name);
                    audit::record_cli(conn, Action::BudgetRemove, target, budget.describe())?;
                    Ok::<_, BudgetError>(budget)
                })
                .await?;
            println!("removed budget {} (its past alerts stay)", removed.name);
        }
    }
    Ok(())
}

fn amount_text(measure: Measure, value: i64) -> String {
    match measure {
        Measure::Cost => decimal(value),
        Measure::Tokens => value.to_string(),
    }
}

fn shown(measure: Measure, value: i64, unit: &Unit) -> String {
    match measure {
        Measure::Cost => unit.money(value),
        Measure::Tokens => format!("{} tokens", crate::model::format::integer(value)),
    }
}

fn print_budget(budget: &Budget, standings: &[Standing], unit: &Unit, json: bool) {
    let zone = budget.time_zone();
    if json {
        let rows: Vec<Value> = standings
            .iter()
            .map(|s| {
                json!({
                    "member": s.member.as_ref().map(|(_, name)| name),
                    "period_start": s.window.start.to_string(),
                    "period_end": s.window.end.to_string(),
                    "used": amount_text(budget.measure, s.used),
                    "remaining": amount_text(budget.measure, s.remaining()),
                    "percent": s.basis_points() as f64 / 100.0,
                    "projected": s.forecast.map(|f| amount_text(budget.measure, f.projected)),
                    "resets_at": s.window.end.to_string(),
                })
            })
            .collect();
        let mut line = budget.describe();
        line["standing"] = Value::Array(rows);
        line["unit"] = json!(unit);
        println!("{line}");
        return;
    }
    println!(
        "{} — {} per {} ({}, {})",
        budget.name,
        shown(budget.measure, budget.amount, unit),
        budget.period.name(),
        budget.scope.label(),
        budget.zone
    );
    if standings.is_empty() {
        println!("  no usage this period");
    }
    for s in standings {
        let who = s
            .member
            .as_ref()
            .map(|(_, name)| format!("{name}: "))
            .unwrap_or_default();
        let projected = s
            .forecast
            .map(|f| format!(", projected {}", shown(budget.measure, f.projected, unit)))
            .unwrap_or_default();
        let resets = s.window.end.to_zoned(zone.clone());
        println!(
            "  {who}used {} ({}.{:02} %), {} left{projected}; resets {}",
            shown(budget.measure, s.used, unit),
            s.basis_points() / 100,
            s.basis_points() % 100,
            shown(budget.measure, s.remaining(), unit),
            resets.strftime("%b %-d %H:%M %Z"),
        );
    }
}
