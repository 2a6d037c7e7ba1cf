//! Teams in the store and the query layer: the rules of a membership
//! change (one team at a time, intervals that never overlap, a first
//! membership covering the past, a move from its time on, bounded
//! counts), and reads by team compared with a plain GROUP BY over the raw
//! events joined with the membership intervals, in two zones.

use std::collections::BTreeMap;

use crate::common::store::Store;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokentally::db::DbError;
use tokentally::model::team::{MAX_MEMBERSHIPS, MAX_TEAMS};
use tokentally::model::{Scope, TeamId, Totals};
use tokentally::teams::store::{self, Added, BEGINNING_MS, TeamError};
use tokentally::usage::buckets::{self, BucketSize};
use tokentally::usage::events::{self, EventsQuery, SortColumn};
use tokentally::usage::query::{self, Filters, GroupBy, NO_TEAM_LABEL, Rank, SeriesQuery};
use tokentally::usage::rollup::Dim;
use tokentally::usage::store::NewEvent;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// 2026-03-02T00:00:00Z, a Monday; the events cover ten days from it.
const START_MS: i64 = 1_772_409_600_000;
const DAYS: i64 = 10;
const NOW_MS: i64 = START_MS + 30 * DAY_MS;

const PEOPLE: [&str; 5] = ["ada", "bob", "cat", "dan", "eve"];

fn ts(text: &str) -> i64 {
    text.parse::<Timestamp>().expect("instant").as_millisecond()
}

fn write<T: Send + 'static>(
    store: &Store,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T, TeamError> + Send + 'static,
) -> Result<T, TeamError> {
    store.runtime.block_on(store.db.write(work))
}

fn add(
    store: &Store,
    team: &str,
    user: &str,
    lead: bool,
    since: Option<i64>,
) -> Result<Added, TeamError> {
    let (team, user) = (team.to_owned(), user.to_owned());
    write(store, move |conn| {
        Ok(store::add_member(conn, &team, &user, lead, since, NOW_MS)?.added)
    })
}

fn remove(store: &Store, team: &str, user: &str, at: Option<i64>) -> Result<i64, TeamError> {
    let (team, user) = (team.to_owned(), user.to_owned());
    write(store, move |conn| {
        let ended = store::remove_member(conn, &team, &user, at, NOW_MS)?;
        Ok(ended.until_ms.unwrap_or_default())
    })
}

fn create(store: &Store, name: &str) -> Result<TeamId, TeamError> {
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

/// Events at odd instants for the five people, over ten days.
fn made_events(store: &Store) -> Vec<NewEvent> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: i64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as i64
    };
    let models = ["model-a", "model-b", "model-c"];
    (0..900)
        .map(|i| NewEvent {
            ts_ms: START_MS + next(DAYS * DAY_MS),
            user: store.users[i % PEOPLE.len()],
            source: "api".into(),
            external_id: format!("call-{i}"),
            model: models[next(3) as usize].into(),
            provider: None,
            activity: None,
            project: None,
            tokens: [1 + next(5_000), next(2_000), next(9_000), next(700)],
            reported_cost_micros: Some(next(40_000)),
            session: None,
            machine: None,
            identity: None,
        })
        .collect()
}

/// The memberships of the comparison: a first membership (the past), a
/// move in the middle of a day at an odd instant, a removal, someone in
/// no team, and someone moved twice in one day.
fn organise(store: &Store) {
    for name in ["web", "ops"] {
        create(store, name).expect("team");
    }
    let steps: [(&str, &str, bool, Option<&str>); 6] = [
        ("web", "ada", true, None),
        ("web", "bob", false, Some("2026-03-04T13:37:12.345Z")),
        ("ops", "bob", false, Some("2026-03-07T09:20:00Z")),
        ("ops", "cat", true, None),
        ("ops", "eve", false, Some("2026-03-03T00:00:00Z")),
        ("web", "eve", false, Some("2026-03-03T13:00:00Z")),
    ];
    for (team, user, lead, since) in steps {
        add(store, team, user, lead, since.map(ts)).expect("member");
    }
    remove(store, "ops", "cat", Some(ts("2026-03-06T17:00:00Z"))).expect("removed");
    remove(store, "web", "eve", Some(ts("2026-03-09T02:30:00Z"))).expect("removed");
}

/// (bucket label, group) → totals.
type Cells = BTreeMap<(String, String), Totals>;

