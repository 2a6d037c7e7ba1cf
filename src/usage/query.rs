//! The one query layer: usage series, totals with the change against the
//! previous period, and top-N breakdowns. Every function takes a
//! [`Scope`]; the rollups are read through the planner ([`super::plan`]).
//!
//! A filter on a session or a machine ([`Label`]) cannot be answered from
//! the rollups, which do not hold them: such a read takes every range from
//! the raw events (through their session and machine indexes), exactly,
//! at a cost that grows with the events it selects rather than with the
//! number of buckets.
//!
//! Team is no rollup dimension either: a read grouped by team, or fenced
//! to one ([`Scope::Team`]), is split at the membership changes inside its
//! ranges ([`super::segments`]), exactly, at a cost of the buckets times
//! the changes + 1.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::Connection;

use super::buckets::{self, Bucket, BucketError, BucketSize};
use super::cells::resolve_filters;
use super::rollup::Dim;
use super::{Scope, Totals, dims, segments};
use crate::db::DbError;
use crate::model::TeamId;
use crate::teams;

pub use super::cells::{Filters, NONE_LABEL};
pub use super::segments::{GroupBy, NO_TEAM_LABEL};

#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    pub zone: TimeZone,
    pub bucket: BucketSize,
    pub group_by: Option<GroupBy>,
    pub filters: Filters,
}

/// A usage series: one row of cells per bucket, one cell per group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub buckets: Vec<Bucket>,
    /// The groups, largest first (by cost, or by what [`series_top`] was
    /// asked to rank by); `[None]` when not grouped.
    pub groups: Vec<Option<String>>,
    /// `cells[bucket][group]`.
    pub cells: Vec<Vec<Totals>>,
    /// Everything in the range, `other` included.
    pub totals: Totals,
    /// The groups [`series_top`] left out, summed; `None` when every group
    /// with usage is in `groups`.
    pub other: Option<Other>,
}

impl Series {
    /// How many groups had usage in the range, shown or not.
    pub fn groups_total(&self) -> usize {
        self.groups.len() + self.other.as_ref().map_or(0, |o| o.groups)
    }
}

/// The groups left out of a series or a top list, as one sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Other {
    /// How many groups it sums (all with usage in the range).
    pub groups: usize,
    /// Their sum per bucket (one cell for a top list).
    pub cells: Vec<Totals>,
    /// Their sum over the range.
    pub totals: Totals,
}

/// What orders groups when only the largest are kept. Ties go to the
/// larger number of calls, then to the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    Cost,
    Tokens,
}

impl Rank {
    fn key(self, totals: &Totals) -> (i64, i64) {
        match self {
            Rank::Cost => (totals.cost_micros, totals.calls),
            Rank::Tokens => (totals.all_tokens(), totals.calls),
        }
    }
}

/// Groups a grouped read answers by default, and at most.
pub const DEFAULT_GROUPS: usize = 100;
pub const MAX_GROUPS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Buckets(#[from] BucketError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Db(DbError::from(e))
    }
}

/// The series of `query` within `scope`.
pub fn series(conn: &Connection, scope: Scope, query: &SeriesQuery) -> Result<Series, QueryError> {
    let buckets = buckets::buckets(query.from, query.to, &query.zone, query.bucket)?;
    let ranges: Vec<(i64, i64)> = buckets.iter().map(|b| (b.start_ms, b.end_ms)).collect();
    let grid = compute(conn, scope, &query.filters, query.group_by, &ranges)?;
    Ok(Series {
        buckets,
        groups: grid.groups,
        totals: grid.totals,
        cells: grid.cells,
        other: None,
    })
}

