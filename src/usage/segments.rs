//! Reads that involve teams. Team is not a rollup dimension: which team
//! an event belongs to depends on when it happened (the membership of its
//! user then), so it is computed exactly at read time.
//!
//! Each range is cut at every membership start and end strictly inside it
//! ([`Timeline::split`]); within a piece every user is in one team
//! throughout, or in none. The pieces are read by user through the
//! planner ([`cells::read_cells`], exact for any boundary), and each
//! user's cell goes to their team of that piece. A read fenced to a team
//! ([`crate::model::Scope::Team`]) reads each piece for the users who were
//! members during it. The cost is the ranges times (the membership
//! changes inside them + 1), never the events.

use std::collections::HashMap;

use rusqlite::Connection;

use super::Totals;
use super::cells::{self, Constraints};
use super::rollup::Dim;
use crate::db::DbError;
use crate::model::TeamId;
use crate::teams::{self, Timeline};

/// What a read is grouped by: a rollup dimension, or the team each
/// event's user was in when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Dim(Dim),
    Team,
}

impl GroupBy {
    /// The name the API, pages and messages use (`group_by=team`).
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Dim(dim) => dim.name(),
            GroupBy::Team => "team",
        }
    }

    /// The rollup dimension, when it is one.
    pub fn dim(self) -> Option<Dim> {
        match self {
            GroupBy::Dim(dim) => Some(dim),
            GroupBy::Team => None,
        }
    }
}

impl From<Dim> for GroupBy {
    fn from(dim: Dim) -> GroupBy {
        GroupBy::Dim(dim)
    }
}

/// The group of usage whose user was in no team at the time.
pub const NO_TEAM: i64 = 0;

/// Label of [`NO_TEAM`] (team names cannot start with `(`).
pub const NO_TEAM_LABEL: &str = "(no team)";

/// The cells of every group within `constraints`, per range: as
/// [`cells::read_cells`], and also by team or fenced to a team.
pub(super) fn read(
    conn: &Connection,
    constraints: &Constraints,
    group_by: Option<GroupBy>,
    ranges: &[(i64, i64)],
) -> Result<HashMap<i64, Vec<Totals>>, DbError> {
    let fence = match (constraints.team, group_by) {
        (_, Some(GroupBy::Team)) => {
            let pieces = Pieces::new(conn, constraints.team, ranges)?;
            let mut out = HashMap::new();
            for (range, team, _, totals) in pieces.by_user(conn, constraints)? {
                add(&mut out, team, range, ranges.len(), &totals)?;
            }
            return Ok(out);
        }
        (Some(fence), _) => fence,
        (None, _) => {
            let dim = group_by.and_then(GroupBy::dim);
            return cells::read_cells(conn, constraints, dim, ranges);
        }
    };
    // Fenced to a team, grouped otherwise: the pieces with the same
    // members are read together, for those members only.
    let pieces = Pieces::new(conn, Some(fence), ranges)?;
    let mut by_members: HashMap<Vec<i64>, Vec<usize>> = HashMap::new();
    for (index, (_, from, _)) in pieces.list.iter().enumerate() {
        let members = pieces.timeline.members_at(fence.0, *from);
        if !members.is_empty() {
            by_members.entry(members).or_default().push(index);
        }
    }
    let mut out = HashMap::new();
    for (members, indexes) in by_members {
        let Some(narrowed) = narrow(constraints, &members) else {
            continue;
        };
        let piece_ranges: Vec<(i64, i64)> = indexes
            .iter()
            .map(|i| (pieces.list[*i].1, pieces.list[*i].2))
            .collect();
        let dim = group_by.and_then(GroupBy::dim);
        for (group, cells) in cells::read_cells(conn, &narrowed, dim, &piece_ranges)? {
            for (index, totals) in indexes.iter().zip(&cells) {
                add(&mut out, group, pieces.list[*index].0, ranges.len(), totals)?;
            }
        }
    }
    Ok(out)
}

