//! The OpenAPI document against the real router: every documented
//! operation is served and every served API path documented; every answer
//! of a table of real requests has a documented status, a documented
//! content type and a body valid against the documented schema; and the
//! event schema says yes and no to the same events the ingest API does.

use std::collections::BTreeSet;

use crate::common::{PASSWORD, TestApp, TestResponse};
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

/// The document as the binary embeds it.
struct Doc(Value);

impl Doc {
    fn load() -> Doc {
        Doc(serde_json::from_str(tokentally::openapi::DOCUMENT).expect("the document is JSON"))
    }

    /// Follows a local `$ref` (`#/components/...`), if `value` is one.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("only local references: {reference}"));
                self.resolve(
                    self.0
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("unresolved {reference}")),
                )
            }
            None => value,
        }
    }

    fn operations(&self) -> BTreeSet<(String, String)> {
        let paths = self.0["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().expect("path item");
                methods.keys().map(move |m| (path.clone(), m.clone()))
            })
            .collect()
    }

    /// A validator for `schema` whose references resolve in this document.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.0["components"],
            "allOf": [schema],
        });
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema {schema} does not compile: {e}"))
    }

    /// Checks one real answer to `method path` against the document.
    fn check(&self, method: &str, path: &str, response: &TestResponse) {
        let what = format!("{method} {path} → {}", response.status);
        let operation = &self.0["paths"][path][method];
        assert!(operation.is_object(), "{what}: operation not documented");
        let documented = &operation["responses"][response.status.as_str()];
        assert!(
            documented.is_object(),
            "{what}: status not documented; body {}",
            response.body
        );
        let documented = self.resolve(documented);
        let Some(content) = documented.get("content").and_then(Value::as_object) else {
            return;
        };
        let content_type = response
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_else(|| panic!("{what}: no content type"))
            .trim();
        let media = content.get(content_type).unwrap_or_else(|| {
            panic!(
                "{what}: content type {content_type} not documented (documented: {:?})",
                content.keys().collect::<Vec<_>>()
            )
        });
        if content_type == "application/json" {
            let body = response.json();
            let validator = self.validator(&media["schema"]);
            let problems: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(problems.is_empty(), "{what}: {problems:#?}\nbody: {body}");
        }
    }
}

/// Every local reference in the document points at something.
#[test]
fn every_reference_resolves() {
    fn walk(doc: &Doc, value: &Value, found: &mut usize) {
        match value {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    doc.resolve(value);
                    *found += 1;
                }
                map.values().for_each(|v| walk(doc, v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v, found)),
            _ => {}
        }
    }
    let doc = Doc::load();
    let mut found = 0;
    walk(&doc, &doc.0, &mut found);
    assert!(found > 50, "only {found} references: is the walk looking?");
    assert_eq!(doc.0["openapi"], "3.1.0");
    assert_eq!(doc.0["info"]["version"], env!("CARGO_PKG_VERSION"));
}

/// The validation above can fail: wrong bodies are refused.
#[test]
fn the_schemas_refuse_wrong_bodies() {
    let doc = Doc::load();
    let schema =
        |name: &str| doc.validator(&json!({"$ref": format!("#/components/schemas/{name}")}));
    assert!(schema("IngestOutcome").is_valid(&json!({"accepted": 3, "duplicates": 0})));
    assert!(!schema("IngestOutcome").is_valid(&json!({"accepted": "3", "duplicates": 0})));
    assert!(!schema("EventsPage").is_valid(&json!({"events": [{"id": "x"}], "next": null})));
    assert!(!schema("UsageSeries").is_valid(&json!({"rows": []})));
    let row = json!({"bucket": "2026-06-15", "group": null, "start": "2026-06-15T00:00:00+00:00",
        "input_tokens": 1, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "cost": "0.100000", "cost_in_unit": "0.092000", "events": 1, "unpriced_events": 0,
        "reported_cost": "0.000000", "computed_cost": "0.100000"});
    assert!(schema("UsageRow").is_valid(&row));
    let mut extra = row.clone();
    extra["colour"] = json!("red");
    assert!(
        !schema("UsageRow").is_valid(&extra),
        "rows have no other fields"
    );
    let mut bad_cost = row;
    bad_cost["cost"] = json!("0.1");
    assert!(
        !schema("UsageRow").is_valid(&bad_cost),
        "money has six decimals"
    );
}

