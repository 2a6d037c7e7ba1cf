//! The events page: the per-call list (id, time, user, model, activity,
//! tokens, cost, session, machine), filtered, sorted on any column,
//! keyset-paginated.
//!
//! Keyset pagination (`WHERE (sort value, id) > cursor`) keeps every page
//! as cheap as the first, however deep, and never skips or repeats a row
//! when events arrive between two pages.

use std::fmt::Write as _;

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::Scope;
use super::cells::resolve_filters;
use super::prices::PriceBook;
use super::query::Filters;
use super::rates::{Extras, Usage};
use super::rollup::{CostOrigin, Dim};
use crate::db::DbError;

/// Most rows one page may have.
pub const MAX_PAGE: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Id,
    Time,
    User,
    Model,
    Activity,
    Project,
    Source,
    Input,
    Output,
    CacheRead,
    CacheWrite,
    Cost,
    Session,
    Machine,
}

impl SortColumn {
    pub const ALL: [SortColumn; 14] = [
        SortColumn::Id,
        SortColumn::Time,
        SortColumn::User,
        SortColumn::Model,
        SortColumn::Activity,
        SortColumn::Project,
        SortColumn::Source,
        SortColumn::Input,
        SortColumn::Output,
        SortColumn::CacheRead,
        SortColumn::CacheWrite,
        SortColumn::Cost,
        SortColumn::Session,
        SortColumn::Machine,
    ];

    /// The name used in URLs and the API.
    pub fn name(self) -> &'static str {
        match self {
            SortColumn::Id => "id",
            SortColumn::Time => "time",
            SortColumn::User => "user",
            SortColumn::Model => "model",
            SortColumn::Activity => "activity",
            SortColumn::Project => "project",
            SortColumn::Source => "source",
            SortColumn::Input => "input_tokens",
            SortColumn::Output => "output_tokens",
            SortColumn::CacheRead => "cache_read_tokens",
            SortColumn::CacheWrite => "cache_write_tokens",
            SortColumn::Cost => "cost",
            SortColumn::Session => "session",
            SortColumn::Machine => "machine",
        }
    }

    pub fn parse(name: &str) -> Option<SortColumn> {
        SortColumn::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The SQL expression sorted on (names sort by text, '' for none).
    fn expression(self) -> &'static str {
        match self {
            SortColumn::Id => "e.external_id",
            SortColumn::Time => "e.ts_ms",
            SortColumn::User => "u.username",
            SortColumn::Model => "m.name",
            SortColumn::Activity => "COALESCE(a.name, '')",
            SortColumn::Project => "COALESCE(p.name, '')",
            SortColumn::Source => "s.name",
            SortColumn::Input => "e.input_tokens",
            SortColumn::Output => "e.output_tokens",
            SortColumn::CacheRead => "e.cache_read_tokens",
            SortColumn::CacheWrite => "e.cache_write_tokens",
            SortColumn::Cost => "e.cost_micros",
            SortColumn::Session => "COALESCE(ss.name, '')",
            SortColumn::Machine => "COALESCE(mc.name, '')",
        }
    }

    fn is_text(self) -> bool {
        matches!(
            self,
            SortColumn::Id
                | SortColumn::User
                | SortColumn::Model
                | SortColumn::Activity
                | SortColumn::Project
                | SortColumn::Source
                | SortColumn::Session
                | SortColumn::Machine
        )
    }
}

/// Where the previous page ended: the sort value and the row id of its
/// last row. Opaque to clients (`Cursor::encode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub value: CursorValue,
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorValue {
    Number(i64),
    Text(String),
}

impl Cursor {
    /// `n<value>.<id>` or `t<hex of text>.<id>`: URL-safe as it is.
    pub fn encode(&self) -> String {
        match &self.value {
            CursorValue::Number(n) => format!("n{n}.{}", self.id),
            CursorValue::Text(text) => {
                let mut hex = String::new();
                for byte in text.bytes() {
                    let _ = write!(hex, "{byte:02x}");
                }
                format!("t{hex}.{}", self.id)
            }
        }
    }

    pub fn decode(encoded: &str) -> Option<Cursor> {
        let (value, id) = encoded.rsplit_once('.')?;
        let id = id.parse().ok()?;
        let value = match value.split_at_checked(1)? {
            ("n", number) => CursorValue::Number(number.parse().ok()?),
            ("t", hex) => {
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()?;
                CursorValue::Text(String::from_utf8(bytes).ok()?)
            }
            _ => return None,
        };
        Some(Cursor { value, id })
    }
}

