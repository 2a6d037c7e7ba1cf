//! The database layer: migrations, refusal of unknown schemas, the
//! writer's group commit and shutdown, and backups.

use std::path::Path;

use rusqlite::Connection;
use tokentally::db::{
    self, APPLICATION_ID, Db, DbError, DbOptions, latest_schema_version, schema_status,
};

fn open(path: &Path) -> Result<Db, DbError> {
    Db::open(path, &DbOptions::default())
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("readable")
}

#[tokio::test]
async fn an_empty_database_is_migrated_to_the_latest_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/tokentally.db");
    let db = open(&path).expect("opens");
    let status = schema_status(&path).expect("status").expect("file exists");
    assert_eq!(status.version, Some(latest_schema_version()));
    assert_eq!(status.application_id, APPLICATION_ID);
    let tables: Vec<String> = db
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
            let names = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok::<_, DbError>(names)
        })
        .await
        .expect("tables");
    for table in ["users", "sessions", "setup_tokens", "events", "models"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    db.shutdown().await;
    // Opening again applies nothing and keeps the version.
    let again = open(&path).expect("reopens");
    again.shutdown().await;
    assert_eq!(
        schema_status(&path)
            .expect("status")
            .expect("exists")
            .version,
        Some(latest_schema_version())
    );
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokentally.db");
    open(&path).expect("opens").shutdown().await;
    let newer = latest_schema_version() + 1;
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (?1, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
            [newer],
        )
        .expect("future migration recorded");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
    }
    let before = file_bytes(&path);
    let error = open(&path).err().expect("a newer schema is refused");
    assert!(
        matches!(error, DbError::NewerSchema { found, supported, .. }
            if found == newer && supported == latest_schema_version()),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("newer tokentally"), "{message}");
    assert!(message.contains("not modified"), "{message}");
    assert_eq!(file_bytes(&path), before, "the file was not touched");
}

#[tokio::test]
async fn another_programs_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("other.db");
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.execute_batch("PRAGMA application_id = 42; CREATE TABLE t (x);")
            .expect("foreign db");
    }
    let before = file_bytes(&path);
    let error = open(&path).err().expect("refused");
    assert!(
        matches!(error, DbError::ForeignDatabase { found: 42, .. }),
        "{error}"
    );
    assert_eq!(file_bytes(&path), before);
}

fn insert_model(conn: &Connection, name: &str) -> Result<i64, DbError> {
    conn.execute("INSERT INTO models (name) VALUES (?1)", [name])?;
    Ok(conn.last_insert_rowid())
}

#[derive(Debug)]
enum JobError {
    Refused,
    Db(DbError),
}

impl From<DbError> for JobError {
    fn from(e: DbError) -> Self {
        JobError::Db(e)
    }
}

#[tokio::test]
async fn concurrent_writes_commit_together_and_a_failing_one_undoes_only_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir.path().join("t.db")).expect("opens");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.write(move |conn| {
                insert_model(conn, &format!("model-{i}"))?;
                if i % 10 == 0 {
                    // Written, then refused: the savepoint must undo it.
                    return Err(JobError::Refused);
                }
                Ok(i)
            })
            .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => ok += 1,
            Err(JobError::Refused) => {}
            Err(JobError::Db(e)) => panic!("unexpected database error: {e}"),
        }
    }
    assert_eq!(ok, 180);
    let (stored, refused_stored): (i64, i64) = db
        .read(|conn| {
            let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
            Ok::<_, DbError>((
                count("SELECT COUNT(*) FROM models")?,
                count(
                    "SELECT COUNT(*) FROM models WHERE CAST(substr(name, 7) AS INTEGER) % 10 = 0",
                )?,
            ))
        })
        .await
        .expect("counts");
    assert_eq!(stored, 180);
    assert_eq!(refused_stored, 0);
    db.shutdown().await;
}

