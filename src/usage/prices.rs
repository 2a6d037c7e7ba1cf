//! Prices per model (optionally per provider) with an effective-from
//! instant, and the cost of a call from its token counts.
//!
//! Money is integer micro-units of the instance's currency throughout;
//! prices are micro-units per million tokens, so a cost is an exact integer
//! product, rounded once (half up) to a micro-unit.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::db::DbError;

/// One row of the price table.
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
    let nano: i128 = per_mtok
        .iter()
        .zip(tokens)
        .map(|(price, count)| i128::from(*price) * i128::from(*count))
        .sum();
    // micro-units per million tokens × tokens = 10⁻⁶ micro-units.
    let micros = (nano + 500_000) / 1_000_000;
    i64::try_from(micros).unwrap_or(i64::MAX)
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

/// Every price, indexed for lookups while a batch is priced.
#[derive(Debug, Default, Clone)]
pub struct PriceBook {
    /// model → its prices, newest effective date first.
    by_model: HashMap<String, Vec<Price>>,
}

impl PriceBook {
    pub fn load(conn: &Connection) -> Result<PriceBook, DbError> {
        let mut stmt = conn.prepare_cached(
            "SELECT model, provider, effective_from_ms, input_per_mtok, output_per_mtok,
                    cache_read_per_mtok, cache_write_per_mtok
             FROM prices ORDER BY effective_from_ms DESC",
        )?;
        let mut book = PriceBook::default();
        let rows = stmt.query_map([], |row| {
            Ok(Price {
                model: row.get(0)?,
                provider: row.get(1)?,
                effective_from_ms: row.get(2)?,
                per_mtok: [row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?],
            })
        })?;
        for price in rows {
            let price = price?;
            book.by_model
                .entry(price.model.clone())
                .or_default()
                .push(price);
        }
        Ok(book)
    }

    /// The price in force for `model` from `provider` at `ts_ms`: the
    /// provider's own row if one is in force, else the any-provider row. A
    /// dated model id (`claude-sonnet-4-5-20250929`) without a price of its
    /// own takes its base model's ([`base_model`]).
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

    /// The cost of a call, or `None` when no price is known.
    pub fn cost(
        &self,
        model: &str,
        provider: Option<&str>,
        ts_ms: i64,
        tokens: &[i64; 4],
    ) -> Option<i64> {
        self.price_at(model, provider, ts_ms)
            .map(|price| cost_micros(&price.per_mtok, tokens))
    }
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
