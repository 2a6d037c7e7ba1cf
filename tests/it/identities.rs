//! Identities through a collector token (issue 14): who may attribute
//! usage to whom, and the identity each producer's item names (OTLP
//! metrics, logs and spans from the item and its resource; LiteLLM's end
//! user, key user and key). Until the identity store resolves
//! `NewEvent::identity` to accounts, these tests read it where it is made:
//! the pipeline's events, and the OTLP series state kept per identity.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::otlp::{MINUTE, PROTOBUF, T0, export_metrics, kv};
use crate::common::server::run_cli;
use crate::common::{PASSWORD, TestApp};
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use tokentally::auth::tokens::{self, TokenError, TokenGrant, TokenScope};
use tokentally::auth::users;
use tokentally::auth::{Role, UserId};
use tokentally::clock::Clock;
use tokentally::ingest::otlp::{ClaudeCodeSignal, logs, metrics, series, traces};
use tokentally::ingest::pipeline::{self, Attribution, Mapped};
use tokentally::ingest::{event::ApiEvent, litellm};
use tokentally::usage::store::NewEvent;

fn resource(mut attrs: Vec<KeyValue>) -> Option<Resource> {
    attrs.push(kv("service.name", "claude-code"));
    Some(Resource {
        attributes: attrs,
        ..Resource::default()
    })
}

/// One person's Claude Code metrics: a cumulative counter per token type
/// (values `[input, output, cache read, cache write]` at `time`), with
/// `on_resource` and `on_points` added to the resource and to each point.
fn claude_code(
    on_resource: Vec<KeyValue>,
    on_points: Vec<KeyValue>,
    time: u64,
    values: [f64; 4],
) -> ResourceMetrics {
    let points = ["input", "output", "cacheRead", "cacheCreation"]
        .into_iter()
        .zip(values)
        .map(|(kind, value)| {
            let mut attributes = on_points.clone();
            attributes.extend([
                kv("session.id", "5c1a7f0e"),
                kv("model", "claude-sonnet-4-5"),
                kv("type", kind),
            ]);
            NumberDataPoint {
                attributes,
                start_time_unix_nano: T0,
                time_unix_nano: time,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..NumberDataPoint::default()
            }
        })
        .collect();
    ResourceMetrics {
        resource: resource(on_resource),
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![Metric {
                name: "claude_code.token.usage".into(),
                unit: "tokens".into(),
                data: Some(Data::Sum(Sum {
                    data_points: points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                })),
                ..Metric::default()
            }],
            ..ScopeMetrics::default()
        }],
        ..ResourceMetrics::default()
    }
}

fn export(people: Vec<ResourceMetrics>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: people,
    }
}

/// The three people through one managed set-up: Ada's email on the
/// data points, Grace's on the resource, and jdoe named by an admin's
/// `enduser.id` on the resource (beside an install id on the points, which
/// comes later in the order). Cumulative totals at minute `minute`.
fn three_people(minute: u64) -> ExportMetricsServiceRequest {
    let time = T0 + minute * MINUTE;
    let m = minute as f64;
    export(vec![
        claude_code(
            vec![],
            vec![kv("user.email", "Ada@Example.com")],
            time,
            [10.0 * m, 100.0 * m, 1000.0 * m, 0.0],
        ),
        claude_code(
            vec![kv("user.email", "grace@example.com")],
            vec![],
            time,
            [20.0 * m, 200.0 * m, 2000.0 * m, 0.0],
        ),
        claude_code(
            vec![kv("enduser.id", "jdoe")],
            vec![kv("user.id", "install-3")],
            time,
            [30.0 * m, 300.0 * m, 3000.0 * m, 0.0],
        ),
    ])
}