#[derive(Debug, Clone)]
pub struct EventsQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    pub filters: Filters,
    pub sort: SortColumn,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// One call, as the events table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub row_id: i64,
    pub id: String,
    pub ts_ms: i64,
    pub user: String,
    pub model: String,
    pub provider: Option<String>,
    pub activity: Option<String>,
    pub project: Option<String>,
    pub source: String,
    /// Input, output, cache read, cache write.
    pub tokens: [i64; 4],
    pub cost_micros: i64,
    /// `false` when no price was known: the cost is not a real zero.
    pub priced: bool,
    /// Where `cost_micros` came from: reported by the producer, an admin's
    /// price, the catalogue, or none.
    pub origin: CostOrigin,
    /// The cost from the prices in force (admin's, else the catalogue's):
    /// `cost_micros` unless it was reported; for a reported cost, what the
    /// prices say beside it (`None` when no price is known).
    pub computed_cost_micros: Option<i64>,
    /// Of the cache writes, those written for an hour; web searches.
    pub extras: Extras,
    pub session: Option<String>,
    pub machine: Option<String>,
    /// The identity that attributed it (`kind:value`), if one did.
    pub identity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsPage {
    pub rows: Vec<EventRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<Cursor>,
}

fn in_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// One page of events within `scope`.
pub fn page(conn: &Connection, scope: Scope, query: &EventsQuery) -> Result<EventsPage, DbError> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    let mut sql = String::from(
        "SELECT e.id, e.external_id, e.ts_ms, u.username, m.name, pv.name, a.name, p.name, s.name,
                e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens,
                e.cost_micros, e.cost_origin, ss.name, mc.name, idn.kind || ':' || idn.value,
                e.cache_write_1h_tokens, e.web_search_requests, e.one_request
         FROM events e
         JOIN users u ON u.id = e.user_id
         JOIN models m ON m.id = e.model_id
         JOIN sources s ON s.id = e.source_id
         LEFT JOIN providers pv ON pv.id = e.provider_id
         LEFT JOIN activities a ON a.id = e.activity_id
         LEFT JOIN projects p ON p.id = e.project_id
         LEFT JOIN event_sessions ss ON ss.id = e.session_id
         LEFT JOIN event_machines mc ON mc.id = e.machine_id
         LEFT JOIN identities idn ON idn.id = e.identity_id",
    );
    let Some(constraints) = resolve_filters(conn, scope, &query.filters)? else {
        return Ok(EventsPage {
            rows: Vec::new(),
            next: None,
        });
    };
    // With one user, the (user_id, cost_micros) and (user_id, ts_ms)
    // indexes give the rows already in order, so a page reads about a page
    // of rows. Without statistics SQLite prefers a time-range or model
    // index and sorts everything it finds; a unary `+` takes the other
    // terms out of index selection.
    //
    // A session, a machine or an identity is narrower still: its own index
    // finds the rows, so the dimensions are taken out instead.
    let by_label = constraints.raw_only();
    let one_user = constraints
        .dims
        .iter()
        .any(|(dim, ids)| *dim == Dim::User && ids.len() == 1);
    let steer = !by_label && one_user && matches!(query.sort, SortColumn::Cost | SortColumn::Time);
    let time = if steer && query.sort == SortColumn::Cost {
        "+e.ts_ms"
    } else {
        "e.ts_ms"
    };
    let _ = write!(sql, " WHERE {time} >= ?1 AND {time} < ?2");
    let mut values: Vec<Value> = vec![
        Value::Integer(query.from.as_millisecond()),
        Value::Integer(query.to.as_millisecond()),
    ];
    for (dim, ids) in &constraints.dims {
        let unindexed = if by_label || (steer && *dim != Dim::User) {
            "+"
        } else {
            ""
        };
        let column = match dim {
            Dim::User | Dim::Model | Dim::Source => format!("{unindexed}e.{}", dim.column()),
            _ => format!("COALESCE(e.{}, 0)", dim.column()),
        };
        let _ = write!(sql, " AND {column} IN ({})", in_list(ids));
    }
    sql.push_str(&constraints.raw_terms("e."));
    // A team's usage is its members' while they were in it: the user's
    // membership of the team must hold the event's time.
    if let Some(team) = constraints.team {
        values.push(Value::Integer(team.0));
        let _ = write!(
            sql,
            " AND EXISTS (SELECT 1 FROM team_members tm WHERE tm.user_id = e.user_id
               AND tm.team_id = ?{} AND tm.since_ms <= e.ts_ms
               AND (tm.until_ms IS NULL OR e.ts_ms < tm.until_ms))",
            values.len()
        );
    }
    let sort = query.sort.expression();
    let (cmp, order) = if query.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(cursor) = &query.after {
        let value = match (&cursor.value, query.sort.is_text()) {
            (CursorValue::Number(n), false) => Value::Integer(*n),
            (CursorValue::Text(t), true) => Value::Text(t.clone()),
            // A cursor from another sort: start from the top.
            _ => Value::Null,
        };
        if value != Value::Null {
            values.push(value);
            values.push(Value::Integer(cursor.id));
            let n = values.len();
            let _ = write!(sql, " AND ({sort}, e.id) {cmp} (?{}, ?{n})", n - 1);
        }
    }
    let _ = write!(
        sql,
        " ORDER BY {sort} {order}, e.id {order} LIMIT {}",
        limit + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt
        .query_map(params_from_iter(values), |row| {
            let origin = CostOrigin::from_column(row.get(14)?);
            let cost_micros = row.get(13)?;
            Ok(EventRow {
                row_id: row.get(0)?,
                id: row.get(1)?,
                ts_ms: row.get(2)?,
                user: row.get(3)?,
                model: row.get(4)?,
                provider: row.get(5)?,
                activity: row.get(6)?,
                project: row.get(7)?,
                source: row.get(8)?,
                tokens: [row.get(9)?, row.get(10)?, row.get(11)?, row.get(12)?],
                cost_micros,
                priced: origin != CostOrigin::Unpriced,
                origin,
                computed_cost_micros: (!matches!(
                    origin,
                    CostOrigin::Unpriced | CostOrigin::Reported
                ))
                .then_some(cost_micros),
                extras: Extras {
                    cache_write_1h: row.get(18)?,
                    web_search_requests: row.get(19)?,
                    one_request: row.get::<_, i64>(20)? != 0,
                },
                session: row.get(15)?,
                machine: row.get(16)?,
                identity: row.get(17)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    compute_beside_reported(conn, &mut rows)?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| Cursor {
            value: sort_value(last, query.sort),
            id: last.row_id,
        })
    } else {
        None
    };
    Ok(EventsPage { rows, next })
}

/// Prices each reported event as if it had not been: what the prices in
/// force say beside the producer's figure (events page, API, CSV). A price
/// that would make one call cost more than an event may is shown as none.
fn compute_beside_reported(conn: &Connection, rows: &mut [EventRow]) -> Result<(), DbError> {
    if rows.iter().all(|row| row.origin != CostOrigin::Reported) {
        return Ok(());
    }
    let prices = PriceBook::load(conn)?;
    for row in rows
        .iter_mut()
        .filter(|row| row.origin == CostOrigin::Reported)
    {
        let usage = Usage::of_event(&row.tokens, &row.extras);
        let priced = prices.cost(conn, &row.model, row.provider.as_deref(), row.ts_ms, &usage);
        row.computed_cost_micros = match priced {
            Ok((cost, origin)) if origin != CostOrigin::Unpriced => Some(cost),
            Ok(_) | Err(DbError::Refused(_)) => None,
            Err(e) => return Err(e),
        };
    }
    Ok(())
}

fn sort_value(row: &EventRow, sort: SortColumn) -> CursorValue {
    let text = |value: &Option<String>| CursorValue::Text(value.clone().unwrap_or_default());
    match sort {
        SortColumn::Id => CursorValue::Text(row.id.clone()),
        SortColumn::Time => CursorValue::Number(row.ts_ms),
        SortColumn::User => CursorValue::Text(row.user.clone()),
        SortColumn::Model => CursorValue::Text(row.model.clone()),
        SortColumn::Activity => text(&row.activity),
        SortColumn::Project => text(&row.project),
        SortColumn::Source => CursorValue::Text(row.source.clone()),
        SortColumn::Input => CursorValue::Number(row.tokens[0]),
        SortColumn::Output => CursorValue::Number(row.tokens[1]),
        SortColumn::CacheRead => CursorValue::Number(row.tokens[2]),
        SortColumn::CacheWrite => CursorValue::Number(row.tokens[3]),
        SortColumn::Cost => CursorValue::Number(row.cost_micros),
        SortColumn::Session => text(&row.session),
        SortColumn::Machine => text(&row.machine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for cursor in [
            Cursor {
                value: CursorValue::Number(-42),
                id: 7,
            },
            Cursor {
                value: CursorValue::Text("code review. ünïcode".into()),
                id: 99,
            },
            Cursor {
                value: CursorValue::Text(String::new()),
                id: 1,
            },
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        for garbage in ["", "x1.2", "n1", "nx.1", "tzz.1", "n1.x", "t4.1"] {
            assert_eq!(Cursor::decode(garbage), None, "{garbage}");
        }
    }
}
