//! Every route × every kind of caller: anonymous, member A, member B, an
//! admin, A's ingest token, A's read token, the lead of team X, a member
//! of X and a member of Y (A and B are in no team). The expected status of
//! each pair is written down (and an admin's collector token must be
//! answered as A's ingest token is, everywhere); then what B (and B's
//! token) receives from every data route is searched for A's numbers,
//! which must never appear, and the same for the team callers: a member
//! sees nobody else's usage, the lead of X sees X's members' usage while
//! they were in X and nothing of Y.

use crate::common::{self, Browser, PASSWORD, TestApp, TestResponse};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::teams::membership;
use tokentally::teams::store::{self, TeamError};

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    Anonymous,
    MemberA,
    MemberB,
    Admin,
    IngestTokenA,
    ReadTokenA,
    /// "lx": the lead of team X.
    LeadX,
    /// "mx": a member of X.
    MemberX,
    /// "my": a member of Y.
    MemberY,
    /// The admin's collector token: not a column of its own, it is
    /// expected to be answered as `IngestTokenA` is.
    CollectorAdmin,
}

const CALLERS: [Caller; 9] = [
    Caller::Anonymous,
    Caller::MemberA,
    Caller::MemberB,
    Caller::Admin,
    Caller::IngestTokenA,
    Caller::ReadTokenA,
    Caller::LeadX,
    Caller::MemberX,
    Caller::MemberY,
];

/// What a request carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload {
    None,
    /// A form, with the caller's CSRF token when it has a session.
    Form(&'static [(&'static str, &'static str)]),
    /// JSON with this content type.
    Json(&'static str, &'static str),
}

pub(crate) const SEE_OTHER: u16 = 303;

