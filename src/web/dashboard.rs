//! The overview page: the signed-in user's usage (everyone's for an
//! admin) over the last 30 days, through the usage query layer.

use axum::extract::State;
use jiff::SignedDuration;
use maud::{Markup, html};

use super::{format, layout};
use crate::app::AppState;
use crate::audit::{Action, Note};
use crate::auth::{Reader, Viewer};
use crate::error::AppError;
use crate::usage::query::{self, Filters, QueryError, TotalsWithChange};
use crate::usage::rollup::Dim;
use crate::usage::{Scope, Totals};

const DAYS_SHOWN: i64 = 30;
const TOP_MODELS: usize = 10;

impl From<QueryError> for AppError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Buckets(e) => AppError::BadRequest(e.to_string()),
            QueryError::Db(e) => AppError::from(e),
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    reader: Reader,
) -> Result<(Note, Markup), AppError> {
    let scope = reader.scope;
    let to = state.clock.now();
    let from = to
        .checked_sub(SignedDuration::from_hours(24 * DAYS_SHOWN))
        .unwrap_or(to);
    let (totals, by_model) = state
        .db
        .read(move |conn| {
            let filters = Filters::default();
            let totals = query::totals_with_change(conn, scope, from, to, &filters)?;
            let by_model = query::top(conn, scope, from, to, &filters, Dim::Model, TOP_MODELS)?;
            Ok::<_, QueryError>((totals, by_model))
        })
        .await?;
    let heading = match (&reader.viewing, scope) {
        (Some(viewed), _) => format!("{}'s usage", viewed.shown_name()),
        (None, Scope::Everyone) => "Everyone's usage".to_owned(),
        (None, Scope::User(_)) => "Your usage".to_owned(),
    };
    let body = html! {
        h1 { (heading) }
        p.subtitle { "Last " (DAYS_SHOWN) " days, up to now." }
        @if totals.current.calls == 0 {
            section.card.empty {
                h2 { "No usage yet" }
                p { "Nothing was recorded in this period. Usage appears here as soon as events arrive." }
            }
        } @else {
            (totals_cards(&totals))
            (model_table(&by_model))
        }
    };
    let note = reader.note(Action::PageView).details(serde_json::json!({
        "page": "overview",
        "from": from.to_string(),
        "to": to.to_string(),
    }));
    Ok((
        note,
        layout::page(&state.assets, Some(&viewer), "Overview", body),
    ))
}

/// "+12% vs previous 30 days", or nothing when there is no base.
fn change(current: i64, previous: i64) -> Markup {
    html! {
        @if previous > 0 {
            @let percent = (current - previous) as f64 * 100.0 / previous as f64;
            span.change { (format!("{percent:+.0}%")) " vs previous " (DAYS_SHOWN) " days" }
        }
    }
}

fn totals_cards(totals: &TotalsWithChange) -> Markup {
    let (now, before) = (&totals.current, &totals.previous);
    html! {
        section aria-label="Totals" {
            dl.totals {
                div { dt { "Cost" } dd { (format::money(now.cost_micros)) } (change(now.cost_micros, before.cost_micros)) }
                div { dt { "Calls" } dd { (format::integer(now.calls)) } (change(now.calls, before.calls)) }
                div { dt { "Tokens" } dd { (format::tokens(now.all_tokens())) } (change(now.all_tokens(), before.all_tokens())) }
                div { dt { "Input" } dd { (format::tokens(now.input_tokens)) } }
                div { dt { "Output" } dd { (format::tokens(now.output_tokens)) } }
                div { dt { "Cache read" } dd { (format::tokens(now.cache_read_tokens)) } }
                div { dt { "Cache write" } dd { (format::tokens(now.cache_write_tokens)) } }
            }
            @if now.unpriced_calls > 0 {
                p.notice role="note" {
                    (format::integer(now.unpriced_calls))
                    " calls have no known price and are not included in the cost."
                }
            }
        }
    }
}

fn model_table(rows: &[(String, Totals)]) -> Markup {
    html! {
        section.card aria-labelledby="by-model" {
            h2 #by-model { "By model" }
            div.table-scroll {
                table {
                    thead {
                        tr {
                            th scope="col" { "Model" }
                            th.num scope="col" { "Calls" }
                            th.num scope="col" { "Input" }
                            th.num scope="col" { "Output" }
                            th.num scope="col" { "Cache read" }
                            th.num scope="col" { "Cache write" }
                            th.num scope="col" { "Cost" }
                        }
                    }
                    tbody {
                        @for (model, totals) in rows {
                            tr {
                                th scope="row" { (model) }
                                td.num { (format::integer(totals.calls)) }
                                td.num { (format::tokens(totals.input_tokens)) }
                                td.num { (format::tokens(totals.output_tokens)) }
                                td.num { (format::tokens(totals.cache_read_tokens)) }
                                td.num { (format::tokens(totals.cache_write_tokens)) }
                                td.num {
                                    @if totals.unpriced_calls == totals.calls {
                                        span.unpriced { "unpriced" }
                                    } @else {
                                        (format::money(totals.cost_micros))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
