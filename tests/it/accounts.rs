//! Accounts and sessions through the real router: fixation, CSRF,
//! throttling, timeouts, the last-admin rule, disabled users, password
//! changes, and the profile, token and user pages.

use crate::common::{PASSWORD, TestApp, csrf_token};
use axum::http::StatusCode;
use jiff::SignedDuration;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

const NEW_PASSWORD: &str = "another long password";

#[tokio::test]
async fn a_session_id_planted_before_login_is_worthless_after_it() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    // The attacker's session: they opened the login page and hand the
    // victim their cookie.
    let page = app.get("/login", None).await;
    let planted = page.session_cookie().expect("a pre-login session");
    let csrf = csrf_token(&page.body).expect("token");
    let login = app
        .post_form(
            "/login",
            Some(&planted),
            &[
                ("username", "ada"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let victim = login.session_cookie().expect("a new session id");
    assert_ne!(victim, planted);
    assert_eq!(
        app.get("/", Some(&planted)).await.location(),
        Some("/login")
    );
    assert_eq!(app.get("/", Some(&victim)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn state_changing_cookie_requests_need_the_session_s_csrf_token() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    let ada = app.login_browser("ada", PASSWORD).await;
    let other = app.login_browser("ada", PASSWORD).await;
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("missing", vec![]),
        ("wrong", vec![("csrf_token", "0000")]),
        (
            "another session's",
            vec![("csrf_token", other.csrf.as_str())],
        ),
        ("empty", vec![("csrf_token", "")]),
    ];
    for (what, extra) in cases {
        let mut fields = vec![
            ("display_name", "Mallory"),
            ("email", ""),
            ("time_zone", ""),
        ];
        fields.extend(extra);
        let forged = app.post_form("/profile", Some(&ada.cookie), &fields).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{what} token");
        assert!(forged.body.contains("did not come from tokentally"));
    }
    let logout = app.post_form("/logout", Some(&ada.cookie), &[]).await;
    assert_eq!(
        logout.status,
        StatusCode::FORBIDDEN,
        "logout is CSRF-protected too"
    );
    let profile = app.get("/profile", Some(&ada.cookie)).await;
    assert!(!profile.body.contains("Mallory"), "nothing was changed");
    // The header works as well as the field (for scripts with a session).
    let request = axum::http::Request::post("/profile")
        .header("cookie", &ada.cookie)
        .header("x-csrf-token", &ada.csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(
            "display_name=Ada+L&email=&time_zone=",
        ))
        .expect("request");
    assert_eq!(app.request(request).await.status, StatusCode::SEE_OTHER);
    // Login itself is protected: a cross-site login form cannot sign the
    // victim in to the attacker's account.
    let no_token = app
        .post_form(
            "/login",
            None,
            &[("username", "ada"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_with_a_clear_message() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    for _ in 0..5 {
        let failed = app.try_login("ada", "not the password!").await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now: guessing cannot continue.
    let held = app.try_login("ada", PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        held.body
            .contains("Too many failed sign-ins for this account")
    );
    assert_eq!(held.headers["retry-after"], "1");
    // Other accounts are not held back by ada's failures.
    app.create_user("grace", Role::Member).await;
    assert_eq!(
        app.try_login("grace", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // Time passes; the right password gets in and clears the count.
    app.clock.advance(SignedDuration::from_secs(2));
    assert_eq!(
        app.try_login("ada", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.try_login("ada", "wrong again, once").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Ten failures (each after its delay) lock it for a quarter of an hour.
    for _ in 0..9 {
        app.clock.advance(SignedDuration::from_secs(60));
        let failed = app.try_login("ada", "still not the password").await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    let locked = app.try_login("ada", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("15 minutes"), "{}", locked.body);
    assert_eq!(app.audit_entries("login.failure").await.len(), 5 + 1 + 9);
    assert!(!app.audit_entries("login.throttled").await.is_empty());
}

#[tokio::test]
async fn sessions_end_after_the_idle_and_the_absolute_timeout() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let idle = app.login("ada", PASSWORD).await;
    app.clock.advance(SignedDuration::from_hours(11));
    assert_eq!(
        app.get("/", Some(&idle)).await.status,
        StatusCode::OK,
        "within 12 h"
    );
    app.clock.advance(SignedDuration::from_hours(13));
    assert_eq!(
        app.get("/", Some(&idle)).await.location(),
        Some("/login"),
        "idle 13 h"
    );

    let busy = app.login("ada", PASSWORD).await;
    for _ in 0..7 {
        app.clock.advance(SignedDuration::from_hours(10));
        assert_eq!(app.get("/", Some(&busy)).await.status, StatusCode::OK);
    }
    for _ in 0..11 {
        app.clock.advance(SignedDuration::from_hours(10));
        app.get("/", Some(&busy)).await;
    }
    // 180 hours after sign-in, active every 10: past the 7-day limit.
    assert_eq!(app.get("/", Some(&busy)).await.location(), Some("/login"));
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_only() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let here = app.login_browser("ada", PASSWORD).await;
    let elsewhere = app.login("ada", PASSWORD).await;
    let wrong = app
        .submit(
            "/profile/password",
            &here,
            &[
                ("current_password", "not my password!"),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("current password is wrong"));
    let changed = app
        .submit(
            "/profile/password",
            &here,
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let here_now = changed
        .session_cookie()
        .expect("this session continues under a new id");
    assert_eq!(app.get("/", Some(&here_now)).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/", Some(&elsewhere)).await.location(),
        Some("/login")
    );
    assert_eq!(
        app.try_login("ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.try_login("ada", NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn sign_out_everywhere_for_oneself_and_by_an_admin() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let first = app.login_browser("ada", PASSWORD).await;
    let second = app.login("ada", PASSWORD).await;
    let out = app.submit("/profile/sessions/revoke", &first, &[]).await;
    assert_eq!(out.location(), Some("/login"));
    for cookie in [&first.cookie, &second] {
        assert_eq!(app.get("/", Some(cookie)).await.location(), Some("/login"));
    }
    let third = app.login("ada", PASSWORD).await;
    let root = app.login_browser("root", PASSWORD).await;
    let by_admin = app.submit("/admin/users/ada/sessions", &root, &[]).await;
    assert_eq!(by_admin.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/", Some(&third)).await.location(), Some("/login"));
    assert_eq!(
        app.get("/", Some(&root.cookie)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_last_admin_can_be_neither_demoted_nor_disabled() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let root = app.login_browser("root", PASSWORD).await;
    for action in ["demote", "disable"] {
        let refused = app
            .submit(&format!("/admin/users/root/{action}"), &root, &[])
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{action}");
        assert!(refused.body.contains("last enabled admin"), "{action}");
    }
    // With a second admin, the first may step down.
    let promoted = app.submit("/admin/users/ada/promote", &root, &[]).await;
    assert_eq!(promoted.status, StatusCode::SEE_OTHER);
    let demoted = app.submit("/admin/users/root/demote", &root, &[]).await;
    assert_eq!(demoted.status, StatusCode::SEE_OTHER);
    // root is a member now: the admin pages are closed to them.
    assert_eq!(
        app.get("/admin/users", Some(&root.cookie)).await.status,
        StatusCode::FORBIDDEN
    );
    let ada = app.login_browser("ada", PASSWORD).await;
    let last = app.submit("/admin/users/ada/disable", &ada, &[]).await;
    assert_eq!(last.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_user_disabled_by_an_admin_loses_their_sessions_and_tokens() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let token = app
        .create_token("ada", tokentally::auth::tokens::TokenScope::Read)
        .await;
    let ada = app.login("ada", PASSWORD).await;
    let root = app.login_browser("root", PASSWORD).await;
    let disabled = app.submit("/admin/users/ada/disable", &root, &[]).await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/", Some(&ada)).await.location(), Some("/login"));
    assert_eq!(
        app.try_login("ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let request = axum::http::Request::get("/api/v1/usage")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(app.request(request).await.status, StatusCode::UNAUTHORIZED);
    let enabled = app.submit("/admin/users/ada/enable", &root, &[]).await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.try_login("ada", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_admin_creates_a_user_whose_shown_password_works() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let root = app.login_browser("root", PASSWORD).await;
    let created = app
        .submit(
            "/admin/users",
            &root,
            &[
                ("username", "grace"),
                ("display_name", "Grace H"),
                ("email", "grace@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let password = created
        .body
        .split("<code id=\"issued-password\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the password is shown once")
        .to_owned();
    assert_eq!(
        app.try_login("grace", &password).await.status,
        StatusCode::SEE_OTHER
    );
    let again = app
        .submit(
            "/admin/users",
            &root,
            &[("username", "grace"), ("role", "member")],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already exists"));
    let listed = app.get("/admin/users", Some(&root.cookie)).await;
    assert!(listed.body.contains("Grace H") && !listed.body.contains(&password));
    // A reset shows a new one, and the old stops working.
    let reset = app.submit("/admin/users/grace/password", &root, &[]).await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(
        app.try_login("grace", &password).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_member_creates_and_revokes_their_own_tokens_only() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    app.create_user("grace", Role::Member).await;
    let ada = app.login_browser("ada", PASSWORD).await;
    let created = app
        .submit("/tokens", &ada, &[("name", "laptop"), ("scope", "ingest")])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = shown_token(&created.body);
    assert!(secret.starts_with("tt_"));
    let list = app.get("/tokens", Some(&ada.cookie)).await;
    assert!(list.body.contains("laptop") && !list.body.contains(&secret));
    // Asking for someone else's token is refused.
    let for_grace = app
        .submit(
            "/tokens",
            &ada,
            &[("name", "x"), ("scope", "read"), ("user", "grace")],
        )
        .await;
    assert_eq!(for_grace.status, StatusCode::FORBIDDEN);
    // Grace cannot revoke ada's token; ada can.
    let grace = app.login_browser("grace", PASSWORD).await;
    let id = list
        .body
        .split("action=\"/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a revoke form")
        .to_owned();
    let path = format!("/tokens/{id}/revoke");
    assert_eq!(
        app.submit(&path, &grace, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.submit(&path, &ada, &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let used = app
        .post_bytes(
            "/api/v1/events",
            Some(&secret),
            &[("content-type", "application/json")],
            b"[]".to_vec(),
        )
        .await;
    assert_eq!(
        used.status,
        StatusCode::UNAUTHORIZED,
        "a revoked token stops working"
    );
}

#[tokio::test]
async fn the_profile_keeps_display_name_email_and_zone_and_refuses_bad_ones() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let ada = app.login_browser("ada", PASSWORD).await;
    for (field, value, message) in [
        ("time_zone", "Mars/Olympus", "not an IANA time zone"),
        ("email", "not-an-email", "not an email address"),
    ] {
        let mut fields = vec![("display_name", "Ada"), ("email", ""), ("time_zone", "")];
        fields.retain(|(k, _)| *k != field);
        fields.push((field, value));
        let refused = app.submit("/profile", &ada, &fields).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(refused.body.contains(message), "{field}: {}", refused.body);
    }
    let saved = app
        .submit(
            "/profile",
            &ada,
            &[
                ("display_name", "Ada Lovelace"),
                ("email", "ada@example.com"),
                ("time_zone", "Asia/Kolkata"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let page = app.get("/profile", Some(&ada.cookie)).await;
    assert!(page.body.contains("Your details are saved."));
    assert!(page.body.contains("Ada Lovelace") && page.body.contains("Asia/Kolkata"));
    // The zone is what the read API uses for this user's days.
    let usage = app
        .get(
            "/api/v1/usage?from=2026-06-01&to=2026-06-02",
            Some(&ada.cookie),
        )
        .await;
    assert_eq!(usage.json()["zone"], "Asia/Kolkata");
    assert_eq!(usage.json()["from"], "2026-05-31T18:30:00Z");
}

/// Every text and blob value in every table of the database, as text.
async fn every_stored_value(app: &TestApp) -> Vec<(String, String)> {
    app.state
        .db
        .read(|conn| {
            let tables: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut values = Vec::new();
            for table in tables {
                let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
                let columns = stmt.column_count();
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    for i in 0..columns {
                        let text = match row.get_ref(i)? {
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            _ => continue,
                        };
                        values.push((table.clone(), text));
                    }
                }
            }
            Ok::<_, tokentally::db::DbError>(values)
        })
        .await
        .expect("every value")
}

/// Passwords, API tokens and session ids are stored only as hashes or
/// digests: neither a table nor the bytes of the database file and its
/// WAL hold one in clear, and yet each of them works.
#[tokio::test]
async fn passwords_tokens_and_session_ids_are_never_stored_in_clear() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let stored_token = app.create_token("ada", TokenScope::Ingest).await;
    let ada = app.login_browser("ada", PASSWORD).await;
    let created = app
        .submit("/tokens", &ada, &[("name", "laptop"), ("scope", "read")])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let page_token = shown_token(&created.body);
    let changed = app
        .submit(
            "/profile/password",
            &ada,
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let continued = changed
        .session_cookie()
        .expect("the session continues under a new id");
    let session = app.login("ada", NEW_PASSWORD).await;
    // Each secret works (so it was stored in some form) ...
    let sent = app
        .post_bytes(
            "/api/v1/events",
            Some(&stored_token),
            &[("content-type", "application/json")],
            br#"[{"id": "e1", "timestamp": "2026-06-01T10:00:00Z", "model": "m",
                 "input_tokens": 1, "output_tokens": 1}]"#
                .to_vec(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let read = app
        .request(
            axum::http::Request::get("/api/v1/usage")
                .header("authorization", format!("Bearer {page_token}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(
        app.get("/profile", Some(&session)).await.status,
        StatusCode::OK
    );
    app.state.audit.flush().await;
    // ... and none is found where it is kept.
    let session_id = |cookie: &str| cookie.split_once('=').expect("name=value").1.to_owned();
    let secrets = [
        ("the first password", PASSWORD.to_owned()),
        ("the new password", NEW_PASSWORD.to_owned()),
        ("a token made by the store", stored_token),
        ("a token made on the page", page_token),
        (
            "a session id before the password change",
            session_id(&ada.cookie),
        ),
        ("the session id after it", session_id(&continued)),
        ("a session id", session_id(&session)),
    ];
    let values = every_stored_value(&app).await;
    assert!(values.iter().any(|(table, _)| table == "sessions"));
    let files: Vec<(String, Vec<u8>)> = ["tokentally.db", "tokentally.db-wal"]
        .iter()
        .map(|name| {
            let bytes = std::fs::read(app.dir.path().join(name)).unwrap_or_default();
            (name.to_string(), bytes)
        })
        .collect();
    assert!(
        files.iter().map(|(_, bytes)| bytes.len()).sum::<usize>() > 0,
        "the files are there"
    );
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what}: {secret}");
        for (table, value) in &values {
            assert!(!value.contains(secret.as_str()), "{what} is in {table}");
        }
        for (file, bytes) in &files {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{what} is in the bytes of {file}"
            );
        }
    }
}

/// The new token's secret, as the tokens page shows it once.
fn shown_token(page: &str) -> String {
    page.split("<code id=\"new-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret is shown once")
        .to_owned()
}
