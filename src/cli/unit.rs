//! The settings of the unit money is shown in (`model::unit`): flags and
//! environment variables (on `serve`, `report` and `identity list`, the
//! commands that show money), config file keys, and their merge into one
//! checked [`Unit`]. A bad setting stops the command before it starts,
//! with a message that names the setting.

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::model::Unit;
use crate::model::unit::{Rate, UnitError};

/// What money is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKindArg {
    /// A currency (`currency`, `currency_symbol`, `usd_rate`)
    Currency,
    /// Credits (`credits_per_usd`, `credits_name`, `credits_symbol`)
    Credits,
}

#[derive(Debug, Clone, Default, Args)]
pub struct UnitArgs {
    /// The unit money is shown in: a currency or credits; amounts are stored in USD
    /// whatever it is [default: currency]
    #[arg(long, env = "TOKENTALLY_UNIT", value_enum)]
    pub unit: Option<UnitKindArg>,
    /// ISO 4217 code of the currency shown [default: USD]
    #[arg(long, env = "TOKENTALLY_CURRENCY", value_name = "CODE")]
    pub currency: Option<String>,
    /// Its symbol [default: $ for USD, € for EUR, £, ¥, ₹ for GBP, JPY/CNY, INR; else the code]
    #[arg(long, env = "TOKENTALLY_CURRENCY_SYMBOL", value_name = "SYMBOL")]
    pub currency_symbol: Option<String>,
    /// How many of the currency one US dollar buys, an exact decimal (e.g. 0.92);
    /// needed for any currency but USD
    #[arg(long, env = "TOKENTALLY_USD_RATE", value_name = "DECIMAL")]
    pub usd_rate: Option<String>,
    /// With --unit credits: how many credits one US dollar buys, an exact decimal (e.g. 100)
    #[arg(long, env = "TOKENTALLY_CREDITS_PER_USD", value_name = "DECIMAL")]
    pub credits_per_usd: Option<String>,
    /// With --unit credits: what they are called [default: credits]
    #[arg(long, env = "TOKENTALLY_CREDITS_NAME", value_name = "NAME")]
    pub credits_name: Option<String>,
    /// With --unit credits: a short symbol written after amounts instead of the name
    #[arg(long, env = "TOKENTALLY_CREDITS_SYMBOL", value_name = "SYMBOL")]
    pub credits_symbol: Option<String>,
}

/// A rate in the config file: a string (`"0.92"`) or a whole number.
/// A TOML float is refused: it is read as binary floating point, so
/// `0.92` would not be the rate written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RateValue {
    Text(String),
    Whole(u64),
    Float(f64),
}

impl RateValue {
    fn text(&self, setting: &'static str) -> Result<String, UnitError> {
        match self {
            RateValue::Text(text) => Ok(text.clone()),
            RateValue::Whole(n) => Ok(n.to_string()),
            RateValue::Float(f) => Err(UnitError {
                setting,
                reason: format!(
                    "write it as a string, {setting} = \"{f}\", so that it is read exactly (a \
                     TOML number with a point is a binary float)"
                ),
            }),
        }
    }
}

/// The flag and variable of each setting, for the messages.
fn where_set(setting: &str) -> String {
    format!(
        "--{} / TOKENTALLY_{} / {setting} in the config file",
        setting.replace('_', "-"),
        setting.to_uppercase()
    )
}

/// The invalid setting as a command-line error: the setting, where it
/// can be set, and why.
pub fn describe(error: &UnitError) -> String {
    format!(
        "invalid setting {} ({}): {}",
        error.setting,
        where_set(error.setting),
        error.reason
    )
}

/// The unit's keys of the config file (`config::FileConfig` holds them
/// among its own, and lends them here).
#[derive(Debug, Clone, Default)]
pub struct UnitKeys {
    pub unit: Option<UnitKindArg>,
    pub currency: Option<String>,
    pub currency_symbol: Option<String>,
    pub usd_rate: Option<RateValue>,
    pub credits_per_usd: Option<RateValue>,
    pub credits_name: Option<String>,
    pub credits_symbol: Option<String>,
}

/// Flags (and their environment variables) over the config file, checked.
pub fn resolve(args: &UnitArgs, file: &UnitKeys) -> Result<Unit, String> {
    merge(args, file).map_err(|e| describe(&e))
}

fn merge(args: &UnitArgs, file: &UnitKeys) -> Result<Unit, UnitError> {
    let text = |flag: &Option<String>, key: &Option<String>| flag.clone().or_else(|| key.clone());
    let rate = |setting: &'static str, flag: &Option<String>, key: &Option<RateValue>| {
        let text = match (flag, key) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(value)) => Some(value.text(setting)?),
            (None, None) => None,
        };
        text.map(|t| Rate::parse(&t).map_err(|reason| UnitError { setting, reason }))
            .transpose()
    };
    let kind = args.unit.or(file.unit).unwrap_or(UnitKindArg::Currency);
    let currency = text(&args.currency, &file.currency);
    let currency_symbol = text(&args.currency_symbol, &file.currency_symbol);
    let usd_rate = rate("usd_rate", &args.usd_rate, &file.usd_rate)?;
    let credits_per_usd = rate(
        "credits_per_usd",
        &args.credits_per_usd,
        &file.credits_per_usd,
    )?;
    let credits_name = text(&args.credits_name, &file.credits_name);
    let credits_symbol = text(&args.credits_symbol, &file.credits_symbol);
    // A setting of the other kind is a mistake (a rate that would silently
    // not apply), not something to ignore.
    let stray = |setting: &'static str, set: bool, kind: &str| match set {
        true => Err(UnitError {
            setting,
            reason: format!("applies only with unit = {kind}"),
        }),
        false => Ok(()),
    };
    match kind {
        UnitKindArg::Currency => {
            stray("credits_per_usd", credits_per_usd.is_some(), "credits")?;
            stray("credits_name", credits_name.is_some(), "credits")?;
            stray("credits_symbol", credits_symbol.is_some(), "credits")?;
            Unit::currency(
                currency.as_deref().unwrap_or("USD"),
                currency_symbol.as_deref(),
                usd_rate,
            )
        }
        UnitKindArg::Credits => {
            stray("currency", currency.is_some(), "currency")?;
            stray("currency_symbol", currency_symbol.is_some(), "currency")?;
            stray("usd_rate", usd_rate.is_some(), "currency")?;
            let per_usd = credits_per_usd.ok_or_else(|| UnitError {
                setting: "credits_per_usd",
                reason: "unit = credits needs it: how many credits one US dollar buys (e.g. 100)"
                    .into(),
            })?;
            Unit::credits(per_usd, credits_name.as_deref(), credits_symbol.as_deref())
        }
    }
}
