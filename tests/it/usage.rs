//! The usage store against an oracle: random events, zones, ranges,
//! buckets, groupings and filters, answered by the query layer (rollups and
//! planner) and by a plain computation over the events the test generated,
//! which must agree. The oracle never reads the database: it buckets the
//! generated events with jiff (UTC instant to local time only), finds the
//! local bucket boundaries by walking instants, and prices the events from
//! the price table the test installs.
//!
//! Cases per property: `PROPTEST_CASES` when it is set (`just soak` runs
//! 2,000 in a release build), else a CI default that keeps `cargo test`
//! quick. The events and ranges roam over 2011–2030, clustered around
//! instants where bugs live: every DST change of every zone below (both
//! hemispheres, changes at midnight, half-hour changes), the day Samoa
//! skipped, New Year and leap days in each zone. Events carry sessions and
//! machines too, which the rollups do not hold: a query filtered by them is
//! answered from the raw events, and must agree with the oracle all the
//! same.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::common::store::Store;
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use proptest::prelude::*;
use tokentally::auth::UserId;
use tokentally::usage::buckets::BucketSize;
use tokentally::usage::query::{self, Filters, GroupBy, NONE_LABEL, SeriesQuery};
use tokentally::usage::rollup::{self, CostOrigin, Dim};
use tokentally::usage::store::NewEvent;
use tokentally::usage::{Scope, Totals};

/// Cases for a property: `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

const ZONES: [&str; 14] = [
    "UTC",
    "America/New_York",
    "Europe/London",
    // Southern hemisphere: summer time from October to April.
    "Australia/Sydney",
    // Half-hour DST change; whole-hour and quarter-hour offsets.
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    // +12:45 / +13:45, southern DST.
    "Pacific/Chatham",
    // Clocks change at midnight: days without a 00:00, or with two.
    "America/Santiago",
    "America/Havana",
    "Asia/Beirut",
    "America/Sao_Paulo",
    "Africa/Cairo",
    // Skipped 30 December 2011 whole; DST until 2021.
    "Pacific/Apia",
];
const USERS: [&str; 3] = ["ada", "grace", "alan"];
const MODELS: [&str; 3] = ["claude-sonnet-4-5", "gpt-5-mini", "llama-local"];
const ACTIVITIES: [Option<&str>; 3] = [Some("chat"), Some("code review"), None];
const PROJECTS: [Option<&str>; 2] = [Some("web"), None];
const SOURCES: [&str; 2] = ["api", "otlp"];
/// Labels of raw events only (not rollup dimensions).
const SESSIONS: [Option<&str>; 3] = [Some("s-1"), Some("s-2"), None];
const MACHINES: [Option<&str>; 2] = [Some("laptop"), None];

const MS_PER_DAY: i64 = 86_400_000;
const QUARTER: i64 = 900_000;
/// 2011-09-01 .. 2031-01-01 (UTC).
const SPAN_START: i64 = 1_314_835_200_000;
const SPAN_END: i64 = 1_924_992_000_000;

/// The price table the tests install instead of the shipped one (and
/// instead of the catalogue, which they empty): model,
/// effective from (ms), micro-units per million tokens. gpt-5-mini has no
/// price before 2019 and a new one from 2024; llama-local never has one.
const PRICES: [(&str, i64, [i64; 4]); 3] = [
    (
        "claude-sonnet-4-5",
        0,
        [3_000_000, 15_000_000, 300_000, 3_750_000],
    ),
    // 2019-01-01T00:00:00Z
    (
        "gpt-5-mini",
        1_546_300_800_000,
        [250_000, 2_000_000, 25_000, 0],
    ),
    // 2024-02-29T12:00:00Z
    (
        "gpt-5-mini",
        1_709_208_000_000,
        [150_000, 1_200_000, 15_000, 7],
    ),
];