/// The usage of each (team, user) over `range`: each user's usage in the
/// team they were in at the time ([`NO_TEAM`] for none).
pub(super) fn by_team_and_user(
    conn: &Connection,
    constraints: &Constraints,
    range: (i64, i64),
) -> Result<HashMap<(i64, i64), Totals>, DbError> {
    let pieces = Pieces::new(conn, constraints.team, &[range])?;
    let mut out: HashMap<(i64, i64), Totals> = HashMap::new();
    for (_, team, user, totals) in pieces.by_user(conn, constraints)? {
        out.entry((team, user)).or_default().checked_add(&totals)?;
    }
    Ok(out)
}

fn add(
    out: &mut HashMap<i64, Vec<Totals>>,
    group: i64,
    range: usize,
    ranges: usize,
    totals: &Totals,
) -> Result<(), DbError> {
    let cells = out
        .entry(group)
        .or_insert_with(|| vec![Totals::default(); ranges]);
    cells[range].checked_add(totals)?;
    Ok(())
}

/// `constraints` for `members` only, without the team fence (the caller
/// has applied it by choosing the pieces); `None` when no member is left.
fn narrow(constraints: &Constraints, members: &[i64]) -> Option<Constraints> {
    let mut narrowed = Constraints {
        team: None,
        ..constraints.clone()
    };
    match narrowed.dims.iter_mut().find(|(dim, _)| *dim == Dim::User) {
        Some((_, ids)) => ids.retain(|id| members.binary_search(id).is_ok()),
        None => narrowed.dims.push((Dim::User, members.to_vec())),
    }
    let empty = narrowed
        .dims
        .iter()
        .any(|(dim, ids)| *dim == Dim::User && ids.is_empty());
    (!empty).then_some(narrowed)
}

/// The ranges of a read cut at the membership changes inside them.
struct Pieces {
    timeline: Timeline,
    /// (index of the range, from, to) of each piece.
    list: Vec<(usize, i64, i64)>,
}

impl Pieces {
    /// The pieces of `ranges` for the memberships of `team` (or of every
    /// team).
    fn new(
        conn: &Connection,
        team: Option<TeamId>,
        ranges: &[(i64, i64)],
    ) -> Result<Pieces, DbError> {
        let span = (
            ranges.iter().map(|r| r.0).min(),
            ranges.iter().map(|r| r.1).max(),
        );
        let timeline = match span {
            (Some(from), Some(to)) if from < to => {
                Timeline::new(teams::store::overlapping(conn, team, from, to)?)
            }
            _ => Timeline::default(),
        };
        let list = ranges
            .iter()
            .enumerate()
            .flat_map(|(index, (from, to))| {
                timeline
                    .split(*from, *to)
                    .into_iter()
                    .map(move |(a, b)| (index, a, b))
            })
            .collect();
        Ok(Pieces { timeline, list })
    }

    /// Each piece's usage by user within `constraints`, as (range, team of
    /// the user in that piece, user, totals). Under a team fence, only the
    /// users who were in that team during the piece.
    fn by_user(
        &self,
        conn: &Connection,
        constraints: &Constraints,
    ) -> Result<Vec<(usize, i64, i64, Totals)>, DbError> {
        let fence = constraints.team;
        let unfenced = Constraints {
            team: None,
            ..constraints.clone()
        };
        let ranges: Vec<(i64, i64)> = self.list.iter().map(|p| (p.1, p.2)).collect();
        let mut out = Vec::new();
        for (user, cells) in cells::read_cells(conn, &unfenced, Some(Dim::User), &ranges)? {
            for ((range, from, _), totals) in self.list.iter().zip(cells) {
                if totals == Totals::default() {
                    continue;
                }
                let team = self.timeline.team_of(user, *from);
                if fence.is_some_and(|fence| team != Some(fence.0)) {
                    continue;
                }
                out.push((*range, team.unwrap_or(NO_TEAM), user, totals));
            }
        }
        Ok(out)
    }
}
