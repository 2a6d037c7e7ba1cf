//! The leak search for teams, over the world of `access`: team X (led by
//! lx, with mx, and mv from the middle of 2026-06-10 on) and team Y (my,
//! and mv before that). Every data URL, by session and by read token: a
//! member sees nobody else's usage; the lead of X sees X's members' usage
//! while they were in X, and nothing of Y (nor mv's usage from before the
//! move, nor A's, who is in no team).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::model::format;
use tokentally::teams::membership;
use tokentally::teams::store::TeamError;

use crate::access::{Caller, Case, DATA_PATHS, Payload, World, send_events, world};
use crate::common::TestResponse;

/// One caller's usage: an input count, a cost and a model only it has.
struct Usage {
    who: &'static str,
    id: &'static str,
    at: &'static str,
    input: i64,
    cost: &'static str,
    model: &'static str,
}

const LX: Usage = Usage {
    who: "lx",
    id: "lx-1",
    at: "2026-06-09T10:00:00Z",
    input: 3_456_789,
    cost: "131.071311",
    model: "model-of-lead-x",
};
const MX: Usage = Usage {
    who: "mx",
    id: "mx-1",
    at: "2026-06-09T11:00:00Z",
    input: 2_345_678,
    cost: "257.030707",
    model: "model-of-member-x",
};
const MY: Usage = Usage {
    who: "my",
    id: "my-1",
    at: "2026-06-09T12:00:00Z",
    input: 4_567_891,
    cost: "389.090101",
    model: "model-of-member-y",
};
/// mv, an hour before moving from Y to X.
const MV_IN_Y: Usage = Usage {
    who: "mv",
    id: "mv-1",
    at: "2026-06-10T11:00:00Z",
    input: 5_678_912,
    cost: "467.130503",
    model: "model-of-mv-in-y",
};
/// mv, an hour after.
const MV_IN_X: Usage = Usage {
    who: "mv",
    id: "mv-2",
    at: "2026-06-10T13:00:00Z",
    input: 6_789_123,
    cost: "541.170209",
    model: "model-of-mv-in-x",
};
/// A, in no team (the same event as `access`'s own leak search).
const A: Usage = Usage {
    who: "a",
    id: "a-1",
    at: "2026-06-10T10:00:00Z",
    input: 7_654_321,
    cost: "987.654321",
    model: "model-only-a-uses",
};

/// How `usage` may show up in an answer: its input as sent, with
/// separators and shortened, its cost to the cent, its model.
fn markers(usage: &Usage) -> Vec<String> {
    let cents = &usage.cost[..usage.cost.find('.').map_or(0, |dot| dot + 3)];
    vec![
        usage.input.to_string(),
        format::integer(usage.input),
        format::tokens(usage.input),
        cents.to_owned(),
        usage.model.to_owned(),
    ]
}

/// The data URLs of team X's usage, for its lead (403 for the others).
const TEAM_X_PATHS: [&str; 14] = [
    "/?view=team:x",
    "/?view=team:x&split=activity&metric=cost",
    "/events?view=team:x",
    "/events?view=team:x&sort=input_tokens&user=mv",
    "/team",
    "/team?metric=cost&sort=calls",
    "/api/v1/usage?view=team:x",
    "/api/v1/usage?view=team:x&group_by=user",
    "/api/v1/usage?view=team:x&group_by=model&bucket=hour&range=7d",
    "/api/v1/usage?view=team:x&group_by=team&tz=Asia/Kolkata",
    "/api/v1/usage/events?view=team:x",
    "/api/v1/events?view=team:x&sort=input_tokens",
    "/api/v1/events.csv?view=team:x",
    "/api/v1/usage/events.csv?view=team:x&tz=Asia/Kolkata",
];

/// Team Y's, which the lead of X may not see either.
const TEAM_Y_PATHS: [&str; 4] = [
    "/?view=team:y",
    "/events?view=team:y",
    "/api/v1/usage?view=team:y&group_by=user",
    "/api/v1/events.csv?view=team:y",
];

