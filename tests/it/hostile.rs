//! A corpus of malformed and hostile requests over the real router: each
//! gets a clear 4xx, none writes anything, nothing is reflected unescaped
//! into a page. Names that carry SQL or HTML are valid data: they are
//! stored as given (parameters, never SQL text) and always shown escaped.

use crate::common::{self, PASSWORD, TestApp, TestResponse};
use axum::http::StatusCode;
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
    // (Header size limits are the listener's: tests/it/edge.rs.)
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
            // Everything stored so far is folded, as it was then.
            tokentally::usage::rollup::roll_all(conn)?;
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
            tokentally::usage::rollup::mark_all_folded(conn)?;
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("poisoned as the previous release did");
    // A write into June is kept (acknowledged events go to the raw rows;
    // the rollups follow), but cannot be folded into June's cells: the
    // roller says so clearly, as do reads over both months, instead of a
    // 500 for every event or a sum wrapped to a negative; so does verify.
    let write = post(&f, "/api/v1/events", JSON.1, with("id", json!("june"))).await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.body);
    let fold = tokentally::usage::rollup::fold_pending(&f.app.state.db, 1_000).await;
    match fold {
        Err(e @ tokentally::db::DbError::Overflow(_)) => {
            assert!(e.to_string().contains("tokentally verify"), "{e}")
        }
        other => panic!("folding into a poisoned month: {other:?}"),
    }
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
    // What was accepted is intact (the June write too, folded by the
    // repair's rebuild); the month reads and takes events again.
    let totals = june_totals(&f).await;
    assert_eq!(
        (totals["events"].clone(), totals["input_tokens"].clone()),
        (json!(2), json!(20))
    );
    f.app.assert_rollups_exact().await;
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

// ---------------------------------------------------------------------
// CSV formula injection: a name planted by a member or a User-Agent sent
// by anyone never reaches the admin's spreadsheet as a formula.
// ---------------------------------------------------------------------

/// What a spreadsheet would run if a cell started with it.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cells of a CSV export, as a spreadsheet reads them: a header and
/// records, keyed by column name.
fn csv_records(body: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a well-formed record");
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn assert_no_formula(record: &std::collections::BTreeMap<String, String>, columns: &[&str]) {
    for column in columns {
        let cell = &record[*column];
        assert!(
            !cell.starts_with(FORMULA_STARTS),
            "{column} cell {cell:?} would be a formula"
        );
    }
}

#[tokio::test]
async fn events_csv_cells_from_names_are_never_formulas() {
    let f = fixture().await;
    let planted = [
        ("id", "=1+2"),
        ("model", "=HYPERLINK(\"http://evil\",\"x\")"),
        ("activity", "+1+1"),
        ("project", "-2+3"),
        ("provider", "@SUM(A1)"),
        ("source", "-cmd"),
    ];
    let mut event = event();
    for (field, value) in planted {
        event[field] = json!(value);
    }
    event["cost"] = json!("0.5");
    let body = json!([event]).to_string().into_bytes();
    let response = post(&f, "/api/v1/events", "application/json", body).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);

    for path in [
        "/api/v1/events.csv?range=custom&from=2026-06-01&to=2026-06-15",
        // The events page's "Export CSV".
        "/api/v1/usage/events.csv?range=custom&from=2026-06-01&to=2026-06-15",
    ] {
        let export = f.app.get(path, Some(&f.cookie)).await;
        assert_eq!(export.status, StatusCode::OK, "{path}: {}", export.body);
        let records = csv_records(&export.body);
        assert_eq!(records.len(), 1, "{path}: {}", export.body);
        let record = &records[0];
        assert_no_formula(
            record,
            &[
                "id", "user", "model", "provider", "activity", "project", "source",
            ],
        );
        // The value is all there, made text by one leading quote.
        for (field, value) in planted {
            assert_eq!(record[field], format!("'{value}"), "{path}: {field}");
        }
        assert_eq!(record["user"], "root");
        // Numbers we write stay numbers.
        assert_eq!(record["input_tokens"], "10");
        assert_eq!(record["output_tokens"], "1");
        assert_eq!(record["cost"], "0.500000");
        assert_eq!(record["timestamp"], "2026-06-10T10:00:00Z");
    }
}

