//! Reads by team compared with a plain GROUP BY over the raw events
//! joined with the membership intervals, in two zones and three bucket
//! sizes, with a first membership (the past), a move in the middle of a
//! day, a removal and someone in no team; and a team's events and totals
//! (what its lead sees) are its members' while they were in it.

use std::collections::BTreeMap;

use crate::common::store::Store;
use crate::team_store::{DAY_MS, DAYS, PEOPLE, START_MS, add, create, remove, ts};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokentally::model::{Scope, Totals};
use tokentally::teams::store;
use tokentally::usage::buckets::{self, BucketSize};
use tokentally::usage::events::{self, EventsQuery, SortColumn};
use tokentally::usage::query::{self, Filters, GroupBy, NO_TEAM_LABEL, Rank, SeriesQuery};
use tokentally::usage::rollup::Dim;
use tokentally::usage::store::NewEvent;

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
            extras: Default::default(),
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
                    SUM(e.cache_write_tokens), SUM(e.cost_micros),
                    SUM(CASE e.cost_origin WHEN 2 THEN e.cost_micros ELSE 0 END)
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
                        reported_cost_micros: r.get(10)?,
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
