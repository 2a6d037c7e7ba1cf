//! The one query layer: usage series, totals with the change against the
//! previous period, and top-N breakdowns. Every function takes a
//! [`Scope`]; the rollups are read through the planner ([`super::plan`]).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::Connection;

use super::buckets::{self, Bucket, BucketError, BucketSize};
use super::plan::{self, Source};
use super::rollup::{Cuboid, Dim, Level};
use super::{Scope, Totals, dims};
use crate::db::DbError;

/// Filters by name; an empty list means "any". Unknown names match
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub users: Vec<String>,
    pub models: Vec<String>,
    pub activities: Vec<String>,
    pub projects: Vec<String>,
    pub sources: Vec<String>,
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
    /// The groups, largest cost first; `[None]` when not grouped.
    pub groups: Vec<Option<String>>,
    /// `cells[bucket][group]`.
    pub cells: Vec<Vec<Totals>>,
    pub totals: Totals,
}

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

/// The `limit` largest groups of `dim` by cost over `[from, to)`; the rest
/// summed as one last entry named "other" (when there is a rest).
pub fn top(
    conn: &Connection,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
    filters: &Filters,
    dim: Dim,
    limit: usize,
) -> Result<Vec<(String, Totals)>, QueryError> {
    let range = (from.as_millisecond(), to.as_millisecond());
    if range.0 >= range.1 {
        return Err(BucketError::EmptyRange.into());
    }
    let grid = compute(conn, scope, filters, Some(dim), &[range])?;
    let mut out = Vec::new();
    let mut other = Totals::default();
    for (index, (name, totals)) in grid.groups.into_iter().zip(&grid.cells[0]).enumerate() {
        if totals.calls == 0 {
            continue;
        }
        if index < limit {
            out.push((name.unwrap_or_default(), totals.clone()));
        } else {
            other.checked_add(totals).map_err(DbError::from)?;
        }
    }
    if other.calls > 0 {
        out.push(("other".to_owned(), other));
    }
    Ok(out)
}

struct Grid {
    groups: Vec<Option<String>>,
    cells: Vec<Vec<Totals>>,
    totals: Totals,
}

/// The ids each filtered dimension may take.
pub(super) type Constraints = Vec<(Dim, Vec<i64>)>;

/// Which ids each filtered dimension may take; `None` when a filter
/// matches nothing at all.
pub(super) fn resolve_filters(
    conn: &Connection,
    scope: Scope,
    filters: &Filters,
) -> Result<Option<Constraints>, DbError> {
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
    Ok(Some(constraints))
}

/// Every id a grouped dimension can take in the rollups (0 included where
/// the dimension is optional).
fn all_ids(conn: &Connection, dim: Dim) -> Result<Vec<i64>, DbError> {
    let mut ids: Vec<i64> = dims::names(conn, dim)?.into_keys().collect();
    if dim != Dim::User && dim != Dim::Model && dim != Dim::Source {
        ids.push(0);
    }
    ids.sort_unstable();
    Ok(ids)
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
    let mut cells_by_group: HashMap<i64, Vec<Totals>> = HashMap::new();
    if let Some(constraints) = resolve_filters(conn, scope, filters)? {
        let mut needed: Vec<Dim> = constraints.iter().map(|(dim, _)| *dim).collect();
        needed.extend(group_by);
        let cuboid = Cuboid::smallest_holding(&needed);
        let reader = Reader {
            conn,
            cuboid,
            group_by,
            constraints: &constraints,
            ranges: ranges.len(),
        };
        reader.read(ranges, &mut cells_by_group)?;
    }
    name_groups(conn, group_by, ranges.len(), cells_by_group)
}

/// Orders groups by cost (then calls) and names them.
fn name_groups(
    conn: &Connection,
    group_by: Option<Dim>,
    ranges: usize,
    cells_by_group: HashMap<i64, Vec<Totals>>,
) -> Result<Grid, QueryError> {
    let names = match group_by {
        Some(dim) => dims::names(conn, dim)?,
        None => HashMap::new(),
    };
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
    let name_of = |id: i64| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| NONE_LABEL.to_owned())
    };
    groups.sort_by(|a, b| {
        (b.1.cost_micros, b.1.calls)
            .cmp(&(a.1.cost_micros, a.1.calls))
            .then_with(|| name_of(a.0).cmp(&name_of(b.0)))
    });
    if group_by.is_none() && groups.is_empty() {
        groups.push((0, Totals::default(), vec![Totals::default(); ranges]));
    }
    let mut totals = Totals::default();
    let mut cells = vec![Vec::with_capacity(groups.len()); ranges];
    let mut labels = Vec::with_capacity(groups.len());
    for (id, sum, group_cells) in groups {
        totals.checked_add(&sum).map_err(DbError::from)?;
        labels.push(group_by.map(|_| name_of(id)));
        for (row, cell) in cells.iter_mut().zip(group_cells) {
            row.push(cell);
        }
    }
    Ok(Grid {
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
    constraints: &'a [(Dim, Vec<i64>)],
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
            let filtered = self.constraints.iter().find(|(d, _)| *d == dim);
            let term = match (self.cuboid.has(dim), filtered) {
                (false, _) => format!("{column} = 0"),
                (true, Some((_, ids))) => format!("{column} IN ({})", id_list(ids)),
                // Listing every value keeps the primary key usable past
                // this column; the full cuboid is scanned instead.
                (true, None) if self.group_by == Some(dim) && self.cuboid != Cuboid::Full => {
                    format!("{column} IN ({})", id_list(&all_ids(self.conn, dim)?))
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
        for (dim, ids) in self.constraints {
            let _ = write!(terms, " AND {} IN ({})", event_column(*dim), id_list(ids));
        }
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
