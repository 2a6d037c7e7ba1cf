//! Rollups: the time-bucketed sums that make a dashboard query cost the
//! number of buckets, not the number of events.
//!
//! # Design
//!
//! **Exact in every zone.** A bucket in the viewer's zone (a local day, a
//! week, a month) is a half-open range of UTC instants `[a, b)`. Its total
//! is `F(b) - F(a)` for any running total `F`. We split each boundary `t`
//! into the whole UTC days before it and the part of its own UTC day,
//! `P(t) = [day_start(t), t)`:
//!
//! ```text
//! total[a, b) = Σ whole UTC days in [day_start(a), day_start(b)) − P(a) + P(b)
//! ```
//!
//! The whole days are read from the `day` level (and whole UTC months from
//! the `month` level). `P(t)` is read from the within-day levels, as a
//! prefix (four-hour `block` rows from midnight, then `hour`, then
//! `quarter` rows) or as the day minus a suffix, whichever needs fewer
//! rows. Every IANA zone of the
//! present day has an offset that is a whole number of quarter hours
//! (Asia/Kolkata +5:30, Asia/Kathmandu +5:45, Australia/Lord_Howe's 30-minute
//! DST), so a local midnight always falls on a quarter hour and the rollups
//! answer it exactly. A boundary that does not (a range starting at an
//! arbitrary second) reads raw events for the part of its quarter hour: the
//! only place the planner touches raw rows, and only at a range's edges.
//!
//! Days of 23 or 25 hours need nothing special: the boundaries come from the
//! zone's rules (jiff), and whatever lies between them is summed.
//!
//! **Cost.** A daily series over a year in UTC reads 365 `day` rows; in
//! America/New_York (midnight at 04:00 or 05:00 UTC) it adds one block, or
//! a block and an hour, per boundary; in Asia/Kolkata (18:30 UTC) the day
//! less a block, an hour and two quarters. That is a small constant per
//! bucket, whatever the number of events. Blocks exist because hours alone
//! cost up to nine rows per boundary (Tokyo, Los Angeles): with them a
//! year's daily series by model in New York reads about 2.4x fewer rows
//! (BENCHMARKS.md).
//!
//! **Groupings (cuboids).** Rows at fine time levels multiply with every
//! dimension they keep, so each level keeps a small lattice of groupings
//! chosen for the questions the product asks: in total; per user; per model;
//! per activity; per project; per user and model; per user and activity
//! (a member's own dashboard split either way). A query uses the smallest
//! cuboid that holds its filters and its grouping. Rows of the user × model
//! and user × activity cuboids at the quarter level would be nearly as many
//! as the events, so those keep blocks and hours but not quarters; their quarter-hour
//! edges (Kolkata, Kathmandu) read the user's raw events through the
//! `(user_id, ts_ms)` index. Anything else (per source, per provider, three
//! filters at once) uses the full cuboid, which keeps every dimension but
//! only at the `day` and `month` levels; its within-day parts are raw.
//!
//! **Write locality.** Keys are (cuboid, period, dimensions, slot): the rows
//! of one day (or month) of every series of a grouping sit together, so
//! live traffic, which all lands on today, dirties a few pages per grouping
//! and level per commit instead of one per series. (Series-major keys
//! wrote half the events per second: BENCHMARKS.md.) A planned read seeks
//! `period IN (…)` with the dimensions it constrains, then a run of slots.
//!
//! **Consistency.** Rollups are additive upserts ([`apply`]) of the events
//! up to a recorded watermark, applied in the same transaction that moves
//! the watermark ([`roll`]), so a crash can never leave them disagreeing
//! with the raw rows they claim. Acknowledged events past the watermark
//! (the tail) are read raw and added to every answer (`usage::cells`).
//! [`verify`] recomputes every table with a plain `GROUP BY` over the
//! events up to the watermark and names the first difference; tests run
//! it after every kind of write.

use std::collections::HashMap;

use rusqlite::{Connection, params};

mod check;
mod keys;
mod tail;

pub use check::{
    Checked, Mismatch, check, check_then, rebuild_sql, verify, verify_parallel, verify_sql,
};
pub use keys::*;
pub use tail::{
    CHUNK, fold_pending, mark_all_folded, pending, roll, roll_all, tail_len, watermark,
};

use super::Totals;
use crate::db::DbError;

/// A signed change to the rollups: an inserted event (+), or the change of
/// an event's cost when it is re-priced.
#[derive(Debug, Clone)]
pub struct Delta {
    pub ts_ms: i64,
    pub dims: DimValues,
    pub metrics: Totals,
}

type RowKey = (Cuboid, TimeKey, DimValues);

/// How an event's cost was determined (the `cost_origin` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostOrigin {
    /// No price known: stored, flagged, re-priced when a price appears.
    Unpriced = 0,
    /// From the price table.
    PriceTable = 1,
    /// Reported by the producer; never re-priced.
    Reported = 2,
    /// From the price catalogue (`usage::catalogue`): re-priced when the
    /// catalogue changes.
    Catalogue = 3,
}

