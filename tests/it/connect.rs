//! The Connect page (issue 14 item 8): a block per producer with this
//! instance's URL and a token made on the spot (a collector token for an
//! admin, a personal ingest token for a member) shown once; the check that
//! turns green when the caller's own events arrive, and never counts
//! anyone else's for a member; who may open it; the URL it shows.

use crate::common::otlp::{MINUTE, T0, export_metrics, kv};
use crate::common::{Browser, DEFAULT_PEER, PASSWORD, TestApp, TestResponse};
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::{self, TokenScope};

/// The blocks that carry the token (the per-person attributes and the
/// local import need none).
const TOKEN_BLOCKS_ADMIN: [&str; 7] = [
    "new-token",
    "claude-code-managed",
    "gemini-env",
    "codex-config",
    "otel-sdk-env",
    "litellm-config",
    "import-remote",
];
const TOKEN_BLOCKS_MEMBER: [&str; 7] = [
    "new-token",
    "claude-code-user",
    "gemini-env",
    "codex-config",
    "otel-sdk-env",
    "litellm-config",
    "import-remote",
];

/// The text of the block `<figure … id="id">` of a page.
fn block<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no block {id}"));
    let rest = &page[start..];
    &rest[..rest.find("</figure>").unwrap_or(rest.len())]
}

/// Every `tt_` + 64 hex digits in `text`.
fn secrets(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("tt_") {
        let candidate: String = rest[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        if candidate.len() == 64 {
            found.push(format!("tt_{candidate}"));
        }
        rest = &rest[at + 3..];
    }
    found
}

/// The status URL the page polls (`data-status-url`).
fn status_url(page: &str) -> String {
    let marker = "data-status-url=\"";
    let start = page.find(marker).expect("a status URL") + marker.len();
    let end = page[start..].find('"').expect("closed");
    page[start..start + end].to_owned()
}

fn cache_control(response: &TestResponse) -> &str {
    response
        .headers
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn status(app: &TestApp, browser: &Browser, url: &str) -> Value {
    let response = app.get(url, Some(&browser.cookie)).await;
    assert_eq!(response.status, StatusCode::OK, "{url}: {}", response.body);
    assert_eq!(cache_control(&response), "no-store");
    response.json()
}

/// One Claude Code export (delta): one event of `tokens` input tokens.
fn claude_code_export(email: &str, tokens: f64) -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        attributes: vec![
            kv("user.email", email),
            kv("session.id", "connect-session"),
            kv("model", "claude-sonnet-4-5"),
            kv("type", "input"),
        ],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + MINUTE,
        value: Some(number_data_point::Value::AsDouble(tokens)),
        ..NumberDataPoint::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "claude-code")],
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "claude_code.token.usage".into(),
                    unit: "tokens".into(),
                    data: Some(Data::Sum(Sum {
                        data_points: vec![point],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })),
                    ..Metric::default()
                }],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

async fn send_event(app: &TestApp, token: &str, id: &str) {
    let response = app
        .post_bytes(
            "/api/v1/events",
            Some(token),
            &[("content-type", "application/json")],
            json!([{"id": id, "timestamp": "2026-06-15T11:00:00Z", "model": "m",
                    "input_tokens": 5, "output_tokens": 1}])
            .to_string()
            .into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
}

/// Moves the clock on, so the next page opened is a check of its own.
fn tick(app: &TestApp) {
    app.clock.advance(jiff::SignedDuration::from_secs(1));
}

/// The database's files, for a search of what they hold.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["tokentally.db", "tokentally.db-wal"] {
        if let Ok(content) = std::fs::read(app.dir.path().join(name)) {
            bytes.extend(content);
        }
    }
    bytes
}

