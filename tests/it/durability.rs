//! "A crash or power loss loses no acknowledged event", proven against the
//! failure it names: a power cut, which loses every write the disk was not
//! made to keep (`fsync`). The crash test (`tests/it/crash.rs`) cannot see
//! that: after SIGKILL the kernel still holds everything.
//!
//! The app runs in-process over the power-cut VFS
//! (`tests/it/common/powercut.rs`); several clients post NDJSON batches
//! through the router, and a batch counts as acknowledged only on a 200.
//! The power goes off at a random moment; the database as the disk holds
//! it must then have every acknowledged batch whole, no batch in part, no
//! event twice, rollups that agree with the raw events, an intact audit
//! chain whose ingest counts equal the events stored. Each round's disk is
//! the next round's, so the app itself recovers the WAL a cut left.
//!
//! `TOKENTALLY_POWERCUT_SEED` replays a run (the seed is printed at the
//! start and in every failure); `TOKENTALLY_POWERCUT_ROUNDS` sets the
//! number of cuts (3 by default, for CI).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokentally::app::{self, AppOptions, AppState};
use tokentally::auth::tokens::{self, TokenScope};
use tokentally::auth::users::{self, NewUser};
use tokentally::auth::{HashCost, Role};
use tokentally::clock::ManualClock;
use tokentally::db::{DbError, DbOptions};
use tower::ServiceExt;

use crate::common;
use crate::common::clients::{BATCH, CLIENTS, batch_body};
use crate::common::powercut::PowerCut;

/// How long anything awaited may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(120);

