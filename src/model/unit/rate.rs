//! A conversion rate: a positive exact decimal, kept as an integer and a
//! power of ten so that converting money never goes through a float.

use std::fmt;

/// Most digits a rate may have (leading and trailing zeros not counted):
/// the integer behind it then stays below 10¹⁸, and an amount times it
/// below 2¹²⁴, far inside an `i128`.
pub const MAX_DIGITS: usize = 18;
/// Most decimals a rate may have.
pub const MAX_DECIMALS: usize = 9;

/// `mantissa / 10^scale`, greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    mantissa: i64,
    scale: u32,
}

impl Rate {
    pub const ONE: Rate = Rate {
        mantissa: 1,
        scale: 0,
    };

    /// Reads `0.92`, `100`, `1.5`: digits with at most one point, digits
    /// on both sides of it; no sign, exponent, separator or float
    /// rounding. Trailing zeros of the fraction do not count.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        let shape = "must be a positive decimal number such as 0.92 or 100 (digits and at most \
                     one point; no sign, exponent or thousands separator)";
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits_only(whole)
            || !digits_only(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(format!("{shape}; got {text:?}"));
        }
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > MAX_DECIMALS {
            return Err(format!(
                "must have at most {MAX_DECIMALS} decimals; got {text}"
            ));
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return Err(format!("must have at most {MAX_DIGITS} digits; got {text}"));
        }
        // At most 18 digits: always fits an i64.
        let mantissa: i64 = match digits {
            "" => 0,
            digits => digits
                .parse()
                .map_err(|_| format!("{shape}; got {text:?}"))?,
        };
        if mantissa == 0 {
            return Err(format!("must be greater than 0; got {text}"));
        }
        Ok(Rate {
            mantissa,
            // At most MAX_DECIMALS: the cast is lossless.
            scale: fraction.len() as u32,
        })
    }

    pub fn is_one(self) -> bool {
        self == Rate::ONE
    }

    /// The integer of `mantissa / 10^scale`.
    pub(super) fn mantissa(self) -> i128 {
        i128::from(self.mantissa)
    }

    /// The power of ten of `mantissa / 10^scale`.
    pub(super) fn scale(self) -> u32 {
        self.scale
    }
}

/// The rate as it is read back: `0.92`, `100`, never `0.920` or `1e2`.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_exactly_and_print_back() {
        for (text, shown) in [
            ("0.92", "0.92"),
            ("100", "100"),
            ("0100.50", "100.5"),
            ("1.000", "1"),
            ("0.000000001", "0.000000001"),
            (" 7 ", "7"),
            ("999999999999999999", "999999999999999999"),
            ("123456789.123456789", "123456789.123456789"),
        ] {
            let rate = Rate::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(rate.to_string(), shown, "{text:?}");
        }
        assert!(Rate::parse("1.0").expect("one").is_one());
    }

    #[test]
    fn bad_rates_say_why() {
        for (text, why) in [
            ("", "positive decimal"),
            ("-1", "positive decimal"),
            ("+1", "positive decimal"),
            ("1e3", "positive decimal"),
            ("1,000", "positive decimal"),
            (".5", "positive decimal"),
            ("5.", "positive decimal"),
            ("1.2.3", "positive decimal"),
            ("NaN", "positive decimal"),
            ("0", "greater than 0"),
            ("0.000", "greater than 0"),
            ("0.0000000001", "at most 9 decimals"),
            ("1234567890123456789", "at most 18 digits"),
        ] {
            let error = Rate::parse(text).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }
}
