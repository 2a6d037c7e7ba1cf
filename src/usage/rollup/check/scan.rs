//! One sequential pass over `events`: each grouping summed at its finest
//! kept level, per UTC day, and every day handed on as soon as its last
//! event is read (a first, cheap pass counts the events of each day), so
//! that only the days still open are held. Written apart from [`apply`]
//! and `keys.rs`'s arithmetic (its own slot widths, its own projection),
//! so that a mistake there shows up as a difference here.
//!
//! [`apply`]: crate::usage::rollup::apply

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use super::raw::{RawRows, RawStatement};
use super::{Metrics, NDIMS, add_metrics};
use crate::db::DbError;
use crate::usage::limits::{MAX_COST_MICROS, MAX_TOKENS};
use crate::usage::rollup::{Cuboid, Dim, Level};

pub(super) const MS_PER_DAY: i64 = 86_400_000;

/// The width of one slot of a level, in milliseconds (`None`: a month,
/// which has no fixed width). Our own table, not `keys.rs`'s constants.
pub(super) fn slot_ms(level: Level) -> Option<i64> {
    match level {
        Level::Month => None,
        Level::Day => Some(MS_PER_DAY),
        Level::Block => Some(4 * 3_600_000),
        Level::Hour => Some(3_600_000),
        Level::Quarter => Some(15 * 60_000),
    }
}

/// The levels a grouping keeps, finest first.
pub(super) fn kept_levels(cuboid: Cuboid) -> Vec<Level> {
    let mut levels: Vec<Level> = Level::ALL
        .into_iter()
        .filter(|level| cuboid.keeps(*level))
        .collect();
    // A month is coarser than any day part.
    levels.sort_by_key(|level| slot_ms(*level).unwrap_or(i64::MAX));
    levels
}

/// A row's place within one day: the grouping's dimensions (0 where the
/// grouping drops one) and the slot at the aggregated width.
pub(super) type DayKey = [i64; NDIMS + 1];

/// One grouping's sums over one day.
pub(super) type DayMap = HashMap<DayKey, Metrics, Hasher>;

type Hasher = foldhash::fast::RandomState;

/// The sums of some groupings over one day (in the order of their plans).
pub(super) type DaySums = Vec<DayMap>;

/// How one grouping is summed: which dimensions it keeps and the width
/// its slots are summed at (a day when it keeps no part of a day).
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    pub cuboid: Cuboid,
    pub kept: [bool; NDIMS],
    pub granule_ms: i64,
}

impl Plan {
    pub fn all() -> Vec<Plan> {
        Cuboid::ALL
            .into_iter()
            .map(|cuboid| {
                let granule_ms = kept_levels(cuboid)
                    .first()
                    .and_then(|level| slot_ms(*level))
                    .unwrap_or(MS_PER_DAY)
                    .min(MS_PER_DAY);
                Plan {
                    cuboid,
                    kept: Dim::ALL.map(|dim| cuboid.has(dim)),
                    granule_ms,
                }
            })
            .collect()
    }
}

/// What the pass counted besides the sums.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Totals {
    /// Every event read.
    pub events: i64,
    /// Events above a per-event maximum (`usage::limits`), left out of the
    /// sums: they could overflow them, and `--repair` removes them.
    pub over_limits: i64,
}

fn changed() -> DbError {
    DbError::Refused("verify: the events changed during the check".into())
}

/// The number of events of each UTC day with rowids in `[first, last]`,
/// days in order: one read of the times alone.
pub(super) fn day_counts(
    conn: &Connection,
    first: i64,
    last: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let mut counts = BTreeMap::new();
    let mut current: Option<(i64, i64)> = None;
    let mut stmt = RawStatement::prepare(
        conn,
        "SELECT ts_ms FROM events WHERE rowid BETWEEN ?1 AND ?2",
    )?;
    let mut rows = stmt.query(&[first, last])?;
    while rows.next()? {
        let day = rows.int(0).div_euclid(MS_PER_DAY);
        match &mut current {
            Some((current_day, count)) if *current_day == day => *count += 1,
            _ => {
                if let Some((old_day, count)) = current.take() {
                    *counts.entry(old_day).or_insert(0) += count;
                }
                current = Some((day, 1));
            }
        }
    }
    if let Some((day, count)) = current {
        *counts.entry(day).or_insert(0) += count;
    }
    Ok(counts.into_iter().collect())
}

/// The columns read from `events`, in this order: the time, the
/// dimensions, the four token counts, the cost and its origin.
fn events_sql() -> String {
    let dims = Dim::ALL.map(Dim::column).join(", ");
    format!(
        "SELECT ts_ms, {dims}, input_tokens, output_tokens, cache_read_tokens, \
         cache_write_tokens, cost_micros, cost_origin \
         FROM events WHERE rowid BETWEEN ?1 AND ?2"
    )
}

