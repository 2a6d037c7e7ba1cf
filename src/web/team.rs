//! The team page (admins): usage per user over the range, stacked by user,
//! and a sortable table of everyone's totals.

use axum::extract::State;
use maud::{Markup, html};

use super::chart::{self, Chart, Metric};
use super::controls::{DataPage, time_controls};
use super::overview::cost_cell;
use super::{format, layout};
use crate::audit::Note;
use crate::auth::RequireAdmin;
use crate::error::AppError;
use crate::model::{Scope, Totals};
use crate::usage::query::{self, Series, SeriesQuery};
use crate::usage::rollup::Dim;
use crate::web::WebState;

/// Users shown in the table, in the chosen order; the rest are one row.
const TABLE_ROWS: usize = 100;

/// Sortable columns of the user table: URL name, header, numeric.
const COLUMNS: [(&str, &str, bool); 6] = [
    ("user", "User", false),
    ("calls", "Calls", true),
    ("input_tokens", "Input", true),
    ("output_tokens", "Output", true),
    ("tokens", "All tokens", true),
    ("cost", "Cost", true),
];

pub async fn page(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    page: DataPage,
) -> Result<(Note, Markup), AppError> {
    // The team is everyone, whatever `view` says: that is what the page is.
    let query = SeriesQuery {
        group_by: Some(Dim::User.into()),
        ..page.params.series.clone()
    };
    let rank = Metric::parse(page.url.get("metric")).rank();
    let (series, top) = state
        .db
        .read(move |conn| {
            let series = query::series_top(conn, Scope::Everyone, &query, chart::MAX_SERIES, rank)?;
            let rows = query::top(
                conn,
                Scope::Everyone,
                query.from,
                query.to,
                &query.filters,
                Dim::User,
                usize::MAX,
            )?;
            Ok::<_, AppError>((series, rows))
        })
        .await?;
    let (sort, descending) = team_sort(&page);
    let mut rows = top.rows;
    sort_rows(&mut rows, sort, descending);
    // A bounded table: the first rows in this order, then the rest summed.
    let rest = match rows.len() > TABLE_ROWS {
        true => {
            let mut sum = Totals::default();
            for (_, totals) in &rows[TABLE_ROWS..] {
                sum.checked_add(totals)
                    .map_err(|e| AppError::from(crate::db::DbError::from(e)))?;
            }
            Some((rows.len() - TABLE_ROWS, sum))
        }
        false => None,
    };
    rows.truncate(TABLE_ROWS);
    let body = render(&page, &series, &rows, rest.as_ref(), sort, descending);
    Ok((page.note("team"), layout::page(&page.context, "Team", body)))
}

fn team_sort(page: &DataPage) -> (&'static str, bool) {
    let sort = page
        .url
        .get("sort")
        .and_then(|s| COLUMNS.iter().find(|(name, _, _)| *name == s))
        .map_or("cost", |(name, _, _)| *name);
    (sort, page.url.get("order") != Some("asc"))
}

fn sort_rows(rows: &mut [(String, Totals)], sort: &str, descending: bool) {
    rows.sort_by(|(a_name, a), (b_name, b)| {
        let order = match sort {
            "user" => a_name.cmp(b_name),
            "calls" => a.calls.cmp(&b.calls),
            "input_tokens" => a.input_tokens.cmp(&b.input_tokens),
            "output_tokens" => a.output_tokens.cmp(&b.output_tokens),
            "tokens" => a.all_tokens().cmp(&b.all_tokens()),
            _ => a.cost_micros.cmp(&b.cost_micros),
        };
        if descending { order.reverse() } else { order }
    });
}

fn render(
    page: &DataPage,
    series: &Series,
    rows: &[(String, Totals)],
    rest: Option<&(usize, Totals)>,
    sort: &str,
    descending: bool,
) -> Markup {
    let metric = Metric::parse(page.url.get("metric"));
    let caption = format!(
        "Tokens per {} by user, {}",
        page.params.series.bucket.name(),
        page.range_label()
    );
    html! {
        h1 { "Team" }
        p.subtitle { "Everyone's usage, " (page.range_label()) "." }
        (time_controls(page, "/team"))
        section.card aria-labelledby="team-chart" {
            h2 #team-chart { "Usage per user" }
            (chart::render(&Chart {
                id: "team-chart-plot",
                caption: &caption,
                series,
                breakdown: None,
                metric,
                filter: "user",
                url: &page.url,
            }))
        }
        section.card aria-labelledby="team-table" {
            h2 #team-table { "Users" }
            div.table-scroll {
                table {
                    thead { tr {
                        @for (name, label, numeric) in COLUMNS {
                            @let current = sort == name;
                            @let next_order = if current && descending { "asc" } else { "desc" };
                            th scope="col" class=[numeric.then_some("num")]
                                aria-sort=[current.then_some(if descending { "descending" } else { "ascending" })] {
                                a href=(page.url.with(&[("sort", Some(name)), ("order", Some(next_order))]).href("/team")) {
                                    (label)
                                    span.sort-mark aria-hidden="true" {
                                        @if current { @if descending { " ▼" } @else { " ▲" } }
                                    }
                                }
                            }
                        }
                    } }
                    tbody {
                        @for (user, totals) in rows {
                            tr {
                                th scope="row" { a href={ "/?view=" (user) } { (user) } }
                                td.num { (format::integer(totals.calls)) }
                                td.num { (format::tokens(totals.input_tokens)) }
                                td.num { (format::tokens(totals.output_tokens)) }
                                td.num { (format::tokens(totals.all_tokens())) }
                                td.num { (cost_cell(totals)) }
                            }
                        }
                        @if let Some((users, totals)) = rest {
                            tr.other {
                                th scope="row" { (chart::other_label(*users)) }
                                td.num { (format::integer(totals.calls)) }
                                td.num { (format::tokens(totals.input_tokens)) }
                                td.num { (format::tokens(totals.output_tokens)) }
                                td.num { (format::tokens(totals.all_tokens())) }
                                td.num { (cost_cell(totals)) }
                            }
                        }
                    }
                }
            }
            @if rows.is_empty() { p { "Nobody used anything in this range." } }
        }
    }
}
