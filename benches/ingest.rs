//! HTTP ingest throughput: NDJSON batches of 1,000 standard-workload events
//! from 8 concurrent clients on loopback into the real server binary, on a
//! copy of a database that already holds the standard workload; and, in the
//! same run, the same rows inserted into a bare SQLite table in one
//! transaction: the ceiling.
//!
//! Usage: `cargo bench --bench ingest -- BINARY SOURCE_DB [EVENTS]`, where
//! BINARY is a release build of tokentally and SOURCE_DB a database written
//! by `tokentally demo` (`just bench` does all of it). The events
//! are the standard generator's (users, models, activities, token sizes),
//! stamped over the last day, as live traffic would be.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rusqlite::Connection;
use serde_json::json;
use tokentally::auth::UserId;
use tokentally::demo::{Generator, Workload};
use tokentally::usage::store::NewEvent;

mod support;
use support::{admin_token, agent, rss_kib, start, written_bytes};

const CLIENTS: usize = 8;
const BATCH: usize = 1_000;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let binary = PathBuf::from(
        args.next()
            .expect("usage: ingest BINARY SOURCE_DB [EVENTS]"),
    );
    let source = PathBuf::from(
        args.next()
            .expect("usage: ingest BINARY SOURCE_DB [EVENTS]"),
    );
    let total: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(400_000);

    let work = tempfile::tempdir_in(source.parent().unwrap_or(Path::new("."))).expect("tempdir");
    let db_copy = support::copy_database(&source, work.path());
    let (users, existing) = users_and_count(&db_copy);
    let token = admin_token(&binary, work.path());
    let events = workload(&users, total);
    let batches: Vec<String> = events.chunks(BATCH).map(|c| ndjson(c, &users)).collect();

    let (mut server, base) = start(&binary, work.path());
    let written_before = written_bytes(server.id());
    let (seconds, latencies) = send(&base, &token, batches);
    let folded_after = caught_up(&db_copy);
    let written = written_bytes(server.id()).saturating_sub(written_before);
    let rss = rss_kib(server.id());
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();

    let ceiling = bare_insert(&events, work.path());
    let rate = total as f64 / seconds;
    let p = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "{total} events in {} requests of {BATCH} from {CLIENTS} clients into a server holding \
         {existing} events\n",
        latencies.len()
    );
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| HTTP ingest | {rate:.0} events/s ({seconds:.2} s) |");
    println!(
        "| request latency p50 / p99 | {:.1} / {:.1} ms |",
        ms(p(0.50)),
        ms(p(0.99))
    );
    println!(
        "| server RSS at the end (peak) | {} / {} MiB |",
        rss.0 / 1024,
        rss.1 / 1024
    );
    println!(
        "| bytes written to storage per event (WAL, checkpoints, folding) | {:.0} |",
        written as f64 / total as f64
    );
    match folded_after {
        Some(after) => println!(
            "| rollups folded up to the last event, after the last acknowledgement | {:.2} s |",
            after.as_secs_f64()
        ),
        None => println!("| rollups folded after the last acknowledgement | (in each request) |"),
    }
    println!("| bare SQLite insert, one transaction (ceiling) | {ceiling:.0} rows/s |");
    println!(
        "| HTTP ingest / ceiling | {:.1} % |",
        100.0 * rate / ceiling
    );
}

/// How long after the last acknowledgement the server's roller had
/// folded every event into the rollups (`None`: a release that writes
/// rollups in the acknowledging transaction has no watermark).
fn caught_up(db: &Path) -> Option<Duration> {
    let started = std::time::Instant::now();
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the copy");
    let waiting = |conn: &Connection| -> Option<i64> {
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM events WHERE id > event_id) FROM rollup_watermark",
            [],
            |r| r.get(0),
        )
        .ok()
    };
    while waiting(&conn)? > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the roller did not catch up within 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(started.elapsed())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn users_and_count(db: &Path) -> (Vec<(UserId, String)>, i64) {
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare("SELECT id, username FROM users WHERE username LIKE 'user-%' ORDER BY username")
        .expect("users");
    let users = stmt
        .query_map([], |r| Ok((UserId(r.get(0)?), r.get(1)?)))
        .expect("users")
        .collect::<Result<Vec<_>, _>>()
        .expect("users");
    let count = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert!(
        !users.is_empty(),
        "run `tokentally demo` on the source database first"
    );
    (users, count)
}

