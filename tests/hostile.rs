//! A corpus of malformed and hostile requests over the real router: each
//! gets a clear 4xx, none writes anything, nothing is reflected unescaped
//! into a page. Names that carry SQL or HTML are valid data: they are
//! stored as given (parameters, never SQL text) and always shown escaped.

mod common;

use axum::http::StatusCode;
use common::{PASSWORD, TestApp, TestResponse};
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

const XSS: &str = "<script>alert(1)</script>";

struct Fixture {
    app: TestApp,
    token: String,
    cookie: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let token = app.create_token("root", TokenScope::Ingest).await;
    let cookie = app.login("root", PASSWORD).await;
    Fixture { app, token, cookie }
}

fn event() -> serde_json::Value {
    json!({"id": "h1", "timestamp": "2026-06-10T10:00:00Z", "model": "m",
           "input_tokens": 10, "output_tokens": 1})
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut event = event();
    event[field] = value;
    json!([event]).to_string().into_bytes()
}

async fn post(f: &Fixture, path: &str, content_type: &str, body: Vec<u8>) -> TestResponse {
    f.app
        .post_bytes(
            path,
            Some(&f.token),
            &[("content-type", content_type)],
            body,
        )
        .await
}

async fn events_stored(f: &Fixture) -> i64 {
    f.app.stored_by_user().await.iter().map(|(_, n, _)| n).sum()
}

#[tokio::test]
async fn malformed_events_get_a_4xx_naming_the_problem_and_write_nothing() {
    let f = fixture().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("huge number", "application/json", with("input_tokens", json!(1e30)), 422, "input_tokens"),
        ("number past i64", "application/json", br#"[{"id":"h1","timestamp":"2026-06-10T10:00:00Z","model":"m","input_tokens":99999999999999999999999,"output_tokens":1}]"#.to_vec(), 422, "input_tokens"),
        ("negative tokens", "application/json", with("output_tokens", json!(-5)), 422, "output_tokens"),
        ("fractional tokens", "application/json", with("input_tokens", json!(1.5)), 422, "input_tokens"),
        ("far-future timestamp", "application/json", with("timestamp", json!("2099-01-01T00:00:00Z")), 422, "timestamp"),
        ("year zero", "application/json", with("timestamp", json!("0000-01-01T00:00:00Z")), 422, "timestamp"),
        ("timestamp not a time", "application/json", with("timestamp", json!(XSS)), 422, "timestamp"),
        ("negative cost", "application/json", with("cost", json!("-1")), 422, "cost"),
        ("cost not a number", "application/json", with("cost", json!("1e999")), 422, "cost"),
        ("control characters", "application/json", with("model", json!("m\u{0}\u{7}")), 422, "model"),
        ("very long name", "application/json", with("project", json!("p".repeat(10_000))), 422, "project"),
        ("wrong type", "application/json", with("model", json!({"nested": [1, 2]})), 422, "model"),
        ("unknown field", "application/json", with("__proto__", json!(1)), 422, "__proto__"),
        ("invalid UTF-8", "application/json", b"[{\"id\":\"\xff\xfe\"}]".to_vec(), 400, "not valid JSON"),
        ("deeply nested JSON", "application/json", deep.into_bytes(), 400, "JSON"),
        ("not JSON at all", "application/json", b"DROP TABLE events;".to_vec(), 400, "JSON"),
        ("NDJSON with a bad line", "application/x-ndjson", b"{\"id\":\"a\"}\n{oops\n".to_vec(), 422, "line"),
        ("wrong media type", "text/html", format!("<html>{XSS}</html>").into_bytes(), 415, "Content-Type"),
        ("empty array", "application/json", b"[]".to_vec(), 400, "no events"),
    ];
    for (what, content_type, body, status, mention) in cases {
        let response = post(&f, "/api/v1/events", content_type, body).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{what}: {}",
            response.body
        );
        assert!(
            response.body.contains(mention),
            "{what}: {mention:?} not in {}",
            response.body
        );
        // A JSON answer may quote what was sent; it is never a page.
        assert_eq!(
            response.headers["content-type"], "application/json",
            "{what}"
        );
        assert_eq!(
            response.headers["x-content-type-options"], "nosniff",
            "{what}"
        );
        assert_eq!(events_stored(&f).await, 0, "{what} wrote something");
    }
    // OTLP and LiteLLM: garbage in, 4xx out.
    for (path, content_type, body) in [
        (
            "/v1/metrics",
            "application/x-protobuf",
            vec![0xff, 0xff, 0xff, 0x0f, 0x01],
        ),
        (
            "/v1/traces",
            "application/json",
            b"{\"resourceSpans\": 5}".to_vec(),
        ),
        (
            "/v1/logs",
            "application/x-protobuf",
            b"\x0a\xff\xff\xff\xff\x0f".to_vec(),
        ),
        (
            "/api/v1/ingest/litellm",
            "application/json",
            b"{\"id\": [".to_vec(),
        ),
    ] {
        let response = post(&f, path, content_type, body).await;
        assert!(
            response.status.is_client_error(),
            "{path}: {}",
            response.status
        );
        assert_eq!(events_stored(&f).await, 0, "{path} wrote something");
    }
    f.app.assert_rollups_exact().await;
}

