//! `tokentally price sync FILE|URL [--yes]`: a price file in LiteLLM's
//! format in place of the stored catalogue. Without `--yes` it shows what
//! would change (entries added, changed, removed; the models of stored
//! events whose price changes, how many of their events would be
//! re-priced and by how much) and writes nothing; with `--yes` it applies
//! that in one audited transaction (`price.sync`).
//!
//! A URL is fetched only when given, over `https://` only (redirects
//! included), within [`parse::MAX_FILE_BYTES`] and [`FETCH_TIMEOUT`],
//! with the HTTP client `import --server` already uses.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::usage::UsageCommandError;
use crate::audit;
use crate::db::Db;
use crate::model::Action;
use crate::model::format::{decimal, integer};
use crate::usage::catalogue::{Catalogue, Entry, Meta, Origin, parse};
use crate::usage::price_sync::{self, Mode, Plan, SyncError};
use crate::usage::rates::{Rates, TokenRates};

/// The longest a download may take, all of it.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Entries listed per section of the text output (all are in `--json`).
const LISTED: usize = 50;

pub async fn run(
    db: &Db,
    source: String,
    yes: bool,
    as_json: bool,
) -> Result<(), UsageCommandError> {
    let (bytes, shown) = read_source(&source).await?;
    let catalogue = parse::parse(&bytes)
        .map(|entries| Arc::new(Catalogue::new(entries)))
        .map_err(|refusal| {
            UsageCommandError::Invalid(format!("refused, nothing changed: {refusal}"))
        })?;
    let after = Meta {
        origin: Origin::Sync,
        source: shown,
        version: None,
        date: jiff::Timestamp::now().strftime("%Y-%m-%d").to_string(),
        digest: String::new(),
        entries: 0,
        rules: crate::usage::catalogue::resolve::RULES_VERSION,
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let dry = Mode {
        write: false,
        bound_changes: true,
    };
    // Worked out on a read connection first: nothing is written unless
    // asked, and an unchanged file is not "applied".
    let plan = {
        let (catalogue, after) = (catalogue.clone(), after.clone());
        db.read(move |conn| price_sync::run(conn, catalogue, after, dry, now_ms))
            .await
            .map_err(sync_error)?
    };
    let unchanged = plan
        .before
        .as_ref()
        .is_some_and(|m| m.digest == plan.after.digest);
    let plan = if yes && !unchanged {
        db.write(move |conn| {
            let mode = Mode { write: true, ..dry };
            let plan = price_sync::run(conn, catalogue, after, mode, now_ms)?;
            audit::record_cli(conn, Action::PriceSync, "catalogue", plan.audit_details())?;
            Ok::<_, SyncError>(plan)
        })
        .await
        .map_err(sync_error)?
    } else {
        plan
    };
    if as_json {
        println!("{}", plan_json(&plan));
    } else {
        print!("{}", plan_text(&plan, unchanged));
    }
    Ok(())
}

fn sync_error(e: SyncError) -> UsageCommandError {
    match e {
        SyncError::Refused(refusal) => {
            UsageCommandError::Invalid(format!("refused, nothing changed: {refusal}"))
        }
        SyncError::Db(e) => UsageCommandError::Db(e),
    }
}

/// The file's bytes, and how the source is recorded (a URL without its
/// query or fragment, which may hold a secret).
async fn read_source(source: &str) -> Result<(Vec<u8>, String), UsageCommandError> {
    let invalid = |m: String| UsageCommandError::Invalid(m);
    if let Some((scheme, _)) = source.split_once("://") {
        if !scheme.eq_ignore_ascii_case("https") {
            return Err(invalid(format!(
                "{scheme}:// is refused: a price file is fetched over https:// only"
            )));
        }
        let url = source.to_owned();
        let bytes = tokio::task::spawn_blocking(move || fetch(&url))
            .await
            .map_err(|e| invalid(e.to_string()))??;
        let shown = source.split(['?', '#']).next().unwrap_or(source).to_owned();
        return Ok((bytes, shown));
    }
    let limit = parse::MAX_FILE_BYTES as u64;
    let file = std::fs::File::open(source).map_err(|e| invalid(format!("{source}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(format!("{source}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(invalid(format!(
            "refused, nothing changed: {source} is larger than {limit} bytes"
        )));
    }
    Ok((bytes, source.to_owned()))
}

fn fetch(url: &str) -> Result<Vec<u8>, UsageCommandError> {
    let failed = |e: String| UsageCommandError::Invalid(format!("{url}: {e}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .https_only(true)
        .timeout_global(Some(FETCH_TIMEOUT))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    response
        .body_mut()
        .with_config()
        .limit(parse::MAX_FILE_BYTES as u64)
        .read_to_vec()
        .map_err(|e| failed(e.to_string()))
}

fn describe(meta: &Meta) -> String {
    format!(
        "{} ({}, {}, {} models)",
        meta.source,
        meta.date,
        meta.origin.code(),
        integer(meta.entries as i64)
    )
}

fn plan_text(plan: &Plan, unchanged: bool) -> String {
    let mut out = String::new();
    let before = plan
        .before
        .as_ref()
        .map_or_else(|| "none".to_owned(), describe);
    out.push_str(&format!(
        "catalogue: {before}\n       → {} ({} models)\n",
        plan.after.source,
        integer(plan.after.entries as i64)
    ));
    if unchanged {
        out.push_str("nothing changes: the stored catalogue has the same prices\n");
        return out;
    }
    out.push_str(&format!(
        "{} added, {} changed, {} removed, {} unchanged\n",
        plan.added.len(),
        plan.changed.len(),
        plan.removed.len(),
        integer(plan.unchanged as i64)
    ));
    section(&mut out, "added", &plan.added, |e| {
        format!("{} ({}): {}", e.name, e.provider, rates_text(&e.rates))
    });
    section(&mut out, "changed", &plan.changed, |c| {
        format!(
            "{} ({}): {}",
            c.after.name,
            c.after.provider,
            changes_text(&c.before.rates, &c.after.rates)
        )
    });
    section(&mut out, "removed", &plan.removed, |e| {
        format!("{} ({})", e.name, e.provider)
    });
    if !plan.models.is_empty() {
        out.push_str("models of stored events priced differently:\n");
        for change in &plan.models {
            out.push_str(&format!(
                "  {}: {} → {}; {} events, cost {}{}\n",
                change.model,
                change.before.as_deref().unwrap_or("unpriced"),
                change.after.as_deref().unwrap_or("unpriced"),
                integer(change.outcome.repriced as i64),
                if change.outcome.cost_delta_micros >= 0 {
                    "+"
                } else {
                    ""
                },
                decimal(change.outcome.cost_delta_micros)
            ));
        }
    }
    let total = plan.total();
    out.push_str(&format!(
        "in all: {} events {}re-priced, cost {}{}\n",
        integer(total.repriced as i64),
        if plan.applied { "" } else { "would be " },
        if total.cost_delta_micros >= 0 {
            "+"
        } else {
            ""
        },
        decimal(total.cost_delta_micros)
    ));
    if !plan.applied {
        out.push_str("dry run: nothing was written; run again with --yes to apply\n");
    }
    out
}

fn section<T>(out: &mut String, title: &str, items: &[T], line: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("{title}:\n"));
    for item in items.iter().take(LISTED) {
        out.push_str(&format!("  {}\n", line(item)));
    }
    if items.len() > LISTED {
        out.push_str(&format!(
            "  … and {} more (--json lists all)\n",
            items.len() - LISTED
        ));
    }
}

/// The components of a price, named as people say them, as text: amounts
/// per million tokens (web search per request), the tier's threshold in
/// tokens.
fn components(rates: &Rates) -> Vec<(&'static str, Option<String>)> {
    let tier = rates.tier;
    let tier_rate = |pick: fn(&TokenRates) -> i64| tier.map(|t| decimal(pick(&t.rates)));
    vec![
        ("input", Some(decimal(rates.base.input))),
        ("output", Some(decimal(rates.base.output))),
        ("cache read", Some(decimal(rates.base.cache_read))),
        ("cache write", Some(decimal(rates.base.cache_write))),
        (
            "1-hour cache write",
            Some(decimal(rates.base.cache_write_1h)),
        ),
        (
            "long context above tokens",
            tier.map(|t| integer(t.above_tokens)),
        ),
        ("long-context input", tier_rate(|r| r.input)),
        ("long-context output", tier_rate(|r| r.output)),
        ("long-context cache read", tier_rate(|r| r.cache_read)),
        ("long-context cache write", tier_rate(|r| r.cache_write)),
        (
            "long-context 1-hour cache write",
            tier_rate(|r| r.cache_write_1h),
        ),
        (
            "web search per request",
            rates.web_search_per_request.map(decimal),
        ),
    ]
}

fn rates_text(rates: &Rates) -> String {
    components(rates)
        .into_iter()
        .filter_map(|(what, v)| v.map(|v| format!("{what} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn changes_text(before: &Rates, after: &Rates) -> String {
    components(before)
        .into_iter()
        .zip(components(after))
        .filter(|((_, was), (_, will))| was != will)
        .map(|((what, was), (_, will))| {
            format!(
                "{what} {} → {}",
                was.as_deref().unwrap_or("none"),
                will.as_deref().unwrap_or("none")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A price as JSON: decimal strings per million tokens (per request for
/// web search), the tier's threshold in tokens.
pub(super) fn rates_json(rates: &Rates) -> Value {
    let token_rates = |r: &TokenRates| {
        json!({
            "input": decimal(r.input), "output": decimal(r.output),
            "cache_read": decimal(r.cache_read), "cache_write": decimal(r.cache_write),
            "cache_write_1h": decimal(r.cache_write_1h),
        })
    };
    let mut value = token_rates(&rates.base);
    value["long_context"] = rates.tier.map_or(Value::Null, |t| {
        let mut tier = token_rates(&t.rates);
        tier["above_tokens"] = json!(t.above_tokens);
        tier
    });
    value["web_search_per_request"] = rates
        .web_search_per_request
        .map_or(Value::Null, |w| json!(decimal(w)));
    value
}

pub(super) fn entry_json(entry: &Entry) -> Value {
    json!({"name": entry.name, "provider": entry.provider, "price": rates_json(&entry.rates)})
}

pub(super) fn meta_json(meta: &Meta) -> Value {
    json!({
        "origin": meta.origin.code(), "source": meta.source, "version": meta.version,
        "date": meta.date, "digest": meta.digest, "entries": meta.entries,
        "label": meta.label(),
    })
}

fn plan_json(plan: &Plan) -> Value {
    let total = plan.total();
    json!({
        "applied": plan.applied,
        "before": plan.before.as_ref().map(meta_json),
        "after": meta_json(&plan.after),
        "added": plan.added.iter().map(entry_json).collect::<Vec<_>>(),
        "changed": plan.changed.iter().map(|c| json!({
            "name": c.after.name, "provider": c.after.provider,
            "before": rates_json(&c.before.rates), "after": rates_json(&c.after.rates),
        })).collect::<Vec<_>>(),
        "removed": plan.removed.iter().map(entry_json).collect::<Vec<_>>(),
        "unchanged": plan.unchanged,
        "models": plan.models.iter().map(|m| json!({
            "model": m.model, "before": m.before, "after": m.after,
            "events": m.outcome.repriced, "cost_delta": decimal(m.outcome.cost_delta_micros),
        })).collect::<Vec<_>>(),
        "repriced": total.repriced,
        "cost_delta": decimal(total.cost_delta_micros),
    })
}