#[tokio::test]
async fn an_admin_gets_a_collector_token_in_every_block_once_and_the_check_turns_green() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let root = app.login_browser("root", PASSWORD).await;

    let before = app.get("/connect", Some(&root.cookie)).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert!(before.body.contains("YOUR_TOKEN"));
    assert!(before.body.contains("Create a collector token"));
    assert!(before.body.contains("Collector or personal?"));
    assert!(before.body.contains("Waiting for the first event"));
    assert!(secrets(&before.body).is_empty());

    tick(&app);
    let created = app
        .submit("/connect", &root, &[("kind", "collector")])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(cache_control(&created), "no-store");
    let found = secrets(&created.body);
    let secret = found.first().expect("the secret is shown").clone();
    assert!(found.iter().all(|s| *s == secret), "one token only");
    for id in TOKEN_BLOCKS_ADMIN {
        assert!(block(&created.body, id).contains(&secret), "{id} lacks it");
    }
    assert!(!created.body.contains("YOUR_TOKEN"));

    // A collector token of root's, named for the day, audited as the
    // Tokens page audits one; the secret is stored nowhere in plain.
    let listed = app
        .state
        .db
        .read(|conn| tokens::list(conn, None))
        .await
        .expect("tokens");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].scope, TokenScope::Collector);
    assert_eq!(listed[0].username, "root");
    assert_eq!(listed[0].name, "connect 2026-06-15");
    let audited = app.audit_entries("token.create").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].target.as_deref(), Some("user:root"));
    assert!(audited[0].details.contains("\"scope\":\"collector\""));
    assert!(!audited[0].details.contains(&secret));
    let stored = database_bytes(&app);
    assert!(
        !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is in the database"
    );

    // Shown once: the page opened again does not have it.
    tick(&app);
    let again = app.get("/connect", Some(&root.cookie)).await;
    assert!(secrets(&again.body).is_empty());

    // The token works, and the check of the page that showed it turns green.
    let url = status_url(&created.body);
    let waiting = status(&app, &root, &url).await;
    assert_eq!(waiting["received"], false, "{waiting}");
    assert_eq!(waiting["events"], 0);
    let answer = export_metrics(&app, &secret, &claude_code_export("dev@example.com", 42.0)).await;
    assert!(answer.partial_success.is_none(), "{answer:?}");
    let received = status(&app, &root, &url).await;
    assert_eq!(received["received"], true, "{received}");
    assert_eq!(received["events"], 1);
    assert_eq!(received["last_event"], "2026-05-28T20:27:40Z");
    assert!(
        received["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Received 1 event ")),
        "{received}"
    );
    // Without script: the "check again" link asks the same.
    let since = url.trim_start_matches("/connect/status?since=");
    let checked = app
        .get(&format!("/connect?since={since}"), Some(&root.cookie))
        .await;
    assert_eq!(checked.status, StatusCode::OK);
    assert!(checked.body.contains("Received 1 event "));
    assert!(checked.body.contains("class=\"check received\""));
    assert!(checked.body.contains("See the overview"));
    // A page opened before the event saw it too; one opened after it
    // waits for the next one.
    assert_eq!(
        status(&app, &root, &status_url(&again.body)).await["events"],
        1
    );
    tick(&app);
    let after = app.get("/connect", Some(&root.cookie)).await;
    let later = status(&app, &root, &status_url(&after.body)).await;
    assert_eq!(later["events"], 0, "{later}");
}

