//! The OTLP/HTTP receivers over the real router, fed what Claude Code,
//! Gemini CLI and GenAI-instrumented apps export: protobuf and JSON, delta
//! and cumulative, retried exports, and points that cannot be used.

use crate::common::TestApp;
use crate::common::otlp::{MINUTE, PROTOBUF, T0, export_metrics, kv};
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::ingest::otlp::series;

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service), kv("service.version", "2.0.14")],
        ..Resource::default()
    })
}

fn point(attrs: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    }
}

fn sum(name: &str, temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "tokens".into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    }
}

/// One Claude Code export: tokens of each type and the cost, for a session.
fn claude_code_export(
    temporality: AggregationTemporality,
    start: u64,
    time: u64,
    [input, output, read, write]: [f64; 4],
    cost: f64,
) -> ExportMetricsServiceRequest {
    let attrs = |kind: Option<&str>| {
        let mut attrs = vec![
            kv("session.id", "5c1a7f0e"),
            kv("user.email", "ada@example.com"),
            kv("model", "claude-sonnet-4-5-20250929"),
        ];
        attrs.extend(kind.map(|k| kv("type", k)));
        attrs
    };
    let tokens = [
        ("input", input),
        ("output", output),
        ("cacheRead", read),
        ("cacheCreation", write),
    ]
    .into_iter()
    .map(|(kind, value)| point(attrs(Some(kind)), start, time, value))
    .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("claude-code"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    sum("claude_code.token.usage", temporality, tokens),
                    sum(
                        "claude_code.cost.usage",
                        temporality,
                        vec![point(attrs(None), start, time, cost)],
                    ),
                    sum(
                        "claude_code.session.count",
                        temporality,
                        vec![point(attrs(None), start, time, 1.0)],
                    ),
                ],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

async fn setup() -> (TestApp, String) {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    (app, token)
}

/// (events, input, output, cache read, cache write, cost) from raw rows.
async fn totals(app: &TestApp) -> [i64; 6] {
    app.state
        .db
        .read(|conn| {
            Ok::<_, tokentally::db::DbError>(conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                        COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0),
                        COALESCE(SUM(cost_micros), 0)
                 FROM events",
                [],
                |r| {
                    Ok([
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ])
                },
            )?)
        })
        .await
        .expect("totals")
}

#[tokio::test]
async fn claude_code_delta_metrics_become_one_event_per_export_and_retries_add_nothing() {
    let (app, token) = setup().await;
    let export = claude_code_export(
        AggregationTemporality::Delta,
        T0,
        T0 + MINUTE,
        [12.0, 311.0, 14336.0, 2048.0],
        0.0812,
    );
    let response = export_metrics(&app, &token, &export).await;
    let partial = response
        .partial_success
        .expect("the session count is reported");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("claude_code.session.count"),
        "{}",
        partial.error_message
    );
    assert_eq!(totals(&app).await, [1, 12, 311, 14336, 2048, 81_200]);
    // The exporter retries the same request: nothing changes.
    export_metrics(&app, &token, &export).await;
    assert_eq!(totals(&app).await, [1, 12, 311, 14336, 2048, 81_200]);
    // The next interval adds its own.
    let next = claude_code_export(
        AggregationTemporality::Delta,
        T0 + MINUTE,
        T0 + 2 * MINUTE,
        [1.0, 2.0, 3.0, 4.0],
        0.0001,
    );
    export_metrics(&app, &token, &next).await;
    assert_eq!(totals(&app).await, [2, 13, 313, 14339, 2052, 81_300]);
    app.assert_rollups_exact().await;
}

