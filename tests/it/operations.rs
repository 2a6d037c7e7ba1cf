//! Running it: `/metrics` for Prometheus (who may read it, what it counts)
//! and the per-token ingest rate limit.

use crate::common::{PASSWORD, TestApp};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use jiff::SignedDuration;
use tokentally::auth::RateLimiter;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

fn events(prefix: &str, n: usize) -> Vec<u8> {
    let lines: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"id":"{prefix}{i}","timestamp":"2026-06-10T10:00:00Z","model":"m","input_tokens":5,"output_tokens":1}}"#))
        .collect();
    lines.join("\n").into_bytes()
}

const NDJSON: [(&str, &str); 1] = [("content-type", "application/x-ndjson")];

fn value(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{metrics}"))
}

#[tokio::test]
async fn metrics_count_requests_ingest_and_the_writer_for_admins_only() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let ingest = app.create_token("ada", TokenScope::Ingest).await;
    let admin_read = app.create_token("root", TokenScope::Read).await;
    let member_read = app.create_token("ada", TokenScope::Read).await;
    app.post_bytes("/api/v1/events", Some(&ingest), &NDJSON, events("a", 10))
        .await;
    app.post_bytes("/api/v1/events", Some(&ingest), &NDJSON, events("a", 10))
        .await;

    let by_token = |token: String| {
        let app = &app;
        async move {
            app.request(
                Request::get("/metrics")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
        }
    };
    let scraped = by_token(admin_read.clone()).await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(
        scraped.headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = scraped.body;
    assert_eq!(value(&text, "tokentally_ingest_events_total"), 10.0);
    assert_eq!(value(&text, "tokentally_ingest_duplicates_total"), 10.0);
    assert_eq!(
        value(
            &text,
            "tokentally_http_requests_total{route=\"/api/v1/events\",status=\"200\"}"
        ),
        2.0
    );
    assert!(value(&text, "tokentally_writer_batch_jobs_count") >= 2.0);
    assert!(value(&text, "tokentally_database_bytes") > 0.0);
    assert!(text.contains("tokentally_writer_queue_depth"));
    let build_info = format!(
        "tokentally_build_info{{version=\"{}\",commit=\"{}\",target=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        tokentally::build_info::COMMIT,
        tokentally::build_info::TARGET
    );
    assert_eq!(value(&text, &build_info), 1.0, "{text}");
    assert_ne!(tokentally::build_info::TARGET, "unknown");
    assert_eq!(by_token(member_read).await.status, StatusCode::FORBIDDEN);
    assert_eq!(by_token(ingest).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/metrics", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let root = app.login("root", PASSWORD).await;
    assert_eq!(
        app.get("/metrics", Some(&root)).await.status,
        StatusCode::OK
    );
    let ada = app.login("ada", PASSWORD).await;
    assert_eq!(
        app.get("/metrics", Some(&ada)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn each_token_is_held_to_its_rate_with_429_and_retry_after() {
    let mut app = TestApp::new().await;
    app.state.ingest_limit = RateLimiter::new(2);
    app.rebuild_router();
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let other = app.create_token("ada", TokenScope::Ingest).await;
    for i in 0..4 {
        let ok = app
            .post_bytes(
                "/api/v1/events",
                Some(&token),
                &NDJSON,
                events(&format!("b{i}-"), 1),
            )
            .await;
        assert_eq!(
            ok.status,
            StatusCode::OK,
            "request {i} is within the burst of 4"
        );
    }
    let limited = app
        .post_bytes("/api/v1/events", Some(&token), &NDJSON, events("c", 1))
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "1");
    assert!(
        limited.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("2 requests per second")
    );
    assert_eq!(
        app.stored_by_user().await[0].1,
        4,
        "the refused request wrote nothing"
    );
    let elsewhere = app
        .post_bytes("/api/v1/events", Some(&other), &NDJSON, events("d", 1))
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::OK,
        "another token has its own budget"
    );
    app.clock.advance(SignedDuration::from_millis(500));
    let later = app
        .post_bytes("/api/v1/events", Some(&token), &NDJSON, events("c", 1))
        .await;
    assert_eq!(later.status, StatusCode::OK, "refilled after half a second");
}
