//! The read API, for scripts and the dashboard's charts: usage series,
//! the events table and its CSV export. A session or a read-scope token
//! (`Authorization: Bearer`) gets in; [`Reader`] decides whose usage.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::UsageState;
use super::events::{self, EventRow, EventsPage};
use super::params::{self, ParamError, ReadParams};
use super::query::{self, QueryError, Rank};
use super::report::Report;
use crate::auth::Reader;
use crate::db::DbError;
use crate::error::{ApiError, BoxError, DbVerdict, context};
use crate::model::format::csv_cell;
use crate::model::format::decimal;
use crate::model::{Action, Unit};

/// Most rows in one CSV export; past it the export says so in a header.
pub const MAX_EXPORT_ROWS: usize = 200_000;

/// The error of a read, answered as an [`ApiError`]: a JSON body naming
/// the field (for bad parameters), never the internal cause.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("internal: {0}")]
    Internal(#[source] BoxError),
    /// The data cannot be read as it is (a total out of range, or the
    /// storage failing): the reason says what an administrator must do;
    /// the error it came from is logged.
    #[error("{reason}")]
    Unavailable {
        reason: &'static str,
        source: DbError,
    },
    /// Refused for what it asks (a read asks for no write, so a limit on
    /// writes never refuses it).
    #[error("{0}")]
    Refused(String),
    /// Over a budget that renews (likewise for writes only).
    #[error("{message}")]
    OverBudget { message: String, retry_after_s: u64 },
}

impl ReadError {
    fn internal(source: impl Into<BoxError>) -> ReadError {
        ReadError::Internal(source.into())
    }
}

impl From<DbError> for ReadError {
    fn from(e: DbError) -> Self {
        match DbVerdict::from(e) {
            DbVerdict::Unavailable { reason, source } => ReadError::Unavailable { reason, source },
            DbVerdict::Refused(message) => ReadError::Refused(message),
            DbVerdict::OverBudget {
                message,
                retry_after_s,
            } => ReadError::OverBudget {
                message,
                retry_after_s,
            },
            DbVerdict::Internal(source) => ReadError::internal(source),
        }
    }
}

impl From<QueryError> for ReadError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Buckets(e) => ReadError::Param(ParamError {
                field: "bucket".into(),
                reason: e.to_string(),
            }),
            QueryError::Db(e) => e.into(),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Param(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).field(e.field, e.reason)
            }
            ReadError::Unavailable { reason, source } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read usage: {reason}"),
            )
            .logged("usage read refused", source),
            ReadError::Refused(message) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message),
            ReadError::OverBudget {
                message,
                retry_after_s,
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).retry_after(retry_after_s),
            ReadError::Internal(source) => ApiError::internal("usage read failed", source),
        }
    }
}

impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

fn read_params(
    state: &UsageState,
    reader: &Reader,
    query: Option<&str>,
) -> Result<ReadParams, ReadError> {
    // Times are shown in the zone of whoever asks (an admin viewing a
    // member still reads in their own zone).
    Ok(params::parse(
        query,
        reader.user.time_zone.as_deref(),
        state.clock.now(),
    )?)
}

/// `GET /api/v1/usage`: a series (the `tokentally report` JSON shape) plus
/// what was asked.
pub async fn usage(
    State(state): State<UsageState>,
    reader: Reader,
    RawQuery(query): RawQuery,
) -> Result<Response, ReadError> {
    let params = read_params(&state, &reader, query.as_deref())?;
    let (scope, series_query, limit) = (reader.scope, params.series.clone(), params.limit);
    // At most `limit` groups, the largest by cost; the rest as `other`.
    let series = state
        .db
        .read(move |conn| query::series_top(conn, scope, &series_query, limit, Rank::Cost))
        .await?;
    let report = Report::from_series(&series, &state.unit);
    let body = json!({
        "from": params.series.from.to_string(),
        "to": params.series.to.to_string(),
        "zone": params.series.zone.iana_name(),
        "bucket": params.series.bucket.name(),
        "group_by": params.series.group_by.map(query::GroupBy::name),
        "rows": report.rows,
        "totals": report.totals,
        "limit": limit,
        "truncated": report.truncated,
        "groups_total": report.groups_total,
        "other": report.other,
        "unit": report.unit,
    });
    let mut details = params.audit_details();
    details["limit"] = limit.into();
    let note = reader.note(Action::UsageRead).details(details);
    Ok((note, Json(body)).into_response())
}

