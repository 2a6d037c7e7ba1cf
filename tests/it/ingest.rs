//! The event API over the real router and a real database: who may send,
//! what is accepted, what is refused (and then nothing is written), and
//! that re-sending never counts twice.

use std::io::Write;

use crate::common::{self, TestApp, TestResponse};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::{self, TokenId, TokenScope};
use tokentally::db::DbError;

const EVENTS: &str = "/api/v1/events";
const JSON: (&str, &str) = ("content-type", "application/json");
const NDJSON: (&str, &str) = ("content-type", "application/x-ndjson");

fn event(id: &str) -> Value {
    json!({
        "id": id, "timestamp": "2026-06-01T10:00:00+02:00", "model": "claude-sonnet-4-5",
        "activity": "chat", "input_tokens": 1000, "output_tokens": 200,
        "cache_read_tokens": 50, "cache_write_tokens": 0
    })
}

async fn post_json(app: &TestApp, token: &str, events: &Value) -> TestResponse {
    app.post_bytes(
        EVENTS,
        Some(token),
        &[JSON],
        events.to_string().into_bytes(),
    )
    .await
}

#[tokio::test]
async fn events_are_stored_once_however_often_they_are_sent() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let batch = json!([event("a"), event("b"), event("c")]);
    let first = post_json(&app, &token, &batch).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        first.json(),
        json!({"accepted": 3, "duplicates": 0, "conflicts": 0})
    );
    let again = post_json(&app, &token, &batch).await;
    assert_eq!(
        again.json(),
        json!({"accepted": 0, "duplicates": 3, "conflicts": 0})
    );
    // NDJSON with one new event and one already stored.
    let lines = format!("{}\n\n{}\n", event("d"), event("a"));
    let mixed = app
        .post_bytes(EVENTS, Some(&token), &[NDJSON], lines.into_bytes())
        .await;
    assert_eq!(
        mixed.json(),
        json!({"accepted": 1, "duplicates": 1, "conflicts": 0})
    );
    // A single object is one event.
    let single = post_json(&app, &token, &event("e")).await;
    assert_eq!(
        single.json(),
        json!({"accepted": 1, "duplicates": 0, "conflicts": 0})
    );
    assert_eq!(
        app.stored_by_user().await,
        vec![("ada".to_owned(), 5, 5000)]
    );
    app.assert_rollups_exact().await;
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let lines: String = (0..50)
        .map(|i| format!("{}\n", event(&format!("g{i}"))))
        .collect();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(lines.as_bytes()).expect("gzip");
    let gzipped = encoder.finish().expect("gzip");
    let response = app
        .post_bytes(
            EVENTS,
            Some(&token),
            &[NDJSON, ("content-encoding", "gzip")],
            gzipped,
        )
        .await;
    assert_eq!(
        response.json(),
        json!({"accepted": 50, "duplicates": 0, "conflicts": 0})
    );
    let broken = app
        .post_bytes(
            EVENTS,
            Some(&token),
            &[NDJSON, ("content-encoding", "gzip")],
            b"not gzip".to_vec(),
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST, "{}", broken.body);
    assert!(
        broken.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("gzip")
    );
}

