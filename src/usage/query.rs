//! The one query layer: usage series, totals with the change against the
//! previous period, and top-N breakdowns. Every function takes a
//! [`Scope`]; the rollups are read through the planner ([`super::plan`]).
//!
//! A filter on a session or a machine ([`Label`]) cannot be answered from
//! the rollups, which do not hold them: such a read takes every range from
//! the raw events (through their session and machine indexes), exactly,
//! at a cost that grows with the events it selects rather than with the
//! number of buckets.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::Connection;

use super::buckets::{self, Bucket, BucketError, BucketSize};
use super::dims::Label;
use super::plan::{self, Source};
use super::rollup::{Cuboid, Dim, Level};
use super::{Scope, Totals, dims, identities};
use crate::db::DbError;
use crate::model::IdentityFilter;

/// Filters by name; an empty list means "any". Unknown names match
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub users: Vec<String>,
    pub models: Vec<String>,
    pub activities: Vec<String>,
    pub projects: Vec<String>,
    pub sources: Vec<String>,
    /// Sessions and machines: labels of raw events, not rollup dimensions.
    pub sessions: Vec<String>,
    pub machines: Vec<String>,
    /// The events of the unassigned identities, or of one identity.
    pub identity: Option<IdentityFilter>,
}

impl Filters {
    fn by_dim(&self) -> [(Dim, &Vec<String>); 5] {
        [
            (Dim::User, &self.users),
            (Dim::Model, &self.models),
            (Dim::Activity, &self.activities),
            (Dim::Project, &self.projects),
            (Dim::Source, &self.sources),
        ]
    }