/// One event as the API shows it. Field names are part of the API.
#[derive(Debug, Serialize)]
struct ApiEventRow<'a> {
    id: &'a str,
    timestamp: String,
    user: &'a str,
    model: &'a str,
    provider: Option<&'a str>,
    activity: Option<&'a str>,
    project: Option<&'a str>,
    source: &'a str,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    /// Decimal string in USD, as stored (and as the ingest API takes
    /// it); null when no price was known.
    cost: Option<String>,
    session: Option<&'a str>,
    machine: Option<&'a str>,
    /// The identity that attributed it (`kind:value`); not an ingest field.
    identity: Option<&'a str>,
    /// `cost` in the instance's unit (the answer's `unit`), rounded once;
    /// not an ingest field.
    cost_in_unit: Option<String>,
    /// Of the cache writes, those written for an hour; web searches (the
    /// ingest API's price fields).
    cache_write_1h_tokens: i64,
    web_search_requests: i64,
    /// Where `cost` came from: `reported` (by the producer), `admin` (an
    /// admin's price), `catalogue`, or `unpriced`. Not an ingest field.
    cost_origin: &'static str,
    /// The cost from the prices in force, in USD: `cost` unless it was
    /// reported; beside a reported cost, what the prices say (null when
    /// no price is known). Not an ingest field.
    computed_cost: Option<String>,
}

fn api_row<'a>(row: &'a EventRow, unit: &Unit) -> ApiEventRow<'a> {
    ApiEventRow {
        id: &row.id,
        timestamp: timestamp(row.ts_ms),
        user: &row.user,
        model: &row.model,
        provider: row.provider.as_deref(),
        activity: row.activity.as_deref(),
        project: row.project.as_deref(),
        source: &row.source,
        input_tokens: row.tokens[0],
        output_tokens: row.tokens[1],
        cache_read_tokens: row.tokens[2],
        cache_write_tokens: row.tokens[3],
        cost: row.priced.then(|| decimal(row.cost_micros)),
        session: row.session.as_deref(),
        machine: row.machine.as_deref(),
        identity: row.identity.as_deref(),
        cost_in_unit: row.priced.then(|| unit.decimal(row.cost_micros)),
        cache_write_1h_tokens: row.extras.cache_write_1h,
        web_search_requests: row.extras.web_search_requests,
        cost_origin: row.origin.name(),
        computed_cost: row.computed_cost_micros.map(decimal),
    }
}

fn timestamp(ts_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ts_ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `GET /api/v1/usage/events`: one keyset page of the events table.
pub async fn events_page(
    State(state): State<UsageState>,
    reader: Reader,
    RawQuery(query): RawQuery,
) -> Result<Response, ReadError> {
    let params = read_params(&state, &reader, query.as_deref())?;
    let (scope, events_query) = (reader.scope, params.events_query());
    let page: EventsPage = state
        .db
        .read(move |conn| events::page(conn, scope, &events_query))
        .await?;
    let rows: Vec<ApiEventRow<'_>> = page.rows.iter().map(|r| api_row(r, &state.unit)).collect();
    let body = json!({
        "events": rows,
        "next": page.next.as_ref().map(events::Cursor::encode),
        "unit": &*state.unit,
    });
    let mut details = params.audit_details();
    details["sort"] = params.sort.name().into();
    details["rows"] = page.rows.len().into();
    let note = reader.note(Action::EventsRead).details(details);
    Ok((note, Json(body)).into_response())
}

/// `GET /api/v1/usage/events.csv`: the same rows as the events table for
/// these parameters (all pages), as CSV.
pub async fn events_csv(
    State(state): State<UsageState>,
    reader: Reader,
    RawQuery(query): RawQuery,
) -> Result<Response, ReadError> {
    let mut params = read_params(&state, &reader, query.as_deref())?;
    params.limit = events::MAX_PAGE;
    params.after = None;
    let (scope, events_query, unit) = (reader.scope, params.events_query(), state.unit.clone());
    let (csv, rows, truncated) = state
        .db
        .read(move |conn| export_csv(conn, scope, events_query, &unit))
        .await?;
    let mut details = params.audit_details();
    details["sort"] = params.sort.name().into();
    details["rows"] = rows.into();
    let note = reader.note(Action::EventsExport).details(details);
    let mut response = (
        note,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tokentally-events.csv\"",
            ),
        ],
        csv,
    )
        .into_response();
    if truncated {
        response.headers_mut().insert(
            "x-tokentally-truncated",
            header::HeaderValue::from(MAX_EXPORT_ROWS),
        );
    }
    Ok(response)
}

