//! Finding and repairing what the per-event limits ([`super::limits`])
//! forbid but a database written by an older release can hold: events with
//! counts or costs above the maximums, and rollup cells past the largest
//! sum such events can make (a month "poisoned" for everyone).
//!
//! `tokentally verify` reports both; `tokentally verify --repair` writes
//! the offending events to a JSONL file in the event format (so that they
//! can be corrected and imported again), deletes them, rebuilds every
//! rollup table from the remaining events with the same `GROUP BY` that
//! `verify` checks against, and records what it did in the audit trail —
//! all in one transaction.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::{Value, json};

use super::limits::{MAX_COST_MICROS, MAX_TOKENS};
use super::rollup::{Level, METRIC_COLUMN_NAMES, rebuild_sql};
use crate::db::DbError;

pub use super::limits::MAX_REACHABLE_SUM;

const OVER_LIMITS: &str = "input_tokens > ?1 OR output_tokens > ?1 OR cache_read_tokens > ?1 \
                           OR cache_write_tokens > ?1 OR cost_micros > ?2";

/// What `verify` found out of range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Events above a per-event maximum.
    pub events_over_limits: i64,
    /// Their ids (source/user/id), the first few.
    pub examples: Vec<String>,
    /// Rollup cells out of range (negative or past any reachable sum).
    pub cells_out_of_range: i64,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.events_over_limits == 0 && self.cells_out_of_range == 0
    }
}

/// Looks for events over the limits and cells out of range.
pub fn find(conn: &Connection) -> Result<Findings, DbError> {
    let events_over_limits: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM events WHERE {OVER_LIMITS}"),
        [MAX_TOKENS, MAX_COST_MICROS],
        |row| row.get(0),
    )?;
    let examples = examples(conn, events_over_limits)?;
    let mut cells_out_of_range = 0;
    for level in Level::ALL {
        let out_of_range = METRIC_COLUMN_NAMES
            .iter()
            .map(|c| format!("{c} < 0 OR {c} > {MAX_REACHABLE_SUM}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let count: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM {} WHERE {out_of_range}",
                level.table()
            ),
            [],
            |row| row.get(0),
        )?;
        cells_out_of_range += count;
    }
    Ok(Findings {
        events_over_limits,
        examples,
        cells_out_of_range,
    })
}

/// [`Findings`] from the counts `rollup::check` made in its one pass
/// (`tokentally verify`), with the examples looked up when there are any.
pub fn findings_of(
    conn: &Connection,
    checked: &super::rollup::Checked,
) -> Result<Findings, DbError> {
    Ok(Findings {
        events_over_limits: checked.events_over_limits,
        examples: examples(conn, checked.events_over_limits)?,
        cells_out_of_range: checked.cells_out_of_range,
    })
}

/// The ids (source/user/id) of the first few events over the limits.
fn examples(conn: &Connection, events_over_limits: i64) -> Result<Vec<String>, DbError> {
    if events_over_limits == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT s.name || '/' || u.username || '/' || e.external_id FROM events e
         JOIN sources s ON s.id = e.source_id JOIN users u ON u.id = e.user_id
         WHERE {OVER_LIMITS} LIMIT 5"
    ))?;
    let rows = stmt.query_map([MAX_TOKENS, MAX_COST_MICROS], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What `--repair` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub removed_events: usize,
    /// Where the removed events were written (none removed: no file).
    pub removed_to: Option<PathBuf>,
}

/// Removes the events over the limits (written first to a JSONL file in
/// `dir`, named by `now_ms`) and rebuilds every rollup table. Runs in the
/// caller's transaction.
pub fn repair(conn: &Connection, dir: &Path, now_ms: i64) -> Result<Repaired, DbError> {
    let removed = over_limits(conn)?;
    let removed_to = if removed.is_empty() {
        None
    } else {
        let path = dir.join(format!("removed-events-{now_ms}.jsonl"));
        write_jsonl(&path, &removed)
            .map_err(|e| DbError::Refused(format!("cannot write {}: {e}", path.display())))?;
        conn.execute(
            &format!("DELETE FROM events WHERE {OVER_LIMITS}"),
            [MAX_TOKENS, MAX_COST_MICROS],
        )?;
        Some(path)
    };
    for level in Level::ALL {
        conn.execute(&format!("DELETE FROM {}", level.table()), [])?;
        conn.execute_batch(&rebuild_sql(level))?;
    }
    // The rebuild read every event, the tail's too.
    super::rollup::mark_all_folded(conn)?;
    crate::audit::record_cli(
        conn,
        crate::model::Action::DataRepair,
        "rollups",
        json!({
            "removed_events": removed.len(),
            "removed_to": removed_to.as_ref().map(|p| p.display().to_string()),
        }),
    )?;
    Ok(Repaired {
        removed_events: removed.len(),
        removed_to,
    })
}

/// The events over the limits, in the event format (user by name).
fn over_limits(conn: &Connection) -> Result<Vec<Value>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT e.external_id, e.ts_ms, u.username, m.name, p.name, a.name, j.name, s.name,
                e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens,
                e.cost_micros, e.cost_origin
         FROM events e JOIN users u ON u.id = e.user_id JOIN models m ON m.id = e.model_id
         JOIN sources s ON s.id = e.source_id LEFT JOIN providers p ON p.id = e.provider_id
         LEFT JOIN activities a ON a.id = e.activity_id LEFT JOIN projects j ON j.id = e.project_id
         WHERE {OVER_LIMITS} ORDER BY e.id"
    ))?;
    let rows = stmt.query_map([MAX_TOKENS, MAX_COST_MICROS], |row| {
        let ts_ms: i64 = row.get(1)?;
        let timestamp = jiff::Timestamp::from_millisecond(ts_ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| ts_ms.to_string());
        // A reported cost is the producer's; a computed one is not sent.
        let cost = (row.get::<_, i64>(13)? == 2)
            .then(|| crate::model::format::decimal(row.get(12).unwrap_or_default()));
        Ok(json!({
            "id": row.get::<_, String>(0)?, "timestamp": timestamp,
            "user": row.get::<_, String>(2)?, "model": row.get::<_, String>(3)?,
            "provider": row.get::<_, Option<String>>(4)?,
            "activity": row.get::<_, Option<String>>(5)?,
            "project": row.get::<_, Option<String>>(6)?,
            "source": row.get::<_, String>(7)?,
            "input_tokens": row.get::<_, i64>(8)?, "output_tokens": row.get::<_, i64>(9)?,
            "cache_read_tokens": row.get::<_, i64>(10)?,
            "cache_write_tokens": row.get::<_, i64>(11)?,
            "cost": cost,
        }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn write_jsonl(path: &Path, events: &[Value]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?,
    );
    for event in events {
        serde_json::to_writer(&mut file, event)?;
        file.write_all(b"\n")?;
    }
    file.into_inner()?.sync_all()
}
