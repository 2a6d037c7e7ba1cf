//! `tokentally price …`: the price table from the shell. Setting or
//! removing a price re-prices the events it applies to, in one transaction
//! with the rollups.

use std::path::Path;

use clap::Subcommand;

use crate::audit;
use crate::model::Action;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::price_sync::{entry_json, meta_json, rates_json};
use super::usage::{UsageCommandError, open, parse_bound};
use crate::model::format::{decimal, integer};
use crate::usage::catalogue;
use crate::usage::price_list::{self, PricedNow, SeenModel};
use crate::usage::prices::{Price, parse_micros};
use crate::usage::reprice::{self, RepriceOutcome};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum PriceCommand {
    /// List your prices, the catalogue loaded, and what prices each model of stored events
    List {
        /// Print JSON (for scripts)
        #[arg(long)]
        json: bool,
        /// Also list every model of the catalogue
        #[arg(long)]
        catalogue: bool,
    },
    /// Load a price file in LiteLLM's format (model_prices_and_context_window.json, or a URL
    /// of it over https) in place of the catalogue; shows what changes, applies it with --yes
    Sync {
        /// A file, or an https:// URL (fetched only now, at most 32 MiB, within 60 s)
        source: String,
        /// Apply the change (re-pricing the events it changes); without it nothing is written
        #[arg(long)]
        yes: bool,
        /// Print the change as JSON
        #[arg(long)]
        json: bool,
    },
    /// Add or replace a price and re-price the events it applies to
    Set {
        /// Model name as events carry it, e.g. claude-sonnet-4-5
        model: String,
        /// Only for this provider (e.g. bedrock); default: any provider
        #[arg(long, default_value = "")]
        provider: String,
        /// In force from this UTC date (YYYY-MM-DD) or RFC 3339 instant; default: always
        #[arg(long)]
        from: Option<String>,
        /// Price per million input tokens in US dollars (whatever unit the instance shows),
        /// as a decimal (e.g. 3 or 0.25)
        #[arg(long)]
        input: String,
        /// Price per million output tokens
        #[arg(long)]
        output: String,
        /// Price per million cache-read tokens
        #[arg(long, default_value = "0")]
        cache_read: String,
        /// Price per million cache-write tokens
        #[arg(long, default_value = "0")]
        cache_write: String,
    },
    /// Remove one price and re-price the events it applied to
    Remove {
        model: String,
        #[arg(long, default_value = "")]
        provider: String,
        /// The effective-from date or instant of the row to remove; default: always
        #[arg(long)]
        from: Option<String>,
    },
}

pub async fn run(command: PriceCommand, db_path: &Path) -> Result<(), UsageCommandError> {
    let db = open(db_path).await?;
    let outcome = dispatch(&db, command).await;
    db.shutdown().await;
    outcome
}

