//! Safe upgrades through the real binary: a database written by the
//! previous schema version is migrated by the first start, which keeps a
//! consistent copy of it as it was (`tokentally.db.pre-vN.bak`); the copy
//! opens at the old version and verifies; `tokentally restore` puts it
//! back (at the old version, until the next start migrates it again), and
//! refuses, changing nothing, a database in use or a file that fails the
//! checks.

use std::path::Path;

use rusqlite::Connection;
use tokentally::db::{self, schema_status};
use tokentally::model::UserId;
use tokentally::usage::store::NewEvent;

use crate::common::server::{Server, run_cli};

/// 2026-03-02T10:00:00Z.
const TS_MS: i64 = 1_772_445_600_000;

fn version_of(path: &Path) -> Option<i64> {
    schema_status(path)
        .expect("status")
        .expect("the file exists")
        .version
}

/// A database as the previous schema version wrote it, with a user and
/// some events (the latest migration adds tables only, so today's inserter
/// writes the previous version's events table as it was).
fn previous_version_database(dir: &Path) -> i64 {
    let path = dir.join("tokentally.db");
    let previous = db::latest_schema_version() - 1;
    db::audit_key::load_or_create(&path).expect("audit key");
    db::create_at_version(&path, i32::try_from(previous).expect("small")).expect("old database");
    let conn = Connection::open(&path).expect("open");
    conn.execute(
        "INSERT INTO users (username, role, created_at, updated_at) VALUES ('ada', 'member', 0, 0)",
        [],
    )
    .expect("user");
    let events: Vec<NewEvent> = (0..50)
        .map(|k| NewEvent {
            extras: Default::default(),
            ts_ms: TS_MS + k * 3_600_000,
            user: UserId(1),
            source: "api".into(),
            external_id: format!("old#{k}"),
            model: if k % 2 == 0 {
                "claude-sonnet-4-5"
            } else {
                "gpt-5"
            }
            .into(),
            provider: None,
            activity: None,
            project: None,
            tokens: [1_000 + k, 200 + k, 5_000 + 10 * k, 300],
            reported_cost_micros: None,
            session: None,
            machine: None,
            identity: None,
        })
        .collect();
    crate::common::store::insert_at_previous_schema(&conn, &events)
        .expect("insert at the previous version");
    drop(conn);
    assert_eq!(version_of(&path), Some(previous));
    previous
}

fn sha(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).expect("read")).to_vec()
}

#[test]
fn a_start_keeps_a_copy_before_migrating_and_restore_brings_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let db_path = dir.path().join("tokentally.db");
    let previous = previous_version_database(dir.path());
    let copy = dir
        .path()
        .join(format!("tokentally.db.pre-v{previous}.bak"));

    // The new binary starts on it: the copy first, then the migration.
    let server = Server::start(dir.path(), &[]);
    server.wait_ready();
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    assert!(copy.is_file(), "no pre-migration copy; log: {stderr}");
    assert!(
        stderr.contains("a consistent copy of it as it was is kept")
            && stderr.contains(&copy.display().to_string()),
        "the log says so: {stderr}"
    );
    assert_eq!(version_of(&db_path), Some(previous + 1));
    assert_eq!(
        version_of(&copy),
        Some(previous),
        "the copy is the old schema"
    );

    // The copy verifies (in a directory of its own, with the audit key).
    let check = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&copy, check.path().join("tokentally.db")).expect("copy");
    std::fs::copy(dir.path().join("audit.key"), check.path().join("audit.key")).expect("key");
    let check_dir = check.path().to_str().expect("utf-8");
    let (ok, out, err) = run_cli(&["--data-dir", check_dir, "verify"], &[], None);
    assert!(ok, "the copy verifies: {out}{err}");
    assert!(out.contains("agree with all 50 raw events"), "{out}");

    // A second start migrates nothing and writes no copy.
    let kept = dir.path().join("kept.bak");
    std::fs::rename(&copy, &kept).expect("rename");
    let server = Server::start(dir.path(), &[]);
    server.wait_ready();
    assert!(!copy.exists(), "no copy when nothing is migrated");
    // Restore refuses while the server holds the database, changing nothing.
    let copy_str = kept.to_str().expect("utf-8");
    let (ok, _, err) = run_cli(&["--data-dir", &data, "restore", copy_str], &[], None);
    assert!(!ok, "restore refused while the server runs");
    assert!(
        err.contains("is in use") && err.contains("tokentally.db"),
        "{err}"
    );
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    assert!(!dir.path().join("tokentally.db.before-restore.bak").exists());
    assert_eq!(version_of(&db_path), Some(previous + 1));
}