/// The series of `query` with at most `limit` groups: the largest by
/// `rank` over the whole range, and the rest summed as [`Series::other`],
/// so that the totals are those of every group.
///
/// The work is bounded by `limit`, not by the number of groups: the
/// groups' totals over the range are read first (one range, so a few
/// rollup rows per group), then only the kept groups per bucket, and the
/// rest per bucket is the ungrouped series less the kept groups.
pub fn series_top(
    conn: &Connection,
    scope: Scope,
    query: &SeriesQuery,
    limit: usize,
    rank: Rank,
) -> Result<Series, QueryError> {
    let Some(group) = query.group_by else {
        return series(conn, scope, query);
    };
    let buckets = buckets::buckets(query.from, query.to, &query.zone, query.bucket)?;
    let ranges: Vec<(i64, i64)> = buckets.iter().map(|b| (b.start_ms, b.end_ms)).collect();
    let names = group_names(conn, group)?;
    let whole_series = |buckets, grid: Grid| Series {
        buckets,
        groups: grid.groups,
        cells: grid.cells,
        totals: grid.totals,
        other: None,
    };
    let Some(constraints) = resolve_filters(conn, scope, &query.filters)? else {
        let grid = name_groups(Some(group), ranges.len(), HashMap::new(), &names, rank)?;
        return Ok(whole_series(buckets, grid));
    };
    let Some(dim) = group.dim() else {
        // Teams are few (`model::team::MAX_TEAMS`) and every piece is read
        // by user anyway: all of them per bucket, then the rest folded.
        let cells = segments::read(conn, &constraints, Some(group), &ranges)?;
        let grid = name_groups(Some(group), ranges.len(), cells, &names, rank)?;
        return keep_largest(buckets, grid, limit);
    };
    let whole = [(query.from.as_millisecond(), query.to.as_millisecond())];
    let sums = segments::read(conn, &constraints, Some(group), &whole)?;
    let ranked = name_groups(Some(group), 1, sums, &names, rank)?;
    let groups_total = ranked.groups.len();
    if groups_total <= limit {
        let cells = segments::read(conn, &constraints, Some(group), &ranges)?;
        let grid = name_groups(Some(group), ranges.len(), cells, &names, rank)?;
        return Ok(whole_series(buckets, grid));
    }
    // Only the kept groups, per bucket.
    let kept: Vec<i64> = ranked.ids[..limit].to_vec();
    let mut narrowed = constraints.clone();
    match narrowed.dims.iter_mut().find(|(d, _)| *d == dim) {
        Some((_, ids)) => *ids = kept,
        None => narrowed.dims.push((dim, kept)),
    }
    let cells = segments::read(conn, &narrowed, Some(group), &ranges)?;
    let grid = name_groups(Some(group), ranges.len(), cells, &names, rank)?;
    // Everything, per bucket: the rest is what the kept groups leave.
    let everything = segments::read(conn, &constraints, None, &ranges)?;
    let mut other_cells = everything
        .get(&0)
        .cloned()
        .unwrap_or_else(|| vec![Totals::default(); ranges.len()]);
    for (cell, row) in other_cells.iter_mut().zip(&grid.cells) {
        for kept in row {
            cell.checked_add_signed(kept, -1).map_err(DbError::from)?;
        }
    }
    let mut other_totals = Totals::default();
    for cell in &other_cells {
        other_totals.checked_add(cell).map_err(DbError::from)?;
    }
    let mut totals = grid.totals;
    totals.checked_add(&other_totals).map_err(DbError::from)?;
    Ok(Series {
        buckets,
        groups: grid.groups,
        cells: grid.cells,
        totals,
        other: Some(Other {
            groups: groups_total - limit,
            cells: other_cells,
            totals: other_totals,
        }),
    })
}

/// The first `limit` groups of a named grid, and the rest summed per
/// bucket as [`Series::other`].
fn keep_largest(buckets: Vec<Bucket>, grid: Grid, limit: usize) -> Result<Series, QueryError> {
    let groups_total = grid.groups.len();
    if groups_total <= limit {
        return Ok(Series {
            buckets,
            groups: grid.groups,
            cells: grid.cells,
            totals: grid.totals,
            other: None,
        });
    }
    let mut other_cells = vec![Totals::default(); buckets.len()];
    let mut other_totals = Totals::default();
    let mut cells = grid.cells;
    for (row, other) in cells.iter_mut().zip(&mut other_cells) {
        for left_out in row.drain(limit..) {
            other.checked_add(&left_out).map_err(DbError::from)?;
        }
        other_totals.checked_add(other).map_err(DbError::from)?;
    }
    let mut groups = grid.groups;
    groups.truncate(limit);
    Ok(Series {
        buckets,
        groups,
        cells,
        totals: grid.totals,
        other: Some(Other {
            groups: groups_total - limit,
            cells: other_cells,
            totals: other_totals,
        }),
    })
}

