//! The resolution rules on real model ids, against the embedded catalogue.

use super::resolve::{Rule, resolve};
use super::{Catalogue, Lookup};

fn catalogue() -> Catalogue {
    Catalogue::embedded().expect("the embedded catalogue parses")
}

fn resolved(catalogue: &Catalogue, model: &str) -> Option<(String, Rule)> {
    resolve(catalogue as &dyn Lookup, model)
        .expect("in memory")
        .map(|r| (r.entry.name, r.rule))
}

#[test]
fn real_ids_resolve_to_the_right_entry_by_the_right_rule() {
    use Rule::{Canonical, Exact, Prefix, Vertex};
    let catalogue = catalogue();
    let table: &[(&str, &str, Rule)] = &[
        // Anthropic's API: aliases and dated ids.
        ("claude-sonnet-4-5", "claude-sonnet-4-5", Exact),
        (
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5-20250929",
            Exact,
        ),
        (
            "claude-haiku-4-5-20251001",
            "claude-haiku-4-5-20251001",
            Exact,
        ),
        (
            "claude-opus-4-5-20251101",
            "claude-opus-4-5-20251101",
            Exact,
        ),
        (
            "claude-opus-4-6-20260205",
            "claude-opus-4-6-20260205",
            Exact,
        ),
        (
            "claude-opus-4-7-20260416",
            "claude-opus-4-7-20260416",
            Exact,
        ),
        ("Claude-Sonnet-4-5", "claude-sonnet-4-5", Canonical),
        // Older releases Anthropic's list no longer has: the release's
        // Bedrock entry (same list price), found by its date.
        (
            "claude-opus-4-1-20250805",
            "anthropic.claude-opus-4-1-20250805-v1:0",
            Canonical,
        ),
        (
            "claude-opus-4-1",
            "anthropic.claude-opus-4-1-20250805-v1:0",
            Canonical,
        ),
        (
            "claude-sonnet-4-20250514",
            "anthropic.claude-sonnet-4-20250514-v1:0",
            Canonical,
        ),
        (
            "claude-3-7-sonnet-20250219",
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            Canonical,
        ),
        // LiteLLM and OpenRouter names.
        ("anthropic/claude-opus-4-6", "claude-opus-4-6", Prefix),
        (
            "openrouter/anthropic/claude-sonnet-4.5",
            "claude-sonnet-4-5",
            Canonical,
        ),
        (
            "openrouter/anthropic/claude-opus-4.6",
            "claude-opus-4-6",
            Canonical,
        ),
        (
            "openrouter/anthropic/claude-haiku-4.5",
            "claude-haiku-4-5",
            Canonical,
        ),
        (
            "anthropic/claude-sonnet-4.5",
            "claude-sonnet-4-5",
            Canonical,
        ),
        // Bedrock: its own ids, with their regional prices.
        (
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            Exact,
        ),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            Exact,
        ),
        (
            "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
            "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
            Exact,
        ),
        (
            "apac.anthropic.claude-sonnet-4-6",
            "apac.anthropic.claude-sonnet-4-6",
            Exact,
        ),
        (
            "global.anthropic.claude-opus-4-6-v1",
            "global.anthropic.claude-opus-4-6-v1",
            Exact,
        ),
        (
            "jp.anthropic.claude-opus-4-7",
            "jp.anthropic.claude-opus-4-7",
            Exact,
        ),
        (
            "bedrock/us.anthropic.claude-sonnet-4-6",
            "us.anthropic.claude-sonnet-4-6",
            Prefix,
        ),
        (
            "bedrock/converse/us.anthropic.claude-sonnet-4-6",
            "us.anthropic.claude-sonnet-4-6",
            Prefix,
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6",
            "us.anthropic.claude-sonnet-4-6",
            Prefix,
        ),
        // A region the catalogue has no entry for: the release's entry.
        (
            "apac.anthropic.claude-opus-4-5-20251101-v1:0",
            "claude-opus-4-5-20251101",
            Canonical,
        ),
        // Vertex.
        (
            "claude-sonnet-4-5@20250929",
            "vertex_ai/claude-sonnet-4-5@20250929",
            Vertex,
        ),
        (
            "claude-haiku-4-5@20251001",
            "vertex_ai/claude-haiku-4-5@20251001",
            Vertex,
        ),
        (
            "claude-opus-4-6@default",
            "vertex_ai/claude-opus-4-6@default",
            Vertex,
        ),
        (
            "claude-opus-4-7@20260416",
            "vertex_ai/claude-opus-4-7",
            Vertex,
        ),
        (
            "vertex_ai/claude-opus-4-5@20251101",
            "vertex_ai/claude-opus-4-5@20251101",
            Exact,
        ),
        // OpenAI: GPT-4.1, 4o (whose dated releases have prices of their
        // own), 5.
        ("gpt-4.1", "gpt-4.1", Exact),
        ("gpt-4.1-2025-04-14", "gpt-4.1-2025-04-14", Exact),
        ("gpt-4.1-mini", "gpt-4.1-mini", Exact),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano-2025-04-14", Exact),
        ("openai/gpt-4.1", "gpt-4.1", Prefix),
        ("gpt-4o", "gpt-4o", Exact),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13", Exact),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06", Exact),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18", Exact),
        ("openrouter/openai/gpt-4o", "gpt-4o", Prefix),
        ("azure/gpt-4o", "azure/gpt-4o", Exact),
        ("gpt-5", "gpt-5", Exact),
        ("gpt-5-2025-08-07", "gpt-5-2025-08-07", Exact),
        ("gpt-5-mini", "gpt-5-mini", Exact),
        ("gpt-5-nano", "gpt-5-nano", Exact),
        ("gpt-5.1", "gpt-5.1", Exact),
        ("openai/gpt-5-mini", "gpt-5-mini", Prefix),
        ("GPT-5", "gpt-5", Canonical),
        ("o3", "o3", Exact),
        ("o4-mini", "o4-mini", Exact),
        // Gemini 2.5: Gemini CLI's names, the Gemini API's, Vertex's.
        ("gemini-2.5-pro", "gemini-2.5-pro", Exact),
        ("gemini-2.5-flash", "gemini-2.5-flash", Exact),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite", Exact),
        ("gemini/gemini-2.5-pro", "gemini/gemini-2.5-pro", Exact),
        ("models/gemini-2.5-flash", "gemini-2.5-flash", Prefix),
        ("google/gemini-2.5-pro", "gemini-2.5-pro", Prefix),
        ("openrouter/google/gemini-2.5-pro", "gemini-2.5-pro", Prefix),
        ("vertex_ai/gemini-2.5-pro", "gemini-2.5-pro", Prefix),
    ];
    let mut wrong = Vec::new();
    for (model, entry, rule) in table {
        let got = resolved(&catalogue, model);
        if got.as_ref() != Some(&((*entry).to_owned(), *rule)) {
            wrong.push(format!("{model}: expected {entry} ({rule:?}), got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn names_no_rule_maps_stay_unpriced() {
    let catalogue = catalogue();
    for model in [
        "llama-local",
        "my-own-model",
        "",
        // OpenRouter's free variant must not be priced as the paid one.
        "openrouter/anthropic/claude-sonnet-4.5:free",
        "claude",
    ] {
        assert_eq!(resolved(&catalogue, model), None, "{model}");
    }
}

/// Every model of Anthropic's own list is found as itself from the names
/// producers send for it: bare, behind LiteLLM's and OpenRouter's
/// prefixes, and with OpenRouter's dotted version.
#[test]
fn every_current_claude_model_resolves_to_itself_from_every_prefix() {
    let catalogue = catalogue();
    let claude: Vec<&str> = catalogue
        .entries()
        .iter()
        .filter(|e| e.provider == "anthropic")
        .map(|e| e.name.as_str())
        .collect();
    assert!(claude.len() >= 20, "{claude:?}");
    for name in claude {
        let dotted = dotted_version(name);
        for form in [
            name.to_owned(),
            format!("anthropic/{name}"),
            format!("openrouter/anthropic/{dotted}"),
        ] {
            let got = resolved(&catalogue, &form).map(|(entry, _)| entry);
            assert_eq!(got.as_deref(), Some(name), "{form}");
        }
    }
}

/// OpenRouter's spelling: `claude-sonnet-4-5` → `claude-sonnet-4.5`.
fn dotted_version(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            let joins_version = part.len() == 1
                && part.bytes().all(|b| b.is_ascii_digit())
                && parts[i - 1].len() == 1
                && parts[i - 1].bytes().all(|b| b.is_ascii_digit());
            out.push(if joins_version { '.' } else { '-' });
        }
        out.push_str(part);
    }
    out
}

/// The figure for the closing note: of LiteLLM's chat models (the whole
/// upstream file, `LITELLM_SNAPSHOT=path`), how many resolve to a priced
/// entry of the bundled catalogue. `cargo test --lib coverage -- --ignored
/// --nocapture`.
#[test]
#[ignore = "needs LiteLLM's full file in LITELLM_SNAPSHOT"]
fn coverage_of_litellm_chat_models() {
    let Ok(path) = std::env::var("LITELLM_SNAPSHOT") else {
        return;
    };
    let bytes = std::fs::read(path).expect("the snapshot");
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).expect("JSON");
    let catalogue = catalogue();
    let (mut chat, mut priced_upstream, mut resolved_chat, mut resolved_priced) = (0, 0, 0, 0);
    let mut in_filter = (0, 0);
    for (name, entry) in &all {
        if entry["mode"] != "chat" {
            continue;
        }
        chat += 1;
        let has_price =
            entry["input_cost_per_token"].is_number() && entry["output_cost_per_token"].is_number();
        let kept_provider = entry["litellm_provider"]
            .as_str()
            .is_some_and(|p| super::parse::PROVIDERS.contains(&p));
        let found = resolved(&catalogue, name).is_some();
        priced_upstream += usize::from(has_price);
        resolved_chat += usize::from(found);
        resolved_priced += usize::from(found && has_price);
        if kept_provider && has_price {
            in_filter.0 += 1;
            in_filter.1 += usize::from(found);
        }
    }
    println!(
        "LiteLLM chat models: {chat}; with an input and output price: {priced_upstream}; \
         resolve to a priced entry: {resolved_chat} ({:.1} % of all chat models, {:.1} % of those \
         with a price: {resolved_priced}); of the kept providers' priced models: {} of {}",
        100.0 * resolved_chat as f64 / chat as f64,
        100.0 * resolved_priced as f64 / priced_upstream as f64,
        in_filter.1,
        in_filter.0
    );
}
