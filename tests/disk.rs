//! Disk trouble: when SQLite cannot get more space (here: the writer's
//! `max_page_count` pinned to the file's current size, which fails writes
//! exactly as a full disk does), ingest answers 503 with a clear message,
//! pages still read, nothing is half-written, and it all recovers by itself
//! once there is room again.

mod common;

use axum::http::StatusCode;
use common::{PASSWORD, TestApp};
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

fn batch(prefix: &str, n: usize) -> Vec<u8> {
    let events: Vec<_> = (0..n)
        .map(|i| {
            json!({"id": format!("{prefix}-{i}"), "timestamp": "2026-06-10T10:00:00Z",
                   "model": format!("model-{}", i % 7), "project": format!("project-{i}"),
                   "input_tokens": 1000 + i, "output_tokens": i})
        })
        .collect();
    serde_json::Value::Array(events).to_string().into_bytes()
}

async fn limit_pages(app: &TestApp, limit: Option<i64>) {
    app.state
        .db
        .write(move |conn| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let cap = limit.unwrap_or(pages);
            conn.query_row(&format!("PRAGMA max_page_count = {cap}"), [], |_| Ok(()))?;
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("pragma");
}

#[tokio::test]
async fn a_full_disk_refuses_ingest_with_503_keeps_pages_and_recovers() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let token = app.create_token("root", TokenScope::Ingest).await;
    let cookie = app.login("root", PASSWORD).await;
    let json = [("content-type", "application/json")];
    let first = app
        .post_bytes("/api/v1/events", Some(&token), &json, batch("a", 10))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    app.state.audit.flush().await;

    limit_pages(&app, None).await;
    let refused = app
        .post_bytes("/api/v1/events", Some(&token), &json, batch("b", 2000))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.headers["retry-after"], "30");
    let message = refused.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("disk is full") && message.contains("nothing of this request was stored"),
        "{message}"
    );
    assert_eq!(
        app.stored_by_user().await,
        vec![("root".to_owned(), 10, (1000..1010).sum())]
    );
    app.assert_rollups_exact().await;

    // Reading goes on.
    for page in ["/", "/events", "/api/v1/usage"] {
        assert_eq!(
            app.get(page, Some(&cookie)).await.status,
            StatusCode::OK,
            "{page}"
        );
    }

    // Space returns: the same request now succeeds, without a restart.
    limit_pages(&app, Some(1 << 30)).await;
    let again = app
        .post_bytes("/api/v1/events", Some(&token), &json, batch("b", 2000))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.json()["accepted"], 2000);
    app.assert_rollups_exact().await;
    let report = app
        .state
        .db
        .read(tokentally::audit::chain::verify)
        .await
        .expect("verify");
    assert_eq!(report.broken, None);
}
