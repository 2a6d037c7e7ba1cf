use super::*;

fn rate(text: &str) -> Rate {
    Rate::parse(text).expect("rate")
}

fn eur() -> Unit {
    Unit::currency("EUR", None, Some(rate("0.92"))).expect("EUR")
}

fn credits() -> Unit {
    Unit::credits(rate("100"), None, None).expect("credits")
}

#[test]
fn dollars_read_as_they_always_did() {
    let usd = Unit::default();
    for (micros, text) in [
        (0, "$0.00"),
        (1_234_560_000, "$1,234.56"),
        (4_999, "$0.0050"),
        (10_000, "$0.01"),
        (-25_000_000, "-$25.00"),
        (1, "$0.0000"),
        (50, "$0.0001"),
        (9_950, "$0.0100"),
    ] {
        assert_eq!(usd.money(micros), text, "{micros}");
    }
    assert_eq!(usd.decimal(12_345_678), "12.345678");
    assert_eq!(usd.decimal(-1_500_000), "-1.500000");
    assert_eq!(usd.micros(7), 7);
    assert!(usd.is_usd());
}

#[test]
fn other_currencies_and_credits_are_converted_at_their_rate() {
    let eur = eur();
    assert_eq!(eur.money(1_000_000), "€0.92");
    assert_eq!(eur.money(12_345_678_900), "€11,358.02");
    assert_eq!(eur.decimal(12_345_678), "11.358024");
    assert_eq!(eur.money(10_000), "€0.0092");
    let credits = credits();
    assert_eq!(credits.money(1_234_567), "123.46 credits");
    assert_eq!(credits.decimal(1_234_567), "123.456700");
    let cr = Unit::credits(rate("100"), Some("tokens"), Some("cr")).expect("cr");
    assert_eq!(cr.money(1_234_567), "123.46 cr");
    assert_eq!(cr.name(), "tokens");
    let chf = Unit::currency("CHF", Some("CHF"), Some(rate("0.8"))).expect("CHF");
    assert_eq!(chf.money(15_000_000), "CHF 12.00");
    let sek = Unit::currency("SEK", None, Some(rate("10.5"))).expect("SEK");
    assert_eq!(sek.money(1_000_000), "SEK 10.50");
    let gbp = Unit::currency("GBP", None, Some(rate("0.79"))).expect("GBP");
    assert_eq!(gbp.money(-1_000_000), "-£0.79");
}

#[test]
fn amounts_are_rounded_once_half_up() {
    let half = Unit::currency("EUR", None, Some(rate("0.5"))).expect("half");
    // 0.5 micro-units and 1.5: half up.
    assert_eq!(half.micros(1), 1);
    assert_eq!(half.micros(3), 2);
    assert_eq!(half.micros(-3), -2);
    // 1.5 cents: up.
    assert_eq!(half.money(30_000), "€0.02");
    // 14,999.5 micro-units are 1.49995 cents: down to a cent, although
    // rounding to micro-units first (15,000) and then to cents would give
    // two.
    assert_eq!(half.money(29_999), "€0.01");
    assert_eq!(half.decimal(29_999), "0.015000");
    // Under a cent: four decimals, rounded once too (0.00495 → 0.0050).
    assert_eq!(half.money(9_900), "€0.0050");
    assert_eq!(half.money(9_899), "€0.0049");
    // A tiny amount is not zero, and what rounds to nothing says so.
    assert_eq!(credits().money(1), "0.0001 credits");
    assert_eq!(half.money(1), "€0.0000");
}

#[test]
fn the_largest_amounts_neither_overflow_nor_panic() {
    let huge = Unit::credits(rate("999999999999999999"), None, None).expect("huge");
    let converted = huge.micros(i64::MAX);
    assert_eq!(
        converted,
        i128::from(i64::MAX) * 999_999_999_999_999_999,
        "exact in i128"
    );
    assert!(huge.money(i64::MAX).ends_with(" credits"));
    assert_eq!(
        huge.money(i64::MIN),
        "-9,223,372,036,854,775,798,776,627,963,145.22 credits"
    );
    assert_eq!(huge.chart_value(i64::MAX), i64::MAX);
    assert_eq!(huge.chart_value(i64::MIN), i64::MIN);
    let fine = Unit::currency("EUR", None, Some(rate("0.000000001"))).expect("fine");
    assert_eq!(fine.micros(i64::MAX), 9_223_372_037);
    assert_eq!(fine.decimal(i64::MIN), "-9223.372037");
    assert_eq!(Unit::default().money(i64::MAX), "$9,223,372,036,854.78");
}

#[test]
fn bad_parts_are_refused_naming_the_setting() {
    let symbol = |s: &str| Unit::currency("EUR", Some(s), Some(rate("0.92")));
    for (made, setting, why) in [
        (
            Unit::currency("eur", None, Some(rate("1"))),
            "currency",
            "ISO 4217",
        ),
        (
            Unit::currency("EURO", None, Some(rate("1"))),
            "currency",
            "ISO 4217",
        ),
        (
            Unit::currency("E1R", None, Some(rate("1"))),
            "currency",
            "ISO 4217",
        ),
        (Unit::currency("EUR", None, None), "usd_rate", "needs it"),
        (
            Unit::currency("USD", None, Some(rate("2"))),
            "usd_rate",
            "must be 1",
        ),
        (symbol(""), "currency_symbol", "1 to 8"),
        (symbol("euros-euros"), "currency_symbol", "1 to 8"),
        (symbol("€\u{7}"), "currency_symbol", "control"),
        (symbol("\u{202E}€"), "currency_symbol", "direction"),
        (symbol("1$"), "currency_symbol", "digits"),
        (
            Unit::credits(rate("1"), Some(&"c".repeat(33)), None),
            "credits_name",
            "1 to 32",
        ),
        (
            Unit::credits(rate("1"), None, Some("\u{200B}")),
            "credits_symbol",
            "invisible",
        ),
    ] {
        let error = made.expect_err(setting);
        assert_eq!(error.setting, setting, "{error}");
        assert!(error.reason.contains(why), "{error}");
        assert!(error.to_string().starts_with(setting), "{error}");
    }
    assert_eq!(
        Unit::currency("USD", None, Some(rate("1.0"))).expect("USD at 1"),
        Unit::default()
    );
}

#[test]
fn the_unit_serializes_as_the_api_shows_it() {
    let json = |unit: &Unit| serde_json::to_value(unit).expect("json");
    assert_eq!(
        json(&eur()),
        serde_json::json!({"kind": "currency", "code": "EUR", "name": "EUR", "symbol": "€", "usd_rate": "0.92"})
    );
    assert_eq!(
        json(&credits()),
        serde_json::json!({"kind": "credits", "code": null, "name": "credits", "symbol": null, "usd_rate": "100"})
    );
    assert_eq!(json(&Unit::default())["usd_rate"], "1");
}

#[test]
fn notes_name_the_unit_and_its_rate() {
    assert_eq!(Unit::default().describe(), "US dollars");
    assert_eq!(eur().describe(), "EUR (€) at 0.92 per US dollar");
    assert_eq!(credits().describe(), "credits, 100 per US dollar");
    let sek = Unit::currency("SEK", None, Some(rate("10.5"))).expect("SEK");
    assert_eq!(sek.describe(), "SEK at 10.5 per US dollar");
    assert_eq!(
        (eur().prefix(), eur().suffix()),
        ("€".into(), String::new())
    );
    assert_eq!(credits().suffix(), " credits");
}