#[test]
fn restore_puts_the_old_version_back_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let db_path = dir.path().join("tokentally.db");
    let previous = previous_version_database(dir.path());
    let copy = dir
        .path()
        .join(format!("tokentally.db.pre-v{previous}.bak"));
    // A command that opens the database migrates it too, keeping the copy.
    let (ok, out, err) = run_cli(&["--data-dir", &data, "verify"], &[], None);
    assert!(ok, "{out}{err}");
    assert!(copy.is_file());
    assert_eq!(version_of(&db_path), Some(previous + 1));
    let before_bytes = sha(&db_path);

    // A file that is not a database, and one whose rollups no longer match
    // its events: both refused, nothing changed.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database at all, just some bytes").expect("write");
    let tampered = dir.path().join("tampered.db");
    std::fs::copy(&copy, &tampered).expect("copy");
    Connection::open(&tampered)
        .and_then(|c| {
            c.execute(
                "DELETE FROM events WHERE id = (SELECT MIN(id) FROM events)",
                [],
            )
        })
        .expect("tamper");
    for bad in [&garbage, &tampered] {
        let (ok, out, err) = run_cli(
            &["--data-dir", &data, "restore", bad.to_str().expect("utf-8")],
            &[],
            None,
        );
        assert!(!ok, "{} refused: {out}", bad.display());
        assert!(
            err.contains(&bad.display().to_string()),
            "the error names the file: {err}"
        );
        assert_eq!(sha(&db_path), before_bytes, "the database is unchanged");
        assert!(!dir.path().join("tokentally.db.before-restore.bak").exists());
    }
    let (_, _, err) = run_cli(
        &[
            "--data-dir",
            &data,
            "restore",
            tampered.to_str().expect("utf-8"),
        ],
        &[],
        None,
    );
    assert!(err.contains("rollups differ"), "{err}");

    // The pre-migration copy comes back, at the old version.
    let (ok, out, err) = run_cli(
        &[
            "--data-dir",
            &data,
            "restore",
            copy.to_str().expect("utf-8"),
        ],
        &[],
        None,
    );
    assert!(ok, "restore: {out}{err}");
    assert!(
        out.contains("agree with all 50 raw events"),
        "checked first: {out}"
    );
    assert_eq!(
        version_of(&db_path),
        Some(previous),
        "back at the old schema"
    );
    assert_eq!(sha(&db_path), sha(&copy), "the copy's bytes");
    let before = dir.path().join("tokentally.db.before-restore.bak");
    assert_eq!(
        version_of(&before),
        Some(previous + 1),
        "the current one kept"
    );

    // The next start migrates it again (and keeps a copy again).
    std::fs::remove_file(&copy).expect("remove");
    let server = Server::start(dir.path(), &[]);
    server.wait_ready();
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    assert_eq!(version_of(&db_path), Some(previous + 1));
    assert!(copy.is_file());
    let (ok, out, err) = run_cli(&["--data-dir", &data, "verify"], &[], None);
    assert!(ok, "{out}{err}");
}

/// A tmpfs mounted on a directory for the length of a test (root only).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` (the test says why and passes) where mounting is not allowed.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_start_without_room_for_the_copy_is_refused_and_changes_nothing() {
    let outer = tempfile::tempdir().expect("tempdir");
    let small = outer.path().join("small");
    std::fs::create_dir(&small).expect("dir");
    // 8 MiB: room for the database, not for it and the margin (16 MiB).
    let Some(_tmpfs) = Tmpfs::mount(&small, "8m") else {
        eprintln!("cannot mount a tmpfs here (not root?): the refusal is not tested");
        return;
    };
    let previous = previous_version_database(&small);
    let db_path = small.join("tokentally.db");
    let before = sha(&db_path);
    let (ok, out, err) = run_cli(
        &[
            "--data-dir",
            small.to_str().expect("utf-8"),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
        None,
    );
    assert!(!ok, "refused: {out}");
    assert!(
        err.contains("not enough free disk space")
            && err.contains(&db_path.display().to_string())
            && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(sha(&db_path), before, "the database is unchanged");
    assert_eq!(version_of(&db_path), Some(previous));
    let copies: Vec<_> = std::fs::read_dir(&small)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".bak"))
        .collect();
    assert!(copies.is_empty(), "no copy left behind: {copies:?}");
}
