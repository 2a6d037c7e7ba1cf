//! Handler tests: the real router over a real temporary database.

use crate::common::{self, PASSWORD, TestApp};
use axum::http::StatusCode;
use tokentally::auth::setup;
use tokentally::auth::{Role, UserId};
use tokentally::demo::{self, Workload};

#[tokio::test]
async fn anonymous_visitors_are_sent_to_login_everywhere_but_the_public_list() {
    let app = TestApp::new().await;
    // (method, path, expected status, expected Location)
    let cases: &[(&str, &str, StatusCode, Option<&str>)] = &[
        ("GET", "/", StatusCode::SEE_OTHER, Some("/login")),
        (
            "GET",
            "/no/such/page",
            StatusCode::SEE_OTHER,
            Some("/login?next=/no/such/page"),
        ),
        (
            "GET",
            "/?range=7d",
            StatusCode::SEE_OTHER,
            Some("/login?next=/%3Frange%3D7d"),
        ),
        (
            "POST",
            "/logout",
            StatusCode::SEE_OTHER,
            Some("/login?next=/logout"),
        ),
        ("GET", "/api/v1/usage", StatusCode::UNAUTHORIZED, None),
        ("GET", "/login", StatusCode::OK, None),
        ("GET", "/healthz", StatusCode::OK, None),
        ("GET", "/readyz", StatusCode::OK, None),
        ("GET", "/favicon.ico", StatusCode::OK, None),
        ("GET", "/setup", StatusCode::FORBIDDEN, None),
        ("GET", "/assets/nope.css", StatusCode::NOT_FOUND, None),
    ];
    for (method, path, status, location) in cases {
        let response = match *method {
            "GET" => app.get(path, None).await,
            _ => app.post_form(path, None, &[]).await,
        };
        assert_eq!(
            response.status, *status,
            "{method} {path}: {}",
            response.body
        );
        assert_eq!(response.location(), *location, "{method} {path}");
    }
}

#[tokio::test]
async fn assets_are_served_under_hashed_names_with_immutable_caching() {
    let app = TestApp::new().await;
    let login = app.get("/login", None).await;
    let css_url = login
        .body
        .split("href=\"")
        .map(|s| s.split('"').next().unwrap_or_default())
        .find(|s| s.starts_with("/assets/app.") && s.ends_with(".css"))
        .expect("the layout links the stylesheet")
        .to_owned();
    assert!(css_url.starts_with("/assets/app.") && css_url != "/assets/app.css");
    let css = app.get(&css_url, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css");
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap_or_default()
            .contains("immutable")
    );
    assert!(css.body.contains("prefers-color-scheme"));
    // The unhashed name is not served: it could be cached forever by mistake.
    assert_eq!(
        app.get("/assets/app.css", None).await.status,
        StatusCode::NOT_FOUND
    );
    let traversal = app.get("/assets/../Cargo.toml", None).await;
    assert_ne!(traversal.status, StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    let wrong = app.try_login("ada", "not the password").await;
    let unknown = app.try_login("nobody", PASSWORD).await;
    for response in [&wrong, &unknown] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert!(response.body.contains("Wrong username or password."));
        assert!(response.location().is_none());
    }
}

#[tokio::test]
async fn login_reaches_the_dashboard_and_logout_ends_the_session() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    let browser = app.login_browser("ada", PASSWORD).await;
    let cookie = browser.cookie.clone();
    let page = app.get("/", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Everyone&#39;s usage") || page.body.contains("Everyone's usage"));
    assert!(page.body.contains("No usage in this range"));
    assert!(page.body.contains("Sign out"));

    let logout = app.submit("/logout", &browser, &[]).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/", Some(&cookie)).await.location(), Some("/login"));
}