/// The team routes and views × every caller of the matrix (`access`):
/// a team's usage for admins and its current leads; an unknown team is a
/// bad request for an admin and, like a team one does not lead, refused
/// for anyone else; a malformed name is a bad request for everyone.
pub(crate) fn cases() -> Vec<Case> {
    use Payload::*;
    let get = Method::GET;
    let post = Method::POST;
    vec![
        (
            get.clone(),
            "/?view=team:x",
            None,
            [303, 403, 403, 200, 303, 303, 200, 403, 403],
        ),
        (
            get.clone(),
            "/?view=team:y",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/?view=team:nope",
            None,
            [303, 403, 403, 400, 303, 303, 403, 403, 403],
        ),
        (
            get.clone(),
            "/?view=team:bad%20name",
            None,
            [303, 400, 400, 400, 303, 303, 400, 400, 400],
        ),
        (
            get.clone(),
            "/?split=team&metric=cost",
            None,
            [303, 200, 200, 200, 303, 303, 200, 200, 200],
        ),
        (
            get.clone(),
            "/events?view=team:x&sort=cost",
            None,
            [303, 403, 403, 200, 303, 303, 200, 403, 403],
        ),
        (
            get.clone(),
            "/team?view=team:x",
            None,
            [303, 403, 403, 200, 303, 303, 200, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/usage?group_by=team",
            None,
            [401, 200, 200, 200, 403, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            "/api/v1/usage?view=team:x",
            None,
            [401, 403, 403, 200, 403, 403, 200, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/usage?view=team:nope",
            None,
            [401, 403, 403, 400, 403, 403, 403, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/events?view=team:x",
            None,
            [401, 403, 403, 200, 403, 403, 200, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/events.csv?view=team:y",
            None,
            [401, 403, 403, 200, 403, 403, 403, 403, 403],
        ),
        (
            get.clone(),
            "/admin/teams",
            None,
            [303, 403, 403, 200, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/teams",
            Form(&[("name", "-bad name-")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/teams/members",
            Form(&[("team", "nope"), ("user", "a")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
        (
            post.clone(),
            "/admin/teams/members/remove",
            Form(&[("team", "x"), ("user", "a")]),
            [303, 403, 403, 422, 303, 303, 403, 403, 403],
        ),
    ]
}

async fn organise(world: &World) {
    world.app.create_user("mv", Role::Member).await;
    world
        .app
        .state
        .db
        .write(|conn| {
            let moved = "2026-06-10T12:00:00Z"
                .parse::<jiff::Timestamp>()
                .expect("instant")
                .as_millisecond();
            let now = "2026-06-15T12:00:00Z"
                .parse::<jiff::Timestamp>()
                .expect("instant")
                .as_millisecond();
            membership::add_member(conn, "y", "mv", false, None, now)?;
            membership::add_member(conn, "x", "mv", false, Some(moved), now)?;
            Ok::<_, TeamError>(())
        })
        .await
        .expect("mv moves from y to x");
    for usage in [&LX, &MX, &MY, &MV_IN_Y, &MV_IN_X, &A] {
        let token = world.app.create_token(usage.who, TokenScope::Ingest).await;
        let event = json!([{"id": usage.id, "timestamp": usage.at, "model": usage.model,
                            "input_tokens": usage.input, "output_tokens": 17,
                            "cost": usage.cost}]);
        send_events(world, &token, event).await;
    }
}

async fn by_token(world: &World, token: &str, path: &str) -> TestResponse {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    world.app.request(request).await
}

/// Opens every path as `caller` (session) and with their read token, and
/// searches each answer for the usage they may not see.
async fn search(world: &World, caller: Caller, paths: &[&str], hidden: &[&Usage]) -> usize {
    let name = match caller {
        Caller::LeadX => "lx",
        Caller::MemberX => "mx",
        Caller::MemberY => "my",
        other => panic!("{other:?} is not a team caller"),
    };
    let browser = world.browser(caller).await.expect("signs in");
    let read = world.app.create_token(name, TokenScope::Read).await;
    let mut answered = 0;
    for path in paths {
        let session = world.app.get(path, Some(&browser.cookie)).await;
        let token = by_token(world, &read, path).await;
        for (how, response) in [("session", &session), ("read token", &token)] {
            if response.status == StatusCode::OK {
                answered += 1;
            }
            for usage in hidden {
                // A name typed into the URL comes back in the filter form.
                for marker in markers(usage).iter().filter(|m| !path.contains(m.as_str())) {
                    assert!(
                        !response.body.contains(marker.as_str()),
                        "{path} by {name}'s {how} ({}) shows {}'s {marker:?}",
                        response.status,
                        usage.who
                    );
                }
            }
        }
    }
    answered
}

#[tokio::test]
async fn team_callers_receive_only_what_they_may_see() {
    let world = world().await;
    organise(&world).await;
    let everyone_but = |own: &[&str]| -> Vec<&'static Usage> {
        [&LX, &MX, &MY, &MV_IN_Y, &MV_IN_X, &A]
            .into_iter()
            .filter(|u| !own.contains(&u.id))
            .collect()
    };
    let team_paths: Vec<&str> = TEAM_X_PATHS.iter().chain(&TEAM_Y_PATHS).copied().collect();
    // Members: their own usage only, on every URL; the team URLs refused.
    for (caller, own) in [(Caller::MemberX, "mx-1"), (Caller::MemberY, "my-1")] {
        let hidden = everyone_but(&[own]);
        let answered = search(&world, caller, &DATA_PATHS, &hidden).await;
        assert!(
            answered >= DATA_PATHS.len(),
            "{caller:?}: {answered} answers"
        );
        assert_eq!(
            search(&world, caller, &team_paths, &hidden).await,
            0,
            "{caller:?}"
        );
    }
    // The lead of X, everywhere else: their own usage only.
    let lead_own = everyone_but(&["lx-1"]);
    search(&world, Caller::LeadX, &DATA_PATHS, &lead_own).await;
    // X's usage: X's members while in X, nothing of Y, nor of mv before.
    let not_x = [&MY, &MV_IN_Y, &A];
    let answered = search(&world, Caller::LeadX, &TEAM_X_PATHS, &not_x).await;
    // Every URL by session; by read token, the API (pages need a session).
    let api = TEAM_X_PATHS
        .iter()
        .filter(|p| p.starts_with("/api/"))
        .count();
    assert_eq!(answered, TEAM_X_PATHS.len() + api);
    let all_hidden = everyone_but(&[]);
    let refused = search(&world, Caller::LeadX, &TEAM_Y_PATHS, &all_hidden).await;
    assert_eq!(refused, 0, "team Y is not the lead of X's");
}

#[tokio::test]
async fn the_lead_sees_exactly_the_team_s_usage_while_its_members_were_in_it() {
    let world = world().await;
    organise(&world).await;
    let lead = world.browser(Caller::LeadX).await.expect("lx");
    let team: Value = world
        .app
        .get(
            "/api/v1/usage?view=team:x&group_by=user",
            Some(&lead.cookie),
        )
        .await
        .json();
    assert_eq!(
        team["totals"]["input_tokens"],
        LX.input + MX.input + MV_IN_X.input,
        "{team}"
    );
    let mut users: Vec<(String, i64)> = team["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap_or("").to_owned(),
                r["input_tokens"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    users.sort();
    assert_eq!(
        users,
        [
            ("lx".to_owned(), LX.input),
            ("mv".to_owned(), MV_IN_X.input),
            ("mx".to_owned(), MX.input)
        ]
    );
    let listed: Value = world
        .app
        .get(
            "/api/v1/events?view=team:x&sort=time&order=asc",
            Some(&lead.cookie),
        )
        .await
        .json();
    let ids: Vec<&str> = listed["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, ["lx-1", "mx-1", "mv-2"]);
    // The lead's own view stays their own usage.
    let own: Value = world
        .app
        .get("/api/v1/usage", Some(&lead.cookie))
        .await
        .json();
    assert_eq!(own["totals"]["input_tokens"], LX.input);
    // By team, everyone's usage (an admin): mv's before the move is Y's.
    let admin = world.browser(Caller::Admin).await.expect("root");
    let by_team: Value = world
        .app
        .get(
            "/api/v1/usage?group_by=team&bucket=month",
            Some(&admin.cookie),
        )
        .await
        .json();
    let mut teams: Vec<(String, i64)> = by_team["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap_or("").to_owned(),
                r["input_tokens"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    teams.sort();
    assert_eq!(
        teams,
        [
            ("(no team)".to_owned(), A.input),
            ("x".to_owned(), LX.input + MX.input + MV_IN_X.input),
            ("y".to_owned(), MY.input + MV_IN_Y.input),
        ]
    );
    // Reads of a team's usage are audited with the team as their target.
    let reads = world.app.audit_entries("usage.read").await;
    assert!(
        reads.iter().any(|e| e.target.as_deref() == Some("team:x")
            && e.actor_name.as_deref() == Some("lx")),
        "the lead's read of team x is audited"
    );
}
