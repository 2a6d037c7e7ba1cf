//! Checking the rollups against the raw events (`tokentally verify`, and
//! the tests after every kind of write), written independently of
//! [`apply`] and of `keys.rs`'s arithmetic so that it catches their
//! mistakes.
//!
//! [`verify`] reads `events` once, in rowid order, summing every grouping
//! per UTC day at its finest kept level (`scan.rs`); each coarser level is
//! summed from the finer one and compared with its table read in key
//! order (`compare.rs`). [`verify_parallel`] does the same on two
//! connections reading one snapshot (`snapshot.rs`). [`verify_sql`], a
//! `GROUP BY` per table and grouping (20-40 times slower at 1M events), is
//! the oracle the tests hold both to.
//!
//! [`apply`]: super::apply

mod compare;
mod scan;
mod snapshot;
mod sql;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;

pub use sql::{rebuild_sql, verify_sql};

use super::{Cuboid, Dim, Level, METRIC_COLUMNS};
use crate::db::DbError;
use compare::Found;
use scan::{Plan, Sums};
use snapshot::ReadTxn;

/// The number of dimensions of an event.
const NDIMS: usize = Dim::ALL.len();

/// The metrics of a row, in `METRIC_COLUMNS` order.
type Metrics = [i64; METRIC_COLUMNS.len()];

/// Adds `add` to `into`; a sum past i64 is an overflow, as SQLite's SUM
/// would report it.
fn add_metrics(into: &mut Metrics, add: &Metrics) -> Result<(), DbError> {
    for (sum, value) in into.iter_mut().zip(add) {
        *sum = sum
            .checked_add(*value)
            .ok_or(DbError::Overflow(crate::model::Overflow))?;
    }
    Ok(())
}

/// A rollup row that disagrees with the raw events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub table: &'static str,
    pub cuboid: Cuboid,
    /// The row as the raw events say it should be (`None`: no such row).
    pub expected: Option<Vec<i64>>,
    /// The row as stored (`None`: missing).
    pub stored: Option<Vec<i64>>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |row: &Option<Vec<i64>>| match row {
            Some(values) => format!("{values:?}"),
            None => "no row".to_owned(),
        };
        write!(
            f,
            "{} (cuboid {:?}): raw events give {}, the rollup holds {} \
             [cuboid, user, model, activity, project, source, provider, period, slot, calls, \
             input, output, cache read, cache write, cost, unpriced]",
            self.table,
            self.cuboid,
            show(&self.expected),
            show(&self.stored)
        )
    }
}

/// What one pass over the events and the rollups found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Events read.
    pub events: i64,
    /// Events above a per-event maximum (`usage::limits`): left out of
    /// the sums, so `mismatch` means little unless this is 0.
    pub events_over_limits: i64,
    /// Rollup rows with a metric out of range (`usage::repair::find`).
    pub cells_out_of_range: i64,
    /// The first rollup row that differs from the events, if any.
    pub mismatch: Option<Mismatch>,
}

/// Recomputes every rollup from the raw events in one pass over them;
/// returns the first row that differs, if any (the one [`verify_sql`]
/// names). Runs in the caller's transaction if there is one, else in a
/// read transaction of its own, so that events and rollups are read from
/// one snapshot.
pub fn verify(conn: &Connection) -> Result<Option<Mismatch>, DbError> {
    Ok(check(conn, None)?.mismatch)
}

/// [`verify`] on two cores: `second` (a read connection to the same
/// database, which this takes over) scans half the events and checks half
/// the tables while `conn` does the rest.
pub fn verify_parallel(conn: &Connection, second: Connection) -> Result<Option<Mismatch>, DbError> {
    Ok(check(conn, Some(second))?.mismatch)
}

/// [`verify`], also counting what is out of range (what `tokentally
/// verify` reports), on two connections when `second` is given. Both read
/// one snapshot; when that cannot be had (the caller is inside a
/// transaction, or writes keep landing between the two), it runs on
/// `conn` alone.
pub fn check(conn: &Connection, second: Option<Connection>) -> Result<Checked, DbError> {
    let both = match second {
        Some(second) => snapshot::begin_both(conn, second)?,
        None => None,
    };
    let Some((_read, second)) = both else {
        let _read = ReadTxn::begin_if_none(conn)?;
        return check_alone(conn);
    };
    let (first, last) = rowid_range(conn)?;
    // The lower half here, the upper half on the other connection.
    let middle = first + (last - first) / 2;
    let (second, (mut sums, upper)) = on_second(
        second,
        move |second| scan::scan(second.conn(), middle + 1, last),
        || scan::scan(conn, first, middle),
    )?;
    sums.merge(upper)?;
    let plans = Plan::all();
    let order = largest_first(&sums, &plans);
    let next = AtomicUsize::new(0);
    let take = |c: &Connection| take_cuboids(c, &sums, &plans, &order, &next);
    let (_second, (mine, theirs)) = on_second(second, |second| take(second.conn()), || take(conn))?;
    Ok(summary(
        &sums,
        &plans,
        mine.into_iter().chain(theirs).collect(),
    ))
}

