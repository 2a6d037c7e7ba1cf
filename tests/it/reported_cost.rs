//! A producer's reported cost is kept as reported, with the cost from the
//! prices in force beside it (issue 15 item 3): the events API, the events
//! page and the CSV export show both and the origin; the usage API and the
//! overview say how much of a total was reported, how much computed and
//! how many calls are unpriced. An exported CSV imports again as it was
//! priced: computed costs are priced again, reported ones stay reported.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::model::format::decimal;

use crate::common::catalogue::{Oracle, exact_cost};
use crate::common::server::run_cli;
use crate::common::{PASSWORD, TestApp};

const RANGE: &str = "from=2026-06-01&to=2026-06-16";

/// Sonnet 4.5 at the catalogue's prices, 1-hour writes and web searches
/// included, from the JSON text alone.
fn sonnet_cost(oracle: &Oracle, tokens: [i64; 4], one_hour: i64, searches: i64) -> i64 {
    let entry = "claude-sonnet-4-5";
    let field = |name: &str| oracle.field(entry, name).expect(name);
    let search: Value =
        serde_json::from_str(&field("search_context_cost_per_query")).expect("an object");
    let per_search = search["search_context_size_medium"].to_string();
    exact_cost(&[
        (&field("input_cost_per_token"), tokens[0]),
        (&field("output_cost_per_token"), tokens[1]),
        (&field("cache_read_input_token_cost"), tokens[2]),
        (
            &field("cache_creation_input_token_cost"),
            tokens[3] - one_hour,
        ),
        (
            &field("cache_creation_input_token_cost_above_1hr"),
            one_hour,
        ),
        (&per_search, searches),
    ])
}

/// Five calls: reported with a catalogue price beside it (and 1-hour
/// writes and web searches), a reported 0 (counts as not reported), one
/// priced from the catalogue, one with no price, and one reported with no
/// price beside it.
fn calls() -> Value {
    let call = |id: &str, hour: u32, model: &str, tokens: [i64; 4], cost: Option<&str>| {
        let mut event = json!({
            "id": id, "timestamp": format!("2026-06-10T{hour:02}:00:00Z"), "model": model,
            "input_tokens": tokens[0], "output_tokens": tokens[1],
            "cache_read_tokens": tokens[2], "cache_write_tokens": tokens[3],
        });
        if let Some(cost) = cost {
            event["cost"] = json!(cost);
        }
        event
    };
    let mut reported = call(
        "reported",
        1,
        "claude-sonnet-4-5",
        [1_200, 3_400, 50_000, 6_000],
        Some("0.5"),
    );
    reported["cache_write_1h_tokens"] = json!(2_500);
    reported["web_search_requests"] = json!(2);
    json!([
        reported,
        call(
            "zero",
            2,
            "claude-haiku-4-5",
            [10_000, 2_000, 0, 0],
            Some("0")
        ),
        call(
            "catalogue",
            3,
            "claude-haiku-4-5",
            [7_000, 900, 1_000, 0],
            None
        ),
        call("nothing", 4, "llama-in-the-basement", [500, 50, 0, 0], None),
        call(
            "reported-only",
            5,
            "llama-in-the-basement",
            [800, 80, 0, 0],
            Some("0.25")
        ),
    ])
}

async fn ingest(app: &TestApp) {
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let response = app
        .post_bytes(
            "/api/v1/events",
            Some(&token),
            &[("content-type", "application/json")],
            calls().to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status.as_u16(), 200, "{}", response.body);
}