/// A fresh store with the test's own price table.
fn new_store() -> Store {
    let store = Store::new(&USERS);
    store.write(|conn| {
        conn.execute("DELETE FROM prices", [])?;
        conn.execute("DELETE FROM price_catalogue", [])?;
        for (model, from, p) in PRICES {
            conn.execute(
                "INSERT INTO prices (model, provider, effective_from_ms, input_per_mtok,
                                     output_per_mtok, cache_read_per_mtok, cache_write_per_mtok,
                                     created_at)
                 VALUES (?1, '', ?2, ?3, ?4, ?5, ?6, 0)",
                rusqlite::params![model, from, p[0], p[1], p[2], p[3]],
            )?;
        }
        Ok(())
    });
    store
}

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
    session: usize,
    machine: usize,
}

/// A cost the producer reported, for some events of the second source:
/// derived from the spec so that the oracle and the store agree on it
/// (never 0, which counts as not reported).
fn reported_cost(spec: &Spec) -> Option<i64> {
    (spec.source == 1 && spec.tokens[0] % 2 == 1).then(|| spec.tokens[1] * 3 + 1)
}

fn new_event(spec: &Spec, users: &[UserId], id: usize) -> NewEvent {
    NewEvent {
        extras: Default::default(),
        ts_ms: spec.ts_ms,
        user: users[spec.user],
        source: SOURCES[spec.source].to_owned(),
        external_id: format!("e{id}"),
        model: MODELS[spec.model].to_owned(),
        provider: None,
        activity: ACTIVITIES[spec.activity].map(str::to_owned),
        project: PROJECTS[spec.project].map(str::to_owned),
        tokens: spec.tokens,
        reported_cost_micros: reported_cost(spec),
        session: SESSIONS[spec.session].map(str::to_owned),
        machine: MACHINES[spec.machine].map(str::to_owned),
        identity: None,
    }
}

/// The specs as events `e0`, `e1`…
fn events_of(store: &Store, specs: &[Spec]) -> Vec<NewEvent> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| new_event(s, &store.users, i))
        .collect()
}

/// Inserts the specs as events `e0`, `e1`… in `batches` transactions.
fn insert_specs(store: &Store, specs: &[Spec], batches: usize) {
    store.insert(events_of(store, specs), batches);
}

/// A generated event as the oracle sees it, with names and its metrics.
struct OracleEvent {
    id: String,
    ts_ms: i64,
    user: &'static str,
    model: &'static str,
    activity: &'static str,
    project: &'static str,
    source: &'static str,
    session: Option<&'static str>,
    machine: Option<&'static str>,
    metrics: Totals,
}

/// The cost at the test's price table: the newest price in force, rounded
/// half up once to a micro-unit; `None` without a price.
fn oracle_cost(model: &str, ts_ms: i64, tokens: &[i64; 4]) -> Option<i64> {
    let (_, _, price) = PRICES
        .iter()
        .filter(|(m, from, _)| *m == model && *from <= ts_ms)
        .max_by_key(|(_, from, _)| *from)?;
    let nano: i128 = (0..4)
        .map(|k| i128::from(price[k]) * i128::from(tokens[k]))
        .sum();
    Some(i64::try_from((nano + 500_000) / 1_000_000).expect("cost"))
}

fn oracle_events(specs: &[Spec]) -> Vec<OracleEvent> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let model = MODELS[s.model];
            let reported = reported_cost(s);
            let cost = reported.or_else(|| oracle_cost(model, s.ts_ms, &s.tokens));
            OracleEvent {
                id: format!("e{i}"),
                ts_ms: s.ts_ms,
                user: USERS[s.user],
                model,
                activity: ACTIVITIES[s.activity].unwrap_or(NONE_LABEL),
                project: PROJECTS[s.project].unwrap_or(NONE_LABEL),
                source: SOURCES[s.source],
                session: SESSIONS[s.session],
                machine: MACHINES[s.machine],
                metrics: Totals {
                    calls: 1,
                    input_tokens: s.tokens[0],
                    output_tokens: s.tokens[1],
                    cache_read_tokens: s.tokens[2],
                    cache_write_tokens: s.tokens[3],
                    cost_micros: cost.unwrap_or(0),
                    unpriced_calls: i64::from(cost.is_none()),
                    reported_cost_micros: reported.unwrap_or(0),
                },
            }
        })
        .collect()
}

