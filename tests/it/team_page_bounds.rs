//! The team pages stay bounded however many teams and members there are:
//! 100 teams in the table (the rest summed as one row) and as sections,
//! 100 members per team (likewise), 20 past memberships per team on
//! `/admin/teams` (the rest counted).

use axum::http::StatusCode;
use tokentally::auth::Role;
use tokentally::clock::Clock as _;
use tokentally::db::DbError;
use tokentally::model::UserId;
use tokentally::usage::store::{Inserter, NewEvent};

use crate::common::{PASSWORD, TestApp};

const TEAMS: i64 = 105;
const MEMBERS: i64 = 104;
const PAST: i64 = 25;

#[tokio::test]
async fn the_team_pages_show_at_most_a_hundred_of_each() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let now_ms = app.clock.now().as_millisecond();
    app.state
        .db
        .write(move |conn| {
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
                 INSERT INTO teams (name, created_ms) SELECT printf('team-%03d', i), 0 FROM n",
                [TEAMS],
            )?;
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
                 INSERT INTO users (username, role, created_at, updated_at)
                 SELECT printf('user-%03d', i), 'member', 0, 0 FROM n",
                [MEMBERS],
            )?;
            // Everyone in team-000 from the beginning…
            conn.execute(
                "INSERT INTO team_members (team_id, user_id, since_ms)
                 SELECT (SELECT id FROM teams WHERE name = 'team-000'), id, -9223372036854775808
                 FROM users WHERE username LIKE 'user-%'",
                [],
            )?;
            // …and user-000 was in team-001 many times before.
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
                 INSERT INTO team_members (team_id, user_id, since_ms, until_ms)
                 SELECT (SELECT id FROM teams WHERE name = 'team-001'),
                        (SELECT id FROM users WHERE username = 'user-002'), -1000 - 10 * i,
                        -995 - 10 * i FROM n",
                [PAST],
            )?;
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM users WHERE username LIKE 'user-%'")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let events: Vec<NewEvent> = ids
                .iter()
                .enumerate()
                .map(|(n, id)| NewEvent {
                    extras: Default::default(),
                    ts_ms: now_ms - 86_400_000,
                    user: UserId(*id),
                    source: "api".into(),
                    external_id: format!("call-{n}"),
                    model: "m".into(),
                    provider: None,
                    activity: None,
                    project: None,
                    tokens: [1000 + n as i64, 1, 0, 0],
                    reported_cost_micros: Some(1_000 + n as i64),
                    session: None,
                    machine: None,
                    identity: None,
                })
                .collect();
            Inserter::new(conn)?.insert(conn, &events)?;
            Ok::<_, DbError>(())
        })
        .await
        .expect("many teams and members");
    let admin = app.login("root", PASSWORD).await;
    let team = app.get("/team", Some(&admin)).await;
    assert_eq!(team.status, StatusCode::OK);
    let table = between(&team.body, "id=\"teams-table\"", "</table>");
    let rows = table.matches("<tr>").count();
    assert_eq!(rows, 1 + 100 + 1, "the header, 100 teams and no team");
    assert!(table.contains("Other (5 more)"), "the other teams, summed");
    assert!(table.contains("(no team)"), "and no team");
    assert_eq!(team.body.matches("id=\"team-section-").count(), 100);
    let largest = between(&team.body, "id=\"team-section-0\"", "</table>");
    assert!(largest.contains("Team team-000"), "the largest team first");
    assert!(
        largest.contains("Other (4 more)"),
        "104 members: 100 and the rest"
    );
    let admin_page = app.get("/admin/teams", Some(&admin)).await;
    assert_eq!(admin_page.status, StatusCode::OK);
    let past = between(&admin_page.body, ">Team team-001<", "</section>");
    assert_eq!(
        past.matches("<tr>").count(),
        1 + 20,
        "the header and 20 past memberships"
    );
    assert!(
        past.contains("5 earlier memberships are not shown"),
        "{past}"
    );
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let rest = &text[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}
