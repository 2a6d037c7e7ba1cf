//! The unit's settings through the real binary (bad ones refused at start,
//! naming the setting; a good one in the API of a real server), prices
//! entered in US dollars whatever the unit, and an export in another unit
//! that imports back to the same stored dollars.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::model::Unit;
use tokentally::model::unit::Rate;

use crate::common::server::{BINARY, Server, agent, run_cli};
use crate::common::{PASSWORD, TestApp};

/// Runs `serve` with `args`, `env` and an optional config file; it must
/// stop by itself (a refused setting) within the time: returns its exit
/// status and standard error. A server that starts instead is killed and
/// the test fails.
fn serve_refused(args: &[&str], env: &[(&str, &str)], config: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let mut command = Command::new(BINARY);
    if let Some(text) = config {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("config");
        command.arg("--config").arg(path);
    }
    command
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("TOKENTALLY_CONFIG")
        .env_remove("TOKENTALLY_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {args:?} {env:?} {config:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    assert!(!output.status.success(), "{args:?}: exited 0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");
    // Refused before anything was made: no database.
    assert!(!dir.path().join("tokentally.db").exists(), "{args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Flags, environment, config file, and what the refusal must say.
type RefusedCase = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
    &'static str,
);

#[test]
fn bad_unit_settings_stop_serve_naming_the_setting() {
    let cases: [RefusedCase; 10] = [
        (
            &["--currency", "eur", "--usd-rate", "0.9"],
            &[],
            None,
            "invalid setting currency (--currency / TOKENTALLY_CURRENCY",
        ),
        (
            &["--currency", "EURO", "--usd-rate", "0.9"],
            &[],
            None,
            "ISO 4217",
        ),
        (
            &[],
            &[("TOKENTALLY_CURRENCY", "EUR")],
            None,
            "invalid setting usd_rate",
        ),
        (
            &[],
            &[],
            Some("currency = \"EUR\"\nusd_rate = 0.92\n"),
            "usd_rate = \"0.92\"",
        ),
        (
            &["--currency", "EUR", "--usd-rate=-0.92"],
            &[],
            None,
            "positive decimal",
        ),
        (
            &["--currency", "EUR", "--usd-rate", "0.0000000001"],
            &[],
            None,
            "at most 9 decimals",
        ),
        (
            &[
                "--currency",
                "EUR",
                "--usd-rate",
                "1",
                "--currency-symbol",
                "\u{202E}€",
            ],
            &[],
            None,
            "invalid setting currency_symbol",
        ),
        (
            &["--unit", "credits"],
            &[],
            None,
            "invalid setting credits_per_usd",
        ),
        (
            &[],
            &[
                ("TOKENTALLY_UNIT", "credits"),
                ("TOKENTALLY_CREDITS_PER_USD", "0"),
            ],
            None,
            "greater than 0",
        ),
        (
            &[],
            &[],
            Some("unit = \"credits\"\ncredits_per_usd = \"12345678901234567890\"\n"),
            "at most 18 digits",
        ),
    ];
    for (args, env, config, named) in cases {
        let error = serve_refused(args, env, config);
        assert!(
            error.contains(named),
            "{args:?} {env:?} {config:?}: {error}"
        );
    }
}

#[test]
fn a_real_server_answers_in_its_unit() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8");
    let (ok, _, err) = run_cli(
        &[
            "--data-dir",
            data,
            "user",
            "add",
            "ada",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    let (ok, token, err) = run_cli(
        &[
            "--data-dir",
            data,
            "token",
            "create",
            "--user",
            "ada",
            "--scope",
            "read",
        ],
        &[],
        None,
    );
    assert!(ok, "{err}");
    let server = Server::start(dir.path(), &["--currency", "EUR", "--usd-rate", "0.92"]);
    server.wait_ready();
    let mut response = agent()
        .get(&server.url("/api/v1/usage"))
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .expect("usage");
    assert_eq!(response.status(), 200);
    let text = response.body_mut().read_to_string().expect("body");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        body["unit"],
        json!({"kind": "currency", "code": "EUR", "name": "EUR", "symbol": "€", "usd_rate": "0.92"})
    );
    assert_eq!(body["totals"]["cost_in_unit"], "0.000000");
    let (status, _) = server.terminate();
    assert!(status.success());
}

fn eur() -> Unit {
    Unit::currency("EUR", None, Some(Rate::parse("0.92").expect("rate"))).expect("EUR")
}

#[tokio::test]
async fn prices_are_entered_in_dollars_whatever_the_unit() {
    let app = TestApp::with_options(|options| options.unit = eur()).await;
    app.create_user("root", Role::Admin).await;
    let browser = app.login_browser("root", PASSWORD).await;
    let prices = app.get("/admin/prices", Some(&browser.cookie)).await;
    assert_eq!(prices.status, StatusCode::OK);
    assert!(prices.body.contains("in US dollars"), "{}", prices.body);
    assert!(
        prices.body.contains("Enter prices in US dollars. Costs are shown in EUR (€) at 0.92 per US dollar: a price of 1.00 here is €0.92 per million tokens"),
        "{}",
        prices.body
    );
    let saved = app
        .submit(
            "/admin/prices",
            &browser,
            &[("model", "unit-model"), ("input", "1.5"), ("output", "3")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = app
        .state
        .db
        .read(tokentally::usage::reprice::list)
        .await
        .expect("prices");
    let price = stored
        .iter()
        .find(|p| p.model == "unit-model")
        .expect("the price");
    assert_eq!(
        price.per_mtok,
        [1_500_000, 3_000_000, 0, 0],
        "kept as typed, in USD"
    );

    // An event it prices: 1M input and 1M output tokens are $4.50, shown
    // as €4.14 (4.5 × 0.92) and stored as $4.50.
    let ingest = app.create_token("root", TokenScope::Ingest).await;
    let event = json!([{"id": "p1", "timestamp": "2026-06-10T10:00:00Z", "model": "unit-model",
                        "input_tokens": 1_000_000, "output_tokens": 1_000_000}]);
    let stored = app
        .post_bytes(
            "/api/v1/events",
            Some(&ingest),
            &[("content-type", "application/json")],
            event.to_string().into_bytes(),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    let events = app
        .get(
            "/events?range=custom&from=2026-06-10&to=2026-06-11",
            Some(&browser.cookie),
        )
        .await;
    assert!(events.body.contains(">€4.14<"), "{}", events.body);
    let cost: i64 = app
        .state
        .db
        .read(|conn| {
            conn.query_row("SELECT cost_micros FROM events", [], |r| r.get(0))
                .map_err(tokentally::db::DbError::from)
        })
        .await
        .expect("cost");
    assert_eq!(cost, 4_500_000);
    // Without another unit the page says nothing more.
    let plain = TestApp::new().await;
    plain.create_user("root", Role::Admin).await;
    let cookie = plain.login("root", PASSWORD).await;
    let page = plain.get("/admin/prices", Some(&cookie)).await;
    assert!(
        !page.body.contains("Enter prices in US dollars."),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn an_export_in_another_unit_imports_back_to_the_same_dollars() {
    let app = TestApp::with_options(|options| {
        options.unit =
            Unit::credits(Rate::parse("100").expect("rate"), None, None).expect("credits")
    })
    .await;
    app.create_user("root", Role::Admin).await;
    let ingest = app.create_token("root", TokenScope::Ingest).await;
    let read = app.create_token("root", TokenScope::Read).await;
    let events = json!([
        {"id": "x1", "timestamp": "2026-06-10T10:00:00Z", "model": "m", "input_tokens": 5, "cost": "0.123457"},
        {"id": "x2", "timestamp": "2026-06-10T11:00:00Z", "model": "m", "input_tokens": 7, "cost": "2.5"}
    ]);
    let stored = app
        .post_bytes(
            "/api/v1/events",
            Some(&ingest),
            &[("content-type", "application/json")],
            events.to_string().into_bytes(),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    let export = app
        .request(
            axum::http::Request::get(
                "/api/v1/events.csv?range=custom&from=2026-06-10&to=2026-06-11",
            )
            .header("authorization", format!("Bearer {read}"))
            .body(axum::body::Body::empty())
            .expect("request"),
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(
        export.body.contains(",12.345700,credits"),
        "{}",
        export.body
    );
    assert!(
        export.body.contains(",250.000000,credits"),
        "{}",
        export.body
    );

    let target = tempfile::tempdir().expect("dir");
    let file = target.path().join("export.csv");
    std::fs::write(&file, &export.body).expect("write");
    let data = target.path().to_str().expect("utf-8");
    let (ok, _, err) = run_cli(
        &[
            "--data-dir",
            data,
            "user",
            "add",
            "root",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    let file = file.to_str().expect("utf-8");
    let (ok, out, err) = run_cli(
        &[
            "--data-dir",
            data,
            "import",
            file,
            "--user",
            "root",
            "--machine",
            "",
        ],
        &[],
        None,
    );
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = run_cli(
        &[
            "--data-dir",
            data,
            "report",
            "--json",
            "--from",
            "2026-06-10",
            "--to",
            "2026-06-11",
            "--tz",
            "UTC",
            "--bucket",
            "month",
        ],
        &[],
        None,
    );
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["totals"]["events"], 2, "{report}");
    assert_eq!(
        report["totals"]["cost"], "2.623457",
        "the dollars exported, not the credits"
    );
}

#[tokio::test]
async fn identities_show_their_cost_in_the_unit_on_the_page_and_in_the_list() {
    let app = TestApp::with_options(|options| options.unit = eur()).await;
    let root = app.create_user("root", Role::Admin).await;
    // 30 events of 25,000 micro-dollars: $0.75, €0.69.
    let events = crate::identity_store::carol_events(root, 30, 25_000);
    app.state
        .db
        .write(move |conn| tokentally::usage::store::Inserter::new(conn)?.insert(conn, &events))
        .await
        .expect("seed");
    let cookie = app.login("root", PASSWORD).await;
    let page = app.get("/admin/identities", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(">€0.69<"), "{}", page.body);

    let data = app.dir.path().to_str().expect("utf-8");
    let (ok, out, err) = run_cli(
        &["--data-dir", data, "identity", "list", "--json"],
        &[
            ("TOKENTALLY_CURRENCY", "EUR"),
            ("TOKENTALLY_USD_RATE", "0.92"),
        ],
        None,
    );
    assert!(ok, "{err}");
    let line: Value =
        serde_json::from_str(out.lines().next().expect("one identity")).expect("JSON");
    assert_eq!(line["cost"], "0.750000", "{line}");
    assert_eq!(line["cost_in_unit"], "0.690000", "{line}");
    assert_eq!(line["unit"]["code"], "EUR", "{line}");
    let (ok, out, err) = run_cli(
        &[
            "--data-dir",
            data,
            "identity",
            "list",
            "--currency",
            "EUR",
            "--usd-rate",
            "0.92",
        ],
        &[],
        None,
    );
    assert!(ok && out.contains("€0.69"), "{out}{err}");
}
