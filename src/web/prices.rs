//! The price table (admins): every price, a form to add or change one from
//! an effective date, and removal; each change says how many events it
//! re-priced. Below it the catalogue's parts ([`super::prices_catalogue`]):
//! which catalogue is loaded, what prices each model of stored events, and
//! a search over the catalogue (`?q=`).

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::flash::{flash, notices};
use super::page::PageContext;
use super::prices_catalogue::{self, Search};
use super::{format, layout};
use crate::audit::Note;
use crate::auth::RequireAdmin;
use crate::error::AppError;
use crate::model::Action;
use crate::model::format::decimal;
use crate::usage::params;
use crate::usage::price_list::{self, PriceList};
use crate::usage::prices::{Price, parse_micros};
use crate::usage::reprice;
use crate::web::WebState;

pub async fn page(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    mut context: PageContext,
    RawQuery(query): RawQuery,
) -> Result<(Note, Markup), AppError> {
    // The page takes only the search: a misspelt one is refused, not ignored.
    params::check_names(query.as_deref(), &[&["q"]])
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let q = prices_catalogue::query(query.as_deref())?;
    context.take_flash().await?;
    let data = read(&state, q.clone()).await?;
    let details = if q.is_empty() {
        json!({"page": "prices"})
    } else {
        json!({"page": "prices", "q": q})
    };
    let note = Note::new(Action::PageView).details(details);
    Ok((note, render(&context, &data, None)))
}

/// What the page shows: the admins' prices, the catalogue, the models of
/// events, the search.
struct PageData {
    list: PriceList,
    search: Search,
}

async fn read(state: &WebState, q: String) -> Result<PageData, AppError> {
    let now_ms = state.clock.now().as_millisecond();
    Ok(state
        .db
        .read(move |conn| {
            Ok::<_, crate::db::DbError>(PageData {
                list: price_list::read(conn, now_ms, prices_catalogue::MODELS_SHOWN)?,
                search: prices_catalogue::search(conn, &q)?,
            })
        })
        .await?)
}