/// Jobs in one batch share one transaction: when its COMMIT fails, every
/// job of the batch is answered with that failure (none with success),
/// none of their writes remain, and the writer goes on with the next batch.
/// The batch is made by holding the writer in a job until the others are
/// queued; the COMMIT fails on a foreign key violation one job defers.
#[tokio::test] // one thread: the jobs are queued before the test goes on
async fn a_batch_whose_commit_fails_fails_every_job_and_leaves_nothing() {
    use std::sync::atomic::Ordering;

    const JOBS: usize = 6;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir.path().join("t.db")).expect("opens");
    let (running, gate_runs) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let gate = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |conn| {
                let _ = running.send(());
                released.recv().expect("released");
                insert_model(conn, "gate")
            })
            .await
        }
    });
    gate_runs.await.expect("the gate job runs");
    let stats = db.writer_stats();
    let batches_before = stats.batches.load(Ordering::Relaxed);
    let jobs: Vec<_> = (0..JOBS)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| {
                    insert_model(conn, &format!("batched-{i}"))?;
                    if i == JOBS / 2 {
                        // A session of a user that does not exist, checked
                        // only at COMMIT.
                        conn.execute_batch(
                            "PRAGMA defer_foreign_keys = ON;
                             INSERT INTO sessions (id_hash, user_id, data, expires_at)
                             VALUES ('orphan', 424242, '{}', 0);",
                        )?;
                    }
                    Ok::<_, DbError>(i)
                })
                .await
            })
        })
        .collect();
    // The spawned tasks run (and queue their job) whenever this one yields.
    while stats.queued.load(Ordering::Relaxed) < JOBS as i64 {
        tokio::task::yield_now().await;
    }
    release.send(()).expect("the gate waits");
    assert!(
        gate.await.expect("join").is_ok(),
        "the gate's own batch commits"
    );
    for (i, job) in jobs.into_iter().enumerate() {
        match job.await.expect("join") {
            Err(DbError::Commit(reason)) => {
                assert!(
                    reason.to_string().contains("FOREIGN KEY"),
                    "job {i}: {reason}"
                );
            }
            other => panic!("job {i} of the failed batch was answered {other:?}"),
        }
    }
    assert_eq!(
        stats.batches.load(Ordering::Relaxed),
        batches_before + 1,
        "the jobs ran as one batch"
    );
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            db.read(move |conn| Ok::<_, DbError>(conn.query_row(sql, [], |r| r.get::<_, i64>(0))?))
                .await
                .expect("count")
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM models WHERE name LIKE 'batched-%'").await,
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM models WHERE name = 'gate'").await,
        1
    );
    // The next batch works, and checks foreign keys at once again.
    let after = db.write(|conn| insert_model(conn, "after")).await;
    assert!(after.is_ok(), "{after:?}");
    let orphan = db
        .write(|conn| {
            conn.execute_batch(
                "INSERT INTO sessions (id_hash, user_id, data, expires_at)
                 VALUES ('orphan', 424242, '{}', 0);",
            )?;
            Ok::<_, DbError>(())
        })
        .await;
    assert!(
        orphan
            .as_ref()
            .is_err_and(|e| e.to_string().contains("FOREIGN KEY")),
        "{orphan:?}"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM models WHERE name = 'after'").await,
        1
    );
    db.shutdown().await;
}

#[tokio::test]
async fn a_panicking_job_is_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir.path().join("t.db")).expect("opens");
    let panicked = db
        .write(|conn| -> Result<(), DbError> {
            insert_model(conn, "half-written")?;
            panic!("a bug in a write job");
        })
        .await;
    assert!(matches!(panicked, Err(DbError::TaskPanicked)));
    let count: i64 = db
        .write(|conn| {
            insert_model(conn, "after")?;
            Ok::<_, DbError>(conn.query_row("SELECT COUNT(*) FROM models", [], |r| r.get(0))?)
        })
        .await
        .expect("the writer still works");
    assert_eq!(count, 1, "the panicking job's row was rolled back");
    db.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_queued_writes_checkpoints_and_refuses_later_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let db = open(&path).expect("opens");
    let queued: Vec<_> = (0..50)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| insert_model(conn, &format!("m{i}")))
                    .await
            })
        })
        .collect();
    for task in queued {
        task.await.expect("join").expect("written before shutdown");
    }
    db.shutdown().await;
    let late = db.write(|conn| insert_model(conn, "late")).await;
    assert!(matches!(late, Err(DbError::WriterGone)));
    let wal = dir.path().join("t.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the WAL was checkpointed into the main file");
    let conn = Connection::open(&path).expect("raw");
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM models", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 50);
}