/// NDJSON of two events padded with a line of spaces (which the parser
/// skips) to exactly `decoded_len` bytes, gzipped.
fn padded_gzip(prefix: &str, decoded_len: usize) -> Vec<u8> {
    let head = format!("{}\n", event(&format!("{prefix}-first")));
    let tail = format!("\n{}\n", event(&format!("{prefix}-last")));
    let padding = decoded_len - head.len() - tail.len();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(head.as_bytes()).expect("gzip");
    let spaces = vec![b' '; 1024 * 1024];
    let mut left = padding;
    while left > 0 {
        let n = left.min(spaces.len());
        encoder.write_all(&spaces[..n]).expect("gzip");
        left -= n;
    }
    encoder.write_all(tail.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn a_gzip_body_inflating_past_64_mib_is_refused_and_one_at_the_cap_is_accepted() {
    use tokentally::ingest::body::{MAX_BODY_BYTES, MAX_DECODED_BYTES};
    assert_eq!(
        MAX_DECODED_BYTES,
        64 * 1024 * 1024,
        "the cap the message names"
    );
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let gzip = [NDJSON, ("content-encoding", "gzip")];
    // One byte over: refused, naming the cap, and nothing is stored.
    let over = padded_gzip("over", MAX_DECODED_BYTES + 1);
    assert!(over.len() < MAX_BODY_BYTES, "small on the wire");
    let refused = app.post_bytes(EVENTS, Some(&token), &gzip, over).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.json()["error"],
        "the decompressed body is over 64 MiB; send fewer events per request"
    );
    assert_eq!(app.stored_by_user().await, vec![]);
    // Exactly at the cap: accepted, both events stored.
    let at_cap = padded_gzip("at-cap", MAX_DECODED_BYTES);
    let accepted = app.post_bytes(EVENTS, Some(&token), &gzip, at_cap).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(
        accepted.json(),
        json!({"accepted": 2, "duplicates": 0, "conflicts": 0})
    );
    assert_eq!(
        app.stored_by_user().await,
        vec![("ada".to_owned(), 2, 2000)]
    );
}

#[tokio::test]
async fn an_invalid_event_rejects_the_whole_request_naming_each_problem() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let mut bad_time = event("x");
    bad_time["timestamp"] = json!("yesterday");
    let mut bad_tokens = event("y");
    bad_tokens["output_tokens"] = json!(-3);
    let response = post_json(&app, &token, &json!([event("ok"), bad_time, bad_tokens])).await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.body
    );
    let body = response.json();
    let errors = body["errors"].as_array().expect("errors");
    let listed: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap_or(99),
                e["field"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(listed, vec![(1, "timestamp"), (2, "output_tokens")]);
    assert!(
        errors
            .iter()
            .all(|e| e["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
    assert_eq!(
        app.stored_by_user().await,
        vec![],
        "nothing of the request was written"
    );

    // NDJSON errors carry their line numbers; a line that is not JSON too.
    let lines = format!("{}\n{{not json\n\n{}\n", event("1"), json!({"id": "2"}));
    let response = app
        .post_bytes(EVENTS, Some(&token), &[NDJSON], lines.into_bytes())
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = response.json()["errors"].clone();
    assert_eq!(errors[0]["line"], 2);
    assert_eq!(errors[0]["field"], Value::Null);
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON")
    );
    assert!(
        errors
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["line"] == 4 && e["field"] == "timestamp")
    );
    assert_eq!(app.stored_by_user().await, vec![]);
}

#[tokio::test]
async fn malformed_and_oversized_requests_get_clear_answers() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    type Case<'a> = (&'a [(&'a str, &'a str)], Vec<u8>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            &[JSON],
            b"[{".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (&[JSON], b"42".to_vec(), StatusCode::BAD_REQUEST, "array"),
        (
            &[JSON],
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "no events",
        ),
        (
            &[("content-type", "text/csv")],
            b"a,b".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/csv",
        ),
        (
            &[],
            b"[]".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            &[JSON, ("content-encoding", "br")],
            b"[]".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "br",
        ),
        (
            &[JSON],
            vec![b' '; 17 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "MiB",
        ),
    ];
    for (headers, body, status, needle) in cases {
        let response = app.post_bytes(EVENTS, Some(&token), headers, body).await;
        assert_eq!(response.status, status, "{headers:?}: {}", response.body);
        let message = response.json()["error"].as_str().unwrap_or("").to_owned();
        assert!(message.contains(needle), "{headers:?}: {message}");
    }
    let too_many: Vec<Value> = (0..10_001).map(|i| event(&format!("m{i}"))).collect();
    let response = post_json(&app, &token, &Value::Array(too_many)).await;
    assert_eq!(
        response.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        response.body
    );
    assert_eq!(app.stored_by_user().await, vec![]);
}

