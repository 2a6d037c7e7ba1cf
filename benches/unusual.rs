//! The unusual-usage rule (`budgets::unusual`, default knobs) measured on
//! the standard workload: a year of `tokentally demo` usage (seed 42, 200
//! users, ending 2026-11-01T00:00:00Z) is written, then the rule is run
//! as ingest runs it (`unusual::check`, recording alerts) every STEP
//! minutes over the whole year: every alert is a false one. Then a
//! runaway loop is injected for each chosen user — 20 times the user's
//! normal hourly rate (their mean calls per active hour over the 14 days
//! before, at their mean tokens and cost per call) for two hours from a
//! Wednesday 10:00 UTC — sent in 5-minute batches, the rule run after
//! each: the minutes until it alerts. Also the time of one check (what an
//! ingest batch pays).
//!
//! Usage: `cargo bench --bench unusual -- [EVENTS] [STEP_MINUTES]
//! [FACTOR FLOOR_TOKENS FLOOR_USD]` (default 1000000, 15 and the rule's
//! defaults; `just bench-unusual`).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokentally::budgets::UnusualRule;
use tokentally::budgets::unusual;
use tokentally::db::{Db, DbError, DbOptions};
use tokentally::demo::{self, Generator, Workload};
use tokentally::model::UserId;
use tokentally::usage::store::{Inserter, NewEvent};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// 2026-11-01T00:00:00Z, the end of the standard workload.
const END_MS: i64 = 1_793_491_200_000;
/// 2026-10-14T10:00:00Z, a Wednesday: where the loops start.
const LOOP_START_MS: i64 = 1_791_972_000_000;

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(1e6) as usize;
    let step_min = (args.get(1).copied().unwrap_or(15.0) as i64).max(1);
    let mut rule = UnusualRule::default();
    if let [factor, tokens, usd] = args.get(2..5).unwrap_or_default() {
        rule.factor = *factor;
        rule.floor_tokens = *tokens as i64;
        rule.floor_cost_micros = (*usd * 1e6) as i64;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(events, step_min, rule));
}