/// Tokens by identity (`-` for none).
fn by_identity(events: &[NewEvent]) -> BTreeMap<String, [i64; 4]> {
    let mut found = BTreeMap::new();
    for event in events {
        let key = event
            .identity
            .as_ref()
            .map_or("-".to_owned(), ToString::to_string);
        let tokens: &mut [i64; 4] = found.entry(key).or_default();
        for (sum, n) in tokens.iter_mut().zip(event.tokens) {
            *sum += n;
        }
    }
    found
}

async fn grant(app: &TestApp, secret: &str) -> TokenGrant {
    let secret = secret.to_owned();
    app.state
        .db
        .read(move |conn| tokens::authenticate(conn, &secret))
        .await
        .expect("read")
        .expect("a valid token")
}

/// Input tokens stored, over every event.
async fn stored_input(app: &TestApp) -> i64 {
    app.state
        .db
        .read(|conn| {
            Ok::<_, tokentally::db::DbError>(conn.query_row(
                "SELECT COALESCE(SUM(input_tokens), 0) FROM events",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("stored")
}

async fn series_keys(app: &TestApp) -> BTreeSet<String> {
    app.state
        .db
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT series FROM otlp_series")?;
            let keys = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok::<_, tokentally::db::DbError>(keys)
        })
        .await
        .expect("series")
}

/// An admin `root` with a collector token.
async fn collector_app(
    configure: impl FnOnce(&mut tokentally::app::AppOptions),
) -> (TestApp, UserId, String) {
    let app = TestApp::with_options(configure).await;
    let root = app.create_user("root", Role::Admin).await;
    let token = app.create_token("root", TokenScope::Collector).await;
    (app, root, token)
}

#[tokio::test]
async fn a_collector_s_metric_points_go_to_the_person_each_names() {
    let (app, root, token) = collector_app(|_| {}).await;
    let request = three_people(1);
    let collector = grant(&app, &token).await;
    assert!(collector.attributes_by_identity());
    let (samples, rejected) = metrics::samples(&request, ClaudeCodeSignal::Metrics, true);
    assert_eq!(rejected.count, 0);
    let now = app.clock.now();
    let (events, refused) = app
        .state
        .db
        .write(move |conn| series::to_events(conn, &samples, root, now))
        .await
        .expect("events");
    assert_eq!(refused.count, 0);
    assert_eq!(
        by_identity(&events),
        BTreeMap::from([
            ("email:ada@example.com".to_owned(), [10, 100, 1000, 0]),
            ("email:grace@example.com".to_owned(), [20, 200, 2000, 0]),
            ("enduser:jdoe".to_owned(), [30, 300, 3000, 0]),
        ])
    );
    // `user` stays the token's owner: the store attributes by the identity.
    assert!(events.iter().all(|e| e.user == root));

    // Without identities (any other token), the same export names no one.
    let (samples, _) = metrics::samples(&request, ClaudeCodeSignal::Metrics, false);
    assert!(samples.iter().all(|s| s.identity.is_none()));
}

#[tokio::test]
async fn one_collector_token_keeps_each_person_s_counters_apart() {
    let (app, root, token) = collector_app(|_| {}).await;
    for minute in 1..=3 {
        let answer = export_metrics(&app, &token, &three_people(minute)).await;
        assert_eq!(answer.partial_success, None);
        // Each person's counter is differenced against their own: by
        // minute m, (10 + 20 + 30) · m input tokens in all.
        assert_eq!(stored_input(&app).await, 60 * minute as i64);
    }
    // A retry adds nothing.
    export_metrics(&app, &token, &three_people(3)).await;
    assert_eq!(stored_input(&app).await, 180);
    // One state per person and token type, under the identity's key.
    let (samples, _) = metrics::samples(&three_people(3), ClaudeCodeSignal::Metrics, true);
    let expected: BTreeSet<String> = samples
        .iter()
        .map(|s| series::state_key(s, root).0)
        .collect();
    assert_eq!(expected.len(), 12);
    assert_eq!(series_keys(&app).await, expected);
    app.assert_rollups_exact().await;
}

#[tokio::test]
async fn look_alike_series_of_two_people_are_two_series() {
    // The same attributes, swapped between resource and points: one
    // digest of attributes, but two people (the point's email wins).
    let (app, root, _) = collector_app(|_| {}).await;
    let time = T0 + MINUTE;
    let values = [5.0, 50.0, 500.0, 0.0];
    let request = export(vec![
        claude_code(
            vec![kv("user.email", "a@example.com")],
            vec![kv("user.email", "b@example.com")],
            time,
            values,
        ),
        claude_code(
            vec![kv("user.email", "b@example.com")],
            vec![kv("user.email", "a@example.com")],
            time,
            values,
        ),
    ]);
    let (samples, _) = metrics::samples(&request, ClaudeCodeSignal::Metrics, true);
    let now = app.clock.now();
    let (events, _) = app
        .state
        .db
        .write(move |conn| series::to_events(conn, &samples, root, now))
        .await
        .expect("events");
    assert_eq!(
        by_identity(&events),
        BTreeMap::from([
            ("email:a@example.com".to_owned(), [5, 50, 500, 0]),
            ("email:b@example.com".to_owned(), [5, 50, 500, 0]),
        ])
    );
    // Through the router too (a fresh app: the state above is stored).
    let (app, _, token) = collector_app(|_| {}).await;
    export_metrics(&app, &token, &request).await;
    assert_eq!(
        stored_input(&app).await,
        10,
        "neither is a retry of the other"
    );
}

/// Codex's turn metric carries no identity: two people's look alike.
fn anonymous_export(minute: u64, input: f64) -> ExportMetricsServiceRequest {
    export(vec![claude_code(
        vec![],
        vec![],
        T0 + minute * MINUTE,
        [input, 0.0, 0.0, 0.0],
    )])
}

#[tokio::test]
async fn two_members_alike_series_are_each_their_own() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    app.create_user("grace", Role::Member).await;
    let ada = app.create_token("ada", TokenScope::Ingest).await;
    let grace = app.create_token("grace", TokenScope::Ingest).await;
    export_metrics(&app, &ada, &anonymous_export(1, 100.0)).await;
    export_metrics(&app, &grace, &anonymous_export(1, 100.0)).await;
    export_metrics(&app, &ada, &anonymous_export(2, 150.0)).await;
    export_metrics(&app, &grace, &anonymous_export(2, 170.0)).await;
    // Each counter differenced against its owner's own last value.
    assert_eq!(
        app.stored_by_user().await,
        vec![("ada".into(), 2, 150), ("grace".into(), 2, 170)]
    );
}

#[tokio::test]
async fn series_state_kept_before_owners_were_in_its_key_is_still_read() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let ada = app.create_token("ada", TokenScope::Ingest).await;
    // State an older version wrote at minute 1, under the attribute digest.
    let (samples, _) = metrics::samples(
        &anonymous_export(1, 100.0),
        ClaudeCodeSignal::Metrics,
        false,
    );
    let legacy: Vec<(String, i64, i64, f64)> = samples
        .iter()
        .map(|s| {
            (
                s.series.clone(),
                s.start_ns as i64,
                s.time_ns as i64,
                s.value,
            )
        })
        .collect();
    app.state
        .db
        .write(move |conn| {
            for (key, start, time, value) in &legacy {
                conn.execute(
                    "INSERT INTO otlp_series (series, start_unix_nano, time_unix_nano, value,
                                              updated_at) VALUES (?1, ?2, ?3, ?4, 0)",
                    rusqlite::params![key, start, time, value],
                )?;
            }
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("legacy state");
    // After the upgrade, minute 2 adds only what changed since minute 1.
    export_metrics(&app, &ada, &anonymous_export(2, 130.0)).await;
    assert_eq!(app.stored_by_user().await, vec![("ada".into(), 1, 30)]);
}

fn api_request(on_record: Vec<KeyValue>, prompt: &str, input: &str) -> LogRecord {
    let mut attributes = on_record;
    attributes.extend([
        kv("event.name", "api_request"),
        kv("event.timestamp", "2026-06-10T10:00:00Z"),
        kv("prompt.id", prompt),
        kv("model", "claude-haiku-4-5"),
        kv("input_tokens", input),
        kv("output_tokens", "7"),
        kv("cost_usd", "0.001"),
    ]);
    LogRecord {
        time_unix_nano: T0,
        event_name: "claude_code.api_request".into(),
        attributes,
        ..LogRecord::default()
    }
}

fn logs_export(people: Vec<(Vec<KeyValue>, Vec<LogRecord>)>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: people
            .into_iter()
            .map(|(on_resource, records)| ResourceLogs {
                resource: resource(on_resource),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            })
            .collect(),
    }
}