impl CostOrigin {
    /// The origin a `cost_origin` value stands for.
    pub fn from_column(value: i64) -> CostOrigin {
        match value {
            0 => CostOrigin::Unpriced,
            1 => CostOrigin::PriceTable,
            3 => CostOrigin::Catalogue,
            _ => CostOrigin::Reported,
        }
    }

    /// The name the API, CSV and pages use (`cost_origin`).
    pub fn name(self) -> &'static str {
        match self {
            CostOrigin::Unpriced => "unpriced",
            CostOrigin::PriceTable => "admin",
            CostOrigin::Reported => "reported",
            CostOrigin::Catalogue => "catalogue",
        }
    }
}

/// What one event adds to the rollups.
pub fn event_metrics(tokens: &[i64; 4], cost_micros: i64, origin: CostOrigin) -> Totals {
    Totals {
        calls: 1,
        input_tokens: tokens[0],
        output_tokens: tokens[1],
        cache_read_tokens: tokens[2],
        cache_write_tokens: tokens[3],
        cost_micros,
        unpriced_calls: i64::from(origin == CostOrigin::Unpriced),
        reported_cost_micros: if origin == CostOrigin::Reported {
            cost_micros
        } else {
            0
        },
    }
}

/// Folds `deltas` into every rollup table with additive upserts. Runs in
/// the caller's transaction: together with the event rows or not at all.
pub fn apply(conn: &Connection, deltas: &[Delta]) -> Result<(), DbError> {
    let mut rows: HashMap<RowKey, Totals, foldhash::fast::RandomState> = HashMap::default();
    for delta in deltas {
        for key in time_keys(delta.ts_ms) {
            for cuboid in Cuboid::ALL {
                if !cuboid.keeps(key.level) {
                    continue;
                }
                let dims = delta.dims.project_onto(cuboid);
                rows.entry((cuboid, key, dims))
                    .or_default()
                    .checked_add(&delta.metrics)?;
            }
        }
    }
    // Sorted, so that each table's B-tree is walked in order.
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_unstable_by_key(|((cuboid, key, dims), _)| {
        (
            key.level,
            *cuboid,
            key.period,
            dims.user,
            dims.model,
            dims.activity,
            dims.project,
            dims.source,
            dims.provider,
            key.slot,
        )
    });
    let statements = Level::ALL.map(upsert_sql);
    for ((cuboid, key, dims), metrics) in rows {
        let mut upsert = conn.prepare_cached(&statements[key.level as usize])?;
        let m = &metrics;
        let d = &dims;
        let common = params![
            cuboid.code(),
            d.user,
            d.model,
            d.activity,
            d.project,
            d.source,
            d.provider,
            key.period,
            key.slot,
            m.calls,
            m.input_tokens,
            m.output_tokens,
            m.cache_read_tokens,
            m.cache_write_tokens,
            m.cost_micros,
            m.unpriced_calls,
            m.reported_cost_micros
        ];
        upsert.execute(common).map_err(overflow_or_error)?;
    }
    Ok(())
}

/// SQLite turns an integer sum past 2⁶³ into a float, which a STRICT
/// integer column refuses: that is an overflow, not a fault of the disk.
/// Unreachable within `usage::limits`; a database from an older release
/// can get there (`tokentally verify --repair`).
fn overflow_or_error(e: rusqlite::Error) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_DATATYPE =>
        {
            DbError::Overflow(crate::model::Overflow)
        }
        _ => DbError::from(e),
    }
}

/// The metric columns of every rollup table, in [`Totals`] order.
pub const METRIC_COLUMN_NAMES: [&str; 8] = METRIC_COLUMNS;

const METRIC_COLUMNS: [&str; 8] = [
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "unpriced_calls",
    "reported_cost_micros",
];

/// The upsert for one level. Parameters: cuboid, the six dimensions,
/// period, slot (ignored by month and day), the eight metrics.
/// Removes `user`'s rollup rows that count no call: what is left where
/// events were moved away (`usage::identities`). Such a row is all zeros
/// (every metric of an event is at least zero), and the raw events give
/// no row for it.
pub fn remove_empty_rows(conn: &Connection, user: crate::model::UserId) -> Result<(), DbError> {
    for level in Level::ALL {
        conn.prepare_cached(&format!(
            "DELETE FROM {} WHERE user_id = ?1 AND calls = 0",
            level.table()
        ))?
        .execute([user.0])?;
    }
    Ok(())
}

fn upsert_sql(level: Level) -> String {
    let period = level.period_column();
    let (slot_column, slot_value) = if level.is_within_day() {
        ("slot, ", "?9, ")
    } else {
        ("", "")
    };
    let updates = METRIC_COLUMNS
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} (cuboid, user_id, model_id, activity_id, project_id, source_id,
             provider_id, {slot_column}{period}, {metrics})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {slot_value}?8, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT DO UPDATE SET {updates}",
        table = level.table(),
        metrics = METRIC_COLUMNS.join(", "),
    )
}