/// A day being summed, and how many of its events are still to come.
struct OpenDay {
    sums: DaySums,
    left: i64,
}

/// Sums the events with rowids in `[first, last]`, in rowid order, for
/// the groupings of `plans`, and hands every day to `done` once its last
/// event (`counts`, from [`day_counts`] on the same snapshot) is in.
pub(super) fn scan(
    conn: &Connection,
    plans: &[Plan],
    first: i64,
    last: i64,
    counts: &[(i64, i64)],
    mut done: impl FnMut(i64, DaySums) -> Result<(), DbError>,
) -> Result<Totals, DbError> {
    let mut totals = Totals::default();
    let mut unopened: HashMap<i64, i64, Hasher> = counts.iter().copied().collect();
    let mut open: HashMap<i64, OpenDay, Hasher> = HashMap::default();
    // Events arrive nearly in time order: the day of the previous event
    // is the one to try first.
    let mut current: Option<(i64, OpenDay)> = None;
    // A new day is sized like the last one closed: no rehashing as it fills.
    let mut sizes = vec![0; plans.len()];
    let mut stmt = RawStatement::prepare(conn, &events_sql())?;
    let mut rows = stmt.query(&[first, last])?;
    while rows.next()? {
        let event = read_event(&rows);
        totals.events += 1;
        let day = event.ts_ms.div_euclid(MS_PER_DAY);
        if current
            .as_ref()
            .is_some_and(|(open_day, _)| *open_day != day)
            && let Some((old_day, old)) = current.take()
        {
            open.insert(old_day, old);
        }
        let (_, today) = match current {
            Some(ref mut current) => current,
            None => current.insert(match open.remove(&day) {
                Some(today) => (day, today),
                None => {
                    let left = unopened.remove(&day).ok_or_else(changed)?;
                    let sized =
                        |size: &usize| DayMap::with_capacity_and_hasher(*size, Default::default());
                    let sums = sizes.iter().map(sized).collect();
                    (day, OpenDay { sums, left })
                }
            }),
        };
        if event.over_limits {
            totals.over_limits += 1;
        } else {
            add_event(plans, &mut today.sums, &event)?;
        }
        today.left -= 1;
        if today.left == 0
            && let Some((day, today)) = current.take()
        {
            sizes = today.sums.iter().map(HashMap::len).collect();
            done(day, today.sums)?;
        }
    }
    if current.is_some() || !open.is_empty() || !unopened.is_empty() {
        return Err(changed());
    }
    Ok(totals)
}

/// One event as read: the time, the dimension ids (0 for none) and what it
/// adds to every row it falls in.
struct Event {
    ts_ms: i64,
    dims: [i64; NDIMS],
    metrics: Metrics,
    over_limits: bool,
}

fn read_event(row: &RawRows<'_, '_>) -> Event {
    let ts_ms = row.int(0);
    // A NULL dimension (no project, no activity) reads as the id 0.
    let mut dims = [0; NDIMS];
    for (column, dim) in (1..).zip(dims.iter_mut()) {
        *dim = row.int(column);
    }
    let at = 1 + NDIMS as i32;
    let mut tokens = [0; 4];
    for (column, count) in (at..).zip(tokens.iter_mut()) {
        *count = row.int(column);
    }
    let cost = row.int(at + 4);
    let origin = row.int(at + 5);
    Event {
        over_limits: tokens.iter().any(|count| *count > MAX_TOKENS) || cost > MAX_COST_MICROS,
        ts_ms,
        dims,
        metrics: [
            1,
            tokens[0],
            tokens[1],
            tokens[2],
            tokens[3],
            cost,
            // Unpriced: cost_origin 0; reported by the producer: 2.
            i64::from(origin == 0),
            if origin == 2 { cost } else { 0 },
        ],
    }
}

fn add_event(plans: &[Plan], maps: &mut [DayMap], event: &Event) -> Result<(), DbError> {
    let within_day = event.ts_ms.rem_euclid(MS_PER_DAY);
    for (plan, map) in plans.iter().zip(maps.iter_mut()) {
        let mut key = [0; NDIMS + 1];
        // The grouping's own dimensions; the others stay 0.
        for ((slot, kept), value) in key.iter_mut().zip(plan.kept).zip(event.dims) {
            if kept {
                *slot = value;
            }
        }
        key[NDIMS] = within_day / plan.granule_ms;
        add_metrics(map.entry(key).or_default(), &event.metrics)?;
    }
    Ok(())
}
