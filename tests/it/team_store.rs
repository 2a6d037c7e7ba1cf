//! Teams in the store: the rules of a membership change (one team at a
//! time, intervals that never overlap, a first membership covering the
//! past, a move from its time on, bounded counts). The helpers here are
//! shared with `team_reads`.

use crate::common::store::Store;
use jiff::Timestamp;
use tokentally::db::DbError;
use tokentally::model::TeamId;
use tokentally::model::team::{MAX_MEMBERSHIPS, MAX_TEAMS};
use tokentally::teams::membership::{self, Added};
use tokentally::teams::store::{self, BEGINNING_MS, TeamError};

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;
/// 2026-03-02T00:00:00Z, a Monday; the events cover ten days from it.
pub(crate) const START_MS: i64 = 1_772_409_600_000;
pub(crate) const DAYS: i64 = 10;
pub(crate) const NOW_MS: i64 = START_MS + 30 * DAY_MS;

pub(crate) const PEOPLE: [&str; 5] = ["ada", "bob", "cat", "dan", "eve"];

pub(crate) fn ts(text: &str) -> i64 {
    text.parse::<Timestamp>().expect("instant").as_millisecond()
}

pub(crate) fn write<T: Send + 'static>(
    store: &Store,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T, TeamError> + Send + 'static,
) -> Result<T, TeamError> {
    store.runtime.block_on(store.db.write(work))
}

pub(crate) fn add(
    store: &Store,
    team: &str,
    user: &str,
    lead: bool,
    since: Option<i64>,
) -> Result<Added, TeamError> {
    let (team, user) = (team.to_owned(), user.to_owned());
    write(store, move |conn| {
        Ok(membership::add_member(conn, &team, &user, lead, since, NOW_MS)?.added)
    })
}

pub(crate) fn remove(
    store: &Store,
    team: &str,
    user: &str,
    at: Option<i64>,
) -> Result<i64, TeamError> {
    let (team, user) = (team.to_owned(), user.to_owned());
    write(store, move |conn| {
        let ended = membership::remove_member(conn, &team, &user, at, NOW_MS)?;
        Ok(ended.until_ms.unwrap_or_default())
    })
}

pub(crate) fn create(store: &Store, name: &str) -> Result<TeamId, TeamError> {
    let name = name.to_owned();
    write(
        store,
        move |conn| Ok(store::create(conn, &name, NOW_MS)?.id),
    )
}

/// (user, team, lead, since, until) of every membership, by user then time.
fn history(store: &Store) -> Vec<(String, String, bool, i64, Option<i64>)> {
    let mut rows: Vec<_> = store
        .read(|conn| Ok(store::memberships(conn)?))
        .into_iter()
        .map(|m| (m.username, m.team_name, m.lead, m.since_ms, m.until_ms))
        .collect();
    rows.sort_by(|a, b| (&a.0, a.3).cmp(&(&b.0, b.3)));
    rows
}

/// No two memberships of one user overlap, whatever happened before.
fn assert_no_overlap(store: &Store) {
    let overlapping: i64 = store.read(|conn| {
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM team_members a JOIN team_members b
             ON a.user_id = b.user_id AND a.id < b.id
             AND a.since_ms < COALESCE(b.until_ms, 9223372036854775807)
             AND b.since_ms < COALESCE(a.until_ms, 9223372036854775807)",
            [],
            |row| row.get(0),
        )?)
    });
    assert_eq!(
        overlapping,
        0,
        "overlapping memberships: {:?}",
        history(store)
    );
}