#[tokio::test]
async fn backup_copies_a_live_database_consistently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let db = open(&path).expect("opens");
    db.write(|conn| insert_model(conn, "in the backup"))
        .await
        .expect("write");
    // The writer is alive and holds the WAL; the backup reads a snapshot.
    let target = dir.path().join("copy.db");
    db::backup(&path, &target).expect("backup");
    db.write(|conn| insert_model(conn, "after the backup"))
        .await
        .expect("write");
    db.shutdown().await;
    let copy = Connection::open(&target).expect("copy opens");
    let names: Vec<String> = copy
        .prepare("SELECT name FROM models")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("names");
    assert_eq!(names, vec!["in the backup".to_owned()]);
    let status = schema_status(&target).expect("status").expect("exists");
    assert_eq!(status.version, Some(latest_schema_version()));
}

#[tokio::test]
async fn the_block_level_is_backfilled_from_hours_when_an_older_database_upgrades() {
    use tokentally::usage::rollup;
    use tokentally::usage::rollup::Level;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokentally.db");
    // What tokentally wrote before the block level (schema 3), with usage.
    db::create_at_version(&path, 3).expect("a version 3 database");
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute(
            "INSERT INTO users (username, role, created_at, updated_at) VALUES ('ada', 'member', 0, 0)",
            [],
        )
        .expect("user");
        let levels = [Level::Month, Level::Day, Level::Hour, Level::Quarter];
        insert_events_at_v3(&conn, &levels);
    }
    assert_eq!(
        schema_status(&path)
            .expect("status")
            .expect("exists")
            .version,
        Some(3)
    );

    let db = open(&path).expect("upgrades");
    let (blocks, mismatch) = db
        .read(|conn| {
            let blocks: i64 =
                conn.query_row("SELECT COUNT(*) FROM rollup_block", [], |r| r.get(0))?;
            Ok::<_, DbError>((blocks, rollup::verify(conn)?))
        })
        .await
        .expect("read");
    db.shutdown().await;
    assert!(blocks > 0, "blocks were backfilled");
    assert!(
        mismatch.is_none(),
        "{}",
        mismatch.map(|m| m.to_string()).unwrap_or_default()
    );
}

/// Events and the rollups a schema-3 tokentally kept for them, written
/// with plain SQL as that version's store did (every level but blocks).
fn insert_events_at_v3(conn: &Connection, levels: &[tokentally::usage::rollup::Level]) {
    conn.execute_batch(
        "INSERT INTO models (name) VALUES ('gpt-5'), ('llama');
         INSERT INTO sources (name) VALUES ('api');",
    )
    .expect("dimensions");
    let start = 1_780_000_000_000i64;
    for i in 0..500i64 {
        conn.execute(
            "INSERT INTO events (ts_ms, user_id, source_id, external_id, model_id, input_tokens,
                 output_tokens, cache_read_tokens, cache_write_tokens, cost_micros, cost_origin)
             VALUES (?1, 1, 1, ?2, ?3, ?4, ?5, 0, 1, 0, 0)",
            rusqlite::params![start + i * 1_234_567, format!("e{i}"), 1 + i % 2, i, 2 * i],
        )
        .expect("event");
    }
    // Today's rebuild writes V19's reported cost too: the column is there
    // for the rebuild only (these events report none), so the tables are
    // as schema 3 had them again.
    for level in levels {
        let table = level.table();
        let sql = tokentally::usage::rollup::rebuild_sql(*level);
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT 0;
             {sql}
             ALTER TABLE {table} DROP COLUMN reported_cost_micros;"
        ))
        .expect("rollup rebuild");
    }
}