#[tokio::test]
async fn cumulative_series_are_differenced_and_resets_detected() {
    let (app, token) = setup().await;
    let cumulative = AggregationTemporality::Cumulative;
    let at = |minute: u64, start: u64, values: [f64; 4]| {
        claude_code_export(cumulative, start, T0 + minute * MINUTE, values, 0.0)
    };
    export_metrics(&app, &token, &at(1, T0, [10.0, 100.0, 1000.0, 0.0])).await;
    assert_eq!(totals(&app).await[1..5], [10, 100, 1000, 0]);
    export_metrics(&app, &token, &at(2, T0, [15.0, 150.0, 1500.0, 0.0])).await;
    assert_eq!(totals(&app).await[1..5], [15, 150, 1500, 0]);
    // A retry of minute 2 and a reordered minute 1: nothing.
    export_metrics(&app, &token, &at(2, T0, [15.0, 150.0, 1500.0, 0.0])).await;
    export_metrics(&app, &token, &at(1, T0, [10.0, 100.0, 1000.0, 0.0])).await;
    assert_eq!(totals(&app).await[1..5], [15, 150, 1500, 0]);
    // Housekeeping keeps series seen recently (all of these) and would
    // drop those unseen for a month.
    let now = app.state.now_unix();
    let forgotten = app
        .state
        .db
        .write(move |conn| series::forget_stale(conn, now - series::FORGET_AFTER_S))
        .await
        .expect("sweep");
    assert_eq!(forgotten, 0);
    // Claude Code restarted: a new start time, counting from zero again.
    let restart = T0 + 3 * MINUTE;
    export_metrics(&app, &token, &at(4, restart, [2.0, 20.0, 0.0, 0.0])).await;
    assert_eq!(totals(&app).await[1..5], [17, 170, 1500, 0]);
    app.assert_rollups_exact().await;
    let later = now + series::FORGET_AFTER_S + 1;
    let forgotten = app
        .state
        .db
        .write(move |conn| series::forget_stale(conn, later - series::FORGET_AFTER_S))
        .await
        .expect("sweep");
    assert_eq!(forgotten, 5, "four token series and the cost series");
}

#[tokio::test]
async fn otlp_json_is_read_like_protobuf_and_answered_in_json() {
    let (app, token) = setup().await;
    // As an OTLP/JSON exporter writes it: camelCase, 64-bit ints as strings,
    // enums as numbers.
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gemini-cli"}}]},
        "scopeMetrics": [{"scope": {"name": "gemini-cli"}, "metrics": [
            {"name": "gemini_cli.token.usage", "unit": "token", "sum": {
                "aggregationTemporality": 1, "isMonotonic": true,
                "dataPoints": [
                    {"attributes": [{"key": "model", "value": {"stringValue": "gemini-2.5-pro"}},
                                    {"key": "type", "value": {"stringValue": "input"}}],
                     "startTimeUnixNano": T0.to_string(), "timeUnixNano": (T0 + MINUTE).to_string(), "asInt": "5000"},
                    {"attributes": [{"key": "model", "value": {"stringValue": "gemini-2.5-pro"}},
                                    {"key": "type", "value": {"stringValue": "cache"}}],
                     "startTimeUnixNano": T0.to_string(), "timeUnixNano": (T0 + MINUTE).to_string(), "asInt": "4000"},
                    {"attributes": [{"key": "model", "value": {"stringValue": "gemini-2.5-pro"}},
                                    {"key": "type", "value": {"stringValue": "thought"}}],
                     "startTimeUnixNano": T0.to_string(), "timeUnixNano": (T0 + MINUTE).to_string(), "asInt": "300"},
                    {"attributes": [{"key": "model", "value": {"stringValue": "gemini-2.5-pro"}},
                                    {"key": "type", "value": {"stringValue": "output"}}],
                     "startTimeUnixNano": T0.to_string(), "timeUnixNano": (T0 + MINUTE).to_string(), "asInt": "200"}
                ]}},
            {"name": "gen_ai.client.token.usage", "unit": "{token}", "histogram": {
                "aggregationTemporality": 1,
                "dataPoints": [{"attributes": [{"key": "gen_ai.token.type", "value": {"stringValue": "input"}},
                                               {"key": "gen_ai.request.model", "value": {"stringValue": "gemini-2.5-pro"}}],
                                "startTimeUnixNano": T0.to_string(), "timeUnixNano": (T0 + MINUTE).to_string(),
                                "count": "1", "sum": 5000.0}]}}
        ]}]
    }]});
    let response = app
        .post_bytes(
            "/v1/metrics",
            Some(&token),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let answer = response.json();
    assert_eq!(
        answer["partialSuccess"]["rejectedDataPoints"], 1,
        "{answer}"
    );
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("same calls")
    );
    // Gemini's input includes its cache: 5000 - 4000; thoughts are output.
    assert_eq!(totals(&app).await[..5], [1, 1000, 500, 4000, 0]);
}

