//! From one day's sums of a grouping to the rows each of its levels
//! should hold (finest first, each coarser level summed from the one
//! before; months gathered day by day until their last day is in), and
//! the comparison of those rows with the stored ones of that day or month,
//! read in key order. Rows stored for periods without events are read at
//! the end ([`Checker::finish`]).

use std::collections::HashMap;

use rusqlite::Connection;

use super::raw::{RawRows, RawStatement};
use super::scan::{DayMap, Plan, kept_levels, slot_ms};
use super::{Metrics, Mismatch, NDIMS, add_metrics};
use crate::db::DbError;
use crate::usage::limits::MAX_REACHABLE_SUM;
use crate::usage::rollup::{Cuboid, Dim, Level, METRIC_COLUMNS};

/// A row's key in the tables' key order: period, the dimensions, slot.
pub(super) type Key = [i64; NDIMS + 2];
type Rows = Vec<(Key, Metrics)>;

/// What one grouping's check found at each level it keeps: the first
/// difference and the number of stored rows out of range.
pub(super) type Found = Vec<(Level, Option<Mismatch>, i64)>;

/// Checks the groupings of some plans, day by day.
pub(super) struct Checker<'c> {
    cuboids: Vec<CuboidCheck<'c>>,
    /// Months still to be completed: how many of their days with events
    /// are still to come.
    months_left: HashMap<i64, usize>,
    /// The days and months with events, in order.
    days: Vec<i64>,
    months: Vec<i64>,
}

struct CuboidCheck<'c> {
    plan: Plan,
    levels: Vec<LevelCheck<'c>>,
    /// Day rows gathered for each month not yet complete.
    month_rows: HashMap<i64, Rows>,
}

struct LevelCheck<'c> {
    level: Level,
    stored: RawStatement<'c>,
    first: FirstDifference,
    out_of_range: i64,
}

impl<'c> Checker<'c> {
    /// `days`: every day with events, in order.
    pub fn new(conn: &'c Connection, plans: &[Plan], days: &[i64]) -> Result<Self, DbError> {
        let mut months_left = HashMap::new();
        let mut months = Vec::new();
        for day in days {
            let month = month_of_day(*day);
            *months_left.entry(month).or_insert(0) += 1;
            if months.last() != Some(&month) {
                months.push(month);
            }
        }
        months.sort_unstable();
        months.dedup();
        let mut cuboids = Vec::new();
        for &plan in plans {
            let mut levels = Vec::new();
            for level in kept_levels(plan.cuboid) {
                levels.push(LevelCheck {
                    level,
                    stored: RawStatement::prepare(conn, &stored_sql(level))?,
                    first: FirstDifference::new(plan.cuboid.code()),
                    out_of_range: 0,
                });
            }
            cuboids.push(CuboidCheck {
                plan,
                levels,
                month_rows: HashMap::new(),
            });
        }
        Ok(Checker {
            cuboids,
            months_left,
            days: days.to_vec(),
            months,
        })
    }

    /// Checks one day (the sums of the plans given to [`Checker::new`],
    /// in their order), and its month if this was its last day.
    pub fn day(&mut self, day: i64, sums: &[DayMap]) -> Result<(), DbError> {
        let month = month_of_day(day);
        for (check, sums) in self.cuboids.iter_mut().zip(sums) {
            check.day(day, month, sums)?;
        }
        let left = self.months_left.entry(month).or_insert(0);
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.months_left.remove(&month);
            for check in &mut self.cuboids {
                check.month(month)?;
            }
        }
        Ok(())
    }

    /// Reads the rows stored for periods without events (all of them
    /// differences) and returns what each grouping's check found.
    pub fn finish(mut self) -> Result<Vec<(Cuboid, Found)>, DbError> {
        let mut left: Vec<i64> = self.months_left.keys().copied().collect();
        left.sort_unstable();
        for month in left {
            for check in &mut self.cuboids {
                check.month(month)?;
            }
        }
        let mut found = Vec::new();
        for check in self.cuboids {
            let mut levels = Vec::new();
            for mut level in check.levels {
                let periods = match level.level {
                    Level::Month => &self.months,
                    _ => &self.days,
                };
                for (lo, hi) in gaps(periods) {
                    level.compare(check.plan, &[], lo, hi)?;
                }
                let mismatch = level.first.into_mismatch(check.plan, level.level);
                levels.push((level.level, mismatch, level.out_of_range));
            }
            found.push((check.plan.cuboid, levels));
        }
        Ok(found)
    }
}

