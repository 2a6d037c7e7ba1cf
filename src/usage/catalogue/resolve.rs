//! Which catalogue entry prices a model name, as producers send it.
//!
//! Producers name one model many ways: `claude-sonnet-4-5`, its dated id
//! `claude-sonnet-4-5-20250929`, `anthropic/claude-sonnet-4-5` (LiteLLM),
//! `openrouter/anthropic/claude-sonnet-4.5`, Bedrock's
//! `us.anthropic.claude-sonnet-4-5-20250929-v1:0`, Vertex's
//! `claude-sonnet-4-5@20250929`. The rules below map each to one entry,
//! deterministically; the first rule that finds an entry wins:
//!
//! 1. **Exact**: the name is an entry (`gpt-4o-2024-05-13`, which has its
//!    own price, and `us.anthropic.…-v1:0`, which has Bedrock's regional
//!    one).
//! 2. **Routing prefixes**: the name without its leading `provider/`
//!    parts, dropped one at a time, is an entry
//!    (`openai/gpt-4.1` → `gpt-4.1`; `bedrock/us.anthropic.…` → `us.anthropic.…`;
//!    an inference profile ARN `arn:…/us.anthropic.…` → `us.anthropic.…`).
//! 3. **Vertex ids**: `NAME@VERSION` is looked up as Vertex's entry
//!    `vertex_ai/NAME@VERSION`, then `vertex_ai/NAME`.
//! 4. **Canonical key**: the name and every entry are reduced to a key —
//!    lower case; routing prefixes, a Bedrock region (`us.`, `eu.`,
//!    `apac.`, `global.`, …) and vendor (`anthropic.`, `amazon.`, `meta.`,
//!    …) prefix, a Vertex `@VERSION`, a Bedrock `-vN[:M]` suffix after a
//!    number and a release date (`-20250929`, `-2025-04-14`, Vertex's
//!    `@20250929`) dropped; dots between digits made dashes (`4.5` →
//!    `4-5`). A name with a release date is first looked up by its key
//!    *with* the date (`claude-3-7-sonnet-20250219` finds the entry of
//!    that release, not another release's), then without. Of the entries
//!    of one key the best wins: the model's first-party provider's
//!    (Anthropic's for `claude…`, OpenAI's for `gpt…`/`o3…`, Google's for
//!    `gemini…`, xAI's, Mistral's, DeepSeek's…), then the entry with the
//!    fewest parts dropped (the undated alias before a dated id, the plain
//!    Bedrock id before a regional one or a route through one region),
//!    then by provider in the order of
//!    [`PROVIDERS`](super::parse::PROVIDERS), then by name.
//!
//! Why the first party: a bare model name (what Claude Code, Codex and
//! Gemini CLI send) is a call to the vendor's own API in the common case,
//! billed at its list price. Clouds and resellers add their own uplifts
//! (Bedrock's regional endpoints +10 %, some hosts more) and have ids of
//! their own, which producers calling them send and rules 1–3 find first.
//!
//! A name no rule maps stays unpriced (an admin's price can cover it).
//! OpenRouter's variants (`…:free`, `…:thinking`) are not reduced: a free
//! variant must not be priced as the paid one.

use super::Entry;
use crate::db::DbError;

/// The version of these rules. The catalogue table stores what they
/// derive (each entry's key and rank); a binary with other rules
/// re-derives them and re-prices what that changes (`usage::price_sync`).
pub const RULES_VERSION: i64 = 1;

/// Finds entries: the catalogue in memory, or its table.
pub trait Lookup {
    /// The entry of exactly this name.
    fn exact(&self, name: &str) -> Result<Option<Entry>, DbError>;
    /// The best entry (lowest [`preference`], then name) of this
    /// canonical key, or with `dated` of this key with its date kept.
    fn by_key(&self, key: &str, dated: bool) -> Result<Option<Entry>, DbError>;
}

/// The rule that found an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Exact,
    Prefix,
    Vertex,
    Canonical,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::Exact => "exact",
            Rule::Prefix => "prefix",
            Rule::Vertex => "vertex",
            Rule::Canonical => "canonical",
        }
    }
}

/// The entry a name resolves to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub entry: Entry,
    pub rule: Rule,
}

