//! Memberships over time, for reads: where a range must be split so that
//! every user's team is constant in each piece, and whose team a user's
//! usage in a piece is. Pure: the intervals come from
//! [`super::store::overlapping`].

use std::collections::HashMap;

/// One user's time in one team, `[since_ms, until_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub user: i64,
    pub team: i64,
    pub since_ms: i64,
    /// `None` while current.
    pub until_ms: Option<i64>,
}

impl Interval {
    fn holds(&self, at_ms: i64) -> bool {
        self.since_ms <= at_ms && self.until_ms.is_none_or(|until| at_ms < until)
    }
}

/// The memberships of a span, by user, with every boundary in it.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Each user's intervals, in time order (they never overlap).
    by_user: HashMap<i64, Vec<Interval>>,
    /// Every start and end, sorted, once each.
    boundaries: Vec<i64>,
}

impl Timeline {
    pub fn new(intervals: Vec<Interval>) -> Timeline {
        let mut boundaries = Vec::with_capacity(intervals.len() * 2);
        let mut by_user: HashMap<i64, Vec<Interval>> = HashMap::new();
        for interval in intervals {
            boundaries.push(interval.since_ms);
            boundaries.extend(interval.until_ms);
            by_user.entry(interval.user).or_default().push(interval);
        }
        for list in by_user.values_mut() {
            list.sort_by_key(|i| i.since_ms);
        }
        boundaries.sort_unstable();
        boundaries.dedup();
        Timeline {
            by_user,
            boundaries,
        }
    }

    /// `[from, to)` cut at every boundary strictly inside it: in each
    /// piece every user is in one team throughout, or in none.
    pub fn split(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let first = self.boundaries.partition_point(|b| *b <= from_ms);
        let mut pieces = Vec::new();
        let mut start = from_ms;
        for boundary in &self.boundaries[first..] {
            if *boundary >= to_ms {
                break;
            }
            pieces.push((start, *boundary));
            start = *boundary;
        }
        if start < to_ms {
            pieces.push((start, to_ms));
        }
        pieces
    }

    /// The team `user` was in at `at_ms`, if any.
    pub fn team_of(&self, user: i64, at_ms: i64) -> Option<i64> {
        let list = self.by_user.get(&user)?;
        // The last interval starting at or before `at_ms` is the only one
        // that can hold it.
        let index = list.partition_point(|i| i.since_ms <= at_ms);
        let interval = list.get(index.checked_sub(1)?)?;
        interval.holds(at_ms).then_some(interval.team)
    }

    /// The users in `team` at `at_ms`, sorted.
    pub fn members_at(&self, team: i64, at_ms: i64) -> Vec<i64> {
        let mut members: Vec<i64> = self
            .by_user
            .keys()
            .copied()
            .filter(|user| self.team_of(*user, at_ms) == Some(team))
            .collect();
        members.sort_unstable();
        members
    }

    /// How many boundaries the span holds (what bounds the pieces a read
    /// makes: at most one per boundary and range).
    pub fn boundaries(&self) -> usize {
        self.boundaries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(user: i64, team: i64, since_ms: i64, until_ms: Option<i64>) -> Interval {
        Interval {
            user,
            team,
            since_ms,
            until_ms,
        }
    }

    #[test]
    fn a_range_is_cut_at_the_boundaries_inside_it_only() {
        let timeline = Timeline::new(vec![
            at(1, 10, i64::MIN, Some(100)),
            at(1, 20, 100, None),
            at(2, 20, 50, Some(300)),
        ]);
        for (from, to, pieces) in [
            (0, 1000, vec![(0, 50), (50, 100), (100, 300), (300, 1000)]),
            (50, 100, vec![(50, 100)]),
            (60, 90, vec![(60, 90)]),
            (100, 101, vec![(100, 101)]),
            (99, 101, vec![(99, 100), (100, 101)]),
        ] {
            assert_eq!(timeline.split(from, to), pieces, "[{from}, {to})");
        }
    }

    #[test]
    fn a_user_is_in_the_team_whose_interval_holds_the_instant() {
        let timeline = Timeline::new(vec![
            at(1, 20, 100, None),
            at(1, 10, i64::MIN, Some(100)),
            at(2, 20, 50, Some(300)),
        ]);
        for (user, instant, team) in [
            (1, -5_000, Some(10)),
            (1, 99, Some(10)),
            (1, 100, Some(20)),
            (1, 10_000, Some(20)),
            (2, 49, None),
            (2, 50, Some(20)),
            (2, 299, Some(20)),
            (2, 300, None),
            (3, 100, None),
        ] {
            assert_eq!(timeline.team_of(user, instant), team, "{user} at {instant}");
        }
        assert_eq!(timeline.members_at(20, 100), [1, 2]);
        assert_eq!(timeline.members_at(20, 60), [2]);
        assert_eq!(timeline.members_at(10, 60), [1]);
    }
}
