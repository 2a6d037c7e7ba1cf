//! A file in LiteLLM's format (`model_prices_and_context_window.json`, or
//! our filtered copy of it) into catalogue entries, or the reason it is
//! refused.
//!
//! The filter is the generator's (`.ci/catalogue.py`): entries with
//! `mode: chat` of the providers in [`PROVIDERS`] that state an input and
//! an output price. Entries outside the filter are skipped unread, so the
//! full upstream file reads like our copy.
//!
//! Numbers are read from their JSON text, never through a float: a price
//! per token (`3e-06`, `1.0000000000000001e-07`) becomes micro-units per
//! million tokens by moving its decimal point twelve places, rounded once
//! (half up) where digits remain (`100000.00000000001` → `100000`).
//!
//! A kept entry whose price is not a number, is negative or is
//! implausibly large, or whose name breaks the rules of names, refuses the
//! whole file: a price list that is wrong in one place may be wrong in
//! others, and a half-applied list is worse than none.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::Entry;
use crate::model::names::check_text;
use crate::usage::rates::{Rates, Tier, TokenRates};

/// LiteLLM's providers (`litellm_provider`) whose chat models are kept:
/// first-party APIs, the clouds that resell them, the big hosts. Keep in
/// step with `.ci/catalogue.py` (a unit test compares them).
pub const PROVIDERS: [&str; 28] = [
    "anthropic",
    "openai",
    "gemini",
    "vertex_ai",
    "vertex_ai-language-models",
    "vertex_ai-anthropic_models",
    "vertex_ai-mistral_models",
    "vertex_ai-llama_models",
    "vertex_ai-deepseek_models",
    "vertex_ai-openai_models",
    "bedrock",
    "bedrock_converse",
    "amazon_nova",
    "mistral",
    "codestral",
    "deepseek",
    "xai",
    "openrouter",
    "groq",
    "azure",
    "azure_ai",
    "together_ai",
    "fireworks_ai",
    "cerebras",
    "perplexity",
    "cohere_chat",
    "moonshot",
    "zai",
];

/// Largest file read: LiteLLM's whole file is about 3.5 MB.
pub const MAX_FILE_BYTES: usize = 32 << 20;
/// Most entries (of any kind) in a file: LiteLLM's has about 4,900.
pub const MAX_ENTRIES: usize = 50_000;
/// Highest price per million tokens accepted: $100,000 (the dearest model
/// today costs $600). A price written per million tokens where LiteLLM
/// writes per token (`3` for `3e-06`) is a million times too high and
/// lands far above it.
pub const MAX_PER_MTOK_MICROS: i64 = 100_000 * 1_000_000;
/// Highest price of one web search request accepted: $100.
pub const MAX_PER_REQUEST_MICROS: i64 = 100 * 1_000_000;

/// The per-token fields, in the order of [`TokenRates::all`].
const TOKEN_FIELDS: [&str; 5] = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
];
const SEARCH: &str = "search_context_cost_per_query";
/// LiteLLM's default search context size, the one price we keep.
const SEARCH_SIZE: &str = "search_context_size_medium";

/// Why a file is refused: the entry (when one is to blame) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub entry: Option<String>,
    pub reason: String,
}

impl Refusal {
    pub fn file(reason: impl Into<String>) -> Refusal {
        Refusal {
            entry: None,
            reason: reason.into(),
        }
    }

    pub fn entry(name: &str, reason: impl Into<String>) -> Refusal {
        Refusal {
            entry: Some(name.to_owned()),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.entry {
            Some(name) => write!(f, "entry {name:?}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for Refusal {}

type Object<'a> = BTreeMap<String, &'a RawValue>;

/// The kept entries of `bytes`, in name order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, Refusal> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Refusal::file(format!(
            "the file has {} bytes; a price file has at most {MAX_FILE_BYTES}",
            bytes.len()
        )));
    }
    let top: Object = serde_json::from_slice(bytes).map_err(|e| {
        Refusal::file(format!(
            "not LiteLLM's format (a JSON object of model entries): {e}"
        ))
    })?;
    if top.len() > MAX_ENTRIES {
        return Err(Refusal::file(format!(
            "the file has {} entries; at most {MAX_ENTRIES} are read",
            top.len()
        )));
    }
    let mut kept = Vec::new();
    for (name, raw) in &top {
        let fields: Object = serde_json::from_str(raw.get()).map_err(|_| {
            Refusal::entry(name, "is not an object (LiteLLM's entries are objects)")
        })?;
        if let Some(entry) = entry(name, &fields)? {
            kept.push(entry);
        }
    }
    if kept.is_empty() {
        return Err(Refusal::file(
            "no chat model with an input and an output price of a known provider: \
             not LiteLLM's model price file?",
        ));
    }
    Ok(kept)
}

