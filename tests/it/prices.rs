//! Prices: setting, replacing and removing a price re-prices exactly the
//! events it applies to, raw rows and rollups together.

use crate::common::store::Store;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokentally::usage::buckets::BucketSize;
use tokentally::usage::prices::Price;
use tokentally::usage::query::{self, Filters, SeriesQuery};
use tokentally::usage::reprice;
use tokentally::usage::rollup;
use tokentally::usage::store::NewEvent;
use tokentally::usage::{Scope, Totals};

const UNPRICED_MODEL: &str = "llama-local";
const APRIL: &str = "2026-04-01T00:00:00Z";

fn ms(instant: &str) -> i64 {
    instant
        .parse::<Timestamp>()
        .expect("instant")
        .as_millisecond()
}

/// One event a week through the first half of 2026, alternating between a
/// model with no price and one with an embedded price; every fifth reports
/// its own cost.
fn events(store: &Store) -> Vec<NewEvent> {
    let start = ms("2026-01-01T00:00:00Z");
    (0..26i64)
        .map(|week| NewEvent {
            extras: Default::default(),
            ts_ms: start + week * 7 * 86_400_000 + 3_600_000,
            user: store.users[(week % 2) as usize],
            source: "api".into(),
            external_id: format!("call-{week}"),
            model: if week % 3 == 0 {
                "claude-sonnet-4-5"
            } else {
                UNPRICED_MODEL
            }
            .into(),
            provider: None,
            activity: Some("chat".into()),
            project: None,
            tokens: [1_000 * (week + 1), 100 * (week + 1), 7 * week, 3],
            reported_cost_micros: (week % 5 == 4).then_some(42),
            session: None,
            machine: None,
            identity: None,
        })
        .collect()
}

