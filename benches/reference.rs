//! The reference queries of docs/WORKLOAD.md, through the query layer and,
//! in the same run on the same database, as a plain GROUP BY over the raw
//! `events` table (the architecture of the system tokentally grew from).
//!
//! Usage: `cargo bench --bench reference -- DB_FILE [RUNS [FILTER]]` on a database
//! written by `tokentally demo --seed 42 --end 2026-11-01T00:00:00Z`
//! (`just bench` does both). Prints a Markdown table.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::{Connection, OpenFlags};
use tokentally::auth::UserId;
use tokentally::usage::Scope;
use tokentally::usage::buckets::BucketSize;
use tokentally::usage::events::{self, EventsQuery, SortColumn};
use tokentally::usage::query::{self, Filters, SeriesQuery};
use tokentally::usage::rollup::Dim;

const END: &str = "2026-11-01T00:00:00Z";
const DAY_MS: i64 = 86_400_000;

struct Case {
    name: String,
    layer: Box<dyn Fn(&Connection) -> usize>,
    baseline: Box<dyn Fn(&Connection) -> usize>,
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).expect("timestamp")
}

fn series(conn: &Connection, scope: Scope, query: &SeriesQuery) -> usize {
    let series = query::series(conn, scope, query).expect("series");
    series.buckets.len() * series.groups.len()
}

/// A raw GROUP BY; returns the number of result rows. `offset_ms` shifts
/// UTC to a fixed local offset (the baseline ignores DST: it is here for
/// its cost, not its answer).
fn group_by(conn: &Connection, sql: &str, params: &[i64]) -> usize {
    let mut stmt = conn.prepare_cached(sql).expect("sql");
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .expect("query");
    let mut n = 0;
    while rows.next().expect("row").is_some() {
        n += 1;
    }
    n
}

const SUMS: &str = "COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), \
                    SUM(cache_write_tokens), SUM(cost_micros), SUM(cost_origin = 0)";