fn workload(users: &[(UserId, String)], total: usize) -> Vec<NewEvent> {
    let ids = users.iter().map(|(id, _)| *id).collect();
    let mut generator = Generator::new(
        ids,
        &Workload {
            events: total,
            seed: 7,
            end: Timestamp::now(),
            days: 1,
        },
    );
    let mut events = Vec::with_capacity(total);
    while let Some(day) = generator.next_day() {
        events.extend(day);
    }
    // A source of their own, so no event is a duplicate of the workload's.
    for event in &mut events {
        event.source = "bench".into();
    }
    events
}

fn ndjson(events: &[NewEvent], users: &[(UserId, String)]) -> String {
    let name = |id: UserId| {
        users
            .iter()
            .find(|(u, _)| *u == id)
            .map(|(_, n)| n.as_str())
            .unwrap_or("user-001")
    };
    let mut body = String::new();
    for e in events {
        let timestamp = Timestamp::from_millisecond(e.ts_ms)
            .expect("ts")
            .to_string();
        let line = json!({
            "id": e.external_id, "timestamp": timestamp, "user": name(e.user), "model": e.model,
            "provider": e.provider, "activity": e.activity, "project": e.project,
            "source": e.source, "input_tokens": e.tokens[0], "output_tokens": e.tokens[1],
            "cache_read_tokens": e.tokens[2], "cache_write_tokens": e.tokens[3],
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    body
}

/// Sends every batch from CLIENTS threads; returns the wall time and every
/// request's latency, sorted.
fn send(base: &str, token: &str, batches: Vec<String>) -> (f64, Vec<Duration>) {
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (queue, url, token) = (
                queue.clone(),
                format!("{base}/api/v1/events"),
                token.to_owned(),
            );
            std::thread::spawn(move || {
                let agent = agent();
                let mut latencies = Vec::new();
                loop {
                    let Some(body) = queue.lock().expect("queue").pop() else {
                        break;
                    };
                    let sent = Instant::now();
                    let mut response = agent
                        .post(&url)
                        .header("Authorization", &format!("Bearer {token}"))
                        .header("Content-Type", "application/x-ndjson")
                        .send(body)
                        .expect("request");
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    assert_eq!(response.status(), 200, "{text}");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("client"))
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    (seconds, latencies)
}

/// The same rows into a bare table with the same columns and no index,
/// one transaction, a prepared statement: what SQLite alone can do.
fn bare_insert(events: &[NewEvent], dir: &Path) -> f64 {
    let conn = Connection::open(dir.join("bare.db")).expect("bare db");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE events (id INTEGER PRIMARY KEY, ts_ms INTEGER, user_id INTEGER,
             source_id INTEGER, external_id TEXT, model_id INTEGER, provider_id INTEGER,
             activity_id INTEGER, project_id INTEGER, input_tokens INTEGER,
             output_tokens INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER,
             cost_micros INTEGER, cost_origin INTEGER);",
    )
    .expect("schema");
    let started = Instant::now();
    conn.execute_batch("BEGIN").expect("begin");
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO events (ts_ms, user_id, source_id, external_id, model_id,
                     provider_id, activity_id, project_id, input_tokens, output_tokens,
                     cache_read_tokens, cache_write_tokens, cost_micros, cost_origin)
                 VALUES (?1, ?2, 1, ?3, ?4, NULL, ?5, ?6, ?7, ?8, ?9, ?10, 0, 1)",
            )
            .expect("prepare");
        for e in events {
            let small = |s: &Option<String>| s.as_ref().map(|s| s.len() as i64);
            insert
                .execute(rusqlite::params![
                    e.ts_ms,
                    e.user.0,
                    e.external_id,
                    e.model.len() as i64,
                    small(&e.activity),
                    small(&e.project),
                    e.tokens[0],
                    e.tokens[1],
                    e.tokens[2],
                    e.tokens[3]
                ])
                .expect("insert");
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
    events.len() as f64 / started.elapsed().as_secs_f64()
}
