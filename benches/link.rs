//! What linking an identity costs: N events held for an unassigned
//! identity (`email:carol@example.com`, spread over a year) are linked to
//! a person and unlinked again, each in one write transaction through the
//! real database layer (the writer thread, `synchronous=FULL`), with
//! `verify` (rollups against the raw events) after both.
//!
//! Usage: `cargo bench --bench link -- [EVENTS...]` (default 100000 and
//! 1000000; `just bench-link`).

use std::time::Instant;

use tokentally::db::{Db, DbError, DbOptions};
use tokentally::model::{IdentityKey, IdentityKind, UserId};
use tokentally::usage::identities;
use tokentally::usage::rollup;
use tokentally::usage::store::{Inserter, NewEvent};

const YEAR_MS: i64 = 365 * 86_400_000;
/// 2025-11-01T00:00:00Z.
const START_MS: i64 = 1_761_955_200_000;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for events in sizes {
        runtime.block_on(run(events));
    }
}

async fn run(events: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("t.db"), &DbOptions::default()).expect("db");
    let person = db
        .write(|conn| {
            conn.execute(
                "INSERT INTO users (username, role, created_at, updated_at) VALUES ('bob', 'member', 0, 0)",
                [],
            )?;
            Ok::<_, DbError>(UserId(conn.last_insert_rowid()))
        })
        .await
        .expect("person");
    let key = IdentityKey::new(IdentityKind::Email, "carol@example.com");
    let started = Instant::now();
    for chunk in 0..events.div_ceil(10_000) {
        let key = key.clone();
        let batch: Vec<NewEvent> = (chunk * 10_000..((chunk + 1) * 10_000).min(events))
            .map(|i| event(i, events, person, &key))
            .collect();
        db.write(move |conn| Inserter::new(conn)?.insert(conn, &batch))
            .await
            .expect("insert");
    }
    let loaded = started.elapsed();
    let link_key = key.clone();
    let started = Instant::now();
    let moved = db
        .write(move |conn| {
            identities::link(conn, &link_key, "bob").map_err(|e| DbError::Check(e.to_string()))
        })
        .await
        .expect("link");
    let link = started.elapsed();
    assert_eq!(moved.events, events);
    check(&db).await;
    let started = Instant::now();
    db.write(move |conn| identities::unlink(conn, &key).map_err(|e| DbError::Check(e.to_string())))
        .await
        .expect("unlink");
    let unlink = started.elapsed();
    check(&db).await;
    println!(
        "{events} events: link {:.2} s ({:.0} events/s), unlink {:.2} s; loading them took {:.1} s",
        link.as_secs_f64(),
        events as f64 / link.as_secs_f64(),
        unlink.as_secs_f64(),
        loaded.as_secs_f64()
    );
    db.shutdown().await;
}

async fn check(db: &Db) {
    let mismatch = db.read(rollup::verify).await.expect("verify");
    assert_eq!(mismatch, None, "rollups agree with the raw events");
}

/// Event `i` of `n`: spread over a year, a few models and activities.
fn event(i: usize, n: usize, owner: UserId, key: &IdentityKey) -> NewEvent {
    let models = ["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5-mini"];
    let activities = [Some("chat"), Some("code review"), None];
    NewEvent {
        extras: Default::default(),
        ts_ms: START_MS + (i as i64 * YEAR_MS) / n as i64 + (i as i64 * 7919) % 3_600_000,
        user: owner,
        source: "otlp".into(),
        external_id: format!("call-{i}"),
        model: models[i % models.len()].into(),
        provider: None,
        activity: activities[i % activities.len()].map(str::to_owned),
        project: None,
        tokens: [1_000 + (i as i64 % 977), 200, 5_000, 0],
        reported_cost_micros: None,
        identity: Some(key.clone()),
        session: None,
        machine: None,
    }
}