    fn by_label(&self) -> [(Label, &Vec<String>); 2] {
        [
            (Label::Session, &self.sessions),
            (Label::Machine, &self.machines),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    pub zone: TimeZone,
    pub bucket: BucketSize,
    pub group_by: Option<Dim>,
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

/// Name shown for a dimension value of 0 (an event without a project…).
pub const NONE_LABEL: &str = "(none)";

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
    let Some(dim) = query.group_by else {
        return series(conn, scope, query);
    };
    let buckets = buckets::buckets(query.from, query.to, &query.zone, query.bucket)?;
    let ranges: Vec<(i64, i64)> = buckets.iter().map(|b| (b.start_ms, b.end_ms)).collect();
    let names = dims::names(conn, dim)?;
    let whole_series = |buckets, grid: Grid| Series {
        buckets,
        groups: grid.groups,
        cells: grid.cells,
        totals: grid.totals,
        other: None,
    };
    let Some(constraints) = resolve_filters(conn, scope, &query.filters)? else {
        let grid = name_groups(Some(dim), ranges.len(), HashMap::new(), &names, rank)?;
        return Ok(whole_series(buckets, grid));
    };
    let whole = [(query.from.as_millisecond(), query.to.as_millisecond())];
    let sums = read_cells(conn, &constraints, Some(dim), &whole)?;
    let ranked = name_groups(Some(dim), 1, sums, &names, rank)?;
    let groups_total = ranked.groups.len();
    if groups_total <= limit {
        let cells = read_cells(conn, &constraints, Some(dim), &ranges)?;
        let grid = name_groups(Some(dim), ranges.len(), cells, &names, rank)?;
        return Ok(whole_series(buckets, grid));
    }
    // Only the kept groups, per bucket.
    let kept: Vec<i64> = ranked.ids[..limit].to_vec();
    let mut narrowed = constraints.clone();
    match narrowed.dims.iter_mut().find(|(d, _)| *d == dim) {
        Some((_, ids)) => *ids = kept,
        None => narrowed.dims.push((dim, kept)),
    }
    let cells = read_cells(conn, &narrowed, Some(dim), &ranges)?;
    let grid = name_groups(Some(dim), ranges.len(), cells, &names, rank)?;
    // Everything, per bucket: the rest is what the kept groups leave.
    let everything = read_cells(conn, &constraints, None, &ranges)?;
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

/// The `limit` largest groups of `dim` by cost over `[from, to)`; the rest
/// summed as [`Top::other`].
pub fn top(
    conn: &Connection,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
    filters: &Filters,
    dim: Dim,
    limit: usize,
) -> Result<Top, QueryError> {
    let range = (from.as_millisecond(), to.as_millisecond());
    if range.0 >= range.1 {
        return Err(BucketError::EmptyRange.into());
    }
    let grid = compute(conn, scope, filters, Some(dim), &[range])?;
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

struct Grid {
    /// The group ids, in the order of `groups`.
    ids: Vec<i64>,
    groups: Vec<Option<String>>,
    cells: Vec<Vec<Totals>>,
    totals: Totals,
}

/// The ids each filter may take.
#[derive(Debug, Clone, Default)]
pub(super) struct Constraints {
    /// Filtered dimensions, the scope's user among them.
    pub dims: Vec<(Dim, Vec<i64>)>,
    /// Filtered labels (sessions, machines): only raw events hold them.
    pub labels: Vec<(Label, Vec<i64>)>,
    /// One identity's events (`events.identity_id`): only raw events say
    /// which identity attributed them.
    pub identity: Option<i64>,
}

impl Constraints {
    /// Whether only the raw events can answer (the rollups hold no
    /// sessions, machines or identities).
    pub fn raw_only(&self) -> bool {
        !self.labels.is_empty() || self.identity.is_some()
    }

    /// The terms on the raw events' label and identity columns, each
    /// ` AND …`; `prefix` is the events table's alias and a dot, or "".
    pub fn raw_terms(&self, prefix: &str) -> String {
        let mut terms = String::new();
        for (label, ids) in &self.labels {
            let _ = write!(
                terms,
                " AND {prefix}{} IN ({})",
                label.column(),
                id_list(ids)
            );
        }
        if let Some(id) = self.identity {
            let _ = write!(terms, " AND {prefix}identity_id = {id}");
        }
        terms
    }
}

/// Which ids each filter may take; `None` when a filter matches nothing
/// at all.
pub(super) fn resolve_filters(
    conn: &Connection,
    scope: Scope,
    filters: &Filters,
) -> Result<Option<Constraints>, DbError> {
    let mut labels = Vec::new();
    for (label, names) in filters.by_label() {
        if names.is_empty() {
            continue;
        }
        let mut ids = Vec::new();
        for name in names {
            ids.extend(dims::find_label(conn, label, name)?);
        }
        if ids.is_empty() {
            return Ok(None);
        }
        labels.push((label, ids));
    }
    let mut constraints = Vec::new();
    for (dim, names) in filters.by_dim() {
        if names.is_empty() {
            continue;
        }
        let mut ids = Vec::new();
        for name in names {
            if dim != Dim::User && name == NONE_LABEL {
                ids.push(0);
            } else if let Some(id) = dims::find(conn, dim, name)? {
                ids.push(id);
            }
        }
        constraints.push((dim, ids));
    }
    let mut identity = None;
    match &filters.identity {
        None => {}
        // The holders of the identities no one is linked to: a filter on
        // the user dimension, which the rollups answer.
        Some(IdentityFilter::Unassigned) => {
            let holders = identities::unassigned_holders(conn)?;
            match constraints.iter_mut().find(|(dim, _)| *dim == Dim::User) {
                Some((_, ids)) => {
                    let held: std::collections::HashSet<i64> = holders.into_iter().collect();
                    ids.retain(|id| held.contains(id));
                }
                None => constraints.push((Dim::User, holders)),
            }
        }
        Some(IdentityFilter::One(key)) => match identities::find(conn, key)? {
            Some(found) => identity = Some(found.id),
            None => return Ok(None),
        },
    }
    // The scope is the outer fence: a member's query is about them only.
    if let Scope::User(user) = scope {
        match constraints.iter_mut().find(|(dim, _)| *dim == Dim::User) {
            Some((_, ids)) => ids.retain(|id| *id == user.0),
            None => constraints.push((Dim::User, vec![user.0])),
        }
    }
    if constraints.iter().any(|(_, ids)| ids.is_empty()) {
        return Ok(None);
    }
    Ok(Some(Constraints {
        dims: constraints,
        labels,
        identity,
    }))
}

/// Past this many values, a grouped dimension is scanned rather than
/// listed: a seek per value and period costs more than reading the rows.
const MAX_LISTED_IDS: usize = 256;

/// Every id a grouped dimension can take in the rollups (0 included where
/// the dimension is optional); `None` when there are too many to list.
fn all_ids(conn: &Connection, dim: Dim) -> Result<Option<Vec<i64>>, DbError> {
    let sql = match dims::table(dim) {
        Some(table) => format!("SELECT id FROM {table} ORDER BY id LIMIT ?1"),
        None => "SELECT id FROM users ORDER BY id LIMIT ?1".to_owned(),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let cap = i64::try_from(MAX_LISTED_IDS + 1).unwrap_or(i64::MAX);
    let mut ids: Vec<i64> = stmt
        .query_map([cap], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if ids.len() > MAX_LISTED_IDS {
        return Ok(None);
    }
    if dim != Dim::User && dim != Dim::Model && dim != Dim::Source {
        ids.push(0);
    }
    ids.sort_unstable();
    Ok(Some(ids))
}

fn id_list(ids: &[i64]) -> String {
    let mut out = String::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out
}

/// A rollup row's metrics, in [`Totals`] order. Rows are summed in Rust,
/// not by a GROUP BY: SQLite's aggregate steps cost more than the adds.
const METRICS: &str = "calls, input_tokens, output_tokens, cache_read_tokens, \
                       cache_write_tokens, cost_micros, unpriced_calls";
const EVENT_SUMS: &str = "COUNT(*), SUM(input_tokens), SUM(output_tokens), \
                          SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micros), \
                          SUM(cost_origin = 0)";

/// Fills one cell per (range, group) for the given ranges.
fn compute(
    conn: &Connection,
    scope: Scope,
    filters: &Filters,
    group_by: Option<Dim>,
    ranges: &[(i64, i64)],
) -> Result<Grid, QueryError> {
    let cells_by_group = match resolve_filters(conn, scope, filters)? {
        Some(constraints) => read_cells(conn, &constraints, group_by, ranges)?,
        None => HashMap::new(),
    };
    let names = match group_by {
        Some(dim) => dims::names(conn, dim)?,
        None => HashMap::new(),
    };
    name_groups(group_by, ranges.len(), cells_by_group, &names, Rank::Cost)
}

/// The cells of every group within `constraints`, per range.
fn read_cells(
    conn: &Connection,
    constraints: &Constraints,
    group_by: Option<Dim>,
    ranges: &[(i64, i64)],
) -> Result<HashMap<i64, Vec<Totals>>, QueryError> {
    let mut cells_by_group: HashMap<i64, Vec<Totals>> = HashMap::new();
    let mut needed: Vec<Dim> = constraints.dims.iter().map(|(dim, _)| *dim).collect();
    needed.extend(group_by);
    let reader = Reader {
        conn,
        cuboid: Cuboid::smallest_holding(&needed),
        group_by,
        constraints,
        ranges: ranges.len(),
    };
    reader.read(ranges, &mut cells_by_group)?;
    Ok(cells_by_group)
}

/// Orders groups by `rank` (then calls, then name) and names them; drops
/// groups without calls.
fn name_groups(
    group_by: Option<Dim>,
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

/// A dimension as the rollups see it, over `events`: optional dimensions
/// are NULL there and 0 in the rollups. Required ones stay bare so their
/// indexes remain usable.
fn event_column(dim: Dim) -> String {
    match dim {
        Dim::User | Dim::Model | Dim::Source => dim.column().to_owned(),
        _ => format!("COALESCE({}, 0)", dim.column()),
    }
}

/// The slots of a within-day read. A day's prefix or suffix is a run of
/// slots, which a range term reads with one seek per series and day; an
/// `IN` list costs a seek per slot (3-4x slower for a 5-hour prefix). A
/// sparse set stays a list, so no unwanted rows are read.
fn slot_term(slots: &BTreeSet<i64>) -> String {
    let (Some(low), Some(high)) = (slots.first(), slots.last()) else {
        return "0".to_owned();
    };
    let span = usize::try_from(high - low + 1).unwrap_or(usize::MAX);
    if span <= 2 * slots.len() {
        format!("slot BETWEEN {low} AND {high}")
    } else {
        let list: Vec<i64> = slots.iter().copied().collect();
        format!("slot IN ({})", id_list(&list))
    }
}

/// Reads the planned pieces of every range for one query.
struct Reader<'a> {
    conn: &'a Connection,
    cuboid: Cuboid,
    group_by: Option<Dim>,
    constraints: &'a Constraints,
    ranges: usize,
}

type Wanted = HashMap<(Level, i64, i64), Vec<(usize, i64)>>;

impl Reader<'_> {
    fn read(
        &self,
        ranges: &[(i64, i64)],
        out: &mut HashMap<i64, Vec<Totals>>,
    ) -> Result<(), QueryError> {
        let mut wanted: Wanted = HashMap::new();
        let mut raw = Vec::new();
        for (index, (from, to)) in ranges.iter().enumerate() {
            if self.constraints.raw_only() {
                // The rollups hold no sessions, machines or identities: the
                // whole range from the raw events.
                raw.push((index, 1, *from, *to));
                continue;
            }
            for piece in plan::plan(*from, *to, self.cuboid.within_day()) {
                match piece.source {
                    Source::Rollup {
                        level,
                        period,
                        slot,
                    } => wanted
                        .entry((level, slot, period))
                        .or_default()
                        .push((index, piece.sign)),
                    Source::Raw { from_ms, to_ms } => raw.push((index, piece.sign, from_ms, to_ms)),
                }
            }
        }
        for level in Level::ALL {
            self.read_level(level, &wanted, out)?;
        }
        for (index, sign, from_ms, to_ms) in raw {
            self.read_raw(index, sign, from_ms, to_ms, out)?;
        }
        Ok(())
    }

    fn add(
        &self,
        out: &mut HashMap<i64, Vec<Totals>>,
        group: i64,
        index: usize,
        sign: i64,
        totals: &Totals,
    ) -> Result<(), QueryError> {
        let cells = out
            .entry(group)
            .or_insert_with(|| vec![Totals::default(); self.ranges]);
        cells[index]
            .checked_add_signed(totals, sign)
            .map_err(DbError::from)?;
        Ok(())
    }

    /// The WHERE terms on the dimension columns of a rollup table.
    fn rollup_dim_terms(&self) -> Result<String, DbError> {
        let mut terms = String::new();
        for dim in Dim::ALL {
            let column = dim.column();
            let filtered = self.constraints.dims.iter().find(|(d, _)| *d == dim);
            let term = match (self.cuboid.has(dim), filtered) {
                (false, _) => format!("{column} = 0"),
                (true, Some((_, ids))) => format!("{column} IN ({})", id_list(ids)),
                // Listing every value keeps the primary key usable past
                // this column; the full cuboid is scanned instead.
                (true, None) if self.group_by == Some(dim) && self.cuboid != Cuboid::Full => {
                    match all_ids(self.conn, dim)? {
                        Some(ids) => format!("{column} IN ({})", id_list(&ids)),
                        None => continue,
                    }
                }
                (true, None) => continue,
            };
            let _ = write!(terms, " AND {term}");
        }
        Ok(terms)
    }

    fn group_column(&self, in_events: bool) -> String {
        match self.group_by {
            Some(dim) if in_events => event_column(dim),
            Some(dim) => dim.column().to_owned(),
            None => "0".to_owned(),
        }
    }

    fn read_level(
        &self,
        level: Level,
        wanted: &Wanted,
        out: &mut HashMap<i64, Vec<Totals>>,
    ) -> Result<(), QueryError> {
        let keys: Vec<&(Level, i64, i64)> = wanted.keys().filter(|k| k.0 == level).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let period = level.period_column();
        let (slot_column, time_terms) = if level.is_within_day() {
            // Seeks, not a scan: exactly the days and slots the plan needs.
            let slots: BTreeSet<i64> = keys.iter().map(|k| k.1).collect();
            let days: BTreeSet<i64> = keys.iter().map(|k| k.2).collect();
            let days: Vec<i64> = days.into_iter().collect();
            (
                "slot",
                format!("day IN ({}) AND {}", id_list(&days), slot_term(&slots)),
            )
        } else {
            // A list, not a range: the key leads with the period, and only
            // an equality on it lets the seek go on to the dimensions.
            let periods: BTreeSet<i64> = keys.iter().map(|k| k.2).collect();
            let periods: Vec<i64> = periods.into_iter().collect();
            ("0", format!("{period} IN ({})", id_list(&periods)))
        };
        let sql = format!(
            "SELECT {group}, {period}, {slot_column}, {METRICS} FROM {table}
             WHERE cuboid = {cuboid}{dims} AND {time_terms}",
            group = self.group_column(false),
            table = level.table(),
            cuboid = self.cuboid.code(),
            dims = self.rollup_dim_terms()?,
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (group, period, slot): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let Some(targets) = wanted.get(&(level, slot, period)) else {
                continue;
            };
            let totals = Totals::from_row(row, 3)?;
            for (index, sign) in targets {
                self.add(out, group, *index, *sign, &totals)?;
            }
        }
        Ok(())
    }

    fn read_raw(
        &self,
        index: usize,
        sign: i64,
        from_ms: i64,
        to_ms: i64,
        out: &mut HashMap<i64, Vec<Totals>>,
    ) -> Result<(), QueryError> {
        let mut terms = String::new();
        // With a session or machine, their index finds the rows: a unary
        // `+` takes the dimensions out of SQLite's choice of index.
        let unindexed = if self.constraints.raw_only() { "+" } else { "" };
        for (dim, ids) in &self.constraints.dims {
            let _ = write!(
                terms,
                " AND {unindexed}{} IN ({})",
                event_column(*dim),
                id_list(ids)
            );
        }
        terms.push_str(&self.constraints.raw_terms(""));
        let sql = format!(
            "SELECT {group}, {EVENT_SUMS} FROM events
             WHERE ts_ms >= ?1 AND ts_ms < ?2{terms} GROUP BY 1",
            group = self.group_column(true),
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([from_ms, to_ms])?;
        while let Some(row) = rows.next()? {
            let totals = Totals::from_row(row, 1)?;
            self.add(out, row.get(0)?, index, sign, &totals)?;
        }
        Ok(())
    }
}
