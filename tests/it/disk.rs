//! Disk trouble: when SQLite cannot get more space (here: the writer's
//! `max_page_count` pinned to the file's current size, which fails writes
//! exactly as a full disk does) or may not write at all (the writer's
//! `query_only`, which fails writes with SQLITE_READONLY exactly as a
//! read-only file or file system does), ingest answers 503 with a clear
//! message, pages still read, nothing is half-written, and it all recovers
//! by itself once the trouble is gone.

use crate::common::{PASSWORD, TestApp};
use axum::http::StatusCode;
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

#[derive(Debug, Clone, Copy)]
enum Trouble {
    DiskFull,
    ReadOnly,
}

impl Trouble {
    /// What the 503 names.
    fn says(self) -> &'static str {
        match self {
            Trouble::DiskFull => "disk is full",
            Trouble::ReadOnly => "read-only",
        }
    }

    /// Brings the trouble on (`true`) or lifts it, on the writer.
    async fn set(self, app: &TestApp, on: bool) {
        let result = app
            .state
            .db
            .write(move |conn| {
                match (self, on) {
                    (Trouble::DiskFull, true) => {
                        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                        conn.query_row(
                            &format!("PRAGMA max_page_count = {pages}"),
                            [],
                            |_| Ok(()),
                        )?;
                    }
                    (Trouble::DiskFull, false) => {
                        conn.query_row("PRAGMA max_page_count = 1073741823", [], |_| Ok(()))?;
                    }
                    (Trouble::ReadOnly, _) => {
                        conn.execute_batch(&format!("PRAGMA query_only = {on}"))?;
                    }
                }
                Ok::<_, tokentally::db::DbError>(())
            })
            .await;
        match (self, on, result) {
            // The setting holds at once, so the writer's own commit of
            // the job that set it is the first write refused.
            (Trouble::ReadOnly, true, Err(e)) => {
                assert!(e.to_string().contains("readonly"), "{e}")
            }
            (_, _, result) => result.expect("pragma"),
        }
    }
}

#[tokio::test]
async fn a_full_disk_refuses_ingest_with_503_keeps_pages_and_recovers() {
    refuses_keeps_pages_and_recovers(Trouble::DiskFull).await;
}

#[tokio::test]
async fn a_read_only_database_refuses_ingest_with_503_and_keeps_pages() {
    refuses_keeps_pages_and_recovers(Trouble::ReadOnly).await;
}

async fn refuses_keeps_pages_and_recovers(trouble: Trouble) {
    // Thousands of new project names fill the file fast; the budget of new
    // names is not what this test is about.
    let app = TestApp::with_options(|options| {
        options.name_limits = tokentally::usage::budget::NameLimits {
            per_token_per_day: 0,
            per_instance_per_day: 0,
        };
    })
    .await;
    app.create_user("root", Role::Admin).await;
    let token = app.create_token("root", TokenScope::Ingest).await;
    let cookie = app.login("root", PASSWORD).await;
    let json = [("content-type", "application/json")];
    let first = app
        .post_bytes("/api/v1/events", Some(&token), &json, batch("a", 10))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    app.state.audit.flush().await;

    trouble.set(&app, true).await;
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
        message.contains(trouble.says()) && message.contains("nothing of this request was stored"),
        "{message}"
    );
    assert_eq!(
        app.stored_by_user().await,
        vec![("root".to_owned(), 10, (1000..1010).sum())]
    );
    app.assert_rollups_exact_unfolded().await;

    // Reading goes on.
    for page in ["/", "/events", "/api/v1/usage"] {
        assert_eq!(
            app.get(page, Some(&cookie)).await.status,
            StatusCode::OK,
            "{page}"
        );
    }

    if let Trouble::ReadOnly = trouble {
        // `query_only` can be lifted only on the writer's connection, where
        // every job runs in a write transaction, which it refuses. A file
        // that becomes writable again is picked up as returning space is
        // (each batch begins a fresh transaction), which the disk-full case
        // shows below.
        return;
    }
    // The trouble goes: the same request now succeeds, without a restart.
    trouble.set(&app, false).await;
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