fn render(context: &PageContext, data: &PageData, error: Option<&str>) -> Markup {
    let prices = &data.list.admin;
    let csrf = &context.viewer.csrf;
    let body = html! {
        h1 { "Prices" }
        p.subtitle { "Per million tokens, in US dollars. An event without a reported cost is priced from your prices, else from the catalogue; a change re-prices the events it applies to." }
        (unit_note(context))
        (notices(context.flash.as_deref(), error))
        section.card aria-labelledby="set-price" {
            h2 #set-price { "Add or change a price" }
            form.price-form method="post" action="/admin/prices" {
                (layout::csrf_field(csrf))
                div { label for="p-model" { "Model" } input #p-model type="text" name="model" required placeholder="claude-sonnet-4-5"; }
                div { label for="p-provider" { "Provider (empty: any)" } input #p-provider type="text" name="provider"; }
                div { label for="p-from" { "In force from (UTC date; empty: always)" } input #p-from type="date" name="from"; }
                div { label for="p-input" { "Input" } input #p-input type="text" inputmode="decimal" name="input" required; }
                div { label for="p-output" { "Output" } input #p-output type="text" inputmode="decimal" name="output" required; }
                div { label for="p-cache-read" { "Cache read" } input #p-cache-read type="text" inputmode="decimal" name="cache_read" value="0"; }
                div { label for="p-cache-write" { "Cache write" } input #p-cache-write type="text" inputmode="decimal" name="cache_write" value="0"; }
                div { button type="submit" { "Save price" } }
            }
        }
        section.card aria-labelledby="price-list" {
            h2 #price-list { "Your prices" }
            div.table-scroll {
                table {
                    thead { tr {
                        th scope="col" { "Model" }
                        th scope="col" { "Provider" }
                        th scope="col" { "From" }
                        th.num scope="col" { "Input" }
                        th.num scope="col" { "Output" }
                        th.num scope="col" { "Cache read" }
                        th.num scope="col" { "Cache write" }
                        th scope="col" { "Origin" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for price in prices {
                            tr {
                                th scope="row" { (price.model) }
                                td { @if price.provider.is_empty() { "any" } @else { (price.provider) } }
                                td { @if price.effective_from_ms == 0 { "always" } @else { (format::date(price.effective_from_ms, &jiff::tz::TimeZone::UTC)) } }
                                @for amount in price.per_mtok { td.num { (decimal(amount)) } }
                                td { "admin" }
                                td {
                                    form method="post" action="/admin/prices/remove" {
                                        (layout::csrf_field(csrf))
                                        input type="hidden" name="model" value=(price.model);
                                        input type="hidden" name="provider" value=(price.provider);
                                        input type="hidden" name="from_ms" value=(price.effective_from_ms);
                                        button.link type="submit" aria-label={ "Remove the price of " (price.model) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (prices_catalogue::render(&data.list, &data.search))
    };
    layout::page(context, "Prices", body)
}

/// Prices are entered and kept in US dollars, as providers publish them
/// and as every amount is stored: a price converted back from another
/// unit would not be exact (1 / 0.92 has no end). Where the instance
/// shows another unit, the page says so, with what a dollar becomes.
fn unit_note(context: &PageContext) -> Markup {
    let unit = &context.unit;
    html! {
        @if !unit.is_usd() {
            p.notice role="note" {
                "Enter prices in US dollars. Costs are shown in " (unit.describe())
                ": a price of 1.00 here is " (unit.money(1_000_000)) " per million tokens on the other pages."
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PriceForm {
    model: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    from: String,
    input: String,
    output: String,
    #[serde(default)]
    cache_read: String,
    #[serde(default)]
    cache_write: String,
}

fn parse_form(form: &PriceForm) -> Result<Price, String> {
    let model = form.model.trim();
    if model.is_empty() {
        return Err("model: must not be empty".into());
    }
    let amount = |field: &str, text: &str| {
        let text = if text.trim().is_empty() {
            "0"
        } else {
            text.trim()
        };
        parse_micros(text).map_err(|reason| format!("{field}: {reason}"))
    };
    let effective_from_ms = match form.from.trim() {
        "" => 0,
        date => date
            .parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp().as_millisecond())
            .ok_or_else(|| format!("from: {date:?} is not a date (YYYY-MM-DD)"))?,
    };
    Ok(Price {
        model: model.to_owned(),
        provider: form.provider.trim().to_owned(),
        effective_from_ms,
        per_mtok: [
            amount("input", &form.input)?,
            amount("output", &form.output)?,
            amount("cache read", &form.cache_read)?,
            amount("cache write", &form.cache_write)?,
        ],
    })
}

fn repriced_message(repriced: usize, examined: usize) -> String {
    format!(
        "{} of {} events of this model were re-priced.",
        format::integer(repriced as i64),
        format::integer(examined as i64)
    )
}

pub async fn set(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<PriceForm>,
) -> Result<Response, AppError> {
    let note = Note::new(Action::PriceSet).target(format!("model:{}", form.model.trim()));
    let price = match parse_form(&form) {
        Ok(price) => price,
        Err(message) => {
            let data = read(&state, String::new()).await?;
            let page = render(&context, &data, Some(&message));
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response());
        }
    };
    let now = state.now_unix();
    let stored = price.clone();
    let outcome = state
        .db
        .write(move |conn| reprice::set(conn, &stored, now))
        .await?;
    let note = note.details(json!({
        "provider": price.provider,
        "effective_from_ms": price.effective_from_ms,
        "per_mtok_micros": price.per_mtok,
        "repriced": outcome.repriced,
    }));
    let message = format!(
        "Price of {} saved. {}",
        price.model,
        repriced_message(outcome.repriced, outcome.examined)
    );
    flash(&session, message).await?;
    Ok((note, Redirect::to("/admin/prices")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    model: String,
    #[serde(default)]
    provider: String,
    from_ms: i64,
}

pub async fn remove(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    session: Session,
    Form(form): Form<RemoveForm>,
) -> Result<Response, AppError> {
    let note = Note::new(Action::PriceRemove).target(format!("model:{}", form.model));
    let (model, provider, from_ms) = (form.model.clone(), form.provider.clone(), form.from_ms);
    let outcome = state
        .db
        .write(move |conn| reprice::remove(conn, &model, &provider, from_ms))
        .await?;
    let Some(outcome) = outcome else {
        return Ok((note, AppError::NotFound).into_response());
    };
    let note = note.details(json!({
        "provider": form.provider,
        "effective_from_ms": form.from_ms,
        "repriced": outcome.repriced,
    }));
    let message = format!(
        "Price of {} removed. {}",
        form.model,
        repriced_message(outcome.repriced, outcome.examined)
    );
    flash(&session, message).await?;
    Ok((note, Redirect::to("/admin/prices")).into_response())
}
