//! The one place where numbers and token counts become text; money
//! becomes text through the instance's unit (`model::unit`).

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

/// An instant in `zone`: `2026-06-15 14:05`.
pub fn date_time(ts_ms: i64, zone: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ts_ms)
        .map(|t| {
            t.to_zoned(zone.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// A local date of `zone`: `2026-06-15`.
pub fn date(ts_ms: i64, zone: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ts_ms)
        .map(|t| t.to_zoned(zone.clone()).date().to_string())
        .unwrap_or_default()
}

/// The change from `previous` to `current` as `+12%`, or `None` without a
/// base to compare with.
pub fn change(current: i64, previous: i64) -> Option<String> {
    (previous > 0).then(|| {
        let percent = (current - previous) as f64 * 100.0 / previous as f64;
        format!("{percent:+.0}%")
    })
}

/// `part` as a share of `whole`, as `40%` (`<1%` for a small non-zero
/// part, so that it does not read as none); `0%` of nothing.
pub fn percent_of(part: i64, whole: i64) -> String {
    if whole <= 0 || part <= 0 {
        return "0%".to_owned();
    }
    let percent = i128::from(part) * 100 / i128::from(whole);
    if percent == 0 {
        "<1%".to_owned()
    } else {
        format!("{percent}%")
    }
}

/// A text cell of a CSV export whose value came from data (a name, a
/// route, a user agent): one that a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@`) or that starts with a tab or carriage return gets
/// a leading `'`, which spreadsheets show as text (OWASP's advice against
/// CSV injection). The csv writer still quotes the cell as needed. Numbers
/// we write ourselves are not passed through here, so they stay numbers.
pub fn csv_cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Micro-units as a decimal string: `12345678` → `"12.345678"`.
pub fn decimal(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_down_and_never_hide_a_small_part() {
        assert_eq!(percent_of(40, 100), "40%");
        assert_eq!(percent_of(2, 3), "66%");
        assert_eq!(percent_of(1, 1_000), "<1%");
        assert_eq!(percent_of(0, 1_000), "0%");
        assert_eq!(percent_of(5, 0), "0%");
        assert_eq!(percent_of(i64::MAX, i64::MAX), "100%");
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_made_text() {
        for value in [
            "=HYPERLINK(\"http://evil\",\"x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(csv_cell(value), format!("'{value}"), "{value:?}");
        }
        for value in ["", "gpt-5", "a=b", "'quoted", "1.5", " =x"] {
            assert_eq!(csv_cell(value), value, "{value:?}");
        }
    }

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
    fn dates_and_changes() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").expect("zone");
        assert_eq!(date_time(1_781_524_800_000, &berlin), "2026-06-15 14:00");
        assert_eq!(
            date(1_781_524_800_000, &jiff::tz::TimeZone::UTC),
            "2026-06-15"
        );
        assert_eq!(change(150, 100).as_deref(), Some("+50%"));
        assert_eq!(change(50, 100).as_deref(), Some("-50%"));
        assert_eq!(change(5, 0), None);
    }
}
