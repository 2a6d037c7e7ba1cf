//! The admin's audit pages: browse and filter the trail (actor, action,
//! time range), newest first, and export the same selection as CSV.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rusqlite::{Connection, params};
use serde_json::json;

use crate::audit::Note;
use crate::audit::chain::{COLUMNS, StoredEntry, from_row};
use crate::auth::RequireAdmin;
use crate::db::DbError;
use crate::error::{AppError, context};
use crate::model::Action;
use crate::model::format::csv_cell;
use crate::usage::params as usage_params;
use crate::web::WebState;
use crate::web::layout;
use crate::web::page::PageContext;

const PAGE_ROWS: i64 = 100;
const MAX_EXPORT_ROWS: i64 = 1_000_000;

/// The selection, as the filter form and the query string hold it.
#[derive(Debug, Clone, Default)]
struct Filter {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Show entries older than this sequence number (paging).
    before: Option<i64>,
}

/// The parameters of the audit page and its export (the filter form's
/// fields and the paging link's `before`).
const PARAMETERS: [&str; 5] = ["actor", "action", "from", "to", "before"];

impl Filter {
    fn parse(query: Option<&str>) -> Result<Filter, AppError> {
        usage_params::check_names(query, &[&PARAMETERS])
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        let mut filter = Filter::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim().to_owned();
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "actor" => filter.actor = Some(value),
                "action" => {
                    if Action::from_code(&value).is_none() {
                        return Err(AppError::BadRequest(format!(
                            "action: {value:?} is not an audit action"
                        )));
                    }
                    filter.action = Some(value);
                }
                "from" => filter.from = Some(value),
                "to" => filter.to = Some(value),
                "before" => {
                    filter.before =
                        Some(value.parse().map_err(|_| {
                            AppError::BadRequest("before: not an entry number".into())
                        })?)
                }
                _ => {}
            }
        }
        Ok(filter)
    }

    /// (from, to) as UTC milliseconds; dates are whole UTC days.
    fn range_ms(&self) -> Result<(i64, i64), AppError> {
        let parse = |field: &'static str, value: &str, end: bool| -> Result<i64, AppError> {
            if let Ok(t) = value.parse::<jiff::Timestamp>() {
                return Ok(t.as_millisecond());
            }
            let bad = |e: usage_params::ParamError| AppError::BadRequest(e.to_string());
            let date = usage_params::date(field, value).map_err(bad)?;
            let date = if end {
                date.tomorrow().unwrap_or(date)
            } else {
                date
            };
            date.to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp().as_millisecond())
                .map_err(|_| {
                    AppError::BadRequest(format!("{field}: {date} is outside the supported dates"))
                })
        };
        let from = match &self.from {
            Some(v) => parse("from", v, false)?,
            None => i64::MIN,
        };
        let to = match &self.to {
            Some(v) => parse("to", v, true)?,
            None => i64::MAX,
        };
        Ok((from, to))
    }

    fn details(&self) -> serde_json::Value {
        json!({"actor": self.actor, "action": self.action, "from": self.from, "to": self.to})
    }

    fn query_string(&self, before: Option<i64>) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        if let Some(before) = before {
            out.append_pair("before", &before.to_string());
        }
        out.finish()
    }
}

