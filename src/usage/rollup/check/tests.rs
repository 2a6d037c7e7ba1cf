//! The streaming check against the SQL oracle on random databases, clean
//! and with one rollup row corrupted (a metric changed, a row missing, a
//! row extra) at every level.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OpenFlags};

use super::{compare, scan, verify, verify_parallel, verify_sql};
use crate::usage::rollup::{
    CostOrigin, Cuboid, Delta, DimValues, Level, apply, event_metrics, month_of_day,
};

/// A migrated database in `dir` (a file: the parallel check needs a
/// second connection to it).
fn file_db(dir: &std::path::Path) -> Connection {
    let mut conn = Connection::open(dir.join("t.db")).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    // The key first: migration V11 hashes with it.
    crate::db::audit_key::install(&conn, &crate::db::audit_key::AuditKey::for_tests())
        .expect("key");
    crate::db::migrate::apply(&mut conn).expect("migrations");
    // Events name ids no table holds: the check reads ids, not names.
    conn.pragma_update(None, "foreign_keys", false)
        .expect("foreign keys");
    conn
}

fn maybe(rng: &mut ChaCha8Rng, max: i64) -> Option<i64> {
    rng.random_bool(0.7).then(|| rng.random_range(1..=max))
}

/// `n` random events over a few days around a month's end, written with
/// their rollups by the real write path.
fn fill(conn: &Connection, rng: &mut ChaCha8Rng, n: usize) {
    // 2026-01-29T00:00Z, five days on: across a month and a year's edge
    // of the quarter hours, hours and blocks.
    let start = 20_482 * 86_400_000;
    let mut deltas = Vec::new();
    for i in 0..n {
        let ts_ms = start + rng.random_range(0..5 * 86_400_000);
        let dims = DimValues {
            user: rng.random_range(1..=4),
            model: rng.random_range(1..=3),
            activity: maybe(rng, 3).unwrap_or(0),
            project: maybe(rng, 2).unwrap_or(0),
            source: rng.random_range(1..=2),
            provider: maybe(rng, 2).unwrap_or(0),
        };
        let tokens = [0; 4].map(|_| rng.random_range(0..1_000));
        let cost = rng.random_range(0..50_000);
        let origin = rng.random_range(0..=3);
        let none = |v: i64| (v != 0).then_some(v);
        conn.execute(
            "INSERT INTO events (ts_ms, user_id, source_id, external_id, model_id, provider_id,
                 activity_id, project_id, input_tokens, output_tokens, cache_read_tokens,
                 cache_write_tokens, cost_micros, cost_origin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            rusqlite::params![
                ts_ms,
                dims.user,
                dims.source,
                format!("e{i}"),
                dims.model,
                none(dims.provider),
                none(dims.activity),
                none(dims.project),
                tokens[0],
                tokens[1],
                tokens[2],
                tokens[3],
                cost,
                origin
            ],
        )
        .expect("event");
        let metrics = event_metrics(&tokens, cost, CostOrigin::from_column(origin));
        deltas.push(Delta {
            ts_ms,
            dims,
            metrics,
        });
    }
    apply(conn, &deltas).expect("rollups");
    crate::usage::rollup::mark_all_folded(conn).expect("watermark");
}

#[derive(Debug, Clone, Copy)]
enum Corruption {
    Metric,
    Missing,
    Extra,
}

/// Corrupts one random row of `level`'s table; false if it has none.
fn corrupt(conn: &Connection, rng: &mut ChaCha8Rng, level: Level, how: Corruption) -> bool {
    let table = level.table();
    let rows: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count");
    if rows == 0 {
        return false;
    }
    let keys = key_columns(level);
    let pick = format!(
        "({keys}) = (SELECT {keys} FROM {table} LIMIT 1 OFFSET {})",
        rng.random_range(0..rows)
    );
    let sql = match how {
        Corruption::Metric => {
            let column = [
                "calls",
                "input_tokens",
                "cost_micros",
                "reported_cost_micros",
            ][rng.random_range(0..4)];
            format!("UPDATE {table} SET {column} = {column} + 1 WHERE {pick}")
        }
        Corruption::Missing => format!("DELETE FROM {table} WHERE {pick}"),
        // A copy of a row, a thousand periods later: a key no event gives.
        Corruption::Extra => format!(
            "CREATE TEMP TABLE extra AS SELECT * FROM {table} WHERE {pick};
             UPDATE temp.extra SET {period} = {period} + 1000;
             INSERT INTO {table} SELECT * FROM temp.extra;
             DROP TABLE temp.extra;",
            period = level.period_column(),
        ),
    };
    conn.execute_batch(&sql).expect("corrupt");
    true
}

fn key_columns(level: Level) -> String {
    let slot = if level.is_within_day() { ", slot" } else { "" };
    format!(
        "cuboid, {}, user_id, model_id, activity_id, project_id, source_id, provider_id{slot}",
        level.period_column()
    )
}

/// All three checks give the same answer; returns it.
fn agreed(conn: &Connection, dir: &std::path::Path) -> Option<super::Mismatch> {
    let oracle = verify_sql(conn).expect("verify_sql");
    assert_eq!(
        verify(conn).expect("verify"),
        oracle,
        "verify against the oracle"
    );
    let second = Connection::open_with_flags(dir.join("t.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("second connection");
    let parallel = verify_parallel(conn, second).expect("verify_parallel");
    assert_eq!(parallel, oracle, "verify_parallel against the oracle");
    oracle
}

#[test]
fn streaming_check_agrees_with_the_sql_oracle() {
    let cases: u64 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(8);
    for seed in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = file_db(dir.path());
        let n = [0, 1, 40, 400][seed as usize % 4];
        fill(&conn, &mut rng, n);
        assert_eq!(agreed(&conn, dir.path()), None, "seed {seed}: clean");
        for level in Level::ALL {
            for how in [Corruption::Metric, Corruption::Missing, Corruption::Extra] {
                conn.execute_batch("SAVEPOINT corrupt").expect("savepoint");
                let corrupted = corrupt(&conn, &mut rng, level, how);
                // Committed, so that the second connection sees it too.
                conn.execute_batch("RELEASE corrupt").expect("release");
                let found = agreed(&conn, dir.path());
                assert_eq!(found.is_some(), corrupted, "seed {seed}: {level:?} {how:?}");
                if let Some(mismatch) = found {
                    assert_eq!(mismatch.table, level.table(), "seed {seed}: {how:?}");
                }
                // Back to the clean rollups for the next corruption.
                rebuild(&conn);
            }
        }
    }
}

fn rebuild(conn: &Connection) {
    for level in Level::ALL {
        conn.execute(&format!("DELETE FROM {}", level.table()), [])
            .expect("clear");
        conn.execute_batch(&super::rebuild_sql(level))
            .expect("rebuild");
    }
}

#[test]
fn months_agree_with_the_closed_form() {
    for day in (0..200_000).step_by(3) {
        assert_eq!(compare::month_of_day(day), month_of_day(day), "day {day}");
    }
}

#[test]
fn every_grouping_is_summed_at_a_width_that_divides_its_levels() {
    for plan in scan::Plan::all() {
        for level in scan::kept_levels(plan.cuboid) {
            let width = scan::slot_ms(level).unwrap_or(scan::MS_PER_DAY);
            assert_eq!(width % plan.granule_ms, 0, "{:?} {level:?}", plan.cuboid);
        }
        assert!(Cuboid::ALL.contains(&plan.cuboid));
    }
}