/// The entry `name` describes, if the filter keeps it.
fn entry(name: &str, fields: &Object) -> Result<Option<Entry>, Refusal> {
    let text = |key: &str| -> Option<String> {
        fields
            .get(key)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    };
    let provider = match (text("mode"), text("litellm_provider")) {
        (Some(mode), Some(provider))
            if mode == "chat" && PROVIDERS.contains(&provider.as_str()) =>
        {
            provider
        }
        _ => return Ok(None),
    };
    let price = |key: &str| per_mtok(name, key, fields.get(key).copied());
    let (Some(input), Some(output)) = (price(TOKEN_FIELDS[0])?, price(TOKEN_FIELDS[1])?) else {
        return Ok(None);
    };
    match check_text(name) {
        Ok(trimmed) if trimmed == name && !name.is_empty() => {}
        Ok(_) => {
            return Err(Refusal::entry(
                name,
                "the name is empty or has spaces around it",
            ));
        }
        Err(reason) => return Err(Refusal::entry(name, format!("the name {reason}"))),
    }
    // LiteLLM's defaults: a provider that states no cache price bills
    // cached tokens as input; a 1-hour write without its own price costs a
    // 5-minute one — except for Claude, whose 1-hour writes Anthropic
    // publishes at twice the input price for every model and every cloud
    // ([`one_hour_default`]).
    let cache_read = price(TOKEN_FIELDS[2])?.unwrap_or(input);
    let cache_write = price(TOKEN_FIELDS[3])?.unwrap_or(input);
    let cache_write_1h =
        price(TOKEN_FIELDS[4])?.map_or_else(|| one_hour_default(name, input, cache_write), Ok)?;
    let base = TokenRates {
        input,
        output,
        cache_read,
        cache_write,
        cache_write_1h,
    };
    Ok(Some(Entry {
        name: name.to_owned(),
        provider,
        rates: Rates {
            base,
            tier: tier(name, fields, &base)?,
            web_search_per_request: web_search(name, fields.get(SEARCH).copied())?,
        },
    }))
}

/// The long-context tier: fields `<token field>_above_<N>k_tokens`. Where
/// an entry states several thresholds the lowest is kept (the one a
/// request crosses first); a rate the tier does not state is the base
/// rate, and its 1-hour write defaults to its 5-minute one.
fn tier(name: &str, fields: &Object, base: &TokenRates) -> Result<Option<Tier>, Refusal> {
    let mut lowest: Option<i64> = None;
    for key in fields.keys() {
        if let Some((_, threshold)) = tier_field(key) {
            lowest = Some(lowest.map_or(threshold, |t| t.min(threshold)));
        }
    }
    let Some(above_tokens) = lowest else {
        return Ok(None);
    };
    let mut stated: [Option<i64>; 5] = [None; 5];
    for (key, raw) in fields {
        if let Some((index, threshold)) = tier_field(key)
            && threshold == above_tokens
        {
            stated[index] = per_mtok(name, key, Some(*raw))?;
        }
    }
    if stated.iter().all(Option::is_none) {
        return Ok(None);
    }
    let cache_write = stated[3].unwrap_or(base.cache_write);
    Ok(Some(Tier {
        above_tokens,
        rates: TokenRates {
            input: stated[0].unwrap_or(base.input),
            output: stated[1].unwrap_or(base.output),
            cache_read: stated[2].unwrap_or(base.cache_read),
            cache_write,
            cache_write_1h: match stated[4] {
                Some(price) => price,
                None => one_hour_default(name, stated[0].unwrap_or(base.input), cache_write)?,
            },
        },
    }))
}

/// The 1-hour cache write price of an entry that states none: for a
/// Claude model (Anthropic's own, Bedrock's, Vertex's, OpenRouter's),
/// twice the input price, as Anthropic publishes it for every Claude model
/// ("1h cache writes: 2x base input tokens"); LiteLLM leaves it out of
/// some entries (Claude Code's Sonnet 4 and Opus 4.1 ids resolve to such
/// Bedrock entries), where its fallback, the 5-minute price (1.25x),
/// would bill 37.5 % too little. Any other model: the 5-minute price.
fn one_hour_default(name: &str, input: i64, cache_write: i64) -> Result<i64, Refusal> {
    if !name.to_ascii_lowercase().contains("claude") {
        return Ok(cache_write);
    }
    input
        .checked_mul(2)
        .ok_or_else(|| Refusal::entry(name, "the input price is too large"))
}

