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
mod halves;
mod raw;
mod scan;
mod snapshot;
mod sql;
#[cfg(test)]
mod tests;

use rusqlite::Connection;

pub use sql::{rebuild_sql, verify_sql};

use super::{Cuboid, Dim, Level, METRIC_COLUMNS};
use crate::db::DbError;
use compare::{Checker, Found};
use scan::{Plan, Totals};
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
            .ok_or_else(|| DbError::Overflow(crate::model::Overflow))?;
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
/// database, which this takes over) and `conn` each read half of the
/// events and check half of the groupings.
pub fn verify_parallel(conn: &Connection, second: Connection) -> Result<Option<Mismatch>, DbError> {
    Ok(check(conn, Some(second))?.mismatch)
}

/// [`verify`], also counting what is out of range (what `tokentally
/// verify` reports), on two connections when `second` is given. Both read
/// one snapshot; when that cannot be had (the caller is inside a
/// transaction, or writes keep landing between the two), it runs on
/// `conn` alone.
pub fn check(conn: &Connection, second: Option<Connection>) -> Result<Checked, DbError> {
    Ok(check_then(conn, second, |_, _| Ok(()))?.0)
}

/// [`check`], then `then` on `conn` in the same snapshot (for the checks
/// that must see the database as the rollups were checked on: the audit
/// chain, the head). `conn` must be outside any transaction for the
/// check to run on two connections.
pub fn check_then<T>(
    conn: &Connection,
    second: Option<Connection>,
    then: impl FnOnce(&Connection, &Checked) -> Result<T, DbError>,
) -> Result<(Checked, T), DbError> {
    let both = match second {
        Some(second) => snapshot::begin_both(conn, second)?,
        None => None,
    };
    let Some((_read, second)) = both else {
        let _read = ReadTxn::begin_if_none(conn)?;
        let checked = check_alone(conn)?;
        let then = then(conn, &checked)?;
        return Ok((checked, then));
    };
    let checked = check_both(conn, second)?;
    let then = then(conn, &checked)?;
    Ok((checked, then))
}

/// [`check`] on `conn` and `second`, both in read transactions on one
/// snapshot: each reads half of the events, sums every grouping over them
/// and checks half of the groupings (`halves.rs`).
fn check_both(conn: &Connection, second: ReadTxn<Connection>) -> Result<Checked, DbError> {
    let (first, last) = rowid_range(conn)?;
    let mid = first.midpoint(last);
    // The second half starts after `mid` (empty when there is no after).
    let (next, end) = match mid.checked_add(1) {
        Some(next) if first <= last => (next, last),
        _ => (1, 0),
    };
    let here = mine();
    let there: Vec<bool> = here.iter().map(|mine| !mine).collect();
    let (link_here, link_there) = halves::link();
    let (mine, theirs) = on_second(
        second,
        |second| halves::half(second.conn(), next, end, &there, link_there),
        || halves::half(conn, first, mid.min(last), &here, link_here),
    );
    let (mine, theirs) = (mine?, theirs?);
    let (Some((totals, mut found)), Some((their_totals, theirs))) = (mine, theirs) else {
        return Err(DbError::Refused(
            "verify: a connection stopped without an error".into(),
        ));
    };
    let overflow = || DbError::Overflow(crate::model::Overflow);
    let totals = Totals {
        events: totals
            .events
            .checked_add(their_totals.events)
            .ok_or_else(overflow)?,
        over_limits: totals
            .over_limits
            .checked_add(their_totals.over_limits)
            .ok_or_else(overflow)?,
    };
    found.extend(theirs);
    Ok(summary(totals, found))
}

/// Which groupings (in `Plan::all()` order) this connection checks, the
/// others going to the second: about as much work on each side (stored
/// rows at 10M events: user × activity and the full grouping, whose
/// per-day sums are the largest, 10.6M; user × model and the rest, 10.4M).
fn mine() -> Vec<bool> {
    let here = [Cuboid::UserActivity, Cuboid::Full, Cuboid::Total];
    Plan::all()
        .iter()
        .map(|plan| here.contains(&plan.cuboid))
        .collect()
}

/// Sums the groupings of `plans` over the events with rowids in
/// `[first, last]` and checks them, on one connection.
fn check_part(
    conn: &Connection,
    first: i64,
    last: i64,
    plans: &[Plan],
) -> Result<(Totals, Vec<(Cuboid, Found)>), DbError> {
    let counts = scan::day_counts(conn, first, last)?;
    let days: Vec<i64> = counts.iter().map(|(day, _)| *day).collect();
    let mut checker = Checker::new(conn, plans, &days)?;
    let totals = scan::scan(conn, plans, first, last, &counts, |day, sums| {
        checker.day(day, &sums)
    })?;
    Ok((totals, checker.finish()?))
}

/// [`check`] on one connection, in its current transaction.
fn check_alone(conn: &Connection) -> Result<Checked, DbError> {
    let (first, last) = rowid_range(conn)?;
    let (totals, found) = check_part(conn, first, last, &Plan::all())?;
    Ok(summary(totals, found))
}

/// Runs `there` on another thread with `second` while `here` runs on
/// this one; returns both results (`here`'s first). The read transaction
/// on `second` ends with the thread.
fn on_second<T: Send, U>(
    second: ReadTxn<Connection>,
    there: impl FnOnce(&ReadTxn<Connection>) -> Result<T, DbError> + Send,
    here: impl FnOnce() -> Result<U, DbError>,
) -> (Result<U, DbError>, Result<T, DbError>) {
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || there(&second));
        let mine = here();
        match worker.join() {
            Ok(theirs) => (mine, theirs),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
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
fn summary(totals: Totals, found: Vec<(Cuboid, Found)>) -> Checked {
    let mut cells_out_of_range = 0;
    let mut all = Vec::new();
    for (cuboid, levels) in found {
        for (level, mismatch, out_of_range) in levels {
            cells_out_of_range += out_of_range;
            if let Some(mismatch) = mismatch {
                all.push((rank(level, cuboid), mismatch));
            }
        }
    }
    all.sort_by_key(|(rank, _)| *rank);
    Checked {
        events: totals.events,
        events_over_limits: totals.over_limits,
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
