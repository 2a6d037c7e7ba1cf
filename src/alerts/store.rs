//! The alerts outbox: recording an alert with its deliveries in the
//! caller's transaction, and reading alerts back for the pages.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::db::DbError;
use crate::model::UserId;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A budget's threshold (a percentage) was reached.
    Threshold,
    /// The forecast for the period's end is past the budget.
    Projected,
    /// A user's usage in the last hour is far above their own baseline.
    Unusual,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Threshold => "threshold",
            AlertKind::Projected => "projected",
            AlertKind::Unusual => "unusual",
        }
    }

    pub fn parse(name: &str) -> Option<AlertKind> {
        match name {
            "threshold" => Some(AlertKind::Threshold),
            "projected" => Some(AlertKind::Projected),
            "unusual" => Some(AlertKind::Unusual),
            _ => None,
        }
    }
}

/// Where one delivery goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A channel an admin configured (by id).
    Channel(i64),
    /// A person's own email address (their budget's alerts).
    Email(String),
}

/// An alert to record.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub budget_id: Option<i64>,
    /// The person it is about, if one (each-member and user budgets,
    /// unusual usage).
    pub user: Option<UserId>,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    /// The percentage reached (threshold alerts), 100 for a projection, 0
    /// otherwise.
    pub threshold: i64,
    /// `cost` (micro-USD) or `tokens`.
    pub measure: &'static str,
    pub used: i64,
    pub amount: Option<i64>,
    pub projected: Option<i64>,
    /// What it says beyond the numbers (budget name, scope, source…),
    /// kept as it was when recorded.
    pub details: Value,
    /// Unique per thing alerted about; see the module docs.
    pub idempotency_key: String,
    /// Recorded as done without being sent (a threshold passed before the
    /// budget was set or changed).
    pub quiet: bool,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub kind: AlertKind,
    pub budget_id: Option<i64>,
    pub user: Option<UserId>,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    pub threshold: i64,
    pub measure: String,
    pub used: i64,
    pub amount: Option<i64>,
    pub projected: Option<i64>,
    pub details: Value,
    pub idempotency_key: String,
    pub quiet: bool,
    pub created_ms: i64,
}

/// Records `alert` and a delivery to each of `destinations` (none when it
/// is quiet), in the caller's transaction. Returns its id, or `None` when
/// an alert with the same key was recorded before (nothing is written).
pub fn record(
    conn: &Connection,
    alert: &NewAlert,
    destinations: &[Destination],
    now_ms: i64,
) -> Result<Option<i64>, DbError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO alerts (kind, budget_id, user_id, period_start_ms, period_end_ms,
                 threshold, measure, used, amount, projected, details, idempotency_key, quiet,
                 created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )?
        .execute(params![
            alert.kind.name(),
            alert.budget_id,
            alert.user.map(|u| u.0),
            alert.period_start_ms,
            alert.period_end_ms,
            alert.threshold,
            alert.measure,
            alert.used,
            alert.amount,
            alert.projected,
            alert.details.to_string(),
            alert.idempotency_key,
            alert.quiet,
            now_ms,
        ])?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = conn.last_insert_rowid();
    if !alert.quiet {
        for destination in destinations {
            let (channel, email) = match destination {
                Destination::Channel(id) => (Some(*id), None),
                Destination::Email(address) => (None, Some(address.as_str())),
            };
            conn.prepare_cached(
                "INSERT INTO alert_deliveries (alert_id, channel_id, email, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![id, channel, email, now_ms])?;
        }
    }
    Ok(Some(id))
}

/// Whether an alert with this key was recorded.
pub fn exists(conn: &Connection, key: &str) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM alerts WHERE idempotency_key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

const COLUMNS: &str = "id, kind, budget_id, user_id, period_start_ms, period_end_ms, threshold,
                       measure, used, amount, projected, details, idempotency_key, quiet,
                       created_ms";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    let kind: String = row.get(1)?;
    let details: String = row.get(11)?;
    Ok(AlertRow {
        id: row.get(0)?,
        kind: AlertKind::parse(&kind).unwrap_or(AlertKind::Threshold),
        budget_id: row.get(2)?,
        user: row.get::<_, Option<i64>>(3)?.map(UserId),
        period_start_ms: row.get(4)?,
        period_end_ms: row.get(5)?,
        threshold: row.get(6)?,
        measure: row.get(7)?,
        used: row.get(8)?,
        amount: row.get(9)?,
        projected: row.get(10)?,
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
        idempotency_key: row.get(12)?,
        quiet: row.get(13)?,
        created_ms: row.get(14)?,
    })
}

/// The newest `limit` alerts that were sent (not quiet), for everyone
/// (`user` is `None`) or about one person; newest first.
pub fn recent(
    conn: &Connection,
    user: Option<UserId>,
    limit: usize,
) -> Result<Vec<AlertRow>, DbError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match user {
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM alerts WHERE quiet = 0 ORDER BY id DESC LIMIT ?1"
            ))?
            .query_map([limit], from_row)?
            .collect::<Result<Vec<_>, _>>()?,
        Some(user) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM alerts WHERE quiet = 0 AND user_id = ?1
                 ORDER BY id DESC LIMIT ?2"
            ))?
            .query_map(params![user.0, limit], from_row)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(rows)
}

/// The alert with row id `id`.
pub fn by_id(conn: &Connection, id: i64) -> Result<Option<AlertRow>, DbError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Delivered, waiting (never tried), retrying (tried, failed) and given
/// up (failed for the whole retry window) deliveries of an alert.
pub type DeliveryCounts = (i64, i64, i64, i64);

/// The newest `limit` alerts that were sent (not quiet), newest first,
/// each with its deliveries' state.
pub fn recent_with_deliveries(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<(AlertRow, DeliveryCounts, Option<String>)>, DbError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS},
            (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_id = a.id
               AND d.delivered_ms IS NOT NULL),
            (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_id = a.id
               AND d.delivered_ms IS NULL AND d.attempts = 0 AND d.given_up_ms IS NULL),
            (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_id = a.id
               AND d.delivered_ms IS NULL AND d.attempts > 0 AND d.given_up_ms IS NULL),
            (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_id = a.id
               AND d.given_up_ms IS NOT NULL),
            (SELECT d.last_error FROM alert_deliveries d WHERE d.alert_id = a.id
               AND d.last_error IS NOT NULL LIMIT 1)
         FROM alerts a WHERE quiet = 0 ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], |row| {
        Ok((
            from_row(row)?,
            (row.get(15)?, row.get(16)?, row.get(17)?, row.get(18)?),
            row.get(19)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A person's own address for their alerts: `None` when unset, empty,
/// or the account is disabled.
pub fn email_of(conn: &Connection, user: UserId) -> Result<Option<String>, DbError> {
    Ok(conn
        .prepare_cached("SELECT email FROM users WHERE id = ?1 AND disabled = 0")?
        .query_row([user.0], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten()
        .filter(|email| !email.is_empty()))
}