#[tokio::test]
async fn a_member_gets_a_personal_token_and_the_check_counts_only_their_own_events() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    app.create_user("bob", Role::Member).await;
    let ada = app.login_browser("ada", PASSWORD).await;
    let bob = app.login_browser("bob", PASSWORD).await;
    let root = app.login_browser("root", PASSWORD).await;
    let bob_token = app.create_token("bob", TokenScope::Ingest).await;

    // Asking for a collector token gets a member a personal one anyway.
    let created = app.submit("/connect", &ada, &[("kind", "collector")]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(cache_control(&created), "no-store");
    assert!(!created.body.contains("Collector or personal?"));
    let secret = secrets(&created.body).into_iter().next().expect("a secret");
    for id in TOKEN_BLOCKS_MEMBER {
        assert!(block(&created.body, id).contains(&secret), "{id} lacks it");
    }
    assert!(block(&created.body, "import-local").contains("--user 'ada'"));
    let listed = app
        .state
        .db
        .read(|conn| tokens::list(conn, None))
        .await
        .expect("tokens");
    let made = listed
        .iter()
        .find(|t| t.name.starts_with("connect "))
        .expect("made");
    assert_eq!(
        (made.scope, made.username.as_str()),
        (TokenScope::Ingest, "ada")
    );

    let ada_url = status_url(&created.body);
    tick(&app);
    let bob_url = status_url(&app.get("/connect", Some(&bob.cookie)).await.body);
    tick(&app);
    let root_url = status_url(&app.get("/connect", Some(&root.cookie)).await.body);

    // Bob's usage: green for Bob and the admin, never for Ada.
    send_event(&app, &bob_token, "bob-1").await;
    assert_eq!(status(&app, &ada, &ada_url).await["events"], 0);
    assert_eq!(status(&app, &bob, &bob_url).await["events"], 1);
    assert_eq!(status(&app, &root, &root_url).await["events"], 1);

    // Ada's token, from the page: hers.
    send_event(&app, &secret, "ada-1").await;
    send_event(&app, &secret, "ada-2").await;
    let ada_status = status(&app, &ada, &ada_url).await;
    assert_eq!(ada_status["events"], 2, "{ada_status}");
    assert_eq!(ada_status["received"], true);
    assert!(
        ada_status["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Received 2 events of yours")),
        "{ada_status}"
    );
    assert_eq!(status(&app, &bob, &bob_url).await["events"], 1);
    assert_eq!(status(&app, &root, &root_url).await["events"], 3);

    // A check is the session's own: Bob cannot read Ada's by her `since`.
    let borrowed = app.get(&ada_url, Some(&bob.cookie)).await;
    assert_eq!(borrowed.status, StatusCode::NOT_FOUND, "{}", borrowed.body);
}

