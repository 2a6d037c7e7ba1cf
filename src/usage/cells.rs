//! The cells of a read: the filters resolved to ids within the caller's
//! [`Scope`] ([`resolve_filters`]), and the planned pieces of every range
//! read from the rollups, or from the raw events at a range's odd edges
//! ([`read_cells`]). The query layer ([`super::query`]) names and orders
//! what this returns; [`super::segments`] splits ranges at team
//! membership changes before calling it.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use rusqlite::Connection;

use super::dims::{self, Label};
use super::plan::{self, Source};
use super::rollup::{self, Cuboid, Dim, Level};
use super::{Scope, Totals, identities};
use crate::db::DbError;
use crate::model::{IdentityFilter, TeamId};
use crate::teams;

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
    pub(super) fn by_dim(&self) -> [(Dim, &Vec<String>); 5] {
        [
            (Dim::User, &self.users),
            (Dim::Model, &self.models),
            (Dim::Activity, &self.activities),
            (Dim::Project, &self.projects),
            (Dim::Source, &self.sources),
        ]
    }

    pub(super) fn by_label(&self) -> [(Label, &Vec<String>); 2] {
        [
            (Label::Session, &self.sessions),
            (Label::Machine, &self.machines),
        ]
    }
}

/// Name shown for a dimension value of 0 (an event without a project…).
pub const NONE_LABEL: &str = "(none)";

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
    /// A team's fence ([`Scope::Team`]): only usage of its members while
    /// they were in it. `dims` then holds everyone who was ever in it;
    /// the time is narrowed per piece ([`super::segments`]) or per event
    /// (`usage::events`), never by [`read_cells`] alone.
    pub team: Option<TeamId>,
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
    // The scope is the outer fence: a member's query is about them only,
    // a team's about the people who were ever in it (and, per piece or
    // per event, only while they were).
    let (fence, team) = match scope {
        Scope::Everyone => (None, None),
        Scope::User(user) => (Some(vec![user.0]), None),
        Scope::Team(team) => (Some(teams::store::members_ever(conn, team)?), Some(team)),
    };
    if let Some(fence) = fence {
        match constraints.iter_mut().find(|(dim, _)| *dim == Dim::User) {
            Some((_, ids)) => ids.retain(|id| fence.contains(id)),
            None => constraints.push((Dim::User, fence)),
        }
    }
    if constraints.iter().any(|(_, ids)| ids.is_empty()) {
        return Ok(None);
    }
    Ok(Some(Constraints {
        dims: constraints,
        labels,
        identity,
        team,
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
                       cache_write_tokens, cost_micros, unpriced_calls, reported_cost_micros";
const EVENT_SUMS: &str = "COUNT(*), SUM(input_tokens), SUM(output_tokens), \
                          SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micros), \
                          SUM(cost_origin = 0), \
                          SUM(CASE cost_origin WHEN 2 THEN cost_micros ELSE 0 END)";

/// The cells of every group within `constraints`, per range.
///
/// A team's fence is a matter of time, which the rollups do not hold by
/// team: it is refused here, so that no read can forget it and show a
/// member's usage from before they joined ([`super::segments`] splits the
/// ranges and narrows the users per piece, then calls this without it).
pub(super) fn read_cells(
    conn: &Connection,
    constraints: &Constraints,
    group_by: Option<Dim>,
    ranges: &[(i64, i64)],
) -> Result<HashMap<i64, Vec<Totals>>, DbError> {
    if constraints.team.is_some() {
        return Err(DbError::Check(
            "a read fenced to a team must be split at its membership changes".to_owned(),
        ));
    }
    let mut cells_by_group: HashMap<i64, Vec<Totals>> = HashMap::new();
    let mut needed: Vec<Dim> = constraints.dims.iter().map(|(dim, _)| *dim).collect();
    needed.extend(group_by);
    let reader = Reader {
        conn,
        cuboid: Cuboid::smallest_holding(&needed),
        group_by,
        constraints,
        ranges: ranges.len(),
        watermark: rollup::watermark(conn)?,
    };
    reader.read(ranges, &mut cells_by_group)?;
    Ok(cells_by_group)
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
    /// The highest event id the rollups hold: raw pieces read the events
    /// up to it, like the rollups, and the events past it are added whole.
    watermark: i64,
}

type Wanted = HashMap<(Level, i64, i64), Vec<(usize, i64)>>;

impl Reader<'_> {
    fn read(
        &self,
        ranges: &[(i64, i64)],
        out: &mut HashMap<i64, Vec<Totals>>,
    ) -> Result<(), DbError> {
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
        self.read_tail(ranges, out)
    }

    fn add(
        &self,
        out: &mut HashMap<i64, Vec<Totals>>,
        group: i64,
        index: usize,
        sign: i64,
        totals: &Totals,
    ) -> Result<(), DbError> {
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
    ) -> Result<(), DbError> {
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

    /// The terms on the dimension, label and identity columns of `events`;
    /// `unindexed` takes the dimensions out of SQLite's choice of index.
    fn event_terms(&self, unindexed: bool) -> String {
        let unindexed = if unindexed { "+" } else { "" };
        let mut terms = String::new();
        for (dim, ids) in &self.constraints.dims {
            let _ = write!(
                terms,
                " AND {unindexed}{} IN ({})",
                event_column(*dim),
                id_list(ids)
            );
        }
        terms.push_str(&self.constraints.raw_terms(""));
        terms
    }

    /// Adds the events past the watermark (acknowledged, not yet folded
    /// into the rollups) to every range that holds them. The roller keeps
    /// this tail short; it is found through the rowid, never an index on
    /// the filtered columns.
    fn read_tail(
        &self,
        ranges: &[(i64, i64)],
        out: &mut HashMap<i64, Vec<Totals>>,
    ) -> Result<(), DbError> {
        let sql = format!(
            "SELECT {group}, ts_ms, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, cost_micros, cost_origin
             FROM events WHERE id > ?1{terms}",
            group = self.group_column(true),
            terms = self.event_terms(true),
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([self.watermark])?;
        let lookup = RangeLookup::new(ranges);
        while let Some(row) = rows.next()? {
            let ts_ms: i64 = row.get(1)?;
            let tokens = [row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?];
            let origin = rollup::CostOrigin::from_column(row.get(7)?);
            let totals = rollup::event_metrics(&tokens, row.get(6)?, origin);
            let group: i64 = row.get(0)?;
            for index in lookup.holding(ts_ms) {
                self.add(out, group, index, 1, &totals)?;
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
    ) -> Result<(), DbError> {
        // With a session or machine, their index finds the rows.
        let terms = self.event_terms(self.constraints.raw_only());
        // Only the folded events: the tail is added whole by `read_tail`.
        let sql = format!(
            "SELECT {group}, {EVENT_SUMS} FROM events
             WHERE ts_ms >= ?1 AND ts_ms < ?2 AND id <= ?3{terms} GROUP BY 1",
            group = self.group_column(true),
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([from_ms, to_ms, self.watermark])?;
        while let Some(row) = rows.next()? {
            let totals = Totals::from_row(row, 1)?;
            self.add(out, row.get(0)?, index, sign, &totals)?;
        }
        Ok(())
    }
}

/// Which of a read's ranges hold an instant. Ranges of a series are
/// disjoint and sorted once here, so each tail event costs a binary
/// search; overlapping ranges (none of today's callers) are walked.
struct RangeLookup {
    /// (from, to, index), sorted by `from`.
    sorted: Vec<(i64, i64, usize)>,
    disjoint: bool,
}

impl RangeLookup {
    fn new(ranges: &[(i64, i64)]) -> RangeLookup {
        let mut sorted: Vec<(i64, i64, usize)> = ranges
            .iter()
            .enumerate()
            .map(|(index, (from, to))| (*from, *to, index))
            .collect();
        sorted.sort_unstable();
        let disjoint = sorted.windows(2).all(|pair| pair[0].1 <= pair[1].0);
        RangeLookup { sorted, disjoint }
    }

    /// The indexes of the ranges `[from, to)` that hold `ts_ms`.
    fn holding(&self, ts_ms: i64) -> Vec<usize> {
        if !self.disjoint {
            return self
                .sorted
                .iter()
                .filter(|(from, to, _)| *from <= ts_ms && ts_ms < *to)
                .map(|(_, _, index)| *index)
                .collect();
        }
        // The last range starting at or before the instant is the only
        // candidate.
        let after = self.sorted.partition_point(|(from, _, _)| *from <= ts_ms);
        match after.checked_sub(1).map(|i| self.sorted[i]) {
            Some((_, to, index)) if ts_ms < to => vec![index],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod range_lookup_tests {
    use super::RangeLookup;

    #[test]
    fn an_instant_falls_in_the_ranges_that_hold_it() {
        let disjoint = RangeLookup::new(&[(20, 30), (0, 10), (10, 20), (40, 50)]);
        assert_eq!(disjoint.holding(-1), Vec::<usize>::new());
        assert_eq!(disjoint.holding(0), vec![1]);
        assert_eq!(disjoint.holding(10), vec![2]);
        assert_eq!(disjoint.holding(29), vec![0]);
        assert_eq!(disjoint.holding(35), Vec::<usize>::new());
        assert_eq!(disjoint.holding(50), Vec::<usize>::new());
        let overlapping = RangeLookup::new(&[(0, 100), (10, 20)]);
        let mut held = overlapping.holding(15);
        held.sort_unstable();
        assert_eq!(held, vec![0, 1]);
        assert_eq!(overlapping.holding(30), vec![0]);
    }
}
