//! The LiteLLM webhook over the real router: its three log formats, cache
//! tokens normalised, users mapped or kept under the token's owner, and
//! re-sent batches counted once.

use crate::common::TestApp;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

const PATH: &str = "/api/v1/ingest/litellm";
const JSON: (&str, &str) = ("content-type", "application/json");

/// A `StandardLoggingPayload` as the proxy sends it for an Anthropic call.
fn payload(id: &str, user: &str) -> Value {
    json!({
        "id": id, "trace_id": "t", "call_type": "acompletion", "status": "success",
        "startTime": 1780000000.5, "endTime": 1780000002.0, "model": "claude-sonnet-4-5",
        "model_group": "sonnet", "api_base": "https://api.anthropic.com",
        "prompt_tokens": 1300, "completion_tokens": 40, "total_tokens": 1340,
        "response_cost": 0.0045, "cache_hit": false, "request_tags": ["triage"],
        "end_user": null, "messages": [{"role": "user", "content": "hi"}],
        "metadata": {
            "user_api_key_user_id": user, "user_api_key_alias": "laptop",
            "user_api_key_team_id": "team-1", "user_api_key_team_alias": "support",
            "usage_object": {"prompt_tokens": 1300, "completion_tokens": 40,
                             "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200}
        },
        "hidden_params": {"model_id": "abc"}
    })
}

async fn send(app: &TestApp, token: &str, body: String) -> (StatusCode, Value) {
    let response = app
        .post_bytes(PATH, Some(token), &[JSON], body.into_bytes())
        .await;
    (response.status, response.json())
}

#[tokio::test]
async fn all_three_log_formats_store_each_call_once() {
    let app = TestApp::new().await;
    app.create_user("proxy", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("proxy", TokenScope::Ingest).await;

    let array = json!([payload("c1", "ada"), payload("c2", "ada")]).to_string();
    let (status, body) = send(&app, &token, array.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2);
    let ndjson = format!("{}\n{}\n", payload("c2", "ada"), payload("c3", "ada"));
    let (_, body) = send(&app, &token, ndjson).await;
    assert_eq!(
        (body["accepted"].clone(), body["duplicates"].clone()),
        (json!(1), json!(1))
    );
    let single = serde_json::to_string_pretty(&payload("c4", "ada")).expect("json");
    let (_, body) = send(&app, &token, single).await;
    assert_eq!(body["accepted"], 1);
    // The same batch again: nothing new.
    let (_, body) = send(&app, &token, array).await;
    assert_eq!(
        body,
        json!({"accepted": 0, "duplicates": 2, "conflicts": 0, "skipped": {}, "unattributed": 0})
    );

    // Input excludes the cache reads and writes inside prompt_tokens.
    assert_eq!(app.stored_by_user().await, vec![("ada".into(), 4, 4 * 100)]);
    let cache: (i64, i64, i64) = app
        .state
        .db
        .read(|conn| {
            Ok::<_, tokentally::db::DbError>(conn.query_row(
                "SELECT SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micros)
                 FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await
        .expect("sums");
    assert_eq!(cache, (4000, 800, 4 * 4500));
    app.assert_rollups_exact().await;
}

#[tokio::test]
async fn unknown_users_stay_with_the_token_owner_and_are_counted() {
    let app = TestApp::new().await;
    app.create_user("proxy", Role::Admin).await;
    app.create_user("grace", Role::Member).await;
    let admin = app.create_token("proxy", TokenScope::Ingest).await;
    let grace = app.create_token("grace", TokenScope::Ingest).await;
    let mut failed = payload("f1", "grace");
    failed["status"] = json!("failure");
    failed["prompt_tokens"] = json!(0);
    failed["completion_tokens"] = json!(0);
    failed["metadata"]["usage_object"] = json!({});
    let batch = json!([
        payload("u1", "grace"),
        payload("u2", "someone-else"),
        failed
    ]);
    let (status, body) = send(&app, &admin, batch.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"accepted": 2, "duplicates": 0, "conflicts": 0,
               "skipped": {"failed call without tokens": 1}, "unattributed": 1})
    );
    // A member's token keeps everything for the member.
    let (_, body) = send(&app, &grace, json!([payload("g1", "ada")]).to_string()).await;
    assert_eq!(
        (body["accepted"].clone(), body["unattributed"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        app.stored_by_user().await,
        vec![("grace".into(), 2, 200), ("proxy".into(), 1, 100)]
    );
}

#[tokio::test]
async fn an_invalid_payload_writes_nothing_and_says_why() {
    let app = TestApp::new().await;
    app.create_user("proxy", Role::Admin).await;
    let token = app.create_token("proxy", TokenScope::Ingest).await;
    let mut broken = payload("b2", "proxy");
    broken["startTime"] = json!("later");
    let (status, body) = send(
        &app,
        &token,
        json!([payload("b1", "proxy"), broken]).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["index"], 1);
    assert_eq!(body["errors"][0]["field"], "startTime");
    assert_eq!(app.stored_by_user().await, vec![]);
    let no_token = app.post_bytes(PATH, None, &[JSON], b"[]".to_vec()).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_project_comes_from_metadata_then_a_tag_then_the_team() {
    let app = TestApp::new().await;
    app.create_user("proxy", Role::Admin).await;
    let token = app.create_token("proxy", TokenScope::Ingest).await;
    // Every payload has the team alias `support`; what comes before it wins.
    let mut named = payload("p1", "proxy");
    named["metadata"]["project"] = json!("checkout");
    named["request_tags"] = json!(["project:ignored", "review"]);
    let mut requested = payload("p2", "proxy");
    requested["metadata"]["requester_metadata"] = json!({"project_name": "mobile-app"});
    let mut tagged = payload("p3", "proxy");
    tagged["request_tags"] = json!(["project:api", "review"]);
    let team = payload("p4", "proxy");
    let batch = json!([named, requested, tagged, team]).to_string();
    let (status, body) = send(&app, &token, batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored: Vec<(String, String, String)> = app
        .state
        .db
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT e.external_id, p.name, a.name FROM events e
                 JOIN projects p ON p.id = e.project_id
                 JOIN activities a ON a.id = e.activity_id ORDER BY 1",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, tokentally::db::DbError>(rows)
        })
        .await
        .expect("events");
    let row = |id: &str, project: &str, activity: &str| {
        (id.to_owned(), project.to_owned(), activity.to_owned())
    };
    assert_eq!(
        stored,
        vec![
            row("p1", "checkout", "review"),
            row("p2", "mobile-app", "triage"),
            // A `project:` tag is never the activity.
            row("p3", "api", "review"),
            row("p4", "support", "triage"),
        ]
    );

    // A project that only looks right is refused, naming where it was.
    let mut hostile = payload("p5", "proxy");
    hostile["request_tags"] = json!(["project:web\u{202e}"]);
    let (status, body) = send(&app, &token, json!([hostile]).to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "request_tags", "{body}");
    let mut hostile = payload("p6", "proxy");
    hostile["metadata"]["project"] = json!("p".repeat(257));
    let (status, body) = send(&app, &token, json!([hostile]).to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "metadata.project", "{body}");
}