/// (method, path, payload, expected status per caller in `CALLERS` order).
/// Form posts carry harmless or refused input (a wrong current password,
/// an unknown user), so one case never changes what the next one sees.
pub(crate) type Case = (Method, &'static str, Payload, [u16; 9]);

fn cases() -> Vec<Case> {
    use Payload::*;
    let get = Method::GET;
    let post = Method::POST;
    let event = r#"{"id":"matrix-1","timestamp":"2026-06-10T10:00:00Z","model":"m","input_tokens":1,"output_tokens":1}"#;
    let mut cases = vec![
        // Public.
        (
            get.clone(),
            "/login",
            None,
            [200, 303, 303, 303, 200, 200, 303, 303, 303],
        ),
        (get.clone(), "/healthz", None, [200; 9]),
        (get.clone(), "/readyz", None, [200; 9]),
        (get.clone(), "/favicon.ico", None, [200; 9]),
        (get.clone(), "/setup", None, [303; 9]),
        // Pages: a session, any role; admin pages: admins.
        (
            get.clone(),
            "/",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/?view=a",
            None,
            [303, 200, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/?view=everyone",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/profile",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/tokens",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/admin/users",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/admin/audit",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/admin/audit.csv",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/no/such/page",
            None,
            [303, 404, 404, 404, 303, 303, 404, 404, 404],
        ),
        (
            get.clone(),
            "/metrics",
            None,
            [401, 403, 403, 200, 403, 403, 403, 403, 403],
        ),
        (
            get.clone(),
            "/events",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/events?view=a&sort=cost",
            None,
            [303, 200, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/team",
            None,
            [303, 403, 403, 200, 303, 303, 200, 403, 403],
        ),
        // Budgets: everyone signed in sees those covering them; admins
        // and leads set them (this one is refused: a negative amount).
        (
            get.clone(),
            "/budgets",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            post.clone(),
            "/budgets",
            Form(&[
                ("name", "matrix"),
                ("scope", "team:x"),
                ("period", "month"),
                ("measure", "cost"),
                ("amount", "-1"),
                ("time_zone", "UTC"),
                ("week_start", "monday"),
                ("thresholds", "50,80,100"),
            ]),
            [303, 403, 403, 422, 303, 303, 422, 403, 403],
        ),
        (
            post.clone(),
            "/budgets/remove",
            Form(&[("name", "no-such-budget")]),
            [303, 403, 403, 422, 303, 303, 422, 403, 403],
        ),
        (
            get.clone(),
            "/alerts",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/admin/prices",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/prices",
            Form(&[("model", ""), ("input", "1"), ("output", "1")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/prices/remove",
            Form(&[("model", "no-such-model"), ("from_ms", "0")]),
            [303, 403, 403, 404, 303, 303, 403, 403, 403],
        ),
        // Forms.
        (
            post.clone(),
            "/profile",
            Form(&[("display_name", "X"), ("email", ""), ("time_zone", "")]),
            [303, 303, 303, 303, 303, 303, 303, 303, 303],
        ),
        (
            post.clone(),
            "/profile/password",
            Form(&[
                ("current_password", "wrong wrong wrong"),
                ("new_password", "x"),
                ("new_password_confirm", "x"),
            ]),
            [303, 422, 422, 422, 303, 303, 422, 422, 422],
        ),
        (
            post.clone(),
            "/profile/sessions/revoke",
            Form(&[]),
            [303, 303, 303, 303, 303, 303, 303, 303, 303],
        ),
        (
            post.clone(),
            "/tokens",
            Form(&[("name", "n"), ("scope", "bogus")]),
            [303, 422, 422, 422, 303, 303, 422, 422, 422],
        ),
        (
            post.clone(),
            "/tokens/999999/revoke",
            Form(&[]),
            [303, 404, 404, 404, 303, 303, 404, 404, 404],
        ),
        (
            post.clone(),
            "/admin/users",
            Form(&[("username", "-bad name-"), ("role", "member")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/users/nobody/disable",
            Form(&[]),
            [303, 403, 403, 404, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/admin/identities",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/identities/link",
            Form(&[
                ("kind", "email"),
                ("value", "nobody@example.com"),
                ("user", "a"),
            ]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/identities/unlink",
            Form(&[("kind", "bogus"), ("value", "x")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        // The Connect page: a session only (a token gets the sign-in page);
        // its check answers only for a page the same session opened.
        (
            get.clone(),
            "/connect",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/connect/status?since=0",
            None,
            [303, 404, 404, 404, 303, 303, 404, 404, 404],
        ),
        (
            get.clone(),
            "/connect/status?since=x",
            None,
            [303, 400, 400, 400, 303, 303, 400, 400, 400],
        ),
        (
            post.clone(),
            "/connect",
            Form(&[("kind", "personal")]),
            [303, 201, 201, 201, 303, 303, 201, 201, 201],
        ),
        (
            get.clone(),
            "/admin/identities?show=unassigned",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/identities/create",
            Form(&[
                ("kind", "email"),
                ("value", "nobody@example.com"),
                ("username", "nobody"),
            ]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/identities/ignore",
            Form(&[("kind", "email"), ("value", "nobody@example.com")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/identities/unignore",
            Form(&[("kind", "bogus"), ("value", "x")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/users/nobody/invite",
            Form(&[]),
            [303, 403, 403, 404, 303, 303, 403, 403, 403],
        ),
        // A setup link is public; a wrong one is the same 404 for everyone
        // (a post without a session's CSRF token is refused first).
        (get.clone(), "/invite/not-a-setup-link", None, [404; 9]),
        (
            post.clone(),
            "/invite/not-a-setup-link",
            Form(&[
                ("password", "a long enough password"),
                ("password_confirm", "a long enough password"),
            ]),
            [403, 404, 404, 404, 403, 403, 404, 404, 404],
        ),
        (
            get.clone(),
            "/events?identity=unassigned",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/events?identity=email:nobody@example.com",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            post.clone(),
            "/logout",
            Form(&[]),
            [303, 303, 303, 303, 303, 303, 303, 303, 303],
        ),
        // The read API: a session or a read token.
        (
            get.clone(),
            "/api/v1/usage",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/usage?view=a",
            None,
            [401, 200, 403, 200, 403, 200, 403, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/usage?view=b",
            None,
            [401, 403, 200, 200, 403, 403, 403, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/usage/events",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/usage/events.csv",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/events",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/events?view=b",
            None,
            [401, 403, 200, 200, 403, 403, 403, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/events.csv",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/summary",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/summary?view=b",
            None,
            [401, 403, 200, 200, 403, 403, 403, 403, 403],
        ),
        (get.clone(), "/api/v1/openapi.json", None, [200; 9]),
        // Ingest: an ingest token only.
        (
            post.clone(),
            "/api/v1/events",
            Json("application/x-ndjson", event),
            [401, 401, 401, 401, 200, 403, 401, 401, 401],
        ),
        (
            post.clone(),
            "/api/v1/ingest/litellm",
            Json("application/json", "[]"),
            [401, 401, 401, 401, 200, 403, 401, 401, 401],
        ),
        (
            post.clone(),
            "/v1/metrics",
            Json("application/json", "{}"),
            [401, 401, 401, 401, 200, 403, 401, 401, 401],
        ),
        (
            post.clone(),
            "/v1/logs",
            Json("application/json", "{}"),
            [401, 401, 401, 401, 200, 403, 401, 401, 401],
        ),
        (
            post.clone(),
            "/v1/traces",
            Json("application/json", "{}"),
            [401, 401, 401, 401, 200, 403, 401, 401, 401],
        ),
    ];
    // The team routes and views, written down with the team callers.
    cases.extend(crate::team_access::cases());
    cases
}

pub(crate) struct World {
    pub(crate) app: TestApp,
    ingest_a: String,
    read_a: String,
    ingest_b: String,
    collector: String,
}

pub(crate) async fn world() -> World {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("a", Role::Member).await;
    app.create_user("b", Role::Member).await;
    let ingest_a = app.create_token("a", TokenScope::Ingest).await;
    let read_a = app.create_token("a", TokenScope::Read).await;
    let ingest_b = app.create_token("b", TokenScope::Ingest).await;
    let collector = app.create_token("root", TokenScope::Collector).await;
    // Team X (led by lx, with mx) and team Y (with my); first memberships,
    // so each holds its members' whole past.
    for name in ["lx", "mx", "my"] {
        app.create_user(name, Role::Member).await;
    }
    app.state
        .db
        .write(|conn| {
            for team in ["x", "y"] {
                store::create(conn, team, 0)?;
            }
            for (team, user, lead) in [("x", "lx", true), ("x", "mx", false), ("y", "my", false)] {
                membership::add_member(conn, team, user, lead, None, 0)?;
            }
            Ok::<_, TeamError>(())
        })
        .await
        .expect("teams");
    World {
        app,
        ingest_a,
        read_a,
        ingest_b,
        collector,
    }
}

impl World {
    /// A fresh session for the caller (each case gets its own, since some
    /// cases end their session).
    pub(crate) async fn browser(&self, caller: Caller) -> Option<Browser> {
        let name = match caller {
            Caller::MemberA => "a",
            Caller::MemberB => "b",
            Caller::Admin => "root",
            Caller::LeadX => "lx",
            Caller::MemberX => "mx",
            Caller::MemberY => "my",
            _ => return None,
        };
        Some(self.app.login_browser(name, PASSWORD).await)
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        match caller {
            Caller::IngestTokenA => Some(&self.ingest_a),
            Caller::ReadTokenA => Some(&self.read_a),
            Caller::CollectorAdmin => Some(&self.collector),
            _ => None,
        }
    }

    async fn call(
        &self,
        caller: Caller,
        method: Method,
        path: &str,
        payload: Payload,
    ) -> TestResponse {
        let browser = self.browser(caller).await;
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(browser) = &browser {
            builder = builder.header(header::COOKIE, &browser.cookie);
        }
        if let Some(token) = self.token(caller) {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match payload {
            Payload::None => Body::empty(),
            Payload::Form(fields) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let mut pairs: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", common::form_encode(v)))
                    .collect();
                if let Some(browser) = &browser {
                    pairs.push(format!("csrf_token={}", browser.csrf));
                }
                Body::from(pairs.join("&"))
            }
            Payload::Json(content_type, body) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                Body::from(body)
            }
        };
        self.app.request(builder.body(body).expect("request")).await
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_written_down() {
    let world = world().await;
    let mut failures = Vec::new();
    for (method, path, payload, expected) in cases() {
        for (caller, want) in CALLERS.iter().zip(expected) {
            let response = world.call(*caller, method.clone(), path, payload).await;
            if response.status.as_u16() != want {
                failures.push(format!(
                    "{method} {path} as {caller:?}: got {}, want {want}",
                    response.status
                ));
            }
            if want == SEE_OTHER && *caller == Caller::Anonymous && path != "/setup" {
                let location = response.location().unwrap_or_default();
                assert!(
                    location.starts_with("/login"),
                    "{method} {path}: {location}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_collector_token_is_answered_as_an_ingest_token_everywhere() {
    let world = world().await;
    let ingest = CALLERS
        .iter()
        .position(|c| *c == Caller::IngestTokenA)
        .expect("a column");
    let mut failures = Vec::new();
    for (method, path, payload, expected) in cases() {
        let want = expected[ingest];
        let response = world
            .call(Caller::CollectorAdmin, method.clone(), path, payload)
            .await;
        if response.status.as_u16() != want {
            failures.push(format!(
                "{method} {path} as the collector token: got {}, want {want}",
                response.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Numbers and names that only A's usage contains.
const A_INPUT: i64 = 7_654_321;
const A_MODEL: &str = "model-only-a-uses";
const A_PROJECT: &str = "project-secret-of-a";
const A_SESSION: &str = "session-secret-of-a";
const A_MACHINE: &str = "machine-of-a";

pub(crate) async fn send_events(world: &World, token: &str, events: serde_json::Value) {
    let response = world
        .app
        .post_bytes(
            "/api/v1/events",
            Some(token),
            &[("content-type", "application/json")],
            events.to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
}

/// A budget on A, one for each member and one pooled: A's usage below
/// crosses A's thresholds (alerts about A), and B must see none of it.
async fn add_budgets(world: &World) {
    use tokentally::budgets::store::{self as budgets, Measure, NewBudget};
    world
        .app
        .state
        .db
        .write(|conn| {
            for (name, scope, dollars) in [
                ("on-a", "user:a", 1_000),
                ("each", "each-member", 100),
                ("all", "everyone", 5_000),
            ] {
                let new = NewBudget {
                    name: name.into(),
                    period: "month".into(),
                    week_start: jiff::civil::Weekday::Monday,
                    zone: "UTC".into(),
                    measure: Measure::Cost,
                    amount: dollars * 1_000_000,
                    scope: scope.into(),
                    thresholds: vec![50, 80, 100],
                    channels: Vec::new(),
                    created_by: None,
                };
                budgets::create(conn, &new, 0)?;
            }
            Ok::<_, budgets::BudgetError>(())
        })
        .await
        .expect("budgets");
}

/// Every data URL a member may open (each answers them 200): what they
/// receive is searched for the usage of others.
pub(crate) const DATA_PATHS: [&str; 36] = [
    "/",
    "/?view=me",
    "/?split=activity&metric=cost",
    "/events",
    "/events?sort=input_tokens&model=model-only-a-uses",
    "/events?user=a",
    "/api/v1/usage",
    "/api/v1/usage?group_by=model",
    "/api/v1/usage?group_by=user",
    "/api/v1/usage?group_by=project&bucket=month",
    // By team: each call's team is read from the memberships.
    "/?split=team&metric=cost",
    "/api/v1/usage?group_by=team",
    "/api/v1/usage?group_by=team&bucket=hour&range=7d&tz=Asia/Kolkata",
    "/api/v1/usage?user=a",
    "/api/v1/usage/events",
    "/api/v1/usage/events?user=a&sort=input_tokens",
    "/api/v1/usage/events.csv",
    "/api/v1/usage/events.csv?model=model-only-a-uses",
    "/api/v1/events",
    "/api/v1/events?user=a&sort=input_tokens",
    "/api/v1/events.csv",
    "/api/v1/events.csv?model=model-only-a-uses&tz=Asia/Kolkata",
    // Sessions and machines are read from raw events: the same fence.
    "/?session=session-secret-of-a",
    "/events?session=session-secret-of-a",
    "/events?machine=machine-of-a&sort=session",
    "/api/v1/usage?session=session-secret-of-a&group_by=user",
    "/api/v1/usage?machine=machine-of-a&bucket=hour&range=7d",
    "/api/v1/events?session=session-secret-of-a",
    "/api/v1/events?sort=machine",
    "/api/v1/events.csv?machine=machine-of-a",
    "/api/v1/summary",
    "/tokens",
    "/profile",
    "/connect",
    // Budgets on A and each member's share, and their alerts.
    "/budgets",
    "/alerts",
];

#[tokio::test]
async fn what_b_receives_never_contains_a_s_usage() {
    let world = world().await;
    add_budgets(&world).await;
    let ingest_a = world.ingest_a.clone();
    send_events(
        &world,
        &ingest_a,
        json!([{"id": "a-1", "timestamp": "2026-06-10T10:00:00Z", "model": A_MODEL,
                 "project": A_PROJECT, "activity": "a-activity",
                 "session": A_SESSION, "machine": A_MACHINE,
                 "input_tokens": A_INPUT, "output_tokens": 1234567, "cost": "987.654321"}]),
    )
    .await;
    let ingest_b = world.ingest_b.clone();
    send_events(
        &world,
        &ingest_b,
        json!([{"id": "b-1", "timestamp": "2026-06-11T10:00:00Z", "model": "model-of-b",
                 "input_tokens": 1000, "output_tokens": 10}]),
    )
    .await;
    let b = world.browser(Caller::MemberB).await.expect("b signs in");
    let b_read = world.app.create_token("b", TokenScope::Read).await;
    let a_markers = [
        A_INPUT.to_string(),
        "7,654,321".to_owned(),
        "7.65M".to_owned(),
        "1234567".to_owned(),
        "987.65".to_owned(),
        A_MODEL.to_owned(),
        A_PROJECT.to_owned(),
        "a-activity".to_owned(),
        A_SESSION.to_owned(),
        A_MACHINE.to_owned(),
    ];
    let data_paths = DATA_PATHS;
    for path in data_paths {
        let by_session = world.app.get(path, Some(&b.cookie)).await;
        let by_token = world
            .app
            .request(
                Request::get(path)
                    .header(header::AUTHORIZATION, format!("Bearer {b_read}"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        for (how, response) in [("session", &by_session), ("read token", &by_token)] {
            // A name B typed into the URL comes back in the filter form;
            // that is B's own input, not A's data.
            for marker in a_markers.iter().filter(|m| !path.contains(m.as_str())) {
                assert!(
                    !response.body.contains(marker.as_str()),
                    "{path} by B's {how} shows A's {marker:?}"
                );
            }
        }
        assert_eq!(by_session.status, StatusCode::OK, "{path}");
    }
    // Filtering by A's session or machine gives B nothing at all.
    for path in [
        "/api/v1/events?session=session-secret-of-a",
        "/api/v1/events?machine=machine-of-a",
    ] {
        let answer = world.app.get(path, Some(&b.cookie)).await.json();
        assert_eq!(answer["events"], json!([]), "{path}");
    }
    let answer = world
        .app
        .get("/api/v1/usage?session=session-secret-of-a", Some(&b.cookie))
        .await
        .json();
    assert_eq!(answer["totals"]["events"], 0, "{answer}");
    // A's budgets alerted about A, so /alerts had something to hide.
    let about_a: i64 = world
        .app
        .state
        .db
        .read(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM alerts a JOIN users u ON u.id = a.user_id
                 WHERE u.username = 'a' AND a.quiet = 0",
                [],
                |r| r.get(0),
            )
            .map_err(tokentally::db::DbError::from)
        })
        .await
        .expect("alerts");
    // on-a: 50, 80 % and projected past 100 % (98.8 % used by mid-month);
    // each (a's share): 50, 80, 100 %.
    assert_eq!(about_a, 6);
    // And B's own numbers are there, so the search above looked at real data.
    let own = world.app.get("/api/v1/usage", Some(&b.cookie)).await.json();
    assert_eq!(own["totals"]["input_tokens"], 1000);
    // The admin sees both; A's read token sees A's.
    let admin = world.browser(Caller::Admin).await.expect("admin");
    let all = world
        .app
        .get("/api/v1/usage", Some(&admin.cookie))
        .await
        .json();
    assert_eq!(all["totals"]["input_tokens"], A_INPUT + 1000);
    let a_session = world
        .app
        .get(
            "/api/v1/usage?session=session-secret-of-a",
            Some(&admin.cookie),
        )
        .await
        .json();
    assert_eq!(
        a_session["totals"]["input_tokens"], A_INPUT,
        "the filter works"
    );
    let a_view = world
        .app
        .get("/api/v1/usage?view=a", Some(&admin.cookie))
        .await
        .json();
    assert_eq!(a_view["totals"]["input_tokens"], A_INPUT);
    let read_a = world.read_a.clone();
    let by_a = world
        .app
        .request(
            Request::get("/api/v1/usage/events.csv")
                .header(header::AUTHORIZATION, format!("Bearer {read_a}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert!(by_a.body.contains(A_MODEL) && !by_a.body.contains("model-of-b"));
}
