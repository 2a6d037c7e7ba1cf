//! An oracle for catalogue prices, independent of the code under test: it
//! reads the bundled `litellm.json` as JSON text and prices tokens in
//! exact decimal arithmetic (units of 10⁻²⁴ of the currency), rounding
//! once, half up, to a micro-unit. LiteLLM's own defaults apply: a model
//! without a cache price bills cached tokens as input.

use std::collections::HashMap;

use serde_json::value::RawValue;

pub const BUNDLED: &str = include_str!("../../../src/usage/catalogue/litellm.json");

pub struct Oracle {
    entries: HashMap<String, HashMap<String, Box<RawValue>>>,
}

impl Oracle {
    pub fn bundled() -> Oracle {
        Oracle::from_json(BUNDLED)
    }

    pub fn from_json(json: &str) -> Oracle {
        Oracle {
            entries: serde_json::from_str(json).expect("LiteLLM's format"),
        }
    }

    /// A field's number exactly as written, if the entry has it.
    pub fn field(&self, entry: &str, field: &str) -> Option<String> {
        let fields = self
            .entries
            .get(entry)
            .unwrap_or_else(|| panic!("no entry {entry}"));
        fields
            .get(field)
            .map(|raw| raw.get().to_owned())
            .filter(|t| t != "null")
    }

    /// The cost of `tokens` (input, output, cache read, cache write) at
    /// `entry`'s prices.
    pub fn cost(&self, entry: &str, tokens: [i64; 4]) -> i64 {
        let input = self
            .field(entry, "input_cost_per_token")
            .expect("an input price");
        let output = self
            .field(entry, "output_cost_per_token")
            .expect("an output price");
        let read = self
            .field(entry, "cache_read_input_token_cost")
            .unwrap_or_else(|| input.clone());
        let write = self
            .field(entry, "cache_creation_input_token_cost")
            .unwrap_or_else(|| input.clone());
        exact_cost(&[
            (input.as_str(), tokens[0]),
            (output.as_str(), tokens[1]),
            (read.as_str(), tokens[2]),
            (write.as_str(), tokens[3]),
        ])
    }
}

/// One call's counts: input, output, cache read, cache write (of which
/// `one_hour` are 1-hour writes) and web searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tokens: [i64; 4],
    pub one_hour: i64,
    pub searches: i64,
}

/// The per-token fields a long-context tier can restate.
const TOKEN_FIELDS: [&str; 5] = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
];

impl Oracle {
    /// Every entry's name.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.keys().cloned().collect();
        names.sort();
        names
    }

    /// A field's string value (such as `litellm_provider`).
    pub fn text(&self, entry: &str, field: &str) -> Option<String> {
        self.field(entry, field)
            .and_then(|raw| serde_json::from_str::<String>(&raw).ok())
    }

    /// The long-context threshold in tokens: the lowest N of the entry's
    /// `<token field>_above_<N>k_tokens` fields, if it has any.
    pub fn tier_threshold(&self, entry: &str) -> Option<i64> {
        let fields = self
            .entries
            .get(entry)
            .unwrap_or_else(|| panic!("no entry {entry}"));
        fields
            .keys()
            .filter_map(|key| {
                let (base, rest) = key.rsplit_once("_above_")?;
                let thousands = rest.strip_suffix("k_tokens")?;
                (TOKEN_FIELDS.contains(&base) && !thousands.is_empty())
                    .then(|| thousands.parse::<i64>().ok())
                    .flatten()
                    .map(|k| k * 1_000)
            })
            .min()
    }

    /// The cost of one request at `entry`'s prices, from the JSON text
    /// alone, with LiteLLM's fallbacks (a cache price defaults to the input
    /// price, a 1-hour write to the 5-minute one, a tier's rate to the base
    /// rate) except that a Claude model's 1-hour write without a price of
    /// its own costs twice the input price, as Anthropic publishes: a prompt (input + cache read + cache write) above the
    /// entry's threshold is priced wholly at the tier's rates; web searches
    /// at the medium search context price per request.
    pub fn event_cost(&self, entry: &str, counts: Counts) -> i64 {
        let [input, output, read, write] = counts.tokens;
        let prompt = input + read + write;
        let tier = self
            .tier_threshold(entry)
            .filter(|threshold| prompt > *threshold);
        let base = |field: &str| self.field(entry, field);
        let at = |field: &str| match tier {
            Some(threshold) => self
                .field(
                    entry,
                    &format!("{field}_above_{}k_tokens", threshold / 1_000),
                )
                .or_else(|| base(field)),
            None => base(field),
        };
        let input_price = at("input_cost_per_token").expect("input price");
        let output_price = at("output_cost_per_token").expect("output price");
        let read_price = at("cache_read_input_token_cost").unwrap_or_else(|| input_price.clone());
        let write_price =
            at("cache_creation_input_token_cost").unwrap_or_else(|| input_price.clone());
        // (price, tokens at it) of the 1-hour writes.
        let hour = match at("cache_creation_input_token_cost_above_1hr") {
            Some(price) => (price, counts.one_hour),
            None if entry.to_lowercase().contains("claude") => {
                (input_price.clone(), 2 * counts.one_hour)
            }
            None => (write_price.clone(), counts.one_hour),
        };
        let search: Option<serde_json::Value> = base("search_context_cost_per_query")
            .map(|text| serde_json::from_str(&text).expect("an object"));
        let search_price = search
            .as_ref()
            .and_then(|s| s.get("search_context_size_medium"))
            .map(|price| price.to_string())
            .unwrap_or_else(|| "0".into());
        exact_cost(&[
            (input_price.as_str(), input),
            (output_price.as_str(), output),
            (read_price.as_str(), read),
            (write_price.as_str(), write - counts.one_hour),
            (hour.0.as_str(), hour.1),
            (search_price.as_str(), counts.searches),
        ])
    }
}

/// Σ price × tokens, prices per token as decimal text, in micro-units
/// rounded once, half up.
pub fn exact_cost(parts: &[(&str, i64)]) -> i64 {
    let total: i128 = parts
        .iter()
        .map(|(price, tokens)| yocto(price) * i128::from(*tokens))
        .sum();
    // 10⁻²⁴ → 10⁻⁶: divide by 10¹⁸.
    let micro = 1_000_000_000_000_000_000i128;
    i64::try_from((total + micro / 2) / micro).expect("fits")
}

/// A decimal number's text in units of 10⁻²⁴ (exact for every price the
/// catalogue has: none has digits that far down).
fn yocto(text: &str) -> i128 {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().expect("exponent")),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: i128 = format!("{whole}{fraction}").parse().expect("digits");
    let power = exponent - fraction.len() as i32 + 24;
    assert!(power >= 0, "{text} has digits below 10⁻²⁴");
    digits * 10i128.pow(power as u32)
}

#[test]
fn the_oracle_prices_exactly() {
    assert_eq!(yocto("3e-06"), 3_000_000_000_000_000_000);
    assert_eq!(yocto("0.0000033"), 3_300_000_000_000_000_000);
    // 1M tokens at $3/M = $3; 5 tokens at $0.30/M = 1.5 µ$ → 2.
    assert_eq!(exact_cost(&[("3e-06", 1_000_000)]), 3_000_000);
    assert_eq!(exact_cost(&[("3e-07", 5)]), 2);
}
