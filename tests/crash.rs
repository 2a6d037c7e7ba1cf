//! Crash safety: the real binary takes NDJSON batches from several clients
//! while it is killed with SIGKILL at random moments, again and again.
//! After every kill, with the server down, the database must hold every
//! acknowledged batch, no batch in part, and no event twice; rollups must
//! agree with the raw events, the audit chain must be intact, and the
//! audit's ingest counts must equal the events stored.
//!
//! `TOKENTALLY_CRASH_KILLS` sets the number of kills (5 by default, for
//! CI; `just soak` runs many more).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use common::server::{Server, run_cli};
use rand::Rng;

use common::clients::{BATCH, CLIENTS, Ledger, admin_ingest_token, spawn_clients};

fn kills() -> usize {
    std::env::var("TOKENTALLY_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

/// Checks the database file while no server runs.
fn check(db: &Path, ledger: &Ledger, data: &str) {
    let conn = rusqlite::Connection::open(db).expect("open");
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
            "batch {batch} is whole, once"
        );
    }
    let acked = ledger.acked.lock().map(|a| a.clone()).unwrap_or_default();
    for (client, batch) in &acked {
        assert!(
            stored.contains(&format!("c{client}-b{batch}")),
            "acknowledged batch {client}/{batch} is stored"
        );
    }
    let sent = ledger.sent.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        stored.len() <= sent.len(),
        "nothing stored that was never sent"
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
        "the audit's accepted counts equal the events stored"
    );
    drop(stmt);
    drop(conn);
    let (ok, out, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(ok, "verify after a crash: {out}{err}");
}

#[test]
fn acknowledged_events_survive_sigkill_exactly_once() {
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
    let mut rng = rand::rng();
    let db = dir.path().join("tokentally.db");
    for kill in 1..=kills() {
        std::thread::sleep(Duration::from_millis(rng.random_range(50..600)));
        server.kill_hard();
        check(&db, &ledger, &data);
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
        client.join().expect("client");
    }
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    check(&db, &ledger, &data);
    let acked = ledger.acked.lock().map(|a| a.len()).unwrap_or(0);
    assert!(
        acked >= CLIENTS,
        "the clients got work done between kills ({acked} batches)"
    );
    eprintln!(
        "{} kills survived, {acked} batches ({} events) checked",
        kills(),
        acked * BATCH
    );
}
