//! Which price applies to a call, and what the call costs: the one place
//! that decides, for ingest, import and every re-pricing alike.
//!
//! **Who wins**, for an event without a reported cost:
//!
//! 1. an admin's own price (the `prices` table), effective-dated: the row
//!    in force at the event's time for the event's provider, else the one
//!    for any provider; for the exact model name, then for its base model
//!    (`claude-sonnet-4-5-20250929` takes `claude-sonnet-4-5`'s);
//! 2. the catalogue's entry the model name resolves to
//!    ([`super::catalogue::resolve`]);
//! 3. nothing: the event is stored unpriced and priced when a price
//!    appears.
//!
//! A cost the producer reported is kept as reported and never re-priced,
//! except that a reported 0 for a call with tokens counts as not reported
//! ([`reported_cost`]): LiteLLM reports 0 for models it has no price for.
//!
//! Money is integer micro-units of the instance's currency throughout;
//! prices are micro-units per million tokens, so a cost is an exact integer
//! product, rounded once (half up) to a micro-unit ([`super::rates`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;

use super::catalogue::{self, Catalogue, Lookup};
use super::rates::{self, Rates, Usage};
use super::rollup::CostOrigin;
use crate::db::DbError;

/// One row of the price table: an admin's price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub model: String,
    /// `""` applies to every provider of the model.
    pub provider: String,
    pub effective_from_ms: i64,
    /// Input, output, cache read, cache write: micro-units per million tokens.
    pub per_mtok: [i64; 4],
}

/// Cost in micro-units of `tokens` (input, output, cache read, cache
/// write) at `per_mtok`.
pub fn cost_micros(per_mtok: &[i64; 4], tokens: &[i64; 4]) -> i64 {
    rates::cost_micros(&Usage::from_tokens(tokens), &Rates::flat(per_mtok)).unwrap_or(i64::MAX)
}

/// The cost a producer reported, as pricing counts it: a reported 0 for a
/// call with tokens is no report (LiteLLM sends 0 when it has no price).
pub fn reported_cost(reported: Option<i64>, tokens: &[i64; 4]) -> Option<i64> {
    reported.filter(|cost| *cost != 0 || tokens.iter().all(|n| *n == 0))
}

/// Parses a non-negative decimal amount (`"3"`, `"0.30"`, `"12.345678"`)
/// into micro-units, exactly: at most six digits after the point.
pub fn parse_micros(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(format!("{text:?} is not a non-negative decimal number"));
    }
    if fraction.len() > 6 {
        return Err(format!("{text:?} has more than 6 decimal places"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("{text:?} is too large"))?
    };
    let fraction: i64 = format!("{fraction:0<6}")
        .parse()
        .map_err(|_| format!("{text:?} is not a decimal number"))?;
    whole
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(fraction))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A model id without its release-date suffix: producers report
/// `claude-sonnet-4-5-20250929` or `gpt-4.1-2025-04-14` where price lists
/// say `claude-sonnet-4-5` and `gpt-4.1`.
pub fn base_model(model: &str) -> &str {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, date)) = model.rsplit_once('-')
        && date.len() == 8
        && digits(date)
        && date.starts_with("20")
    {
        return base;
    }
    // YYYY-MM-DD as the last three parts.
    let parts: Vec<&str> = model.rsplitn(4, '-').collect();
    if let [day, month, year, base] = parts.as_slice()
        && year.len() == 4
        && year.starts_with("20")
        && month.len() == 2
        && day.len() == 2
        && digits(year)
        && digits(month)
        && digits(day)
    {
        return base;
    }
    model
}

/// Where a price came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricedBy {
    /// An admin's row of the price table.
    Admin(Price),
    /// The catalogue entry of this name.
    Catalogue(String),
}

impl PricedBy {
    /// The `cost_origin` of events it prices.
    pub fn origin(&self) -> CostOrigin {
        match self {
            PricedBy::Admin(_) => CostOrigin::PriceTable,
            PricedBy::Catalogue(_) => CostOrigin::Catalogue,
        }
    }
}

/// The price in force for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub rates: Rates,
    pub by: PricedBy,
}

/// The catalogue a book prices from.
#[derive(Debug, Clone)]
enum Source {
    /// The stored one, looked up through the caller's connection.
    Stored,
    /// One in memory (a file being synced).
    Given(Arc<Catalogue>),
}