#[tokio::test]
async fn login_issues_a_new_session_id() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    let browser = app.login_browser("ada", PASSWORD).await;
    let first = browser.cookie.clone();
    let again = app
        .submit(
            "/login",
            &browser,
            &[("username", "ada"), ("password", PASSWORD)],
        )
        .await;
    let second = again.session_cookie().expect("a new cookie");
    assert_ne!(first, second, "the session id changes at login");
    assert_eq!(
        app.get("/", Some(&first)).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.get("/", Some(&second)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn login_redirects_only_to_local_paths() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    let cases = [
        ("/events?user=grace", "/events?user=grace"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ];
    for (next, expected) in cases {
        let response = app
            .login_form(&[("username", "ada"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(response.location(), Some(expected), "next={next}");
    }
}

#[tokio::test]
async fn a_disabled_user_loses_their_session_and_cannot_log_in() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    app.create_user("grace", Role::Member).await;
    let cookie = app.login("grace", PASSWORD).await;
    app.state
        .db
        .write(|conn| tokentally::auth::users::set_disabled(conn, "grace", true, 0))
        .await
        .expect("disabled");
    assert_eq!(app.get("/", Some(&cookie)).await.location(), Some("/login"));
    let again = app.try_login("grace", PASSWORD).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

async fn load_usage(app: &TestApp, users: Vec<UserId>, events: usize) {
    let workload = Workload {
        events,
        seed: 3,
        end: app.clock.now(),
        days: 20,
    };
    app.state
        .db
        .write(move |conn| demo::generate(conn, &users, &workload))
        .await
        .expect("workload written");
}

use tokentally::clock::Clock as _;

#[tokio::test]
async fn a_member_sees_only_their_own_usage_and_an_admin_sees_everyone() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    let grace = app.create_user("grace", Role::Member).await;
    app.create_user("alan", Role::Member).await;
    load_usage(&app, vec![grace], 500).await;

    let alan_page = app.get("/", Some(&app.login("alan", PASSWORD).await)).await;
    assert!(alan_page.body.contains("Your usage"));
    assert!(
        alan_page.body.contains("No usage in this range"),
        "alan has none"
    );

    let grace_page = app
        .get("/", Some(&app.login("grace", PASSWORD).await))
        .await;
    assert!(grace_page.body.contains("Your usage"));
    assert!(
        grace_page.body.contains("<dd>500</dd>"),
        "grace's 500 calls"
    );

    let ada_page = app.get("/", Some(&app.login("ada", PASSWORD).await)).await;
    assert!(
        ada_page.body.contains("<dd>500</dd>"),
        "the admin sees grace's calls"
    );
    assert!(ada_page.body.contains("By model"));
    assert!(
        ada_page.body.contains("unpriced"),
        "the model without a price says so"
    );
}

#[tokio::test]
async fn first_run_setup_creates_the_admin_once() {
    let app = TestApp::new().await;
    let token = setup::issue_token_if_needed(&app.state.db, 0)
        .await
        .expect("db")
        .expect("no admin yet, so a token");

    let bad = app.get("/setup?token=wrong", None).await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    assert!(bad.body.contains("does not work"));

    let form = app.get(&format!("/setup?token={token}"), None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Create the first admin"));
    let setup_cookie = form
        .session_cookie()
        .expect("the setup page starts a session");
    let csrf = common::csrf_token(&form.body).expect("the setup form has a CSRF token");

    let fields = |password: &'static str, confirm: &'static str| {
        [
            ("token", token.clone()),
            ("username", "root-admin".to_owned()),
            ("password", password.to_owned()),
            ("password_confirm", confirm.to_owned()),
            ("csrf_token", csrf.clone()),
        ]
    };
    let as_refs = |f: &[(&'static str, String); 5]| -> Vec<(&'static str, String)> { f.to_vec() };
    let post = |f: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, setup_cookie.clone());
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form("/setup", Some(&cookie), &pairs).await
        }
    };

    let short = post(as_refs(&fields("short", "short"))).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("at least 12 characters"));

    let differ = post(as_refs(&fields(PASSWORD, "another long password"))).await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(differ.body.contains("differ"));

    let created = post(as_refs(&fields(PASSWORD, PASSWORD))).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert_eq!(created.location(), Some("/"));
    let cookie = created.session_cookie().expect("signed in");
    assert_eq!(app.get("/", Some(&cookie)).await.status, StatusCode::OK);

    // The link is spent, and setup is over.
    // (The setup session was renamed at sign-in: post from the new one.)
    let reuse_fields = fields(PASSWORD, PASSWORD);
    let pairs: Vec<(&str, &str)> = reuse_fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reuse = app.post_form("/setup", Some(&cookie), &pairs).await;
    assert_eq!(reuse.location(), Some("/login"));
    assert_eq!(
        app.get(&format!("/setup?token={token}"), None)
            .await
            .location(),
        Some("/login")
    );
    let none_left = setup::issue_token_if_needed(&app.state.db, 0)
        .await
        .expect("db");
    assert!(none_left.is_none(), "no new token once an admin exists");
}

#[tokio::test]
async fn readyz_reports_start_up_work() {
    let app = TestApp::new().await;
    app.state
        .readiness
        .set_not_ready("loading the demo data set");
    let busy = app.get("/readyz", None).await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(busy.body.contains("loading the demo data set"));
    app.state.readiness.set_ready();
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    assert_eq!(app.get("/healthz", None).await.body, r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn a_signed_in_user_gets_a_404_page_for_unknown_paths() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Admin).await;
    let cookie = app.login("ada", PASSWORD).await;
    let missing = app.get("/no/such/page", Some(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
