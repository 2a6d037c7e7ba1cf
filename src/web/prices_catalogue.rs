//! The Prices page's catalogue parts: which catalogue is loaded, what
//! prices each model of stored events now (an admin's price, or the
//! catalogue entry its name resolves to, and by which rule), and a search
//! over every model of the catalogue (`?q=`, a GET form, at most
//! [`SEARCH_ROWS`] results).

use maud::{Markup, html};

use super::format;
use crate::error::AppError;
use crate::model::format::decimal;
use crate::usage::catalogue::{self, Entry, Meta, Resolution};
use crate::usage::price_list::{PriceList, PricedNow, SeenModel};
use crate::usage::rates::Rates;

/// Results a search shows at most.
pub const SEARCH_ROWS: usize = 50;
/// Models of stored events the page lists at most (the most used first).
pub const MODELS_SHOWN: usize = 200;
/// Longest search accepted, in characters: a model name's limit.
const MAX_QUERY: usize = crate::model::names::MAX_TEXT;

/// A search of the catalogue and what it found.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub query: String,
    pub entries: Vec<Entry>,
    /// More entries matched than are shown.
    pub more: bool,
    /// The entry the query, taken as a model name, resolves to.
    pub resolves_to: Option<Resolution>,
}

/// The `q` parameter: trimmed, bounded.
pub fn query(raw: Option<&str>) -> Result<String, AppError> {
    let q = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(name, _)| name == "q")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    if q.chars().count() > MAX_QUERY || q.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "q: at most {MAX_QUERY} characters, no control characters"
        )));
    }
    Ok(q)
}

/// Runs the search (on a read connection).
pub fn search(conn: &rusqlite::Connection, query: &str) -> Result<Search, crate::db::DbError> {
    if query.is_empty() {
        return Ok(Search::default());
    }
    let (entries, more) = catalogue::store::search(conn, query, SEARCH_ROWS)?;
    let resolves_to = catalogue::resolve(&catalogue::store::Stored(conn), query)?;
    Ok(Search {
        query: query.to_owned(),
        entries,
        more,
        resolves_to,
    })
}

fn label(meta: Option<&Meta>) -> String {
    meta.map_or_else(|| "catalogue".to_owned(), Meta::label)
}

/// The four rates admins know, as cells.
fn rate_cells(rates: Option<&Rates>) -> Markup {
    html! {
        @match rates {
            Some(r) => {
                @for amount in [r.base.input, r.base.output, r.base.cache_read, r.base.cache_write] {
                    td.num { (decimal(amount)) }
                }
            }
            None => { @for _ in 0..4 { td.num { "—" } } }
        }
    }
}

fn priced_by(model: &SeenModel, label: &str) -> Markup {
    html! {
        @match &model.priced_now {
            PricedNow::Admin(_) => { "admin" }
            PricedNow::Catalogue { entry, rule } => {
                (label) ": " code { (entry.name) } " (" (rule.code()) ")"
            }
            PricedNow::Nothing => { "unpriced" }
        }
    }
}

pub fn render(list: &PriceList, search: &Search) -> Markup {
    let label = label(list.catalogue.as_ref());
    html! {
        section.card aria-labelledby="catalogue-title" {
            h2 #catalogue-title { "Catalogue" }
            @match &list.catalogue {
                Some(meta) => p {
                    "Models without a price of yours are priced from "
                    strong { (meta.source) } " (" (meta.date) ", "
                    @if meta.origin == catalogue::Origin::Sync { "synced by an admin" } @else { "built in" }
                    "): " (format::integer(meta.entries as i64)) " models. Your prices win over it; a cost the producer reported is kept. "
                    code { "tokentally price sync" } " loads a newer file."
                },
                None => p { "No catalogue is loaded." },
            }
        }
        section.card aria-labelledby="seen-title" {
            h2 #seen-title { "Models in your events" }
            p.subtitle {
                "What prices each model's new events now, most used first"
                @if list.models_total > list.models.len() {
                    " (" (list.models.len()) " of " (format::integer(list.models_total as i64)) ")"
                }
                ". Per million tokens, in US dollars."
            }
            @if list.models.is_empty() {
                p { "No events yet." }
            } @else {
                div.table-scroll tabindex="0" role="region" aria-labelledby="seen-title" {
                    table {
                        thead { tr {
                            th scope="col" { "Model" }
                            th.num scope="col" { "Events" }
                            th.num scope="col" { "Unpriced" }
                            th scope="col" { "Priced by" }
                            th.num scope="col" { "Input" }
                            th.num scope="col" { "Output" }
                            th.num scope="col" { "Cache read" }
                            th.num scope="col" { "Cache write" }
                        } }
                        tbody {
                            @for model in &list.models {
                                tr {
                                    th scope="row" { (model.model) }
                                    td.num { (format::integer(model.events)) }
                                    td.num { (format::integer(model.unpriced_events)) }
                                    td { (priced_by(model, &label)) }
                                    (rate_cells(model.rates().as_ref()))
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="search-title" {
            h2 #search-title { "Search the catalogue" }
            form.filters method="get" action="/admin/prices" role="search" aria-label="Catalogue" {
                div {
                    label for="q" { "Model name or part of one" }
                    input #q type="search" name="q" value=(search.query) maxlength=(MAX_QUERY) placeholder="claude-sonnet";
                }
                div { button type="submit" { "Search" } }
            }
            @if !search.query.is_empty() {
                p #search-resolves {
                    "As a model name, " code { (search.query) } " is priced by "
                    @match &search.resolves_to {
                        Some(hit) => { (label) ": " code { (hit.entry.name) } " (" (hit.rule.code()) ")" }
                        None => { "nothing in the catalogue" }
                    }
                    " (unless a price of yours covers it)."
                }
                @if search.entries.is_empty() {
                    p { "No catalogue model's name contains it." }
                } @else {
                    p #search-count {
                        (search.entries.len()) " models"
                        @if search.more { " (the first " (SEARCH_ROWS) "; narrow the search)" }
                        ", per million tokens, in US dollars."
                    }
                    div.table-scroll tabindex="0" role="region" aria-labelledby="search-title" {
                        table #search-results aria-describedby="search-count" {
                            thead { tr {
                                th scope="col" { "Model" }
                                th scope="col" { "Provider" }
                                th.num scope="col" { "Input" }
                                th.num scope="col" { "Output" }
                                th.num scope="col" { "Cache read" }
                                th.num scope="col" { "Cache write" }
                                th.num scope="col" { "1-hour write" }
                                th scope="col" { "Long context" }
                                th.num scope="col" { "Web search" }
                                th scope="col" { "Origin" }
                            } }
                            tbody {
                                @for entry in &search.entries {
                                    tr {
                                        th scope="row" { (entry.name) }
                                        td { (entry.provider) }
                                        (rate_cells(Some(&entry.rates)))
                                        td.num { (decimal(entry.rates.base.cache_write_1h)) }
                                        td { @match entry.rates.tier {
                                            Some(tier) => {
                                                "above " (format::integer(tier.above_tokens)) ": "
                                                (decimal(tier.rates.input)) " / " (decimal(tier.rates.output))
                                            }
                                            None => { "—" }
                                        } }
                                        td.num { @match entry.rates.web_search_per_request {
                                            Some(price) => { (decimal(price)) }
                                            None => { "—" }
                                        } }
                                        td { (label) }
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
