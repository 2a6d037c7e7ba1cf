//! Crash safety: the real binary takes NDJSON batches from several clients
//! while it is killed with SIGKILL at random moments, again and again.
//! After every kill, with the server down, the database must hold every
//! acknowledged batch, no batch in part, and no event twice; rollups must
//! agree with the raw events, the audit chain must be intact, and the
//! audit's ingest counts must equal the events stored.
//!
//! The checks run on a copy of the database and its WAL (not the `-shm`),
//! so the restarted server is the first to open the real WAL a kill left
//! behind and must recover it itself. The server must also still be
//! running before each kill: one that died on its own fails the test.
//!
//! `TOKENTALLY_CRASH_KILLS` sets the number of kills (5 by default, for
//! CI; `just soak` runs many more). The kill moments come from a seeded
//! RNG; the seed is printed at the start and with every failure, and
//! `TOKENTALLY_CRASH_SEED` replays it. (Losing what was never synced is
//! the power-cut test's part: `tests/it/durability.rs`.)

use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use crate::common::server::{Server, run_cli};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::clients::{BATCH, CLIENTS, Ledger, admin_ingest_token, spawn_clients};

fn kills() -> usize {
    std::env::var("TOKENTALLY_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

fn seed() -> u64 {
    std::env::var("TOKENTALLY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

thread_local! {
    /// The seed of the crash test running on this thread, if any.
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Names the seed in every failure on the test's own thread, also those
/// raised in the helpers it calls, while the returned guard lives. The
/// panic hook is process-wide and every integration test shares this
/// process, so the hook (installed once) says nothing for a panic on any
/// other thread; a client thread's panic is named by the join that finds it.
fn announce_seed(seed: u64) -> SeedNamed {
    eprintln!("crash test: seed {seed} (TOKENTALLY_CRASH_SEED={seed} replays it)");
    SEED.set(Some(seed));
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(Some(seed)) = SEED.try_with(Cell::get) {
                eprintln!("crash test failed with seed {seed} (TOKENTALLY_CRASH_SEED={seed})");
            }
            default(info);
        }));
    });
    SeedNamed
}

/// While alive, panics on this thread name the seed.
struct SeedNamed;

impl Drop for SeedNamed {
    fn drop(&mut self) {
        SEED.set(None);
    }
}

/// Checks what a stopped server left in `data` on a copy of its database
/// and WAL (without the `-shm`): opening the copy recovers and checkpoints
/// the copy's WAL, never the real one, which the next server must recover.
/// Where the rollup watermark stood and how many events waited past it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Folding {
    watermark: i64,
    waiting: i64,
}

fn check(data: &Path, ledger: &Ledger, seed: u64) -> Folding {
    let copy = tempfile::tempdir().expect("tempdir");
    // The audit key and the head checkpoints travel with the files: verify
    // checks the chain against both.
    for name in [
        "tokentally.db",
        "tokentally.db-wal",
        "audit.key",
        "tokentally.db.audit-head",
    ] {
        let source = data.join(name);
        if source.exists() {
            std::fs::copy(&source, copy.path().join(name)).expect("copy");
        }
    }
    let db = copy.path().join("tokentally.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT substr(external_id, 1, instr(external_id, '-e') - 1), COUNT(*), COUNT(DISTINCT external_id)
             FROM events GROUP BY 1",
        )
        .expect("prepare");
    let batches: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let stored: BTreeSet<String> = batches.iter().map(|(b, _, _)| b.clone()).collect();
    for (batch, count, distinct) in &batches {
        assert_eq!(
            (*count, *distinct),
            (BATCH as i64, BATCH as i64),
            "seed {seed}: batch {batch} is whole, once"
        );
    }
    let acked = ledger.acked.lock().map(|a| a.clone()).unwrap_or_default();
    for (client, batch) in &acked {
        assert!(
            stored.contains(&format!("c{client}-b{batch}")),
            "seed {seed}: acknowledged batch {client}/{batch} is stored"
        );
    }
    let sent = ledger.sent.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        stored.len() <= sent.len(),
        "seed {seed}: nothing stored that was never sent"
    );
    // The audit counted exactly what is stored (same transactions).
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    let audited: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(json_extract(details, '$.accepted')), 0) FROM audit_log WHERE action = 'ingest.request'",
            [],
            |r| r.get(0),
        )
        .expect("audit sum");
    assert_eq!(
        audited, events,
        "seed {seed}: the audit's accepted counts equal the events stored"
    );
    let folding = conn
        .query_row(
            "SELECT event_id, (SELECT COUNT(*) FROM events WHERE id > event_id)
             FROM rollup_watermark",
            [],
            |r| {
                Ok(Folding {
                    watermark: r.get(0)?,
                    waiting: r.get(1)?,
                })
            },
        )
        .expect("watermark");
    drop(stmt);
    drop(conn);
    // verify checks the rollups against exactly the events up to the
    // watermark: a kill inside the roller's transaction must leave both
    // as they were, or both moved.
    let copy_dir = copy.path().to_str().expect("utf-8");
    let (ok, out, err) = run_cli(&["--data-dir", copy_dir, "verify"], &[], None);
    assert!(ok, "seed {seed}: verify after a crash: {out}{err}");
    folding
}