/// Every group's name by id: the dimension's names, or the teams' (and
/// [`NO_TEAM_LABEL`]).
fn group_names(conn: &Connection, group: GroupBy) -> Result<HashMap<i64, String>, DbError> {
    match group {
        GroupBy::Dim(dim) => dims::names(conn, dim),
        GroupBy::Team => {
            let mut names = teams::store::names(conn)?;
            names.insert(segments::NO_TEAM, NO_TEAM_LABEL.to_owned());
            Ok(names)
        }
    }
}

/// Totals of a range and of the period of the same length just before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsWithChange {
    pub current: Totals,
    pub previous: Totals,
}

pub fn totals_with_change(
    conn: &Connection,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
    filters: &Filters,
) -> Result<TotalsWithChange, QueryError> {
    let (from_ms, to_ms) = (from.as_millisecond(), to.as_millisecond());
    if from_ms >= to_ms {
        return Err(BucketError::EmptyRange.into());
    }
    let previous = (from_ms - (to_ms - from_ms), from_ms);
    let grid = compute(conn, scope, filters, None, &[previous, (from_ms, to_ms)])?;
    Ok(TotalsWithChange {
        previous: grid.cells[0][0].clone(),
        current: grid.cells[1][0].clone(),
    })
}

/// The largest groups of a dimension over a range, and the rest summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    /// At most `limit` groups with usage, largest cost first.
    pub rows: Vec<(String, Totals)>,
    /// The other groups with usage, summed; `None` when there are none.
    pub other: Option<Other>,
}

/// The `limit` largest groups of `group` (a dimension, or the team) by
/// cost over `[from, to)`; the rest summed as [`Top::other`].
pub fn top(
    conn: &Connection,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
    filters: &Filters,
    group: impl Into<GroupBy>,
    limit: usize,
) -> Result<Top, QueryError> {
    let range = (from.as_millisecond(), to.as_millisecond());
    if range.0 >= range.1 {
        return Err(BucketError::EmptyRange.into());
    }
    let grid = compute(conn, scope, filters, Some(group.into()), &[range])?;
    let mut rows = Vec::new();
    let mut other: Option<Other> = None;
    for (index, (name, totals)) in grid.groups.into_iter().zip(&grid.cells[0]).enumerate() {
        if index < limit {
            rows.push((name.unwrap_or_default(), totals.clone()));
        } else {
            let other = other.get_or_insert_with(|| Other {
                groups: 0,
                cells: vec![Totals::default()],
                totals: Totals::default(),
            });
            other.groups += 1;
            other.cells[0].checked_add(totals).map_err(DbError::from)?;
            other.totals.checked_add(totals).map_err(DbError::from)?;
        }
    }
    Ok(Top { rows, other })
}

/// One team's usage over a range, and each member's part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamUsage {
    /// `None` for the usage of people who were in no team at the time.
    pub team: Option<(TeamId, String)>,
    pub totals: Totals,
    /// (username, usage while in this team), largest cost first.
    pub members: Vec<(String, Totals)>,
}

/// Every team's usage over `[from, to)` within `scope`, largest cost
/// first and the usage of no team last, with each member's usage while
/// they were in the team. Teams without usage are not listed.
pub fn team_usage(
    conn: &Connection,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
    filters: &Filters,
) -> Result<Vec<TeamUsage>, QueryError> {
    let range = (from.as_millisecond(), to.as_millisecond());
    if range.0 >= range.1 {
        return Err(BucketError::EmptyRange.into());
    }
    let Some(constraints) = resolve_filters(conn, scope, filters)? else {
        return Ok(Vec::new());
    };
    let cells = segments::by_team_and_user(conn, &constraints, range)?;
    let team_names = teams::store::names(conn)?;
    let usernames = dims::names(conn, super::rollup::Dim::User)?;
    let mut by_team: HashMap<i64, TeamUsage> = HashMap::new();
    for ((team, user), totals) in cells {
        let usage = by_team.entry(team).or_insert_with(|| TeamUsage {
            team: team_names
                .get(&team)
                .map(|name| (TeamId(team), name.clone())),
            totals: Totals::default(),
            members: Vec::new(),
        });
        usage.totals.checked_add(&totals).map_err(DbError::from)?;
        let name = usernames.get(&user).cloned().unwrap_or_default();
        usage.members.push((name, totals));
    }
    let mut teams: Vec<TeamUsage> = by_team.into_values().collect();
    for team in &mut teams {
        team.members.sort_by(|(a_name, a), (b_name, b)| {
            Rank::Cost
                .key(b)
                .cmp(&Rank::Cost.key(a))
                .then_with(|| a_name.cmp(b_name))
        });
    }
    teams.sort_by(|a, b| {
        a.team
            .is_none()
            .cmp(&b.team.is_none())
            .then_with(|| Rank::Cost.key(&b.totals).cmp(&Rank::Cost.key(&a.totals)))
            .then_with(|| a.team.cmp(&b.team))
    });
    Ok(teams)
}

