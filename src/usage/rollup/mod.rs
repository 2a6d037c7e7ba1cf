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
//! **Consistency.** Rollups are additive upserts applied in the same
//! transaction as the events they summarise ([`apply`]), so a crash can
//! never leave them disagreeing with the raw rows. [`verify`] recomputes
//! every table with a plain `GROUP BY` over the events and names the first
//! difference; tests run it after every kind of write.

use std::collections::HashMap;

use rusqlite::{Connection, params};

mod check;

pub use check::{Mismatch, rebuild_sql, verify};

use super::Totals;
use crate::db::DbError;

pub const MS_PER_QUARTER: i64 = 900_000;
pub const MS_PER_HOUR: i64 = 3_600_000;
/// A block: four hours, six to a UTC day.
pub const MS_PER_BLOCK: i64 = 4 * MS_PER_HOUR;
pub const MS_PER_DAY: i64 = 86_400_000;

/// A dimension an event is described by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    User,
    Model,
    Activity,
    Project,
    Source,
    Provider,
}

impl Dim {
    /// The name the API, pages and messages use (`group_by=model`).
    pub fn name(self) -> &'static str {
        match self {
            Dim::User => "user",
            Dim::Model => "model",
            Dim::Activity => "activity",
            Dim::Project => "project",
            Dim::Source => "source",
            Dim::Provider => "provider",
        }
    }

    pub const ALL: [Dim; 6] = [
        Dim::User,
        Dim::Model,
        Dim::Activity,
        Dim::Project,
        Dim::Source,
        Dim::Provider,
    ];

    /// The column in `events` and in every rollup table.
    pub fn column(self) -> &'static str {
        match self {
            Dim::User => "user_id",
            Dim::Model => "model_id",
            Dim::Activity => "activity_id",
            Dim::Project => "project_id",
            Dim::Source => "source_id",
            Dim::Provider => "provider_id",
        }
    }
}

/// A grouping kept in the rollups (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cuboid {
    Total = 0,
    User = 1,
    Model = 2,
    Activity = 3,
    Project = 4,
    UserModel = 5,
    UserActivity = 6,
    Full = 7,
}

impl Cuboid {
    pub const ALL: [Cuboid; 8] = [
        Cuboid::Total,
        Cuboid::User,
        Cuboid::Model,
        Cuboid::Activity,
        Cuboid::Project,
        Cuboid::UserModel,
        Cuboid::UserActivity,
        Cuboid::Full,
    ];

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn dims(self) -> &'static [Dim] {
        match self {
            Cuboid::Total => &[],
            Cuboid::User => &[Dim::User],
            Cuboid::Model => &[Dim::Model],
            Cuboid::Activity => &[Dim::Activity],
            Cuboid::Project => &[Dim::Project],
            Cuboid::UserModel => &[Dim::User, Dim::Model],
            Cuboid::UserActivity => &[Dim::User, Dim::Activity],
            Cuboid::Full => &Dim::ALL,
        }
    }

    pub fn has(self, dim: Dim) -> bool {
        self.dims().contains(&dim)
    }

    /// The within-day levels this cuboid keeps. Rows of a cuboid with a
    /// user and another dimension are nearly as many as events at the
    /// quarter level, so those keep hours only; the full cuboid keeps
    /// neither.
    pub fn within_day(self) -> WithinDay {
        match self {
            Cuboid::Full => WithinDay::NONE,
            Cuboid::UserModel | Cuboid::UserActivity => WithinDay {
                hour: true,
                quarter: false,
            },
            _ => WithinDay::ALL,
        }
    }

    /// Whether this cuboid keeps rows at `level`.
    pub fn keeps(self, level: Level) -> bool {
        match level {
            Level::Month | Level::Day => true,
            // Blocks are sums of hours: kept wherever hours are.
            Level::Block | Level::Hour => self.within_day().hour,
            Level::Quarter => self.within_day().quarter,
        }
    }

    /// The smallest cuboid that holds all of `dims`.
    pub fn smallest_holding(dims: &[Dim]) -> Cuboid {
        Cuboid::ALL
            .into_iter()
            .find(|cuboid| dims.iter().all(|dim| cuboid.has(*dim)))
            .unwrap_or(Cuboid::Full)
    }
}

/// A time level of the rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Month,
    Day,
    /// Four hours of a UTC day (slot 0..5).
    Block,
    Hour,
    Quarter,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Month,
        Level::Day,
        Level::Block,
        Level::Hour,
        Level::Quarter,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Level::Month => "rollup_month",
            Level::Day => "rollup_day",
            Level::Block => "rollup_block",
            Level::Hour => "rollup_hour",
            Level::Quarter => "rollup_quarter",
        }
    }

    /// The column that numbers this level's periods (`month` or `day`).
    pub fn period_column(self) -> &'static str {
        match self {
            Level::Month => "month",
            _ => "day",
        }
    }

    pub fn is_within_day(self) -> bool {
        matches!(self, Level::Block | Level::Hour | Level::Quarter)
    }
}

/// The dimension ids of an event; 0 for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DimValues {
    pub user: i64,
    pub model: i64,
    pub activity: i64,
    pub project: i64,
    pub source: i64,
    pub provider: i64,
}

