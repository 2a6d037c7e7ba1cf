//! The usage store against an oracle: random events, zones, ranges,
//! buckets, groupings and filters, answered by the query layer (rollups and
//! planner) and by a plain computation over the raw rows, which must agree.

use std::collections::BTreeMap;

mod common;

use common::store::Store;
use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use rusqlite::Connection;
use tokentally::auth::UserId;
use tokentally::usage::buckets::BucketSize;
use tokentally::usage::query::{self, Filters, NONE_LABEL, SeriesQuery};
use tokentally::usage::rollup::{self, Dim};
use tokentally::usage::store::NewEvent;
use tokentally::usage::{Scope, Totals};

const ZONES: [&str; 6] = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
];
const USERS: [&str; 3] = ["ada", "grace", "alan"];
const MODELS: [&str; 3] = ["claude-sonnet-4-5", "gpt-5-mini", "llama-local"];
const ACTIVITIES: [Option<&str>; 3] = [Some("chat"), Some("code review"), None];
const PROJECTS: [Option<&str>; 2] = [Some("web"), None];
const SOURCES: [&str; 2] = ["api", "otlp"];

/// One event as the generator sees it: indexes into the constant lists.
#[derive(Debug, Clone)]
struct Spec {
    ts_ms: i64,
    user: usize,
    model: usize,
    activity: usize,
    project: usize,
    source: usize,
    tokens: [i64; 4],
}

fn new_event(spec: &Spec, users: &[UserId], id: usize) -> NewEvent {
    NewEvent {
        ts_ms: spec.ts_ms,
        user: users[spec.user],
        source: SOURCES[spec.source].to_owned(),
        external_id: format!("e{id}"),
        model: MODELS[spec.model].to_owned(),
        provider: None,
        activity: ACTIVITIES[spec.activity].map(str::to_owned),
        project: PROJECTS[spec.project].map(str::to_owned),
        tokens: spec.tokens,
        reported_cost_micros: None,
    }
}

/// A raw event as the oracle reads it back, with names.
struct RawEvent {
    ts_ms: i64,
    user: String,
    model: String,
    activity: String,
    project: String,
    source: String,
    metrics: Totals,
}

