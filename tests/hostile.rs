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
// One validation for every producer, and sums that cannot overflow.

const MAX_TOKENS: i64 = tokentally::usage::limits::MAX_TOKENS;
const JSON: (&str, &str) = ("content-type", "application/json");
/// 2026-06-10T10:00:00Z in nanoseconds (the test clock is 2026-06-15).
const JUNE_NS: u64 = 1_781_085_600_000_000_000;

fn otlp_metric(points: Vec<serde_json::Value>) -> Vec<u8> {
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeMetrics": [{"metrics": [{"name": "claude_code.token.usage", "sum": {
            "aggregationTemporality": 1, "isMonotonic": true, "dataPoints": points}}]}]
    }]})
    .to_string()
    .into_bytes()
}

fn otlp_point(
    model: &str,
    kind: &str,
    time_ns: u64,
    value: serde_json::Value,
) -> serde_json::Value {
    let mut point = json!({
        "attributes": [{"key": "model", "value": {"stringValue": model}},
                       {"key": "type", "value": {"stringValue": kind}}],
        "startTimeUnixNano": (time_ns - 60_000_000_000).to_string(),
        "timeUnixNano": time_ns.to_string()});
    let key = if value.is_string() || value.is_i64() {
        "asInt"
    } else {
        "asDouble"
    };
    point[key] = value;
    point
}

fn otlp_log(attributes: Vec<(&str, serde_json::Value)>) -> Vec<u8> {
    let attributes: Vec<_> = attributes
        .into_iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": JUNE_NS.to_string(),
        "attributes": attributes}]}]}]})
    .to_string()
    .into_bytes()
}

fn litellm(fields: serde_json::Value) -> Vec<u8> {
    let mut payload = json!({"id": "ll-1", "startTime": 1_781_085_600, "model": "gpt-5",
                             "prompt_tokens": 10, "completion_tokens": 2});
    for (key, value) in fields.as_object().expect("object") {
        payload[key] = value.clone();
    }
    json!([payload]).to_string().into_bytes()
}

