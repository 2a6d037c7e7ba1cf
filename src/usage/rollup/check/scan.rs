//! One sequential pass over `events`: each grouping summed at its finest
//! kept level, per UTC day. Written apart from [`apply`] and `keys.rs`'s
//! arithmetic (its own slot widths, its own projection), so that a mistake
//! there shows up as a difference here.
//!
//! [`apply`]: crate::usage::rollup::apply

use std::collections::HashMap;

use rusqlite::Connection;

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

type DayMap = HashMap<DayKey, Metrics, foldhash::fast::RandomState>;

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

/// The sums of every grouping, day by day (index into `Plan::all()`).
#[derive(Debug, Default)]
pub(super) struct Sums {
    pub days: HashMap<i64, Vec<DayMap>, foldhash::fast::RandomState>,
    /// Every event read.
    pub events: i64,
    /// Events above a per-event maximum (`usage::limits`), left out of the
    /// sums: they could overflow them, and `--repair` removes them.
    pub over_limits: i64,
}

impl Sums {
    /// Adds another part's sums (a disjoint range of events) to these.
    pub fn merge(&mut self, other: Sums) -> Result<(), DbError> {
        self.events += other.events;
        self.over_limits += other.over_limits;
        for (day, maps) in other.days {
            let Some(mine) = self.days.get_mut(&day) else {
                self.days.insert(day, maps);
                continue;
            };
            for (into, from) in mine.iter_mut().zip(maps) {
                for (key, metrics) in from {
                    add_metrics(into.entry(key).or_default(), &metrics)?;
                }
            }
        }
        Ok(())
    }
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

/// Sums the events with rowids in `[first, last]`, in rowid order.
pub(super) fn scan(conn: &Connection, first: i64, last: i64) -> Result<Sums, DbError> {
    let plans = Plan::all();
    let mut sums = Sums::default();
    // Events arrive nearly in time order: the day of the previous event
    // is the one to try first, which keeps the per-day maps small and hot.
    let mut current: Option<(i64, Vec<DayMap>)> = None;
    let mut stmt = conn.prepare(&events_sql())?;
    let mut rows = stmt.query([first, last])?;
    while let Some(row) = rows.next()? {
        let event = read_event(row)?;
        sums.events += 1;
        if event.over_limits {
            sums.over_limits += 1;
            continue;
        }
        let day = event.ts_ms.div_euclid(MS_PER_DAY);
        let mut maps = match current.take() {
            Some((current_day, maps)) if current_day == day => maps,
            other => {
                let sizes: Vec<usize> = match &other {
                    Some((_, old)) => old.iter().map(HashMap::len).collect(),
                    None => vec![0; plans.len()],
                };
                if let Some((old_day, old)) = other {
                    sums.days.insert(old_day, old);
                }
                // A new day is sized like the last one: no rehashing as
                // it fills.
                sums.days.remove(&day).unwrap_or_else(|| {
                    let sized =
                        |size: &usize| DayMap::with_capacity_and_hasher(*size, Default::default());
                    sizes.iter().map(sized).collect()
                })
            }
        };
        add_event(&plans, &mut maps, &event)?;
        current = Some((day, maps));
    }
    if let Some((day, maps)) = current {
        sums.days.insert(day, maps);
    }
    Ok(sums)
}

/// One event as read: the time, the dimension ids (0 for none) and what it
/// adds to every row it falls in.
struct Event {
    ts_ms: i64,
    dims: [i64; NDIMS],
    metrics: Metrics,
    over_limits: bool,
}

fn read_event(row: &rusqlite::Row<'_>) -> Result<Event, DbError> {
    let ts_ms: i64 = row.get(0)?;
    let mut dims = [0; NDIMS];
    for (i, dim) in dims.iter_mut().enumerate() {
        // A NULL dimension (no project, no activity) is the id 0.
        *dim = row.get::<_, Option<i64>>(1 + i)?.unwrap_or(0);
    }
    let at = 1 + NDIMS;
    let mut tokens = [0; 4];
    for (i, count) in tokens.iter_mut().enumerate() {
        *count = row.get(at + i)?;
    }
    let cost: i64 = row.get(at + 4)?;
    let origin: i64 = row.get(at + 5)?;
    Ok(Event {
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
    })
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