#[tokio::test]
async fn bad_requests_and_tokens_are_refused() {
    let (app, token) = setup().await;
    let garbage = app
        .post_bytes(
            "/v1/metrics",
            Some(&token),
            &[PROTOBUF],
            b"\xff\xff\xff".to_vec(),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let text = app
        .post_bytes(
            "/v1/metrics",
            Some(&token),
            &[("content-type", "text/plain")],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let anonymous = app
        .post_bytes("/v1/traces", None, &[PROTOBUF], Vec::new())
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let gauge = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "claude_code.token.usage".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![point(vec![], T0, T0, 1.0)],
                    })),
                    ..Metric::default()
                }],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    let answer = export_metrics(&app, &token, &gauge).await;
    assert_eq!(
        answer.partial_success.map(|p| p.rejected_data_points),
        Some(1)
    );
    assert_eq!(totals(&app).await[0], 0);
}

fn genai_span(span_id: u8, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![7; 16],
        span_id: vec![span_id; 8],
        name: "chat claude-sonnet-4-5".into(),
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 1_000_000_000,
        attributes: attrs,
        ..Span::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

#[tokio::test]
async fn genai_spans_keep_cached_input_apart_and_count_once() {
    let (app, token) = setup().await;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("support-bot"),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    genai_span(
                        1,
                        vec![
                            kv("gen_ai.operation.name", "chat"),
                            kv("gen_ai.provider.name", "anthropic"),
                            kv("gen_ai.request.model", "claude-sonnet-4-5"),
                            int("gen_ai.usage.input_tokens", 1500),
                            int("gen_ai.usage.output_tokens", 80),
                            int("gen_ai.usage.cache_read.input_tokens", 1000),
                            int("gen_ai.usage.cache_creation.input_tokens", 200),
                        ],
                    ),
                    genai_span(2, vec![kv("http.method", "GET")]),
                    genai_span(3, vec![int("gen_ai.usage.input_tokens", 5)]),
                ],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    for _ in 0..2 {
        let response = app
            .post_bytes(
                "/v1/traces",
                Some(&token),
                &[PROTOBUF],
                request.encode_to_vec(),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        let answer = ExportTraceServiceResponse::decode(response.raw.as_slice()).expect("protobuf");
        let partial = answer.partial_success.expect("reported");
        assert_eq!(partial.rejected_spans, 1, "the span without a model");
        assert!(
            partial
                .error_message
                .contains("1 spans carried no token usage"),
            "{}",
            partial.error_message
        );
    }
    assert_eq!(totals(&app).await[..5], [1, 300, 80, 1000, 200]);
}

fn api_request_record(prompt: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: T0,
        event_name: "claude_code.api_request".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(
                "claude_code.api_request".into(),
            )),
        }),
        attributes: vec![
            kv("event.name", "api_request"),
            kv("event.timestamp", "2026-05-28T20:26:40.123Z"),
            kv("session.id", "5c1a7f0e"),
            kv("prompt.id", prompt),
            kv("model", "claude-haiku-4-5-20251001"),
            kv("input_tokens", "40"),
            kv("output_tokens", "7"),
            kv("cache_read_tokens", "900"),
            kv("cache_creation_tokens", "0"),
            kv("cost_usd", "0.00021"),
            kv("duration_ms", "812"),
        ],
        ..LogRecord::default()
    }
}