fn raw_events(conn: &Connection) -> Result<Vec<RawEvent>, query::QueryError> {
    let mut stmt = conn.prepare(
        "SELECT e.ts_ms, u.username, m.name, a.name, p.name, s.name, e.input_tokens,
                e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.cost_micros,
                e.cost_origin
         FROM events e JOIN users u ON u.id = e.user_id JOIN models m ON m.id = e.model_id
         JOIN sources s ON s.id = e.source_id LEFT JOIN activities a ON a.id = e.activity_id
         LEFT JOIN projects p ON p.id = e.project_id",
    )?;
    let rows = stmt.query_map([], |row| {
        let name = |i| -> rusqlite::Result<String> {
            Ok(row
                .get::<_, Option<String>>(i)?
                .unwrap_or_else(|| NONE_LABEL.to_owned()))
        };
        Ok(RawEvent {
            ts_ms: row.get(0)?,
            user: row.get(1)?,
            model: row.get(2)?,
            activity: name(3)?,
            project: name(4)?,
            source: row.get(5)?,
            metrics: Totals {
                calls: 1,
                input_tokens: row.get(6)?,
                output_tokens: row.get(7)?,
                cache_read_tokens: row.get(8)?,
                cache_write_tokens: row.get(9)?,
                cost_micros: row.get(10)?,
                unpriced_calls: i64::from(row.get::<_, i64>(11)? == 0),
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The oracle: each event's local bucket label, straight from jiff.
fn local_label(ts_ms: i64, zone: &TimeZone, bucket: BucketSize) -> String {
    let local = Timestamp::from_millisecond(ts_ms)
        .expect("ts")
        .to_zoned(zone.clone());
    match bucket {
        BucketSize::Hour => local.strftime("%Y-%m-%dT%H").to_string(),
        BucketSize::Day => local.strftime("%Y-%m-%d").to_string(),
        BucketSize::Month => local.strftime("%Y-%m").to_string(),
        BucketSize::Week {
            start: Weekday::Monday,
        } => {
            let week = local.date().iso_week_date();
            format!("{:04}-W{:02}", week.year(), week.week())
        }
        BucketSize::Week { start } => {
            let back = (local.date().weekday().to_monday_zero_offset()
                - start.to_monday_zero_offset())
            .rem_euclid(7);
            let first = local
                .date()
                .checked_sub(jiff::Span::new().days(i64::from(back)))
                .expect("date");
            first.strftime("%Y-%m-%d").to_string()
        }
    }
}

fn dim_of(event: &RawEvent, dim: Dim) -> &str {
    match dim {
        Dim::User => &event.user,
        Dim::Model => &event.model,
        Dim::Activity => &event.activity,
        Dim::Project => &event.project,
        Dim::Source => &event.source,
        Dim::Provider => NONE_LABEL,
    }
}

type Cells = BTreeMap<(String, Option<String>), Totals>;

fn oracle(events: &[RawEvent], scope_user: Option<&str>, query: &SeriesQuery) -> Cells {
    let (from, to) = (query.from.as_millisecond(), query.to.as_millisecond());
    let allowed = |event: &RawEvent| {
        let f = &query.filters;
        let ok =
            |list: &Vec<String>, value: &str| list.is_empty() || list.iter().any(|v| v == value);
        scope_user.is_none_or(|u| u == event.user)
            && ok(&f.users, &event.user)
            && ok(&f.models, &event.model)
            && ok(&f.activities, &event.activity)
            && ok(&f.projects, &event.project)
            && ok(&f.sources, &event.source)
    };
    let mut cells = Cells::new();
    for event in events
        .iter()
        .filter(|e| e.ts_ms >= from && e.ts_ms < to && allowed(e))
    {
        let label = local_label(event.ts_ms, &query.zone, query.bucket);
        let group = query.group_by.map(|dim| dim_of(event, dim).to_owned());
        cells
            .entry((label, group))
            .or_default()
            .checked_add(&event.metrics)
            .expect("in range");
    }
    cells
}

fn from_series(series: &query::Series) -> Cells {
    let mut cells = Cells::new();
    for (bucket, row) in series.buckets.iter().zip(&series.cells) {
        for (group, cell) in series.groups.iter().zip(row) {
            if cell.calls != 0 || *cell != Totals::default() {
                cells
                    .entry((bucket.label.clone(), group.clone()))
                    .or_default()
                    .checked_add(cell)
                    .expect("in range");
            }
        }
    }
    cells
}

fn check_query(store: &Store, scope: Option<usize>, query: SeriesQuery) {
    let scope_name = scope.map(|i| USERS[i].to_owned());
    let scope = scope.map_or(Scope::Everyone, |i| Scope::User(store.users[i]));
    let for_series = query.clone();
    let (series, events) =
        store.read(move |conn| Ok((query::series(conn, scope, &for_series)?, raw_events(conn)?)));
    let expected = oracle(&events, scope_name.as_deref(), &query);
    let got = from_series(&series);
    assert_eq!(got, expected, "query {query:?} scope {scope_name:?}");
    let mut total = Totals::default();
    expected
        .values()
        .for_each(|t| total.checked_add(t).expect("in range"));
    assert_eq!(series.totals, total);
    if query.group_by.is_some() {
        check_top(store, scope, query, &expected, &total);
    }
}

/// The same series with at most `limit` groups: the kept groups' cells as
/// the oracle has them, and the rest summed per bucket.
fn check_top(store: &Store, scope: Scope, query: SeriesQuery, expected: &Cells, total: &Totals) {
    let groups: std::collections::BTreeSet<&Option<String>> =
        expected.keys().map(|(_, g)| g).collect();
    for limit in [1, 2] {
        let for_series = query.clone();
        let top = store.read(move |conn| {
            query::series_top(conn, scope, &for_series, limit, query::Rank::Tokens)
        });
        assert_eq!(&top.totals, total, "{query:?} limit {limit}");
        assert_eq!(top.groups_total(), groups.len(), "{query:?} limit {limit}");
        assert_eq!(top.other.is_some(), groups.len() > limit);
        let mut by_bucket: BTreeMap<String, Totals> = BTreeMap::new();
        for ((bucket, _), cell) in expected {
            by_bucket
                .entry(bucket.clone())
                .or_default()
                .checked_add(cell)
                .expect("in range");
        }
        for ((bucket, group), cell) in from_series(&top) {
            assert_eq!(
                expected.get(&(bucket.clone(), group.clone())),
                Some(&cell),
                "{query:?} limit {limit}: {bucket} {group:?}"
            );
            by_bucket
                .entry(bucket)
                .or_default()
                .checked_add_signed(&cell, -1)
                .expect("in range");
        }
        for (index, bucket) in top.buckets.iter().enumerate() {
            let rest = by_bucket.remove(&bucket.label).unwrap_or_default();
            let other = top
                .other
                .as_ref()
                .map_or_else(Totals::default, |o| o.cells[index].clone());
            assert_eq!(
                other, rest,
                "{query:?} limit {limit}: other in {}",
                bucket.label
            );
        }
    }
}

fn bucket_sizes() -> impl Strategy<Value = BucketSize> {
    prop_oneof![
        Just(BucketSize::Hour),
        Just(BucketSize::Day),
        Just(BucketSize::Week {
            start: Weekday::Monday
        }),
        Just(BucketSize::Week {
            start: Weekday::Sunday
        }),
        Just(BucketSize::Month),
    ]
}

/// 2026-02-20 .. 2026-04-20: spans the March and April DST changes of
/// every zone in the list.
const SPAN_START: i64 = 1_771_545_600_000;
const SPAN_MS: i64 = 59 * 86_400_000;

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    let spec = (
        0..SPAN_MS,
        0..3usize,
        0..3usize,
        0..3usize,
        0..2usize,
        0..2usize,
        (0..5000i64, 0..800i64, 0..9000i64, 0..500i64),
    )
        .prop_map(
            |(offset, user, model, activity, project, source, (i, o, r, w))| Spec {
                // Mostly on odd seconds; some exactly on quarter hours.
                ts_ms: SPAN_START
                    + if offset % 5 == 0 {
                        offset - offset % 900_000
                    } else {
                        offset
                    },
                user,
                model,
                activity,
                project,
                source,
                tokens: [i, o, r, w],
            },
        );
    prop::collection::vec(spec, 1..250)
}

fn instants() -> impl Strategy<Value = i64> {
    prop_oneof![
        // Anywhere, to the millisecond.
        (0..SPAN_MS).prop_map(|o| SPAN_START + o),
        // On a quarter hour, where local midnights fall.
        (0..SPAN_MS / 900_000).prop_map(|q| SPAN_START + q * 900_000),
    ]
}

fn filter_values(list: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => Just(Vec::new()),
        1 => prop::sample::subsequence(list.to_vec(), 1..=list.len().min(2))
            .prop_map(|v| v.into_iter().map(str::to_owned).collect()),
    ]
}

fn queries() -> impl Strategy<Value = (Option<usize>, SeriesQuery)> {
    (
        prop::option::of(0..3usize),
        instants(),
        instants(),
        0..ZONES.len(),
        bucket_sizes(),
        prop::option::of(prop::sample::select(vec![
            Dim::User,
            Dim::Model,
            Dim::Activity,
            Dim::Project,
            Dim::Source,
        ])),
        (
            filter_values(&USERS),
            filter_values(&MODELS),
            filter_values(&["chat", "code review", NONE_LABEL]),
            filter_values(&["web", NONE_LABEL]),
            filter_values(&SOURCES),
        ),
    )
        .prop_filter("a non-empty range", |(_, a, b, ..)| a != b)
        .prop_map(
            |(
                scope,
                a,
                b,
                zone,
                bucket,
                group_by,
                (users, models, activities, projects, sources),
            )| {
                let (from, to) = (a.min(b), a.max(b));
                let bucket = if bucket == BucketSize::Hour && to - from > 20 * 86_400_000 {
                    BucketSize::Day
                } else {
                    bucket
                };
                (
                    scope,
                    SeriesQuery {
                        from: Timestamp::from_millisecond(from).expect("ts"),
                        to: Timestamp::from_millisecond(to).expect("ts"),
                        zone: TimeZone::get(ZONES[zone]).expect("zone"),
                        bucket,
                        group_by,
                        filters: Filters {
                            users,
                            models,
                            activities,
                            projects,
                            sources,
                        },
                    },
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_query_equals_the_oracle(
        specs in specs(),
        batches in 1..5usize,
        queries in prop::collection::vec(queries(), 1..8),
    ) {
        let store = Store::new(&USERS);
        let events: Vec<NewEvent> = specs.iter().enumerate().map(|(i, s)| new_event(s, &store.users, i)).collect();
        store.insert(events, batches);
        let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
        prop_assert!(mismatch.is_none(), "{}", mismatch.map(|m| m.to_string()).unwrap_or_default());
        for (scope, query) in queries {
            check_query(&store, scope, query);
        }
    }
}

/// Events every 10 minutes for four days around `around`, all at once.
fn every_ten_minutes(store: &Store, around: &str) {
    let centre = around.parse::<Timestamp>().expect("ts").as_millisecond();
    let events = (-288..288)
        .map(|i| Spec {
            ts_ms: centre + i * 600_000,
            user: 0,
            model: 0,
            activity: 0,
            project: 0,
            source: 0,
            tokens: [100, 10, 0, 0],
        })
        .enumerate()
        .map(|(i, s)| new_event(&s, &store.users, i))
        .collect();
    store.insert(events, 3);
}

fn daily_calls(store: &Store, zone: &str, from: &str, to: &str) -> Vec<(String, i64)> {
    let query = SeriesQuery {
        from: from.parse().expect("from"),
        to: to.parse().expect("to"),
        zone: TimeZone::get(zone).expect("zone"),
        bucket: BucketSize::Day,
        group_by: None,
        filters: Filters::default(),
    };
    check_query(store, None, query.clone());
    let series = store.read(move |conn| query::series(conn, Scope::Everyone, &query));
    series
        .buckets
        .iter()
        .zip(&series.cells)
        .map(|(b, row)| (b.label.clone(), row[0].calls))
        .collect()
}

#[test]
fn days_around_dst_changes_have_their_real_length() {
    // (zone, transition instant, a range of whole local days, expected
    // events per local day at 6 per hour)
    let cases = [
        (
            "America/New_York",
            "2026-03-08T07:00:00Z",
            "2026-03-07T05:00:00Z",
            "2026-03-10T04:00:00Z",
            vec![144, 138, 144],
        ),
        (
            "America/New_York",
            "2026-11-01T06:00:00Z",
            "2026-10-31T04:00:00Z",
            "2026-11-03T05:00:00Z",
            vec![144, 150, 144],
        ),
        (
            "Europe/London",
            "2026-03-29T01:00:00Z",
            "2026-03-28T00:00:00Z",
            "2026-03-30T23:00:00Z",
            vec![144, 138, 144],
        ),
        (
            "Europe/London",
            "2026-10-25T01:00:00Z",
            "2026-10-23T23:00:00Z",
            "2026-10-27T00:00:00Z",
            vec![144, 150, 144],
        ),
        // Lord Howe moves by 30 minutes: days of 24.5 and 23.5 hours.
        (
            "Australia/Lord_Howe",
            "2026-04-04T15:00:00Z",
            "2026-04-03T13:00:00Z",
            "2026-04-06T13:30:00Z",
            vec![144, 147, 144],
        ),
        (
            "Australia/Lord_Howe",
            "2026-10-03T15:30:00Z",
            "2026-10-02T13:30:00Z",
            "2026-10-05T13:00:00Z",
            vec![144, 141, 144],
        ),
        // No DST: whole days that start at :30 and :15 past an hour.
        (
            "Asia/Kolkata",
            "2026-06-01T00:00:00Z",
            "2026-05-30T18:30:00Z",
            "2026-06-01T18:30:00Z",
            vec![144, 144],
        ),
        (
            "Asia/Kathmandu",
            "2026-06-01T00:00:00Z",
            "2026-05-30T18:15:00Z",
            "2026-06-01T18:15:00Z",
            vec![144, 144],
        ),
    ];
    for (zone, transition, from, to, expected) in cases {
        let store = Store::new(&USERS);
        every_ten_minutes(&store, transition);
        let calls: Vec<i64> = daily_calls(&store, zone, from, to)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(calls, expected, "{zone} around {transition}");
    }
}

fn batch_of_events(users: &[UserId], batch: i64) -> Vec<NewEvent> {
    (0..400)
        .map(|i| {
            let spec = Spec {
                ts_ms: SPAN_START + (i * 7_919_993 + batch * 1_234_567) % SPAN_MS,
                user: (i % 3) as usize,
                model: (i % 3) as usize,
                activity: (i % 3) as usize,
                project: (i % 2) as usize,
                source: ((i / 2) % 2) as usize,
                tokens: [i, 2 * i, 3 * i, i % 7],
            };
            new_event(&spec, users, (batch * 1000 + i) as usize)
        })
        .collect()
}

#[test]
fn the_rollups_match_a_plain_group_by_after_every_batch() {
    let store = Store::new(&USERS);
    for batch in 0..5 {
        store.insert(batch_of_events(&store.users, batch), 2);
        let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
        assert!(
            mismatch.is_none(),
            "{}",
            mismatch.map(|m| m.to_string()).unwrap_or_default()
        );
    }
    // A re-sent batch is acknowledged and changes nothing.
    let outcome = store.insert(batch_of_events(&store.users, 3), 1);
    assert_eq!((outcome.accepted, outcome.duplicates), (0, 400));
    assert!(store.read(|conn| Ok(rollup::verify(conn)?)).is_none());
}

#[test]
fn verify_names_a_rollup_row_that_disagrees() {
    let store = Store::new(&USERS);
    every_ten_minutes(&store, "2026-06-01T00:00:00Z");
    store.write(|conn| {
        conn.execute(
            "UPDATE rollup_hour SET calls = calls + 1 WHERE cuboid = 2 AND slot = 3",
            [],
        )?;
        Ok(())
    });
    let mismatch = store
        .read(|conn| Ok(rollup::verify(conn)?))
        .expect("a mismatch");
    assert_eq!(mismatch.table, "rollup_hour");
    assert!(mismatch.to_string().contains("rollup_hour"));
}

use tokentally::usage::events::{self, Cursor, EventsQuery, SortColumn};

/// Walks every page of an events query.
fn all_pages(store: &Store, scope: Scope, query: EventsQuery) -> Vec<events::EventRow> {
    let mut rows = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let mut page_query = query.clone();
        // Through the encoded form, as a browser would send it.
        page_query.after = after.map(|c| Cursor::decode(&c.encode()).expect("cursor"));
        let page = store.read(move |conn| Ok(events::page(conn, scope, &page_query)?));
        assert!(page.rows.len() <= query.limit);
        rows.extend(page.rows);
        match page.next {
            Some(next) => after = Some(next),
            None => return rows,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn events_pages_series_and_totals_agree(
        specs in specs(),
        (scope, query) in queries(),
        sort in prop::sample::select(SortColumn::ALL.to_vec()),
        descending in any::<bool>(),
        limit in 1..40usize,
    ) {
        let store = Store::new(&USERS);
        let events: Vec<NewEvent> = specs.iter().enumerate().map(|(i, s)| new_event(s, &store.users, i)).collect();
        store.insert(events, 2);
        let scope = scope.map_or(Scope::Everyone, |i| Scope::User(store.users[i]));
        let events_query = EventsQuery {
            from: query.from,
            to: query.to,
            filters: query.filters.clone(),
            sort,
            descending,
            limit,
            after: None,
        };
        let rows = all_pages(&store, scope, events_query);
        let mut from_rows = Totals::default();
        for row in &rows {
            from_rows.checked_add(&Totals {
                calls: 1,
                input_tokens: row.tokens[0],
                output_tokens: row.tokens[1],
                cache_read_tokens: row.tokens[2],
                cache_write_tokens: row.tokens[3],
                cost_micros: row.cost_micros,
                unpriced_calls: i64::from(!row.priced),
            })
            .expect("in range");
        }
        let mut ids: Vec<i64> = rows.iter().map(|r| r.row_id).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), rows.len(), "no row twice across pages");
        let for_series = query.clone();
        let (series, totals) = store.read(move |conn| {
            let series = query::series(conn, scope, &for_series)?;
            let totals = query::totals_with_change(conn, scope, for_series.from, for_series.to, &for_series.filters)?;
            Ok((series, totals))
        });
        prop_assert_eq!(&series.totals, &from_rows);
        prop_assert_eq!(&totals.current, &from_rows);
        // The order is the requested one (ties broken by row id).
        let key = |r: &events::EventRow| -> (String, i64) {
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let number = |n: i64| format!("{:020}", n + (1 << 62));
            let value = match sort {
                SortColumn::Id => r.id.clone(),
                SortColumn::Time => number(r.ts_ms),
                SortColumn::User => r.user.clone(),
                SortColumn::Model => r.model.clone(),
                SortColumn::Activity => text(&r.activity),
                SortColumn::Project => text(&r.project),
                SortColumn::Source => r.source.clone(),
                SortColumn::Input => number(r.tokens[0]),
                SortColumn::Output => number(r.tokens[1]),
                SortColumn::CacheRead => number(r.tokens[2]),
                SortColumn::CacheWrite => number(r.tokens[3]),
                SortColumn::Cost => number(r.cost_micros),
            };
            (value, r.row_id)
        };
        let keys: Vec<_> = rows.iter().map(key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if descending {
            sorted.reverse();
        }
        prop_assert_eq!(keys, sorted);
    }
}
