//! The rollups as a plain `GROUP BY` over the raw events, written
//! independently of [`apply`]: what `--repair` rebuilds a level with, and
//! the oracle the streaming check is tested against ([`verify_sql`]).
//!
//! [`apply`]: crate::usage::rollup::apply

use rusqlite::Connection;

use super::Mismatch;
use crate::db::DbError;
use crate::usage::rollup::{Cuboid, Dim, Level, METRIC_COLUMNS};

/// The SQL expression, over `events`, of a level's period and slot.
fn event_time_sql(level: Level) -> (&'static str, &'static str) {
    match level {
        // Whole months since 1970-01, from SQLite's own calendar, as an
        // independent check of `month_of_day`.
        Level::Month => (
            "(CAST(strftime('%Y', ts_ms / 1000, 'unixepoch') AS INTEGER) - 1970) * 12 \
             + CAST(strftime('%m', ts_ms / 1000, 'unixepoch') AS INTEGER) - 1",
            "0",
        ),
        Level::Day => ("ts_ms / 86400000", "0"),
        Level::Block => ("ts_ms / 86400000", "(ts_ms % 86400000) / 14400000"),
        Level::Hour => ("ts_ms / 86400000", "(ts_ms % 86400000) / 3600000"),
        Level::Quarter => ("ts_ms / 86400000", "(ts_ms % 86400000) / 900000"),
    }
}

/// Which events a recomputation reads.
#[derive(Clone, Copy)]
enum Events {
    /// Every event: a rebuild, after which the watermark is moved past
    /// them all.
    All,
    /// The events the rollups claim to hold: those up to the watermark.
    Folded,
}

/// What one rollup table holds for one cuboid, recomputed from the raw
/// events with a plain GROUP BY.
fn expected_rows_sql(cuboid: Cuboid, level: Level, events: Events) -> String {
    let dims = Dim::ALL
        .iter()
        .map(|dim| {
            let column = dim.column();
            if cuboid.has(*dim) {
                format!("COALESCE({column}, 0) AS {column}")
            } else {
                format!("0 AS {column}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (period, slot) = event_time_sql(level);
    let folded = match events {
        Events::All => "",
        Events::Folded => "WHERE id <= (SELECT event_id FROM rollup_watermark)",
    };
    format!(
        "SELECT {cuboid} AS cuboid, {dims}, {period} AS period, {slot} AS slot,
                COUNT(*) AS calls, SUM(input_tokens) AS input_tokens,
                SUM(output_tokens) AS output_tokens, SUM(cache_read_tokens) AS cache_read_tokens,
                SUM(cache_write_tokens) AS cache_write_tokens, SUM(cost_micros) AS cost_micros,
                SUM(cost_origin = 0) AS unpriced_calls,
                SUM(CASE cost_origin WHEN 2 THEN cost_micros ELSE 0 END) AS reported_cost_micros
         FROM events {folded} GROUP BY 2, 3, 4, 5, 6, 7, 8, 9",
        cuboid = cuboid.code(),
    )
}

/// SQL that fills one level's table from the raw events, for every
/// grouping that keeps the level (the table must be empty). The same
/// GROUP BY that [`verify`] compares against.
pub fn rebuild_sql(level: Level) -> String {
    let dims = Dim::ALL.map(Dim::column).join(", ");
    let (slot_column, slot_value) = if level.is_within_day() {
        ("slot, ", "slot, ")
    } else {
        ("", "")
    };
    let metrics = METRIC_COLUMNS.join(", ");
    Cuboid::ALL
        .into_iter()
        .filter(|cuboid| cuboid.keeps(level))
        .map(|cuboid| {
            format!(
                "INSERT INTO {table} (cuboid, {dims}, {period}, {slot_column}{metrics})
                 SELECT cuboid, {dims}, period, {slot_value}{metrics}
                 FROM ({expected});\n",
                table = level.table(),
                period = level.period_column(),
                expected = expected_rows_sql(cuboid, level, Events::All),
            )
        })
        .collect()
}

fn stored_rows_sql(cuboid: Cuboid, level: Level) -> String {
    let slot = if level.is_within_day() { "slot" } else { "0" };
    format!(
        "SELECT cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id,
                {period}, {slot}, {metrics}
         FROM {table} WHERE cuboid = {cuboid}",
        period = level.period_column(),
        metrics = METRIC_COLUMNS.join(", "),
        table = level.table(),
        cuboid = cuboid.code(),
    )
}

/// Recomputes every rollup from the raw events up to the watermark (what
/// the rollups claim to hold) with one `GROUP BY ... EXCEPT` per table and
/// grouping; returns the first row that differs, if any. Slow (a full scan and sort of the events per table and grouping):
/// kept as the oracle that tests hold [`super::verify`] to.
pub fn verify_sql(conn: &Connection) -> Result<Option<Mismatch>, DbError> {
    for level in Level::ALL {
        for cuboid in Cuboid::ALL {
            if !cuboid.keeps(level) {
                continue;
            }
            let expected = expected_rows_sql(cuboid, level, Events::Folded);
            let stored = stored_rows_sql(cuboid, level);
            let first_row = |sql: &str| -> Result<Option<Vec<i64>>, DbError> {
                let mut stmt = conn.prepare(sql)?;
                let mut rows = stmt.query([])?;
                match rows.next()? {
                    Some(row) => Ok(Some(
                        // cuboid, six dimensions, period, slot, the metrics.
                        (0..9 + METRIC_COLUMNS.len())
                            .map(|i| row.get(i))
                            .collect::<Result<Vec<i64>, _>>()?,
                    )),
                    None => Ok(None),
                }
            };
            if let Some(row) = first_row(&format!("{expected} EXCEPT {stored} LIMIT 1"))? {
                let stored_row = first_row(&format!(
                    "SELECT * FROM ({stored}) WHERE user_id = {} AND model_id = {} AND \
                     activity_id = {} AND project_id = {} AND source_id = {} AND provider_id = {} \
                     AND {} = {} AND {} = {}",
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    row[5],
                    row[6],
                    level.period_column(),
                    row[7],
                    if level.is_within_day() { "slot" } else { "0" },
                    row[8],
                ))?;
                return Ok(Some(Mismatch {
                    table: level.table(),
                    cuboid,
                    expected: Some(row),
                    stored: stored_row,
                }));
            }
            if let Some(row) = first_row(&format!("{stored} EXCEPT {expected} LIMIT 1"))? {
                return Ok(Some(Mismatch {
                    table: level.table(),
                    cuboid,
                    expected: None,
                    stored: Some(row),
                }));
            }
        }
    }
    Ok(None)
}