#[tokio::test]
async fn claude_code_log_events_count_only_when_chosen() {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("claude-code"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    api_request_record("p1"),
                    api_request_record("p2"),
                    LogRecord {
                        event_name: "claude_code.user_prompt".into(),
                        ..LogRecord::default()
                    },
                ],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    // By default Claude Code counts from its metrics: the log events are
    // reported as not counted.
    let (app, token) = setup().await;
    let response = app
        .post_bytes(
            "/v1/logs",
            Some(&token),
            &[PROTOBUF],
            request.encode_to_vec(),
        )
        .await;
    let answer = ExportLogsServiceResponse::decode(response.raw.as_slice()).expect("protobuf");
    assert_eq!(
        answer.partial_success.map(|p| p.rejected_log_records),
        Some(2)
    );
    assert_eq!(totals(&app).await[0], 0);

    let mut app = TestApp::new().await;
    app.state.claude_code_signal = tokentally::ingest::otlp::ClaudeCodeSignal::Logs;
    app.rebuild_router();
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    for _ in 0..2 {
        let json_body = serde_json::to_vec(&request).expect("json");
        let response = app
            .post_bytes(
                "/v1/logs",
                Some(&token),
                &[("content-type", "application/json")],
                json_body,
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        let answer: Value = response.json();
        assert_eq!(
            answer["partialSuccess"]["rejectedLogRecords"], 0,
            "{answer}"
        );
    }
    assert_eq!(totals(&app).await, [2, 80, 14, 1800, 0, 420]);
}

/// (project, session, machine) of every stored event, ordered.
async fn labels(app: &TestApp) -> Vec<(Option<String>, Option<String>, Option<String>)> {
    app.state
        .db
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT p.name, s.name, m.name FROM events e
                 LEFT JOIN projects p ON p.id = e.project_id
                 LEFT JOIN event_sessions s ON s.id = e.session_id
                 LEFT JOIN event_machines m ON m.id = e.machine_id
                 ORDER BY 1, 2, 3",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, tokentally::db::DbError>(rows)
        })
        .await
        .expect("labels")
}

fn some(values: (&str, &str, &str)) -> (Option<String>, Option<String>, Option<String>) {
    let text = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    (text(values.0), text(values.1), text(values.2))
}

fn resource_with(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes: attrs,
        ..Resource::default()
    })
}

fn metrics_of(resource: Option<Resource>, metric: Metric) -> ResourceMetrics {
    ResourceMetrics {
        resource,
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![metric],
            ..ScopeMetrics::default()
        }],
        ..ResourceMetrics::default()
    }
}