/// Every admin price, indexed for lookups while a batch is priced, and the
/// catalogue; remembers what each model name resolved to.
#[derive(Debug, Clone)]
pub struct PriceBook {
    /// model → its prices, newest effective date first.
    by_model: HashMap<String, Vec<Price>>,
    catalogue: Source,
    resolved: RefCell<HashMap<String, Option<catalogue::Entry>>>,
}

impl Default for PriceBook {
    fn default() -> PriceBook {
        PriceBook {
            by_model: HashMap::new(),
            catalogue: Source::Given(Arc::default()),
            resolved: RefCell::default(),
        }
    }
}

impl PriceBook {
    /// The admin prices and the stored catalogue.
    pub fn load(conn: &Connection) -> Result<PriceBook, DbError> {
        let mut book = PriceBook {
            catalogue: Source::Stored,
            ..PriceBook::default()
        };
        for price in admin_prices(conn)? {
            book.by_model
                .entry(price.model.clone())
                .or_default()
                .push(price);
        }
        Ok(book)
    }

    /// The admin prices with `catalogue` in place of the stored one: what
    /// pricing will be once it is stored (`price sync`'s plan).
    pub fn with_catalogue(
        conn: &Connection,
        catalogue: Arc<Catalogue>,
    ) -> Result<PriceBook, DbError> {
        Ok(PriceBook {
            catalogue: Source::Given(catalogue),
            resolved: RefCell::default(),
            ..PriceBook::load(conn)?
        })
    }

    /// The admin price in force for `model` from `provider` at `ts_ms`:
    /// the provider's own row if one is in force, else the any-provider
    /// row. A dated model id (`claude-sonnet-4-5-20250929`) without a
    /// price of its own takes its base model's ([`base_model`]).
    pub fn price_at(&self, model: &str, provider: Option<&str>, ts_ms: i64) -> Option<&Price> {
        self.exact_price_at(model, provider, ts_ms).or_else(|| {
            let base = base_model(model);
            (base != model)
                .then(|| self.exact_price_at(base, provider, ts_ms))
                .flatten()
        })
    }

    fn exact_price_at(&self, model: &str, provider: Option<&str>, ts_ms: i64) -> Option<&Price> {
        let prices = self.by_model.get(model)?;
        let in_force = |wanted: &str| {
            prices
                .iter()
                .find(|p| p.provider == wanted && p.effective_from_ms <= ts_ms)
        };
        provider
            .filter(|p| !p.is_empty())
            .and_then(in_force)
            .or_else(|| in_force(""))
    }

    /// The catalogue entry `model` resolves to (remembered per book).
    pub fn catalogue_entry(
        &self,
        conn: &Connection,
        model: &str,
    ) -> Result<Option<catalogue::Entry>, DbError> {
        if let Some(known) = self.resolved.borrow().get(model) {
            return Ok(known.clone());
        }
        let found = match &self.catalogue {
            Source::Stored => catalogue::resolve(&catalogue::store::Stored(conn), model)?,
            Source::Given(given) => catalogue::resolve(given.as_ref() as &dyn Lookup, model)?,
        }
        .map(|r| r.entry);
        self.resolved
            .borrow_mut()
            .insert(model.to_owned(), found.clone());
        Ok(found)
    }

    /// The price for a call: an admin's, else the catalogue's, else none.
    pub fn find(
        &self,
        conn: &Connection,
        model: &str,
        provider: Option<&str>,
        ts_ms: i64,
    ) -> Result<Option<Found>, DbError> {
        if let Some(price) = self.price_at(model, provider, ts_ms) {
            return Ok(Some(Found {
                rates: Rates::flat(&price.per_mtok),
                by: PricedBy::Admin(price.clone()),
            }));
        }
        Ok(self.catalogue_entry(conn, model)?.map(|entry| Found {
            rates: entry.rates,
            by: PricedBy::Catalogue(entry.name),
        }))
    }

    /// The cost of a call and where its price came from; `(0, Unpriced)`
    /// when no price is known. Refused when the price makes the call cost
    /// more than one event may ([`checked_price`]).
    pub fn cost(
        &self,
        conn: &Connection,
        model: &str,
        provider: Option<&str>,
        ts_ms: i64,
        usage: &Usage,
    ) -> Result<(i64, CostOrigin), DbError> {
        let Some(found) = self.find(conn, model, provider, ts_ms)? else {
            return Ok((0, CostOrigin::Unpriced));
        };
        let cost = rates::cost_micros(usage, &found.rates).unwrap_or(i64::MAX);
        Ok((checked_price(model, cost)?, found.by.origin()))
    }
}

