//! The events table: one row per call, sortable by every column
//! (descending, ascending, none), filtered by user, model, activity,
//! project, source, session and machine (and, for admins, identity:
//! `unassigned` or `kind:value`, with an identity column), a page at a
//! time (keyset), with a CSV export of exactly this view. Every bit of
//! state is in the URL.

use axum::extract::State;
use maud::{Markup, html};

use super::controls::{DataPage, ViewChoices, time_controls, view_switcher};
use super::overview::cost_cell;
use super::{format, layout};
use crate::audit::Note;
use crate::error::AppError;
use crate::model::Totals;
use crate::usage::events::{self, EventRow, EventsPage, SortColumn};
use crate::usage::rollup::CostOrigin;
use crate::web::WebState;

const PAGE_ROWS: usize = 50;

/// The columns, their header and whether they hold numbers.
const COLUMNS: [(SortColumn, &str, bool); 14] = [
    (SortColumn::Time, "Time", false),
    (SortColumn::User, "User", false),
    (SortColumn::Model, "Model", false),
    (SortColumn::Activity, "Activity", false),
    (SortColumn::Project, "Project", false),
    (SortColumn::Source, "Source", false),
    (SortColumn::Input, "Input", true),
    (SortColumn::Output, "Output", true),
    (SortColumn::CacheRead, "Cache read", true),
    (SortColumn::CacheWrite, "Cache write", true),
    (SortColumn::Cost, "Cost", true),
    (SortColumn::Machine, "Machine", false),
    (SortColumn::Session, "Session", false),
    (SortColumn::Id, "Id", false),
];

/// The filters of the form, by URL name and label.
const FILTERS: [(&str, &str); 8] = [
    ("user", "User"),
    ("model", "Model"),
    ("activity", "Activity"),
    ("project", "Project"),
    ("source", "Source"),
    ("machine", "Machine"),
    ("session", "Session"),
    ("identity", "Identity"),
];

/// The URL names of the filters.
const FILTER_NAMES: [&str; 8] = [
    "user", "model", "activity", "project", "source", "machine", "session", "identity",
];

pub async fn page(
    State(state): State<WebState>,
    page: DataPage,
) -> Result<(Note, Markup), AppError> {
    let scope = page.reader.scope;
    let mut query = page.params.events_query();
    if page.url.get("limit").is_none() {
        query.limit = PAGE_ROWS;
    }
    let admin = page.context.viewer.user.is_admin();
    let (rows, choices): (EventsPage, ViewChoices) = state
        .db
        .read(move |conn| {
            let rows = events::page(conn, scope, &query)?;
            Ok::<_, crate::db::DbError>((rows, ViewChoices::load(conn, admin)?))
        })
        .await?;
    let body = render(&page, &rows, &choices);
    let mut note = page.note("events");
    note.details["rows"] = rows.rows.len().into();
    Ok((note, layout::page(&page.context, "Events", body)))
}