#[test]
fn membership_changes_follow_the_rules_and_never_overlap() {
    let store = Store::new(&PEOPLE);
    for name in ["web", "ops"] {
        create(&store, name).expect("created");
    }
    let t1 = ts("2026-03-04T13:37:00Z");
    let t2 = ts("2026-03-09T08:00:00Z");
    let t0 = ts("2026-03-01T00:00:00Z");
    let future = NOW_MS + 1;
    // Each step: what it does, and what it must answer.
    type Step = (
        &'static str,
        Box<dyn Fn(&Store) -> Result<String, TeamError>>,
    );
    let show = |r: Result<Added, TeamError>| r.map(|a| format!("{a:?}"));
    let steps: Vec<(Step, Result<&str, &str>)> = vec![
        (
            (
                "a first membership covers the past",
                Box::new(move |s| show(add(s, "web", "ada", false, None))),
            ),
            Ok("Joined { since_ms: -9223372036854775808 }"),
        ),
        (
            (
                "a move ends the old membership where the new starts",
                Box::new(move |s| show(add(s, "ops", "ada", false, Some(t1)))),
            ),
            Ok("Moved { from: \"web\", since_ms: 1772631420000 }"),
        ),
        (
            (
                "a move may not start before the current membership",
                Box::new(move |s| show(add(s, "web", "ada", false, Some(t0)))),
            ),
            Err(
                "ada has been in \"ops\" since 2026-03-04T13:37:00Z: a move or a removal must be later than that",
            ),
        ),
        (
            (
                "nor at its very start",
                Box::new(move |s| show(add(s, "web", "ada", false, Some(t1)))),
            ),
            Err("must be later than that"),
        ),
        (
            (
                "the lead flag keeps the interval",
                Box::new(move |s| show(add(s, "OPS", "ada", true, None))),
            ),
            Ok("Lead { changed: true }"),
        ),
        (
            (
                "setting it again changes nothing",
                Box::new(move |s| show(add(s, "ops", "ada", true, None))),
            ),
            Ok("Lead { changed: false }"),
        ),
        (
            (
                "a start for a member already in the team is refused",
                Box::new(move |s| show(add(s, "ops", "ada", true, Some(t2)))),
            ),
            Err("ada is in \"ops\" already (since 2026-03-04T13:37:00Z)"),
        ),
        (
            (
                "removal from a team one is not in",
                Box::new(move |s| remove(s, "web", "ada", None).map(|t| t.to_string())),
            ),
            Err("ada is not in team \"web\" now"),
        ),
        (
            (
                "removal before the start",
                Box::new(move |s| remove(s, "ops", "ada", Some(t0)).map(|t| t.to_string())),
            ),
            Err("must be later than that"),
        ),
        (
            (
                "removal in the future",
                Box::new(move |s| remove(s, "ops", "ada", Some(future)).map(|t| t.to_string())),
            ),
            Err("the end is in the future"),
        ),
        (
            (
                "removal ends the membership",
                Box::new(move |s| remove(s, "ops", "ada", Some(t2)).map(|t| t.to_string())),
            ),
            Ok("1773043200000"),
        ),
        (
            (
                "a later membership may not overlap an earlier one",
                Box::new(move |s| show(add(s, "web", "ada", false, Some(t1 + 1)))),
            ),
            Err(
                "ada was in \"ops\" until 2026-03-09T08:00:00Z: a new membership cannot start before that",
            ),
        ),
        (
            (
                "a later membership without a start starts now",
                Box::new(move |s| {
                    add(s, "web", "ada", false, None).map(|added| match added {
                        Added::Joined { since_ms } if since_ms == NOW_MS => "joined now".to_owned(),
                        other => format!("{other:?}"),
                    })
                }),
            ),
            Ok("joined now"),
        ),
        (
            (
                "a start in the future",
                Box::new(move |s| show(add(s, "web", "bob", false, Some(future)))),
            ),
            Err("the start is in the future"),
        ),
        (
            (
                "a first membership may start when it is told to",
                Box::new(move |s| show(add(s, "web", "bob", false, Some(t1)))),
            ),
            Ok("Joined { since_ms: 1772631420000 }"),
        ),
        (
            (
                "an unknown person",
                Box::new(move |s| show(add(s, "web", "nobody", false, None))),
            ),
            Err("no person named \"nobody\""),
        ),
        (
            (
                "an unknown team",
                Box::new(move |s| show(add(s, "nope", "bob", false, None))),
            ),
            Err("no team named \"nope\""),
        ),
        (
            (
                "a team name taken in another case",
                Box::new(move |s| create(s, "WEB").map(|t| t.to_string())),
            ),
            Err("a team named \"WEB\" already exists"),
        ),
        (
            (
                "a team name that is not plain",
                Box::new(move |s| create(s, "web team").map(|t| t.to_string())),
            ),
            Err("a team name is 1 to 64 characters"),
        ),
    ];
    for ((what, step), expected) in steps {
        let got = step(&store);
        match (&got, expected) {
            (Ok(text), Ok(want)) => assert_eq!(text, want, "{what}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{what}: {e}"),
            _ => panic!("{what}: got {got:?}, want {expected:?}"),
        }
        assert_no_overlap(&store);
    }
    assert_eq!(
        history(&store),
        [
            ("ada".into(), "web".into(), false, BEGINNING_MS, Some(t1)),
            ("ada".into(), "ops".into(), true, t1, Some(t2)),
            ("ada".into(), "web".into(), false, NOW_MS, None),
            ("bob".into(), "web".into(), false, t1, None),
        ]
    );
    // The database itself keeps one current membership per user.
    let twice = store.runtime.block_on(store.db.write(|conn| {
        conn.execute(
            "INSERT INTO team_members (team_id, user_id, since_ms) SELECT team_id, user_id, 0
             FROM team_members WHERE until_ms IS NULL LIMIT 1",
            [],
        )
        .map_err(DbError::from)
    }));
    assert!(twice.is_err(), "a second current membership");
}

#[test]
fn teams_and_memberships_are_bounded() {
    let store = Store::new(&PEOPLE);
    let made = write(&store, |conn| {
        for n in 0..MAX_TEAMS {
            store::create(conn, &format!("team-{n}"), NOW_MS)?;
        }
        Ok(())
    });
    assert!(made.is_ok(), "{made:?}");
    let refused = create(&store, "one-too-many").expect_err("over the bound");
    assert!(matches!(refused, TeamError::TooManyTeams), "{refused}");
    assert!(refused.to_string().contains("1000 teams"), "{refused}");
    // Past memberships fill the table (a long history), then one more is
    // refused, whoever it is for.
    store.write(|conn| {
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO team_members (team_id, user_id, since_ms, until_ms)
             SELECT 1, (SELECT MIN(id) FROM users), i * 10, i * 10 + 5 FROM n",
            [i64::try_from(MAX_MEMBERSHIPS).expect("fits")],
        )?;
        Ok(())
    });
    let refused = add(&store, "team-1", "eve", false, None).expect_err("full");
    assert!(
        matches!(refused, TeamError::TooManyMemberships),
        "{refused}"
    );
    assert!(
        history(&store).iter().all(|m| m.0 != "eve"),
        "nothing written"
    );
}