/// Ada's email on her record, Grace's on the resource, jdoe's `enduser.id`
/// on the resource beside an email on the record (the end user wins).
fn three_people_logs() -> ExportLogsServiceRequest {
    logs_export(vec![
        (
            vec![],
            vec![api_request(
                vec![kv("user.email", "ADA@example.com")],
                "p1",
                "10",
            )],
        ),
        (
            vec![kv("user.email", "grace@example.com")],
            vec![api_request(vec![], "p2", "20")],
        ),
        (
            vec![kv("enduser.id", "jdoe")],
            vec![api_request(
                vec![kv("user.email", "jdoe.personal@example.com")],
                "p3",
                "30",
            )],
        ),
    ])
}

#[tokio::test]
async fn a_collector_s_log_records_go_to_the_person_each_names() {
    let (app, root, token) = collector_app(|o| o.claude_code_signal = ClaudeCodeSignal::Logs).await;
    let now = app.clock.now();
    let (events, rejected, _) =
        logs::events(&three_people_logs(), ClaudeCodeSignal::Logs, now, true);
    assert_eq!(rejected.count, 0);
    let collector = grant(&app, &token).await;
    let attributed =
        pipeline::attribute(&app.state.ingest(), &collector, events, Attribution::Strict)
            .await
            .unwrap_or_else(|_| panic!("attributed"));
    assert_eq!(
        by_identity(&attributed.events),
        BTreeMap::from([
            ("email:ada@example.com".to_owned(), [10, 7, 0, 0]),
            ("email:grace@example.com".to_owned(), [20, 7, 0, 0]),
            ("enduser:jdoe".to_owned(), [30, 7, 0, 0]),
        ])
    );
    assert!(attributed.events.iter().all(|e| e.user == root));

    // Through the router: stored (under the owner until the store maps
    // identities), nothing rejected; a record whose identity cannot be
    // stored is rejected naming the attribute, the others still count.
    let mut request = three_people_logs();
    request.resource_logs[0].scope_logs[0]
        .log_records
        .push(api_request(
            vec![kv("user.email", "mallory\u{202e}@example.com")],
            "p4",
            "1000",
        ));
    let response = app
        .post_bytes(
            "/v1/logs",
            Some(&token),
            &[PROTOBUF],
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let answer = ExportLogsServiceResponse::decode(response.raw.as_slice()).expect("protobuf");
    let partial = answer.partial_success.expect("the bad record is reported");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial
            .error_message
            .contains("user.email must not contain invisible"),
        "{}",
        partial.error_message
    );
    assert_eq!(stored_input(&app).await, 60);
}

