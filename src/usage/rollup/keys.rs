//! The keys of the rollups: the dimensions an event is described by, the
//! groupings (cuboids) and time levels kept, and where an instant falls
//! at each level (UTC calendar arithmetic, exact integers).

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
