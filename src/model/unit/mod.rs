//! The unit money is shown in: US dollars (the default: the currency of
//! the price catalogue and of every cost a producer reports), another
//! currency at a fixed rate, or the credits a team bills in internally.
//!
//! **Amounts are stored in integer micro-units of USD, always.** The unit
//! only says how they are shown and exported, so changing it never
//! rewrites a stored event and never re-prices one. One [`Unit`] is built
//! from the settings at start and handed to the pages, the read API and
//! the reports; nothing else converts money.
//!
//! **The conversion is exact.** An amount of `m` USD micro-units at a rate
//! of `mantissa / 10^scale` units per dollar is the fraction
//! `m × mantissa / 10^scale` micro-units of the unit, computed in `i128`
//! (|m| < 2⁶³ and mantissa < 10¹⁸ keep the product below 2¹²⁴: it cannot
//! overflow; the multiplication is checked anyway and would saturate), and
//! rounded **once**, half up (on the magnitude: half away from zero), to
//! the digits shown: six decimals in JSON and CSV, two on pages (four for
//! a non-zero amount under 0.01, so small usage does not read as zero).

mod rate;

pub use rate::Rate;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::format;

/// Longest currency or credits symbol, in characters.
pub const MAX_SYMBOL_CHARS: usize = 8;
/// Longest name of credits, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// A currency, or credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    Currency,
    Credits,
}

impl UnitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Currency => "currency",
            UnitKind::Credits => "credits",
        }
    }
}

/// The unit money is shown in. Built by [`Unit::currency`] or
/// [`Unit::credits`], which check every part; [`Unit::default`] is USD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    kind: UnitKind,
    /// A currency's ISO 4217 code; credits have none.
    code: Option<String>,
    /// What the unit is called: a currency's code, or the credits' name.
    name: String,
    /// Written before a currency's amounts; after credits' (instead of
    /// their name) when they have one.
    symbol: Option<String>,
    /// Units per US dollar.
    per_usd: Rate,
}

/// A part of the unit that cannot be used: the setting, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct UnitError {
    pub setting: &'static str,
    pub reason: String,
}

fn refuse(setting: &'static str, reason: impl Into<String>) -> UnitError {
    UnitError {
        setting,
        reason: reason.into(),
    }
}

impl Default for Unit {
    fn default() -> Unit {
        Unit {
            kind: UnitKind::Currency,
            code: Some("USD".to_owned()),
            name: "USD".to_owned(),
            symbol: Some("$".to_owned()),
            per_usd: Rate::ONE,
        }
    }
}

