//! What `tokentally verify` costs, part by part, in process on a database
//! file that is only read: the old parts (counting the events, the range
//! checks of `usage::repair::find`, the rollups against the raw events by
//! the SQL `GROUP BY` oracle with `--old`), the new streaming check that
//! replaces all three (on one connection and on two), and the audit chain
//! and head that both run. Then the whole command, if a
//! binary is given, through `/usr/bin/time` for its peak RSS (it migrates
//! what it opens: give it a copy).
//!
//! Usage: `cargo bench --bench verify -- [--old] [--cli BINARY] DB...`
//! (`just bench-verify`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};
use tokentally::audit;
use tokentally::usage::{repair, rollup};

fn main() {
    let mut old = false;
    let mut cli = None;
    let mut dbs = Vec::new();
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--old" => old = true,
            "--cli" => cli = args.next().map(PathBuf::from),
            _ => dbs.push(PathBuf::from(arg)),
        }
    }
    for db in dbs {
        in_process(&db, old);
        if let Some(binary) = &cli {
            whole_command(binary, &db);
        }
    }
}

fn open(db: &Path) -> Connection {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).expect("open the database");
    if let Some(key) = audit::key::load(db).expect("audit key") {
        audit::key::install(&conn, &key).expect("install the key");
    }
    conn
}

/// Times `f`, printing `what` with the seconds it took.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!("  {what}: {:.2} s", start.elapsed().as_secs_f64());
    out
}

fn in_process(db: &Path, old: bool) {
    let conn = open(db);
    println!("{}:", db.display());
    let events: i64 = timed("old: COUNT(*) FROM events", || {
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .expect("count")
    });
    let findings = timed("old: range checks (repair::find)", || {
        repair::find(&conn).expect("find")
    });
    assert!(findings.is_clean(), "values out of range: {findings:?}");
    if old {
        let mismatch = timed("old: rollups (SQL GROUP BY ... EXCEPT)", || {
            rollup::verify_sql(&conn).expect("verify_sql")
        });
        assert_eq!(mismatch, None);
    }
    let mismatch = timed("new: rollups and range checks, one connection", || {
        rollup::verify(&conn).expect("verify")
    });
    assert_eq!(mismatch, None);
    let checked = timed("new: rollups and range checks, two connections", || {
        rollup::check(&conn, Some(open(db))).expect("check")
    });
    assert_eq!(checked.mismatch, None);
    assert_eq!((checked.events, checked.cells_out_of_range), (events, 0));
    let chain = timed("both: audit chain", || {
        audit::chain::verify(&conn).expect("chain")
    });
    assert!(chain.broken.is_none());
    if let Some(key) = audit::key::load(db).expect("audit key") {
        timed("both: audit head", || {
            audit::head::check(&conn, db, &key).expect("head")
        });
    }
}

/// `tokentally verify` on the folder of `db`, under `/usr/bin/time`.
fn whole_command(binary: &Path, db: &Path) {
    let dir = db.parent().expect("a folder");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%e s elapsed, %M KB peak RSS"])
        .arg(binary)
        .arg("--data-dir")
        .arg(dir)
        .arg("verify")
        .output()
        .expect("run /usr/bin/time");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "  tokentally verify (whole command): {}",
        stderr.lines().last().unwrap_or("")
    );
}
