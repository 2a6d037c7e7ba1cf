//! Backup under load: `tokentally backup` while clients keep sending
//! events gives a consistent copy (whole batches only, rollups and audit
//! chain verified), and the documented restore (the copy as the data
//! directory's database) brings it back to serve.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::common;
use crate::common::clients::{BATCH, Ledger, admin_ingest_token, spawn_clients};
use crate::common::server::{Server, run_cli};

#[test]
fn a_backup_taken_during_ingest_is_consistent_and_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let token = admin_ingest_token(&data);
    let server = Server::start(dir.path(), &["--ingest-rate-per-token", "0"]);
    server.wait_ready();
    let base = Arc::new(RwLock::new(server.base_url.clone()));
    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(&base, &token, &ledger, &stop);

    // Back up twice while the clients write.
    let copies = dir.path().join("copies");
    std::fs::create_dir(&copies).expect("dir");
    for n in 0..2 {
        std::thread::sleep(Duration::from_millis(400));
        let copy = copies.join(format!("backup-{n}.db"));
        let (ok, out, err) = run_cli(
            &["--data-dir", &data, "backup", copy.to_str().expect("utf-8")],
            &[],
            None,
        );
        assert!(ok, "backup {n}: {err}");
        assert!(out.contains("backup written"), "{out}");
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client");
    }
    let acked = ledger.acked.lock().map(|a| a.len()).unwrap_or(0);
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    assert!(acked > 0);

    // Restore the last copy the documented way and check it.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).expect("dir");
    std::fs::copy(copies.join("backup-1.db"), restored.join("tokentally.db")).expect("restore");
    std::fs::copy(
        copies.join("backup-1.db.audit-key"),
        restored.join("audit.key"),
    )
    .expect("restore the audit key");
    let restored_dir = restored.to_str().expect("utf-8");
    let (ok, out, err) = run_cli(&["--data-dir", restored_dir, "verify"], &[], None);
    assert!(ok, "the copy verifies: {out}{err}");
    let conn = rusqlite::Connection::open(restored.join("tokentally.db")).expect("open");
    let partial: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM (SELECT substr(external_id, 1, instr(external_id, '-e') - 1) b
             FROM events GROUP BY b HAVING COUNT(*) != ?1)",
            [BATCH as i64],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(partial, 0, "the copy holds whole batches only");
    let in_copy: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert!(
        in_copy > 0 && in_copy <= (acked * BATCH) as i64,
        "{in_copy} events of {acked} batches"
    );
    drop(conn);
    let server = Server::start(&restored, &[]);
    server.wait_ready();
    let health = common::server::agent()
        .get(&server.url("/readyz"))
        .call()
        .expect("readyz");
    assert_eq!(health.status(), 200);
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
}