/// The document lists exactly the API paths the router serves with a token
/// or without login (the HTML pages are not API and not in it).
#[test]
fn documented_paths_are_the_api_paths() {
    let doc = Doc::load();
    let documented: BTreeSet<&str> = doc.0["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    let mut served: BTreeSet<&str> = BTreeSet::new();
    served.extend(tokentally::ingest::paths());
    served.extend(tokentally::usage::paths());
    served.insert(tokentally::metrics::PATH);
    served.extend(["/healthz", "/readyz", "/api/v1/openapi.json"]);
    assert_eq!(documented, served);
}

struct World {
    app: TestApp,
    admin: String,
    member_a: String,
    ingest_a: String,
    read_a: String,
}

async fn world() -> World {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("a", Role::Member).await;
    app.create_user("b", Role::Member).await;
    let admin = app.login("root", PASSWORD).await;
    let member_a = app.login("a", PASSWORD).await;
    let ingest_a = app.create_token("a", TokenScope::Ingest).await;
    let read_a = app.create_token("a", TokenScope::Read).await;
    World {
        app,
        admin,
        member_a,
        ingest_a,
        read_a,
    }
}

/// Who sends a request.
enum As<'a> {
    Nobody,
    Cookie(&'a str),
    Token(&'a str),
}

async fn send(
    app: &TestApp,
    method: Method,
    uri: &str,
    who: As<'_>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> TestResponse {
    let mut builder = Request::builder().method(method).uri(uri);
    match who {
        As::Nobody => {}
        As::Cookie(cookie) => builder = builder.header(header::COOKIE, cookie),
        As::Token(token) => {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"))
        }
    }
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    app.request(builder.body(Body::from(body)).expect("request"))
        .await
}

const NDJSON: &str = "application/x-ndjson";
const JSON: &str = "application/json";

fn events_ndjson() -> Vec<u8> {
    let mut lines = String::new();
    // Models without a default price: only the reported cost counts.
    for (i, model) in ["house-large", "house-small", "house-large"]
        .iter()
        .enumerate()
    {
        lines.push_str(
            &json!({
                "id": format!("doc-{i}"),
                "timestamp": format!("2026-06-1{}T10:00:00Z", i + 2),
                "model": model,
                "activity": "chat",
                "project": "docs",
                "input_tokens": 100 * (i + 1),
                "output_tokens": 10,
                "cost": if i == 0 { json!("0.012") } else { Value::Null },
                "session": if i < 2 { json!(format!("docs-session-{i}")) } else { Value::Null },
                "machine": if i == 0 { json!("docs-host") } else { Value::Null },
            })
            .to_string(),
        );
        lines.push('\n');
    }
    lines.into_bytes()
}

/// A gauge nobody counts tokens with: rejected, and said so.
fn otlp_metrics_with_a_stranger() -> Vec<u8> {
    json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "room.temperature",
        "gauge": {"dataPoints": [{"asInt": "21", "timeUnixNano": "1781517600000000000"}]}
    }]}]}]})
    .to_string()
    .into_bytes()
}

/// One request of the table below, and the status it must get.
struct Case<'a> {
    method: Method,
    /// The path as the document names it.
    documented: &'static str,
    uri: &'static str,
    who: As<'a>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expected: u16,
}