#[tokio::test]
async fn audit_csv_cells_from_requests_are_never_formulas() {
    let f = fixture().await;
    let agent = "=cmd|' /C calc'!A0";
    // Not signed in: a failed sign-in is audited with its User-Agent.
    let page = f.app.get("/login", None).await;
    let cookie = page.session_cookie().expect("a session");
    let csrf = common::csrf_token(&page.body).expect("a CSRF token");
    let form = format!(
        "username=%3D1%2B1&password=wrong&csrf_token={}",
        common::form_encode(&csrf)
    );
    let request = axum::http::Request::post("/login")
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", agent)
        .body(axum::body::Body::from(form))
        .expect("request");
    assert_eq!(
        f.app.request(request).await.status,
        StatusCode::UNAUTHORIZED
    );
    f.app.state.audit.flush().await;

    let export = f
        .app
        .get("/admin/audit.csv?action=login.failure", Some(&f.cookie))
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    let records = csv_records(&export.body);
    assert!(!records.is_empty(), "{}", export.body);
    for record in &records {
        assert_no_formula(
            record,
            &[
                "actor",
                "target",
                "route",
                "client_addr",
                "user_agent",
                "details",
            ],
        );
        assert!(record["seq"].parse::<u64>().is_ok(), "seq stays a number");
    }
    assert!(
        records
            .iter()
            .any(|r| r["user_agent"] == format!("'{agent}")),
        "the User-Agent is kept, as text: {}",
        export.body
    );
}

// ---------------------------------------------------------------------
// Open redirect after sign-in: `next` only ever leads to a path on this
// site; what a browser would strip or turn into `//` leads to `/`.
// ---------------------------------------------------------------------

const HOSTILE_NEXT: [&str; 17] = [
    "//evil.example",
    "/\\evil.example",
    "/\t/evil.example",
    "/\tevil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/%09/evil.example",
    "/%2f%2fevil.example",
    "/%2F/evil.example",
    "/%5cevil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "evil.example",
    "\\\\evil.example",
    "/ /evil.example",
    "/\u{1}x",
    "/\u{7f}x",
];

const LOCAL_NEXT: [&str; 4] = [
    "/events?range=30d&model=gpt-5",
    "/",
    "/team?sort=cost&order=asc",
    "/?range=custom&from=2026-06-01&to=2026-06-15&split=activity",
];

