//! The unit money is shown in (issue 15, item 5): for dollars, a currency
//! at a rate, rates that round half up, credits and credits at an absurd
//! rate, the overview, the events page, the team page, the CSV export, the
//! read API and `tokentally report --json` (the real binary, with the unit
//! from flags, the environment or the config file) show the same amounts,
//! checked against an oracle computed here from the stored USD micro-units
//! and the rate. Switching the unit leaves every stored event as it was.

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

use crate::common::server::run_cli;
use crate::common::{PASSWORD, TestApp, TestResponse};

/// The calls: id, model, user, reported cost in USD (None: unpriced).
/// Costs from one micro-unit to the per-event maximum, a sub-cent one,
/// and each on a model of its own, so each is a chart series.
const CALLS: [(&str, &str, &str, Option<&str>); 7] = [
    ("u1", "model-a", "ada", Some("0.000001")),
    ("u2", "model-b", "root", Some("0.000005")),
    ("u3", "model-c", "ada", Some("0.004999")),
    ("u4", "model-d", "root", Some("1.234567")),
    ("u5", "model-e", "ada", Some("12.345678")),
    ("u6", "model-f", "root", Some("999.999999")),
    ("u7", "no-such-model-for-unit-tests", "ada", None),
];

mod oracle;

use oracle::{Case, cases, convert, micros, oracle_decimal, oracle_money};

const RANGE: &str = "range=custom&from=2026-06-10&to=2026-06-11";

// --- The fixture. ---

