//! The check on two connections reading one snapshot: each reads half of
//! the events (by rowid) and sums every grouping over them, day by day;
//! each checks half of the groupings. A day's sums of the groupings the
//! other connection checks go to it over a channel, and a day with events
//! in both halves is checked once both parts are in. Each side takes in
//! what the other sent whenever it closes a day of its own, so that only
//! the days still open or in flight are held.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, Sender};

use rusqlite::Connection;

use super::compare::{Checker, Found};
use super::scan::{self, DayMap, DaySums, Plan, Totals};
use super::{Cuboid, add_metrics};
use crate::db::DbError;

/// What one side sends the other: first the number of events of each day
/// in its half, then its part of each day's sums of the other's groupings.
pub(super) enum Message {
    Counts(Vec<(i64, i64)>),
    Day(i64, DaySums),
}

/// One side's channel ends.
pub(super) struct Link {
    pub to: Sender<Message>,
    pub from: Receiver<Message>,
}

/// A pair of linked sides.
pub(super) fn link() -> (Link, Link) {
    let (to_b, from_a) = std::sync::mpsc::channel();
    let (to_a, from_b) = std::sync::mpsc::channel();
    (
        Link {
            to: to_b,
            from: from_b,
        },
        Link {
            to: to_a,
            from: from_a,
        },
    )
}

/// What one side found: `None` when the other side stopped before sending
/// all it had to (its own result says why).
pub(super) type Half = Option<(Totals, Vec<(Cuboid, Found)>)>;

/// The days waiting for their other part, and the checker they go to.
struct Merger<'c> {
    checker: Checker<'c>,
    /// How many parts each day with events comes in (1 or 2), not yet in.
    parts_left: HashMap<i64, u8>,
    /// The parts in of the days still waiting for another.
    waiting: HashMap<i64, DaySums>,
}

impl Merger<'_> {
    /// Takes in one part of a day's sums (of this side's groupings);
    /// checks the day once all its parts are in.
    fn part(&mut self, day: i64, sums: DaySums) -> Result<(), DbError> {
        let left = self.parts_left.get_mut(&day).ok_or_else(changed)?;
        *left = left.checked_sub(1).ok_or_else(changed)?;
        let sums = match self.waiting.remove(&day) {
            Some(mut earlier) => {
                for (into, from) in earlier.iter_mut().zip(sums) {
                    merge(into, from)?;
                }
                earlier
            }
            None => sums,
        };
        if *left == 0 {
            self.parts_left.remove(&day);
            self.checker.day(day, &sums)
        } else {
            self.waiting.insert(day, sums);
            Ok(())
        }
    }

    fn take(&mut self, message: Message) -> Result<(), DbError> {
        match message {
            Message::Day(day, sums) => self.part(day, sums),
            Message::Counts(_) => Err(changed()),
        }
    }
}

/// Adds the sums of `from` to those of `into` (the smaller map into the
/// larger would be cheaper; days in two parts are few).
fn merge(into: &mut DayMap, from: DayMap) -> Result<(), DbError> {
    for (key, metrics) in from {
        add_metrics(into.entry(key).or_default(), &metrics)?;
    }
    Ok(())
}

fn changed() -> DbError {
    DbError::Refused("verify: the two connections saw different events".into())
}

/// One side: sums every grouping over the events with rowids in
/// `[first, last]`, sends the other side its groupings' part of each day,
/// and checks the groupings `mine` marks (in `Plan::all()` order).
pub(super) fn half(
    conn: &Connection,
    first: i64,
    last: i64,
    mine: &[bool],
    link: Link,
) -> Result<Half, DbError> {
    let Link { to, from } = link;
    let counts = scan::day_counts(conn, first, last)?;
    // A failed send means the other side stopped: its result says why.
    let _ = to.send(Message::Counts(counts.clone()));
    let Ok(Message::Counts(theirs)) = from.recv() else {
        return Ok(None);
    };
    let mut parts: BTreeMap<i64, u8> = BTreeMap::new();
    for (day, _) in counts.iter().chain(&theirs) {
        *parts.entry(*day).or_default() += 1;
    }
    let days: Vec<i64> = parts.keys().copied().collect();
    let all = Plan::all();
    let plans: Vec<Plan> = all
        .iter()
        .zip(mine)
        .filter(|(_, mine)| **mine)
        .map(|(plan, _)| *plan)
        .collect();
    let mut merger = Merger {
        checker: Checker::new(conn, &plans, &days)?,
        parts_left: parts.into_iter().collect(),
        waiting: HashMap::new(),
    };
    let totals = scan::scan(conn, &all, first, last, &counts, |day, sums| {
        let (keep, give): (Vec<_>, Vec<_>) = sums.into_iter().zip(mine).partition(|(_, m)| **m);
        let give = give.into_iter().map(|(sums, _)| sums).collect();
        let _ = to.send(Message::Day(day, give));
        merger.part(day, keep.into_iter().map(|(sums, _)| sums).collect())?;
        while let Ok(message) = from.try_recv() {
            merger.take(message)?;
        }
        Ok(())
    })?;
    // Until the other side has sent all it will (it drops its sender).
    drop(to);
    for message in from {
        merger.take(message)?;
    }
    if !merger.parts_left.is_empty() {
        return Ok(None);
    }
    Ok(Some((totals, merger.checker.finish()?)))
}