/// `(index in TOKEN_FIELDS, threshold)` of a tier field such as
/// `input_cost_per_token_above_200k_tokens`. Fields of other service tiers
/// (`…_tokens_priority`, `…_batches`) do not end in `_tokens` and are not
/// tier fields of the standard price.
fn tier_field(key: &str) -> Option<(usize, i64)> {
    // Longest first: the 1-hour write's field starts with the 5-minute one's.
    for index in [4, 0, 1, 2, 3] {
        let rest = key
            .strip_prefix(TOKEN_FIELDS[index])
            .and_then(|rest| rest.strip_prefix("_above_"));
        let Some(rest) = rest else { continue };
        let Some(amount) = rest.strip_suffix("_tokens") else {
            continue;
        };
        let (digits, scale) = match amount.strip_suffix('k') {
            Some(digits) => (digits, 1_000),
            None => (amount, 1),
        };
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let threshold = digits.parse::<i64>().ok()? * scale;
        return (threshold > 0).then_some((index, threshold));
    }
    None
}

/// The web search price per request, from LiteLLM's per-query prices by
/// search context size.
fn web_search(name: &str, raw: Option<&RawValue>) -> Result<Option<i64>, Refusal> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let sizes: Object = serde_json::from_str(raw.get()).map_err(|_| {
        Refusal::entry(
            name,
            format!("{SEARCH} is not an object of prices by search context size"),
        )
    })?;
    let Some(price) = sizes.get(SEARCH_SIZE).filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let field = format!("{SEARCH}.{SEARCH_SIZE}");
    let micros = scaled(price.get(), 6)
        .map_err(|reason| Refusal::entry(name, format!("{field} {reason}")))?;
    if micros > MAX_PER_REQUEST_MICROS {
        return Err(Refusal::entry(
            name,
            format!("{field} is more than $100 a request: not a price per request?"),
        ));
    }
    Ok(Some(micros))
}

/// A per-token price field as micro-units per million tokens; `None` when
/// absent or null.
fn per_mtok(name: &str, key: &str, raw: Option<&RawValue>) -> Result<Option<i64>, Refusal> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    // $ per token × 10⁶ tokens × 10⁶ micro-units per $.
    let micros =
        scaled(raw.get(), 12).map_err(|reason| Refusal::entry(name, format!("{key} {reason}")))?;
    if micros > MAX_PER_MTOK_MICROS {
        return Err(Refusal::entry(
            name,
            format!(
                "{key} is more than $100,000 per million tokens: a price per million tokens \
                 where LiteLLM writes one per token?"
            ),
        ));
    }
    Ok(Some(micros))
}

/// The JSON number `text` times 10^`shift`, rounded once, half up, to an
/// integer; or why it cannot be one.
pub fn scaled(text: &str, shift: i64) -> Result<i64, String> {
    let not_a_number = || format!("is not a number ({})", shorten(text));
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("is negative ({})", shorten(text)));
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, "0"),
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    let (negative_exp, exp_digits) = match exponent.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exponent),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(whole) || !is_digits(fraction) || !is_digits(exp_digits) {
        return Err(not_a_number());
    }
    if exp_digits.len() > 6 {
        return Err(format!("is out of range ({})", shorten(text)));
    }
    let exp: i64 = exp_digits.parse().map_err(|_| not_a_number())?;
    let exp = if negative_exp { -exp } else { exp };
    let digits: String = format!("{whole}{fraction}")
        .trim_start_matches('0')
        .to_owned();
    if digits.is_empty() {
        return Ok(0);
    }
    // value = digits × 10^(exp − fraction digits); we want value × 10^shift.
    let power = exp - fraction.len() as i64 + shift;
    let too_large = || format!("is too large ({})", shorten(text));
    if power >= 0 {
        if digits.len() as i64 + power > 18 {
            return Err(too_large());
        }
        let base: i64 = digits.parse().map_err(|_| too_large())?;
        return 10i64
            .checked_pow(power as u32)
            .and_then(|p| base.checked_mul(p))
            .ok_or_else(too_large);
    }
    // Drop the last −power digits; the first dropped one decides the
    // rounding (half up needs nothing more).
    let keep = digits.len() as i64 + power;
    if keep < 0 {
        return Ok(0);
    }
    let keep = keep as usize;
    let kept = &digits[..keep];
    if kept.len() > 18 {
        return Err(too_large());
    }
    let value: i64 = if kept.is_empty() {
        0
    } else {
        kept.parse().map_err(|_| too_large())?
    };
    let round_up = digits.as_bytes()[keep] >= b'5';
    Ok(value + i64::from(round_up))
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}