/// A computed cost, if one event may cost that much: a price that makes a
/// call cost more than [`crate::model::limits::MAX_COST_MICROS`] is a price or a count
/// entered wrong (prices are per million tokens).
pub(crate) fn checked_price(model: &str, cost_micros: i64) -> Result<i64, DbError> {
    crate::model::limits::check_cost(cost_micros).map_err(|reason| {
        DbError::Refused(format!(
            "at the price for {model:?}, one event would cost {}, and a cost {reason}; \
             check the price (per million tokens) and the event's token counts",
            crate::model::format::decimal(cost_micros)
        ))
    })
}

/// Every row of the price table, newest effective date first.
fn admin_prices(conn: &Connection) -> Result<Vec<Price>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT model, provider, effective_from_ms, input_per_mtok, output_per_mtok,
                cache_read_per_mtok, cache_write_per_mtok
         FROM prices ORDER BY effective_from_ms DESC",
    )?;
    let prices = stmt
        .query_map([], |row| {
            Ok(Price {
                model: row.get(0)?,
                provider: row.get(1)?,
                effective_from_ms: row.get(2)?,
                per_mtok: [row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?],
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(prices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(provider: &str, from: i64, input: i64) -> Price {
        Price {
            model: "m".into(),
            provider: provider.into(),
            effective_from_ms: from,
            per_mtok: [input, 0, 0, 0],
        }
    }

    #[test]
    fn decimal_amounts_parse_exactly_or_say_why_not() {
        for (text, micros) in [
            ("3", 3_000_000),
            ("0.30", 300_000),
            (".5", 500_000),
            ("12.345678", 12_345_678),
            ("0", 0),
        ] {
            assert_eq!(parse_micros(text), Ok(micros), "{text}");
        }
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "1.2345678",
            "abc",
            "1.2.3",
            "99999999999999999",
        ] {
            assert!(parse_micros(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn dated_model_ids_fall_back_to_their_base_model() {
        assert_eq!(
            base_model("claude-sonnet-4-5-20250929"),
            "claude-sonnet-4-5"
        );
        assert_eq!(base_model("gpt-4.1-2025-04-14"), "gpt-4.1");
        assert_eq!(base_model("gpt-5"), "gpt-5");
        assert_eq!(base_model("llama-3.3-70b"), "llama-3.3-70b");
        assert_eq!(base_model("model-12345678"), "model-12345678");
        let mut book = PriceBook::default();
        book.by_model.insert("m".into(), vec![price("", 0, 7)]);
        book.by_model
            .insert("m-20250101".into(), vec![price("", 0, 9)]);
        assert_eq!(
            book.price_at("m-20251231", None, 5).map(|p| p.per_mtok[0]),
            Some(7)
        );
        assert_eq!(
            book.price_at("m-20250101", None, 5).map(|p| p.per_mtok[0]),
            Some(9),
            "its own price wins"
        );
    }

    #[test]
    fn cost_is_exact_and_rounded_once() {
        // 1M input at $3/M and 100k output at $15/M: $4.50.
        assert_eq!(
            cost_micros(&[3_000_000, 15_000_000, 0, 0], &[1_000_000, 100_000, 0, 0]),
            4_500_000
        );
        // 5 tokens at $0.30/M = 1.5 micro-dollars: half up.
        assert_eq!(cost_micros(&[300_000, 0, 0, 0], &[5, 0, 0, 0]), 2);
        assert_eq!(cost_micros(&[300_000, 0, 0, 0], &[1, 0, 0, 0]), 0);
    }

    #[test]
    fn the_newest_price_in_force_wins_and_the_provider_row_beats_the_generic_one() {
        let mut book = PriceBook::default();
        book.by_model.insert(
            "m".into(),
            vec![price("bedrock", 200, 9), price("", 100, 2), price("", 0, 1)],
        );
        let input = |provider, ts| book.price_at("m", provider, ts).map(|p| p.per_mtok[0]);
        assert_eq!(input(None, 50), Some(1));
        assert_eq!(input(None, 100), Some(2));
        assert_eq!(
            input(Some("bedrock"), 150),
            Some(2),
            "bedrock's row is not in force yet"
        );
        assert_eq!(input(Some("bedrock"), 250), Some(9));
        assert_eq!(input(Some("vertex"), 250), Some(2));
        assert_eq!(book.price_at("other", None, 0), None);
    }
}