#[tokio::test]
async fn the_project_session_and_machine_come_from_the_point_or_else_its_resource() {
    let (app, token) = setup().await;
    let delta = AggregationTemporality::Delta;
    let claude = |attrs: Vec<KeyValue>, value: f64| {
        let mut attrs = attrs;
        attrs.extend([kv("model", "claude-sonnet-4-5"), kv("type", "input")]);
        sum(
            "claude_code.token.usage",
            delta,
            vec![point(attrs, T0, T0 + MINUTE, value)],
        )
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![
            // Everything on the resource (an SDK's way): the repository,
            // with its owner, is the project.
            metrics_of(
                resource_with(vec![
                    kv("service.name", "claude-code"),
                    kv("vcs.repository.name", "web-shop"),
                    kv("vcs.owner.name", "acme"),
                    kv("host.name", "ada-laptop"),
                    kv("session.id", "sess-a"),
                ]),
                claude(Vec::new(), 100.0),
            ),
            // The point's attribute wins over the resource's.
            metrics_of(
                resource_with(vec![
                    kv("project.name", "billing"),
                    kv("host.name", "build-1"),
                ]),
                claude(
                    vec![kv("project.name", "checkout"), kv("session.id", "sess-b")],
                    50.0,
                ),
            ),
            // A named project beats a repository, wherever each is; Codex's
            // conversation is its session.
            metrics_of(
                resource_with(vec![
                    kv("project", "from-resource"),
                    kv("conversation.id", "conv-c"),
                ]),
                sum(
                    "codex.turn.token_usage",
                    delta,
                    vec![point(
                        vec![
                            kv("model", "gpt-5-codex"),
                            kv("token_type", "input"),
                            kv("vcs.repository.name", "repo-on-point"),
                        ],
                        T0,
                        T0 + MINUTE,
                        20.0,
                    )],
                ),
            ),
        ],
    };
    let answer = export_metrics(&app, &token, &request).await;
    assert_eq!(answer.partial_success, None);
    assert_eq!(
        labels(&app).await,
        vec![
            some(("acme/web-shop", "sess-a", "ada-laptop")),
            some(("checkout", "sess-b", "build-1")),
            some(("from-resource", "conv-c", "")),
        ]
    );
    // Filterable through the read API, and shown there.
    let read = app.create_token("ada", TokenScope::Read).await;
    let page = app
        .request(
            axum::http::Request::get("/api/v1/events?session=sess-b&from=2026-01-01")
                .header("authorization", format!("Bearer {read}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .json();
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(
        (
            &events[0]["project"],
            &events[0]["session"],
            &events[0]["machine"]
        ),
        (&json!("checkout"), &json!("sess-b"), &json!("build-1"))
    );
    assert_eq!(events[0]["input_tokens"], 50);
}

#[tokio::test]
async fn logs_and_spans_read_the_same_attributes_and_hostile_ones_are_rejected() {
    let mut app = TestApp::new().await;
    app.state.claude_code_signal = tokentally::ingest::otlp::ClaudeCodeSignal::Logs;
    app.rebuild_router();
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    // Claude Code's log event: session on the record, the repository and
    // the host on the resource.
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource_with(vec![
                kv("vcs.repository.name", "api"),
                kv("host.name", "ada-desktop"),
            ]),
            scope_logs: vec![ScopeLogs {
                log_records: vec![api_request_record("p1")],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let response = app
        .post_bytes("/v1/logs", Some(&token), &[PROTOBUF], logs.encode_to_vec())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    // A GenAI span: the GenAI conversation is its session.
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource_with(vec![kv("project", "support-bot")]),
            scope_spans: vec![ScopeSpans {
                spans: vec![genai_span(
                    1,
                    vec![
                        kv("gen_ai.request.model", "claude-sonnet-4-5"),
                        kv("gen_ai.conversation.id", "conv-9"),
                        int("gen_ai.usage.input_tokens", 10),
                    ],
                )],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let response = app
        .post_bytes(
            "/v1/traces",
            Some(&token),
            &[PROTOBUF],
            spans.encode_to_vec(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(
        labels(&app).await,
        vec![
            some(("api", "5c1a7f0e", "ada-desktop")),
            some(("support-bot", "conv-9", "")),
        ]
    );

    // Names that only look right are refused like any other name, and the
    // reason names the field.
    let hostile = ExportMetricsServiceRequest {
        resource_metrics: vec![metrics_of(
            resource_with(vec![kv("host.name", "laptop\u{202e}")]),
            sum(
                "gemini_cli.token.usage",
                AggregationTemporality::Delta,
                vec![point(
                    vec![
                        kv("model", "gemini-2.5-pro"),
                        kv("type", "input"),
                        kv("session.id", &"s".repeat(300)),
                    ],
                    T0,
                    T0 + MINUTE,
                    5.0,
                )],
            ),
        )],
    };
    let answer = export_metrics(&app, &token, &hostile).await;
    let partial = answer.partial_success.expect("rejected");
    assert_eq!(partial.rejected_data_points, 1);
    for needle in ["session: must be at most 256", "machine: must not contain"] {
        assert!(
            partial.error_message.contains(needle),
            "{needle}: {}",
            partial.error_message
        );
    }
    assert_eq!(labels(&app).await.len(), 2, "nothing more was stored");
}