fn select(
    conn: &Connection,
    filter: &Filter,
    (from, to): (i64, i64),
    limit: i64,
) -> Result<Vec<StoredEntry>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE (?1 IS NULL OR actor_name = ?1 OR actor_name LIKE ?1 || ' (token %')
           AND (?2 IS NULL OR action = ?2)
           AND at_ms >= ?3 AND at_ms < ?4
           AND (?5 IS NULL OR seq < ?5)
         ORDER BY seq DESC LIMIT ?6"
    ))?;
    let rows = stmt
        .query_map(
            params![filter.actor, filter.action, from, to, filter.before, limit],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub async fn page(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    context: PageContext,
    RawQuery(query): RawQuery,
) -> Result<(Note, Markup), AppError> {
    let filter = Filter::parse(query.as_deref())?;
    let range = filter.range_ms()?;
    let selection = filter.clone();
    let rows = state
        .db
        .read(move |conn| select(conn, &selection, range, PAGE_ROWS))
        .await?;
    let note = Note::new(Action::AuditRead).details(filter.details());
    Ok((note, render(&context, &filter, &rows)))
}

fn time(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn render(context: &PageContext, filter: &Filter, rows: &[StoredEntry]) -> Markup {
    let next = (rows.len() as i64 == PAGE_ROWS)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let body = html! {
        h1 { "Audit log" }
        p.subtitle { "Every sign-in, page view, data read, ingest request and change, newest first. Times are UTC." }
        form.filters method="get" action="/admin/audit" {
            div { label for="f-actor" { "Actor (username)" }
                input #f-actor type="text" name="actor" value=(filter.actor.as_deref().unwrap_or("")); }
            div { label for="f-action" { "Action" }
                select #f-action name="action" {
                    option value="" { "any" }
                    @for action in Action::ALL {
                        option value=(action.code()) selected[filter.action.as_deref() == Some(action.code())] { (action.code()) }
                    }
                } }
            div { label for="f-from" { "From (date)" }
                input #f-from type="date" name="from" value=(filter.from.as_deref().unwrap_or("")); }
            div { label for="f-to" { "To (date, inclusive)" }
                input #f-to type="date" name="to" value=(filter.to.as_deref().unwrap_or("")); }
            div { button type="submit" { "Filter" } }
        }
        p { a href={ "/admin/audit.csv?" (filter.query_string(None)) } { "Export this selection as CSV" } }
        section.card aria-labelledby="audit-title" {
            h2 #audit-title { "Entries" }
            // Long routes and targets can make the table wider than its
            // box, and its cells hold nothing focusable: the box itself
            // takes focus, so the keyboard can scroll it.
            div.table-scroll tabindex="0" role="region" aria-labelledby="audit-title" {
                table {
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { "Time" }
                        th scope="col" { "Actor" }
                        th scope="col" { "Action" }
                        th scope="col" { "Target" }
                        th scope="col" { "Outcome" }
                        th scope="col" { "Route" }
                        th scope="col" { "Address" }
                        th scope="col" { "Details" }
                    } }
                    tbody {
                        @for row in rows {
                            tr {
                                td.num { (row.seq) }
                                td { (time(row.at_ms)) }
                                td { (row.actor_name.as_deref().unwrap_or(&row.actor_kind)) }
                                td { code { (row.action) } }
                                td { (row.target.as_deref().unwrap_or("")) }
                                td { (row.outcome) }
                                td { (row.route.as_deref().unwrap_or("")) }
                                td { (row.client_addr.as_deref().unwrap_or("")) }
                                td.details { code { (row.details) } }
                            }
                        }
                    }
                }
            }
            @if rows.is_empty() { p { "No entries match." } }
            @if let Some(before) = next {
                p { a href={ "/admin/audit?" (filter.query_string(Some(before))) } { "Older entries" } }
            }
        }
    };
    layout::page(context, "Audit log", body)
}

pub async fn export(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let filter = Filter::parse(query.as_deref())?;
    let range = filter.range_ms()?;
    let selection = filter.clone();
    let rows = state
        .db
        .read(move |conn| select(conn, &selection, range, MAX_EXPORT_ROWS))
        .await?;
    let csv = to_csv(&rows)?;
    let note = Note::new(Action::AuditExport).details(json!({
        "filters": filter.details(),
        "rows": rows.len(),
    }));
    Ok((
        note,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tokentally-audit.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

fn to_csv(rows: &[StoredEntry]) -> Result<String, AppError> {
    let failed = |e: csv::Error| AppError::internal(context("csv", e));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "seq",
            "time",
            "actor_kind",
            "actor",
            "action",
            "target",
            "outcome",
            "route",
            "client_addr",
            "user_agent",
            "details",
            "prev_hash",
            "hash",
        ])
        .map_err(failed)?;
    // Actor, target, route, address, user agent and details come from
    // requests (some unauthenticated): never a formula.
    for row in rows {
        writer
            .write_record([
                row.seq.to_string().as_str(),
                &jiff::Timestamp::from_millisecond(row.at_ms)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                &row.actor_kind,
                &csv_cell(row.actor_name.as_deref().unwrap_or("")),
                &row.action,
                &csv_cell(row.target.as_deref().unwrap_or("")),
                &row.outcome,
                &csv_cell(row.route.as_deref().unwrap_or("")),
                &csv_cell(row.client_addr.as_deref().unwrap_or("")),
                &csv_cell(row.user_agent.as_deref().unwrap_or("")),
                &csv_cell(&row.details),
                &row.prev_hash,
                &row.hash,
            ])
            .map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| AppError::internal(context("csv", e.into_error())))?;
    String::from_utf8(bytes).map_err(AppError::internal)
}