/// The ranges of periods (inclusive) between and around `periods`
/// (sorted): where no event falls.
fn gaps(periods: &[i64]) -> Vec<(i64, i64)> {
    let mut gaps = Vec::new();
    let mut from = i64::MIN;
    for &period in periods {
        if period > from {
            gaps.push((from, period - 1));
        }
        from = period.saturating_add(1);
    }
    if periods.last() != Some(&i64::MAX) {
        gaps.push((from, i64::MAX));
    }
    gaps
}

impl CuboidCheck<'_> {
    fn day(&mut self, day: i64, month: i64, sums: &DayMap) -> Result<(), DbError> {
        let mut rows = granule_rows(day, sums);
        let mut width = self.plan.granule_ms;
        for level in &mut self.levels {
            let Some(target) = slot_ms(level.level) else {
                // Months: the day rows (the level before) gathered.
                let gathered = self.month_rows.entry(month).or_default();
                gathered.extend(rows.iter().map(|(key, metrics)| {
                    let mut key = *key;
                    key[0] = month;
                    key[NDIMS + 1] = 0;
                    (key, *metrics)
                }));
                continue;
            };
            rows = coarsen(rows, width, target)?;
            width = target;
            level.compare(self.plan, &rows, day, day)?;
        }
        Ok(())
    }

    fn month(&mut self, month: i64) -> Result<(), DbError> {
        let Some(mut rows) = self.month_rows.remove(&month) else {
            return Ok(());
        };
        rows.sort_unstable_by_key(|(key, _)| *key);
        let rows = coalesce(rows)?;
        for level in &mut self.levels {
            if level.level == Level::Month {
                level.compare(self.plan, &rows, month, month)?;
            }
        }
        Ok(())
    }
}

/// One day's sums of a grouping as rows keyed (day, dimensions, slot at
/// the granule), in key order.
fn granule_rows(day: i64, sums: &DayMap) -> Rows {
    let mut rows: Rows = sums
        .iter()
        .map(|(place, metrics)| {
            let mut key = [0; NDIMS + 2];
            key[0] = day;
            key[1..].copy_from_slice(place);
            (key, *metrics)
        })
        .collect();
    rows.sort_unstable_by_key(|(key, _)| *key);
    rows
}

/// Sums one day's `rows` (sorted, slots `width` ms wide) up to slots
/// `target` ms wide. The same width returns them as they are.
fn coarsen(rows: Rows, width: i64, target: i64) -> Result<Rows, DbError> {
    if target == width {
        return Ok(rows);
    }
    if target < width || target % width != 0 {
        return Err(DbError::Refused(format!(
            "verify: cannot derive slots of {target} ms from slots of {width} ms"
        )));
    }
    let ratio = target / width;
    // The slot is the last part of the key and the mapping keeps its
    // order: the rows stay sorted.
    let rows = rows.into_iter().map(|(mut key, metrics)| {
        key[NDIMS + 1] /= ratio;
        (key, metrics)
    });
    coalesce(rows)
}

/// Adds up runs of equal keys in sorted rows.
fn coalesce(rows: impl IntoIterator<Item = (Key, Metrics)>) -> Result<Rows, DbError> {
    let rows = rows.into_iter();
    let mut out: Rows = Vec::with_capacity(rows.size_hint().0);
    for (key, metrics) in rows {
        match out.last_mut() {
            Some((last, sum)) if *last == key => add_metrics(sum, &metrics)?,
            _ => out.push((key, metrics)),
        }
    }
    Ok(out)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn month_days(year: i64, month0: usize) -> i64 {
    const DAYS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    DAYS[month0] + i64::from(month0 == 1 && is_leap(year))
}

/// Months since 1970-01 of a day number, by walking the calendar year by
/// year and month by month: deliberately not the closed form `keys.rs`
/// uses, so that the two check each other.
pub(super) fn month_of_day(day: i64) -> i64 {
    // Every 400 Gregorian years have 146,097 days: the walk stays short.
    let cycles = day.div_euclid(146_097);
    let mut rest = day.rem_euclid(146_097);
    let mut year = 1970;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if rest < len {
            break;
        }
        rest -= len;
        year += 1;
    }
    let mut month0 = 0;
    while rest >= month_days(year, month0) {
        rest -= month_days(year, month0);
        month0 += 1;
    }
    (cycles * 400 + year - 1970) * 12 + month0 as i64
}

/// The stored rows of one grouping (`?1`) at one level over the periods
/// `?2` to `?3`, in key order.
fn stored_sql(level: Level) -> String {
    let dims = Dim::ALL.map(Dim::column).join(", ");
    // A whole day or month has the one slot 0 (and ORDER BY 0 would
    // name a column).
    let (slot, order_slot) = match level.is_within_day() {
        true => ("slot", ", slot"),
        false => ("0", ""),
    };
    format!(
        "SELECT {period}, {dims}, {slot}, {metrics} FROM {table} \
         WHERE cuboid = ?1 AND {period} BETWEEN ?2 AND ?3 \
         ORDER BY {period}, {dims}{order_slot}",
        period = level.period_column(),
        metrics = METRIC_COLUMNS.join(", "),
        table = level.table(),
    )
}

