//! Personal data (issue 14, item 9): identities and emails are shown to
//! admins and to the person they belong to (their profile lists their
//! identities), never to other members — whatever page, API or export
//! member B asks for, with a session or a read token, A's identity values
//! and emails are not in it. And the audit trail records views of the
//! identities page and every change made there.

use crate::common::{PASSWORD, TestApp, TestResponse};
use crate::identity_members::{email, seed};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::auth::users::{self, Profile};
use tokentally::model::{IdentityKey, IdentityKind};
use tokentally::usage::identities;

/// A's identities (one linked by an admin, one by the email of A's
/// profile), A's profile email, and an identity linked to no one.
const A_IDENTITY: &str = "alice.work@example.com";
const A_PROFILE_EMAIL: &str = "alice@example.com";
const A_ENDUSER: &str = "alice-laptop-7f3a";
const STRANGER: &str = "stranger@example.com";

async fn world() -> TestApp {
    let app = TestApp::new().await;
    let root = app.create_user("root", Role::Admin).await;
    let a = app.create_user("a", Role::Member).await;
    app.create_user("b", Role::Member).await;
    app.state
        .db
        .write(move |conn| {
            let profile = Profile {
                email: Some(A_PROFILE_EMAIL.to_owned()),
                ..Profile::default()
            };
            users::update_profile(conn, a, &profile, 0)
        })
        .await
        .expect("a's email");
    // Linked by itself: the email is A's profile email.
    seed(&app, root, &email(A_PROFILE_EMAIL), 3).await;
    seed(&app, root, &email(A_IDENTITY), 4).await;
    let laptop = IdentityKey::new(IdentityKind::EndUser, A_ENDUSER);
    seed(&app, root, &laptop, 2).await;
    seed(&app, root, &email(STRANGER), 5).await;
    app.state
        .db
        .write(move |conn| {
            identities::link(conn, &email(A_IDENTITY), "a")?;
            identities::link(conn, &laptop, "a")
        })
        .await
        .expect("linked to a");
    app
}