#[test]
fn acknowledged_events_survive_sigkill_exactly_once() {
    let seed = seed();
    let _named = announce_seed(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let token = admin_ingest_token(&data);

    // The rate limit is not what this test is about.
    const UNLIMITED: [&str; 2] = ["--ingest-rate-per-token", "0"];
    let mut server = Server::start(dir.path(), &UNLIMITED);
    server.wait_ready();
    let base = Arc::new(RwLock::new(server.base_url.clone()));
    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(&base, &token, &ledger, &stop);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Kills after which the restarted server had a WAL to recover.
    let mut left_a_wal = 0;
    // Kills that found events waiting to be folded, and runs in which the
    // roller moved the watermark: the kills land while it works.
    let (mut left_a_tail, mut runs_that_folded) = (0, 0);
    let mut folding = Folding::default();
    for kill in 1..=kills() {
        // The random moment of the kill (not a wait for anything).
        std::thread::sleep(Duration::from_millis(rng.random_range(50..600)));
        if let Some((status, stderr)) = server.exited() {
            panic!(
                "seed {seed}: the server died on its own before kill {kill} ({status}): {stderr}"
            );
        }
        server.kill_hard();
        let wal = std::fs::metadata(dir.path().join("tokentally.db-wal")).map_or(0, |m| m.len());
        if wal > 0 {
            left_a_wal += 1;
        }
        let now = check(dir.path(), &ledger, seed);
        left_a_tail += usize::from(now.waiting > 0);
        runs_that_folded += usize::from(now.watermark > folding.watermark);
        folding = now;
        if kill % 10 == 0 {
            // Long runs (`just soak`) show how far they got.
            let acked = ledger.acked.lock().map(|a| a.len()).unwrap_or(0);
            eprintln!("{kill} kills survived so far, {acked} batches acknowledged");
        }
        server = Server::start(dir.path(), &UNLIMITED);
        server.wait_ready();
        if let Ok(mut url) = base.write() {
            *url = server.base_url.clone();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client
            .join()
            .unwrap_or_else(|_| panic!("seed {seed}: a client failed"));
    }
    let (status, stderr) = server.terminate();
    assert!(status.success(), "seed {seed}: {stderr}");
    check(dir.path(), &ledger, seed);
    let acked = ledger.acked.lock().map(|a| a.len()).unwrap_or(0);
    assert!(
        acked >= CLIENTS,
        "seed {seed}: the clients got work done between kills ({acked} batches)"
    );
    assert!(
        left_a_wal > 0,
        "seed {seed}: some kill left a WAL for the restarted server to recover"
    );
    assert!(
        left_a_tail > 0 && runs_that_folded > 0,
        "seed {seed}: kills landed while the roller had work ({left_a_tail} kills left \
         events to fold, {runs_that_folded} runs folded some)"
    );
    eprintln!(
        "{} kills survived ({left_a_wal} left a non-empty WAL that the next server opened \
         first, {left_a_tail} left events to fold, {runs_that_folded} runs folded), \
         {acked} batches ({} events) checked",
        kills(),
        acked * BATCH
    );
}
