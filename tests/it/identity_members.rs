//! Members made from identities (issue 14, item 3), over the real router:
//! an admin creates a member from an unassigned identity on
//! `/admin/identities` (the email's local part proposed as the login
//! name); the member has no password, the identity's past events move to
//! them exactly, and the admin is shown a one-time setup link once. The
//! person opens `/invite/{token}`, chooses a password and is signed in; a
//! used, expired or wrong link gets a page that says so; an admin can give
//! a fresh link from the Users page. The token is never stored, logged or
//! audited.

use crate::common::{self, Browser, PASSWORD, TestApp, TestResponse};
use axum::http::StatusCode;
use jiff::SignedDuration;
use tokentally::auth::Role;
use tokentally::model::{IdentityKey, IdentityKind, UserId};
use tokentally::usage::store::{Inserter, NewEvent};

/// 2026-06-01T00:00:00Z.
const START_MS: i64 = 1_780_272_000_000;
const PUBLIC_URL: &str = "https://tokens.example.com";

/// `count` hourly events from 1 June naming `key`, sent with `owner`'s
/// collector token, each costing `cost_micros` as reported.
pub fn held_events(owner: UserId, key: &IdentityKey, count: usize, cost: i64) -> Vec<NewEvent> {
    (0..count)
        .map(|i| NewEvent {
            extras: Default::default(),
            ts_ms: START_MS + i as i64 * 3_600_000,
            user: owner,
            source: "otlp".into(),
            external_id: format!("{key}-{i}"),
            model: "llama-local".into(),
            provider: None,
            activity: None,
            project: None,
            tokens: [100, 10, 0, 0],
            reported_cost_micros: Some(cost),
            identity: Some(key.clone()),
            session: None,
            machine: None,
        })
        .collect()
}

pub async fn seed(app: &TestApp, owner: UserId, key: &IdentityKey, count: usize) {
    let events = held_events(owner, key, count, 25_000);
    app.state
        .db
        .write(move |conn| Inserter::new(conn)?.insert(conn, &events))
        .await
        .expect("seed");
}

pub fn email(value: &str) -> IdentityKey {
    IdentityKey::new(IdentityKind::Email, value)
}

/// The app with an admin (`root`) and its public URL set, as `serve` sets it.
pub async fn app() -> (TestApp, UserId) {
    let mut app = TestApp::new().await;
    let root = app.create_user("root", Role::Admin).await;
    app.state.link_base = Some(PUBLIC_URL.to_owned());
    app.rebuild_router();
    (app, root)
}

/// The events stored on `username`, from the raw rows.
pub async fn stored_on(app: &TestApp, username: &str) -> i64 {
    app.stored_by_user()
        .await
        .into_iter()
        .find(|(name, _, _)| name == username)
        .map_or(0, |(_, events, _)| events)
}

/// The token of the setup link shown in `page` (`#issued-link`).
fn issued_token(page: &str, base: &str) -> String {
    let marker = "id=\"issued-link\">";
    let start = page.find(marker).expect("a setup link is shown") + marker.len();
    let end = start + page[start..].find('<').expect("the link ends");
    let link = &page[start..end];
    let prefix = format!("{base}/invite/");
    let token = link
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link} starts with {prefix}"));
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    token.to_owned()
}

/// Opens the setup link anonymously and posts `fields` with its CSRF token.
async fn accept(app: &TestApp, token: &str, fields: &[(&str, &str)]) -> TestResponse {
    let path = format!("/invite/{token}");
    let page = app.get(&path, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let browser = Browser {
        cookie: page.session_cookie().expect("the page starts a session"),
        csrf: common::csrf_token(&page.body).expect("the form's CSRF token"),
    };
    app.submit(&path, &browser, fields).await
}

/// Every audit row as text, to search for a secret.
async fn audit_text(app: &TestApp) -> String {
    app.state.audit.flush().await;
    app.state
        .db
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT action || ' ' || COALESCE(target, '') || ' ' || COALESCE(route, '') \
                 || ' ' || details FROM audit_log",
            )?;
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok::<_, tokentally::db::DbError>(rows.join("\n"))
        })
        .await
        .expect("audit rows")
}

