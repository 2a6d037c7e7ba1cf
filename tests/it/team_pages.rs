//! Teams in the browser, over the real router: an admin creates teams and
//! puts people in them through `/admin/teams` (every change audited; a
//! refused one says why with 422 and changes nothing; tokens cannot post
//! the forms at all), and every state of the team page renders: an
//! admin's with no team yet, an admin's with teams and their members, a
//! lead's (their team only), a member's (refused).

use crate::common::{Browser, TestApp, TestResponse};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

const RANGE: &str = "range=custom&from=2026-06-01&to=2026-06-15";

struct Fixture {
    app: TestApp,
    admin: Browser,
}

/// root (admin), ada, bob, cat; usage of each before and after
/// 2026-06-10T12:00Z.
async fn fixture() -> Fixture {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    for name in ["ada", "bob", "cat"] {
        app.create_user(name, Role::Member).await;
        let token = app.create_token(name, TokenScope::Ingest).await;
        let events = json!([
            {"id": format!("{name}-early"), "timestamp": "2026-06-05T09:00:00Z",
             "model": "m", "input_tokens": 1000, "output_tokens": 1, "cost": "1.00"},
            {"id": format!("{name}-late"), "timestamp": "2026-06-12T09:00:00Z",
             "model": "m", "input_tokens": 2000, "output_tokens": 1, "cost": "2.00"},
        ]);
        let response = app
            .post_bytes(
                "/api/v1/events",
                Some(&token),
                &[("content-type", "application/json")],
                events.to_string().into_bytes(),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    let admin = app.login_browser("root", crate::common::PASSWORD).await;
    Fixture { app, admin }
}

impl Fixture {
    async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        self.app.submit(path, &self.admin, fields).await
    }

    /// Creates web and ops; ada leads web from the beginning; bob is in
    /// web, then moves to ops on 2026-06-10 12:00 (the admin's zone: UTC).
    async fn organise(&self) {
        for (path, fields) in [
            ("/admin/teams", vec![("name", "web")]),
            ("/admin/teams", vec![("name", "ops")]),
            (
                "/admin/teams/members",
                vec![("team", "web"), ("user", "ada"), ("lead", "1")],
            ),
            (
                "/admin/teams/members",
                vec![("team", "web"), ("user", "bob")],
            ),
            (
                "/admin/teams/members",
                vec![
                    ("team", "ops"),
                    ("user", "bob"),
                    ("since", "2026-06-10T12:00"),
                ],
            ),
        ] {
            let response = self.submit(path, &fields).await;
            assert_eq!(
                response.status,
                StatusCode::SEE_OTHER,
                "{path} {fields:?}: {}",
                response.body
            );
            assert_eq!(response.location(), Some("/admin/teams"));
        }
    }

    async fn usage_by_team(&self) -> Vec<(String, i64)> {
        let answer = self
            .app
            .get(
                &format!("/api/v1/usage?group_by=team&bucket=month&{RANGE}"),
                Some(&self.admin.cookie),
            )
            .await
            .json();
        let mut rows: Vec<(String, i64)> = answer["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                let group = r["group"].as_str().unwrap_or_default().to_owned();
                (group, r["input_tokens"].as_i64().unwrap_or_default())
            })
            .collect();
        rows.sort();
        rows
    }
}

