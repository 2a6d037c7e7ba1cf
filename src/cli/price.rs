//! `tokentally price …`: the price table from the shell. Setting or
//! removing a price re-prices the events it applies to, in one transaction
//! with the rollups.

use std::path::Path;

use clap::Subcommand;

use crate::audit;
use crate::model::Action;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::usage::{UsageCommandError, open, parse_bound};
use crate::model::format::decimal;
use crate::usage::prices::{Price, parse_micros};
use crate::usage::reprice::{self, RepriceOutcome};

#[derive(Debug, Subcommand)]
pub enum PriceCommand {
    /// List every price (the embedded defaults and your own)
    List,
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
        PriceCommand::List => {
            let prices = db.read(reprice::list).await?;
            print!("{}", price_table(&prices));
            Ok(())
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
        "{:<24} {:<10} {:<20} {:>12} {:>12} {:>12} {:>12}\n",
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
            "{:<24} {:<10} {:<20} {input:>12} {output:>12} {read:>12} {write:>12}\n",
            price.model, provider, from
        ));
    }
    out
}
