//! The usage commands of the real binary: `demo`, `report`, `verify` and
//! `price`, with the JSON shape that scripts rely on.

use crate::common::server::run_cli;
use serde_json::Value;

const END: &str = "2026-11-01T00:00:00Z";

fn demo(data: &str, seed: &str) {
    let args = [
        "--data-dir",
        data,
        "demo",
        "--events",
        "3000",
        "--seed",
        seed,
        "--users",
        "4",
        "--days",
        "62",
        "--end",
        END,
    ];
    let (ok, out, err) = run_cli(&args, &[], None);
    assert!(ok, "demo failed: {err}");
    assert!(out.contains("wrote 3000 events"), "{out}");
}

fn report(data: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--data-dir",
        data,
        "report",
        "--json",
        "--from",
        "2026-09-01",
        "--to",
        "2026-11-01",
        "--tz",
        "Asia/Kolkata",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = run_cli(&args, &[], None);
    assert!(ok, "report {extra:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

const AMOUNTS: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost",
    "events",
];

/// Sums a report's rows field by field (cost as micro-units).
fn sum_rows(report: &Value) -> Vec<i64> {
    let rows = report["rows"].as_array().expect("rows");
    AMOUNTS
        .iter()
        .map(|field| rows.iter().map(|row| amount(&row[*field])).sum())
        .collect()
}

fn amount(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().expect("integer"),
        Value::String(s) => {
            tokentally::usage::prices::parse_micros(s).unwrap_or_else(|e| panic!("cost: {e}"))
        }
        Value::Null => 0,
        other => panic!("unexpected amount {other}"),
    }
}

fn totals(report: &Value) -> Vec<i64> {
    AMOUNTS
        .iter()
        .map(|f| amount(&report["totals"][*f]))
        .collect()
}

#[test]
fn report_json_has_the_documented_shape_and_adds_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    demo(data, "7");

    let daily = report(data, &["--bucket", "day"]);
    let rows = daily["rows"].as_array().expect("rows");
    assert_eq!(
        rows.len(),
        61,
        "every local day of Sep and Oct, empty ones too"
    );
    assert_eq!(rows[0]["bucket"], "2026-09-01");
    assert_eq!(rows[0]["group"], Value::Null);
    for field in AMOUNTS {
        assert!(rows[0].get(field).is_some(), "{field} missing: {}", rows[0]);
    }
    assert_eq!(sum_rows(&daily), totals(&daily));
    assert!(amount(&daily["totals"]["events"]) > 0);

    // Other buckets and groupings: the same totals, their own labels.
    for (extra, first_bucket) in [
        (&["--bucket", "month"][..], "2026-09"),
        // 2026-09-01 is a Tuesday in ISO week 36 (Monday 31 August).
        (&["--bucket", "week"][..], "2026-W36"),
        (
            &["--bucket", "day", "--group-by", "model"][..],
            "2026-09-01",
        ),
        (&["--bucket", "month", "--group-by", "user"][..], "2026-09"),
    ] {
        let other = report(data, extra);
        assert_eq!(totals(&other), totals(&daily), "{extra:?}");
        assert_eq!(sum_rows(&other), totals(&other), "{extra:?}");
        assert_eq!(other["rows"][0]["bucket"], first_bucket, "{extra:?}");
    }
    let by_model = report(data, &["--group-by", "model"]);
    assert!(by_model["rows"][0]["group"].is_string());

    // A filter narrows the totals.
    let one_user = report(data, &["--user", "user-001"]);
    assert!(amount(&one_user["totals"]["events"]) < amount(&daily["totals"]["events"]));

    // Deterministic for a seed: another database, the same report.
    let again = tempfile::tempdir().expect("tempdir");
    demo(again.path().to_str().expect("utf-8"), "7");
    assert_eq!(
        report(again.path().to_str().expect("utf-8"), &["--bucket", "day"]),
        daily
    );
}