#[tokio::test]
async fn who_may_send_and_for_whom() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    app.create_user("grace", Role::Member).await;
    let admin = app.create_token("root", TokenScope::Ingest).await;
    let ada = app.create_token("ada", TokenScope::Ingest).await;
    let ada_reader = app.create_token("ada", TokenScope::Read).await;

    // No token, a wrong one, a read token: refused with a JSON reason.
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("tt_0000"), StatusCode::UNAUTHORIZED),
        (Some("not-even-a-token"), StatusCode::UNAUTHORIZED),
        (Some(ada_reader.as_str()), StatusCode::FORBIDDEN),
    ] {
        let response = app
            .post_bytes(
                EVENTS,
                token,
                &[JSON],
                json!([event("z")]).to_string().into_bytes(),
            )
            .await;
        assert_eq!(response.status, status, "{token:?}");
        assert!(response.json()["error"].is_string());
    }
    // A session cookie is no substitute for a token on this path.
    let cookie = app.login("ada", common::PASSWORD).await;
    let request = axum::http::Request::post(EVENTS)
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!([event("z")]).to_string()))
        .expect("request");
    assert_eq!(app.request(request).await.status, StatusCode::UNAUTHORIZED);

    // A member's token sends only the member's events.
    let mut for_grace = event("m1");
    for_grace["user"] = json!("grace");
    let refused = post_json(&app, &ada, &json!([for_grace.clone()])).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json()["errors"][0]["field"], "user");
    let mut as_ada = event("m2");
    as_ada["user"] = json!("ADA");
    assert_eq!(
        post_json(&app, &ada, &json!([as_ada])).await.status,
        StatusCode::OK
    );

    // An admin's token attributes to named users; unknown names are refused.
    let mut for_nobody = event("a2");
    for_nobody["user"] = json!("nobody");
    let refused = post_json(&app, &admin, &json!([for_grace.clone(), for_nobody])).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json()["errors"][0]["index"], 1);
    let ok = post_json(&app, &admin, &json!([for_grace, event("a3")])).await;
    assert_eq!(
        ok.json(),
        json!({"accepted": 2, "duplicates": 0, "conflicts": 0})
    );
    assert_eq!(
        app.stored_by_user().await,
        vec![
            ("ada".into(), 1, 1000),
            ("grace".into(), 1, 1000),
            ("root".into(), 1, 1000)
        ]
    );

    // A revoked token stops at once.
    let ada_id = app
        .state
        .db
        .read(|conn| tokens::list(conn, None))
        .await
        .expect("list")
        .into_iter()
        .find(|t| t.username == "ada" && t.scope == TokenScope::Ingest)
        .expect("ada's token")
        .id;
    let now = app.state.now_unix();
    app.state
        .db
        .write(move |conn| tokens::revoke(conn, ada_id, None, now))
        .await
        .expect("revoke");
    let response = post_json(&app, &ada, &json!([event("late")])).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let _: TokenId = ada_id;
}

#[tokio::test]
async fn concurrent_requests_are_all_committed_and_counted_once() {
    let app = std::sync::Arc::new(TestApp::new().await);
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let mut tasks = Vec::new();
    for client in 0..8 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            // Every client also re-sends the events of client 0.
            let events: Vec<Value> = (0..100)
                .map(|i| event(&format!("c{client}-{i}")))
                .chain((0..10).map(|i| event(&format!("c0-{i}"))))
                .collect();
            let response = post_json(&app, &token, &Value::Array(events)).await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.body);
            response.json()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.expect("client")["accepted"]
            .as_u64()
            .unwrap_or(0);
    }
    assert_eq!(accepted, 800);
    assert_eq!(
        app.stored_by_user().await,
        vec![("ada".to_owned(), 800, 800_000)]
    );
    app.assert_rollups_exact().await;
}

#[tokio::test]
async fn a_token_records_when_it_was_last_used() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let last_used = || async {
        app.state
            .db
            .read(|conn| tokens::list(conn, None))
            .await
            .expect("list")[0]
            .last_used_at
    };
    assert_eq!(last_used().await, None);
    post_json(&app, &token, &json!([event("u1")])).await;
    // The use is recorded in the background; wait for it through the
    // writer, which runs jobs in order.
    for _ in 0..100 {
        if last_used().await.is_some() {
            break;
        }
        tokio::task::yield_now().await;
        app.state
            .db
            .write(|_| Ok::<_, DbError>(()))
            .await
            .expect("barrier");
    }
    assert_eq!(last_used().await, Some(app.state.now_unix()));
}