async fn dispatch(db: &crate::db::Db, command: PriceCommand) -> Result<(), UsageCommandError> {
    match command {
        PriceCommand::List { json, catalogue } => list(db, json, catalogue).await,
        PriceCommand::Sync { source, yes, json } => {
            super::price_sync::run(db, source, yes, json).await
        }
        PriceCommand::Set {
            model,
            provider,
            from,
            input,
            output,
            cache_read,
            cache_write,
        } => {
            let per_mtok = [
                amount("--input", &input)?,
                amount("--output", &output)?,
                amount("--cache-read", &cache_read)?,
                amount("--cache-write", &cache_write)?,
            ];
            let price = Price {
                model: non_empty_model(model)?,
                provider,
                effective_from_ms: effective_from(from.as_deref())?,
                per_mtok,
            };
            let now = Timestamp::now().as_second();
            let outcome = db
                .write(move |conn| {
                    let outcome = reprice::set(conn, &price, now)?;
                    let details = serde_json::json!({
                        "provider": price.provider,
                        "effective_from_ms": price.effective_from_ms,
                        "per_mtok_micros": price.per_mtok,
                        "repriced": outcome.repriced,
                    });
                    audit::record_cli(
                        conn,
                        Action::PriceSet,
                        format!("model:{}", price.model),
                        details,
                    )?;
                    Ok::<_, crate::db::DbError>(outcome)
                })
                .await?;
            println!("price set; {}", repriced(&outcome));
            Ok(())
        }
        PriceCommand::Remove {
            model,
            provider,
            from,
        } => {
            let from_ms = effective_from(from.as_deref())?;
            let what = format!("{model} (provider {provider:?}, from {from_ms} ms)");
            let outcome = db
                .write(move |conn| {
                    let outcome = reprice::remove(conn, &model, &provider, from_ms)?;
                    if let Some(done) = &outcome {
                        let details = serde_json::json!({
                            "provider": provider,
                            "effective_from_ms": from_ms,
                            "repriced": done.repriced,
                        });
                        audit::record_cli(
                            conn,
                            Action::PriceRemove,
                            format!("model:{model}"),
                            details,
                        )?;
                    }
                    Ok::<_, crate::db::DbError>(outcome)
                })
                .await?;
            match outcome {
                Some(outcome) => {
                    println!("price removed; {}", repriced(&outcome));
                    Ok(())
                }
                None => Err(UsageCommandError::Invalid(format!(
                    "no price for {what}; `tokentally price list` shows them"
                ))),
            }
        }
    }
}

/// Models of stored events `price list` shows at most.
const MODELS_LISTED: usize = 10_000;

async fn list(db: &crate::db::Db, as_json: bool, all: bool) -> Result<(), UsageCommandError> {
    let now_ms = Timestamp::now().as_millisecond();
    let (list, entries) = db
        .read(move |conn| {
            let list = price_list::read(conn, now_ms, MODELS_LISTED)?;
            let entries = if all {
                catalogue::store::load(conn)?.entries().to_vec()
            } else {
                Vec::new()
            };
            Ok::<_, crate::db::DbError>((list, entries))
        })
        .await?;
    let label = list.catalogue.as_ref().map(|m| m.label());
    if as_json {
        let mut value = json!({
            "prices": list.admin.iter().map(admin_json).collect::<Vec<_>>(),
            "catalogue": list.catalogue.as_ref().map(meta_json),
            "models": list.models.iter().map(|m| model_json(m, label.as_deref())).collect::<Vec<_>>(),
            "models_total": list.models_total,
        });
        if all {
            value["catalogue_entries"] = entries
                .iter()
                .map(|e| {
                    let mut entry = entry_json(e);
                    entry["origin"] = json!(label);
                    entry
                })
                .collect();
        }
        println!("{value}");
        return Ok(());
    }
    print!("{}", price_table(&list.admin));
    match &list.catalogue {
        Some(meta) => println!(
            "\ncatalogue: {} ({}, {}), {} models{}",
            meta.source,
            meta.date,
            meta.origin.code(),
            integer(meta.entries as i64),
            if all {
                ""
            } else {
                "; `price list --catalogue` lists them"
            }
        ),
        None => println!("\ncatalogue: none loaded"),
    }
    if all {
        println!(
            "{:<56} {:<28} {:>12} {:>12} {:>12} {:>12} {:>12}",
            "CATALOGUE MODEL",
            "PROVIDER",
            "INPUT/M",
            "OUTPUT/M",
            "CACHE RD/M",
            "CACHE WR/M",
            "1H WR/M"
        );
        for entry in &entries {
            let [input, output, read, write, write_1h] = entry.rates.base.all().map(decimal);
            println!(
                "{:<56} {:<28} {input:>12} {output:>12} {read:>12} {write:>12} {write_1h:>12}",
                entry.name, entry.provider
            );
        }
    }
    println!(
        "\nmodels of stored events ({}):\n{:<32} {:>10}  {:<64} {:>12} {:>12} {:>12} {:>12}",
        integer(list.models_total as i64),
        "MODEL",
        "EVENTS",
        "PRICED BY",
        "INPUT/M",
        "OUTPUT/M",
        "CACHE RD/M",
        "CACHE WR/M"
    );
    for model in &list.models {
        let priced_by = match &model.priced_now {
            PricedNow::Admin(_) => "admin".to_owned(),
            PricedNow::Catalogue { entry, rule } => format!(
                "{}: {} ({})",
                label.as_deref().unwrap_or("catalogue"),
                entry.name,
                rule.code()
            ),
            PricedNow::Nothing => "unpriced".to_owned(),
        };
        let rates = model.rates().map(|r| {
            [
                r.base.input,
                r.base.output,
                r.base.cache_read,
                r.base.cache_write,
            ]
            .map(decimal)
        });
        let [input, output, read, write] =
            rates.unwrap_or_else(|| ["-".to_owned(), "-".into(), "-".into(), "-".into()]);
        println!(
            "{:<32} {:>10}  {priced_by:<64} {input:>12} {output:>12} {read:>12} {write:>12}",
            model.model,
            integer(model.events)
        );
    }
    Ok(())
}