/// (cost, cost_origin, computed_cost) per event id, as a JSON answer says.
fn by_id(events: &Value) -> BTreeMap<String, (Value, Value, Value)> {
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().expect("id").to_owned(),
                (
                    e["cost"].clone(),
                    e["cost_origin"].clone(),
                    e["computed_cost"].clone(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn reported_costs_keep_the_computed_cost_beside_them_everywhere() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    ingest(&app).await;
    app.assert_rollups_exact().await;
    let cookie = app.login("ada", PASSWORD).await;
    let oracle = Oracle::bundled();
    let beside = sonnet_cost(&oracle, [1_200, 3_400, 50_000, 6_000], 2_500, 2);
    let haiku_zero = oracle.cost("claude-haiku-4-5", [10_000, 2_000, 0, 0]);
    let haiku = oracle.cost("claude-haiku-4-5", [7_000, 900, 1_000, 0]);
    let money = |micros: i64| json!(decimal(micros));

    // The events API: both costs and the origin, per event.
    let events = app
        .get(&format!("/api/v1/usage/events?{RANGE}"), Some(&cookie))
        .await
        .json();
    let expected: BTreeMap<String, (Value, Value, Value)> = [
        (
            "reported",
            (money(500_000), json!("reported"), money(beside)),
        ),
        (
            "zero",
            (money(haiku_zero), json!("catalogue"), money(haiku_zero)),
        ),
        (
            "catalogue",
            (money(haiku), json!("catalogue"), money(haiku)),
        ),
        ("nothing", (Value::Null, json!("unpriced"), Value::Null)),
        (
            "reported-only",
            (money(250_000), json!("reported"), Value::Null),
        ),
    ]
    .into_iter()
    .map(|(id, row)| (id.to_owned(), row))
    .collect();
    assert_eq!(by_id(&events), expected);
    let first = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["id"] == "reported")
        .expect("the reported call");
    assert_eq!(
        (
            &first["cache_write_1h_tokens"],
            &first["web_search_requests"]
        ),
        (&json!(2_500), &json!(2))
    );

    // The usage API: how much of the total was reported and computed.
    let usage = app
        .get(&format!("/api/v1/usage?{RANGE}"), Some(&cookie))
        .await
        .json();
    let totals = &usage["totals"];
    let reported = 500_000 + 250_000;
    let computed = haiku_zero + haiku;
    assert_eq!(totals["cost"], money(reported + computed), "{usage}");
    assert_eq!(totals["reported_cost"], money(reported));
    assert_eq!(totals["computed_cost"], money(computed));
    assert_eq!(
        (&totals["events"], &totals["unpriced_events"]),
        (&json!(5), &json!(1))
    );

    // The overview says it in words; the events page shows both costs.
    let overview = app.get(&format!("/?{RANGE}"), Some(&cookie)).await;
    let unit = tokentally::model::Unit::default();
    let share = |part: i64| tokentally::model::format::percent_of(part, reported + computed);
    let line = format!(
        "Of the cost, {} ({}) was reported by producers and {} ({}) computed from prices; \
         1 of 5 calls (20%) have no price.",
        unit.money(reported),
        share(reported),
        unit.money(computed),
        share(computed),
    );
    assert!(overview.body.contains(&line), "{line}\n{}", overview.body);
    let page = app.get(&format!("/events?{RANGE}"), Some(&cookie)).await;
    for text in [
        format!("reported; prices say {}", unit.money(beside)),
        "reported; no price".to_owned(),
        "from catalogue".to_owned(),
        "2 web searches".to_owned(),
        "1 h: 2,500".to_owned(),
    ] {
        assert!(page.body.contains(&text), "{text}");
    }

    // The CSV export, imported into another instance, is priced as here.
    let csv = app
        .get(&format!("/api/v1/usage/events.csv?{RANGE}"), Some(&cookie))
        .await;
    let header = csv.body.lines().next().expect("a header");
    assert!(
        header.ends_with(
            "cost_in_unit,unit,cache_write_1h_tokens,web_search_requests,cost_origin,computed_cost"
        ),
        "{header}"
    );
    let other = tempfile::tempdir().expect("tempdir");
    let data = other.path().to_str().expect("utf-8");
    let file = other.path().join("export.csv");
    std::fs::write(&file, &csv.body).expect("write");
    let cli = |args: &[&str]| {
        let mut full = vec!["--data-dir", data];
        full.extend_from_slice(args);
        let (ok, out, err) = run_cli(&full, &[], Some(&format!("{PASSWORD}\n")));
        assert!(ok, "{args:?}: {err}");
        out
    };
    cli(&["user", "add", "ada", "--role", "member", "--password-stdin"]);
    cli(&["import", file.to_str().expect("utf-8"), "--user", "ada"]);
    let conn = rusqlite::Connection::open(other.path().join("tokentally.db")).expect("open");
    let imported: BTreeMap<String, (i64, i64, i64, i64)> = conn
        .prepare(
            "SELECT external_id, cost_micros, cost_origin, cache_write_1h_tokens,
                    web_search_requests FROM events",
        )
        .expect("prepare")
        .query_map([], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    // Origins: 2 reported, 3 catalogue, 0 unpriced.
    let expected: BTreeMap<String, (i64, i64, i64, i64)> = [
        ("reported", (500_000, 2, 2_500, 2)),
        ("zero", (haiku_zero, 3, 0, 0)),
        ("catalogue", (haiku, 3, 0, 0)),
        ("nothing", (0, 0, 0, 0)),
        ("reported-only", (250_000, 2, 0, 0)),
    ]
    .into_iter()
    .map(|(id, row)| (id.to_owned(), row))
    .collect();
    assert_eq!(imported, expected);
}