#[tokio::test]
async fn sql_and_html_in_names_are_stored_as_data_and_shown_escaped() {
    let f = fixture().await;
    let names = [
        "x'); DROP TABLE events;--",
        XSS,
        "\" onmouseover=\"alert(1)",
        "</td></tr><img src=x onerror=alert(1)>",
    ];
    let events: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"id": format!("{name}-{i}"), "timestamp": "2026-06-10T10:00:00Z", "model": name,
                   "activity": name, "project": name, "provider": name,
                   "input_tokens": 10, "output_tokens": 1})
        })
        .collect();
    let response = post(
        &f,
        "/api/v1/events",
        "application/json",
        serde_json::Value::Array(events).to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(
        events_stored(&f).await,
        4,
        "the table is still there, with all four"
    );
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    for path in [
        format!("/?{range}"),
        format!("/?{range}&split=activity"),
        format!("/events?{range}"),
        format!("/events?{range}&model={}", common::form_encode(XSS)),
        format!("/team?{range}"),
        format!("/admin/audit?actor={}", common::form_encode(XSS)),
    ] {
        let page = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for raw in ["<script>alert", "<img src=x", "\" onmouseover=\""] {
            assert!(!page.body.contains(raw), "{path} shows {raw:?} unescaped");
        }
    }
    // The chart's JSON data block cannot be closed from inside.
    let overview = f.app.get(&format!("/?{range}"), Some(&f.cookie)).await;
    let data = overview
        .body
        .split("id=\"usage-chart-data\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the chart's data block");
    assert!(
        !data.contains('<') && data.contains("\\u003cscript"),
        "{data}"
    );
}

#[tokio::test]
async fn hostile_urls_and_parameters_get_a_clear_4xx() {
    let f = fixture().await;
    let cases = [
        ("/assets/../Cargo.toml", 404),
        ("/assets/..%2f..%2fCargo.toml", 404),
        ("/assets/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/assets/app.css%00.png", 404),
        ("/events?sort=input_tokens;DROP%20TABLE%20events", 400),
        ("/events?limit=-1", 400),
        ("/events?after=n1.1'%20OR%201=1", 400),
        ("/?from=%3Cscript%3Ealert(1)%3C/script%3E&range=custom", 400),
        ("/?zone=../../etc/passwd", 400),
        (
            "/?bucket=hour&range=custom&from=1900-01-01&to=2100-01-01",
            400,
        ),
        ("/api/v1/usage?group_by=%3Cb%3E", 400),
        ("/api/v1/usage?view=nobody-at-all", 400),
    ];
    for (path, status) in cases {
        let response = f.app.get(path, Some(&f.cookie)).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{path}: {}",
            response.body
        );
        assert!(
            !response.body.contains("<script>"),
            "{path} reflected a script"
        );
    }
    // (Header size limits are the listener's: tests/edge.rs.)
}

// ---------------------------------------------------------------------------
// Many series: an ingest token can create tens of thousands of distinct
// models, activities or projects. Pages and the API keep the largest
// series and sum the rest as one "Other", so their size stays bounded and
// their totals stay exact.

use tokentally::auth::UserId;
use tokentally::db::DbError;
use tokentally::usage::Totals;
use tokentally::usage::store::{Inserter, NewEvent};