struct Fixture {
    app: TestApp,
    read: String,
    cookie: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let ingest = app.create_token("root", TokenScope::Ingest).await;
    let read = app.create_token("root", TokenScope::Read).await;
    let events: Vec<Value> = CALLS
        .iter()
        .enumerate()
        .map(|(i, (id, model, user, cost))| {
            json!({"id": id, "timestamp": format!("2026-06-10T1{i}:00:00Z"), "model": model,
                   "user": user, "input_tokens": 100 + i, "output_tokens": 10, "cost": cost})
        })
        .collect();
    let body = serde_json::to_vec(&events).expect("json");
    let stored = app
        .post_bytes(
            "/api/v1/events",
            Some(&ingest),
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    let cookie = app.login("root", PASSWORD).await;
    Fixture { app, read, cookie }
}

async fn read(f: &Fixture, path: &str) -> TestResponse {
    let response = f
        .app
        .request(
            axum::http::Request::get(path)
                .header("authorization", format!("Bearer {}", f.read))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{path}: {}", response.body);
    response
}

async fn page(f: &Fixture, path: &str) -> String {
    let response = f.app.get(path, Some(&f.cookie)).await;
    assert_eq!(response.status, StatusCode::OK, "{path}: {}", response.body);
    response.body
}

/// Every stored event, every column, as SQLite holds it.
async fn stored_events(app: &TestApp) -> Vec<Vec<String>> {
    app.state
        .db
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT * FROM events ORDER BY rowid")?;
            let columns = stmt.column_count();
            let rows = stmt
                .query_map([], |row| {
                    (0..columns)
                        .map(|i| {
                            row.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, tokentally::db::DbError>(rows)
        })
        .await
        .expect("events")
}

fn cost_of(user: &str) -> i64 {
    CALLS
        .iter()
        .filter(|call| call.2 == user)
        .filter_map(|call| call.3.map(micros))
        .sum()
}

fn total() -> i64 {
    cost_of("ada") + cost_of("root")
}

#[tokio::test]
async fn every_page_export_api_and_report_shows_the_same_converted_amounts() {
    let mut f = fixture().await;
    let before = stored_events(&f.app).await;
    assert_eq!(before.len(), CALLS.len());
    for case in cases() {
        f.app.state.unit = std::sync::Arc::new(case.unit.clone());
        f.app.rebuild_router();
        let what = case.what;
        check_api(&f, &case).await;
        check_csv(&f, &case).await;
        check_pages(&f, &case).await;
        check_report(&f, &case);
        assert_eq!(
            stored_events(&f.app).await,
            before,
            "{what}: events changed"
        );
    }
    f.app.assert_rollups_exact().await;
}

async fn check_api(f: &Fixture, case: &Case) {
    let what = case.what;
    let usage = read(f, &format!("/api/v1/usage?{RANGE}&group_by=user"))
        .await
        .json();
    assert_eq!(usage["unit"], case.json, "{what}");
    let totals = &usage["totals"];
    assert_eq!(
        totals["cost"],
        json!(oracle_decimal(total(), "1")),
        "{what}: cost stays USD"
    );
    assert_eq!(
        totals["cost_in_unit"],
        json!(oracle_decimal(total(), case.rate)),
        "{what}"
    );
    for row in usage["rows"].as_array().expect("rows") {
        let user = row["group"].as_str().expect("group");
        assert_eq!(
            row["cost_in_unit"],
            json!(oracle_decimal(cost_of(user), case.rate)),
            "{what}: {user}"
        );
    }

    let events = read(f, &format!("/api/v1/events?{RANGE}&limit=100"))
        .await
        .json();
    assert_eq!(events["unit"], case.json, "{what}");
    let rows = events["events"].as_array().expect("events");
    assert_eq!(rows.len(), CALLS.len());
    for row in rows {
        let call = CALLS
            .iter()
            .find(|c| row["id"] == c.0)
            .expect("a known call");
        match call.3 {
            Some(cost) => {
                assert_eq!(row["cost"], json!(cost), "{what}: USD as stored");
                assert_eq!(
                    row["cost_in_unit"],
                    json!(oracle_decimal(micros(cost), case.rate)),
                    "{what}: {}",
                    call.0
                );
            }
            None => {
                assert_eq!(row["cost"], Value::Null, "{what}");
                assert_eq!(row["cost_in_unit"], Value::Null, "{what}");
            }
        }
    }
}

async fn check_csv(f: &Fixture, case: &Case) {
    let what = case.what;
    let csv = read(f, &format!("/api/v1/events.csv?{RANGE}")).await.body;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let mut expected: Vec<&str> = tokentally::usage::EVENT_FIELDS.to_vec();
    // Then (issue 15) the price fields, the origin and the computed cost.
    expected.extend([
        "cost_in_unit",
        "unit",
        "cache_write_1h_tokens",
        "web_search_requests",
        "cost_origin",
        "computed_cost",
    ]);
    assert_eq!(
        header, expected,
        "{what}: the event fields first, unrenamed"
    );
    let mut seen = 0;
    for record in reader.records() {
        let record = record.expect("record");
        let field =
            |name: &str| record[header.iter().position(|h| h == name).expect("column")].to_owned();
        let call = CALLS
            .iter()
            .find(|c| field("id") == c.0)
            .expect("a known call");
        assert_eq!(field("unit"), case.unit.name(), "{what}");
        match call.3 {
            Some(cost) => {
                assert_eq!(
                    field("cost"),
                    oracle_decimal(micros(cost), "1"),
                    "{what}: USD as stored"
                );
                assert_eq!(
                    field("cost_in_unit"),
                    oracle_decimal(micros(cost), case.rate),
                    "{what}"
                );
            }
            None => assert_eq!(
                (field("cost"), field("cost_in_unit")),
                (String::new(), String::new())
            ),
        }
        seen += 1;
    }
    assert_eq!(seen, CALLS.len(), "{what}");
}

async fn check_pages(f: &Fixture, case: &Case) {
    let what = case.what;
    let money = |usd| oracle_money(usd, case);

    let overview = page(f, &format!("/?{RANGE}&metric=cost")).await;
    assert!(
        overview.contains(&format!("<dd>{}</dd>", money(total()))),
        "{what}: {}",
        money(total())
    );
    // The chart draws in the unit (saturating at the ends of i64) and
    // labels its axis with the unit's affixes.
    let data = chart_data(&overview, "usage-chart");
    assert_eq!(
        data["money"],
        json!({"prefix": case.prefix, "suffix": case.suffix}),
        "{what}"
    );
    for series in data["series"].as_array().expect("series") {
        let Some(call) = CALLS.iter().find(|c| series["name"] == c.1) else {
            continue;
        };
        let usd = call.3.map_or(0, micros);
        let drawn = i64::try_from(convert(usd, case.rate, 6)).unwrap_or(i64::MAX);
        assert_eq!(series["values"], json!([drawn]), "{what}: {}", call.1);
    }
    for call in &CALLS[..6] {
        let text = money(micros(call.3.expect("priced")));
        assert!(
            overview.contains(&format!(">{text}<")),
            "{what}: top models: {text}"
        );
    }

    let events = page(f, &format!("/events?{RANGE}")).await;
    for call in &CALLS {
        match call.3 {
            Some(cost) => {
                let text = money(micros(cost));
                assert!(
                    events.contains(&format!(">{text}<")),
                    "{what}: events: {text}"
                );
            }
            None => assert!(events.contains("unpriced")),
        }
    }
    assert!(events.contains(&money(total())), "{what}: the page's sum");

    let team = page(f, &format!("/team?{RANGE}")).await;
    for user in ["ada", "root"] {
        let text = money(cost_of(user));
        assert!(team.contains(&text), "{what}: team page, {user}: {text}");
    }
}

/// The JSON block a chart is drawn from.
fn chart_data(page: &str, id: &str) -> Value {
    let start = format!("<script type=\"application/json\" id=\"{id}-data\">");
    let from = page.find(&start).expect("the chart's data") + start.len();
    let to = from + page[from..].find("</script>").expect("its end");
    serde_json::from_str(&page[from..to]).expect("chart JSON")
}

fn check_report(f: &Fixture, case: &Case) {
    let what = case.what;
    let data = f.app.dir.path().to_str().expect("utf-8 path").to_owned();
    let config = case.config.map(|text| {
        let path = f.app.dir.path().join("unit.toml");
        std::fs::write(&path, text).expect("config");
        path.to_str().expect("utf-8").to_owned()
    });
    let mut args = vec!["--data-dir", &data];
    if let Some(config) = &config {
        args.extend(["--config", config.as_str()]);
    }
    args.extend([
        "report",
        "--from",
        "2026-06-10",
        "--to",
        "2026-06-11",
        "--tz",
        "UTC",
        "--group-by",
        "user",
    ]);
    args.extend(case.args);
    let mut json_args = args.clone();
    json_args.push("--json");
    let (ok, out, err) = run_cli(&json_args, case.env, None);
    assert!(ok, "{what}: {err}");
    let report: Value = serde_json::from_str(&out).expect("report JSON");
    assert_eq!(report["unit"], case.json, "{what}");
    assert_eq!(
        report["totals"]["cost"],
        json!(oracle_decimal(total(), "1")),
        "{what}"
    );
    assert_eq!(
        report["totals"]["cost_in_unit"],
        json!(oracle_decimal(total(), case.rate)),
        "{what}"
    );
    for row in report["rows"].as_array().expect("rows") {
        let user = row["group"].as_str().expect("group");
        assert_eq!(
            row["cost_in_unit"],
            json!(oracle_decimal(cost_of(user), case.rate)),
            "{what}: {user}"
        );
    }
    // The table names its unit and shows the converted total.
    let (ok, table, err) = run_cli(&args, case.env, None);
    assert!(ok, "{what}: {err}");
    assert!(
        table.contains(&format!("COST ({})", case.unit.name())),
        "{what}: {table}"
    );
    assert!(
        table.contains(&oracle_decimal(total(), case.rate)),
        "{what}: {table}"
    );
}