/// Column names of the CSV export: the event fields of the ingest API (so
/// an export can be imported elsewhere: `cost` stays the stored USD), then
/// the cost in the instance's unit and that unit's name, then (added with
/// the price catalogue, after the older columns so that scripts reading by
/// position keep working) the ingest API's price fields and where the cost
/// came from with the computed cost beside it. An import skips the
/// export-only columns ([`EXPORT_ONLY_COLUMNS`]), and drops `cost` where
/// `cost_origin` says it was computed rather than reported, so that an
/// exported file is priced again on import instead of counted as reported.
pub const CSV_HEADER: [&str; 21] = {
    let mut header = [""; 21];
    let mut i = 0;
    while i < super::EVENT_FIELDS.len() {
        header[i] = super::EVENT_FIELDS[i];
        i += 1;
    }
    header[15] = EXPORT_ONLY_COLUMNS[0];
    header[16] = EXPORT_ONLY_COLUMNS[1];
    header[17] = super::PRICE_FIELDS[0];
    header[18] = super::PRICE_FIELDS[1];
    header[19] = EXPORT_ONLY_COLUMNS[2];
    header[20] = EXPORT_ONLY_COLUMNS[3];
    header
};

/// The CSV export's columns that are no event field: written for people
/// and spreadsheets, skipped when the file is imported.
pub const EXPORT_ONLY_COLUMNS: [&str; 4] = ["cost_in_unit", "unit", "cost_origin", "computed_cost"];

fn export_csv(
    conn: &rusqlite::Connection,
    scope: super::Scope,
    mut query: events::EventsQuery,
    unit: &Unit,
) -> Result<(String, usize, bool), ReadError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| ReadError::internal(context("csv", e));
    writer.write_record(CSV_HEADER).map_err(csv_error)?;
    let mut rows = 0;
    loop {
        let page = events::page(conn, scope, &query)?;
        for row in &page.rows {
            let r = api_row(row, unit);
            // Names come from whoever sent the events: never a formula.
            writer
                .write_record([
                    &*csv_cell(r.id),
                    &r.timestamp,
                    &csv_cell(r.user),
                    &csv_cell(r.model),
                    &csv_cell(r.provider.unwrap_or("")),
                    &csv_cell(r.activity.unwrap_or("")),
                    &csv_cell(r.project.unwrap_or("")),
                    &csv_cell(r.source),
                    &r.input_tokens.to_string(),
                    &r.output_tokens.to_string(),
                    &r.cache_read_tokens.to_string(),
                    &r.cache_write_tokens.to_string(),
                    r.cost.as_deref().unwrap_or(""),
                    &csv_cell(r.session.unwrap_or("")),
                    &csv_cell(r.machine.unwrap_or("")),
                    r.cost_in_unit.as_deref().unwrap_or(""),
                    // A credits name is the admin's text: never a formula.
                    &csv_cell(unit.name()),
                    &r.cache_write_1h_tokens.to_string(),
                    &r.web_search_requests.to_string(),
                    r.cost_origin,
                    r.computed_cost.as_deref().unwrap_or(""),
                ])
                .map_err(csv_error)?;
        }
        rows += page.rows.len();
        match page.next {
            Some(next) if rows < MAX_EXPORT_ROWS => query.after = Some(next),
            Some(_) => return finish(writer, rows, true),
            None => return finish(writer, rows, false),
        }
    }
}

fn finish(
    writer: csv::Writer<Vec<u8>>,
    rows: usize,
    truncated: bool,
) -> Result<(String, usize, bool), ReadError> {
    let bytes = writer
        .into_inner()
        .map_err(|e| ReadError::internal(context("csv", e.into_error())))?;
    let text = String::from_utf8(bytes).map_err(ReadError::internal)?;
    Ok((text, rows, truncated))
}
