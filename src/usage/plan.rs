//! The planner: turns a bucket `[a, b)` of UTC milliseconds into signed
//! pieces to read — rollup rows at some level, or raw events at the edges —
//! whose sum is exactly the bucket's total. See [`super::rollup`] for why.

use super::rollup::{
    Level, MS_PER_BLOCK, MS_PER_DAY, MS_PER_HOUR, MS_PER_QUARTER, WithinDay, first_day_of_month,
    month_of_day,
};

/// What a piece reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// One rollup row: `period` is a month or day number, `slot` the hour
    /// or quarter of the day (0 for month and day).
    Rollup {
        level: Level,
        period: i64,
        slot: i64,
    },
    /// Raw events with `from_ms <= ts_ms < to_ms`.
    Raw { from_ms: i64, to_ms: i64 },
}

/// `sign × source` contributes to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub sign: i64,
    pub source: Source,
}

fn rollup(level: Level, period: i64, slot: i64) -> Source {
    Source::Rollup {
        level,
        period,
        slot,
    }
}

/// The cheapest exact plan for `[a, b)`: either a direct cover with the
/// coarsest aligned blocks, or whole days plus the difference of two
/// within-day prefixes. Parts finer than the levels `within` allows are
/// read from raw events.
pub fn plan(a: i64, b: i64, within: WithinDay) -> Vec<Piece> {
    if a >= b {
        return Vec::new();
    }
    let cover = direct_cover(a, b, within);
    let prefixes = prefix_difference(a, b, within);
    if cost(&prefixes) < cost(&cover) {
        prefixes
    } else {
        cover
    }
}

/// A rollup row costs one; raw events cost a seek plus what they span.
fn cost(pieces: &[Piece]) -> i64 {
    pieces
        .iter()
        .map(|p| match p.source {
            Source::Rollup { .. } => 1,
            Source::Raw { from_ms, to_ms } => 4 + (to_ms - from_ms) / MS_PER_QUARTER,
        })
        .sum()
}

fn floor_to(t: i64, unit: i64) -> i64 {
    t - t.rem_euclid(unit)
}

fn ceil_to(t: i64, unit: i64) -> i64 {
    let rest = t.rem_euclid(unit);
    if rest == 0 { t } else { t + unit - rest }
}

/// Covers `[a, b)` left to right with the largest aligned block that fits.
fn direct_cover(a: i64, b: i64, within: WithinDay) -> Vec<Piece> {
    let granule = within.granule();
    let (start, end) = (ceil_to(a, granule), floor_to(b, granule));
    if start >= end {
        return vec![raw(1, a, b)];
    }
    let mut pieces = Vec::new();
    if a < start {
        pieces.push(raw(1, a, start));
    }
    let mut cur = start;
    while cur < end {
        let (source, len) = largest_block(cur, end, within);
        pieces.push(Piece { sign: 1, source });
        cur += len;
    }
    if end < b {
        pieces.push(raw(1, end, b));
    }
    pieces
}

/// The largest block starting at granule-aligned `cur` that ends by `end`.
fn largest_block(cur: i64, end: i64, within: WithinDay) -> (Source, i64) {
    let day = cur.div_euclid(MS_PER_DAY);
    let offset = cur.rem_euclid(MS_PER_DAY);
    if offset == 0 {
        let month = month_of_day(day);
        if first_day_of_month(month) == day {
            let len = (first_day_of_month(month + 1) - day) * MS_PER_DAY;
            if cur + len <= end {
                return (rollup(Level::Month, month, 0), len);
            }
        }
        if cur + MS_PER_DAY <= end {
            return (rollup(Level::Day, day, 0), MS_PER_DAY);
        }
    }
    if within.has(Level::Block) && offset % MS_PER_BLOCK == 0 && cur + MS_PER_BLOCK <= end {
        return (
            rollup(Level::Block, day, offset / MS_PER_BLOCK),
            MS_PER_BLOCK,
        );
    }
    if within.has(Level::Hour) && offset % MS_PER_HOUR == 0 && cur + MS_PER_HOUR <= end {
        return (rollup(Level::Hour, day, offset / MS_PER_HOUR), MS_PER_HOUR);
    }
    (
        rollup(Level::Quarter, day, offset / MS_PER_QUARTER),
        MS_PER_QUARTER,
    )
}

fn raw(sign: i64, from_ms: i64, to_ms: i64) -> Piece {
    Piece {
        sign,
        source: Source::Raw { from_ms, to_ms },
    }
}

fn negated(pieces: Vec<Piece>) -> impl Iterator<Item = Piece> {
    pieces.into_iter().map(|p| Piece { sign: -p.sign, ..p })
}

/// `whole UTC days in [day(a), day(b))  −  P(a)  +  P(b)`.
fn prefix_difference(a: i64, b: i64, within: WithinDay) -> Vec<Piece> {
    let first_day = a.div_euclid(MS_PER_DAY);
    let last_day = b.div_euclid(MS_PER_DAY);
    let mut pieces = Vec::new();
    if first_day < last_day {
        // Whole days as months and days: the direct cover of that span.
        pieces.extend(direct_cover(
            first_day * MS_PER_DAY,
            last_day * MS_PER_DAY,
            within,
        ));
    }
    pieces.extend(negated(day_prefix(a, within)));
    pieces.extend(day_prefix(b, within));
    pieces
}