/// The oracle: the local bucket label of an instant, straight from jiff.
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

/// The oracle's buckets of `[from, to)`: `(label, start, end)`, found by
/// walking UTC instants and converting each to local time (never a local
/// time to an instant, which is what the code under test does). A bucket
/// ends where the label changes; labels never come back, so the first
/// change after a point is found by galloping and bisecting over the
/// quarter hours, where every offset change and every local boundary of
/// these zones since 1980 falls.
fn oracle_buckets(
    from: i64,
    to: i64,
    zone: &TimeZone,
    bucket: BucketSize,
) -> Vec<(String, i64, i64)> {
    let label = |t: i64| local_label(t, zone, bucket);
    let mut out = Vec::new();
    let (mut start, mut current) = (from, label(from));
    loop {
        // Quarter hours k > start: is k * QUARTER past the bucket?
        let past = |k: i64| k * QUARTER >= to || label(k * QUARTER) != current;
        let first = start.div_euclid(QUARTER) + 1;
        let (mut same, mut step) = (first - 1, 1);
        let mut differs = loop {
            let k = first - 1 + step;
            if past(k) {
                break k;
            }
            same = k;
            step *= 2;
        };
        while differs - same > 1 {
            let mid = same + (differs - same) / 2;
            if past(mid) {
                differs = mid;
            } else {
                same = mid;
            }
        }
        let end = (differs * QUARTER).min(to);
        if end < to {
            assert_eq!(
                label(end - 1),
                current,
                "a boundary off the quarter-hour grid near {end} in {zone:?}"
            );
        }
        out.push((current, start, end));
        if end >= to {
            return out;
        }
        start = end;
        current = label(end);
    }
}

fn dim_of(event: &OracleEvent, dim: Dim) -> &str {
    match dim {
        Dim::User => event.user,
        Dim::Model => event.model,
        Dim::Activity => event.activity,
        Dim::Project => event.project,
        Dim::Source => event.source,
        Dim::Provider => NONE_LABEL,
    }
}

/// The generated events a query (range, filters and scope) selects.
fn selected<'e>(
    events: &'e [OracleEvent],
    scope_user: Option<&str>,
    from: i64,
    to: i64,
    filters: &Filters,
) -> impl Iterator<Item = &'e OracleEvent> {
    let ok = |list: &Vec<String>, value: &str| list.is_empty() || list.iter().any(|v| v == value);
    // A label filter names labels: an event without one never matches.
    let label_ok = |list: &Vec<String>, value: Option<&str>| {
        list.is_empty() || value.is_some_and(|value| list.iter().any(|v| v == value))
    };
    events.iter().filter(move |e| {
        e.ts_ms >= from
            && e.ts_ms < to
            && scope_user.is_none_or(|u| u == e.user)
            && ok(&filters.users, e.user)
            && ok(&filters.models, e.model)
            && ok(&filters.activities, e.activity)
            && ok(&filters.projects, e.project)
            && ok(&filters.sources, e.source)
            && label_ok(&filters.sessions, e.session)
            && label_ok(&filters.machines, e.machine)
    })
}

type Cells = BTreeMap<(String, Option<String>), Totals>;

