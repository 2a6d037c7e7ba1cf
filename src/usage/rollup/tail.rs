//! The watermark and the roller: rollups lag the raw events.
//!
//! An acknowledged event is only written to `events` (and its indexes);
//! [`roll`] later folds the events past the watermark into the rollup
//! tables, in large chunks, and moves the watermark in the same
//! transaction. Large chunks are the point: a chunk of live traffic holds
//! many events per rollup row, so one upsert stands for many events, and
//! the acknowledging transaction writes no rollup row at all (the upserts
//! were two thirds of the writer's time: BENCHMARKS.md "HTTP ingest").
//!
//! Reads stay exact: they take the watermark and the rollups in one
//! snapshot and add the events past it (the tail, see `usage::cells`).
//!
//! **Invariant**: the rollups hold exactly the events whose id is at most
//! the watermark. Writers that change or remove stored events first fold
//! the whole tail ([`roll_all`]) so that their deltas meet rollups that
//! hold every event; an insert that gets an id at or below the watermark
//! (the highest ids were deleted, so SQLite reused one) is folded at once
//! by the inserter.

use rusqlite::{Connection, OptionalExtension};

use super::{CostOrigin, Delta, DimValues, apply, event_metrics};
use crate::db::{Db, DbError};

/// Events folded per transaction by the server's roller: large enough
/// that a chunk of live traffic shares rollup rows, small enough that the
/// writer answers queued acknowledgements within a fraction of a second.
pub const CHUNK: usize = 50_000;

/// The highest event id the rollups hold.
pub fn watermark(conn: &Connection) -> Result<i64, DbError> {
    let id = conn
        .prepare_cached("SELECT event_id FROM rollup_watermark WHERE id = 1")?
        .query_row([], |row| row.get(0))
        .optional()?;
    // The migration writes the row; a database without it is damaged.
    id.ok_or_else(|| DbError::Check("the rollup watermark is missing".to_owned()))
}

fn set_watermark(conn: &Connection, event_id: i64) -> Result<(), DbError> {
    conn.prepare_cached("UPDATE rollup_watermark SET event_id = ?1 WHERE id = 1")?
        .execute([event_id])?;
    Ok(())
}

/// How many events lie past the watermark (what reads add from the raw
/// rows).
pub fn tail_len(conn: &Connection) -> Result<i64, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM events WHERE id > (SELECT event_id FROM rollup_watermark)",
        )?
        .query_row([], |row| row.get(0))?)
}

/// Folds up to `limit` events past the watermark into the rollups and
/// moves the watermark past them. Runs in the caller's transaction.
/// Returns the number of events folded (0: nothing was waiting).
pub fn roll(conn: &Connection, limit: usize) -> Result<usize, DbError> {
    let from = watermark(conn)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, ts_ms, user_id, model_id, COALESCE(activity_id, 0),
                COALESCE(project_id, 0), source_id, COALESCE(provider_id, 0),
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                cost_micros, cost_origin
         FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query([from, limit])?;
    let mut deltas = Vec::new();
    let mut last = from;
    while let Some(row) = rows.next()? {
        last = row.get(0)?;
        deltas.push(delta_of_row(row)?);
    }
    if deltas.is_empty() {
        return Ok(0);
    }
    apply(conn, &deltas)?;
    set_watermark(conn, last)?;
    Ok(deltas.len())
}

/// Folds every event past the watermark. Runs in the caller's
/// transaction: what writers that change stored events call first.
pub fn roll_all(conn: &Connection) -> Result<usize, DbError> {
    let mut folded = 0;
    loop {
        match roll(conn, CHUNK)? {
            0 => return Ok(folded),
            n => folded += n,
        }
    }
}

/// Whether events wait past the watermark (a seek on the rowid).
pub fn pending(conn: &Connection) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM events
                            WHERE id > (SELECT event_id FROM rollup_watermark))",
        )?
        .query_row([], |row| row.get(0))?)
}

/// Folds every event past the watermark, `chunk` events per transaction
/// of the writer (other writes interleave between chunks): the server's
/// roller, and commands that wrote events before they exit.
pub async fn fold_pending(db: &Db, chunk: usize) -> Result<usize, DbError> {
    let mut folded = 0;
    loop {
        match db.write(move |conn| roll(conn, chunk)).await? {
            0 => return Ok(folded),
            n => folded += n,
        }
    }
}

/// Marks every stored event as folded: after the rollups were rebuilt from
/// all of them. Never lowers the watermark (ids at or below it may have
/// been deleted; the rebuild holds none of them).
pub fn mark_all_folded(conn: &Connection) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE rollup_watermark
         SET event_id = MAX(event_id, (SELECT COALESCE(MAX(id), 0) FROM events))
         WHERE id = 1",
    )?
    .execute([])?;
    Ok(())
}

/// The rollup delta of one `events` row as [`roll`] selects it.
fn delta_of_row(row: &rusqlite::Row<'_>) -> Result<Delta, DbError> {
    let tokens = [row.get(8)?, row.get(9)?, row.get(10)?, row.get(11)?];
    let origin = CostOrigin::from_column(row.get(13)?);
    Ok(Delta {
        ts_ms: row.get(1)?,
        dims: DimValues {
            user: row.get(2)?,
            model: row.get(3)?,
            activity: row.get(4)?,
            project: row.get(5)?,
            source: row.get(6)?,
            provider: row.get(7)?,
        },
        metrics: event_metrics(&tokens, row.get(12)?, origin),
    })
}