/// A plain GROUP BY over the raw events joined with the membership
/// intervals: each event's team (or none) and its model; bucketed by the
/// library's bucket boundaries in `zone`.
fn oracle(
    store: &Store,
    zone: &TimeZone,
    size: BucketSize,
) -> Vec<(String, String, String, String, Totals)> {
    let rows: Vec<(i64, String, String, String, Totals)> = store.read(|conn| {
        let mut stmt = conn.prepare(
            "SELECT e.ts_ms, COALESCE(t.name, '(no team)'), u.username, m2.name, COUNT(*),
                    SUM(e.input_tokens), SUM(e.output_tokens), SUM(e.cache_read_tokens),
                    SUM(e.cache_write_tokens), SUM(e.cost_micros)
             FROM events e
             JOIN users u ON u.id = e.user_id
             JOIN models m2 ON m2.id = e.model_id
             LEFT JOIN team_members m ON m.user_id = e.user_id AND m.since_ms <= e.ts_ms
                  AND (m.until_ms IS NULL OR e.ts_ms < m.until_ms)
             LEFT JOIN teams t ON t.id = m.team_id
             GROUP BY e.ts_ms, 2, 3, 4",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    Totals {
                        calls: r.get(4)?,
                        input_tokens: r.get(5)?,
                        output_tokens: r.get(6)?,
                        cache_read_tokens: r.get(7)?,
                        cache_write_tokens: r.get(8)?,
                        cost_micros: r.get(9)?,
                        unpriced_calls: 0,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    });
    let (from, to) = span();
    let grid = buckets::buckets(from, to, zone, size).expect("buckets");
    rows.into_iter()
        .map(|(ts_ms, team, user, model, totals)| {
            let index = grid.partition_point(|b| b.start_ms <= ts_ms) - 1;
            (grid[index].label.clone(), team, user, model, totals)
        })
        .collect()
}

fn span() -> (Timestamp, Timestamp) {
    (
        Timestamp::from_millisecond(START_MS - DAY_MS).expect("from"),
        Timestamp::from_millisecond(START_MS + (DAYS + 1) * DAY_MS).expect("to"),
    )
}

fn answered(
    store: &Store,
    scope: Scope,
    zone: &TimeZone,
    size: BucketSize,
    group_by: Option<GroupBy>,
) -> Cells {
    let (from, to) = span();
    let query = SeriesQuery {
        from,
        to,
        zone: zone.clone(),
        bucket: size,
        group_by,
        filters: Filters::default(),
    };
    let series = store.read(move |conn| query::series(conn, scope, &query));
    let mut cells = Cells::new();
    for (bucket, row) in series.buckets.iter().zip(&series.cells) {
        for (group, cell) in series.groups.iter().zip(row) {
            if cell.calls > 0 {
                let group = group.clone().unwrap_or_default();
                cells.insert((bucket.label.clone(), group), cell.clone());
            }
        }
    }
    cells
}

fn sum_into(cells: &mut Cells, key: (String, String), totals: &Totals) {
    cells
        .entry(key)
        .or_default()
        .checked_add(totals)
        .expect("in range");
}

#[test]
fn reads_by_team_equal_a_plain_group_by_over_the_events_and_memberships() {
    let store = Store::new(&PEOPLE);
    store.insert(made_events(&store), 3);
    organise(&store);
    let web = store.read(|conn| Ok(store::by_name(conn, "web")?.expect("web").id));
    let bob = store.users[1];
    for zone in ["UTC", "Asia/Kolkata"] {
        let zone = TimeZone::get(zone).expect("zone");
        for size in [BucketSize::Hour, BucketSize::Day, BucketSize::Month] {
            let rows = oracle(&store, &zone, size);
            let what = format!("{} by {size:?}", zone.iana_name().unwrap_or("?"));
            // Everyone, by team.
            let mut want = Cells::new();
            for (bucket, team, _, _, totals) in &rows {
                sum_into(&mut want, (bucket.clone(), team.clone()), totals);
            }
            assert!(want.keys().any(|(_, team)| team == NO_TEAM_LABEL), "{what}");
            let got = answered(&store, Scope::Everyone, &zone, size, Some(GroupBy::Team));
            assert_eq!(got, want, "{what}: everyone by team");
            // One team's usage by model: its members' while in it.
            let mut want = Cells::new();
            for (bucket, team, _, model, totals) in &rows {
                if team == "web" {
                    sum_into(&mut want, (bucket.clone(), model.clone()), totals);
                }
            }
            let by_model = Some(GroupBy::Dim(Dim::Model));
            let got = answered(&store, Scope::Team(web), &zone, size, by_model);
            assert_eq!(got, want, "{what}: web by model");
            // The same team, by user and by team.
            let mut by_user = Cells::new();
            let mut by_team = Cells::new();
            for (bucket, team, user, _, totals) in &rows {
                if team == "web" {
                    sum_into(&mut by_user, (bucket.clone(), user.clone()), totals);
                    sum_into(&mut by_team, (bucket.clone(), team.clone()), totals);
                }
            }
            let users = Some(GroupBy::Dim(Dim::User));
            assert_eq!(
                answered(&store, Scope::Team(web), &zone, size, users),
                by_user,
                "{what}"
            );
            let teams = Some(GroupBy::Team);
            assert_eq!(
                answered(&store, Scope::Team(web), &zone, size, teams),
                by_team,
                "{what}"
            );
            // One person's usage by team: bob was in no team, then web,
            // then ops.
            let mut want = Cells::new();
            for (bucket, team, user, _, totals) in &rows {
                if user == "bob" {
                    sum_into(&mut want, (bucket.clone(), team.clone()), totals);
                }
            }
            let got = answered(&store, Scope::User(bob), &zone, size, Some(GroupBy::Team));
            assert_eq!(got, want, "{what}: bob by team");
            assert_eq!(
                want.keys()
                    .map(|k| k.1.as_str())
                    .collect::<std::collections::BTreeSet<_>>(),
                ["(no team)", "ops", "web"].into(),
                "{what}: bob's three teams over time"
            );
        }
    }
}

#[test]
fn a_team_s_events_and_totals_are_its_members_while_in_it() {
    let store = Store::new(&PEOPLE);
    store.insert(made_events(&store), 2);
    organise(&store);
    let web = store.read(|conn| Ok(store::by_name(conn, "web")?.expect("web").id));
    let rows = oracle(&store, &TimeZone::UTC, BucketSize::Day);
    let in_web: i64 = rows
        .iter()
        .filter(|r| r.1 == "web")
        .map(|r| r.4.calls)
        .sum();
    // The events table, fenced to the team: exactly its calls.
    let (from, to) = span();
    let listed = store.read(move |conn| {
        let mut query = EventsQuery {
            from,
            to,
            filters: Filters::default(),
            sort: SortColumn::Time,
            descending: false,
            limit: events::MAX_PAGE,
            after: None,
        };
        let mut ids = Vec::new();
        loop {
            let page = events::page(conn, Scope::Team(web), &query)?;
            ids.extend(page.rows.iter().map(|r| (r.ts_ms, r.user.clone())));
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Ok(ids),
            }
        }
    });
    assert_eq!(i64::try_from(listed.len()).expect("fits"), in_web);
    let (bob_joined, bob_left) = (ts("2026-03-04T13:37:12.345Z"), ts("2026-03-07T09:20:00Z"));
    for (at, user) in &listed {
        assert!(["ada", "bob", "eve"].contains(&user.as_str()), "{user}");
        if user == "bob" {
            assert!(
                *at >= bob_joined && *at < bob_left,
                "bob's call at {at} is not web's"
            );
        }
    }
    // The team page's figures: each team's total is its members' sum, and
    // everything adds up to everyone's usage.
    let teams = store
        .read(move |conn| query::team_usage(conn, Scope::Everyone, from, to, &Filters::default()));
    let mut all = Totals::default();
    for team in &teams {
        let mut members = Totals::default();
        for (_, totals) in &team.members {
            members.checked_add(totals).expect("in range");
        }
        assert_eq!(members, team.totals, "{:?}", team.team);
        all.checked_add(&team.totals).expect("in range");
    }
    assert_eq!(
        teams.last().and_then(|t| t.team.clone()),
        None,
        "no team comes last"
    );
    let everyone = store.read(move |conn| {
        Ok(
            query::totals_with_change(conn, Scope::Everyone, from, to, &Filters::default())?
                .current,
        )
    });
    assert_eq!(all, everyone);
    let web_total = teams
        .iter()
        .find(|t| t.team.as_ref().is_some_and(|(_, name)| name == "web"))
        .expect("web");
    assert_eq!(web_total.totals.calls, in_web);
    // The largest teams first, the rest summed: rows and other add up.
    let query = SeriesQuery {
        from,
        to,
        zone: TimeZone::UTC,
        bucket: BucketSize::Day,
        group_by: Some(GroupBy::Team),
        filters: Filters::default(),
    };
    let top =
        store.read(move |conn| query::series_top(conn, Scope::Everyone, &query, 1, Rank::Cost));
    assert_eq!(top.groups.len(), 1);
    let other = top.other.as_ref().expect("the other teams");
    assert_eq!(other.groups, 2, "ops and no team");
    let mut sum = other.totals.clone();
    for row in &top.cells {
        sum.checked_add(&row[0]).expect("in range");
    }
    assert_eq!(sum, everyone);
}