async fn run(events: usize, step_min: i64, rule: UnusualRule) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open_with(
        &dir.path().join("t.db"),
        &DbOptions::default(),
        &tokentally::usage::price_sync::prepare,
    )
    .expect("db");
    let started = Instant::now();
    let users = db
        .write(|conn| demo::ensure_users(conn, 200, 0))
        .await
        .expect("users");
    let workload = Workload {
        events,
        seed: 42,
        end: Timestamp::from_millisecond(END_MS).expect("end"),
        days: 365,
    };
    let mut generator = Generator::new(users.clone(), &workload);
    let mut written = 0;
    while let Some(day) = generator.next_day() {
        written += db
            .write(move |conn| Inserter::new(conn)?.insert(conn, &day))
            .await
            .expect("day written")
            .accepted;
    }
    println!(
        "workload: {written} events, 200 users, 365 days, written in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    println!(
        "rule: factor {}, floor {} tokens / {} USD an hour, {} active hours of {} in the baseline, cool-down {} h",
        rule.factor,
        rule.floor_tokens,
        rule.floor_cost_micros as f64 / 1e6,
        unusual::MIN_ACTIVE_HOURS,
        unusual::BASELINE_HOURS,
        unusual::COOL_DOWN_MS / HOUR_MS
    );
    // The year, every `step_min` minutes, as ingest would run it.
    let first_ms = END_MS - 365 * DAY_MS;
    let (year_rule, step_ms) = (rule.clone(), step_min * 60_000);
    let (alerts, checks, mut times, found) = db
        .write(move |conn| {
            let (mut alerts, mut checks, mut times) = (Vec::new(), 0, Vec::new());
            let mut now_ms = first_ms + step_ms;
            while now_ms <= END_MS {
                let now = Timestamp::from_millisecond(now_ms).expect("now");
                let began = Instant::now();
                if unusual::check(conn, &year_rule, now)? > 0 {
                    alerts.push(now_ms);
                }
                times.push(began.elapsed());
                checks += 1;
                now_ms += step_ms;
            }
            let mut stmt = conn.prepare(
                "SELECT u.username, a.created_ms, a.measure, a.used, a.amount, a.details
                 FROM alerts a JOIN users u ON u.id = a.user_id ORDER BY a.id",
            )?;
            let found = stmt
                .query_map([], |row| {
                    Ok(format!(
                        "  {} at {}: {} {} > limit {} ({})",
                        row.get::<_, String>(0)?,
                        Timestamp::from_millisecond(row.get(1)?)
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, String>(5)?
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, DbError>((alerts, checks, times, found))
        })
        .await
        .expect("year replayed");
    times.sort_unstable();
    for line in &found {
        println!("{line}");
    }
    println!(
        "year: {checks} checks (every {step_min} min): {} alerts (false alerts){}",
        alerts.len(),
        if alerts.is_empty() {
            String::new()
        } else {
            format!(
                " at {:?}",
                alerts
                    .iter()
                    .map(|ms| Timestamp::from_millisecond(*ms).expect("t").to_string())
                    .collect::<Vec<_>>()
            )
        }
    );
    println!(
        "one check (an ingest batch's added cost): median {:?}, p99 {:?}, max {:?}",
        pick(&times, 0.5),
        pick(&times, 0.99),
        times.last().copied().unwrap_or_default()
    );

    // Per source: the rollups keep user × source only by day and month,
    // so a source's hourly baseline would come from the raw events.
    for rank in [1usize, 5] {
        let user = users[rank - 1];
        let at = LOOP_START_MS;
        let (rollup, raw, rows) = db
            .read(move |conn| {
                let began = Instant::now();
                unusual::baseline_hours(conn, user, at)?;
                let rollup = began.elapsed();
                let began = Instant::now();
                let end = (at - HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS;
                let rows: i64 = conn
                    .prepare(
                        "SELECT count(*) FROM (SELECT source_id, ts_ms / 3600000,
                            sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens),
                            sum(cost_micros), count(*)
                         FROM events WHERE user_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3
                         GROUP BY 1, 2)",
                    )?
                    .query_row([user.0, end - unusual::BASELINE_HOURS * HOUR_MS, end], |row| row.get(0))?;
                Ok::<_, DbError>((rollup, began.elapsed(), rows))
            })
            .await
            .expect("baselines");
        println!(
            "baseline of user-{rank:03}: from the rollups {rollup:?}; per source from the raw events {raw:?} ({rows} source-hours)"
        );
    }

    for rank in [1usize, 5, 20] {
        let user = users[rank - 1];
        inject(&db, &rule, user, rank).await;
    }
}

fn pick(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Injects a two-hour loop of 20 × `user`'s normal rate; prints after how
/// many minutes the rule alerted.
async fn inject(db: &Db, rule: &UnusualRule, user: UserId, rank: usize) {
    let rule = rule.clone();
    let line = db
        .write(move |conn| {
            conn.execute("DELETE FROM alerts WHERE kind = 'unusual'", [])?;
            let hours = unusual::baseline_hours(conn, user, LOOP_START_MS + HOUR_MS)?;
            let active: Vec<_> = hours.iter().filter(|h| h.calls > 0).collect();
            let n = active.len().max(1) as f64;
            let calls: f64 = active.iter().map(|h| h.calls as f64).sum::<f64>() / n;
            let all_calls: i64 = active.iter().map(|h| h.calls).sum::<i64>().max(1);
            let sum = |f: &dyn Fn(&tokentally::model::Totals) -> i64| -> i64 {
                active.iter().map(|h| f(h)).sum::<i64>()
            };
            let per_call = |total: i64| total / all_calls;
            let tokens = [
                per_call(sum(&|t| t.input_tokens)),
                per_call(sum(&|t| t.output_tokens)),
                per_call(sum(&|t| t.cache_read_tokens)),
                per_call(sum(&|t| t.cache_write_tokens)),
            ];
            let cost = per_call(sum(&|t| t.cost_micros));
            let loop_calls = (calls * 20.0 * 2.0).round().max(1.0) as i64;
            let p95 = unusual::p95(hours.iter().map(|h| h.all_tokens()).collect());
            let mean_tokens = sum(&|t| t.all_tokens()) as f64 / n;
            let mut inserter = Inserter::new(conn)?;
            let mut alerted = None;
            for minute in (5..=120).step_by(5) {
                let now_ms = LOOP_START_MS + minute * 60_000;
                let batch: Vec<NewEvent> = (0..loop_calls)
                    .map(|i| (i, LOOP_START_MS + i * 2 * HOUR_MS / loop_calls))
                    .filter(|(_, ts)| *ts >= now_ms - 5 * 60_000 && *ts < now_ms)
                    .map(|(i, ts_ms)| NewEvent {
                        ts_ms,
                        user,
                        source: "runaway".to_owned(),
                        external_id: format!("loop-{}-{i}", user.0),
                        model: "claude-sonnet-4-5".to_owned(),
                        provider: Some("anthropic".to_owned()),
                        activity: Some("coding agent".to_owned()),
                        project: None,
                        tokens,
                        extras: Default::default(),
                        reported_cost_micros: Some(cost),
                        session: None,
                        machine: None,
                        identity: None,
                    })
                    .collect();
                inserter.insert(conn, &batch)?;
                let now = Timestamp::from_millisecond(now_ms).expect("now");
                unusual::check(conn, &rule, now)?;
                let theirs: i64 = conn.query_row(
                    "SELECT count(*) FROM alerts WHERE kind = 'unusual' AND user_id = ?1",
                    [user.0],
                    |row| row.get(0),
                )?;
                if theirs > 0 && alerted.is_none() {
                    alerted = Some(minute);
                }
            }
            let alerts: i64 = conn.query_row(
                "SELECT count(*) FROM alerts WHERE kind = 'unusual' AND user_id = ?1",
                [user.0],
                |row| row.get(0),
            )?;
            let measure: Option<String> = conn
                .query_row(
                    "SELECT measure FROM alerts WHERE kind = 'unusual' AND user_id = ?1 LIMIT 1",
                    [user.0],
                    |row| row.get(0),
                )
                .ok();
            Ok::<_, DbError>(format!(
                "loop for user-{rank:03}: normal {calls:.1} calls and {:.0} tokens per active hour \
                 ({} active hours of 336, p95 {p95} tokens); loop {loop_calls} calls in 2 h \
                 ({:.0} tokens an hour): {}, {alerts} alert(s) in the two hours",
                mean_tokens,
                active.len(),
                (loop_calls as f64 / 2.0) * tokens.iter().sum::<i64>() as f64,
                match (alerted, measure) {
                    (Some(m), Some(measure)) => format!("alerted after {m} min (on {measure})"),
                    (Some(m), None) => format!("alerted after {m} min"),
                    _ => "no alert".to_owned(),
                }
            ))
        })
        .await
        .expect("loop injected");
    println!("{line}");
}