/// (calls, input, output, cache read, cache write, cost) over everyone's June.
async fn june_totals(f: &Fixture) -> serde_json::Value {
    let response = f
        .app
        .get(
            "/api/v1/usage?from=2026-06-01&to=2026-07-01&view=everyone",
            Some(&f.cookie),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.json()["totals"].clone()
}

#[tokio::test]
async fn every_producer_refuses_what_the_event_api_refuses() {
    let f = fixture().await;
    let long = "m".repeat(10_000);
    let huge = json!(9.2e18);
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        // (what, path, body, the reason's words)
        (
            "OTLP: a 10k-character model",
            "/v1/metrics",
            otlp_metric(vec![otlp_point(&long, "input", JUNE_NS, json!(5.0))]),
            "256 characters",
        ),
        (
            "OTLP: NUL in a model",
            "/v1/metrics",
            otlp_metric(vec![otlp_point("m\u{0}x", "input", JUNE_NS, json!(5.0))]),
            "control characters",
        ),
        (
            "OTLP: ESC in a model",
            "/v1/metrics",
            otlp_metric(vec![otlp_point(
                "m\u{1b}[31m",
                "input",
                JUNE_NS,
                json!(5.0),
            )]),
            "control characters",
        ),
        (
            "OTLP: a right-to-left override",
            "/v1/metrics",
            otlp_metric(vec![otlp_point(
                "claude\u{202e}5-4-tennos",
                "input",
                JUNE_NS,
                json!(5.0),
            )]),
            "U+202E",
        ),
        (
            "OTLP: centuries ahead",
            "/v1/metrics",
            otlp_metric(vec![otlp_point(
                "m",
                "input",
                9_000_000_000_000_000_000,
                json!(5.0),
            )]),
            "future",
        ),
        (
            "OTLP: at the epoch",
            "/v1/metrics",
            otlp_metric(vec![otlp_point("m", "input", 60_000_000_001, json!(5.0))]),
            "in the past",
        ),
        (
            "OTLP: a count past the maximum",
            "/v1/metrics",
            otlp_metric(vec![otlp_point("m", "input", JUNE_NS, huge.clone())]),
            "at most",
        ),
        (
            "OTLP: NaN",
            "/v1/metrics",
            otlp_metric(vec![otlp_point("m", "input", JUNE_NS, json!("NaN"))]),
            "",
        ),
        (
            "OTLP log: a count past the maximum",
            "/v1/logs",
            otlp_log(vec![
                (
                    "event.name",
                    json!({"stringValue": "claude_code.api_request"}),
                ),
                ("model", json!({"stringValue": "m"})),
                (
                    "input_tokens",
                    json!({"stringValue": "9200000000000000000"}),
                ),
            ]),
            "at most",
        ),
        (
            "OTLP log: a count that is text",
            "/v1/logs",
            otlp_log(vec![
                (
                    "event.name",
                    json!({"stringValue": "claude_code.api_request"}),
                ),
                ("model", json!({"stringValue": "m"})),
                ("output_tokens", json!({"stringValue": "many"})),
            ]),
            "whole number",
        ),
        (
            "OTLP log: a count of the wrong type",
            "/v1/logs",
            otlp_log(vec![
                (
                    "event.name",
                    json!({"stringValue": "claude_code.api_request"}),
                ),
                ("model", json!({"stringValue": "m"})),
                ("output_tokens", json!({"boolValue": true})),
            ]),
            "whole number",
        ),
        (
            "OTLP log: a cost past the maximum",
            "/v1/logs",
            otlp_log(vec![
                (
                    "event.name",
                    json!({"stringValue": "claude_code.api_request"}),
                ),
                ("model", json!({"stringValue": "m"})),
                ("cost_usd", json!({"doubleValue": 1e15})),
            ]),
            "at most",
        ),
    ];
    let logs_from_logs = {
        let mut app = f.app.state.clone();
        app.claude_code_signal = tokentally::ingest::otlp::ClaudeCodeSignal::Logs;
        tokentally::app::router(app)
    };
    for (what, path, body, reason) in cases {
        let response = if path == "/v1/logs" {
            let request = axum::http::Request::post(path)
                .header("authorization", format!("Bearer {}", f.token))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .expect("request");
            let response = tower::ServiceExt::oneshot(logs_from_logs.clone(), request)
                .await
                .expect("infallible");
            let status = response.status();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .expect("body")
                .to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        } else {
            let response = post(&f, path, JSON.1, body).await;
            (response.status, response.body)
        };
        assert_eq!(response.0, StatusCode::OK, "{what}: {}", response.1);
        let answer: serde_json::Value = serde_json::from_str(&response.1).expect("JSON");
        let partial = &answer["partialSuccess"];
        let rejected = partial["rejectedDataPoints"]
            .as_i64()
            .or(partial["rejectedLogRecords"].as_i64());
        assert_eq!(rejected, Some(1), "{what}: {answer}");
        let message = partial["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.contains(reason),
            "{what}: {reason:?} not in {message:?}"
        );
        assert_eq!(events_stored(&f).await, 0, "{what} stored something");
    }
    // LiteLLM: the same rules, named with LiteLLM's field names.
    for (what, fields, field) in [
        ("long model", json!({"model": long}), "model"),
        ("NUL in a model", json!({"model": "gpt\u{0}5"}), "model"),
        (
            "zero-width space",
            json!({"model": "gpt\u{200b}-5"}),
            "model",
        ),
        ("long id", json!({"id": "i".repeat(300)}), "id"),
        ("at the epoch", json!({"startTime": 1}), "startTime"),
        (
            "centuries ahead",
            json!({"startTime": 99_999_999_999.0}),
            "startTime",
        ),
        (
            "a count past the maximum",
            json!({"prompt_tokens": MAX_TOKENS + 1}),
            "prompt_tokens",
        ),
        (
            "a huge float count",
            json!({"completion_tokens": 1e300}),
            "completion_tokens",
        ),
        (
            "a cost past the maximum",
            json!({"response_cost": 1e12}),
            "response_cost",
        ),
    ] {
        let response = post(&f, "/api/v1/ingest/litellm", JSON.1, litellm(fields)).await;
        assert_eq!(response.status.as_u16(), 422, "{what}: {}", response.body);
        assert!(
            response.json()["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["field"] == field)),
            "{what}: {field} not named in {}",
            response.body
        );
        assert_eq!(events_stored(&f).await, 0, "{what} stored something");
    }
    f.app.assert_rollups_exact().await;
}

#[tokio::test]
async fn values_at_every_cap_from_many_tokens_keep_every_sum_in_range() {
    let f = fixture().await;
    let mut tokens = Vec::new();
    for member in 0..6 {
        let name = format!("m{member}");
        f.app.create_user(&name, Role::Member).await;
        tokens.push(f.app.create_token(&name, TokenScope::Ingest).await);
    }
    // Every member at once, each event at every maximum, all in one month:
    // the cells every user shares are hit by all of them.
    let max_cost = format!("{}", tokentally::usage::limits::MAX_COST_MICROS / 1_000_000);
    let sends = tokens.iter().enumerate().flat_map(|(member, token)| {
        let max_cost = max_cost.clone();
        (0..3).map(move |batch| {
            let events: Vec<_> = (0..500)
                .map(|i| {
                    json!({"id": format!("{member}-{batch}-{i}"),
                           "timestamp": format!("2026-06-{:02}T{:02}:00:00Z", 1 + i % 14, i % 24),
                           "model": "claude-sonnet-4-5", "input_tokens": MAX_TOKENS,
                           "output_tokens": MAX_TOKENS, "cache_read_tokens": MAX_TOKENS,
                           "cache_write_tokens": MAX_TOKENS, "cost": max_cost})
                })
                .collect();
            (token.clone(), json!(events).to_string().into_bytes())
        })
    });
    let router = tokentally::app::router(f.app.state.clone());
    let tasks: Vec<_> = sends
        .map(|(token, body)| {
            let request = axum::http::Request::post("/api/v1/events")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .expect("request");
            tokio::spawn(tower::ServiceExt::oneshot(router.clone(), request))
        })
        .collect();
    for task in tasks {
        let response = task.await.expect("task").expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let events = 6 * 3 * 500;
    let totals = june_totals(&f).await;
    assert_eq!(totals["events"], events, "{totals}");
    for field in [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
    ] {
        assert_eq!(totals[field], events * MAX_TOKENS, "{field}: {totals}");
    }
    assert_eq!(
        totals["cost"],
        format!(
            "{}.000000",
            events * tokentally::usage::limits::MAX_COST_MICROS / 1_000_000
        ),
        "{totals}"
    );
    // One past a maximum is refused by every path, and the month still
    // takes ordinary events afterwards (the old failure: 500s for all).
    let over = with("input_tokens", json!(MAX_TOKENS + 1));
    let refused = post(&f, "/api/v1/events", JSON.1, over).await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.body);
    assert!(refused.body.contains("input_tokens"), "{}", refused.body);
    let ordinary = post(&f, "/api/v1/events", JSON.1, with("id", json!("after"))).await;
    assert_eq!(ordinary.status, StatusCode::OK, "{}", ordinary.body);
    for page in [
        "/?range=custom&from=2026-06-01&to=2026-06-30",
        "/team?range=12m",
    ] {
        let response = f.app.get(page, Some(&f.cookie)).await;
        assert_eq!(response.status, StatusCode::OK, "{page}");
    }
    f.app.assert_rollups_exact().await;
    let findings = f
        .app
        .state
        .db
        .read(tokentally::usage::repair::find)
        .await
        .expect("find");
    assert!(findings.is_clean(), "{findings:?}");
}

#[tokio::test]
async fn a_month_poisoned_by_the_previous_release_is_repaired_by_verify_repair() {
    let f = fixture().await;
    let ordinary = post(&f, "/api/v1/events", JSON.1, with("id", json!("kept"))).await;
    assert_eq!(ordinary.status, StatusCode::OK, "{}", ordinary.body);
    // What the previous release let through (OTLP values were uncapped):
    // events of 2⁶³ − 16 input tokens, in June and in July, folded into the
    // rollups as it did. Each cell holds its 64-bit value; June's cells
    // cannot take one more token, and no sum over both months fits.
    let poison = i64::MAX - 15;
    f.app
        .state
        .db
        .write(move |conn| {
            let (user, model, source): (i64, i64, i64) = conn.query_row(
                "SELECT user_id, model_id, source_id FROM events LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let mut deltas = Vec::new();
            for (i, ts_ms) in [1_781_085_600_000_i64, 1_782_871_200_000]
                .into_iter()
                .enumerate()
            {
                conn.execute(
                    "INSERT INTO events (ts_ms, user_id, source_id, external_id, model_id,
                         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                         cost_micros, cost_origin)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, 0, 0, 0)",
                    rusqlite::params![ts_ms, user, source, format!("poison-{i}"), model, poison],
                )?;
                deltas.push(tokentally::usage::rollup::Delta {
                    ts_ms,
                    dims: tokentally::usage::rollup::DimValues {
                        user,
                        model,
                        source,
                        ..Default::default()
                    },
                    metrics: tokentally::usage::Totals {
                        calls: 1,
                        input_tokens: poison,
                        unpriced_calls: 1,
                        ..Default::default()
                    },
                });
            }
            // The previous release's writer, one event at a time.
            for delta in deltas {
                tokentally::usage::rollup::apply(conn, &[delta])?;
            }
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("poisoned as the previous release did");
    // Writes into June and reads over both months say so clearly, instead
    // of a 500 for every event or a sum wrapped to a negative; so does
    // verify.
    let write = post(&f, "/api/v1/events", JSON.1, with("id", json!("june"))).await;
    assert_eq!(write.status.as_u16(), 503, "{}", write.body);
    assert!(write.body.contains("verify --repair"), "{}", write.body);
    let read = f
        .app
        .get(
            "/api/v1/usage?from=2026-06-01&to=2026-08-01",
            Some(&f.cookie),
        )
        .await;
    assert_eq!(read.status.as_u16(), 503, "{}", read.body);
    assert!(read.body.contains("verify --repair"), "{}", read.body);
    let data_dir = f.app.dir.path().to_str().expect("utf-8 path").to_owned();
    let verify = |repair: bool| {
        let mut args = vec!["--data-dir", data_dir.as_str(), "verify"];
        if repair {
            args.push("--repair");
        }
        common::server::run_cli(&args, &[], None)
    };
    let (ok, out, err) = verify(false);
    assert!(!ok, "verify passed a poisoned month: {out}");
    assert!(
        err.contains("2 event(s) above a per-event maximum") && err.contains("--repair"),
        "{err}"
    );
    let (ok, out, err) = verify(true);
    assert!(ok, "{out}{err}");
    assert!(out.contains("removed 2 event(s)"), "{out}");
    let saved = std::fs::read_dir(f.app.dir.path())
        .expect("data dir")
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("removed-events-")
        })
        .expect("the removed events are saved");
    let lines = std::fs::read_to_string(saved.path()).expect("saved file");
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(lines.contains("\"poison-0\"") && lines.contains(&poison.to_string()));
    let (ok, out, err) = verify(false);
    assert!(ok, "{out}{err}");
    // What was accepted is intact; the month reads and takes events again.
    let totals = june_totals(&f).await;
    assert_eq!(
        (totals["events"].clone(), totals["input_tokens"].clone()),
        (json!(1), json!(10))
    );
    let again = post(&f, "/api/v1/events", JSON.1, with("id", json!("again"))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(f.app.audit_entries("data.repair").await.len(), 1);
}

#[tokio::test]
async fn a_token_that_invents_names_is_stopped_by_its_budget_of_new_names() {
    let mut f = fixture().await;
    let limits = tokentally::usage::budget::NameLimits {
        per_token_per_day: 40,
        per_instance_per_day: 60,
    };
    f.app.state.name_limits = limits;
    f.app.rebuild_router();
    f.app.create_user("ada", Role::Member).await;
    f.app.create_user("bob", Role::Member).await;
    let ada = f.app.create_token("ada", TokenScope::Ingest).await;
    let bob = f.app.create_token("bob", TokenScope::Ingest).await;
    let batch = |prefix: &str, models: std::ops::Range<usize>| {
        let events: Vec<_> = models
            .map(|i| {
                json!({"id": format!("{prefix}{i}"), "timestamp": "2026-06-10T10:00:00Z",
                            "model": format!("{prefix}model-{i}"), "input_tokens": 1})
            })
            .collect();
        json!(events).to_string().into_bytes()
    };
    let send = |token: &str, body: Vec<u8>| {
        let token = token.to_owned();
        let app = &f.app;
        async move {
            app.post_bytes("/api/v1/events", Some(&token), &[JSON], body)
                .await
        }
    };
    // Ada's first 39 new names (the source "api" is the 40th) fit.
    let first = send(&ada, batch("a", 0..39)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // One more new name: the whole request is refused, nothing stored.
    let stored_before = events_stored(&f).await;
    let over = send(&ada, batch("b", 0..5)).await;
    assert_eq!(over.status.as_u16(), 429, "{}", over.body);
    assert!(
        over.body.contains("--max-new-names-per-token-per-day"),
        "{}",
        over.body
    );
    let retry: u64 = over.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert_eq!(retry, 12 * 3600, "the budget renews at 00:00 UTC");
    assert_eq!(events_stored(&f).await, stored_before);
    // Known names cost nothing: ada keeps sending them.
    let known = send(&ada, batch("a", 0..39)).await;
    assert_eq!(known.status, StatusCode::OK, "{}", known.body);
    // Bob has his own budget, until the instance's is spent too.
    let bob_first = send(&bob, batch("c", 0..20)).await;
    assert_eq!(bob_first.status, StatusCode::OK, "{}", bob_first.body);
    let bob_over = send(&bob, batch("d", 0..1)).await;
    assert_eq!(bob_over.status.as_u16(), 429, "{}", bob_over.body);
    assert!(
        bob_over.body.contains("--max-new-names-per-day"),
        "{}",
        bob_over.body
    );
    // A new day, a new budget.
    f.app.clock.advance(jiff::SignedDuration::from_hours(12));
    let next_day = send(&bob, batch("d", 0..1)).await;
    assert_eq!(next_day.status, StatusCode::OK, "{}", next_day.body);
    f.app.assert_rollups_exact().await;
}

#[tokio::test]
async fn the_small_ones_each_get_their_answer() {
    let f = fixture().await;
    // Counts as whole floats, and a binary-float cost, are accepted by the
    // event API as LiteLLM accepts them.
    let floats = json!([{"id": "f1", "timestamp": "2026-06-10T10:00:00Z", "model": "m",
                         "input_tokens": 1.0, "output_tokens": 1e3,
                         "cost": 0.30000000000000004}]);
    let response = post(
        &f,
        "/api/v1/events",
        JSON.1,
        floats.to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let totals = june_totals(&f).await;
    assert_eq!(
        (
            &totals["input_tokens"],
            &totals["output_tokens"],
            &totals["cost"]
        ),
        (&json!(1), &json!(1000), &json!("0.300000")),
        "{totals}"
    );
    // A re-sent id with other content is a duplicate *and* a conflict.
    let same = post(
        &f,
        "/api/v1/events",
        JSON.1,
        floats.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        same.json(),
        json!({"accepted": 0, "duplicates": 1, "conflicts": 0})
    );
    let mut changed = floats.clone();
    changed[0]["input_tokens"] = json!(2);
    let other = post(
        &f,
        "/api/v1/events",
        JSON.1,
        changed.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        other.json(),
        json!({"accepted": 0, "duplicates": 1, "conflicts": 1})
    );
    // A source differing only in case is the same source: counted once.
    for source in ["cli", "CLI", "Cli"] {
        let body = json!([{"id": "s1", "timestamp": "2026-06-10T10:00:00Z", "model": "m",
                           "source": source, "input_tokens": 1}]);
        let response = post(&f, "/api/v1/events", JSON.1, body.to_string().into_bytes()).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    assert_eq!(june_totals(&f).await["events"], 2);
    // Times: offsets past ±23:59 and a 60th second on an ordinary day.
    for timestamp in [
        "2026-06-10T10:00:00+24:00",
        "2026-06-10T10:00:00-25:30",
        "2026-06-10T10:00:00+05:60",
        "2026-06-10T10:59:60Z",
        "2026-06-10T10:00:00+0100",
        "2026-02-30T10:00:00Z",
    ] {
        let response = post(
            &f,
            "/api/v1/events",
            JSON.1,
            with("timestamp", json!(timestamp)),
        )
        .await;
        assert_eq!(
            response.status.as_u16(),
            422,
            "{timestamp}: {}",
            response.body
        );
        assert!(
            response.body.contains("timestamp"),
            "{timestamp}: {}",
            response.body
        );
        assert!(
            !response.body.contains("jiff"),
            "{timestamp}: {}",
            response.body
        );
    }
    // Invisible and direction-changing characters, in every name.
    for (field, name) in [
        ("model", "gpt\u{200b}-5"),
        ("activity", "review\u{202e}"),
        ("project", "\u{feff}web"),
        ("provider", "open\u{2066}ai"),
        ("source", "api\u{200d}"),
    ] {
        let response = post(&f, "/api/v1/events", JSON.1, with(field, json!(name))).await;
        assert_eq!(response.status.as_u16(), 422, "{field}: {}", response.body);
        assert!(
            response.body.contains("invisible"),
            "{field}: {}",
            response.body
        );
    }
    // OTLP: more items than one export may hold is refused whole.
    let points: Vec<_> = (0..10_001)
        .map(|i| otlp_point("m", "input", JUNE_NS + i, json!(1.0)))
        .collect();
    let response = post(&f, "/v1/metrics", JSON.1, otlp_metric(points)).await;
    assert_eq!(response.status.as_u16(), 413, "{}", response.body);
    assert!(response.body.contains("at most 10000"), "{}", response.body);
    // OTLP/JSON's enum names for temporality are read like their numbers.
    let mut body: serde_json::Value = serde_json::from_slice(&otlp_metric(vec![otlp_point(
        "m",
        "input",
        JUNE_NS,
        json!(7.0),
    )]))
    .expect("json");
    body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["aggregationTemporality"] =
        json!("AGGREGATION_TEMPORALITY_DELTA");
    let response = post(&f, "/v1/metrics", JSON.1, body.to_string().into_bytes()).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(june_totals(&f).await["input_tokens"], 1 + 1 + 7);
    f.app.assert_rollups_exact().await;
}