/// Each event's cost straight from the raw rows, by external id.
fn raw_costs(store: &Store) -> Vec<(String, i64, i64)> {
    store.read(|conn| {
        let mut stmt = conn.prepare(
            "SELECT external_id, cost_micros, cost_origin FROM events ORDER BY external_id",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
}

/// The whole half year's totals for one model, through the query layer.
fn model_totals(store: &Store, model: &str) -> Totals {
    let query = SeriesQuery {
        from: "2026-01-01T00:00:00Z".parse().expect("from"),
        to: "2026-07-01T00:00:00Z".parse().expect("to"),
        zone: TimeZone::get("Asia/Kolkata").expect("zone"),
        bucket: BucketSize::Month,
        group_by: None,
        filters: Filters {
            models: vec![model.to_owned()],
            ..Filters::default()
        },
    };
    store.read(move |conn| Ok(query::series(conn, Scope::Everyone, &query)?.totals))
}

fn assert_rollups_exact(store: &Store) {
    let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
    assert!(
        mismatch.is_none(),
        "{}",
        mismatch.map(|m| m.to_string()).unwrap_or_default()
    );
}

/// A price of `input` and `output` micro-units per token, for easy sums:
/// micro-units per token × 1M = per million tokens.
fn price(from: &str, input: i64, output: i64) -> Price {
    Price {
        model: UNPRICED_MODEL.into(),
        provider: String::new(),
        effective_from_ms: if from.is_empty() { 0 } else { ms(from) },
        per_mtok: [input * 1_000_000, output * 1_000_000, 0, 0],
    }
}

/// What the oracle expects of one event: (external id, cost, origin).
/// The model without a price is priced by the admin prices these tests
/// set (origin 1); Claude Sonnet 4.5 by the catalogue (origin 3).
fn expected(
    events: &[NewEvent],
    cost_of: impl Fn(&NewEvent) -> Option<i64>,
) -> Vec<(String, i64, i64)> {
    let mut rows: Vec<_> = events
        .iter()
        .map(|e| {
            let computed = if e.model.starts_with(UNPRICED_MODEL) {
                1
            } else {
                3
            };
            let (cost, origin) = match (e.reported_cost_micros, cost_of(e)) {
                (Some(reported), _) => (reported, 2),
                (None, Some(cost)) => (cost, computed),
                (None, None) => (0, 0),
            };
            (e.external_id.clone(), cost, origin)
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_price_change_reprices_exactly_the_events_it_applies_to() {
    let store = Store::new(&["ada", "grace"]);
    let events = events(&store);
    store.insert(events.clone(), 3);
    let sonnet_before = model_totals(&store, "claude-sonnet-4-5");
    let sonnet_costs: Vec<_> = raw_costs(&store)
        .into_iter()
        .filter(|(id, ..)| {
            events
                .iter()
                .any(|e| &e.external_id == id && e.model != UNPRICED_MODEL)
        })
        .collect();
    let sonnet_cost = |e: &NewEvent| {
        sonnet_costs
            .iter()
            .find(|(id, ..)| *id == e.external_id)
            .map(|(_, cost, _)| *cost)
    };
    let unpriced_before = model_totals(&store, UNPRICED_MODEL);
    let self_priced = events
        .iter()
        .filter(|e| e.model == UNPRICED_MODEL && e.reported_cost_micros.is_none())
        .count() as i64;
    assert_eq!(unpriced_before.unpriced_calls, self_priced);

    // A price from the beginning of time prices every unpriced event.
    let always = price("", 1, 2);
    let outcome = store.write(move |conn| reprice::set(conn, &always, 0));
    assert_eq!(outcome.repriced as i64, self_priced);
    let one_two = |e: &NewEvent| e.tokens[0] + 2 * e.tokens[1];
    let by_model = |e: &NewEvent, own: &dyn Fn(&NewEvent) -> Option<i64>| {
        if e.model == UNPRICED_MODEL {
            own(e)
        } else {
            sonnet_cost(e)
        }
    };
    assert_eq!(
        raw_costs(&store),
        expected(&events, |e| by_model(e, &|e| Some(one_two(e))))
    );
    assert_rollups_exact(&store);
    assert_eq!(model_totals(&store, UNPRICED_MODEL).unpriced_calls, 0);

    // A later price takes over from April; earlier events keep theirs.
    let april = price(APRIL, 3, 2);
    let outcome = store.write(move |conn| reprice::set(conn, &april, 0));
    let after_april = |e: &NewEvent| e.ts_ms >= ms(APRIL);
    let three_two = |e: &NewEvent| 3 * e.tokens[0] + 2 * e.tokens[1];
    let changed = events
        .iter()
        .filter(|e| e.model == UNPRICED_MODEL && e.reported_cost_micros.is_none() && after_april(e))
        .count();
    assert_eq!(outcome.repriced, changed);
    let both = |e: &NewEvent| {
        Some(if after_april(e) {
            three_two(e)
        } else {
            one_two(e)
        })
    };
    assert_eq!(raw_costs(&store), expected(&events, |e| by_model(e, &both)));
    assert_rollups_exact(&store);

    // Removing the first price leaves the events before April unpriced.
    let removed = store.write(|conn| reprice::remove(conn, UNPRICED_MODEL, "", 0));
    assert!(removed.is_some());
    let april_only = |e: &NewEvent| after_april(e).then(|| three_two(e));
    assert_eq!(
        raw_costs(&store),
        expected(&events, |e| by_model(e, &april_only))
    );
    assert_rollups_exact(&store);
    let totals = model_totals(&store, UNPRICED_MODEL);
    let unpriced_now = events
        .iter()
        .filter(|e| {
            e.model == UNPRICED_MODEL && e.reported_cost_micros.is_none() && !after_april(e)
        })
        .count() as i64;
    assert_eq!(totals.unpriced_calls, unpriced_now);
    assert_eq!(
        totals.calls, unpriced_before.calls,
        "no event gained or lost"
    );

    // Another model's events never moved.
    assert_eq!(model_totals(&store, "claude-sonnet-4-5"), sonnet_before);
    // Removing a row that is not there says so and changes nothing.
    assert!(
        store
            .write(|conn| reprice::remove(conn, UNPRICED_MODEL, "", 1))
            .is_none()
    );
}

#[test]
fn a_providers_own_price_beats_the_generic_one_when_repricing() {
    let store = Store::new(&["ada", "grace"]);
    let mut events = events(&store);
    for (i, event) in events.iter_mut().enumerate() {
        event.model = UNPRICED_MODEL.into();
        event.reported_cost_micros = None;
        event.provider = (i % 2 == 0).then(|| "bedrock".to_owned());
    }
    store.insert(events.clone(), 1);
    let generic = price("", 1, 0);
    store.write(move |conn| reprice::set(conn, &generic, 0));
    let mut bedrock = price("", 5, 0);
    bedrock.provider = "bedrock".into();
    let outcome = store.write(move |conn| reprice::set(conn, &bedrock, 0));
    assert_eq!(outcome.repriced, events.len().div_ceil(2));
    let cost = |e: &NewEvent| {
        let per_token = if e.provider.is_some() { 5 } else { 1 };
        Some(per_token * e.tokens[0])
    };
    assert_eq!(raw_costs(&store), expected(&events, cost));
    assert_rollups_exact(&store);
}

#[test]
fn a_base_models_price_reprices_its_dated_ids() {
    let store = Store::new(&["ada", "grace"]);
    let mut events = events(&store);
    for event in &mut events {
        event.model = format!("{UNPRICED_MODEL}-20260115");
        event.reported_cost_micros = None;
    }
    store.insert(events.clone(), 1);
    let outcome = store.write(|conn| reprice::set(conn, &price("", 2, 0), 0));
    assert_eq!(outcome.repriced, events.len());
    assert_eq!(
        raw_costs(&store),
        expected(&events, |e| Some(2 * e.tokens[0]))
    );
    assert_rollups_exact(&store);
}
