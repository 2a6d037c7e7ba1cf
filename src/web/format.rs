//! The one place where numbers, token counts and money become text.

/// `1234567` → `1,234,567`
pub fn integer(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Token counts, compact: `950`, `12.3k`, `4.56M`, `1.20B`.
pub fn tokens(value: i64) -> String {
    let abs = value.unsigned_abs() as f64;
    let sign = if value < 0 { "-" } else { "" };
    let (scaled, unit) = match abs {
        a if a >= 1e9 => (a / 1e9, "B"),
        a if a >= 1e6 => (a / 1e6, "M"),
        a if a >= 1e3 => (a / 1e3, "k"),
        _ => return integer(value),
    };
    let decimals = if scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    format!("{sign}{scaled:.decimals$}{unit}")
}

/// Money in micro-units of the instance's currency → `$1,234.56`.
/// Amounts under a cent keep four decimals so small usage is not shown as
/// zero.
pub fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    if abs > 0 && abs < 10_000 {
        let tenth_mils = (abs + 50) / 100;
        return format!("{sign}${}.{:04}", tenth_mils / 10_000, tenth_mils % 10_000);
    }
    let cents = (abs + 5_000) / 10_000;
    let whole = i64::try_from(cents / 100).unwrap_or(i64::MAX);
    format!("{sign}${}.{:02}", integer(whole), cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(integer(0), "0");
        assert_eq!(integer(999), "999");
        assert_eq!(integer(1000), "1,000");
        assert_eq!(integer(-1234567), "-1,234,567");
    }

    #[test]
    fn token_counts() {
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(12_345), "12.3k");
        assert_eq!(tokens(4_560_000), "4.56M");
        assert_eq!(tokens(1_200_000_000), "1.20B");
        assert_eq!(tokens(123_456_789), "123M");
    }

    #[test]
    fn money_amounts() {
        assert_eq!(money(0), "$0.00");
        assert_eq!(money(1_234_560_000), "$1,234.56");
        assert_eq!(money(4_999), "$0.0050");
        assert_eq!(money(10_000), "$0.01");
        assert_eq!(money(-25_000_000), "-$25.00");
    }
}