#[test]
fn report_rejects_bad_arguments_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    demo(data, "1");
    for (args, expected) in [
        (&["report", "--tz", "Mars/Olympus"][..], "--tz"),
        (&["report", "--from", "yesterday"][..], "--from"),
        (&["report", "--to", "2026-13-01"][..], "--to"),
    ] {
        let mut full = vec!["--data-dir", data];
        full.extend_from_slice(args);
        let (ok, _, err) = run_cli(&full, &[], None);
        assert!(!ok, "{args:?} was accepted");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn verify_passes_then_names_a_tampered_rollup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    demo(data, "3");
    let (ok, out, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(ok, "{err}");
    assert!(out.contains("3000 raw events"), "{out}");

    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let tampered = conn
        .execute(
            "UPDATE rollup_day SET input_tokens = input_tokens + 1
             WHERE cuboid = 0 AND day = (SELECT MIN(day) FROM rollup_day WHERE cuboid = 0)",
            [],
        )
        .expect("tamper");
    assert_eq!(tampered, 1);
    drop(conn);
    let (ok, _, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(!ok, "verify passed a tampered rollup");
    assert!(err.contains("rollup_day"), "{err}");
}

#[test]
fn price_commands_set_list_and_remove_with_repricing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    demo(data, "5");
    let cli = |args: &[&str]| {
        let mut full = vec!["--data-dir", data, "price"];
        full.extend_from_slice(args);
        run_cli(&full, &[], None)
    };
    let unpriced = |report: &Value| report["totals"]["unpriced_events"].as_i64().expect("n");
    let before = report(data, &[]);
    assert!(unpriced(&before) > 0, "the workload has an unpriced model");

    let (ok, _, err) = cli(&["set", "x", "--input", "abc", "--output", "1"]);
    assert!(!ok && err.contains("--input"), "{err}");
    let (ok, _, err) = cli(&[
        "set", "x", "--input", "1", "--output", "1", "--from", "soon",
    ]);
    assert!(!ok && err.contains("--from"), "{err}");

    let (ok, list, err) = cli(&["list"]);
    assert!(ok, "{err}");
    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let unpriced_model: String = conn
        .query_row(
            "SELECT m.name FROM events e JOIN models m ON m.id = e.model_id
             WHERE e.cost_origin = 0 LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("an unpriced model");
    drop(conn);
    // No price of the admin's names it (the table comes first), and the
    // models of events say it is unpriced.
    let admin_prices = |list: &str| list.split("\ncatalogue:").next().unwrap_or("").to_owned();
    assert!(!admin_prices(&list).contains(&unpriced_model), "{list}");
    let unpriced_line = |list: &str| {
        let models = list.split("models of stored events").nth(1).unwrap_or("");
        models
            .lines()
            .find(|l| l.starts_with(&format!("{unpriced_model} ")))
            .map(str::to_owned)
    };
    assert!(
        unpriced_line(&list).is_some_and(|l| l.contains("unpriced")),
        "{list}"
    );

    let (ok, out, err) = cli(&["set", &unpriced_model, "--input", "0.5", "--output", "2.25"]);
    assert!(ok, "{err}");
    assert!(out.contains("re-priced"), "{out}");
    let (_, list, _) = cli(&["list"]);
    assert!(
        admin_prices(&list).contains(&unpriced_model) && list.contains("2.250000"),
        "{list}"
    );
    assert!(
        unpriced_line(&list).is_some_and(|l| l.contains(" admin ")),
        "{list}"
    );
    let priced = report(data, &[]);
    assert_eq!(unpriced(&priced), 0);
    assert!(amount(&priced["totals"]["cost"]) > amount(&before["totals"]["cost"]));
    assert_eq!(priced["totals"]["events"], before["totals"]["events"]);
    let (ok, _, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(ok, "{err}");

    let (ok, _, _) = cli(&["remove", &unpriced_model]);
    assert!(ok);
    assert_eq!(
        report(data, &[]),
        before,
        "removing the price restores the report"
    );
    let (ok, _, err) = cli(&["remove", &unpriced_model]);
    assert!(!ok && err.contains("no price"), "{err}");
}

/// `tokentally report --json` and `GET /api/v1/usage` give the same rows
/// and totals for the same question: one shape, one query layer.
#[tokio::test]
async fn the_report_is_the_read_api_series() {
    use crate::common::{PASSWORD, TestApp};
    use tokentally::auth::Role;
    use tokentally::auth::tokens::TokenScope;
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let token = app.create_token("root", TokenScope::Ingest).await;
    const MODELS: [&str; 3] = ["house-large", "house-small", "claude-sonnet-4-5"];
    let events: Vec<Value> = (0..40)
        .map(|i| {
            serde_json::json!({
                "id": format!("r{i}"),
                "timestamp": format!("2026-06-{:02}T{:02}:30:00Z", 1 + i % 12, (i * 5) % 24),
                "model": MODELS[i % 3],
                "activity": if i % 2 == 0 { "chat" } else { "review" },
                "input_tokens": 100 + i, "output_tokens": 7 * i,
                "cost": if i % 4 == 0 { Value::from("0.010000") } else { Value::Null },
            })
        })
        .collect();
    let sent = app
        .post_bytes(
            "/api/v1/events",
            Some(&token),
            &[("content-type", "application/json")],
            Value::Array(events).to_string().into_bytes(),
        )
        .await;
    assert_eq!(sent.status.as_u16(), 200, "{}", sent.body);
    let cookie = app.login("root", PASSWORD).await;
    let data = app.dir.path().to_str().expect("utf-8 path").to_owned();
    for (query, flags) in [
        (
            "from=2026-06-01&to=2026-06-13&tz=Asia/Kolkata",
            vec![
                "--from",
                "2026-06-01",
                "--to",
                "2026-06-13",
                "--tz",
                "Asia/Kolkata",
            ],
        ),
        (
            "from=2026-06-01&to=2026-06-13&tz=America/New_York&bucket=week&group_by=model",
            vec![
                "--from",
                "2026-06-01",
                "--to",
                "2026-06-13",
                "--tz",
                "America/New_York",
                "--bucket",
                "week",
                "--group-by",
                "model",
            ],
        ),
    ] {
        let api = app
            .get(&format!("/api/v1/usage?{query}"), Some(&cookie))
            .await;
        assert_eq!(api.status.as_u16(), 200, "{}", api.body);
        let api = api.json();
        let mut args = vec!["--data-dir", data.as_str(), "report", "--json"];
        args.extend(flags);
        let (ok, out, err) = run_cli(&args, &[], None);
        assert!(ok, "report failed: {err}");
        let cli: Value = serde_json::from_str(&out).expect("JSON");
        assert!(!api["rows"].as_array().expect("rows").is_empty());
        assert_eq!(cli["rows"], api["rows"], "{query}");
        assert_eq!(cli["totals"], api["totals"], "{query}");
    }
}