/// GET `path` with a bearer token.
async fn read_with(app: &TestApp, token: &str, path: &str) -> TestResponse {
    app.request(
        axum::http::Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn sessions_and_machines_are_stored_filtered_and_exported() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let read = app.create_token("ada", TokenScope::Read).await;
    let at = |id: &str, time: &str, model: &str, input: i64| json!({"id": id, "timestamp": time, "model": model, "input_tokens": input});
    let mut a1 = at("a1", "2026-06-10T09:10:00Z", "m1", 100);
    a1["session"] = json!("sess-1");
    a1["machine"] = json!("laptop");
    let mut a2 = at("a2", "2026-06-10T23:50:00Z", "m2", 200);
    a2["session"] = json!(" sess-1 ");
    a2["machine"] = json!("laptop");
    let mut a3 = at("a3", "2026-06-11T00:20:00Z", "m1", 400);
    a3["session"] = json!("sess-2");
    a3["machine"] = json!("desktop");
    let a4 = at("a4", "2026-06-11T05:00:00Z", "m1", 800);
    let response = post_json(&app, &token, &json!([a1, a2, a3, a4])).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);

    // Filtered and shown by the events API.
    let page = read_with(
        &app,
        &read,
        "/api/v1/events?session=sess-1&sort=input_tokens&order=asc&range=30d",
    )
    .await
    .json();
    let rows: Vec<(&str, &str, &str)> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or(""),
                e["session"].as_str().unwrap_or(""),
                e["machine"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![("a1", "sess-1", "laptop"), ("a2", "sess-1", "laptop")]
    );
    let count = |page: Value| page["events"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count(
            read_with(&app, &read, "/api/v1/events?machine=desktop,laptop")
                .await
                .json()
        ),
        3
    );
    assert_eq!(
        count(
            read_with(&app, &read, "/api/v1/events?machine=laptop&session=sess-2")
                .await
                .json()
        ),
        0
    );
    assert_eq!(
        count(
            read_with(&app, &read, "/api/v1/events?session=sess-unknown")
                .await
                .json()
        ),
        0
    );
    let sorted = read_with(&app, &read, "/api/v1/events?sort=machine&order=desc")
        .await
        .json();
    let machines: Vec<&Value> = sorted["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["machine"])
        .collect();
    assert_eq!(
        machines,
        [
            &json!("laptop"),
            &json!("laptop"),
            &json!("desktop"),
            &Value::Null
        ]
    );

    // A series filtered by them comes from the raw events, exactly, in
    // any zone and bucket.
    let series = read_with(
        &app,
        &read,
        "/api/v1/usage?session=sess-1&from=2026-06-10&to=2026-06-12&tz=Asia/Kolkata&group_by=model",
    )
    .await
    .json();
    assert_eq!(series["totals"]["input_tokens"], 300, "{series}");
    let cells: Vec<(&str, &str, i64)> = series["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["events"] != 0)
        .map(|r| {
            (
                r["bucket"].as_str().unwrap_or(""),
                r["group"].as_str().unwrap_or(""),
                r["input_tokens"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        cells,
        vec![("2026-06-10", "m1", 100), ("2026-06-11", "m2", 200)]
    );
    let hour = read_with(
        &app,
        &read,
        "/api/v1/usage?machine=laptop&from=2026-06-10T09:00:00Z&to=2026-06-10T09:30:00Z&bucket=hour",
    )
    .await
    .json();
    assert_eq!(hour["totals"]["input_tokens"], 100, "{hour}");

    // The CSV export ends with the two columns.
    let csv = read_with(&app, &read, "/api/v1/events.csv?session=sess-2").await;
    let lines: Vec<&str> = csv.body.lines().collect();
    // (then the cost in the instance's unit and its name, the price
    // fields, the cost's origin and the computed cost: issue 15)
    assert!(
        lines[0].contains(",cost,session,machine,cost_in_unit,unit,"),
        "{}",
        csv.body
    );
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].starts_with("a3,") && lines[1].contains(",sess-2,desktop,"));

    // The events page shows them as columns and filters by them.
    let cookie = app.login("ada", common::PASSWORD).await;
    let events_page = app
        .get("/events?machine=desktop&range=30d", Some(&cookie))
        .await;
    assert_eq!(events_page.status, StatusCode::OK);
    assert!(events_page.body.contains(">Session<") && events_page.body.contains(">Machine<"));
    assert!(events_page.body.contains("sess-2") && !events_page.body.contains("sess-1"));
    let overview = app
        .get("/?session=sess-1&split=activity", Some(&cookie))
        .await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);

    // A re-sent event seen from another machine is the same call: a plain
    // duplicate, and the stored machine stands.
    let mut again = at("a1", "2026-06-10T09:10:00Z", "m1", 100);
    again["session"] = json!("sess-1");
    again["machine"] = json!("other-host");
    let response = post_json(&app, &token, &json!([again])).await;
    assert_eq!(
        response.json(),
        json!({"accepted": 0, "duplicates": 1, "conflicts": 0})
    );

    // Names that only look right, or are too long, are refused whole,
    // naming the field.
    let mut hidden = at("h1", "2026-06-10T09:10:00Z", "m1", 1);
    hidden["session"] = json!("sess-1\u{202e}");
    let mut long = at("h2", "2026-06-10T09:10:00Z", "m1", 1);
    long["machine"] = json!("m".repeat(257));
    let mut typed = at("h3", "2026-06-10T09:10:00Z", "m1", 1);
    typed["machine"] = json!(["laptop"]);
    let response = post_json(&app, &token, &json!([hidden, long, typed])).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors: Vec<(u64, String)> = response.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["index"].as_u64().unwrap_or(99), e["field"].to_string()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (0, "\"session\"".to_owned()),
            (1, "\"machine\"".to_owned()),
            (2, "\"machine\"".to_owned())
        ]
    );
    assert_eq!(app.stored_by_user().await, vec![("ada".into(), 4, 1500)]);
    app.assert_rollups_exact().await;
}