fn render(page: &DataPage, rows: &EventsPage, choices: &ViewChoices) -> Markup {
    // Identities are shown to admins (a member's are on their profile).
    let admin = page.context.viewer.user.is_admin();
    let csv = page
        .url
        .with(&[("limit", None)])
        .href("/api/v1/usage/events.csv");
    let first_page = page.url.get("after").is_some();
    let mut sum = Totals::default();
    for row in &rows.rows {
        // Fifty events, each within the per-event limits: cannot overflow;
        // an old unrepaired database shows what it can.
        if sum.checked_add(&row_totals(row)).is_err() {
            break;
        }
    }
    html! {
        div.page-head {
            h1 { "Events" }
            (view_switcher(page, "/events", choices))
        }
        p.subtitle { (page.whose()) ", " (page.range_label()) ", one row per call." }
        (time_controls(page, "/events"))
        (filters_form(page))
        section.card aria-labelledby="events-heading" {
            div.card-head {
                h2 #events-heading { "Calls" }
                a.button href=(csv) download { "Export CSV" }
            }
            @if rows.rows.is_empty() {
                p { "No calls match this view." }
            } @else {
                div.table-scroll {
                    table.events #events-table {
                        caption.visually-hidden { "Calls, sortable by every column" }
                        thead { tr {
                            @for (column, label, numeric) in COLUMNS {
                                (sort_header(page, column, label, numeric))
                            }
                            @if admin { th scope="col" { "Identity" } }
                        } }
                        tbody {
                            @for row in &rows.rows { (event_row(page, row, admin)) }
                        }
                        tfoot { tr {
                            th scope="row" colspan="6" { "This page (" (rows.rows.len()) " calls)" }
                            td.num { (format::integer(sum.input_tokens)) }
                            td.num { (format::integer(sum.output_tokens)) }
                            td.num { (format::integer(sum.cache_read_tokens)) }
                            td.num { (format::integer(sum.cache_write_tokens)) }
                            td.num { (cost_cell(&page.context.unit, &sum)) }
                            td {}
                            td {}
                            td {}
                            @if admin { td {} }
                        } }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if first_page {
                    a href=(page.url.with(&[]).href("/events")) { "First page" }
                }
                @if let Some(next) = &rows.next {
                    a href=(page.url.with(&[("after", Some(&next.encode()))]).href("/events")) rel="next" { "Next page" }
                }
            }
        }
    }
}

fn row_totals(row: &EventRow) -> Totals {
    Totals {
        input_tokens: row.tokens[0],
        output_tokens: row.tokens[1],
        cache_read_tokens: row.tokens[2],
        cache_write_tokens: row.tokens[3],
        cost_micros: row.cost_micros,
        calls: 1,
        unpriced_calls: i64::from(!row.priced),
        reported_cost_micros: if row.origin == CostOrigin::Reported {
            row.cost_micros
        } else {
            0
        },
    }
}

/// A header that cycles its column through descending, ascending, none.
fn sort_header(page: &DataPage, column: SortColumn, label: &str, numeric: bool) -> Markup {
    let explicit = page.url.get("sort").is_some();
    let sorted = page.params.sort == column && (explicit || column == SortColumn::Time);
    let descending = page.params.descending;
    let (next_sort, next_order, state) = match (sorted, descending) {
        (false, _) => (Some(column.name()), Some("desc"), None),
        (true, true) => (Some(column.name()), Some("asc"), Some("descending")),
        (true, false) => (None, None, Some("ascending")),
    };
    let href = page
        .url
        .with(&[("sort", next_sort), ("order", next_order)])
        .href("/events");
    let action = match state {
        None => "sort descending",
        Some("descending") => "sort ascending",
        _ => "remove sorting",
    };
    html! {
        th scope="col" class=[numeric.then_some("num")] aria-sort=[state] {
            a href=(href) aria-label={ (label) ", " (action) } {
                (label)
                span.sort-mark aria-hidden="true" {
                    @match state { Some("descending") => " ▼", Some(_) => " ▲", None => "" }
                }
            }
        }
    }
}

fn event_row(page: &DataPage, row: &EventRow, admin: bool) -> Markup {
    let zone = page.zone();
    html! {
        tr {
            td { time datetime=(jiff::Timestamp::from_millisecond(row.ts_ms).map(|t| t.to_string()).unwrap_or_default()) { (format::date_time(row.ts_ms, zone)) } }
            td { (row.user) }
            td { (row.model) }
            td { (row.activity.as_deref().unwrap_or("")) }
            td { (row.project.as_deref().unwrap_or("")) }
            td { (row.source) }
            td.num { (format::integer(row.tokens[0])) }
            td.num { (format::integer(row.tokens[1])) }
            td.num { (format::integer(row.tokens[2])) }
            td.num {
                (format::integer(row.tokens[3]))
                @if row.extras.cache_write_1h > 0 {
                    span.cell-note { "1 h: " (format::integer(row.extras.cache_write_1h)) }
                }
            }
            td.num { (event_cost(page, row)) }
            td { (label_link(page, "machine", row.machine.as_deref())) }
            td.session { (label_link(page, "session", row.session.as_deref())) }
            td.id { code { (row.id) } }
            @if admin { td { (label_link(page, "identity", row.identity.as_deref())) } }
        }
    }
}

/// The cost as counted, and under it where it came from: a producer's
/// reported cost has the cost from the prices in force beside it, so that
/// a difference shows; web searches are named because they are billed per
/// request, not per token.
fn event_cost(page: &DataPage, row: &EventRow) -> Markup {
    let unit = &page.context.unit;
    html! {
        @if row.priced { (unit.money(row.cost_micros)) } @else { span.unpriced { "unpriced" } }
        span.cell-note {
            @match (row.origin, row.computed_cost_micros) {
                (CostOrigin::Reported, Some(computed)) => { "reported; prices say " (unit.money(computed)) }
                (CostOrigin::Reported, None) => { "reported; no price" }
                (CostOrigin::Unpriced, _) => {}
                (origin, _) => { "from " (origin_label(origin)) }
            }
            @if row.extras.web_search_requests > 0 {
                " · " (format::integer(row.extras.web_search_requests)) " web searches"
            }
        }
    }
}

fn origin_label(origin: CostOrigin) -> &'static str {
    match origin {
        CostOrigin::PriceTable => "admin's price",
        CostOrigin::Catalogue => "catalogue",
        CostOrigin::Reported => "reported",
        CostOrigin::Unpriced => "no price",
    }
}

/// A session, machine or identity, linking to this view filtered by it.
fn label_link(page: &DataPage, name: &str, value: Option<&str>) -> Markup {
    match value {
        None => html! {},
        Some(value) => {
            let href = page.url.with(&[(name, Some(value))]).href("/events");
            html! { a href=(href) title={ "Only the calls of this " (name) } { code { (value) } } }
        }
    }
}

fn filters_form(page: &DataPage) -> Markup {
    let admin = page.context.viewer.user.is_admin();
    // Filtering by user makes sense where several users' usage is shown:
    // everyone's (admins) or a team's (admins and its leads).
    let several_users = match page.reader.scope {
        crate::model::Scope::Everyone | crate::model::Scope::Team(_) => true,
        crate::model::Scope::User(_) => false,
    };
    let shown = |name: &str| match name {
        "user" => several_users,
        // `unassigned`, or one identity (`email:carol@example.com`).
        "identity" => admin,
        _ => true,
    };
    html! {
        form.filters method="get" action="/events" aria-label="Filters" {
            (page.url.hidden_inputs(&FILTER_NAMES))
            @for (name, label) in FILTERS {
                @if shown(name) {
                    div {
                        label for={ "filter-" (name) } { (label) }
                        input id={ "filter-" (name) } type="text" name=(name)
                            value=(page.url.get(name).unwrap_or(""))
                            placeholder=(if name == "identity" { "any, unassigned or kind:value" } else { "any" });
                    }
                }
            }
            div.filter-actions {
                button type="submit" { "Filter" }
                a href=(page.url.with(&FILTER_NAMES.map(|name| (name, None))).href("/events")) { "Clear filters" }
            }
        }
    }
}