/// [`check`] on one connection, in its current transaction.
fn check_alone(conn: &Connection) -> Result<Checked, DbError> {
    let (first, last) = rowid_range(conn)?;
    let sums = scan::scan(conn, first, last)?;
    let plans = Plan::all();
    let order: Vec<usize> = (0..plans.len()).collect();
    let found = take_cuboids(conn, &sums, &plans, &order, &AtomicUsize::new(0))?;
    Ok(summary(&sums, &plans, found))
}

/// Runs `there` on another thread with `second` while `here` runs on
/// this one; returns `second` and both results (`here`'s first).
fn on_second<T: Send, U>(
    second: ReadTxn<Connection>,
    there: impl FnOnce(&ReadTxn<Connection>) -> Result<T, DbError> + Send,
    here: impl FnOnce() -> Result<U, DbError>,
) -> Result<(ReadTxn<Connection>, (U, T)), DbError> {
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let result = there(&second);
            (second, result)
        });
        let mine = here();
        let (second, theirs) = match worker.join() {
            Ok(done) => done,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok((second, (mine?, theirs?)))
    })
}

/// Checks groupings, taking the next unchecked one from `order` until
/// none is left.
fn take_cuboids(
    conn: &Connection,
    sums: &Sums,
    plans: &[Plan],
    order: &[usize],
    next: &AtomicUsize,
) -> Result<Vec<(usize, Found)>, DbError> {
    let mut found = Vec::new();
    while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
        found.push((index, compare::check_cuboid(conn, sums, plans, index)?));
    }
    Ok(found)
}

/// The groupings, the one with the most rows first, so that the two
/// threads finish together.
fn largest_first(sums: &Sums, plans: &[Plan]) -> Vec<usize> {
    let mut rows = vec![0usize; plans.len()];
    for maps in sums.days.values() {
        for (count, map) in rows.iter_mut().zip(maps) {
            *count += map.len();
        }
    }
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|index| std::cmp::Reverse(rows[*index]));
    order
}

/// The smallest and largest rowid of the events the rollups claim to
/// hold: those up to the watermark ((1, 0) when none). Events past it wait
/// for the roller and are read raw; a watermark moved without folding, or
/// back over folded events, shows as rows that differ.
fn rowid_range(conn: &Connection) -> Result<(i64, i64), DbError> {
    let range = conn.query_row(
        "SELECT min(rowid), min(max(rowid), (SELECT event_id FROM rollup_watermark)) FROM events",
        [],
        |row| Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?)),
    )?;
    Ok(match range {
        (Some(first), Some(last)) => (first, last),
        _ => (1, 0),
    })
}

/// The counts, and the first difference in the order `verify_sql` checks
/// in: level by level, grouping by grouping.
fn summary(sums: &Sums, plans: &[Plan], found: Vec<(usize, Found)>) -> Checked {
    let mut cells_out_of_range = 0;
    let mut all = Vec::new();
    for (index, levels) in found {
        for (level, mismatch, out_of_range) in levels {
            cells_out_of_range += out_of_range;
            if let Some(mismatch) = mismatch {
                all.push((rank(level, plans[index].cuboid), mismatch));
            }
        }
    }
    all.sort_by_key(|(rank, _)| *rank);
    Checked {
        events: sums.events,
        events_over_limits: sums.over_limits,
        cells_out_of_range,
        mismatch: all.into_iter().next().map(|(_, mismatch)| mismatch),
    }
}

/// Where (level, grouping) comes in `Level::ALL` × `Cuboid::ALL`.
fn rank(level: Level, cuboid: Cuboid) -> (usize, usize) {
    let level = Level::ALL.iter().position(|l| *l == level);
    let cuboid = Cuboid::ALL.iter().position(|c| *c == cuboid);
    (level.unwrap_or(usize::MAX), cuboid.unwrap_or(usize::MAX))
}
