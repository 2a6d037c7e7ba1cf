//! From the per-day sums of one grouping to the rows each of its levels
//! should hold (finest first, each coarser level summed from the one
//! before), and the comparison of those rows with a rollup table read in
//! key order.

use rusqlite::Connection;

use super::scan::{Plan, Sums, kept_levels, slot_ms};
use super::{Metrics, Mismatch, NDIMS, add_metrics};
use crate::db::DbError;
use crate::usage::limits::MAX_REACHABLE_SUM;
use crate::usage::rollup::{Dim, Level, METRIC_COLUMNS};

/// A row's key in the tables' key order: period, the dimensions, slot.
pub(super) type Key = [i64; NDIMS + 2];
type Rows = Vec<(Key, Metrics)>;

/// What one grouping's check found at each level it keeps: the first
/// difference and the number of stored rows out of range.
pub(super) type Found = Vec<(Level, Option<Mismatch>, i64)>;

/// Checks every level of the grouping `plans[index]` against its table.
pub(super) fn check_cuboid(
    conn: &Connection,
    sums: &Sums,
    plans: &[Plan],
    index: usize,
) -> Result<Found, DbError> {
    let plan = plans[index];
    let mut rows = granule_rows(sums, index);
    let mut width = Some(plan.granule_ms);
    let mut found = Vec::new();
    for level in kept_levels(plan.cuboid) {
        rows = coarsen(rows, width, level)?;
        width = slot_ms(level);
        let (mismatch, out_of_range) = compare(conn, plan, level, &rows)?;
        found.push((level, mismatch, out_of_range));
    }
    Ok(found)
}

/// The grouping's sums as rows keyed (day, dimensions, slot at the
/// granule), in key order: days in order, each day's rows sorted.
fn granule_rows(sums: &Sums, index: usize) -> Rows {
    let mut days: Vec<i64> = sums.days.keys().copied().collect();
    days.sort_unstable();
    let mut rows = Vec::new();
    for day in days {
        let start = rows.len();
        rows.extend(sums.days[&day][index].iter().map(|(place, metrics)| {
            let mut key = [0; NDIMS + 2];
            key[0] = day;
            key[1..].copy_from_slice(place);
            (key, *metrics)
        }));
        rows[start..].sort_unstable_by_key(|(key, _)| *key);
    }
    rows
}

/// Sums `rows` (slots `width` ms wide, or months when `None`) up to
/// `level`. The same width returns them as they are.
fn coarsen(rows: Rows, width: Option<i64>, level: Level) -> Result<Rows, DbError> {
    let target = slot_ms(level);
    if target == width {
        return Ok(rows);
    }
    let Some(width) = width else {
        // Nothing is finer than a month but a month.
        return Err(DbError::Refused(format!(
            "verify: cannot derive {} from months",
            level.table()
        )));
    };
    let mut month_of = MonthCache::default();
    let mut out: Rows = rows
        .into_iter()
        .map(|(mut key, metrics)| {
            let slot = key[NDIMS + 1];
            match target {
                // A day splits evenly into every slot width we keep.
                Some(target) => key[NDIMS + 1] = slot * width / target,
                None => {
                    key[0] = month_of.get(key[0]);
                    key[NDIMS + 1] = 0;
                }
            }
            (key, metrics)
        })
        .collect();
    // Within a day the order is kept (nearly free to sort); months
    // interleave days and need the sort.
    out.sort_unstable_by_key(|(key, _)| *key);
    coalesce(out)
}

/// Adds up runs of equal keys in sorted rows.
fn coalesce(rows: Rows) -> Result<Rows, DbError> {
    let mut out: Rows = Vec::with_capacity(rows.len());
    for (key, metrics) in rows {
        match out.last_mut() {
            Some((last, sum)) if *last == key => add_metrics(sum, &metrics)?,
            _ => out.push((key, metrics)),
        }
    }
    Ok(out)
}

/// Months since 1970-01 of a day number, remembered for the last day
/// asked (rows come day by day).
#[derive(Default)]
struct MonthCache {
    last: Option<(i64, i64)>,
}

impl MonthCache {
    fn get(&mut self, day: i64) -> i64 {
        match self.last {
            Some((last_day, month)) if last_day == day => month,
            _ => {
                let month = month_of_day(day);
                self.last = Some((day, month));
                month
            }
        }
    }
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

/// The stored rows of one grouping at one level, in key order.
fn stored_sql(plan: Plan, level: Level) -> String {
    let dims = Dim::ALL.map(Dim::column).join(", ");
    // A whole day or month has the one slot 0 (and ORDER BY 0 would
    // name a column).
    let (slot, order_slot) = match level.is_within_day() {
        true => ("slot", ", slot"),
        false => ("0", ""),
    };
    format!(
        "SELECT {period}, {dims}, {slot}, {metrics} FROM {table} WHERE cuboid = {cuboid} \
         ORDER BY {period}, {dims}{order_slot}",
        period = level.period_column(),
        metrics = METRIC_COLUMNS.join(", "),
        table = level.table(),
        cuboid = plan.cuboid.code(),
    )
}

/// Merges the expected rows with the stored ones, both in key order.
fn compare(
    conn: &Connection,
    plan: Plan,
    level: Level,
    expected: &Rows,
) -> Result<(Option<Mismatch>, i64), DbError> {
    let mut out_of_range = 0;
    let mut first = FirstDifference {
        cuboid: plan.cuboid.code(),
        expected_side: None,
        extra: None,
    };
    let mut next = expected.iter().peekable();
    let mut stmt = conn.prepare(&stored_sql(plan, level))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut key = [0; NDIMS + 2];
        for (i, value) in key.iter_mut().enumerate() {
            *value = row.get(i)?;
        }
        let mut metrics = Metrics::default();
        for (i, value) in metrics.iter_mut().enumerate() {
            *value = row.get(NDIMS + 2 + i)?;
        }
        // What `usage::repair::find` looks for: a cell no events within
        // the limits can make.
        if metrics.iter().any(|v| !(0..=MAX_REACHABLE_SUM).contains(v)) {
            out_of_range += 1;
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
    Ok((first.into_mismatch(plan, level), out_of_range))
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
