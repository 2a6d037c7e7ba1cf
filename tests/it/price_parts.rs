//! Every price component applied to events (issue 15 item 2): 1-hour cache
//! writes at the 1-hour rate, the long-context tier for one request whose
//! prompt exceeds the threshold (priced wholly at the tier; at the
//! threshold, not), web searches per request. A Claude Code transcript and
//! event-API lines go through the real binary; each event's cost equals an
//! oracle computed here from the catalogue's JSON text, to the micro-unit;
//! `price sync` re-prices to what ingest gave; `verify` passes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::common::catalogue::{BUNDLED, Counts, Oracle};
use crate::common::server::run_cli;

const BEDROCK: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// One call: id, model, the entry that prices it, input, output, cache
/// read, cache write, of which 1-hour, web searches.
struct Call {
    id: &'static str,
    model: &'static str,
    entry: &'static str,
    tokens: [i64; 4],
    one_hour: i64,
    searches: i64,
}

const CALLS: [Call; 8] = [
    // Prompt 200,000: at the threshold, base rates.
    Call {
        id: "at",
        model: BEDROCK,
        entry: BEDROCK,
        tokens: [1_000, 2_000, 150_000, 49_000],
        one_hour: 30_000,
        searches: 2,
    },
    // Prompt 200,001: wholly at the tier's rates.
    Call {
        id: "above",
        model: BEDROCK,
        entry: BEDROCK,
        tokens: [1_001, 2_000, 150_000, 49_000],
        one_hour: 30_000,
        searches: 2,
    },
    Call {
        id: "long",
        model: BEDROCK,
        entry: BEDROCK,
        tokens: [3_333, 7_777, 240_000, 6_667],
        one_hour: 6_667,
        searches: 3,
    },
    Call {
        id: "sonnet",
        model: "claude-sonnet-4-5-20250929",
        entry: "claude-sonnet-4-5-20250929",
        tokens: [12, 4_321, 88_888, 12_345],
        one_hour: 5_000,
        searches: 1,
    },
    Call {
        id: "opus45",
        model: "claude-opus-4-5-20251101",
        entry: "claude-opus-4-5-20251101",
        tokens: [7, 999, 45_678, 23_456],
        one_hour: 23_456,
        searches: 0,
    },
    Call {
        id: "opus46",
        model: "claude-opus-4-6",
        entry: "claude-opus-4-6",
        tokens: [3, 1_234, 120_001, 4_567],
        one_hour: 1_111,
        searches: 4,
    },
    // Above 200k, but the entry has no tier: base rates.
    Call {
        id: "haiku",
        model: "claude-haiku-4-5-20251001",
        entry: "claude-haiku-4-5-20251001",
        tokens: [50, 321, 210_000, 9_999],
        one_hour: 9_000,
        searches: 0,
    },
    // Sent to the event API (imported as API lines), above the threshold.
    Call {
        id: "api",
        model: BEDROCK,
        entry: BEDROCK,
        tokens: [20_000, 1_500, 180_000, 10_000],
        one_hour: 4_000,
        searches: 5,
    },
];

/// The oracle: the call's cost at `entry`'s prices in `oracle`, from the
/// JSON text alone (`Oracle::event_cost`).
fn expected(oracle: &Oracle, call: &Call) -> i64 {
    oracle.event_cost(
        call.entry,
        Counts {
            tokens: call.tokens,
            one_hour: call.one_hour,
            searches: call.searches,
        },
    )
}

fn transcript_line(i: usize, call: &Call) -> String {
    let [input, output, read, write] = call.tokens;
    let line = json!({
        "type": "assistant", "sessionId": "sess", "cwd": "/home/ada/src/shop",
        "requestId": format!("req_{i}"),
        "timestamp": format!("2026-11-{:02}T10:00:00.000Z", i + 1),
        "message": {"id": format!("msg_{}", call.id), "model": call.model, "usage": {
            "input_tokens": input, "output_tokens": output,
            "cache_read_input_tokens": read, "cache_creation_input_tokens": write,
            "cache_creation": {"ephemeral_5m_input_tokens": write - call.one_hour,
                               "ephemeral_1h_input_tokens": call.one_hour},
            "server_tool_use": {"web_search_requests": call.searches}}}
    });
    format!("{line}\n")
}

fn api_line(i: usize, call: &Call) -> String {
    let [input, output, read, write] = call.tokens;
    let line = json!({
        "id": call.id, "timestamp": format!("2026-11-{:02}T12:00:00Z", i + 1),
        "model": call.model, "input_tokens": input, "output_tokens": output,
        "cache_read_tokens": read, "cache_write_tokens": write,
        "cache_write_1h_tokens": call.one_hour, "web_search_requests": call.searches,
    });
    format!("{line}\n")
}

struct Instance {
    dir: tempfile::TempDir,
}

impl Instance {
    fn ok(&self, args: &[&str]) -> String {
        let data = self.dir.path().to_str().expect("utf-8");
        let mut full = vec!["--data-dir", data];
        full.extend_from_slice(args);
        let (ok, out, err) = run_cli(&full, &[], Some("a long enough password\n"));
        assert!(ok, "{args:?}: {err}");
        out
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_owned()
    }

