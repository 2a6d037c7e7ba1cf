//! The upgrade to the catalogue (V17): the seven prices V3 seeded give way
//! to it unless an admin changed them, and the events they priced are
//! re-priced from it when it is first loaded, with every total accounted
//! for: unchanged where the catalogue's price is the seed's, moved by
//! exactly what the oracle says where it is not (cache writes of OpenAI
//! and Google models, which LiteLLM bills as input; Gemini 2.5 Pro's
//! cache reads).

use std::collections::BTreeMap;

use rusqlite::Connection;
use tokentally::db::{self, Db, DbOptions};
use tokentally::model::UserId;
use tokentally::usage::store::NewEvent;
use tokentally::usage::{price_sync, rollup};

use crate::common::catalogue::Oracle;

/// 2026-03-02T10:00:00Z.
const TS_MS: i64 = 1_772_445_600_000;

/// The seeded models, what a version 16 database priced them with (the
/// seed), and the catalogue entry that prices them after the upgrade.
const SEEDED: [(&str, &str); 8] = [
    ("claude-opus-4-1", "anthropic.claude-opus-4-1-20250805-v1:0"),
    ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
    ("claude-haiku-4-5", "claude-haiku-4-5"),
    ("gpt-5", "gpt-5"),
    ("gpt-5-mini", "gpt-5-mini"),
    ("gpt-4.1", "gpt-4.1"),
    ("gemini-2.5-pro", "gemini-2.5-pro"),
];

fn per_event(conn: &Connection) -> BTreeMap<String, (String, i64, i64)> {
    let mut stmt = conn
        .prepare(
            "SELECT e.external_id, m.name, e.cost_micros, e.cost_origin
             FROM events e JOIN models m ON m.id = e.model_id",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn totals_by_model(events: &BTreeMap<String, (String, i64, i64)>) -> BTreeMap<String, i64> {
    let mut totals = BTreeMap::new();
    for (model, cost, _) in events.values() {
        *totals.entry(model.clone()).or_default() += cost;
    }
    totals
}

#[test]
fn the_seeded_prices_give_way_to_the_catalogue_and_every_total_is_accounted_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokentally.db");
    db::audit_key::load_or_create(&path).expect("audit key");
    db::create_at_version(&path, 16).expect("a version 16 database");
    let oracle = Oracle::bundled();
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute(
            "INSERT INTO users (username, role, created_at, updated_at) VALUES ('ada', 'member', 0, 0)",
            [],
        )
        .expect("user");
        // An admin set gpt-5's price again (same amounts): it is theirs now.
        conn.execute(
            "UPDATE prices SET created_at = 1767225600 WHERE model = 'gpt-5'",
            [],
        )
        .expect("touch");
        let events: Vec<NewEvent> = SEEDED
            .iter()
            .enumerate()
            .flat_map(|(i, (model, _))| {
                (0..4).map(move |n| {
                    let k = (i * 4 + n) as i64;
                    NewEvent {
                        extras: Default::default(),
                        ts_ms: TS_MS + k * 60_000,
                        user: UserId(1),
                        source: "api".into(),
                        external_id: format!("{model}#{n}"),
                        model: (*model).into(),
                        provider: None,
                        activity: None,
                        project: None,
                        tokens: [
                            1_000 + 37 * k,
                            500 + 11 * k,
                            20_000 + 1_234 * k,
                            3_000 + 101 * k,
                        ],
                        reported_cost_micros: (n == 3).then_some(777),
                        session: None,
                        machine: None,
                        identity: None,
                    }
                })
            })
            .collect();
        // Priced as version 16 priced them: from the seeded rows. Today's
        // inserter also writes V18's and V19's columns: they are added for
        // the insert and dropped after, so the file is a version 16 file
        // again (and V19 must fill the reported costs back in: `verify`
        // below checks them against the events).
        const V18: [&str; 3] = [
            "cache_write_1h_tokens",
            "web_search_requests",
            "one_request",
        ];
        for column in V18 {
            conn.execute_batch(&format!(
                "ALTER TABLE events ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
            ))
            .expect("add");
        }
        for level in rollup::Level::ALL {
            conn.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT 0",
                level.table()
            ))
            .expect("add");
        }
        crate::common::store::insert_at_previous_schema(&conn, &events)
            .expect("insert at version 16");
        for column in V18 {
            conn.execute_batch(&format!("ALTER TABLE events DROP COLUMN {column}"))
                .expect("drop");
        }
        for level in rollup::Level::ALL {
            conn.execute_batch(&format!(
                "ALTER TABLE {} DROP COLUMN reported_cost_micros",
                level.table()
            ))
            .expect("drop");
        }
    }
    let before = per_event(&Connection::open(&path).expect("open"));
    assert!(
        before.values().all(|(_, _, origin)| *origin != 0),
        "all seeded models priced"
    );

    let db = Db::open_with(&path, &DbOptions::default(), &price_sync::prepare).expect("upgrade");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (after, mismatch, admin_rows, loads) = runtime
        .block_on(db.read(|conn| {
            let admin_rows: Vec<String> = conn
                .prepare("SELECT model FROM prices")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let loads: i64 = conn.query_row(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'price.sync'",
                [],
                |r| r.get(0),
            )?;
            Ok::<_, db::DbError>((per_event(conn), rollup::verify(conn)?, admin_rows, loads))
        }))
        .expect("read");
    assert_eq!(admin_rows, ["gpt-5"], "only the row an admin touched stays");
    assert!(
        mismatch.is_none(),
        "rollups equal the raw events: {mismatch:?}"
    );
    assert_eq!(loads, 1);

    // Every event: reported costs as they were, gpt-5 at the admin's
    // price as it was, the others at the catalogue's entry.
    let mut expected_totals = BTreeMap::new();
    for (id, (model, cost, origin)) in &after {
        let (_, old_cost, old_origin) = &before[id];
        let entry = SEEDED.iter().find(|(m, _)| m == model).expect("seeded").1;
        let expected = if *old_origin == 2 || model == "gpt-5" {
            (*old_cost, *old_origin)
        } else {
            let tokens = tokens_of(&path, id);
            (oracle.cost(entry, tokens), 3)
        };
        assert_eq!((*cost, *origin), expected, "{id}");
        *expected_totals.entry(model.clone()).or_insert(0) += expected.0;
    }
    let (old, new) = (totals_by_model(&before), totals_by_model(&after));
    assert_eq!(new, expected_totals);
    // Where the catalogue's price is the seed's, the totals did not move.
    for model in [
        "claude-opus-4-1",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5",
        "gpt-5",
    ] {
        assert_eq!(new[model], old[model], "{model}");
    }
    // Where it is not, they moved: cache writes (priced 0 by the seeds)
    // cost the input price, Gemini 2.5 Pro's cache reads $0.125, not $0.31.
    for model in ["gpt-5-mini", "gpt-4.1", "gemini-2.5-pro"] {
        assert_ne!(new[model], old[model], "{model}");
    }
    runtime.block_on(db.shutdown());
}

fn tokens_of(path: &std::path::Path, id: &str) -> [i64; 4] {
    let conn = Connection::open(path).expect("open");
    conn.query_row(
        "SELECT input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
         FROM events WHERE external_id = ?1",
        [id],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
    )
    .expect("tokens")
}
