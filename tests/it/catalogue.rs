//! The price catalogue in the store: an event priced from it costs what
//! LiteLLM's numbers say (the oracle of `common::catalogue`, exact decimal
//! arithmetic on the JSON text), with origin "catalogue"; an admin's price
//! beats it and gives back to it; reported costs stay; a reported 0 for a
//! call with tokens is no report. Raw rows and rollups agree after every
//! step.

use std::collections::BTreeMap;

use crate::common::catalogue::Oracle;
use crate::common::store::Store;
use tokentally::db::DbError;
use tokentally::usage::prices::Price;
use tokentally::usage::store::NewEvent;
use tokentally::usage::{price_sync, reprice, rollup};

/// 2026-01-05T09:00:00Z, a Monday.
const START_MS: i64 = 1_767_603_600_000;
const WEEK_MS: i64 = 7 * 86_400_000;
/// 2026-04-01T00:00:00Z.
const APRIL_MS: i64 = 1_775_001_600_000;

pub fn event(store: &Store, id: &str, model: &str, ts_ms: i64, tokens: [i64; 4]) -> NewEvent {
    NewEvent {
        extras: Default::default(),
        ts_ms,
        user: store.users[0],
        source: "api".into(),
        external_id: id.into(),
        model: model.into(),
        provider: None,
        activity: None,
        project: None,
        tokens,
        reported_cost_micros: None,
        session: None,
        machine: None,
        identity: None,
    }
}

/// Every event's (cost, origin), by external id, straight from the rows.
pub fn raw(store: &Store) -> BTreeMap<String, (i64, i64)> {
    store.read(|conn| {
        let mut stmt = conn.prepare("SELECT external_id, cost_micros, cost_origin FROM events")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    })
}

pub fn assert_rollups_exact(store: &Store) {
    let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
    assert!(mismatch.is_none(), "{mismatch:?}");
}

/// Tokens of the `i`th event: every kind, different each time.
fn tokens(i: i64) -> [i64; 4] {
    [
        12_345 + 1_001 * i,
        6_789 + 77 * i,
        101_112 + 3_003 * i,
        13_141 + 501 * i,
    ]
}

#[test]
fn catalogue_priced_events_cost_what_the_entry_says() {
    let store = Store::new(&["ada"]);
    let oracle = Oracle::bundled();
    // What producers send, and the entry that must price it.
    let table = [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
        ("openrouter/anthropic/claude-opus-4.6", "claude-opus-4-6"),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "claude-opus-4-6@default",
            "vertex_ai/claude-opus-4-6@default",
        ),
        (
            "claude-opus-4-1-20250805",
            "anthropic.claude-opus-4-1-20250805-v1:0",
        ),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("openai/gpt-5-mini", "gpt-5-mini"),
        ("gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
    ];
    let mut events = Vec::new();
    let mut expected = BTreeMap::new();
    for (i, (model, entry)) in table.iter().enumerate() {
        for n in 0..3 {
            let k = (i * 3 + n) as i64;
            let id = format!("e{k}");
            events.push(event(&store, &id, model, START_MS + k * WEEK_MS, tokens(k)));
            expected.insert(id, (oracle.cost(entry, tokens(k)), 3));
        }
    }
    events.push(event(&store, "local", "llama-local", START_MS, tokens(1)));
    expected.insert("local".into(), (0, 0));
    store.insert(events, 2);
    assert_eq!(raw(&store), expected);
    assert_rollups_exact(&store);
}

#[test]
fn an_admin_price_beats_the_catalogue_and_gives_back_to_it() {
    let store = Store::new(&["ada"]);
    let oracle = Oracle::bundled();
    let models = ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929"];
    let events: Vec<NewEvent> = (0..20)
        .map(|k| {
            let model = models[(k % 2) as usize];
            event(
                &store,
                &format!("e{k}"),
                model,
                START_MS + k * WEEK_MS,
                tokens(k),
            )
        })
        .collect();
    store.insert(events.clone(), 1);
    let catalogue_cost = |e: &NewEvent| (oracle.cost(e.model.as_str(), e.tokens), 3);
    let all_catalogue: BTreeMap<_, _> = events
        .iter()
        .map(|e| (e.external_id.clone(), catalogue_cost(e)))
        .collect();
    assert_eq!(raw(&store), all_catalogue);

    // The admin's price for the base model, from April, covers its dated id
    // too; the events before April keep the catalogue's.
    let admin = Price {
        model: "claude-sonnet-4-5".into(),
        provider: String::new(),
        effective_from_ms: APRIL_MS,
        per_mtok: [1_000_000, 2_000_000, 0, 0],
    };
    let outcome = store.write(move |conn| reprice::set(conn, &admin, 0));
    let after_april = events.iter().filter(|e| e.ts_ms >= APRIL_MS).count();
    assert_eq!(outcome.repriced, after_april);
    let expected: BTreeMap<_, _> = events
        .iter()
        .map(|e| {
            // $1 and $2 per million tokens: a micro-unit per input token
            // and two per output token.
            let cost = if e.ts_ms >= APRIL_MS {
                (e.tokens[0] + 2 * e.tokens[1], 1)
            } else {
                catalogue_cost(e)
            };
            (e.external_id.clone(), cost)
        })
        .collect();
    assert_eq!(raw(&store), expected);
    assert_rollups_exact(&store);

    // Removed, it gives the events back to the catalogue.
    let removed = store.write(|conn| reprice::remove(conn, "claude-sonnet-4-5", "", APRIL_MS));
    assert_eq!(removed.map(|o| o.repriced), Some(after_april));
    assert_eq!(raw(&store), all_catalogue);
    assert_rollups_exact(&store);
}