fn oracle(events: &[OracleEvent], scope_user: Option<&str>, query: &SeriesQuery) -> Cells {
    let (from, to) = (query.from.as_millisecond(), query.to.as_millisecond());
    let mut cells = Cells::new();
    for event in selected(events, scope_user, from, to, &query.filters) {
        let label = local_label(event.ts_ms, &query.zone, query.bucket);
        let group = query
            .group_by
            .map(|g| dim_of(event, g.dim().expect("grouped by a dimension")).to_owned());
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

fn check_query(store: &Store, events: &[OracleEvent], scope: Option<usize>, query: SeriesQuery) {
    let scope_name = scope.map(|i| USERS[i]);
    let scope = scope.map_or(Scope::Everyone, |i| Scope::User(store.users[i]));
    let for_series = query.clone();
    let series = store.read(move |conn| query::series(conn, scope, &for_series));
    let buckets: Vec<(String, i64, i64)> = series
        .buckets
        .iter()
        .map(|b| (b.label.clone(), b.start_ms, b.end_ms))
        .collect();
    let (from, to) = (query.from.as_millisecond(), query.to.as_millisecond());
    assert_eq!(
        buckets,
        oracle_buckets(from, to, &query.zone, query.bucket),
        "buckets of {query:?}"
    );
    let expected = oracle(events, scope_name, &query);
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

/// The instants where bugs live, in 2011–2030: every offset change of
/// every zone in [`ZONES`], and the local starts of 1 January, 29 February
/// and 1 March in each.
fn hotspots() -> &'static Vec<i64> {
    static HOTSPOTS: OnceLock<Vec<i64>> = OnceLock::new();
    HOTSPOTS.get_or_init(|| {
        let mut out = Vec::new();
        for name in ZONES {
            let zone = TimeZone::get(name).expect("zone");
            let start = Timestamp::from_millisecond(SPAN_START).expect("ts");
            out.extend(
                zone.following(start)
                    .map(|t| t.timestamp().as_millisecond())
                    .take_while(|&t| t < SPAN_END),
            );
            for year in 2012..=2030 {
                let mut days = vec![Date::new(year, 1, 1), Date::new(year, 3, 1)];
                if jiff::civil::date(year, 1, 1).in_leap_year() {
                    days.push(Date::new(year, 2, 29));
                }
                for day in days {
                    let zoned = day.expect("date").to_zoned(zone.clone()).expect("zoned");
                    out.push(zoned.timestamp().as_millisecond());
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    })
}

/// A few hotspots that one case's events and ranges cluster around.
fn foci() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(prop::sample::select(hotspots().clone()), 1..4)
}

/// An instant near one of `foci` (within `reach`): anywhere to the
/// millisecond, on a quarter hour, or a millisecond either side of one;
/// now and then anywhere in the span.
fn instant_near(foci: Vec<i64>, reach: i64) -> impl Strategy<Value = i64> {
    let near =
        (prop::sample::select(foci), -reach..reach, 0..4u8).prop_map(|(focus, offset, snap)| {
            let t = focus + offset;
            let quarter = t - t.rem_euclid(QUARTER);
            match snap {
                0 => t,
                1 => quarter,
                2 => quarter - 1,
                _ => quarter + 1,
            }
        });
    prop_oneof![
        8 => near,
        1 => SPAN_START..SPAN_END,
    ]
}

fn specs(foci: Vec<i64>) -> impl Strategy<Value = Vec<Spec>> {
    let spec = (
        instant_near(foci, 3 * MS_PER_DAY),
        0..3usize,
        0..3usize,
        0..3usize,
        0..2usize,
        0..2usize,
        (0..5000i64, 0..800i64, 0..9000i64, 0..500i64),
        (0..3usize, 0..2usize),
    )
        .prop_map(
            |(ts_ms, user, model, activity, project, source, (i, o, r, w), (session, machine))| {
                Spec {
                    ts_ms,
                    user,
                    model,
                    activity,
                    project,
                    source,
                    tokens: [i, o, r, w],
                    session,
                    machine,
                }
            },
        );
    prop::collection::vec(spec, 1..250)
}

fn filter_values(list: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => Just(Vec::new()),
        1 => prop::sample::subsequence(list.to_vec(), 1..=list.len().min(2))
            .prop_map(|v| v.into_iter().map(str::to_owned).collect()),
    ]
}

/// A range's end: near the foci, or exactly at (or a millisecond either
/// side of) a generated event, where `<` and `<=` part ways.
fn endpoint(foci: Vec<i64>, times: Vec<i64>) -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => instant_near(foci, 40 * MS_PER_DAY),
        1 => (prop::sample::select(times), -1..=1i64).prop_map(|(t, d)| t + d),
    ]
}

fn queries(foci: Vec<i64>, times: Vec<i64>) -> impl Strategy<Value = ScopedQuery> {
    (
        prop::option::of(0..3usize),
        endpoint(foci.clone(), times.clone()),
        endpoint(foci, times),
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
            filter_values(&["s-1", "s-2", "s-unknown"]),
            filter_values(&["laptop", "desktop"]),
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
                (users, models, activities, projects, sources, sessions, machines),
            )| {
                let (from, to) = (a.min(b), a.max(b));
                // Bounded work per query: hours over at most 20 days, days
                // over at most two years; months beyond.
                let bucket = match bucket {
                    BucketSize::Hour if to - from > 20 * MS_PER_DAY => BucketSize::Day,
                    bucket => bucket,
                };
                let bucket = match bucket {
                    BucketSize::Day if to - from > 730 * MS_PER_DAY => BucketSize::Month,
                    bucket => bucket,
                };
                (
                    scope,
                    SeriesQuery {
                        from: Timestamp::from_millisecond(from).expect("ts"),
                        to: Timestamp::from_millisecond(to).expect("ts"),
                        zone: TimeZone::get(ZONES[zone]).expect("zone"),
                        bucket,
                        group_by: group_by.map(GroupBy::Dim),
                        filters: Filters {
                            users,
                            models,
                            activities,
                            projects,
                            sources,
                            sessions,
                            machines,
                            identity: None,
                        },
                    },
                )
            },
        )
}

