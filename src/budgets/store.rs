//! Every SQL statement on `budgets` and `budget_channels`, and the rules
//! of a budget: a valid name, zone, amount and thresholds, a scope that
//! names something that exists, and a bounded count.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::period::{Period, weekday_number, weekday_of_number};
use crate::db::DbError;
use crate::model::{TeamId, UserId};

/// The most budgets an instance keeps: each is evaluated on every ingest.
pub const MAX_BUDGETS: usize = 200;
/// The most thresholds a budget has.
pub const MAX_THRESHOLDS: usize = 10;
/// The highest threshold, in percent.
pub const MAX_THRESHOLD: i64 = 1_000;
/// The largest amount: a billion dollars in micro-units, or a quadrillion
/// tokens; far past any real budget, far below an overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// The thresholds a budget gets unless told otherwise.
pub const DEFAULT_THRESHOLDS: [i64; 3] = [50, 80, 100];

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Money, in micro-USD (shown in the instance's unit).
    Cost,
    /// Tokens of every kind.
    Tokens,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Cost => "cost",
            Measure::Tokens => "tokens",
        }
    }

    fn parse(name: &str) -> Measure {
        if name == "tokens" {
            Measure::Tokens
        } else {
            Measure::Cost
        }
    }
}

/// Whose usage a budget counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetScope {
    Everyone,
    /// A team's usage: its members' while they were in it.
    Team {
        id: TeamId,
        name: String,
    },
    User {
        id: UserId,
        name: String,
    },
    /// One model's usage, by name (it may have no event yet).
    Model(String),
    /// Each member's own usage against the same amount (not pooled).
    EachMember,
}

impl BudgetScope {
    /// As typed and shown: `everyone`, `team:T`, `user:U`, `model:M`,
    /// `each-member`.
    pub fn label(&self) -> String {
        match self {
            BudgetScope::Everyone => "everyone".to_owned(),
            BudgetScope::Team { name, .. } => format!("team:{name}"),
            BudgetScope::User { name, .. } => format!("user:{name}"),
            BudgetScope::Model(model) => format!("model:{model}"),
            BudgetScope::EachMember => "each-member".to_owned(),
        }
    }
}

/// A stored budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub id: i64,
    pub name: String,
    pub period: Period,
    pub zone: String,
    pub measure: Measure,
    pub amount: i64,
    pub scope: BudgetScope,
    /// Ascending percentages.
    pub thresholds: Vec<i64>,
    /// Channel ids its alerts go to.
    pub channels: Vec<i64>,
    pub created_by: Option<UserId>,
    pub revision: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Budget {
    /// Its settings as the audit trail and `budget list --json` give them.
    pub fn describe(&self) -> serde_json::Value {
        let week_start = match self.period {
            Period::Week { start } => Some(format!("{start:?}").to_lowercase()),
            _ => None,
        };
        let amount = match self.measure {
            Measure::Cost => crate::model::format::decimal(self.amount),
            Measure::Tokens => self.amount.to_string(),
        };
        serde_json::json!({
            "name": self.name,
            "period": self.period.name(),
            "week_start": week_start,
            "time_zone": self.zone,
            "measure": self.measure.name(),
            "amount": amount,
            "scope": self.scope.label(),
            "thresholds": self.thresholds,
        })
    }

    /// The zone of its period (UTC if the stored name is no longer known).
    pub fn time_zone(&self) -> TimeZone {
        TimeZone::get(&self.zone).unwrap_or(TimeZone::UTC)
    }
}