async fn by_token(app: &TestApp, token: &str, path: &str) -> TestResponse {
    app.request(
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn what_b_receives_never_names_a_s_identities_or_emails() {
    let app = world().await;
    let b = app.login_browser("b", PASSWORD).await;
    let b_read = app.create_token("b", TokenScope::Read).await;
    let markers = [A_IDENTITY, A_PROFILE_EMAIL, A_ENDUSER, STRANGER, "alice"];
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    let paths = [
        format!("/?{range}"),
        format!("/events?{range}"),
        format!("/events?{range}&identity=unassigned"),
        format!("/events?{range}&identity=email:{A_IDENTITY}"),
        format!("/events?{range}&identity=enduser:{A_ENDUSER}&sort=user"),
        format!("/api/v1/events?{range}"),
        format!("/api/v1/events?{range}&identity=unassigned"),
        format!("/api/v1/events?{range}&identity=email:{A_PROFILE_EMAIL}"),
        format!("/api/v1/events.csv?{range}&identity=email:{A_IDENTITY}"),
        format!("/api/v1/usage/events?{range}&identity=enduser:{A_ENDUSER}"),
        format!("/api/v1/usage?{range}&identity=unassigned&group_by=user"),
        format!("/api/v1/usage?{range}&group_by=user"),
        "/profile".to_owned(),
        "/tokens".to_owned(),
        "/admin/identities".to_owned(),
        "/admin/identities?show=linked".to_owned(),
        "/admin/users".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/audit.csv".to_owned(),
        "/team".to_owned(),
    ];
    for path in &paths {
        let session = app.get(path, Some(&b.cookie)).await;
        let token = by_token(&app, &b_read, path).await;
        for (how, response) in [("session", &session), ("read token", &token)] {
            // What B typed into the URL may come back in links; that is
            // B's own input, not A's data.
            for marker in markers.iter().filter(|m| !path.contains(*m)) {
                assert!(
                    !response.body.contains(marker),
                    "{path} by B's {how} names {marker:?}"
                );
            }
        }
    }
    // Admin pages are refused, not emptied.
    for path in ["/admin/identities", "/admin/users"] {
        assert_eq!(
            app.get(path, Some(&b.cookie)).await.status,
            StatusCode::FORBIDDEN
        );
    }
    // B's filters by A's identities select nothing at all.
    let answer = app
        .get(
            &format!("/api/v1/events?{range}&identity=email:{A_IDENTITY}"),
            Some(&b.cookie),
        )
        .await
        .json();
    assert_eq!(answer["events"], serde_json::json!([]));

    // A sees their own identities, on the profile and on their events.
    let a = app.login_browser("a", PASSWORD).await;
    let profile = app.get("/profile", Some(&a.cookie)).await;
    for mine in [A_IDENTITY, A_PROFILE_EMAIL, A_ENDUSER] {
        assert!(
            profile
                .body
                .contains(&format!("<th scope=\"row\">{mine}</th>")),
            "{mine}: {}",
            profile.body
        );
    }
    assert!(!profile.body.contains(STRANGER));
    let events = app
        .get(
            &format!("/api/v1/events?{range}&limit=100"),
            Some(&a.cookie),
        )
        .await;
    assert!(events.body.contains(&format!("email:{A_IDENTITY}")));
    assert!(!events.body.contains(STRANGER));
    // The admin sees everyone's.
    let admin = app.login_browser("root", PASSWORD).await;
    let page = app.get("/admin/identities", Some(&admin.cookie)).await;
    for any in [A_IDENTITY, A_PROFILE_EMAIL, A_ENDUSER, STRANGER] {
        assert!(page.body.contains(any), "{any}");
    }
}

#[tokio::test]
async fn the_trail_records_views_of_the_identities_page_and_every_change() {
    let app = world().await;
    app.create_user("c", Role::Member).await;
    let admin = app.login_browser("root", PASSWORD).await;
    let page = app
        .get("/admin/identities?show=unassigned", Some(&admin.cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let views: Vec<_> = app
        .audit_entries("page.view")
        .await
        .into_iter()
        .filter(|e| e.route.as_deref() == Some("GET /admin/identities"))
        .collect();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].actor_name.as_deref(), Some("root"));
    assert_eq!(views[0].outcome, "success");
    let details: serde_json::Value = serde_json::from_str(&views[0].details).expect("JSON");
    assert_eq!(details["page"], "identities");
    assert_eq!(details["show"], "unassigned");
    // A member's look is recorded as refused.
    let b = app.login_browser("b", PASSWORD).await;
    app.get("/admin/identities", Some(&b.cookie)).await;
    let denied: Vec<_> = app
        .audit_entries("access.denied")
        .await
        .into_iter()
        .filter(|e| e.route.as_deref() == Some("GET /admin/identities"))
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].actor_name.as_deref(), Some("b"));

    let stranger = [("kind", "email"), ("value", STRANGER)];
    for (path, extra) in [
        ("/admin/identities/ignore", None),
        ("/admin/identities/unignore", None),
        ("/admin/identities/link", Some(("user", "c"))),
        ("/admin/identities/unlink", None),
        ("/admin/identities/create", Some(("username", "stranger"))),
    ] {
        let mut fields = stranger.to_vec();
        fields.extend(extra);
        let answer = app.submit(path, &admin, &fields).await;
        assert!(
            answer.status == StatusCode::SEE_OTHER || answer.status == StatusCode::CREATED,
            "{path}: {}",
            answer.status
        );
    }
    for action in [
        "identity.ignore",
        "identity.unignore",
        "identity.link",
        "identity.unlink",
        "identity.create_user",
    ] {
        let entries = app.audit_entries(action).await;
        assert_eq!(entries.len(), 1, "{action}");
        assert_eq!(
            entries[0].target.as_deref(),
            Some("identity:email:stranger@example.com"),
            "{action}"
        );
        assert_eq!(entries[0].actor_name.as_deref(), Some("root"), "{action}");
        assert_eq!(entries[0].outcome, "success", "{action}");
    }
}