#[test]
fn reported_costs_stay_and_a_reported_zero_with_tokens_is_no_report() {
    let store = Store::new(&["ada"]);
    let oracle = Oracle::bundled();
    let model = "claude-haiku-4-5";
    let mut reported = event(&store, "reported", model, START_MS, tokens(1));
    reported.reported_cost_micros = Some(42);
    let mut zero = event(&store, "zero-with-tokens", model, START_MS, tokens(2));
    zero.reported_cost_micros = Some(0);
    let mut empty = event(&store, "zero-without-tokens", model, START_MS, [0; 4]);
    empty.reported_cost_micros = Some(0);
    let events = vec![reported, zero.clone(), empty];
    store.insert(events, 1);
    let expected = BTreeMap::from([
        ("reported".to_owned(), (42, 2)),
        (
            "zero-with-tokens".to_owned(),
            (oracle.cost(model, tokens(2)), 3),
        ),
        ("zero-without-tokens".to_owned(), (0, 2)),
    ]);
    assert_eq!(raw(&store), expected);
    // Sent again, the zero is the same call, not a conflicting one.
    let again =
        store.runtime.block_on(store.db.write(move |conn| {
            tokentally::usage::store::Inserter::new(conn)?.insert(conn, &[zero])
        }));
    let again = again.expect("insert");
    assert_eq!((again.duplicates, again.conflicts), (1, 0));
    // An admin's price re-prices the computed cost, never the reported ones.
    let admin = Price {
        model: model.into(),
        provider: String::new(),
        effective_from_ms: 0,
        per_mtok: [1_000_000, 0, 0, 0],
    };
    let outcome = store.write(move |conn| reprice::set(conn, &admin, 0));
    assert_eq!(outcome.repriced, 1);
    let mut expected = expected;
    expected.insert("zero-with-tokens".into(), (tokens(2)[0], 1));
    assert_eq!(raw(&store), expected);
    assert_rollups_exact(&store);
}

/// Runs [`price_sync::ensure_embedded`] as a start would.
fn start(store: &Store) -> Option<price_sync::Plan> {
    store.write(|conn| {
        price_sync::ensure_embedded(conn, 0).map_err(|e| DbError::Check(e.to_string()))
    })
}

#[test]
fn the_embedded_catalogue_loads_on_start_only_when_newer() {
    let store = Store::new(&["ada"]);
    let oracle = Oracle::bundled();
    assert!(
        start(&store).is_none(),
        "loaded already when the store opened"
    );

    // A synced file newer than the embedded data stays.
    store.write(|conn| {
        conn.execute(
            "UPDATE price_catalogue_meta SET origin = 'sync', data_date = '2099-01-01', digest = 'x'",
            [],
        )?;
        Ok(())
    });
    assert!(start(&store).is_none());

    // An older embedded catalogue (another price, another digest) is
    // replaced, and the events it priced are re-priced.
    store.write(|conn| {
        conn.execute(
            "UPDATE price_catalogue_meta SET origin = 'embedded', data_date = '2026-01-01', digest = 'old'",
            [],
        )?;
        conn.execute(
            "UPDATE price_catalogue SET input_per_mtok = 1000000 WHERE name = 'claude-sonnet-4-5'",
            [],
        )?;
        Ok(())
    });
    let events: Vec<NewEvent> = (0..5)
        .map(|k| {
            event(
                &store,
                &format!("e{k}"),
                "claude-sonnet-4-5",
                START_MS + k * WEEK_MS,
                tokens(k),
            )
        })
        .collect();
    store.insert(events.clone(), 1);
    let plan = start(&store).expect("the embedded catalogue is newer");
    assert_eq!(plan.changed.len(), 1, "{:?}", plan.changed);
    assert_eq!(plan.total().repriced, 5);
    let expected: BTreeMap<_, _> = events
        .iter()
        .map(|e| {
            (
                e.external_id.clone(),
                (oracle.cost("claude-sonnet-4-5", e.tokens), 3),
            )
        })
        .collect();
    assert_eq!(raw(&store), expected);
    assert_rollups_exact(&store);

    // Another version of the resolution rules re-derives the stored
    // catalogue: no entry changes, nothing is re-priced.
    store.write(|conn| {
        conn.execute("UPDATE price_catalogue_meta SET rules = 0", [])?;
        Ok(())
    });
    let plan = start(&store).expect("re-derived");
    assert!(plan.added.is_empty() && plan.changed.is_empty() && plan.removed.is_empty());
    assert_eq!(plan.total().repriced, 0);
    assert!(start(&store).is_none());
    let loads: i64 = store.read(|conn| {
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'price.sync' AND actor_name = 'start'",
            [],
            |r| r.get(0),
        )?)
    });
    assert_eq!(loads, 3, "the first load, the newer data, the new rules");
}
