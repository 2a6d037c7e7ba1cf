//! The units under test and the oracle: what an amount of USD micro-units
//! must read as in each, computed here by hand (not with `model::unit`).

use serde_json::{Value, json};
use tokentally::model::Unit;
use tokentally::model::unit::Rate;

/// One unit under test: how the app gets it, how the binary gets it, and
/// what the oracle needs to know (the rate, the text around a number).
pub struct Case {
    pub what: &'static str,
    pub unit: Unit,
    pub rate: &'static str,
    pub prefix: &'static str,
    pub suffix: &'static str,
    pub json: Value,
    /// The unit for `tokentally report`: flags, environment, config file.
    pub args: &'static [&'static str],
    pub env: &'static [(&'static str, &'static str)],
    pub config: Option<&'static str>,
}

pub fn cases() -> Vec<Case> {
    let rate = |text| Rate::parse(text).expect("rate");
    vec![
        Case {
            what: "USD, the default",
            unit: Unit::default(),
            rate: "1",
            prefix: "$",
            suffix: "",
            json: json!({"kind": "currency", "code": "USD", "name": "USD", "symbol": "$", "usd_rate": "1"}),
            args: &[],
            env: &[],
            config: None,
        },
        Case {
            what: "EUR at 0.92, from the environment",
            unit: Unit::currency("EUR", None, Some(rate("0.92"))).expect("EUR"),
            rate: "0.92",
            prefix: "€",
            suffix: "",
            json: json!({"kind": "currency", "code": "EUR", "name": "EUR", "symbol": "€", "usd_rate": "0.92"}),
            args: &[],
            env: &[
                ("TOKENTALLY_CURRENCY", "EUR"),
                ("TOKENTALLY_USD_RATE", "0.92"),
            ],
            config: None,
        },
        Case {
            // 0.5 micro-units round up: the half-up cases.
            what: "GBP at 0.5, from flags",
            unit: Unit::currency("GBP", Some("GBP"), Some(rate("0.5"))).expect("GBP"),
            rate: "0.5",
            prefix: "GBP ",
            suffix: "",
            json: json!({"kind": "currency", "code": "GBP", "name": "GBP", "symbol": "GBP", "usd_rate": "0.5"}),
            args: &[
                "--currency",
                "GBP",
                "--currency-symbol",
                "GBP",
                "--usd-rate",
                "0.5",
            ],
            env: &[],
            config: None,
        },
        Case {
            what: "credits at 100, from the config file",
            unit: Unit::credits(rate("100"), None, Some("cr")).expect("credits"),
            rate: "100",
            prefix: "",
            suffix: " cr",
            json: json!({"kind": "credits", "code": null, "name": "credits", "symbol": "cr", "usd_rate": "100"}),
            args: &[],
            env: &[],
            config: Some(
                "unit = \"credits\"\ncredits_per_usd = \"100\"\ncredits_symbol = \"cr\"\n",
            ),
        },
        Case {
            // Sums far past 2⁶³ micro-units of the unit: no overflow.
            what: "credits at 10¹⁸ - 1, from flags",
            unit: Unit::credits(rate("999999999999999999"), Some("points"), None).expect("points"),
            rate: "999999999999999999",
            prefix: "",
            suffix: " points",
            json: json!({"kind": "credits", "code": null, "name": "points", "symbol": null, "usd_rate": "999999999999999999"}),
            args: &[
                "--unit",
                "credits",
                "--credits-per-usd",
                "999999999999999999",
                "--credits-name",
                "points",
            ],
            env: &[],
            config: None,
        },
    ]
}

// --- The oracle: the stored USD micro-units times the rate, by hand. ---

/// USD micro-units from a six-decimal string.
pub fn micros(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').expect("a decimal point");
    whole.parse::<i64>().expect("whole") * 1_000_000 + fraction.parse::<i64>().expect("fraction")
}

/// `usd` × `rate` in units of 10^-digits, rounded half up: (2n + d) / 2d.
pub fn convert(usd: i64, rate: &str, digits: u32) -> u128 {
    let (whole, fraction) = rate.split_once('.').unwrap_or((rate, ""));
    let mantissa: u128 = format!("{whole}{fraction}").parse().expect("rate digits");
    let numerator = u128::try_from(usd).expect("costs are positive") * mantissa;
    let denominator = 10u128.pow(fraction.len() as u32 + 6 - digits);
    (2 * numerator + denominator) / (2 * denominator)
}

pub fn oracle_decimal(usd: i64, rate: &str) -> String {
    let v = convert(usd, rate, 6);
    format!("{}.{:06}", v / 1_000_000, v % 1_000_000)
}

/// What a page shows: two decimals, four under 0.01 of the unit.
pub fn oracle_money(usd: i64, case: &Case) -> String {
    // Under a cent by the exact value, not a rounded one.
    let (whole, fraction) = case.rate.split_once('.').unwrap_or((case.rate, ""));
    let mantissa: u128 = format!("{whole}{fraction}").parse().expect("rate");
    let exact = u128::try_from(usd).expect("positive") * mantissa;
    let under = usd > 0 && exact < 10_000 * 10u128.pow(fraction.len() as u32);
    let digits = if under { 4 } else { 2 };
    let v = convert(usd, case.rate, digits);
    let unit = 10u128.pow(digits);
    let whole = (v / unit).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!(
        "{}{grouped}.{:0width$}{}",
        case.prefix,
        v % unit,
        case.suffix,
        width = digits as usize
    )
}
