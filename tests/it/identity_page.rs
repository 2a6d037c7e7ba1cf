//! `/admin/identities` over the real router (issue 14): an identity's
//! held usage is listed as unassigned with its events; an admin links it
//! to a person through the page's form, the notice says what moved, the
//! person's usage includes it and the rollups stay exact; a member's post
//! of the same form is refused and moves nothing; unlinking moves it back.

use crate::common::{self, Browser, PASSWORD, TestApp};
use axum::http::StatusCode;
use tokentally::auth::Role;
use tokentally::model::UserId;
use tokentally::usage::store::Inserter;

const HELD: usize = 30;
const RANGE: &str = "range=custom&from=2026-06-01&to=2026-06-15";

/// `HELD` events sent by a collector owned by `collector`, naming carol's
/// email, which no person has: they are held, unassigned.
async fn seed_held(app: &TestApp, collector: UserId) {
    let events = crate::identity_store::carol_events(collector, HELD, 25_000);
    app.state
        .db
        .write(move |conn| Inserter::new(conn)?.insert(conn, &events))
        .await
        .expect("seed");
}

/// Events and input tokens of `username` through the read API.
async fn usage_of(app: &TestApp, admin: &str, username: &str) -> (i64, i64) {
    let answer = app
        .get(
            &format!("/api/v1/usage?view={username}&{RANGE}"),
            Some(admin),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let json = answer.json();
    (
        json["totals"]["events"].as_i64().expect("events"),
        json["totals"]["input_tokens"]
            .as_i64()
            .expect("input tokens"),
    )
}

/// The events stored on `username`, from the raw rows.
async fn stored_on(app: &TestApp, username: &str) -> i64 {
    app.stored_by_user()
        .await
        .into_iter()
        .find(|(name, _, _)| name == username)
        .map_or(0, |(_, events, _)| events)
}

/// The page's body row of carol's identity.
fn carol_row(page: &str) -> &str {
    let start = page
        .find("<th scope=\"row\">carol@example.com<")
        .expect("carol is listed");
    let row_start = page[..start].rfind("<tr>").expect("a row");
    let row_end = start + page[start..].find("</tr>").expect("row end");
    &page[row_start..row_end]
}

#[tokio::test]
async fn an_admin_links_an_identity_through_the_page_and_a_member_cannot() {
    let app = TestApp::new().await;
    let root = app.create_user("root", Role::Admin).await;
    app.create_user("bob", Role::Member).await;
    seed_held(&app, root).await;
    let admin = app.login_browser("root", PASSWORD).await;
    assert_eq!(usage_of(&app, &admin.cookie, "bob").await, (0, 0));

    // The member may neither see the page nor post its form.
    let member = app.login_browser("bob", PASSWORD).await;
    let seen = app.get("/admin/identities", Some(&member.cookie)).await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN);
    let fields = [
        ("kind", "email"),
        ("value", "carol@example.com"),
        ("user", "bob"),
    ];
    let refused = app.submit("/admin/identities/link", &member, &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(stored_on(&app, "bob").await, 0, "nothing moved");
    assert!(app.audit_entries("identity.link").await.is_empty());

    // The admin's page lists carol as unassigned, with her events.
    let page = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let row = carol_row(&page.body);
    assert!(row.contains("unassigned"), "{row}");
    assert!(row.contains(&format!(">{HELD}<")), "{row}");
    assert!(row.contains("$0.75"), "{row}");
    // First and last seen as dates: 30 hourly events from 1 June 00:00
    // UTC, in one batch (the store widens both over every event stored).
    assert!(
        row.contains("<td>2026-06-01</td><td>2026-06-02</td>"),
        "{row}"
    );
    assert!(row.contains("action=\"/admin/identities/link\""), "{row}");
    // A sample of what its latest event came with, to tell whose it is.
    assert!(
        row.contains("<dt>source</dt><dd>otlp</dd>")
            && row.contains("<dt>model</dt><dd>llama-local</dd>"),
        "{row}"
    );
    assert!(
        !row.contains("<dt>project</dt>"),
        "only what was sent: {row}"
    );
    assert!(row.contains("<option value=\"bob\">"), "{row}");
    assert!(!page.body.contains("~email-"), "holders are not people");
    assert!(
        page.body.contains("href=\"/admin/identities\""),
        "navigation"
    );
    let on_page = Browser {
        cookie: admin.cookie.clone(),
        csrf: common::csrf_token(&page.body).expect("the page's CSRF token"),
    };

    // Linking through the form moves the events and says so.
    let linked = app
        .submit("/admin/identities/link", &on_page, &fields)
        .await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER, "{}", linked.body);
    assert_eq!(linked.location(), Some("/admin/identities"));
    let after = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert!(
        after
            .body
            .contains("email:carol@example.com is now bob&#39;s: 30 events moved.")
            || after
                .body
                .contains("email:carol@example.com is now bob's: 30 events moved."),
        "{}",
        after.body
    );
    let row = carol_row(&after.body);
    assert!(row.contains("href=\"/?view=bob\""), "{row}");
    assert!(row.contains("action=\"/admin/identities/unlink\""), "{row}");
    assert_eq!(
        usage_of(&app, &admin.cookie, "bob").await,
        (HELD as i64, 100 * HELD as i64)
    );
    assert_eq!(stored_on(&app, "bob").await, HELD as i64);
    app.assert_rollups_exact().await;
    let entries = app.audit_entries("identity.link").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].target.as_deref(),
        Some("identity:email:carol@example.com")
    );
    assert_eq!(entries[0].outcome, "success");
    let details: serde_json::Value =
        serde_json::from_str(&entries[0].details).expect("JSON details");
    // As the CLI writes them (the trail adds the status).
    assert_eq!(details["user"], "bob", "{details}");
    assert_eq!(details["events_moved"], HELD, "{details}");
    assert_eq!(details["events_merged"], 0, "{details}");

    // A member's unlink is refused too, and moves nothing back.
    let unlink = [("kind", "email"), ("value", "carol@example.com")];
    let refused = app
        .submit("/admin/identities/unlink", &member, &unlink)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(stored_on(&app, "bob").await, HELD as i64);

    // Refused forms: an unknown person, an unknown identity, a bad kind.
    for (path, form, says) in [
        (
            "/admin/identities/link",
            vec![
                ("kind", "email"),
                ("value", "carol@example.com"),
                ("user", "nobody"),
            ],
            "no person named",
        ),
        (
            "/admin/identities/unlink",
            vec![("kind", "email"), ("value", "nobody@example.com")],
            "no identity email:nobody@example.com",
        ),
        (
            "/admin/identities/unlink",
            vec![("kind", "phone"), ("value", "1")],
            "unknown identity kind",
        ),
    ] {
        let answer = app.submit(path, &on_page, &form).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(answer.body.contains(says), "{path}: {}", answer.body);
    }
    assert_eq!(stored_on(&app, "bob").await, HELD as i64);

    // The admin's unlink moves it all back to unassigned.
    let unlinked = app
        .submit("/admin/identities/unlink", &on_page, &unlink)
        .await;
    assert_eq!(unlinked.status, StatusCode::SEE_OTHER, "{}", unlinked.body);
    let after = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert!(
        after
            .body
            .contains("email:carol@example.com is unassigned again: 30 events moved."),
        "{}",
        after.body
    );
    assert!(carol_row(&after.body).contains("unassigned"));
    assert_eq!(usage_of(&app, &admin.cookie, "bob").await, (0, 0));
    app.assert_rollups_exact().await;
    let unlinks = app.audit_entries("identity.unlink").await;
    let outcomes: Vec<&str> = unlinks.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failure", "failure", "success"]);
}