#[tokio::test]
async fn strangers_and_tokens_cannot_use_the_page_nor_make_tokens() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let ingest = app.create_token("root", TokenScope::Ingest).await;
    let read = app.create_token("root", TokenScope::Read).await;
    let count = || async {
        app.state
            .db
            .read(|conn| tokens::list(conn, None))
            .await
            .expect("tokens")
            .len()
    };
    let before = count().await;

    let page = app.get("/connect", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login?next=/connect"));
    let status = app.get("/connect/status?since=1", None).await;
    assert_eq!(status.status, StatusCode::SEE_OTHER);
    let post = app
        .post_form("/connect", None, &[("kind", "collector")])
        .await;
    assert_eq!(post.status, StatusCode::SEE_OTHER);

    for token in [&ingest, &read] {
        let client = app
            .client_at(DEFAULT_PEER)
            .header("authorization", &format!("Bearer {token}"));
        for path in ["/connect", "/connect/status?since=1"] {
            let answer = client.get(path, None).await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        }
        let answer = client.post_form("/connect", None, &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
    }

    // Signed in, but without the form's CSRF token: refused.
    let root = app.login_browser("root", PASSWORD).await;
    let forged = app
        .post_form("/connect", Some(&root.cookie), &[("kind", "collector")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let wrong = app
        .post_form(
            "/connect",
            Some(&root.cookie),
            &[("kind", "collector"), ("csrf_token", "not-the-token")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(count().await, before, "no token was made");
}

#[tokio::test]
async fn the_status_answers_only_for_a_page_this_session_opened() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let ada = app.login_browser("ada", PASSWORD).await;
    for (path, want, field) in [
        ("/connect/status?since=123", StatusCode::NOT_FOUND, None),
        (
            "/connect/status?since=abc",
            StatusCode::BAD_REQUEST,
            Some("since"),
        ),
        ("/connect/status", StatusCode::BAD_REQUEST, Some("since")),
        (
            "/connect/status?since=1&view=bob",
            StatusCode::BAD_REQUEST,
            Some("view"),
        ),
    ] {
        let answer = app.get(path, Some(&ada.cookie)).await;
        assert_eq!(answer.status, want, "{path}: {}", answer.body);
        let body = answer.json();
        assert!(body["error"].is_string(), "{path}: {body}");
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{path}: {body}");
        }
    }
    let bad = app.get("/connect?since=soon", Some(&ada.cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // A `since` this session never filed starts a new check.
    let unknown = app.get("/connect?since=5", Some(&ada.cookie)).await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert!(unknown.body.contains("Waiting for your first event"));
    assert!(!unknown.body.contains("since=5\""));
}

#[tokio::test]
async fn the_configured_public_url_wins_and_a_hostile_host_is_not_reflected() {
    let configured = TestApp::with_options(|options| {
        options.public_url = Some("https://tokens.example.com/".into());
    })
    .await;
    configured.create_user("root", Role::Admin).await;
    let root = configured.login_browser("root", PASSWORD).await;
    let page = configured
        .client_at(DEFAULT_PEER)
        .header("host", "evil.example")
        .get("/connect", Some(&root.cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("the configured public URL"));
    assert!(page.body.contains("https://tokens.example.com/v1/metrics"));
    assert!(
        page.body
            .contains("https://tokens.example.com/api/v1/ingest/litellm")
    );
    assert!(!page.body.contains("evil.example"));

    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let root = app.login_browser("root", PASSWORD).await;
    let guessed = app
        .client_at(DEFAULT_PEER)
        .header("host", "tokens.internal:8443")
        .get("/connect", Some(&root.cookie))
        .await;
    assert!(
        guessed
            .body
            .contains("http://tokens.internal:8443/v1/metrics")
    );
    assert!(
        guessed
            .body
            .contains("guessed from the address your browser")
    );
    for hostile in [
        "<script>alert(1)</script>",
        "evil.example\"><img src=x onerror=alert(1)>",
        "evil.example/<b>x</b>",
    ] {
        let page = app
            .client_at(DEFAULT_PEER)
            .header("host", hostile)
            .get("/connect", Some(&root.cookie))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{hostile}");
        assert!(!page.body.contains("<script>alert"), "{hostile}");
        assert!(!page.body.contains("<img src=x"), "{hostile}");
        assert!(!page.body.contains("<b>x</b>"), "{hostile}");
        assert!(!page.body.contains("evil.example"), "{hostile}");
        assert!(page.body.contains("could not be told"), "{hostile}");
        assert!(
            page.body
                .contains("https://tokentally.example.com/v1/metrics")
        );
    }
}

#[tokio::test]
async fn every_path_the_page_names_is_served_and_the_empty_overview_links_to_it() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let root = app.login_browser("root", PASSWORD).await;
    let overview = app.get("/", Some(&root.cookie)).await;
    let empty = overview
        .body
        .split("class=\"card empty\"")
        .nth(1)
        .expect("the empty overview");
    assert!(empty.contains("href=\"/connect\""), "{empty}");
    let page = app.get("/connect", Some(&root.cookie)).await;
    let served = tokentally::ingest::paths();
    for path in [
        "/v1/metrics",
        "/v1/logs",
        "/v1/traces",
        "/api/v1/ingest/litellm",
    ] {
        assert!(page.body.contains(path), "{path}");
        assert!(served.contains(&path), "{path} is not served");
    }
    // The navigation names it, and its script is an embedded asset.
    assert!(page.body.contains("<a href=\"/connect\">Connect</a>"));
    let script = page
        .body
        .split("src=\"")
        .map(|s| s.split('"').next().unwrap_or(""))
        .find(|src| src.starts_with("/assets/connect."))
        .expect("connect.js");
    let asset = app.get(script, None).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(asset.body.contains("/connect/status") || asset.body.contains("data-status-url"));
}