/// `P(t) = [start of t's UTC day, t)` as signed pieces: the blocks from
/// midnight, or the day minus the blocks to the next midnight, whichever
/// costs less; the part of a granule before `t` is raw.
fn day_prefix(t: i64, within: WithinDay) -> Vec<Piece> {
    let day_start = floor_to(t, MS_PER_DAY);
    if t == day_start {
        return Vec::new();
    }
    let aligned = floor_to(t, within.granule());
    let mut pieces = Vec::new();
    if aligned < t {
        pieces.push(raw(1, aligned, t));
    }
    let mut prefix = if aligned > day_start {
        direct_cover(day_start, aligned, within)
    } else {
        Vec::new()
    };
    // The suffix form: the whole day, less [t, next midnight).
    let mut suffix = vec![Piece {
        sign: 1,
        source: rollup(Level::Day, day_start / MS_PER_DAY, 0),
    }];
    suffix.extend(negated(direct_cover(t, day_start + MS_PER_DAY, within)));
    if cost(&suffix) < cost(&prefix) + cost(&pieces) {
        return suffix;
    }
    pieces.append(&mut prefix);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::rollup::days_from_civil;

    const H: i64 = MS_PER_HOUR;
    const Q: i64 = MS_PER_QUARTER;

    /// Checks a plan by weighing every millisecond: each instant in [a, b)
    /// must be counted exactly once and none outside it, sampled on a grid
    /// fine enough to hit every piece.
    fn assert_exact(a: i64, b: i64, within: WithinDay) {
        let pieces = plan(a, b, within);
        let covers = |source: &Source, t: i64| match *source {
            Source::Raw { from_ms, to_ms } => from_ms <= t && t < to_ms,
            Source::Rollup {
                level,
                period,
                slot,
            } => {
                let day = t.div_euclid(MS_PER_DAY);
                let within = t.rem_euclid(MS_PER_DAY);
                match level {
                    Level::Month => month_of_day(day) == period,
                    Level::Day => day == period,
                    Level::Block => day == period && within / MS_PER_BLOCK == slot,
                    Level::Hour => day == period && within / H == slot,
                    Level::Quarter => day == period && within / Q == slot,
                }
            }
        };
        let lo = a.div_euclid(MS_PER_DAY) * MS_PER_DAY - 40 * MS_PER_DAY;
        let hi = b.div_euclid(MS_PER_DAY) * MS_PER_DAY + 40 * MS_PER_DAY;
        let mut probes: Vec<i64> = (lo..hi).step_by((7 * 60_000) as usize).collect();
        probes.extend([a - 1, a, a + 1, b - 1, b, b + 1]);
        for t in probes {
            let weight: i64 = pieces
                .iter()
                .filter(|p| covers(&p.source, t))
                .map(|p| p.sign)
                .sum();
            let expected = i64::from(a <= t && t < b);
            assert_eq!(weight, expected, "t={t} in plan of [{a}, {b}): {pieces:?}");
        }
        if within == WithinDay::ALL {
            for piece in &pieces {
                if let Source::Raw { from_ms, to_ms } = piece.source {
                    assert!(to_ms - from_ms < Q, "raw only inside a quarter: {piece:?}");
                }
            }
        }
    }

    fn at(y: i64, m: i64, d: i64, hour: i64, minute: i64) -> i64 {
        days_from_civil(y, m, d) * MS_PER_DAY + hour * H + minute * 60_000
    }

    #[test]
    fn local_days_in_new_york_read_few_rows() {
        let (a, b) = (at(2026, 3, 2, 5, 0), at(2026, 3, 3, 5, 0));
        assert_exact(a, b, WithinDay::ALL);
        assert_eq!(
            plan(a, b, WithinDay::ALL).len(),
            5,
            "a day, and a block and an hour each side"
        );
        // Los Angeles: midnight at 08:00 UTC is two blocks each side.
        let (a, b) = (at(2026, 1, 5, 8, 0), at(2026, 1, 6, 8, 0));
        assert_exact(a, b, WithinDay::ALL);
        assert_eq!(plan(a, b, WithinDay::ALL).len(), 5);
    }

    #[test]
    fn kathmandu_and_kolkata_and_odd_edges_are_exact() {
        for (a, b) in [
            (at(2026, 1, 1, 18, 15), at(2026, 1, 2, 18, 15)),
            (at(2026, 1, 1, 18, 30), at(2026, 1, 2, 18, 30)),
            (at(2026, 1, 31, 18, 30), at(2026, 2, 28, 18, 30)),
            (at(2026, 1, 1, 0, 0), at(2027, 1, 1, 0, 0)),
            (at(2026, 1, 1, 13, 7) + 123, at(2026, 3, 9, 3, 59) + 17),
            (at(2026, 1, 1, 13, 7), at(2026, 1, 1, 13, 9)),
            (at(2026, 1, 1, 10, 0), at(2026, 1, 1, 11, 0)),
            (at(2026, 1, 1, 10, 45), at(2026, 1, 1, 23, 30)),
        ] {
            for within in [
                WithinDay::ALL,
                WithinDay::NONE,
                WithinDay {
                    hour: true,
                    quarter: false,
                },
            ] {
                assert_exact(a, b, within);
            }
        }
    }

    #[test]
    fn a_utc_month_is_one_row() {
        let pieces = plan(at(2026, 2, 1, 0, 0), at(2026, 3, 1, 0, 0), WithinDay::ALL);
        assert_eq!(pieces.len(), 1);
        assert!(matches!(
            pieces[0].source,
            Source::Rollup {
                level: Level::Month,
                ..
            }
        ));
    }
}