/// The entry that prices `model`, by the rules of the module docs.
pub fn resolve(lookup: &dyn Lookup, model: &str) -> Result<Option<Resolution>, DbError> {
    let found = |entry: Option<Entry>, rule| entry.map(|entry| Resolution { entry, rule });
    let model = model.trim();
    if model.is_empty() {
        return Ok(None);
    }
    if let Some(hit) = found(lookup.exact(model)?, Rule::Exact) {
        return Ok(Some(hit));
    }
    let mut rest = model;
    while let Some((_, tail)) = rest.split_once('/') {
        rest = tail;
        if let Some(hit) = found(lookup.exact(rest)?, Rule::Prefix) {
            return Ok(Some(hit));
        }
    }
    if let Some((base, _)) = rest.split_once('@') {
        for name in [format!("vertex_ai/{rest}"), format!("vertex_ai/{base}")] {
            if let Some(hit) = found(lookup.exact(&name)?, Rule::Vertex) {
                return Ok(Some(hit));
            }
        }
    }
    let keys = canonical(model);
    if keys.dated != keys.key
        && let Some(hit) = found(lookup.by_key(&keys.dated, true)?, Rule::Canonical)
    {
        return Ok(Some(hit));
    }
    Ok(found(lookup.by_key(&keys.key, false)?, Rule::Canonical))
}

/// A name reduced by rule 4, and how many parts were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    pub key: String,
    /// The key with the release date kept (as `-YYYYMMDD`); the key
    /// itself when the name has none.
    pub dated: String,
    pub dropped: i64,
}

/// Bedrock's cross-region inference prefixes.
const REGIONS: [&str; 9] = [
    "us.", "eu.", "apac.", "global.", "au.", "jp.", "us-gov.", "ca.", "uk.",
];

/// Bedrock's model vendors, as its ids start.
const VENDORS: [&str; 17] = [
    "anthropic.",
    "amazon.",
    "meta.",
    "mistral.",
    "cohere.",
    "ai21.",
    "deepseek.",
    "openai.",
    "qwen.",
    "writer.",
    "google.",
    "nvidia.",
    "minimax.",
    "moonshot.",
    "moonshotai.",
    "zai.",
    "twelvelabs.",
];

/// Rule 4's keys of `name`.
pub fn canonical(name: &str) -> Canonical {
    let mut key = name.trim().to_lowercase();
    let mut dropped = 0;
    if let Some((_, last)) = key.rsplit_once('/') {
        key = last.to_owned();
        dropped += 1;
    }
    if let Some(rest) = REGIONS.iter().find_map(|r| key.strip_prefix(r)) {
        key = rest.to_owned();
        dropped += 1;
    }
    if let Some(rest) = VENDORS.iter().find_map(|v| key.strip_prefix(v)) {
        key = rest.to_owned();
        dropped += 1;
    }
    // Vertex's `@20250929` is a release date; `@default`, `@001` are not.
    let mut vertex_date = None;
    if let Some((base, version)) = key.split_once('@') {
        let is_date = version.len() == 8
            && version.starts_with("20")
            && version.bytes().all(|b| b.is_ascii_digit());
        vertex_date = is_date.then(|| version.to_owned());
        key = base.to_owned();
        dropped += 1;
    }
    if let Some(base) = without_bedrock_version(&key) {
        key = base.to_owned();
        dropped += 1;
    }
    let mut date = vertex_date;
    if let Some((base, found)) = split_date(&key) {
        date = Some(found.replace('-', ""));
        key = base.to_owned();
        dropped += 1;
    }
    let key = dashed_versions(&key);
    let dated = match date {
        Some(date) => format!("{key}-{date}"),
        None => key.clone(),
    };
    Canonical {
        key,
        dated,
        dropped,
    }
}

/// `claude-sonnet-4-5-20250929-v1:0` → `claude-sonnet-4-5-20250929`;
/// only after a number, so `claude-v2:1` and `nova-pro-v1:0` (whose `v`
/// is the model's version) stay whole.
fn without_bedrock_version(name: &str) -> Option<&str> {
    let (base, version) = name.rsplit_once("-v")?;
    let (major, minor) = version.split_once(':').unwrap_or((version, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let after_number = base.bytes().last().is_some_and(|b| b.is_ascii_digit());
    (digits(major) && digits(minor) && after_number).then_some(base)
}

/// A model id without its release date (`-YYYYMMDD` or `-YYYY-MM-DD`),
/// and the date.
fn split_date(name: &str) -> Option<(&str, &str)> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, date)) = name.rsplit_once('-')
        && date.len() == 8
        && digits(date)
        && date.starts_with("20")
    {
        return Some((base, date));
    }
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    if let [day, month, year, base] = parts.as_slice()
        && year.len() == 4
        && year.starts_with("20")
        && month.len() == 2
        && day.len() == 2
        && digits(year)
        && digits(month)
        && digits(day)
    {
        return Some((base, &name[base.len() + 1..]));
    }
    None
}