/// One case of [`every_query_equals_the_oracle`].
/// A query with the user it is scoped to, if any.
type ScopedQuery = (Option<usize>, SeriesQuery);

/// Generated events, the number of transactions they are inserted in,
/// how many of them are folded into the rollups (the rest wait past the
/// watermark, as acknowledged events do until the roller passes), and
/// the queries.
type StoreCase = (Vec<Spec>, usize, usize, Vec<ScopedQuery>);

fn store_case() -> impl Strategy<Value = StoreCase> {
    foci().prop_flat_map(|foci| {
        specs(foci.clone()).prop_flat_map(move |specs| {
            let queries = prop::collection::vec(
                queries(foci.clone(), specs.iter().map(|s| s.ts_ms).collect()),
                1..8,
            );
            let folded = 0..=specs.len();
            (Just(specs), 1..5usize, folded, queries)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(36), ..ProptestConfig::default() })]

    #[test]
    fn every_query_equals_the_oracle(
        (specs, batches, folded, queries) in store_case(),
    ) {
        let store = new_store();
        store.insert_unfolded(events_of(&store, &specs), batches);
        store.fold(folded);
        let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
        prop_assert!(mismatch.is_none(), "{}", mismatch.map(|m| m.to_string()).unwrap_or_default());
        let events = oracle_events(&specs);
        for (scope, query) in &queries {
            check_query(&store, &events, *scope, query.clone());
        }
        // Folding the rest changes no answer.
        store.fold(usize::MAX);
        if let Some((scope, query)) = queries.first() {
            check_query(&store, &events, *scope, query.clone());
        }
    }
}

/// Events every 10 minutes for four days around `around`, all at once;
/// the oracle's view of them.
fn every_ten_minutes(store: &Store, around: &str) -> Vec<OracleEvent> {
    let centre = around.parse::<Timestamp>().expect("ts").as_millisecond();
    let specs: Vec<Spec> = (-288..288)
        .map(|i| Spec {
            ts_ms: centre + i * 600_000,
            user: 0,
            model: 0,
            activity: 0,
            project: 0,
            source: 0,
            tokens: [100, 10, 0, 0],
            session: 0,
            machine: 0,
        })
        .collect();
    insert_specs(store, &specs, 3);
    oracle_events(&specs)
}

fn daily_calls(
    store: &Store,
    events: &[OracleEvent],
    zone: &str,
    from: &str,
    to: &str,
) -> Vec<(String, i64)> {
    let query = SeriesQuery {
        from: from.parse().expect("from"),
        to: to.parse().expect("to"),
        zone: TimeZone::get(zone).expect("zone"),
        bucket: BucketSize::Day,
        group_by: None,
        filters: Filters::default(),
    };
    check_query(store, events, None, query.clone());
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
        let store = new_store();
        let events = every_ten_minutes(&store, transition);
        let calls: Vec<i64> = daily_calls(&store, &events, zone, from, to)
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
                ts_ms: SPAN_START
                    + (i * 7_919_993_101 + batch * 1_234_567) % (SPAN_END - SPAN_START),
                user: (i % 3) as usize,
                model: (i % 3) as usize,
                activity: (i % 3) as usize,
                project: (i % 2) as usize,
                source: ((i / 2) % 2) as usize,
                tokens: [i, 2 * i, 3 * i, i % 7],
                session: (i % 3) as usize,
                machine: (i % 2) as usize,
            };
            new_event(&spec, users, (batch * 1000 + i) as usize)
        })
        .collect()
}