impl<'a> Case<'a> {
    fn post(
        path: &'static str,
        who: As<'a>,
        content_type: &'static str,
        body: Vec<u8>,
        expected: u16,
    ) -> Case<'a> {
        Case {
            method: Method::POST,
            documented: path,
            uri: path,
            who,
            content_type: Some(content_type),
            body,
            expected,
        }
    }

    fn get(documented: &'static str, uri: &'static str, who: As<'a>, expected: u16) -> Case<'a> {
        Case {
            method: Method::GET,
            documented,
            uri,
            who,
            content_type: None,
            body: Vec::new(),
            expected,
        }
    }
}

/// Real answers, from every documented operation and most of their
/// documented statuses, each checked against the document.
#[tokio::test]
async fn real_answers_match_the_document() {
    let w = world().await;
    let doc = Doc::load();
    let (app, admin, member_a) = (&w.app, w.admin.as_str(), w.member_a.as_str());
    let (ingest, read) = (w.ingest_a.as_str(), w.read_a.as_str());
    let litellm = json!([
        {"id": "ll-1", "model": "gpt-4o", "startTime": 1781517600, "prompt_tokens": 12, "completion_tokens": 3, "response_cost": 0.0004},
        {"id": "ll-2", "model": "gpt-4o", "startTime": 1781517600, "status": "failure"}
    ])
    .to_string()
    .into_bytes();
    // (method, documented path, request path, caller, content type, body, expected status)
    let cases = vec![
        Case::post("/api/v1/events", As::Token(ingest), NDJSON, events_ndjson(), 200),
        Case::post("/api/v1/events", As::Token(ingest), NDJSON, events_ndjson(), 200),
        Case::post("/api/v1/events", As::Token(ingest), NDJSON, b"{\"id\":\"x\"}\n{\"id\":\"y\",\"model\":\"m\",\"timestamp\":\"2026-06-15T10:00:00Z\",\"input_tokens\":-1}\n".to_vec(), 422),
        Case::post("/api/v1/events", As::Token(ingest), JSON, br#"[{"id":"x","model":"m","timestamp":"2026-06-15T10:00:00Z","colour":"red"}]"#.to_vec(), 422),
        Case::post("/api/v1/events", As::Token(ingest), JSON, b"[{".to_vec(), 400),
        Case::post("/api/v1/events", As::Token(ingest), "text/plain", b"hello".to_vec(), 415),
        Case::post("/api/v1/events", As::Nobody, JSON, b"[]".to_vec(), 401),
        Case::post("/api/v1/events", As::Token(read), JSON, b"[]".to_vec(), 403),
        Case::post("/api/v1/ingest/litellm", As::Token(ingest), JSON, litellm, 200),
        Case::post("/api/v1/ingest/litellm", As::Token(ingest), JSON, br#"{"model":"m"}"#.to_vec(), 422),
        Case::post("/v1/metrics", As::Token(ingest), JSON, b"{}".to_vec(), 200),
        Case::post("/v1/metrics", As::Token(ingest), JSON, otlp_metrics_with_a_stranger(), 200),
        Case::post("/v1/metrics", As::Token(ingest), "application/x-protobuf", Vec::new(), 200),
        Case::post("/v1/metrics", As::Token(ingest), JSON, b"not otlp".to_vec(), 400),
        Case::post("/v1/logs", As::Token(ingest), JSON, b"{}".to_vec(), 200),
        Case::post("/v1/traces", As::Token(ingest), JSON, b"{}".to_vec(), 200),
        Case::post("/v1/traces", As::Nobody, JSON, b"{}".to_vec(), 401),
        Case::get("/api/v1/usage", "/api/v1/usage?range=30d", As::Cookie(admin), 200),
        Case::get("/api/v1/usage", "/api/v1/usage?group_by=model&tz=Europe/Berlin&bucket=week", As::Token(read), 200),
        Case::get("/api/v1/usage", "/api/v1/usage?group_by=model&limit=1", As::Cookie(admin), 200),
        Case::get("/api/v1/usage", "/api/v1/usage?group_by=model&limit=1001", As::Cookie(admin), 400),
        Case::get("/api/v1/usage", "/api/v1/usage?bucket=fortnight", As::Cookie(admin), 400),
        Case::get("/api/v1/usage", "/api/v1/usage?view=b", As::Cookie(member_a), 403),
        Case::get("/api/v1/usage", "/api/v1/usage", As::Nobody, 401),
        Case::get("/api/v1/usage", "/api/v1/usage?view=nobody", As::Cookie(admin), 400),
        Case::get("/api/v1/summary", "/api/v1/summary", As::Token(read), 200),
        Case::get("/api/v1/summary", "/api/v1/summary", As::Cookie(admin), 200),
        Case::get("/api/v1/summary", "/api/v1/summary?view=b", As::Cookie(member_a), 403),
        Case::get("/api/v1/summary", "/api/v1/summary?view=nobody", As::Cookie(admin), 400),
        Case::get("/api/v1/summary", "/api/v1/summary", As::Nobody, 401),
        Case::get("/api/v1/events", "/api/v1/events?limit=2&sort=cost", As::Cookie(admin), 200),
        Case::get("/api/v1/events", "/api/v1/events?session=docs-session-0,docs-session-1&sort=machine", As::Token(read), 200),
        Case::get("/api/v1/usage", "/api/v1/usage?machine=docs-host&group_by=project&bucket=hour&range=7d", As::Cookie(admin), 200),
        Case::get("/api/v1/events", "/api/v1/events?sort=colour", As::Token(read), 400),
        Case::get("/api/v1/events", "/api/v1/events", As::Token(ingest), 403),
        Case::get("/api/v1/usage/events", "/api/v1/usage/events?model=house-small", As::Token(read), 200),
        Case::get("/api/v1/events.csv", "/api/v1/events.csv?tz=Asia/Kolkata", As::Cookie(member_a), 200),
        Case::get("/api/v1/events.csv", "/api/v1/events.csv?order=sideways", As::Cookie(member_a), 400),
        Case::get("/api/v1/usage/events.csv", "/api/v1/usage/events.csv", As::Token(read), 200),
        Case::get("/healthz", "/healthz", As::Nobody, 200),
        Case::get("/readyz", "/readyz", As::Nobody, 200),
        Case::get("/metrics", "/metrics", As::Cookie(admin), 200),
        Case::get("/metrics", "/metrics", As::Cookie(member_a), 403),
        Case::get("/api/v1/openapi.json", "/api/v1/openapi.json", As::Nobody, 200),
    ];
    let mut covered = BTreeSet::new();
    for Case {
        method,
        documented,
        uri,
        who,
        content_type,
        body,
        expected,
    } in cases
    {
        let response = send(app, method.clone(), uri, who, content_type, body).await;
        assert_eq!(
            response.status.as_u16(),
            expected,
            "{method} {uri}: {}",
            response.body
        );
        let method = method.as_str().to_ascii_lowercase();
        doc.check(&method, documented, &response);
        covered.insert((documented.to_owned(), method));
    }
    assert_eq!(covered, doc.operations(), "every operation is exercised");
}

/// The answers that carry data are not vacuous: the checks above saw rows.
#[tokio::test]
async fn read_answers_carry_what_was_ingested() {
    let w = world().await;
    let response = send(
        &w.app,
        Method::POST,
        "/api/v1/events",
        As::Token(&w.ingest_a),
        Some(NDJSON),
        events_ndjson(),
    )
    .await;
    assert_eq!(
        response.json(),
        json!({"accepted": 3, "duplicates": 0, "conflicts": 0})
    );
    let page = send(
        &w.app,
        Method::GET,
        "/api/v1/events?sort=input_tokens&order=asc",
        As::Token(&w.read_a),
        None,
        Vec::new(),
    )
    .await
    .json();
    let ids: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, ["doc-0", "doc-1", "doc-2"]);
    let same = send(
        &w.app,
        Method::GET,
        "/api/v1/usage/events?sort=input_tokens&order=asc",
        As::Token(&w.read_a),
        None,
        Vec::new(),
    )
    .await
    .json();
    assert_eq!(page, same, "the two paths are one endpoint");
    let series = send(
        &w.app,
        Method::GET,
        "/api/v1/usage?group_by=model&tz=America/New_York",
        As::Cookie(&w.member_a),
        None,
        Vec::new(),
    )
    .await
    .json();
    assert_eq!(series["zone"], "America/New_York", "tz names the zone");
    assert_eq!(series["totals"]["input_tokens"], 600);
    assert_eq!(series["totals"]["cost"], "0.012000");
    assert_eq!(series["totals"]["unpriced_events"], 2);
}

/// The event schema and the ingest API agree, event by event.
#[tokio::test]
async fn the_event_schema_accepts_what_the_api_accepts() {
    let w = world().await;
    let doc = Doc::load();
    let validator = doc.validator(&json!({"$ref": "#/components/schemas/EventIn"}));
    let base = json!({"timestamp": "2026-06-15T10:00:00Z", "model": "m"});
    let with = |id: usize, extra: Value| {
        let mut event = base.clone();
        event["id"] = json!(format!("schema-{id}"));
        for (key, value) in extra.as_object().expect("object") {
            event[key] = value.clone();
        }
        event
    };
    let events = vec![
        with(0, json!({})),
        with(
            1,
            json!({"user": null, "source": null, "provider": "anthropic", "cost": "0.25"}),
        ),
        with(
            2,
            json!({"cost": 0.5, "input_tokens": 5, "cache_read_tokens": 0}),
        ),
        with(3, json!({"input_tokens": -1})),
        with(4, json!({"output_tokens": 1.5})),
        with(5, json!({"input_tokens": "5"})),
        with(6, json!({"cost": "0.1234567"})),
        with(7, json!({"cost": "-1"})),
        with(8, json!({"colour": "red"})),
        with(9, json!({"model": ""})),
        with(10, json!({"timestamp": "2026-06-15T10:00:00"})),
        with(11, json!({"timestamp": 1781517600})),
        with(12, json!({"activity": "a".repeat(257)})),
        with(13, json!({"id": 7})),
        with(14, json!({"input_tokens": 1_000_000_000_001_i64})),
        with(15, json!({"session": "s-1", "machine": "ci-runner-3"})),
        with(16, json!({"machine": "m".repeat(257)})),
        with(17, json!({"session": 5})),
        json!({"timestamp": "2026-06-15T10:00:00Z", "model": "m"}),
        json!("an event"),
    ];
    let mut agreed = (0, 0);
    for event in events {
        let schema_says = validator.is_valid(&event);
        let response = send(
            &w.app,
            Method::POST,
            "/api/v1/events",
            As::Token(&w.ingest_a),
            Some(JSON),
            json!([event]).to_string().into_bytes(),
        )
        .await;
        let api_says = response.status.as_u16() == 200;
        assert_eq!(
            schema_says, api_says,
            "{event}: schema {schema_says}, API {} {}",
            response.status, response.body
        );
        if api_says {
            agreed.0 += 1;
        } else {
            agreed.1 += 1;
        }
    }
    assert_eq!(agreed, (4, 16), "(accepted, refused)");
}

/// Every read of usage documents every filter the query layer takes.
#[test]
fn every_read_operation_documents_every_filter() {
    let doc = Doc::load();
    let filters = [
        "user", "model", "activity", "project", "source", "session", "machine", "identity",
    ];
    // The summary takes no filter: it is the reader's whole usage.
    for path in tokentally::usage::paths()
        .into_iter()
        .filter(|p| *p != "/api/v1/summary")
    {
        let parameters: Vec<String> = doc.0["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no parameters"))
            .iter()
            .filter_map(|p| doc.resolve(p)["name"].as_str().map(str::to_owned))
            .collect();
        for filter in filters {
            assert!(
                tokentally::usage::params::NAMES.contains(&filter),
                "{filter} is a parameter of the query layer"
            );
            assert!(
                parameters.iter().any(|p| p == filter),
                "{path} does not document {filter}"
            );
        }
    }
}