fn admin_json(price: &Price) -> serde_json::Value {
    let from = Timestamp::from_millisecond(price.effective_from_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let [input, output, cache_read, cache_write] = price.per_mtok.map(decimal);
    json!({
        "model": price.model,
        "provider": (!price.provider.is_empty()).then_some(&price.provider),
        "from": (price.effective_from_ms != 0).then_some(from),
        "input": input, "output": output, "cache_read": cache_read, "cache_write": cache_write,
        "origin": "admin",
    })
}

fn model_json(model: &SeenModel, label: Option<&str>) -> serde_json::Value {
    let (origin, entry, rule) = match &model.priced_now {
        PricedNow::Admin(_) => (Some("admin".to_owned()), None, None),
        PricedNow::Catalogue { entry, rule } => (
            label.map(str::to_owned),
            Some(entry.name.clone()),
            Some(rule.code()),
        ),
        PricedNow::Nothing => (None, None, None),
    };
    json!({
        "model": model.model,
        "events": model.events,
        "unpriced_events": model.unpriced_events,
        "origin": origin,
        "entry": entry,
        "rule": rule,
        "price": model.rates().map(|r| rates_json(&r)),
    })
}

fn amount(flag: &str, text: &str) -> Result<i64, UsageCommandError> {
    parse_micros(text).map_err(|reason| UsageCommandError::Invalid(format!("{flag}: {reason}")))
}

fn non_empty_model(model: String) -> Result<String, UsageCommandError> {
    let model = model.trim().to_owned();
    if model.is_empty() {
        return Err(UsageCommandError::Invalid("MODEL must not be empty".into()));
    }
    Ok(model)
}

/// Prices take effect at a UTC instant; a bare date is its UTC midnight.
fn effective_from(from: Option<&str>) -> Result<i64, UsageCommandError> {
    match from {
        None => Ok(0),
        Some(text) => Ok(parse_bound("--from", text, &TimeZone::UTC)?.as_millisecond()),
    }
}

fn repriced(outcome: &RepriceOutcome) -> String {
    format!(
        "{} of {} events re-priced",
        outcome.repriced, outcome.examined
    )
}

fn price_table(prices: &[Price]) -> String {
    let mut out = format!(
        "{:<24} {:<10} {:<20} {:>12} {:>12} {:>12} {:>12} ORIGIN\n",
        "MODEL", "PROVIDER", "FROM (UTC)", "INPUT/M", "OUTPUT/M", "CACHE RD/M", "CACHE WR/M"
    );
    for price in prices {
        let from = Timestamp::from_millisecond(price.effective_from_ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| price.effective_from_ms.to_string());
        let provider = if price.provider.is_empty() {
            "any"
        } else {
            &price.provider
        };
        let [input, output, read, write] = price.per_mtok.map(decimal);
        out.push_str(&format!(
            "{:<24} {:<10} {:<20} {input:>12} {output:>12} {read:>12} {write:>12} admin\n",
            price.model, provider, from
        ));
    }
    out
}