/// Distinct models and activities written (`TOKENTALLY_MANY_SERIES`
/// overrides it for an ad-hoc measurement).
fn many_series_count() -> usize {
    std::env::var("TOKENTALLY_MANY_SERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000)
}

/// Members besides root, for the team page.
const MANY_USERS: usize = 300;
/// Models (and activities) far larger than the rest, in that order.
const HEAVY: usize = 10;
const MANY_RANGE: &str = "range=custom&from=2026-05-17&to=2026-06-16";

/// Writes the many-series data straight through the store (a write-side
/// budget on new names cannot get in the way); returns the exact totals.
async fn many_series(f: &Fixture, count: usize) -> Totals {
    let users = f
        .app
        .state
        .db
        .write(|conn| {
            let mut ids = Vec::new();
            for i in 0..MANY_USERS {
                conn.execute(
                    "INSERT INTO users (username, role, created_at, updated_at)
                     VALUES (?1, 'member', 0, 0)",
                    [format!("member-{i:04}")],
                )?;
                ids.push(UserId(conn.last_insert_rowid()));
            }
            let root: i64 =
                conn.query_row("SELECT id FROM users WHERE username = 'root'", [], |r| {
                    r.get(0)
                })?;
            ids.push(UserId(root));
            Ok::<_, DbError>(ids)
        })
        .await
        .expect("users");
    let day_ms = 86_400_000;
    let start = "2026-05-17T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .expect("ts")
        .as_millisecond();
    let mut events = Vec::new();
    let mut exact = Totals::default();
    for i in 0..2 * count + 50 * HEAVY {
        let (model, activity, input) = if i < 50 * HEAVY {
            let heavy = i % HEAVY;
            (
                format!("heavy-model-{heavy}"),
                format!("heavy-activity-{heavy}"),
                1_000_000 * (HEAVY - heavy) as i64,
            )
        } else {
            let j = i - 50 * HEAVY;
            (
                format!("model-{:05}", j % count),
                format!("activity-{:05}", (j * 7) % count),
                1 + (j % 97) as i64 * 13,
            )
        };
        let tokens = [input, (i % 11) as i64, (i % 5) as i64, 0];
        let cost = (i % 1000) as i64;
        exact.add(&Totals {
            calls: 1,
            input_tokens: tokens[0],
            output_tokens: tokens[1],
            cache_read_tokens: tokens[2],
            cache_write_tokens: tokens[3],
            cost_micros: cost,
            unpriced_calls: 0,
        });
        events.push(NewEvent {
            ts_ms: start + (i as i64 * 7_777_777) % (29 * day_ms),
            user: users[i % users.len()],
            source: "api".to_owned(),
            external_id: format!("many-{i}"),
            model,
            provider: None,
            activity: Some(activity),
            project: Some(format!("project-{}", i % count)),
            tokens,
            reported_cost_micros: Some(cost),
        });
    }
    f.app
        .state
        .db
        .write(move |conn| Inserter::new(conn)?.insert(conn, &events))
        .await
        .expect("insert");
    exact
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let rest = text
        .split_once(start)
        .unwrap_or_else(|| panic!("{start:?} not in the page"))
        .1;
    rest.split_once(end).map_or(rest, |(inside, _)| inside)
}

/// The chart's series names and the sum of all its values.
fn chart_data(body: &str, id: &str) -> (Vec<String>, i64) {
    let json = between(body, &format!("id=\"{id}-data\">"), "</script>");
    let data: serde_json::Value = serde_json::from_str(json).expect("the chart's data is JSON");
    let series = data["series"].as_array().expect("series");
    let names = series
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    let sum = series
        .iter()
        .flat_map(|s| s["values"].as_array().expect("values"))
        .map(|v| v.as_i64().expect("integer"))
        .sum();
    (names, sum)
}

fn amounts(value: &serde_json::Value) -> (i64, i64, i64) {
    let int = |name: &str| value[name].as_i64().unwrap_or_else(|| panic!("{name}"));
    let tokens = int("input_tokens")
        + int("output_tokens")
        + int("cache_read_tokens")
        + int("cache_write_tokens");
    let cost = value["cost"]
        .as_str()
        .map(|c| (c.parse::<f64>().expect("decimal") * 1e6).round() as i64)
        .unwrap_or(0);
    (int("events"), tokens, cost)
}

#[tokio::test]
async fn many_series_degrade_to_top_n_plus_other() {
    let f = fixture().await;
    let count = many_series_count();
    let exact = many_series(&f, count).await;
    let exact_amounts = (exact.calls, exact.all_tokens(), exact.cost_micros);
    const PAGE_BOUND: usize = 300_000;
    const CHART_SERIES: usize = 8;

    for (query, metric_total) in [
        (String::new(), exact.all_tokens()),
        ("&metric=cost".to_owned(), exact.cost_micros),
        ("&split=activity".to_owned(), exact.all_tokens()),
        ("&split=activity&bucket=week".to_owned(), exact.all_tokens()),
    ] {
        let path = format!("/?{MANY_RANGE}{query}");
        let started = std::time::Instant::now();
        let page = f.app.get(&path, Some(&f.cookie)).await;
        eprintln!(
            "{count} series: {path} {} bytes in {:?}",
            page.body.len(),
            started.elapsed()
        );
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body.len() < PAGE_BOUND,
            "{path}: {} bytes",
            page.body.len()
        );
        let legend = between(&page.body, "<ul class=\"legend\"", "</ul>");
        let items = legend.matches("<li>").count();
        assert!(
            items <= CHART_SERIES + 1,
            "{path}: {items} series in the legend"
        );
        assert!(legend.contains("Other ("), "{path}: {legend}");
        let (names, sum) = chart_data(&page.body, "usage-chart");
        assert_eq!(names.len(), items, "{path}");
        // Ranked by what the chart shows: heavy-*-0 has the most tokens,
        // heavy-*-9 the highest cost.
        let heavy = match (query.contains("activity"), query.contains("cost")) {
            (true, _) => "heavy-activity-0",
            (false, false) => "heavy-model-0",
            (false, true) => "heavy-model-9",
        };
        assert_eq!(names[0], heavy, "{path}: the largest series first");
        assert_eq!(
            sum, metric_total,
            "{path}: the chart adds up to the exact total"
        );
        let calls = format!("<dd>{}</dd>", calls_text(exact.calls));
        assert!(page.body.contains(&calls), "{path}: the calls card");
        for table in ["top-model", "top-activity"] {
            let rows = between(&page.body, &format!("id=\"{table}\""), "</table>");
            let count = rows.matches("<tr>").count();
            assert!(count <= 8 + 2, "{path} {table}: {count} rows");
            assert!(rows.contains("Other ("), "{path} {table}");
        }
    }

    let path = format!("/team?{MANY_RANGE}");
    let started = std::time::Instant::now();
    let team = f.app.get(&path, Some(&f.cookie)).await;
    eprintln!(
        "{count} series: {path} {} bytes in {:?}",
        team.body.len(),
        started.elapsed()
    );
    assert_eq!(team.status, StatusCode::OK);
    assert!(
        team.body.len() < PAGE_BOUND,
        "team: {} bytes",
        team.body.len()
    );
    let legend = between(&team.body, "<ul class=\"legend\"", "</ul>");
    assert!(
        legend.matches("<li>").count() <= CHART_SERIES + 1,
        "{legend}"
    );
    assert!(legend.contains("Other ("), "{legend}");
    let (_, sum) = chart_data(&team.body, "team-chart-plot");
    assert_eq!(sum, exact.all_tokens(), "the team chart adds up");
    let users = between(&team.body, "id=\"team-table\"", "</table>");
    assert!(
        users.matches("<tr>").count() <= 100 + 2,
        "a bounded user table"
    );
    assert!(users.contains("Other ("), "the rest of the users, summed");

    // The API: the largest groups first, at most `limit`, and the rest
    // summed, so that everything reconciles.
    // (New York: local days start at 04:00 UTC, so within-day rollups are
    // read too; from 2026-05-16 the range still holds every event.)
    for (limit, expected) in [
        ("", 100),
        ("&limit=10", 10),
        ("&limit=1000", 1000),
        ("&limit=50&zone=America/New_York&from=2026-05-16", 50),
    ] {
        let path = format!("/api/v1/usage?{MANY_RANGE}&group_by=model{limit}");
        let started = std::time::Instant::now();
        let response = f.app.get(&path, Some(&f.cookie)).await;
        eprintln!(
            "{count} series: {path} {} bytes in {:?}",
            response.body.len(),
            started.elapsed()
        );
        assert_eq!(response.status, StatusCode::OK, "{path}: {}", response.body);
        let body = response.json();
        let rows = body["rows"].as_array().expect("rows");
        let mut groups: Vec<&str> = Vec::new();
        let mut sum = (0, 0, 0);
        for row in rows {
            let group = row["group"].as_str().expect("a group");
            if !groups.contains(&group) {
                groups.push(group);
            }
            let (calls, tokens, cost) = amounts(row);
            sum = (sum.0 + calls, sum.1 + tokens, sum.2 + cost);
        }
        assert_eq!(groups.len(), expected, "{path}");
        // The largest cost first: the heavy models are always kept.
        for heavy in 0..HEAVY {
            let name = format!("heavy-model-{heavy}");
            assert!(groups.contains(&name.as_str()), "{path}: {name}");
        }
        assert_eq!(body["truncated"], true, "{path}");
        assert_eq!(body["groups_total"], count + HEAVY, "{path}");
        let other = &body["other"];
        assert_eq!(other["groups"], count + HEAVY - expected, "{path}");
        let (calls, tokens, cost) = amounts(&other["totals"]);
        let mut other_rows = (0, 0, 0);
        for row in other["rows"].as_array().expect("other rows") {
            let (c, t, m) = amounts(row);
            other_rows = (other_rows.0 + c, other_rows.1 + t, other_rows.2 + m);
        }
        assert_eq!(other_rows, (calls, tokens, cost), "{path}: other's rows");
        sum = (sum.0 + calls, sum.1 + tokens, sum.2 + cost);
        assert_eq!(sum, exact_amounts, "{path}: rows and other add up");
        assert_eq!(amounts(&body["totals"]), exact_amounts, "{path}: totals");
    }
    let response = f
        .app
        .get(
            &format!("/api/v1/usage?{MANY_RANGE}&group_by=model&limit=1001"),
            Some(&f.cookie),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.json()["field"], "limit");
}

/// An integer with thousands separators, as the cards show it.
fn calls_text(value: i64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