fn seed() -> u64 {
    std::env::var("TOKENTALLY_POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

fn rounds() -> usize {
    std::env::var("TOKENTALLY_POWERCUT_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

/// What the clients know, over all rounds: (client, batch) pairs.
#[derive(Default)]
struct Ledger {
    sent: Mutex<BTreeSet<(usize, usize)>>,
    acked: Mutex<BTreeSet<(usize, usize)>>,
}

/// The app over `dir/tokentally.db`, opened through the VFS `vfs`.
async fn open_app(dir: &Path, vfs: String) -> AppState {
    let options = AppOptions {
        db_path: dir.join("tokentally.db"),
        db: DbOptions {
            readers: 2,
            vfs: Some(vfs),
            ..DbOptions::default()
        },
        hash_cost: HashCost::cheapest(),
        clock: Arc::new(ManualClock::new(
            "2026-06-15T12:00:00Z"
                .parse::<Timestamp>()
                .expect("timestamp"),
        )),
        secure_cookies: false,
        claude_code_signal: Default::default(),
        sessions: Default::default(),
        time_zone: None,
        // The rate limit is not what this test is about.
        ingest_rate_per_token: 0,
        name_limits: Default::default(),
        unusual: Default::default(),
        trusted_proxies: Vec::new(),
        public_url: None,
        unit: Default::default(),
    };
    tokio::task::spawn_blocking(move || AppState::open(options))
        .await
        .expect("join")
        .expect("the app opens (and recovers) the database")
}

/// A user and an ingest token of its own for `round` (a cut may come
/// before anything of an earlier round reached the disk).
async fn ingest_token(state: &AppState, round: usize) -> String {
    let now = state.now_unix();
    let name = format!("round{round}");
    let user = name.clone();
    state
        .db
        .write(move |conn| {
            users::insert(
                conn,
                &NewUser {
                    username: &user,
                    display_name: None,
                    role: Role::Admin,
                    password_hash: "not a hash: nobody logs in",
                },
                now,
            )
        })
        .await
        .expect("user created");
    state
        .db
        .write(move |conn| tokens::create(conn, &name, TokenScope::Ingest, "power cut", now))
        .await
        .expect("token created")
        .secret
}

/// Posts batch after batch until one is not acknowledged after the cut;
/// records a batch as acknowledged only on a 200.
async fn client(
    router: Router,
    token: String,
    id: usize,
    ledger: Arc<Ledger>,
    acked: tokio::sync::watch::Sender<usize>,
    cut: Arc<AtomicBool>,
    seed: u64,
) {
    for batch in 0.. {
        let body = batch_body(id, batch);
        ledger.sent.lock().expect("ledger").insert((id, batch));
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/events")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from(body))
            .expect("request");
        let response = router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let text = response.into_body().collect().await.map(|b| b.to_bytes());
        if status == StatusCode::OK {
            // Answered after its commit's sync, so it was on the disk
            // before the cut, even if the answer came after it.
            ledger.acked.lock().expect("ledger").insert((id, batch));
            acked.send_modify(|n| *n += 1);
        } else if cut.load(Ordering::SeqCst) {
            return;
        } else {
            panic!(
                "seed {seed}: batch {id}/{batch} refused before the power cut: {status} {:?}",
                text
            );
        }
        if cut.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Copies what the disk holds (the database and its WAL; never the
/// shared memory) to a fresh directory.
fn copy_disk(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("directory");
    // The audit key is a file of its own, written once and synced.
    for name in ["tokentally.db", "tokentally.db-wal", "audit.key"] {
        let source = from.join(name);
        if source.exists() {
            std::fs::copy(&source, to.join(name)).expect("copy");
        }
    }
}

/// Checks the disk's copy in `dir` with the normal VFS.
fn check(dir: &Path, ledger: &Ledger, seed: u64, round: usize) {
    let conn = rusqlite::Connection::open(dir.join("tokentally.db")).expect("open");
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(verdict, "ok", "seed {seed}, round {round}: integrity");
    // A disk that lost everything (even the schema) must still say which
    // acknowledged batches it lost.
    let schema: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .expect("schema");
    let batches: Vec<(String, i64, i64)> = if schema == 0 {
        Vec::new()
    } else {
        let mut stmt = conn
            .prepare(
                "SELECT substr(external_id, 1, instr(external_id, '-e') - 1), COUNT(*), \
                 COUNT(DISTINCT external_id) FROM events GROUP BY 1",
            )
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    for (batch, count, distinct) in &batches {
        assert_eq!(
            (*count, *distinct),
            (BATCH as i64, BATCH as i64),
            "seed {seed}, round {round}: batch {batch} is stored whole, once"
        );
    }
    let stored: BTreeSet<String> = batches.into_iter().map(|(b, _, _)| b).collect();
    let acked = ledger.acked.lock().expect("ledger").clone();
    let lost: Vec<String> = acked
        .iter()
        .map(|(client, batch)| format!("c{client}-b{batch}"))
        .filter(|name| !stored.contains(name))
        .collect();
    assert!(
        lost.is_empty(),
        "seed {seed}, round {round}: {} of {} acknowledged batches lost in the power cut: {}",
        lost.len(),
        acked.len(),
        lost.join(" ")
    );
    let sent: BTreeSet<String> = ledger
        .sent
        .lock()
        .expect("ledger")
        .iter()
        .map(|(client, batch)| format!("c{client}-b{batch}"))
        .collect();
    let unsent: Vec<&String> = stored.difference(&sent).collect();
    assert!(
        unsent.is_empty(),
        "seed {seed}, round {round}: stored but never sent: {unsent:?}"
    );
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    let audited: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(json_extract(details, '$.accepted')), 0) FROM audit_log \
             WHERE action = 'ingest.request'",
            [],
            |r| r.get(0),
        )
        .expect("audit sum");
    assert_eq!(
        audited, events,
        "seed {seed}, round {round}: the audit's accepted counts equal the events stored"
    );
    let mismatch = tokentally::usage::rollup::verify(&conn).expect("rollup verify");
    assert!(
        mismatch.is_none(),
        "seed {seed}, round {round}: rollups disagree with the events: {}",
        mismatch.map(|m| m.to_string()).unwrap_or_default()
    );
    let key = tokentally::audit::key::load(&dir.join("tokentally.db"))
        .expect("audit key")
        .expect("the audit key is on the disk");
    tokentally::audit::key::install(&conn, &key).expect("install the key");
    let chain = tokentally::audit::chain::verify(&conn).expect("chain verify");
    assert!(
        chain.broken.is_none(),
        "seed {seed}, round {round}: the audit chain is broken: {:?}",
        chain.broken
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_power_cut() {
    let seed = seed();
    let rounds = rounds();
    eprintln!(
        "power cut: seed {seed} (TOKENTALLY_POWERCUT_SEED={seed} replays it), {rounds} rounds"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let work = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(Ledger::default());
    let mut disk: PathBuf = work.path().join("round-1");
    let mut total_acked = 0;
    for round in 1..=rounds {
        let started = std::time::Instant::now();
        let power = PowerCut::register();
        let state = open_app(&disk, power.name()).await;
        let token = ingest_token(&state, round).await;
        let router = app::router(state.clone());
        let cut = Arc::new(AtomicBool::new(false));
        let (acked_tx, mut acked_rx) = tokio::sync::watch::channel(0usize);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                tokio::spawn(client(
                    router.clone(),
                    token.clone(),
                    round * CLIENTS + i,
                    ledger.clone(),
                    acked_tx.clone(),
                    cut.clone(),
                    seed,
                ))
            })
            .collect();
        drop(acked_tx);

        // A random moment: after some batches were acknowledged, plus a
        // random fraction of a batch's time.
        let target = rng.random_range(1..=40usize);
        let jitter = Duration::from_micros(rng.random_range(0..5_000));
        tokio::time::timeout(PATIENCE, acked_rx.wait_for(|n| *n >= target))
            .await
            .unwrap_or_else(|_| {
                panic!("seed {seed}, round {round}: {target} batches acknowledged in time")
            })
            .expect("clients run");
        tokio::time::sleep(jitter).await;
        // Flag first: a refusal the clients see after the flag is the
        // cut's doing; a 200 still means synced before the cut.
        cut.store(true, Ordering::SeqCst);
        let dirty = power.cut();
        // The disk is frozen from here: take it before anything else.
        let next = work.path().join(format!("round-{}", round + 1));
        copy_disk(&disk, &next);
        let checked = work.path().join(format!("check-{round}"));
        copy_disk(&disk, &checked);

        for handle in clients {
            tokio::time::timeout(PATIENCE, handle)
                .await
                .unwrap_or_else(|_| {
                    panic!("seed {seed}, round {round}: a client stops after the cut")
                })
                .expect("client");
        }
        let acked = ledger.acked.lock().expect("ledger").len();
        eprintln!(
            "round {round}: cut after {target}+ batches (+{jitter:?}); {} acknowledged in all, \
             {dirty} files had unsynced writes, {} syncs",
            acked,
            power.syncs()
        );
        // The app is abandoned, as a machine that lost power: its
        // connections only fail from now on.
        drop(router);
        drop(state);
        check(&checked, &ledger, seed, round);
        eprintln!("round {round} took {:?}", started.elapsed());
        total_acked = acked;
        disk = next;
    }
    assert!(
        total_acked >= rounds,
        "seed {seed}: the clients got work done ({total_acked} batches)"
    );
    eprintln!(
        "{rounds} power cuts survived, {total_acked} acknowledged batches ({} events) checked",
        total_acked * BATCH
    );
}

/// The claim rests on these two settings of the writer's connection: WAL,
/// and FULL, which syncs the WAL at every commit (NORMAL would sync it only
/// at checkpoints, and a power cut would take the commits in between).
#[tokio::test]
async fn the_writer_syncs_every_commit_to_the_wal() {
    let app = common::TestApp::new().await;
    let (synchronous, journal_mode) = app
        .state
        .db
        .write(|conn| {
            let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
            let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            Ok::<_, DbError>((synchronous, journal))
        })
        .await
        .expect("pragmas");
    assert_eq!(synchronous, 2, "PRAGMA synchronous is FULL (2)");
    assert_eq!(journal_mode, "wal");
}