/// `claude-sonnet-4.5` → `claude-sonnet-4-5`; `gpt-4.1` → `gpt-4-1`.
fn dashed_versions(name: &str) -> String {
    let bytes = name.as_bytes();
    name.char_indices()
        .map(|(i, c)| {
            let between_digits = c == '.'
                && i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if between_digits { '-' } else { c }
        })
        .collect()
}

/// The first-party providers of a model family, by its key's start.
const FAMILIES: [(&str, &[&str]); 24] = [
    ("claude", &["anthropic"]),
    ("gpt-", &["openai"]),
    ("chatgpt", &["openai"]),
    ("o1", &["openai"]),
    ("o3", &["openai"]),
    ("o4", &["openai"]),
    ("codex", &["openai"]),
    ("computer-use", &["openai"]),
    (
        "gemini",
        &["gemini", "vertex_ai-language-models", "vertex_ai"],
    ),
    (
        "gemma",
        &["gemini", "vertex_ai-language-models", "vertex_ai"],
    ),
    ("grok", &["xai"]),
    ("deepseek", &["deepseek"]),
    ("mistral", &["mistral"]),
    ("codestral", &["mistral", "codestral"]),
    ("devstral", &["mistral"]),
    ("magistral", &["mistral"]),
    ("ministral", &["mistral"]),
    ("pixtral", &["mistral"]),
    ("open-mi", &["mistral"]),
    ("command", &["cohere_chat"]),
    ("sonar", &["perplexity"]),
    ("kimi", &["moonshot"]),
    ("glm", &["zai"]),
    ("nova", &["amazon_nova"]),
];

/// An entry's rank among the entries of its key: lower wins (see the
/// module docs). Derived from the name and provider only.
pub fn preference(name: &str, provider: &str) -> i64 {
    let Canonical { key, dropped, .. } = canonical(name);
    let first_party = FAMILIES
        .iter()
        .find(|(family, _)| key.starts_with(family))
        .is_some_and(|(_, providers)| providers.contains(&provider));
    let rank = super::parse::PROVIDERS
        .iter()
        .position(|p| *p == provider)
        .unwrap_or(999) as i64;
    i64::from(!first_party) * 1_000_000 + dropped.min(999) * 1_000 + rank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_drop_prefixes_dates_and_versions() {
        for (name, key) in [
            ("claude-sonnet-4-5", "claude-sonnet-4-5"),
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
            (
                "openrouter/anthropic/claude-sonnet-4.5",
                "claude-sonnet-4-5",
            ),
            (
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-sonnet-4-5",
            ),
            (
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-sonnet-4-5",
            ),
            ("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
            ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
            ("vertex_ai/claude-opus-4-6@default", "claude-opus-4-6"),
            ("gpt-4.1-2025-04-14", "gpt-4-1"),
            ("Claude-Sonnet-4-5", "claude-sonnet-4-5"),
            ("anthropic.claude-v2:1", "claude-v2:1"),
            ("amazon.nova-pro-v1:0", "nova-pro-v1:0"),
            (
                "gemini-2.5-flash-preview-09-2025",
                "gemini-2-5-flash-preview-09-2025",
            ),
        ] {
            assert_eq!(canonical(name).key, key, "{name}");
        }
        for (name, dated) in [
            ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet-20250219"),
            (
                "anthropic.claude-3-7-sonnet-20250219-v1:0",
                "claude-3-7-sonnet-20250219",
            ),
            ("claude-3-5-haiku@20241022", "claude-3-5-haiku-20241022"),
            ("gpt-4.1-2025-04-14", "gpt-4-1-20250414"),
            ("claude-opus-4-6@default", "claude-opus-4-6"),
        ] {
            assert_eq!(canonical(name).dated, dated, "{name}");
        }
    }

    #[test]
    fn the_first_party_entry_ranks_before_clouds_and_hosts() {
        let first = preference("claude-sonnet-4-5", "anthropic");
        let dated = preference("claude-sonnet-4-5-20250929", "anthropic");
        let bedrock = preference(
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "bedrock_converse",
        );
        let regional = preference(
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "bedrock_converse",
        );
        let host = preference("fireworks_ai/claude-sonnet-4-5", "fireworks_ai");
        assert!(
            first < dated && dated < bedrock && bedrock < regional,
            "{first} {dated} {bedrock} {regional}"
        );
        assert!(first < host);
    }
}