/// The symbols of a few currencies, so `currency = "EUR"` alone reads
/// `€`; any other currency is written with its code (`SEK 12.00`).
const KNOWN_SYMBOLS: [(&str, &str); 6] = [
    ("USD", "$"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("JPY", "¥"),
    ("CNY", "¥"),
    ("INR", "₹"),
];

impl Unit {
    /// A currency: its ISO 4217 code (three upper-case letters), its
    /// symbol (default: the usual one, else the code) and how many of it
    /// one US dollar buys. A currency other than USD needs that rate:
    /// amounts are stored in dollars and showing them under another
    /// currency's symbol unconverted would be wrong.
    pub fn currency(
        code: &str,
        symbol: Option<&str>,
        usd_rate: Option<Rate>,
    ) -> Result<Unit, UnitError> {
        let code = code.trim();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(refuse(
                "currency",
                format!("{code:?} is not an ISO 4217 code (three upper-case letters, e.g. EUR)"),
            ));
        }
        let per_usd = match (code, usd_rate) {
            ("USD", Some(rate)) if !rate.is_one() => {
                return Err(refuse("usd_rate", format!("must be 1 for USD; got {rate}")));
            }
            ("USD", _) => Rate::ONE,
            (_, Some(rate)) => rate,
            (_, None) => {
                return Err(refuse(
                    "usd_rate",
                    format!(
                        "currency {code} needs it: how many {code} one US dollar buys (e.g. \
                         0.92); amounts are stored in US dollars"
                    ),
                ));
            }
        };
        let symbol = match symbol {
            Some(symbol) => check_text("currency_symbol", symbol, MAX_SYMBOL_CHARS)?,
            None => KNOWN_SYMBOLS
                .iter()
                .find(|(known, _)| *known == code)
                .map_or(code, |(_, symbol)| symbol)
                .to_owned(),
        };
        Ok(Unit {
            kind: UnitKind::Currency,
            code: Some(code.to_owned()),
            name: code.to_owned(),
            symbol: Some(symbol),
            per_usd,
        })
    }

    /// Credits: how many one US dollar buys, their name (default
    /// `credits`) and an optional short symbol written instead of it
    /// after an amount.
    pub fn credits(
        per_usd: Rate,
        name: Option<&str>,
        symbol: Option<&str>,
    ) -> Result<Unit, UnitError> {
        let name = match name {
            Some(name) => check_text("credits_name", name, MAX_NAME_CHARS)?,
            None => "credits".to_owned(),
        };
        let symbol = symbol
            .map(|symbol| check_text("credits_symbol", symbol, MAX_SYMBOL_CHARS))
            .transpose()?;
        Ok(Unit {
            kind: UnitKind::Credits,
            code: None,
            name,
            symbol,
            per_usd,
        })
    }

    pub fn kind(&self) -> UnitKind {
        self.kind
    }

    /// What the unit is called: `USD`, `EUR`, `credits`; for column
    /// headers and the CSV export's `unit` column.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Units per US dollar.
    pub fn per_usd(&self) -> Rate {
        self.per_usd
    }

    /// Whether amounts are shown as stored, in dollars.
    pub fn is_usd(&self) -> bool {
        self.code.as_deref() == Some("USD")
    }

    /// `usd_micros` in this unit, in units of `10^-digits` (at most 6),
    /// rounded once, half away from zero.
    fn scaled(&self, usd_micros: i64, digits: u32) -> i128 {
        let numerator = i128::from(usd_micros)
            .checked_mul(self.per_usd.mantissa())
            .unwrap_or(if usd_micros < 0 { i128::MIN } else { i128::MAX });
        // 10^(scale + 6 - digits) ≤ 10^15: no overflow.
        let denominator = 10i128.pow(self.per_usd.scale() + 6 - digits.min(6));
        round_half_up(numerator, denominator)
    }

    /// `usd_micros` in micro-units of this unit, rounded once.
    pub fn micros(&self, usd_micros: i64) -> i128 {
        self.scaled(usd_micros, 6)
    }

    /// `usd_micros` in this unit as a decimal string with six decimals
    /// (`"11.357352"`): what JSON answers and CSV exports carry.
    pub fn decimal(&self, usd_micros: i64) -> String {
        let micros = self.micros(usd_micros);
        let sign = if micros < 0 { "-" } else { "" };
        let abs = micros.unsigned_abs();
        format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }

    /// `usd_micros` in micro-units of this unit for a chart's bars (the
    /// axis reads them); saturates at the ends of `i64`, which no sum
    /// within the per-event limits reaches.
    pub fn chart_value(&self, usd_micros: i64) -> i64 {
        let micros = self.micros(usd_micros);
        i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
    }

    /// Money for people: `$1,234.56`, `€0.0046`, `CHF 12.00`,
    /// `1,250.00 credits`. Two decimals; four for an amount under 0.01
    /// that is not zero. Rounded once from the exact value.
    pub fn money(&self, usd_micros: i64) -> String {
        // Under 0.01 of the unit exactly when |m × rate| < 10,000 micro-units.
        let exact = i128::from(usd_micros).saturating_mul(self.per_usd.mantissa());
        let cent = 10_000 * 10i128.pow(self.per_usd.scale());
        let digits = if exact != 0 && exact.abs() < cent {
            4
        } else {
            2
        };
        let value = self.scaled(usd_micros, digits);
        let sign = if usd_micros < 0 { "-" } else { "" };
        let abs = value.unsigned_abs();
        let unit = 10u128.pow(digits);
        let number = format!(
            "{}.{:0width$}",
            group_thousands(abs / unit),
            abs % unit,
            width = digits as usize
        );
        format!("{sign}{}{number}{}", self.prefix(), self.suffix())
    }

    /// What comes before a number: a currency's symbol (and a space when
    /// it ends in a letter: `CHF 12.00`); nothing for credits.
    pub fn prefix(&self) -> String {
        match (self.kind, &self.symbol) {
            (UnitKind::Currency, Some(symbol)) => match symbol.chars().last() {
                Some(c) if c.is_alphanumeric() => format!("{symbol} "),
                _ => symbol.clone(),
            },
            _ => String::new(),
        }
    }

    /// What comes after a number: credits' symbol, else their name.
    pub fn suffix(&self) -> String {
        match self.kind {
            UnitKind::Currency => String::new(),
            UnitKind::Credits => format!(" {}", self.symbol.as_deref().unwrap_or(&self.name)),
        }
    }

    /// A sentence part naming the unit and its rate, for the pages'
    /// notes: `US dollars`, `EUR (€) at 0.92 per US dollar`, `credits,
    /// 100 per US dollar`.
    pub fn describe(&self) -> String {
        match (self.kind, &self.symbol) {
            _ if self.is_usd() => "US dollars".to_owned(),
            (UnitKind::Currency, Some(symbol)) if *symbol != self.name => {
                format!("{} ({symbol}) at {} per US dollar", self.name, self.per_usd)
            }
            (UnitKind::Currency, _) => format!("{} at {} per US dollar", self.name, self.per_usd),
            (UnitKind::Credits, _) => format!("{}, {} per US dollar", self.name, self.per_usd),
        }
    }
}

