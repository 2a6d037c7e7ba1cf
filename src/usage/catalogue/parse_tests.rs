//! Reading LiteLLM's format: exact numbers, LiteLLM's defaults, the
//! filter, and the refusals.

use super::Entry;
use super::parse::{Refusal, parse, scaled};

#[test]
fn prices_per_token_become_micro_units_per_million_tokens_exactly() {
    for (text, micros) in [
        ("3e-06", 3_000_000),
        ("1.5e-05", 15_000_000),
        ("3.75e-06", 3_750_000),
        ("4.125e-06", 4_125_000),
        ("0.000003", 3_000_000),
        ("6.25e-08", 62_500),
        ("1.0000000000000001e-07", 100_000),
        ("2.9999900000000002e-06", 2_999_990),
        ("1.00002e-06", 1_000_020),
        ("0", 0),
        ("0.0", 0),
        ("1e-30", 0),
        ("5e-13", 1),
        ("4.9e-13", 0),
        ("1E-6", 1_000_000),
        ("2e+0", 2_000_000_000_000),
    ] {
        assert_eq!(scaled(text, 12), Ok(micros), "{text}");
    }
    assert_eq!(scaled("0.01", 6), Ok(10_000));
    for bad in [
        "-3e-06",
        "\"3e-06\"",
        "true",
        "{}",
        "3e",
        "e5",
        ".5",
        "1.",
        "1e9999999",
    ] {
        assert!(scaled(bad, 12).is_err(), "{bad} was accepted");
    }
    assert!(scaled("1e300", 12).unwrap_err().contains("too large"));
}

fn one(fields: &str) -> Result<Vec<Entry>, Refusal> {
    parse(
        format!(r#"{{"m": {{"litellm_provider": "anthropic", "mode": "chat", {fields}}}}}"#)
            .as_bytes(),
    )
}

#[test]
fn missing_cache_prices_resolve_the_way_litellm_resolves_them() {
    let entries =
        one(r#""input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06"#).expect("parses");
    let base = entries[0].rates.base;
    assert_eq!(
        base.all(),
        [2_000_000, 8_000_000, 2_000_000, 2_000_000, 2_000_000]
    );
    let entries = one(
        r#""input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
           "cache_creation_input_token_cost": 3.75e-06,
           "input_cost_per_token_above_200k_tokens": 6e-06,
           "input_cost_per_token_above_200k_tokens_priority": 9e-06,
           "search_context_cost_per_query": {"search_context_size_low": 0.005, "search_context_size_medium": 0.01}"#,
    )
    .expect("parses");
    let rates = entries[0].rates;
    assert_eq!(rates.base.cache_write_1h, 3_750_000);
    let tier = rates.tier.expect("a tier");
    assert_eq!(tier.above_tokens, 200_000);
    assert_eq!(
        tier.rates.all(),
        [6_000_000, 15_000_000, 3_000_000, 3_750_000, 3_750_000]
    );
    assert_eq!(rates.web_search_per_request, Some(10_000));
}

#[test]
fn entries_outside_the_filter_are_skipped_unread() {
    let file = br#"{
        "sample_spec": {"mode": "one of: chat, embedding", "input_cost_per_token": 0.0},
        "embed": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": "x"},
        "elsewhere": {"litellm_provider": "someone", "mode": "chat", "input_cost_per_token": -1},
        "no-output": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06},
        "kept": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
    }"#;
    let names: Vec<String> = parse(file)
        .expect("parses")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["kept"]);
}

#[test]
fn bad_files_are_refused_naming_the_entry_and_the_reason() {
    let refused = |file: &str| parse(file.as_bytes()).expect_err(file).to_string();
    assert!(refused("[1, 2]").contains("not LiteLLM's format"));
    assert!(refused("{}").contains("no chat model"));
    assert!(refused(r#"{"m": 5}"#).contains(r#"entry "m": is not an object"#));
    let negative = refused(
        r#"{"m": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06}}"#,
    );
    assert!(
        negative.contains(r#"entry "m": input_cost_per_token is negative"#),
        "{negative}"
    );
    let text = refused(
        r#"{"m": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": "2e-06"}}"#,
    );
    assert!(
        text.contains("output_cost_per_token is not a number"),
        "{text}"
    );
    let per_mtok = refused(
        r#"{"m": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 3, "output_cost_per_token": 15}}"#,
    );
    assert!(
        per_mtok.contains("more than $100,000 per million tokens"),
        "{per_mtok}"
    );
    let name = refused(
        "{\"bad\\u202ename\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\", \"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06}}",
    );
    assert!(name.contains("invisible"), "{name}");
    let long = format!(
        r#"{{"{}": {{"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}}}}"#,
        "x".repeat(300)
    );
    assert!(refused(&long).contains("at most 256"));
    let search = refused(
        r#"{"m": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06, "search_context_cost_per_query": 0.01}}"#,
    );
    assert!(
        search.contains("search_context_cost_per_query is not an object"),
        "{search}"
    );
}

#[test]
fn files_beyond_the_bounds_are_refused_before_their_entries_are_read() {
    let entry = r#"{"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}"#;
    let many: Vec<String> = (0..=super::parse::MAX_ENTRIES)
        .map(|i| format!("\"m{i}\": {entry}"))
        .collect();
    let refused = parse(format!("{{{}}}", many.join(",")).as_bytes()).expect_err("too many");
    assert!(
        refused.reason.contains("at most 50000 are read"),
        "{refused}"
    );
    let large = vec![b' '; super::parse::MAX_FILE_BYTES + 1];
    let refused = parse(&large).expect_err("too large");
    assert!(refused.reason.contains("bytes"), "{refused}");
}
