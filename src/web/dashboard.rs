//! The overview page: the signed-in user's usage (everyone's for an
//! admin) over the last 30 days.

use axum::extract::State;
use jiff::SignedDuration;
use maud::{Markup, html};

use super::{format, layout};
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::usage::{self, Range, Scope, Summary};

const DAYS_SHOWN: i64 = 30;

pub async fn page(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Markup, AppError> {
    let scope = Scope::widest_for(&user);
    let now = state.clock.now();
    let from = now
        .checked_sub(SignedDuration::from_hours(24 * DAYS_SHOWN))
        .unwrap_or(now);
    let range = Range {
        from_ms: from.as_millisecond(),
        to_ms: now.as_millisecond(),
    };
    let summary = state
        .db
        .read(move |conn| usage::summary(conn, scope, range))
        .await?;
    let heading = match scope {
        Scope::Everyone => "Everyone's usage",
        Scope::User(_) => "Your usage",
    };
    let body = html! {
        h1 { (heading) }
        p.subtitle { "Last " (DAYS_SHOWN) " days, up to now." }
        @if summary.totals.calls == 0 {
            section.card.empty {
                h2 { "No usage yet" }
                p { "Nothing was recorded in this period. Usage appears here as soon as events arrive." }
            }
        } @else {
            (totals_cards(&summary))
            (model_table(&summary))
        }
    };
    Ok(layout::page(&state.assets, Some(&user), "Overview", body))
}

fn totals_cards(summary: &Summary) -> Markup {
    let totals = &summary.totals;
    html! {
        section aria-label="Totals" {
            dl.totals {
                div { dt { "Cost" } dd { (format::money(totals.cost_micros)) } }
                div { dt { "Calls" } dd { (format::integer(totals.calls)) } }
                div { dt { "Tokens" } dd { (format::tokens(totals.all_tokens())) } }
                div { dt { "Input" } dd { (format::tokens(totals.input_tokens)) } }
                div { dt { "Output" } dd { (format::tokens(totals.output_tokens)) } }
                div { dt { "Cache read" } dd { (format::tokens(totals.cache_read_tokens)) } }
                div { dt { "Cache write" } dd { (format::tokens(totals.cache_write_tokens)) } }
            }
            @if totals.unpriced_calls > 0 {
                p.notice role="note" {
                    (format::integer(totals.unpriced_calls))
                    " calls have no known price and are not included in the cost."
                }
            }
        }
    }
}

fn model_table(summary: &Summary) -> Markup {
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
                        @for row in &summary.by_model {
                            tr {
                                th scope="row" { (row.model) }
                                td.num { (format::integer(row.totals.calls)) }
                                td.num { (format::tokens(row.totals.input_tokens)) }
                                td.num { (format::tokens(row.totals.output_tokens)) }
                                td.num { (format::tokens(row.totals.cache_read_tokens)) }
                                td.num { (format::tokens(row.totals.cache_write_tokens)) }
                                td.num {
                                    @if row.totals.unpriced_calls == row.totals.calls {
                                        span.unpriced { "unpriced" }
                                    } @else {
                                        (format::money(row.totals.cost_micros))
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