    /// Per event id: (cost, origin, 1-hour writes, web searches, one request).
    fn events(&self) -> BTreeMap<String, (i64, i64, i64, i64, bool)> {
        let conn = rusqlite::Connection::open(self.dir.path().join("tokentally.db")).expect("open");
        conn.prepare(
            "SELECT external_id, cost_micros, cost_origin, cache_write_1h_tokens,
                    web_search_requests, one_request FROM events",
        )
        .expect("prepare")
        .query_map([], |r| {
            let id: String = r.get(0)?;
            // Transcript ids are message:request.
            let id = id
                .trim_start_matches("msg_")
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned();
            Ok((id, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    fn assert_priced_by(&self, oracle: &Oracle) {
        let events = self.events();
        assert_eq!(events.len(), CALLS.len(), "{events:?}");
        for call in &CALLS {
            let (cost, origin, one_hour, searches, one) = events[call.id];
            assert_eq!(
                (one_hour, searches, one),
                (call.one_hour, call.searches, true),
                "{}",
                call.id
            );
            // 3: priced from the catalogue.
            assert_eq!((cost, origin), (expected(oracle, call), 3), "{}", call.id);
        }
    }
}

#[test]
fn every_component_prices_each_event_and_a_sync_reprices_the_same() {
    let instance = Instance {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    instance.ok(&["user", "add", "ada", "--role", "admin", "--password-stdin"]);
    let (api, claude): (Vec<_>, Vec<_>) =
        CALLS.iter().enumerate().partition(|(_, c)| c.id == "api");
    let transcript: String = claude.iter().map(|(i, c)| transcript_line(*i, c)).collect();
    let file = instance.write("session.jsonl", &transcript);
    instance.ok(&["import", &file, "--user", "ada"]);
    let lines: String = api.iter().map(|(i, c)| api_line(*i, c)).collect();
    let file = instance.write("events.jsonl", &lines);
    instance.ok(&["import", &file, "--user", "ada"]);
    let bundled = Oracle::bundled();
    // The tier is real: the call just above the threshold costs more than
    // the one at it by more than its one extra input token.
    assert!(expected(&bundled, &CALLS[1]) > expected(&bundled, &CALLS[0]) + 1_000);
    instance.assert_priced_by(&bundled);

    // A catalogue whose Bedrock Sonnet and Opus 4.6 prices doubled: every
    // event of them is re-priced, exactly as ingest would have priced it.
    let mut all: Map<String, Value> = serde_json::from_str(BUNDLED).expect("bundled");
    for name in [BEDROCK, "claude-opus-4-6"] {
        let entry = all
            .get_mut(name)
            .and_then(Value::as_object_mut)
            .expect("entry");
        for (field, value) in entry.iter_mut() {
            if field.contains("cost_per_token") || field.contains("token_cost") {
                let doubled = value.as_f64().expect("a price") * 2.0;
                *value = json!(doubled);
            }
        }
    }
    let changed = serde_json::to_string(&all).expect("JSON");
    let file = instance.write("changed.json", &changed);
    instance.ok(&["price", "sync", &file, "--yes"]);
    instance.assert_priced_by(&Oracle::from_json(&changed));
    instance.ok(&["verify"]);

    // And back: the costs ingest gave, to the micro-unit.
    let file = instance.write("bundled.json", BUNDLED);
    instance.ok(&["price", "sync", &file, "--yes"]);
    instance.assert_priced_by(&bundled);
    instance.ok(&["verify"]);
}

/// The event API takes the two new counts, refuses bad ones with a 422
/// naming the field (writing nothing), and prices what it stores.
#[tokio::test]
async fn the_event_api_takes_one_hour_writes_and_web_searches() {
    use crate::common::TestApp;
    use axum::http::StatusCode;
    use tokentally::auth::Role;
    use tokentally::auth::tokens::TokenScope;

    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let call = &CALLS[7];
    let mut good = serde_json::from_str::<Value>(&api_line(0, call)).expect("JSON");
    good["timestamp"] = json!("2026-06-01T10:00:00Z");
    let post = |events: Value| {
        let body = events.to_string().into_bytes();
        let app = &app;
        let token = token.clone();
        async move {
            app.post_bytes(
                "/api/v1/events",
                Some(&token),
                &[("content-type", "application/json")],
                body,
            )
            .await
        }
    };
    let with = |field: &str, value: Value| {
        let mut event = good.clone();
        event["id"] = json!(format!("bad-{field}-{value}"));
        event[field] = value;
        event
    };
    let bad = [
        (
            with("cache_write_1h_tokens", json!(-1)),
            "cache_write_1h_tokens",
        ),
        (
            with("cache_write_1h_tokens", json!(10_001)),
            "cache_write_1h_tokens",
        ),
        (
            with("web_search_requests", json!(-2)),
            "web_search_requests",
        ),
        (
            with("web_search_requests", json!(1_000_001)),
            "web_search_requests",
        ),
        (
            with("web_search_requests", json!("3")),
            "web_search_requests",
        ),
    ];
    for (event, field) in bad {
        let refused = post(json!([good.clone(), event])).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        let errors = refused.json()["errors"].clone();
        assert_eq!(errors[0]["field"], field, "{errors}");
        assert_eq!(errors[0]["index"], 1, "{errors}");
    }
    assert!(app.stored_by_user().await.is_empty());
    let stored = post(json!([good])).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    let row: (i64, i64, i64, i64, bool) = app
        .state
        .db
        .read(|conn| {
            Ok::<_, tokentally::db::DbError>(conn.query_row(
                "SELECT cost_micros, cost_origin, cache_write_1h_tokens, web_search_requests,
                        one_request FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?)
        })
        .await
        .expect("the event");
    let oracle = Oracle::bundled();
    assert_eq!(
        row,
        (
            expected(&oracle, call),
            3,
            call.one_hour,
            call.searches,
            true
        )
    );
    app.assert_rollups_exact().await;
}