#[tokio::test]
async fn a_collector_s_spans_name_their_people_from_span_or_resource() {
    let now: jiff::Timestamp = "2026-06-15T12:00:00Z".parse().expect("now");
    let span = |id: u8, attrs: Vec<KeyValue>| {
        let mut attributes = attrs;
        attributes.extend([
            kv("gen_ai.request.model", "gpt-5"),
            kv("gen_ai.usage.input_tokens", "100"),
            kv("gen_ai.usage.output_tokens", "5"),
        ]);
        Span {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            start_time_unix_nano: T0,
            attributes,
            ..Span::default()
        }
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(vec![kv("enduser.id", "support-bot")]),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(1, vec![]),
                    span(2, vec![kv("enduser.id", "Customer-9")]),
                ],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let (events, rejected, _) = traces::events(&request, now, true);
    assert_eq!(rejected.count, 0);
    let names: Vec<String> = events
        .iter()
        .map(|e| {
            e.identity
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(names, ["enduser:support-bot", "enduser:Customer-9"]);
    let (events, _, _) = traces::events(&request, now, false);
    assert!(events.iter().all(|e: &ApiEvent| e.identity.is_none()));
}

#[tokio::test]
async fn a_member_s_token_keeps_the_usage_whoever_the_body_names() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    app.create_user("grace", Role::Member).await;
    let ada = app.create_token("ada", TokenScope::Ingest).await;
    // Ada's exporter sends Grace's email (and an end user) on everything.
    let request = export(vec![claude_code(
        vec![kv("enduser.id", "grace")],
        vec![kv("user.email", "grace@example.com")],
        T0 + MINUTE,
        [40.0, 1.0, 0.0, 0.0],
    )]);
    export_metrics(&app, &ada, &request).await;
    let response = app
        .post_bytes(
            "/api/v1/ingest/litellm",
            Some(&ada),
            &[("content-type", "application/json")],
            json!([litellm_payload(
                "l1",
                json!({"end_user": "grace", "metadata": {"user_api_key_user_id": "grace"}})
            )])
            .to_string()
            .into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.json()["unattributed"], 1);
    assert_eq!(
        app.stored_by_user().await,
        vec![("ada".into(), 2, 40 + 100)]
    );
    // The event API's `user` stays refused for a member's token.
    let named = app
        .post_bytes(
            "/api/v1/events",
            Some(&ada),
            &[("content-type", "application/json")],
            json!([{"id": "e1", "timestamp": "2026-06-10T10:00:00Z", "model": "m",
                     "user": "grace", "input_tokens": 1}])
            .to_string()
            .into_bytes(),
        )
        .await;
    assert_eq!(
        named.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        named.body
    );
    // And the pipeline drops any identity a member's token carries.
    let now = app.clock.now();
    let (events, _, _) = logs::events(&three_people_logs(), ClaudeCodeSignal::Logs, now, true);
    let member = grant(&app, &ada).await;
    assert!(!member.attributes_by_identity());
    let attributed = pipeline::attribute(&app.state.ingest(), &member, events, Attribution::Strict)
        .await
        .unwrap_or_else(|_| panic!("attributed"));
    assert!(attributed.events.iter().all(|e| e.identity.is_none()));
}

/// A LiteLLM payload with `who` merged in (top-level fields and metadata).
fn litellm_payload(id: &str, who: Value) -> Value {
    let mut payload = json!({
        "id": id, "call_type": "acompletion", "status": "success",
        "startTime": 1780000000.5, "model": "gpt-5", "custom_llm_provider": "openai",
        "prompt_tokens": 100, "completion_tokens": 10, "response_cost": 0.001,
        "end_user": null,
        "metadata": {"user_api_key_team_alias": "support"}
    });
    for (key, value) in who.as_object().expect("object") {
        match (key.as_str(), value) {
            ("metadata", Value::Object(more)) => {
                for (k, v) in more {
                    payload["metadata"][k] = v.clone();
                }
            }
            _ => payload[key] = value.clone(),
        }
    }
    payload
}

/// Three end users and two keys through one proxy.
fn litellm_batch() -> Vec<Value> {
    let hash = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b";
    vec![
        litellm_payload(
            "c1",
            json!({"end_user": "customer-1", "metadata": {"user_api_key_alias": "web-app"}}),
        ),
        litellm_payload(
            "c2",
            json!({"metadata": {"user_api_key_end_user_id": "customer-2",
                                 "user_api_key_alias": "web-app"}}),
        ),
        litellm_payload(
            "c3",
            json!({"metadata": {"user_api_key_user_id": "ada",
                                 "user_api_key_alias": "ada-laptop"}}),
        ),
        litellm_payload(
            "c4",
            json!({"metadata": {"user_api_key_alias": "ci-runner"}}),
        ),
        litellm_payload("c5", json!({"metadata": {"user_api_key_hash": hash}})),
        litellm_payload("c6", json!({})),
    ]
}

#[tokio::test]
async fn litellm_through_a_collector_goes_by_user_then_key() {
    let (app, root, token) = collector_app(|_| {}).await;
    let now = app.clock.now();
    let events: Vec<ApiEvent> = litellm_batch()
        .iter()
        .map(|payload| match litellm::parse(payload, now, true) {
            Ok(Mapped::Event(event)) => event,
            _ => panic!("{payload}"),
        })
        .collect();
    let collector = grant(&app, &token).await;
    let attributed = pipeline::attribute(
        &app.state.ingest(),
        &collector,
        events,
        Attribution::OwnerFallback,
    )
    .await
    .unwrap_or_else(|_| panic!("attributed"));
    let names: Vec<String> = attributed
        .events
        .iter()
        .map(|e| e.identity.as_ref().map_or("-".into(), ToString::to_string))
        .collect();
    assert_eq!(
        &names[..4],
        [
            "litellm_user:customer-1",
            "litellm_user:customer-2",
            "litellm_user:ada",
            "litellm_key:ci-runner",
        ]
    );
    assert!(names[4].starts_with("litellm_key:sha256:"), "{}", names[4]);
    assert_eq!(names[5], "-", "naming no one: the token's owner's");
    assert!(attributed.events.iter().all(|e| e.user == root));
    assert_eq!(attributed.unattributed, 0);

    // Through the router: all stored, none "unattributed".
    let response = app
        .post_bytes(
            "/api/v1/ingest/litellm",
            Some(&token),
            &[("content-type", "application/json")],
            json!(litellm_batch()).to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let answer = response.json();
    assert_eq!(
        (answer["accepted"].clone(), answer["unattributed"].clone()),
        (json!(6), json!(0))
    );

    // A value that cannot be an identity refuses the request, naming it.
    let bad = json!([litellm_payload(
        "c7",
        json!({"end_user": "cust\u{0007}omer"})
    )]);
    let response = app
        .post_bytes(
            "/api/v1/ingest/litellm",
            Some(&token),
            &[("content-type", "application/json")],
            bad.to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.body
    );
    assert_eq!(
        response.json()["errors"][0]["field"],
        "end_user",
        "{}",
        response.body
    );
}

#[tokio::test]
async fn collector_tokens_are_an_admin_s_and_cannot_read() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("boss", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let refused = app
        .state
        .db
        .write(|conn| tokens::create(conn, "ada", TokenScope::Collector, "x", 0))
        .await;
    assert!(
        matches!(&refused, Err(TokenError::CollectorNeedsAdmin(name)) if name == "ada"),
        "{refused:?}"
    );

    // The tokens page offers the scope to admins only, and refuses it
    // for a member's token whoever asks.
    let member = app.login_browser("ada", PASSWORD).await;
    let page = app.get("/tokens", Some(&member.cookie)).await;
    assert!(!page.body.contains("value=\"collector\""));
    let asked = app
        .submit(
            "/tokens",
            &member,
            &[("name", "team"), ("scope", "collector")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(asked.body.contains("not an admin"), "{}", asked.body);
    let admin = app.login_browser("root", PASSWORD).await;
    let page = app.get("/tokens", Some(&admin.cookie)).await;
    assert!(page.body.contains("value=\"collector\""));
    let for_member = app
        .submit(
            "/tokens",
            &admin,
            &[("name", "team"), ("scope", "collector"), ("user", "ada")],
        )
        .await;
    assert_eq!(for_member.status, StatusCode::UNPROCESSABLE_ENTITY);
    let created = app
        .submit(
            "/tokens",
            &admin,
            &[("name", "team"), ("scope", "collector"), ("user", "root")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created
        .body
        .split("id=\"new-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new token is shown")
        .to_owned();

    // It sends, it does not read.
    let read = app
        .request(
            axum::http::Request::get("/api/v1/usage")
                .header("authorization", format!("Bearer {secret}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN);
    assert!(read.body.contains("collector scope"), "{}", read.body);
    let sent = export_metrics(&app, &secret, &three_people(1)).await;
    assert_eq!(sent.partial_success, None);

    // Its owner demoted, it stops at once (the role is read at each use).
    let now = app.state.now_unix();
    app.state
        .db
        .write(move |conn| users::set_role(conn, "root", Role::Member, now))
        .await
        .expect("demoted");
    assert!(!grant(&app, &secret).await.attributes_by_identity());
    let refused = app
        .post_bytes(
            "/v1/metrics",
            Some(&secret),
            &[PROTOBUF],
            three_people(2).encode_to_vec(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("no longer an admin"),
        "{}",
        refused.body
    );
}

#[test]
fn the_cli_creates_collector_tokens_for_admins_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    for (name, role) in [("root", "admin"), ("ada", "member")] {
        let (ok, _, err) = run_cli(
            &[
                "--data-dir",
                data,
                "user",
                "add",
                name,
                "--role",
                role,
                "--password-stdin",
            ],
            &[],
            Some("a long enough password\n"),
        );
        assert!(ok, "{err}");
    }
    let create = |user: &str| {
        run_cli(
            &[
                "--data-dir",
                data,
                "token",
                "create",
                "--user",
                user,
                "--scope",
                "collector",
                "--name",
                "managed settings",
            ],
            &[],
            None,
        )
    };
    let (ok, out, err) = create("ada");
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("\"ada\" is not an admin"), "{err}");
    let (ok, secret, err) = create("root");
    assert!(ok, "{err}");
    assert!(secret.trim().starts_with("tt_"), "{secret}");
    let (ok, list, err) = run_cli(&["--data-dir", data, "token", "list"], &[], None);
    assert!(ok, "{err}");
    assert!(list.contains("collector"), "{list}");
}

#[tokio::test]
async fn tokens_made_before_the_collector_scope_survive_the_upgrade() {
    use tokentally::db::{self, Db, DbOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokentally.db");
    // A database of an older schema (without the scope), with a token.
    // (Version 10: building 11 needs the audit key, which `Db::open` has.)
    db::create_at_version(&path, 10).expect("a version 10 database");
    let secret = {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute(
            "INSERT INTO users (username, role, created_at, updated_at)
             VALUES ('root', 'admin', 0, 0)",
            [],
        )
        .expect("user");
        let old = tokens::create(&conn, "root", TokenScope::Ingest, "laptop", 5).expect("token");
        let refused = conn.execute(
            "UPDATE api_tokens SET scope = 'collector' WHERE id = ?1",
            [old.info.id.0],
        );
        assert!(refused.is_err(), "version 10 has no collector scope");
        old.secret
    };
    let db = Db::open(&path, &DbOptions::default()).expect("upgrades");
    let (kept, collector) = db
        .write(move |conn| {
            let kept = tokens::authenticate(conn, &secret)?;
            let collector = tokens::create(conn, "root", TokenScope::Collector, "team", 6)?;
            Ok::<_, TokenError>((kept, tokens::authenticate(conn, &collector.secret)?))
        })
        .await
        .expect("tokens");
    db.shutdown().await;
    let kept = kept.expect("the old token still works");
    assert_eq!(
        (kept.scope, kept.user.username.as_str()),
        (TokenScope::Ingest, "root")
    );
    assert_eq!(collector.map(|g| g.scope), Some(TokenScope::Collector));
}