/// The totals of `scope` and `filters` over each of `ranges` (UTC ms,
/// half-open), per user when `by_user` (users with no call are left out),
/// else one group with id 0: `(group id, one total per range)`. What a
/// budget needs: a period's usage and the days before it, exact in any
/// zone at the cost of the rollup rows, not the events.
pub fn range_totals(
    conn: &Connection,
    scope: Scope,
    filters: &Filters,
    by_user: bool,
    ranges: &[(i64, i64)],
) -> Result<Vec<(i64, Vec<Totals>)>, QueryError> {
    let group_by = by_user.then_some(GroupBy::Dim(Dim::User));
    let grid = compute(conn, scope, filters, group_by, ranges)?;
    Ok(grid
        .ids
        .iter()
        .enumerate()
        .map(|(group, id)| {
            let cells = grid.cells.iter().map(|row| row[group].clone()).collect();
            (*id, cells)
        })
        .collect())
}

struct Grid {
    /// The group ids, in the order of `groups`.
    ids: Vec<i64>,
    groups: Vec<Option<String>>,
    cells: Vec<Vec<Totals>>,
    totals: Totals,
}

/// Fills one cell per (range, group) for the given ranges.
fn compute(
    conn: &Connection,
    scope: Scope,
    filters: &Filters,
    group_by: Option<GroupBy>,
    ranges: &[(i64, i64)],
) -> Result<Grid, QueryError> {
    let cells_by_group = match resolve_filters(conn, scope, filters)? {
        Some(constraints) => segments::read(conn, &constraints, group_by, ranges)?,
        None => HashMap::new(),
    };
    let names = match group_by {
        Some(group) => group_names(conn, group)?,
        None => HashMap::new(),
    };
    name_groups(group_by, ranges.len(), cells_by_group, &names, Rank::Cost)
}

/// Orders groups by `rank` (then calls, then name) and names them; drops
/// groups without calls.
fn name_groups(
    group_by: Option<GroupBy>,
    ranges: usize,
    cells_by_group: HashMap<i64, Vec<Totals>>,
    names: &HashMap<i64, String>,
    rank: Rank,
) -> Result<Grid, QueryError> {
    let mut groups: Vec<(i64, Totals, Vec<Totals>)> = Vec::with_capacity(cells_by_group.len());
    for (id, cells) in cells_by_group {
        let mut sum = Totals::default();
        for cell in &cells {
            sum.checked_add(cell).map_err(DbError::from)?;
        }
        if group_by.is_none() || sum.calls != 0 {
            groups.push((id, sum, cells));
        }
    }
    let name_of = |id: i64| names.get(&id).map_or(NONE_LABEL, String::as_str);
    groups.sort_by(|a, b| {
        rank.key(&b.1)
            .cmp(&rank.key(&a.1))
            .then_with(|| name_of(a.0).cmp(name_of(b.0)))
    });
    if group_by.is_none() && groups.is_empty() {
        groups.push((0, Totals::default(), vec![Totals::default(); ranges]));
    }
    let mut totals = Totals::default();
    let mut cells = vec![Vec::with_capacity(groups.len()); ranges];
    let mut labels = Vec::with_capacity(groups.len());
    let mut ids = Vec::with_capacity(groups.len());
    for (id, sum, group_cells) in groups {
        totals.checked_add(&sum).map_err(DbError::from)?;
        ids.push(id);
        labels.push(group_by.map(|_| name_of(id).to_owned()));
        for (row, cell) in cells.iter_mut().zip(group_cells) {
            row.push(cell);
        }
    }
    Ok(Grid {
        ids,
        groups: labels,
        cells,
        totals,
    })
}