#[tokio::test]
async fn sign_in_never_redirects_to_another_site() {
    let f = fixture().await;
    for next in HOSTILE_NEXT {
        let response = f
            .app
            .login_form(&[("username", "root"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(response.location(), Some("/"), "{next:?}");
    }
    for next in LOCAL_NEXT {
        let response = f
            .app
            .login_form(&[("username", "root"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(response.location(), Some(next), "{next:?}");
    }
    // Signed in already, the login page sends you on at once: same rule.
    for (next, location) in HOSTILE_NEXT
        .iter()
        .map(|n| (*n, "/"))
        .chain(LOCAL_NEXT.iter().map(|n| (*n, *n)))
    {
        let path = format!("/login?next={}", common::form_encode(next));
        let response = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(response.location(), Some(location), "{next:?}");
    }
}

// ---------------------------------------------------------------------
// Misspelt query parameters: refused with a 400 naming the parameter and
// the known ones, never silently ignored; every parameter the pages put
// in their own links and GET forms is still accepted.
// ---------------------------------------------------------------------

#[tokio::test]
async fn unknown_query_parameters_are_refused_by_name() {
    let f = fixture().await;
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    // Pages: the error page names the parameter and lists the known ones.
    for (path, name, known) in [
        (format!("/?{range}&modle=gpt-5"), "modle", "model"),
        (format!("/events?{range}&sortt=cost"), "sortt", "sort"),
        (format!("/events?{range}&split=model"), "split", "after"),
        (format!("/team?{range}&metrc=cost"), "metrc", "metric"),
        ("/admin/prices?model=x".to_owned(), "model", "q"),
        ("/admin/audit?actr=root".to_owned(), "actr", "actor"),
        (
            "/admin/audit.csv?acton=login.failure".to_owned(),
            "acton",
            "action",
        ),
    ] {
        let page = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains(&format!("{name}: unknown parameter")),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains(known),
            "{path} lists {known}: {}",
            page.body
        );
    }
    // The read API: JSON naming the field, in the API's error shape.
    for path in [
        format!("/api/v1/usage?{range}&grup_by=model"),
        format!("/api/v1/events?{range}&limt=5"),
        format!("/api/v1/usage/events?{range}&limt=5"),
        format!("/api/v1/events.csv?{range}&limt=5"),
        format!("/api/v1/usage/events.csv?{range}&limt=5"),
    ] {
        let response = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
        let body = response.json();
        let name = path.rsplit('&').next().and_then(|p| p.split('=').next());
        assert_eq!(body["field"].as_str(), name, "{path}: {body}");
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("unknown parameter"), "{path}: {body}");
        for known in ["range", "from", "to", "group_by", "limit", "after", "view"] {
            assert!(reason.contains(known), "{path} lists {known}: {body}");
        }
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with(name.unwrap_or("?")))
        );
    }
}

/// The `href`s of a page that lead to one of its own pages or the API.
fn own_links(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .filter(|href| href.starts_with('/') && !href.starts_with("/assets/"))
        .collect()
}

/// What submitting each GET form of a page requests: its action with every
/// named field at its value (a select at its first option).
fn get_form_submissions(body: &str) -> Vec<String> {
    let attribute = |tag: &str, name: &str| {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(|v| v.replace("&amp;", "&"))
    };
    let mut out = Vec::new();
    for form in body.split("<form").skip(1) {
        let form = form.split("</form>").next().unwrap_or("");
        let open = form.split('>').next().unwrap_or("");
        if attribute(open, "method").as_deref() != Some("get") {
            continue;
        }
        let action = attribute(open, "action").unwrap_or_default();
        let mut fields = Vec::new();
        for tag in form.split('<').skip(1) {
            let Some(name) = attribute(tag, "name") else {
                continue;
            };
            let value = if tag.starts_with("select") {
                form.split(&format!("name=\"{name}\""))
                    .nth(1)
                    .and_then(|rest| attribute(rest, "value"))
                    .unwrap_or_default()
            } else {
                attribute(tag, "value").unwrap_or_default()
            };
            fields.push(format!(
                "{}={}",
                common::form_encode(&name),
                common::form_encode(&value)
            ));
        }
        out.push(format!("{action}?{}", fields.join("&")));
    }
    out
}

#[tokio::test]
async fn every_parameter_the_pages_write_is_accepted() {
    let f = fixture().await;
    let response = post(
        &f,
        "/api/v1/events",
        "application/json",
        with("activity", json!("chat")),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    let mut checked = 0;
    for start in [
        format!("/?{range}&split=activity&metric=cost&view=me&zone=Europe/Berlin"),
        format!(
            "/events?{range}&model=m&sort=input_tokens&order=asc&limit=1&bucket=week&week_start=sunday"
        ),
        format!("/team?{range}&metric=cost&sort=calls&order=asc&bucket=day"),
        "/admin/audit?actor=root&from=2026-06-01&to=2026-06-30".to_owned(),
        "/admin/prices".to_owned(),
    ] {
        let page = f.app.get(&start, Some(&f.cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{start}: {}", page.body);
        let targets = own_links(&page.body)
            .into_iter()
            .chain(get_form_submissions(&page.body));
        for target in targets {
            if target.starts_with("/logout") {
                continue;
            }
            let response = f.app.get(&target, Some(&f.cookie)).await;
            assert_ne!(
                response.status,
                StatusCode::BAD_REQUEST,
                "{start} leads to {target}: {}",
                response.body
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} links and forms followed");
}

// ---------------------------------------------------------------------
// Out-of-range dates: the 400 names the parameter and says what is wrong
// in our own words, never the time library's message.
// ---------------------------------------------------------------------

#[tokio::test]
async fn impossible_dates_are_refused_in_our_own_words() {
    let f = fixture().await;
    let cases = [
        ("from=2026-02-30&to=2026-03-01", "from", "no day 30"),
        ("from=2026-13-01&to=2026-03-01", "from", "no month 13"),
        (
            "from=99999-01-01&to=2026-03-01",
            "from",
            "year must be from",
        ),
        ("from=2026-01-01&to=9999-12-31", "to", "year must be from"),
        (
            "from=9999-12-31&to=9999-12-31T00:00:00Z",
            "from",
            "year must be from",
        ),
        ("from=-009999-01-01&to=2026-01-01", "from", "neither a date"),
        ("from=2026-06-01&to=2026-02-29T00:00:00Z", "to", "no day 29"),
        ("from=2026-00-10&to=2026-03-01", "from", "no month 0"),
    ];
    // What only the time library says.
    let internal = [
        "overflowed",
        "Unix timestamp",
        "parameter '",
        "jiff",
        "parsing",
    ];
    for (query, field, says) in cases {
        let path = format!("/api/v1/usage?range=custom&{query}");
        let response = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
        let body = response.json();
        assert_eq!(body["field"], field, "{path}: {body}");
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(says), "{path}: {body}");
        for path in [
            format!("/?range=custom&{query}"),
            format!("/events?range=custom&{query}"),
            format!("/api/v1/events.csv?range=custom&{query}"),
        ] {
            let response = f.app.get(&path, Some(&f.cookie)).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(response.body.contains(says), "{path}: {}", response.body);
            for word in internal {
                assert!(!response.body.contains(word), "{path}: {}", response.body);
            }
        }
    }
    // The audit log's date filters: the same words.
    for (query, says) in [
        ("from=2026-02-30", "no day 30"),
        ("to=9999-12-31", "year must be from"),
        ("from=-009999-01-01", "neither a date"),
        ("from=99999-01-01", "year must be from"),
    ] {
        for path in [
            format!("/admin/audit?{query}"),
            format!("/admin/audit.csv?{query}"),
        ] {
            let response = f.app.get(&path, Some(&f.cookie)).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(response.body.contains(says), "{path}: {}", response.body);
            for word in internal {
                assert!(!response.body.contains(word), "{path}: {}", response.body);
            }
        }
    }
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
        exact
            .checked_add(&Totals {
                calls: 1,
                input_tokens: tokens[0],
                output_tokens: tokens[1],
                cache_read_tokens: tokens[2],
                cache_write_tokens: tokens[3],
                cost_micros: cost,
                unpriced_calls: 0,
                // Reported (a reported 0 with tokens counts as none).
                reported_cost_micros: cost,
            })
            .expect("in range");
        events.push(NewEvent {
            extras: Default::default(),
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
            session: None,
            machine: None,
            identity: None,
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
    // The chart per user (the page shows the chart per team first).
    let per_user = &team.body[team.body.find("team-chart-plot-caption").unwrap_or(0)..];
    let legend = between(per_user, "<ul class=\"legend\"", "</ul>");
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

#[tokio::test]
async fn more_items_than_a_request_may_hold_are_refused_before_they_are_built() {
    let f = fixture().await;
    let array = format!("[{}0]", "0,".repeat(10_000));
    let ndjson = "{}\n".repeat(10_001);
    for (path, content_type, body) in [
        ("/api/v1/events", "application/json", array.clone()),
        ("/api/v1/events", "application/x-ndjson", ndjson.clone()),
        ("/api/v1/ingest/litellm", "application/json", array),
        ("/api/v1/ingest/litellm", "application/json", ndjson),
    ] {
        let response = post(&f, path, content_type, body.into_bytes()).await;
        assert_eq!(response.status.as_u16(), 413, "{path}: {}", response.body);
        assert!(
            response.body.contains("send at most 10000"),
            "{path}: {}",
            response.body
        );
    }
    assert_eq!(events_stored(&f).await, 0);
}