/// A budget to create, as typed (names not yet resolved).
#[derive(Debug, Clone)]
pub struct NewBudget {
    pub name: String,
    pub period: String,
    pub week_start: Weekday,
    pub zone: String,
    pub measure: Measure,
    pub amount: i64,
    /// `everyone`, `team:T`, `user:U`, `model:M` or `each-member`.
    pub scope: String,
    pub thresholds: Vec<i64>,
    /// Channel names.
    pub channels: Vec<String>,
    pub created_by: Option<UserId>,
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// A field a person typed is wrong: named, with the reason.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("a budget named {0:?} already exists")]
    Exists(String),
    #[error("no budget named {0:?}")]
    NotFound(String),
    #[error("there are {MAX_BUDGETS} budgets already, the most an instance may have")]
    TooMany,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for BudgetError {
    fn from(e: rusqlite::Error) -> Self {
        BudgetError::Db(DbError::from(e))
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> BudgetError {
    BudgetError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Thresholds as typed: `50,80,100`. Ascending, distinct, 1 to 1000.
pub fn parse_thresholds(text: &str) -> Result<Vec<i64>, BudgetError> {
    let mut values = Vec::new();
    for part in text.split(',') {
        let part = part.trim().trim_end_matches('%');
        let value: i64 = part
            .parse()
            .map_err(|_| invalid("thresholds", format!("{part:?} is not a whole percentage")))?;
        values.push(value);
    }
    check_thresholds(&values)?;
    Ok(values)
}

fn check_thresholds(values: &[i64]) -> Result<(), BudgetError> {
    if values.is_empty() || values.len() > MAX_THRESHOLDS {
        return Err(invalid(
            "thresholds",
            format!("give 1 to {MAX_THRESHOLDS} percentages"),
        ));
    }
    if values.iter().any(|v| !(1..=MAX_THRESHOLD).contains(v)) {
        return Err(invalid(
            "thresholds",
            format!("each is a percentage from 1 to {MAX_THRESHOLD}"),
        ));
    }
    if values.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(invalid(
            "thresholds",
            "list them in ascending order, each once",
        ));
    }
    Ok(())
}

/// The scope as stored: (kind, team, user, model).
type StoredScope = (&'static str, Option<i64>, Option<i64>, Option<String>);

fn resolve_scope(conn: &Connection, text: &str) -> Result<StoredScope, BudgetError> {
    let text = text.trim();
    let (kind, value) = text.split_once(':').unwrap_or((text, ""));
    let lookup = |sql: &str, what: &str| -> Result<i64, BudgetError> {
        conn.prepare_cached(sql)?
            .query_row([value], |row| row.get(0))
            .optional()?
            .ok_or_else(|| invalid("scope", format!("no {what} named {value:?}")))
    };
    match (kind, value.is_empty()) {
        ("everyone", true) => Ok(("everyone", None, None, None)),
        ("each-member", true) => Ok(("each_member", None, None, None)),
        ("team", false) => Ok((
            "team",
            Some(lookup("SELECT id FROM teams WHERE name = ?1", "team")?),
            None,
            None,
        )),
        ("user", false) => Ok((
            "user",
            None,
            Some(lookup(
                "SELECT id FROM users WHERE username = ?1",
                "person",
            )?),
            None,
        )),
        ("model", false) if value.chars().count() <= 256 && !value.contains(char::is_control) => {
            Ok(("model", None, None, Some(value.to_owned())))
        }
        _ => Err(invalid(
            "scope",
            "everyone, team:NAME, user:NAME, model:NAME or each-member",
        )),
    }
}

fn channel_ids(conn: &Connection, names: &[String]) -> Result<Vec<i64>, BudgetError> {
    let mut ids = Vec::new();
    for name in names {
        let id: i64 = conn
            .prepare_cached("SELECT id FROM channels WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?
            .ok_or_else(|| invalid("channel", format!("no channel named {name:?}")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Checks and stores a new budget; returns it.
pub fn create(conn: &Connection, new: &NewBudget, now_ms: i64) -> Result<Budget, BudgetError> {
    let name = new.name.trim();
    crate::model::team::check_name(name)
        .map_err(|_| invalid("name", "1 to 64 letters, digits, '.', '-', '_' or '@'"))?;
    let period = Period::parse(&new.period, new.week_start)
        .ok_or_else(|| invalid("period", "day, week or month"))?;
    TimeZone::get(&new.zone)
        .map_err(|_| invalid("time_zone", format!("{:?} is no IANA time zone", new.zone)))?;
    if !(1..=MAX_AMOUNT).contains(&new.amount) {
        return Err(invalid("amount", "more than zero, and at most a billion"));
    }
    check_thresholds(&new.thresholds)?;
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM budgets")?
        .query_row([], |row| row.get(0))?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_BUDGETS {
        return Err(BudgetError::TooMany);
    }
    if find(conn, name)?.is_some() {
        return Err(BudgetError::Exists(name.to_owned()));
    }
    let (scope, team, user, model) = resolve_scope(conn, &new.scope)?;
    let channels = channel_ids(conn, &new.channels)?;
    let thresholds = new
        .thresholds
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    conn.prepare_cached(
        "INSERT INTO budgets (name, period, week_start, time_zone, measure, amount, scope,
             team_id, user_id, model, thresholds, created_by, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
    )?
    .execute(params![
        name,
        period.name(),
        weekday_number(new.week_start),
        new.zone,
        new.measure.name(),
        new.amount,
        scope,
        team,
        user,
        model,
        thresholds,
        new.created_by.map(|u| u.0),
        now_ms,
    ])?;
    let id = conn.last_insert_rowid();
    for channel in channels {
        conn.prepare_cached("INSERT INTO budget_channels (budget_id, channel_id) VALUES (?1, ?2)")?
            .execute(params![id, channel])?;
    }
    get(conn, id)?.ok_or_else(|| BudgetError::NotFound(name.to_owned()))
}

/// Removes a budget by name; its alerts stay (with their own copy of what
/// they said). Returns the removed budget.
pub fn remove(conn: &Connection, name: &str) -> Result<Budget, BudgetError> {
    let budget = find(conn, name)?.ok_or_else(|| BudgetError::NotFound(name.to_owned()))?;
    conn.prepare_cached("DELETE FROM budgets WHERE id = ?1")?
        .execute([budget.id])?;
    Ok(budget)
}

const COLUMNS: &str = "b.id, b.name, b.period, b.week_start, b.time_zone, b.measure, b.amount,
     b.scope, b.team_id, t.name, b.user_id, u.username, b.model, b.thresholds, b.created_by,
     b.revision, b.created_ms, b.updated_ms,
     (SELECT group_concat(channel_id) FROM budget_channels bc WHERE bc.budget_id = b.id)";
const JOINS: &str = "budgets b LEFT JOIN teams t ON t.id = b.team_id
     LEFT JOIN users u ON u.id = b.user_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Budget> {
    let week_start = weekday_of_number(row.get(3)?).unwrap_or(Weekday::Monday);
    let period: String = row.get(2)?;
    let scope_kind: String = row.get(7)?;
    let scope = match scope_kind.as_str() {
        "team" => BudgetScope::Team {
            id: TeamId(row.get(8)?),
            name: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
        },
        "user" => BudgetScope::User {
            id: UserId(row.get(10)?),
            name: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
        },
        "model" => BudgetScope::Model(row.get::<_, Option<String>>(12)?.unwrap_or_default()),
        "each_member" => BudgetScope::EachMember,
        _ => BudgetScope::Everyone,
    };
    let thresholds: String = row.get(13)?;
    let channels: Option<String> = row.get(18)?;
    Ok(Budget {
        id: row.get(0)?,
        name: row.get(1)?,
        period: Period::parse(&period, week_start).unwrap_or(Period::Month),
        zone: row.get(4)?,
        measure: Measure::parse(&row.get::<_, String>(5)?),
        amount: row.get(6)?,
        scope,
        thresholds: thresholds
            .split(',')
            .filter_map(|t| t.parse().ok())
            .collect(),
        channels: channels
            .unwrap_or_default()
            .split(',')
            .filter_map(|c| c.parse().ok())
            .collect(),
        created_by: row.get::<_, Option<i64>>(14)?.map(UserId),
        revision: row.get(15)?,
        created_ms: row.get(16)?,
        updated_ms: row.get(17)?,
    })
}

/// Every budget, by name.
pub fn list(conn: &Connection) -> Result<Vec<Budget>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {JOINS} ORDER BY b.name COLLATE NOCASE"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Budget>, DbError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM {JOINS} WHERE b.id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

pub fn find(conn: &Connection, name: &str) -> Result<Option<Budget>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {JOINS} WHERE b.name = ?1 COLLATE NOCASE"
        ))?
        .query_row([name.trim()], from_row)
        .optional()?)
}