#[tokio::test]
async fn an_admin_makes_a_member_from_an_identity_who_sets_a_password_through_the_link() {
    let (app, root) = app().await;
    let carol = email("carol@example.com");
    seed(&app, root, &carol, 30).await;
    let admin = app.login_browser("root", PASSWORD).await;

    // The row of the unassigned identity proposes the email's local part.
    let page = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("action=\"/admin/identities/create\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("name=\"username\" required maxlength=\"64\" value=\"carol\""),
        "{}",
        page.body
    );

    let fields = [
        ("kind", "email"),
        ("value", "carol@example.com"),
        ("username", "carol"),
    ];
    let created = app
        .submit("/admin/identities/create", &admin, &fields)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = issued_token(&created.body, PUBLIC_URL);
    assert!(created.body.contains("Setup link for carol"));
    assert!(created.body.contains("href=\"/?view=carol\""), "now linked");
    // Shown once: the next view of the page has no link.
    let again = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert!(!again.body.contains(&token) && !again.body.contains("issued-link"));

    // Her past moved, exactly; she has no password and her email is set.
    assert_eq!(stored_on(&app, "carol").await, 30);
    app.assert_rollups_exact().await;
    let (hash, mail, stored_tokens) = app
        .state
        .db
        .read(move |conn| {
            let (hash, mail): (Option<String>, Option<String>) = conn.query_row(
                "SELECT password_hash, email FROM users WHERE username = 'carol'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let tokens: Vec<(String, i64, i64)> = conn
                .prepare("SELECT token_hash, created_at, expires_at FROM invites")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok::<_, tokentally::db::DbError>((hash, mail, tokens))
        })
        .await
        .expect("carol's row");
    assert_eq!(hash, None);
    assert_eq!(mail.as_deref(), Some("carol@example.com"));
    assert_eq!(stored_tokens.len(), 1);
    let (digest, created_at, expires_at) = &stored_tokens[0];
    assert_eq!(digest, &tokentally::secret::digest(&token), "only a digest");
    assert_eq!(expires_at - created_at, 7 * 86_400);
    assert_eq!(
        app.try_login("carol", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "no password yet"
    );
    let users = app.get("/admin/users", Some(&admin.cookie)).await;
    assert!(users.body.contains("no password yet"), "{}", users.body);
    assert!(users.body.contains("action=\"/admin/users/carol/invite\""));

    // The audit entry names the identity, the member and what moved.
    let entries = app.audit_entries("identity.create_user").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].target.as_deref(),
        Some("identity:email:carol@example.com")
    );
    let details: serde_json::Value = serde_json::from_str(&entries[0].details).expect("JSON");
    assert_eq!(details["user"], "carol");
    assert_eq!(details["events_moved"], 30);

    // The link's page, then bad passwords, then a good one.
    let path = format!("/invite/{token}");
    let page = app.get(&path, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Choose your password"));
    assert!(page.body.contains("<strong>carol</strong>"));
    for (password, confirm, says) in [
        ("short", "short", "at least 12 characters"),
        (
            PASSWORD,
            "another long password",
            "The two passwords differ.",
        ),
    ] {
        let answer = accept(
            &app,
            &token,
            &[("password", password), ("password_confirm", confirm)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer.body.contains(says), "{}", answer.body);
    }
    let accepted = accept(
        &app,
        &token,
        &[("password", PASSWORD), ("password_confirm", PASSWORD)],
    )
    .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    assert_eq!(accepted.location(), Some("/profile"));
    let cookie = accepted.session_cookie().expect("signed in");
    let profile = app.get("/profile", Some(&cookie)).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(
        profile
            .body
            .contains("Welcome, carol: your password is set.")
    );
    assert!(profile.body.contains("Your identities"), "{}", profile.body);
    assert!(
        profile
            .body
            .contains("<th scope=\"row\">carol@example.com</th>")
    );
    assert!(profile.body.contains("<td class=\"num\">30</td>"));

    // The link is spent; she signs in with her password.
    let spent = app.get(&path, None).await;
    assert_eq!(spent.status, StatusCode::NOT_FOUND);
    assert!(spent.body.contains("This setup link does not work"));
    app.login("carol", PASSWORD).await;
    let users = app.get("/admin/users", Some(&admin.cookie)).await;
    assert!(!users.body.contains("no password yet"));

    let accepts = app.audit_entries("invite.accept").await;
    let last = accepts.last().expect("an accept entry");
    assert_eq!(last.outcome, "success");
    assert_eq!(last.actor_name.as_deref(), Some("carol"));
    assert_eq!(last.route.as_deref(), Some("POST /invite/{token}"));
    let outcomes: Vec<&str> = accepts.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failure", "failure", "success"]);
    // The secret is nowhere in the trail (nor its route, nor its details).
    assert!(!audit_text(&app).await.contains(&token));
}

#[tokio::test]
async fn setup_links_expire_and_an_admin_issues_a_fresh_one_from_the_users_page() {
    let (app, root) = app().await;
    let dora = IdentityKey::new(IdentityKind::EndUser, "Dora Who");
    seed(&app, root, &dora, 3).await;
    let admin = app.login_browser("root", PASSWORD).await;
    let page = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert!(page.body.contains("value=\"Dora-Who\""), "{}", page.body);
    let created = app
        .submit(
            "/admin/identities/create",
            &admin,
            &[
                ("kind", "enduser"),
                ("value", "Dora Who"),
                ("username", "dora"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let first = issued_token(&created.body, PUBLIC_URL);

    // Seven days and a second later the link no longer works.
    app.clock.advance(SignedDuration::from_secs(7 * 86_400 + 1));
    let expired = app.get(&format!("/invite/{first}"), None).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
    assert!(expired.body.contains("has expired"), "{}", expired.body);
    let wrong = app.get(&format!("/invite/{}", "0".repeat(64)), None).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert_eq!(wrong.body, expired.body, "one answer for every bad link");

    // A fresh link from the Users page; the old one stays dead. (The
    // admin's session ended with the week: a new one.)
    let admin = app.login_browser("root", PASSWORD).await;
    let fresh = app.submit("/admin/users/dora/invite", &admin, &[]).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    let second = issued_token(&fresh.body, PUBLIC_URL);
    assert_ne!(first, second);
    assert_eq!(
        app.get(&format!("/invite/{first}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    // Another fresh one replaces the second.
    let third = issued_token(
        &app.submit("/admin/users/dora/invite", &admin, &[])
            .await
            .body,
        PUBLIC_URL,
    );
    assert_eq!(
        app.get(&format!("/invite/{second}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    let accepted = accept(
        &app,
        &third,
        &[("password", PASSWORD), ("password_confirm", PASSWORD)],
    )
    .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);

    // Someone with a password gets none; an unknown user is 404.
    let refused = app.submit("/admin/users/dora/invite", &admin, &[]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("already has a password"),
        "{}",
        refused.body
    );
    let unknown = app.submit("/admin/users/nobody/invite", &admin, &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let member = app.login_browser("dora", PASSWORD).await;
    let forbidden = app.submit("/admin/users/dora/invite", &member, &[]).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let issues = app.audit_entries("invite.issue").await;
    let outcomes: Vec<&str> = issues.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["success", "success", "failure", "failure"]);
    assert_eq!(issues[0].target.as_deref(), Some("user:dora"));
    let trail = audit_text(&app).await;
    for token in [&first, &second, &third] {
        assert!(!trail.contains(token.as_str()));
    }
}

#[tokio::test]
async fn a_disabled_member_s_link_does_not_work() {
    let (app, root) = app().await;
    let erin = email("erin@example.com");
    seed(&app, root, &erin, 1).await;
    let admin = app.login_browser("root", PASSWORD).await;
    let created = app
        .submit(
            "/admin/identities/create",
            &admin,
            &[
                ("kind", "email"),
                ("value", "erin@example.com"),
                ("username", "erin"),
            ],
        )
        .await;
    let token = issued_token(&created.body, PUBLIC_URL);
    let disabled = app.submit("/admin/users/erin/disable", &admin, &[]).await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    let page = app.get(&format!("/invite/{token}"), None).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn creating_a_member_is_refused_clearly_and_changes_nothing() {
    let (app, root) = app().await;
    let carol = email("carol@example.com");
    seed(&app, root, &carol, 5).await;
    app.create_user("Carol", Role::Member).await;
    let bob_key = email("bob@example.com");
    seed(&app, root, &bob_key, 2).await;
    app.create_user("bob", Role::Member).await;
    let admin = app.login_browser("root", PASSWORD).await;

    // "carol" is taken (names compare without case): "carol2" is proposed.
    let page = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert!(page.body.contains("value=\"carol2\""), "{}", page.body);

    let linked = app
        .submit(
            "/admin/identities/link",
            &admin,
            &[
                ("kind", "email"),
                ("value", "bob@example.com"),
                ("user", "bob"),
            ],
        )
        .await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER);
    for (fields, says) in [
        (
            [
                ("kind", "email"),
                ("value", "carol@example.com"),
                ("username", "-bad name"),
            ],
            "a username is 1 to 64 characters",
        ),
        (
            [
                ("kind", "email"),
                ("value", "carol@example.com"),
                ("username", "carol"),
            ],
            "a user named \"carol\" already exists",
        ),
        (
            [
                ("kind", "email"),
                ("value", "bob@example.com"),
                ("username", "bobby"),
            ],
            "email:bob@example.com is linked to bob; unlink it first",
        ),
        (
            [
                ("kind", "email"),
                ("value", "nobody@example.com"),
                ("username", "nobody"),
            ],
            "no identity email:nobody@example.com",
        ),
        (
            [("kind", "phone"), ("value", "1"), ("username", "phone")],
            "unknown identity kind",
        ),
    ] {
        let answer = app
            .submit("/admin/identities/create", &admin, &fields)
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{says}");
        assert!(
            answer.body.replace("&quot;", "\"").contains(says),
            "{says}: {}",
            answer.body
        );
        assert!(!answer.body.contains("issued-link"));
    }
    // A member may not.
    let member = app.login_browser("bob", PASSWORD).await;
    let forbidden = app
        .submit(
            "/admin/identities/create",
            &member,
            &[
                ("kind", "email"),
                ("value", "carol@example.com"),
                ("username", "carol2"),
            ],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    // Nothing was made, nothing moved.
    let names: Vec<String> = app
        .stored_by_user()
        .await
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert!(
        !names.iter().any(|n| n == "carol2" || n == "bobby"),
        "{names:?}"
    );
    let people = app
        .state
        .db
        .read(tokentally::auth::users::list)
        .await
        .expect("people");
    assert_eq!(people.len(), 3, "{people:?}");
    assert_eq!(stored_on(&app, "bob").await, 2);
    app.assert_rollups_exact().await;
    let outcomes: Vec<String> = app
        .audit_entries("identity.create_user")
        .await
        .into_iter()
        .map(|e| e.outcome)
        .collect();
    // The member's attempt is an `access.denied` entry, as on every admin route.
    assert_eq!(outcomes, ["failure"; 5]);
}