#[tokio::test]
async fn an_admin_organises_teams_and_each_call_counts_for_the_team_of_its_time() {
    let f = fixture().await;
    f.organise().await;
    // ada's first membership holds her past; bob's early call is web's,
    // his late one ops'; cat is in no team.
    assert_eq!(
        f.usage_by_team().await,
        [
            ("(no team)".to_owned(), 3000),
            ("ops".to_owned(), 2000),
            ("web".to_owned(), 1000 + 2000 + 1000),
        ]
    );
    // ada leads web: she sees it, until she is no longer in it.
    let ada = f.app.login_browser("ada", crate::common::PASSWORD).await;
    let led = f.app.get("/?view=team:web", Some(&ada.cookie)).await;
    assert_eq!(led.status, StatusCode::OK);
    // Removing ada from web now leaves her past with web.
    let removed = f
        .submit(
            "/admin/teams/members/remove",
            &[("team", "web"), ("user", "ada")],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(f.usage_by_team().await[2], ("web".to_owned(), 4000));
    for path in ["/?view=team:web", "/team", "/api/v1/usage?view=team:web"] {
        let after = f.app.get(path, Some(&ada.cookie)).await;
        assert_eq!(
            after.status,
            StatusCode::FORBIDDEN,
            "{path}: no longer a lead"
        );
    }
    // The notice says what happened; the page lists current and past.
    let page = f.app.get("/admin/teams", Some(&f.admin.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada left web."), "{}", page.body);
    for text in [
        "Team web",
        "Team ops",
        "the beginning",
        "2026-06-10 12:00",
        "Make lead",
        "Remove",
    ] {
        assert!(page.body.contains(text), "the page lacks {text:?}");
    }
    // Every change is in the audit trail, as the admin, with the team.
    for (action, count) in [
        ("team.create", 2),
        ("team.member_add", 2),
        ("team.member_move", 1),
        ("team.member_remove", 1),
    ] {
        let entries = f.app.audit_entries(action).await;
        assert_eq!(entries.len(), count, "{action}");
        assert!(
            entries
                .iter()
                .all(|e| e.actor_name.as_deref() == Some("root")),
            "{action}"
        );
        assert!(
            entries
                .iter()
                .all(|e| e.target.as_deref().is_some_and(|t| t.starts_with("team:")))
        );
    }
    let moved = f.app.audit_entries("team.member_move").await;
    assert!(
        moved[0].details.contains("\"from\":\"web\""),
        "{}",
        moved[0].details
    );
    // Making bob lead of ops keeps his interval.
    let lead = f
        .submit(
            "/admin/teams/members",
            &[("team", "ops"), ("user", "bob"), ("lead", "1")],
        )
        .await;
    assert_eq!(lead.status, StatusCode::SEE_OTHER);
    assert_eq!(f.app.audit_entries("team.lead").await.len(), 1);
    assert_eq!(f.usage_by_team().await[1], ("ops".to_owned(), 2000));
}

#[tokio::test]
async fn refused_changes_say_why_and_change_nothing() {
    let f = fixture().await;
    f.organise().await;
    let before = f.usage_by_team().await;
    for (path, fields, says) in [
        (
            "/admin/teams",
            vec![("name", "web team")],
            "a team name is 1 to 64 characters",
        ),
        (
            "/admin/teams",
            vec![("name", "WEB")],
            "a team named &quot;WEB&quot; already exists",
        ),
        (
            "/admin/teams/members",
            vec![("team", "nope"), ("user", "ada")],
            "no team named",
        ),
        (
            "/admin/teams/members",
            vec![("team", "web"), ("user", "nobody")],
            "no person named",
        ),
        (
            "/admin/teams/members",
            vec![
                ("team", "web"),
                ("user", "bob"),
                ("since", "2026-06-10T11:00"),
            ],
            "a move or a removal must be later than that",
        ),
        (
            "/admin/teams/members",
            vec![
                ("team", "web"),
                ("user", "cat"),
                ("since", "2026-07-01T00:00"),
            ],
            "the start is in the future",
        ),
        (
            "/admin/teams/members",
            vec![("team", "web"), ("user", "cat"), ("since", "soon")],
            "from:",
        ),
        (
            "/admin/teams/members/remove",
            vec![("team", "ops"), ("user", "cat")],
            "cat is not in team",
        ),
    ] {
        let response = f.submit(path, &fields).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {fields:?}"
        );
        assert!(
            response.body.contains(says),
            "{path} {fields:?} does not say {says:?}"
        );
    }
    assert_eq!(f.usage_by_team().await, before);
    let teams = f.app.audit_entries("team.create").await;
    assert_eq!(teams.iter().filter(|e| e.outcome == "failure").count(), 2);
    // Tokens never reach the forms: an admin's read, ingest or collector
    // token is sent to sign in, and nothing is created.
    for scope in [TokenScope::Read, TokenScope::Ingest, TokenScope::Collector] {
        let token = f.app.create_token("root", scope).await;
        for (path, body) in [
            ("/admin/teams", "name=by-token"),
            ("/admin/teams/members", "team=web&user=cat"),
            ("/admin/teams/members/remove", "team=web&user=ada"),
        ] {
            let request = Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .expect("request");
            let response = f.app.request(request).await;
            assert_eq!(response.status, StatusCode::SEE_OTHER, "{scope:?} {path}");
            assert!(
                response
                    .location()
                    .unwrap_or_default()
                    .starts_with("/login")
            );
        }
    }
    let page = f.app.get("/admin/teams", Some(&f.admin.cookie)).await;
    assert!(!page.body.contains("by-token"));
    assert_eq!(f.usage_by_team().await, before);
}

/// (who, path, status, what the page shows, what it must not).
type PageCase<'a> = (&'a str, String, StatusCode, Vec<&'a str>, Vec<&'a str>);

#[tokio::test]
async fn every_state_of_the_team_pages_renders() {
    let f = fixture().await;
    // No team yet.
    let cases: [(&str, &[&str], &[&str]); 2] = [
        (
            "/team",
            &[
                "There are no teams yet",
                "Usage per team",
                "(no team)",
                "Usage per user",
            ],
            &["Team web"],
        ),
        (
            "/admin/teams",
            &["Create a team"],
            &["Add or move a member"],
        ),
    ];
    for (path, has, lacks) in cases {
        let page = f.app.get(&format!("{path}?"), Some(&f.admin.cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        has.iter()
            .for_each(|t| assert!(page.body.contains(t), "{path} lacks {t:?}"));
        lacks
            .iter()
            .for_each(|t| assert!(!page.body.contains(t), "{path} has {t:?}"));
    }
    f.organise().await;
    let ada = f.app.login_browser("ada", crate::common::PASSWORD).await;
    let cat = f.app.login_browser("cat", crate::common::PASSWORD).await;
    let admin = f.admin.cookie.as_str();
    let cases: Vec<PageCase<'_>> = vec![
        (
            admin,
            format!("/team?{RANGE}"),
            StatusCode::OK,
            vec![
                "Usage per team",
                "Team web",
                "Team ops",
                "(no team)",
                "lead",
                "Usage per user",
                "view=team%3Aweb",
            ],
            vec!["There are no teams yet"],
        ),
        (
            admin,
            format!("/?{RANGE}&split=team"),
            StatusCode::OK,
            vec!["By team", "web", "ops", "(no team)", "value=\"team:web\""],
            vec![],
        ),
        (
            admin,
            "/admin/teams".to_owned(),
            StatusCode::OK,
            vec!["Add or move a member", "Team web"],
            vec![],
        ),
        (
            &ada.cookie,
            format!("/team?{RANGE}"),
            StatusCode::OK,
            vec!["Team web", "ada", "bob", "(left)", "lead"],
            vec!["Team ops", "cat", "Usage per user", "(no team)"],
        ),
        (
            &ada.cookie,
            format!("/?{RANGE}&view=team:web"),
            StatusCode::OK,
            vec!["Team web's usage", "Team web", "href=\"/team\""],
            vec!["By team"],
        ),
        (
            &ada.cookie,
            format!("/?{RANGE}"),
            StatusCode::OK,
            vec!["Your usage", "value=\"team:web\""],
            vec!["value=\"team:ops\""],
        ),
        (
            &ada.cookie,
            format!("/events?{RANGE}&view=team:web"),
            StatusCode::OK,
            vec!["bob-early"],
            vec!["bob-late", "cat-"],
        ),
        (
            &cat.cookie,
            format!("/team?{RANGE}"),
            StatusCode::FORBIDDEN,
            vec![],
            vec!["bob"],
        ),
        (
            &cat.cookie,
            format!("/?{RANGE}"),
            StatusCode::OK,
            vec!["Your usage"],
            vec!["href=\"/team\"", "Whose usage"],
        ),
    ];
    for (who, path, status, has, lacks) in cases {
        let page = f.app.get(&path, Some(who)).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        has.iter()
            .for_each(|t| assert!(page.body.contains(t), "{path} lacks {t:?}"));
        lacks
            .iter()
            .for_each(|t| assert!(!page.body.contains(t), "{path} has {t:?}"));
    }
    // The lead's page is audited as a view of their team.
    let views = f.app.audit_entries("page.view").await;
    assert!(
        views
            .iter()
            .any(|e| e.target.as_deref() == Some("team:web")
                && e.actor_name.as_deref() == Some("ada"))
    );
}

#[tokio::test]
async fn team_views_are_refused_with_the_field_named() {
    let f = fixture().await;
    f.organise().await;
    let bob = f.app.login_browser("bob", crate::common::PASSWORD).await;
    let bob_read = f.app.create_token("bob", TokenScope::Read).await;
    let ada_read = f.app.create_token("ada", TokenScope::Read).await;
    let read = |token: String, path: &'static str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    // A member (bob is in ops, not its lead): 403 naming `view`.
    for response in [
        f.app
            .get("/api/v1/usage?view=team:ops", Some(&bob.cookie))
            .await,
        f.app
            .request(read(bob_read.clone(), "/api/v1/usage?view=team:ops"))
            .await,
        f.app
            .request(read(bob_read, "/api/v1/events?view=team:nope"))
            .await,
    ] {
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{}", response.body);
        assert!(
            response.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap_or("")
                .contains("json")
        );
    }
    // The lead's read token reads the team.
    let led = f
        .app
        .request(read(ada_read, "/api/v1/usage?view=team:web"))
        .await;
    assert_eq!(led.status, StatusCode::OK, "{}", led.body);
    // An admin naming an unknown team, or anyone a malformed one: 400.
    for (path, reason) in [
        ("/api/v1/usage?view=team:nope", "no team named \"nope\""),
        ("/api/v1/usage?view=team:", "no team named \"\""),
    ] {
        let answer = f.app.get(path, Some(&f.admin.cookie)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        let json = answer.json();
        assert_eq!(json["field"], "view", "{json}");
        assert_eq!(json["reason"], reason, "{json}");
    }
    let page = f.app.get("/?view=team:nope", Some(&f.admin.cookie)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("no team named"));
}
