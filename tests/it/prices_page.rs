//! The Prices page's catalogue parts, rendered: each price's origin, the
//! catalogue loaded, what prices each model of stored events (the entry
//! and the rule), and the search over the catalogue (`?q=`, bounded).

use axum::http::StatusCode;
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

use crate::common::{PASSWORD, TestApp};

async fn app_with_events() -> (TestApp, String) {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let token = app.create_token("root", TokenScope::Ingest).await;
    let events: Vec<_> = (0..12)
        .map(|i| {
            let model = [
                "claude-sonnet-4-5",
                "us.anthropic.claude-sonnet-4-6",
                "alpha-model",
            ][i % 3];
            json!({"id": format!("e{i}"), "timestamp": format!("2026-06-{:02}T10:00:00Z", 1 + i),
                   "model": model, "input_tokens": 1000, "output_tokens": 100})
        })
        .collect();
    let response = app
        .post_bytes(
            "/api/v1/events",
            Some(&token),
            &[("content-type", "application/json")],
            serde_json::Value::Array(events).to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let cookie = app.login("root", PASSWORD).await;
    (app, cookie)
}

#[tokio::test]
async fn the_page_shows_origins_the_catalogue_and_what_prices_each_model() {
    let (app, root) = app_with_events().await;
    let page = app.get("/admin/prices", Some(&root)).await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in [
        "Your prices",
        "<strong>LiteLLM 1.110.2</strong> (2026-11-20, built in)",
        "Models in your events",
        "catalogue 1.110.2: <code>claude-sonnet-4-5</code> (exact)",
        "catalogue 1.110.2: <code>us.anthropic.claude-sonnet-4-6</code> (exact)",
        "Search the catalogue",
    ] {
        assert!(
            page.body.contains(expected),
            "{expected:?} in {}",
            page.body
        );
    }
    let alpha = page
        .body
        .split("alpha-model")
        .nth(1)
        .expect("alpha-model listed");
    assert!(alpha[..alpha.find("</tr>").expect("its row")].contains("unpriced"));
    assert!(!page.body.contains("search-results"), "no search asked");
}

#[tokio::test]
async fn the_catalogue_search_is_bounded_and_says_what_a_name_resolves_to() {
    let (app, root) = app_with_events().await;
    let page = app
        .get("/admin/prices?q=claude-sonnet-4-5", Some(&root))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("search-results"), "{}", page.body);
    assert!(
        page.body
            .contains("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    );
    let resolves = page
        .body
        .split("id=\"search-resolves\"")
        .nth(1)
        .expect("what it resolves to");
    assert!(
        resolves.contains("<code>claude-sonnet-4-5</code> (exact)"),
        "{resolves}"
    );

    let many = app.get("/admin/prices?q=a", Some(&root)).await;
    assert!(
        many.body.contains("(the first 50; narrow the search)"),
        "{}",
        many.body
    );
    assert_eq!(
        many.body.matches("<tr><th scope=\"row\">").count() - rows_outside_search(&many.body),
        50
    );

    let dotted = app
        .get(
            "/admin/prices?q=openrouter%2Fanthropic%2Fclaude-opus-4.6",
            Some(&root),
        )
        .await;
    assert!(
        dotted
            .body
            .contains("<code>claude-opus-4-6</code> (canonical)"),
        "{}",
        dotted.body
    );

    // `_` and `%` are characters, not patterns.
    let literal = app.get("/admin/prices?q=4_5", Some(&root)).await;
    assert!(
        literal
            .body
            .contains("No catalogue model's name contains it."),
        "{}",
        literal.body
    );
    assert!(literal.body.contains("nothing in the catalogue"));

    let long = format!("/admin/prices?q={}", "x".repeat(300));
    assert_eq!(
        app.get(&long, Some(&root)).await.status,
        StatusCode::BAD_REQUEST
    );
    let unknown = app.get("/admin/prices?query=x", Some(&root)).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // The view is audited with what was searched.
    app.state.audit.flush().await;
    let views = app.audit_entries("page.view").await;
    assert!(
        views
            .iter()
            .any(|e| e.details.contains("\"q\":\"claude-sonnet-4-5\"")),
        "{views:?}"
    );
}

/// Rows whose first cell is a row header outside the search's table: the
/// models of events (the admin table has none here).
fn rows_outside_search(body: &str) -> usize {
    let before = body.split("id=\"search-results\"").next().unwrap_or("");
    before.matches("<tr><th scope=\"row\">").count()
}