/// `{"kind", "code", "name", "symbol", "usd_rate"}`: the `unit` of every
/// answer that carries money. `usd_rate` is a decimal string (units per
/// US dollar; `"1"` for USD).
impl Serialize for Unit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut unit = serializer.serialize_struct("Unit", 5)?;
        unit.serialize_field("kind", self.kind.as_str())?;
        unit.serialize_field("code", &self.code)?;
        unit.serialize_field("name", &self.name)?;
        unit.serialize_field("symbol", &self.symbol)?;
        unit.serialize_field("usd_rate", &self.per_usd.to_string())?;
        unit.end()
    }
}

/// `numerator / denominator` (denominator > 0) rounded half away from
/// zero.
fn round_half_up(numerator: i128, denominator: i128) -> i128 {
    let (abs, den) = (numerator.unsigned_abs(), denominator.unsigned_abs());
    let (quotient, remainder) = (abs / den, abs % den);
    // remainder < den ≤ 10^15: doubling it cannot overflow.
    let rounded = quotient + u128::from(remainder * 2 >= den);
    let rounded = i128::try_from(rounded).unwrap_or(i128::MAX);
    if numerator < 0 { -rounded } else { rounded }
}

/// `1234567` → `1,234,567`, for any magnitude a conversion gives.
fn group_thousands(value: u128) -> String {
    match i64::try_from(value) {
        Ok(small) => format::integer(small),
        Err(_) => {
            let digits = value.to_string();
            let mut out = String::with_capacity(digits.len() + digits.len() / 3);
            for (i, digit) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(digit);
            }
            out
        }
    }
}

/// A symbol or name people will read on every page: trimmed, 1 to `max`
/// characters, no control, invisible or direction-changing character, and
/// no digit (`1$` would read as part of the amount).
fn check_text(setting: &'static str, text: &str, max: usize) -> Result<String, UnitError> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > max {
        return Err(refuse(
            setting,
            format!("must be 1 to {max} characters; got {chars}"),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() || super::names::is_invisible(*c))
    {
        return Err(refuse(
            setting,
            format!(
                "must not contain control, invisible or direction-changing characters (U+{:04X})",
                c as u32
            ),
        ));
    }
    if text.chars().any(|c| c.is_ascii_digit()) {
        return Err(refuse(
            setting,
            format!(
                "must not contain digits (they would read as part of the amount); got {text:?}"
            ),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests;