fn cases(conn: &Connection) -> Vec<Case> {
    let end = END.parse::<Timestamp>().expect("end").as_millisecond();
    let year = end - 365 * DAY_MS;
    let month = end - 30 * DAY_MS;
    let user: i64 = conn
        .query_row(
            "SELECT id FROM users WHERE username = 'user-001'",
            [],
            |r| r.get(0),
        )
        .expect("user-001: run `tokentally demo` first");
    let model: i64 = conn
        .query_row(
            "SELECT id FROM models WHERE name = 'claude-sonnet-4-5'",
            [],
            |r| r.get(0),
        )
        .expect("model");
    let mut out = Vec::new();
    for (zone_name, offset) in [("UTC", 0i64), ("America/New_York", -5 * 3_600_000)] {
        let zone = TimeZone::get(zone_name).expect("zone");
        let q = |from: i64, bucket: BucketSize, group_by: Option<Dim>, users: Vec<String>| {
            SeriesQuery {
                from: ts(from),
                to: ts(end),
                zone: zone.clone(),
                bucket,
                group_by: group_by.map(Into::into),
                filters: Filters {
                    users,
                    ..Filters::default()
                },
            }
        };
        let q1 = q(year, BucketSize::Day, None, vec!["user-001".into()]);
        out.push(Case {
            name: format!("1. one user's daily totals, a year ({zone_name})"),
            layer: Box::new(move |c| series(c, Scope::User(UserId(user)), &q1)),
            baseline: Box::new(move |c| {
                group_by(c, &format!("SELECT (ts_ms + ?1) / 86400000, {SUMS} FROM events WHERE user_id = ?2 AND ts_ms >= ?3 AND ts_ms < ?4 GROUP BY 1"), &[offset, user, year, end])
            }),
        });
        let q2 = q(year, BucketSize::Day, Some(Dim::Model), vec![]);
        out.push(Case {
            name: format!("2. daily by model, everyone, a year ({zone_name})"),
            layer: Box::new(move |c| series(c, Scope::Everyone, &q2)),
            baseline: Box::new(move |c| {
                group_by(c, &format!("SELECT (ts_ms + ?1) / 86400000, model_id, {SUMS} FROM events WHERE ts_ms >= ?2 AND ts_ms < ?3 GROUP BY 1, 2"), &[offset, year, end])
            }),
        });
        let q3 = q(month, BucketSize::Day, Some(Dim::Activity), vec![]);
        out.push(Case {
            name: format!("3. daily by activity, everyone, 30 days ({zone_name})"),
            layer: Box::new(move |c| series(c, Scope::Everyone, &q3)),
            baseline: Box::new(move |c| {
                group_by(c, &format!("SELECT (ts_ms + ?1) / 86400000, activity_id, {SUMS} FROM events WHERE ts_ms >= ?2 AND ts_ms < ?3 GROUP BY 1, 2"), &[offset, month, end])
            }),
        });
        let q4 = q(year, BucketSize::Month, Some(Dim::User), vec![]);
        out.push(Case {
            name: format!("4. monthly by user, a year ({zone_name})"),
            layer: Box::new(move |c| series(c, Scope::Everyone, &q4)),
            baseline: Box::new(move |c| {
                group_by(c, &format!("SELECT strftime('%Y-%m', (ts_ms + ?1) / 1000, 'unixepoch'), user_id, {SUMS} FROM events WHERE ts_ms >= ?2 AND ts_ms < ?3 GROUP BY 1, 2"), &[offset, year, end])
            }),
        });
    }
    let page = EventsQuery {
        from: ts(year),
        to: ts(end),
        filters: Filters {
            users: vec!["user-001".into()],
            models: vec!["claude-sonnet-4-5".into()],
            ..Filters::default()
        },
        sort: SortColumn::Cost,
        descending: true,
        limit: 50,
        after: None,
    };
    out.push(Case {
        name: "5. events page of 50, one user and model, by cost desc".into(),
        layer: Box::new(move |c| events::page(c, Scope::Everyone, &page).expect("page").rows.len()),
        baseline: Box::new(move |c| {
            group_by(c, "SELECT * FROM events WHERE user_id = ?1 AND model_id = ?2 AND ts_ms >= ?3 AND ts_ms < ?4 ORDER BY cost_micros DESC LIMIT 50", &[user, model, year, end])
        }),
    });
    for (zone_name, offset, from, to) in [
        (
            "Asia/Kolkata",
            19_800_000i64,
            "2026-02-28T18:30:00Z",
            "2026-04-30T18:30:00Z",
        ),
        (
            "America/New_York",
            -5 * 3_600_000,
            "2026-02-15T05:00:00Z",
            "2026-04-15T04:00:00Z",
        ),
    ] {
        let (from, to) = (
            from.parse::<Timestamp>().expect("from"),
            to.parse::<Timestamp>().expect("to"),
        );
        let q6 = SeriesQuery {
            from,
            to,
            zone: TimeZone::get(zone_name).expect("zone"),
            bucket: BucketSize::Day,
            group_by: None,
            filters: Filters::default(),
        };
        let (f, t) = (from.as_millisecond(), to.as_millisecond());
        out.push(Case {
            name: format!("6. daily totals, custom range ({zone_name})"),
            layer: Box::new(move |c| series(c, Scope::Everyone, &q6)),
            baseline: Box::new(move |c| {
                group_by(c, &format!("SELECT (ts_ms + ?1) / 86400000, {SUMS} FROM events WHERE ts_ms >= ?2 AND ts_ms < ?3 GROUP BY 1"), &[offset, f, t])
            }),
        });
    }
    out
}

/// Median and 95th percentile of `runs` timed calls, after two warm-ups.
fn time(conn: &Connection, f: &dyn Fn(&Connection) -> usize, runs: usize) -> (Duration, Duration) {
    for _ in 0..2 {
        std::hint::black_box(f(conn));
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f(conn));
            start.elapsed()
        })
        .collect();
    times.sort();
    let p95 = times[((runs * 95).div_ceil(100)).saturating_sub(1).min(runs - 1)];
    (times[runs / 2], p95)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let path = args.next().expect("usage: reference DB_FILE [RUNS]");
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(21);
    // Only the queries whose name contains FILTER (for profiling one).
    let filter = args.next().unwrap_or_default();
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.pragma_update(None, "cache_size", -64 * 1024)
        .expect("cache");
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    println!("{events} events in {path}; {runs} runs per query (median / p95, ms)\n");
    println!("| query | query layer median | p95 | raw GROUP BY median | p95 | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for case in cases(&conn)
        .into_iter()
        .filter(|case| case.name.contains(&filter))
    {
        let (layer_median, layer_p95) = time(&conn, &*case.layer, runs);
        let (base_median, base_p95) = time(&conn, &*case.baseline, runs.clamp(3, 7));
        let ratio = base_median.as_secs_f64() / layer_median.as_secs_f64().max(1e-9);
        println!(
            "| {} | {} | {} | {} | {} | {ratio:.0}x |",
            case.name,
            ms(layer_median),
            ms(layer_p95),
            ms(base_median),
            ms(base_p95)
        );
    }
}