impl LevelCheck<'_> {
    /// Merges the expected rows of the periods `lo..=hi` with the stored
    /// ones, both in key order.
    fn compare(
        &mut self,
        plan: Plan,
        expected: &[(Key, Metrics)],
        lo: i64,
        hi: i64,
    ) -> Result<(), DbError> {
        let first = &mut self.first;
        let mut next = expected.iter().peekable();
        let mut rows = self.stored.query(&[plan.cuboid.code(), lo, hi])?;
        while rows.next()? {
            let (key, metrics) = read_stored(&rows);
            // What `usage::repair::find` looks for: a cell no events within
            // the limits can make.
            if metrics.iter().any(|v| !(0..=MAX_REACHABLE_SUM).contains(v)) {
                self.out_of_range += 1;
            }
            while let Some((missing, sums)) = next.next_if(|(k, _)| *k < key) {
                first.expected_side(missing, sums, None);
            }
            match next.next_if(|(k, _)| *k == key) {
                Some((_, sums)) if *sums == metrics => {}
                Some((_, sums)) => first.expected_side(&key, sums, Some(&metrics)),
                None => first.extra(&key, &metrics),
            }
        }
        for (missing, sums) in next {
            first.expected_side(missing, sums, None);
        }
        Ok(())
    }
}

/// A stored row as [`stored_sql`] reads it.
fn read_stored(row: &RawRows<'_, '_>) -> (Key, Metrics) {
    let mut key = [0; NDIMS + 2];
    for (column, value) in (0..).zip(key.iter_mut()) {
        *value = row.int(column);
    }
    let mut metrics = Metrics::default();
    for (column, value) in (NDIMS as i32 + 2..).zip(metrics.iter_mut()) {
        *value = row.int(column);
    }
    (key, metrics)
}

/// A row as `Mismatch` shows it: cuboid, dimensions, period, slot, metrics.
type Shown = Vec<i64>;

/// The differences to report, chosen as the SQL oracle orders them: a
/// row the events give that the table lacks or holds otherwise before a
/// row the table holds that the events do not give; the smallest by
/// (dimensions, period, slot) within each kind.
struct FirstDifference {
    cuboid: i64,
    expected_side: Option<([i64; NDIMS + 2], Shown, Option<Shown>)>,
    extra: Option<([i64; NDIMS + 2], Shown)>,
}

/// The order `verify_sql` reports in: dimensions, then period and slot.
fn report_order(key: &Key) -> [i64; NDIMS + 2] {
    let mut order = [0; NDIMS + 2];
    order[..NDIMS].copy_from_slice(&key[1..=NDIMS]);
    order[NDIMS] = key[0];
    order[NDIMS + 1] = key[NDIMS + 1];
    order
}

impl FirstDifference {
    fn new(cuboid: i64) -> Self {
        FirstDifference {
            cuboid,
            expected_side: None,
            extra: None,
        }
    }

    fn expected_side(&mut self, key: &Key, sums: &Metrics, stored: Option<&Metrics>) {
        let order = report_order(key);
        if self.expected_side.as_ref().is_none_or(|(o, ..)| order < *o) {
            let show = |metrics| shown(self.cuboid, key, metrics);
            self.expected_side = Some((order, show(sums), stored.map(show)));
        }
    }

    fn extra(&mut self, key: &Key, stored: &Metrics) {
        let order = report_order(key);
        if self.extra.as_ref().is_none_or(|(o, _)| order < *o) {
            self.extra = Some((order, shown(self.cuboid, key, stored)));
        }
    }

    fn into_mismatch(self, plan: Plan, level: Level) -> Option<Mismatch> {
        let mismatch = |expected, stored| Mismatch {
            table: level.table(),
            cuboid: plan.cuboid,
            expected,
            stored,
        };
        match (self.expected_side, self.extra) {
            (Some((_, expected, stored)), _) => Some(mismatch(Some(expected), stored)),
            (None, Some((_, stored))) => Some(mismatch(None, Some(stored))),
            (None, None) => None,
        }
    }
}

fn shown(cuboid: i64, key: &Key, metrics: &Metrics) -> Shown {
    let mut row = Vec::with_capacity(1 + key.len() + metrics.len());
    row.push(cuboid);
    row.extend_from_slice(&key[1..=NDIMS]);
    row.push(key[0]);
    row.push(key[NDIMS + 1]);
    row.extend_from_slice(metrics);
    row
}
