//! Unassigned usage made visible to admins (issue 14, item 3): the
//! overview (admins, everyone's usage) shows what identities linked to no
//! one hold, and links to the events page filtered to it; the events page,
//! its CSV and the events API take `identity=unassigned` and
//! `identity=KIND:VALUE` (one identity's events, wherever they are now).
//! For a member the filter selects at most their own events.

use crate::common::{PASSWORD, TestApp};
use crate::identity_members::{email, seed};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

const RANGE: &str = "range=custom&from=2026-06-01&to=2026-06-15";

async fn api(app: &TestApp, cookie: &str, path: &str) -> Value {
    let answer = app.get(&format!("{path}&{RANGE}"), Some(cookie)).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    answer.json()
}

fn identities_of(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["identity"].as_str().unwrap_or("-").to_owned())
        .collect()
}

#[tokio::test]
async fn admins_see_the_unassigned_usage_and_filter_the_events_by_identity() {
    let app = TestApp::new().await;
    let root = app.create_user("root", Role::Admin).await;
    app.create_user("bob", Role::Member).await;
    app.create_user("dan", Role::Member).await;
    seed(&app, root, &email("carol@example.com"), 30).await;
    seed(&app, root, &email("erin@example.com"), 2).await;
    // The admin's own usage, without an identity.
    let token = app.create_token("root", TokenScope::Ingest).await;
    let own = json!([{"id": "own-1", "timestamp": "2026-06-02T10:00:00Z", "model": "m",
                      "input_tokens": 5, "output_tokens": 1}]);
    let sent = app
        .post_bytes(
            "/api/v1/events",
            Some(&token),
            &[("content-type", "application/json")],
            own.to_string().into_bytes(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let admin = app.login_browser("root", PASSWORD).await;

    // The overview: 32 events, $0.80, held by two identities.
    let overview = app.get(&format!("/?{RANGE}"), Some(&admin.cookie)).await;
    assert_eq!(overview.status, StatusCode::OK);
    let card_start = overview
        .body
        .find("id=\"unassigned-heading\"")
        .expect("the unassigned card");
    let card = &overview.body[card_start..];
    let card = &card[..card.find("</section>").expect("card end")];
    assert!(card.contains("$0.80"), "{card}");
    assert!(card.contains("<dd>32</dd>"), "{card}");
    assert!(card.contains("<dd>2</dd>"), "{card}");
    assert!(card.contains("of 2 identities"), "{card}");
    assert!(card.contains("identity=unassigned"), "{card}");
    assert!(card.contains("view=everyone"), "{card}");
    assert!(card.contains("href=\"/admin/identities?show=unassigned\""));
    // Not on the admin's own view, nor for a member.
    let mine = app
        .get(&format!("/?view=me&{RANGE}"), Some(&admin.cookie))
        .await;
    assert!(!mine.body.contains("Unassigned usage"));
    let bob = app.login_browser("bob", PASSWORD).await;
    let member = app.get(&format!("/?{RANGE}"), Some(&bob.cookie)).await;
    assert!(!member.body.contains("Unassigned usage"));

    // The events API: unassigned, one identity, and the totals agree.
    let held = api(
        &app,
        &admin.cookie,
        "/api/v1/events?identity=unassigned&limit=100",
    )
    .await;
    let ids = identities_of(&held);
    assert_eq!(ids.len(), 32);
    assert_eq!(
        ids.iter()
            .filter(|i| *i == "email:carol@example.com")
            .count(),
        30
    );
    let carol = api(
        &app,
        &admin.cookie,
        "/api/v1/events?identity=email:Carol@Example.com&limit=100",
    )
    .await;
    assert_eq!(
        identities_of(&carol).len(),
        30,
        "emails compare lower-cased"
    );
    let all = api(&app, &admin.cookie, "/api/v1/events?limit=100").await;
    assert_eq!(identities_of(&all).iter().filter(|i| *i == "-").count(), 1);
    let usage = api(&app, &admin.cookie, "/api/v1/usage?identity=unassigned").await;
    assert_eq!(usage["totals"]["events"], 32);
    let usage = api(
        &app,
        &admin.cookie,
        "/api/v1/usage?identity=email:erin@example.com",
    )
    .await;
    assert_eq!(usage["totals"]["events"], 2);
    let csv = app
        .get(
            &format!("/api/v1/events.csv?identity=unassigned&{RANGE}"),
            Some(&admin.cookie),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.body.lines().count(), 33, "a header and 32 rows");

    // The events page: the identity column and filter, for admins.
    let page = app
        .get(
            &format!("/events?identity=email:carol@example.com&{RANGE}"),
            Some(&admin.cookie),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<th scope=\"col\">Identity</th>"));
    assert!(page.body.contains("id=\"filter-identity\""));
    assert!(page.body.contains("This page (30 calls)"), "{}", page.body);

    // Linked to bob, carol's events are no longer unassigned, and her
    // filter follows them to bob.
    let linked = app
        .submit(
            "/admin/identities/link",
            &admin,
            &[
                ("kind", "email"),
                ("value", "carol@example.com"),
                ("user", "bob"),
            ],
        )
        .await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER);
    let held = api(&app, &admin.cookie, "/api/v1/events?identity=unassigned").await;
    assert_eq!(identities_of(&held), ["email:erin@example.com"; 2]);
    let carol = api(
        &app,
        &admin.cookie,
        "/api/v1/events?identity=email:carol@example.com&limit=100",
    )
    .await;
    let users: Vec<&str> = carol["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["user"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(users, ["bob"; 30]);
    let overview = app.get(&format!("/?{RANGE}"), Some(&admin.cookie)).await;
    assert!(overview.body.contains("of 1 identity"), "{}", overview.body);

    // A member: their own events only, whatever the filter names.
    let own = api(
        &app,
        &bob.cookie,
        "/api/v1/events?identity=email:carol@example.com&limit=100",
    )
    .await;
    assert_eq!(
        identities_of(&own).len(),
        30,
        "bob's own, through his identity"
    );
    let dan = app.login_browser("dan", PASSWORD).await;
    for path in [
        "/api/v1/events?identity=email:carol@example.com",
        "/api/v1/events?identity=unassigned",
        "/api/v1/events?identity=email:erin@example.com",
    ] {
        assert_eq!(
            api(&app, &dan.cookie, path).await["events"],
            json!([]),
            "{path}"
        );
        assert_eq!(
            api(&app, &bob.cookie, &path.replace("carol", "nobody")).await["events"],
            json!([])
        );
    }
    let page = app.get("/events", Some(&bob.cookie)).await;
    assert!(
        !page.body.contains("filter-identity"),
        "no identity filter for members"
    );
    assert!(!page.body.contains(">Identity<"));

    // A bad filter is refused, naming the field.
    for bad in ["carol", "phone:1", "email:"] {
        let answer = app
            .get(
                &format!("/api/v1/events?identity={bad}"),
                Some(&admin.cookie),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        let body = answer.json();
        assert_eq!(body["field"], "identity", "{body}");
    }
    // The reads are audited with the filter.
    let reads = app.audit_entries("events.read").await;
    assert!(
        reads.iter().any(|e| e
            .details
            .contains("\"identity\":\"email:carol@example.com\"")),
        "the filter is in the audit details"
    );
}