impl DimValues {
    pub fn get(&self, dim: Dim) -> i64 {
        match dim {
            Dim::User => self.user,
            Dim::Model => self.model,
            Dim::Activity => self.activity,
            Dim::Project => self.project,
            Dim::Source => self.source,
            Dim::Provider => self.provider,
        }
    }

    pub fn set(&mut self, dim: Dim, value: i64) {
        match dim {
            Dim::User => self.user = value,
            Dim::Model => self.model = value,
            Dim::Activity => self.activity = value,
            Dim::Project => self.project = value,
            Dim::Source => self.source = value,
            Dim::Provider => self.provider = value,
        }
    }

    /// Keeps only the dimensions of `cuboid`; the others become 0.
    pub fn project_onto(&self, cuboid: Cuboid) -> DimValues {
        let mut kept = DimValues::default();
        for dim in cuboid.dims() {
            kept.set(*dim, self.get(*dim));
        }
        kept
    }
}

/// Where a UTC instant falls at one level: the period (month or day
/// number) and, within a day, the slot (hour or quarter of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeKey {
    pub level: Level,
    pub period: i64,
    pub slot: i64,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Howard Hinnant's algorithm: exact integer arithmetic, no tables.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil (year, month) of a day number.
pub fn civil_month_of_day(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Months since 1970-01 of a day number.
pub fn month_of_day(days: i64) -> i64 {
    let (year, month) = civil_month_of_day(days);
    (year - 1970) * 12 + month - 1
}

/// The first day number of a month number.
pub fn first_day_of_month(month: i64) -> i64 {
    let year = 1970 + month.div_euclid(12);
    days_from_civil(year, month.rem_euclid(12) + 1, 1)
}

/// The keys of `ts_ms` at every level.
pub fn time_keys(ts_ms: i64) -> [TimeKey; 5] {
    let day = ts_ms.div_euclid(MS_PER_DAY);
    let within = ts_ms.rem_euclid(MS_PER_DAY);
    [
        TimeKey {
            level: Level::Month,
            period: month_of_day(day),
            slot: 0,
        },
        TimeKey {
            level: Level::Day,
            period: day,
            slot: 0,
        },
        TimeKey {
            level: Level::Block,
            period: day,
            slot: within / MS_PER_BLOCK,
        },
        TimeKey {
            level: Level::Hour,
            period: day,
            slot: within / MS_PER_HOUR,
        },
        TimeKey {
            level: Level::Quarter,
            period: day,
            slot: within / MS_PER_QUARTER,
        },
    ]
}

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

/// Which within-day levels a cuboid keeps (month and day it always has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithinDay {
    pub hour: bool,
    pub quarter: bool,
}

impl WithinDay {
    pub const ALL: WithinDay = WithinDay {
        hour: true,
        quarter: true,
    };
    pub const NONE: WithinDay = WithinDay {
        hour: false,
        quarter: false,
    };

    pub(crate) fn has(self, level: Level) -> bool {
        match level {
            Level::Month | Level::Day => true,
            Level::Block | Level::Hour => self.hour,
            Level::Quarter => self.quarter,
        }
    }

    /// The finest block rollups hold: a quarter, an hour or a whole day.
    pub(crate) fn granule(self) -> i64 {
        if self.quarter {
            MS_PER_QUARTER
        } else if self.hour {
            MS_PER_HOUR
        } else {
            MS_PER_DAY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        for day in (-800..30_000).step_by(7) {
            let (year, month) = civil_month_of_day(day);
            let first = days_from_civil(year, month, 1);
            assert!(first <= day && day - first < 31, "day {day}");
            assert_eq!(first_day_of_month(month_of_day(day)), first);
        }
    }

    #[test]
    fn time_keys_of_an_instant() {
        // 2026-03-08T14:47:00Z
        let ts = (days_from_civil(2026, 3, 8) * 86_400 + 14 * 3600 + 47 * 60) * 1000;
        let keys = time_keys(ts);
        assert_eq!(keys[0].period, (2026 - 1970) * 12 + 2);
        assert_eq!(keys[1].period, days_from_civil(2026, 3, 8));
        assert_eq!((keys[2].level, keys[2].slot), (Level::Block, 3));
        assert_eq!((keys[3].level, keys[3].slot), (Level::Hour, 14));
        assert_eq!((keys[4].level, keys[4].slot), (Level::Quarter, 14 * 4 + 3));
    }

    #[test]
    fn smallest_cuboid() {
        assert_eq!(Cuboid::smallest_holding(&[]), Cuboid::Total);
        assert_eq!(Cuboid::smallest_holding(&[Dim::Model]), Cuboid::Model);
        assert_eq!(
            Cuboid::smallest_holding(&[Dim::Model, Dim::User]),
            Cuboid::UserModel
        );
        assert_eq!(
            Cuboid::smallest_holding(&[Dim::Project, Dim::User]),
            Cuboid::Full
        );
        assert_eq!(Cuboid::smallest_holding(&[Dim::Source]), Cuboid::Full);
    }
}