#[test]
fn the_rollups_match_a_plain_group_by_after_every_batch() {
    let store = new_store();
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
    let store = new_store();
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

#[test]
fn verify_names_a_watermark_moved_without_folding() {
    let store = new_store();
    every_ten_minutes(&store, "2026-06-01T00:00:00Z");
    store.insert_unfolded(batch_of_events(&store.users, 7), 1);
    assert!(store.read(|conn| Ok(rollup::verify(conn)?)).is_none());
    // Raised over events no rollup row counts.
    store.write(|conn| {
        conn.execute(
            "UPDATE rollup_watermark SET event_id = (SELECT MAX(id) FROM events)",
            [],
        )?;
        Ok(())
    });
    let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
    assert!(mismatch.is_some(), "a raised watermark went unnoticed");
}

#[test]
fn verify_names_a_watermark_moved_back() {
    let store = new_store();
    every_ten_minutes(&store, "2026-06-01T00:00:00Z");
    // Lowered under folded events: reads would count the last one twice.
    store.write(|conn| {
        conn.execute("UPDATE rollup_watermark SET event_id = event_id - 1", [])?;
        Ok(())
    });
    let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
    assert!(mismatch.is_some(), "a lowered watermark went unnoticed");
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

/// One case of [`events_pages_series_and_totals_agree`].
fn pages_case() -> impl Strategy<Value = (Vec<Spec>, ScopedQuery)> {
    foci().prop_flat_map(|foci| {
        specs(foci.clone()).prop_flat_map(move |specs| {
            let query = queries(foci.clone(), specs.iter().map(|s| s.ts_ms).collect());
            (Just(specs), query)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(12), ..ProptestConfig::default() })]

    #[test]
    fn events_pages_series_and_totals_agree(
        (specs, (scope_index, query)) in pages_case(),
        sort in prop::sample::select(SortColumn::ALL.to_vec()),
        descending in any::<bool>(),
        limit in 1..40usize,
    ) {
        let store = new_store();
        insert_specs(&store, &specs, 2);
        let scope = scope_index.map_or(Scope::Everyone, |i| Scope::User(store.users[i]));
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
                reported_cost_micros: if row.origin == CostOrigin::Reported {
                    row.cost_micros
                } else {
                    0
                },
            })
            .expect("in range");
        }
        // Exactly the generated events the query selects, each as generated.
        let oracle = oracle_events(&specs);
        type Row<'a> = (i64, [i64; 4], i64, bool, Option<&'a str>, Option<&'a str>);
        let wanted: BTreeMap<&str, Row<'_>> = selected(
            &oracle,
            scope_index.map(|i| USERS[i]),
            query.from.as_millisecond(),
            query.to.as_millisecond(),
            &query.filters,
        )
        .map(|e| {
            let m = &e.metrics;
            let tokens = [m.input_tokens, m.output_tokens, m.cache_read_tokens, m.cache_write_tokens];
            let row = (e.ts_ms, tokens, m.cost_micros, m.unpriced_calls == 0, e.session, e.machine);
            (e.id.as_str(), row)
        })
        .collect();
        let got: BTreeMap<&str, Row<'_>> = rows
            .iter()
            .map(|r| {
                let row = (r.ts_ms, r.tokens, r.cost_micros, r.priced, r.session.as_deref(), r.machine.as_deref());
                (r.id.as_str(), row)
            })
            .collect();
        prop_assert_eq!(&got, &wanted);
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
                SortColumn::Session => text(&r.session),
                SortColumn::Machine => text(&r.machine),
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
