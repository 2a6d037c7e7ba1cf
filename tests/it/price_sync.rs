//! `tokentally price sync` through the real binary: a dry run shows the
//! change and writes nothing; `--yes` re-prices exactly the events the
//! catalogue priced (and unpriced ones that now resolve) — never reported
//! costs, never an admin's — raw rows and rollups together, audited once;
//! every kind of bad file is refused naming the entry and the reason, and
//! changes nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::common::catalogue::{BUNDLED, Oracle};
use crate::common::server::run_cli;

/// Event ids and models: `s` catalogue-priced, `r` reported, `h` priced by
/// an admin, `o` a model the new file drops, `m` a model it adds.
const EVENTS: [(&str, &str); 13] = [
    ("s1", "claude-sonnet-4-5"),
    ("s2", "claude-sonnet-4-5"),
    ("s3", "claude-sonnet-4-5"),
    ("s4", "claude-sonnet-4-5-20250929"),
    ("s5", "openrouter/anthropic/claude-sonnet-4.5"),
    ("r1", "claude-sonnet-4-5"),
    ("h1", "claude-haiku-4-5"),
    ("h2", "claude-haiku-4-5"),
    ("o1", "o4-mini"),
    ("o2", "o4-mini"),
    ("o3", "o4-mini"),
    ("m1", "my-model"),
    ("m2", "my-model"),
];

fn tokens(i: usize) -> [i64; 4] {
    let i = i as i64;
    [
        4_000 + 313 * i,
        900 + 41 * i,
        70_000 + 2_222 * i,
        5_000 + 97 * i,
    ]
}

struct Instance {
    dir: tempfile::TempDir,
}

impl Instance {
    fn data(&self) -> &str {
        self.dir.path().to_str().expect("utf-8")
    }

    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let mut full = vec!["--data-dir", self.data()];
        full.extend_from_slice(args);
        run_cli(&full, &[], None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(ok, "{args:?}: {err}");
        out
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_owned()
    }

    /// Everything a sync may change: every event's cost and origin, the
    /// catalogue's digest, the audit entries of syncs.
    fn state(&self) -> (BTreeMap<String, (i64, i64)>, String, i64) {
        let conn = rusqlite::Connection::open(self.dir.path().join("tokentally.db")).expect("open");
        let events = conn
            .prepare("SELECT external_id, cost_micros, cost_origin FROM events")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let digest = conn
            .query_row("SELECT digest FROM price_catalogue_meta", [], |r| r.get(0))
            .expect("digest");
        let syncs = conn
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'price.sync'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        (events, digest, syncs)
    }
}

/// An admin, the events above imported, an admin's price for Haiku.
fn instance() -> Instance {
    let instance = Instance {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let (ok, _, err) = run_cli(
        &[
            "--data-dir",
            instance.data(),
            "user",
            "add",
            "ada",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &[],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");
    let lines: String = EVENTS
        .iter()
        .enumerate()
        .map(|(i, (id, model))| {
            let t = tokens(i);
            let mut event = json!({
                "id": id, "timestamp": format!("2026-10-{:02}T12:00:00Z", i + 1), "model": model,
                "input_tokens": t[0], "output_tokens": t[1],
                "cache_read_tokens": t[2], "cache_write_tokens": t[3],
            });
            if id.starts_with('r') {
                event["cost"] = json!("0.500000");
            }
            format!("{event}\n")
        })
        .collect();
    let file = instance.write("events.jsonl", &lines);
    instance.ok(&["import", &file, "--user", "ada"]);
    instance.ok(&[
        "price",
        "set",
        "claude-haiku-4-5",
        "--input",
        "0.5",
        "--output",
        "1",
    ]);
    instance
}

/// The bundled catalogue with `change` applied, as a file's text.
fn changed(change: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut all: Map<String, Value> = serde_json::from_str(BUNDLED).expect("bundled");
    change(&mut all);
    serde_json::to_string(&all).expect("JSON")
}

/// Sonnet 4.5 10 % dearer (input and cache reads), o4-mini gone, a new
/// model.
fn newer() -> String {
    changed(|all| {
        let sonnet = all["claude-sonnet-4-5"].as_object_mut().expect("sonnet");
        sonnet.insert("input_cost_per_token".into(), json!(3.3e-06));
        sonnet.insert("cache_read_input_token_cost".into(), json!(3.3e-07));
        all.retain(|name, _| {
            !name
                .rsplit('/')
                .next()
                .unwrap_or(name)
                .starts_with("o4-mini")
        });
        all.insert(
            "my-model".into(),
            json!({"litellm_provider": "openai", "mode": "chat",
                   "input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06}),
        );
    })
}

fn cost_of(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').expect("decimal");
    whole.parse::<i64>().expect("whole") * 1_000_000 + fraction.parse::<i64>().expect("fraction")
}

#[test]
fn a_dry_run_changes_nothing_and_yes_reprices_exactly_the_catalogue_priced_events() {
    let instance = instance();
    let file = instance.write("newer.json", &newer());
    let before = instance.state();
    // Before: the catalogue prices Sonnet and o4-mini, the admin Haiku.
    let origin = |state: &(BTreeMap<String, (i64, i64)>, String, i64), id: &str| state.0[id].1;
    assert_eq!(
        ["s1", "s5", "r1", "h1", "o1", "m1"].map(|id| origin(&before, id)),
        [3, 3, 2, 1, 3, 0]
    );

    let dry = instance.ok(&["price", "sync", &file]);
    for expected in [
        "1 added, 1 changed,",
        "claude-sonnet-4-5 (anthropic): input 3.000000 → 3.300000; cache read 0.300000 → 0.330000",
        "my-model (openai)",
        "o4-mini (openai)",
        "o4-mini: o4-mini → unpriced; 3 events",
        "my-model: unpriced → my-model; 2 events",
        "dry run: nothing was written",
    ] {
        assert!(dry.contains(expected), "{expected:?} in\n{dry}");
    }
    let plan: Value =
        serde_json::from_str(&instance.ok(&["price", "sync", &file, "--json"])).expect("JSON");
    assert_eq!(plan["applied"], false);
    let models: BTreeMap<String, i64> = plan["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| {
            (
                m["model"].as_str().expect("model").to_owned(),
                m["events"].as_i64().expect("n"),
            )
        })
        .collect();
    // Sonnet's five catalogue-priced events under three names; not the
    // reported one, nor Haiku's (an admin's price).
    let sonnet: i64 = [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "openrouter/anthropic/claude-sonnet-4.5",
    ]
    .iter()
    .filter_map(|m| models.get(*m))
    .sum();
    assert_eq!(
        sonnet, 4,
        "claude-sonnet-4-5-20250929 has its own entry, unchanged: {models:?}"
    );
    assert_eq!(models.get("o4-mini"), Some(&3));
    assert_eq!(models.get("my-model"), Some(&2));
    assert!(!models.contains_key("claude-haiku-4-5"));
    assert_eq!(instance.state(), before, "a dry run writes nothing");

    let applied = instance.ok(&["price", "sync", &file, "--yes"]);
    assert!(applied.contains("in all: 9 events re-priced"), "{applied}");
    let after = instance.state();
    assert_ne!(after.1, before.1, "the new catalogue is stored");
    assert_eq!(after.2, before.2 + 1, "audited once");

    // Each event against the oracle of the file it was synced to.
    let oracle = Oracle::from_json(&newer());
    let expected: BTreeMap<String, (i64, i64)> = EVENTS
        .iter()
        .enumerate()
        .map(|(i, (id, model))| {
            let value = match &id[..1] {
                "r" | "h" => before.0[*id],
                "o" => (0, 0),
                "m" => (oracle.cost("my-model", tokens(i)), 3),
                _ => {
                    let entry = if *model == "claude-sonnet-4-5-20250929" {
                        *model
                    } else {
                        "claude-sonnet-4-5"
                    };
                    (oracle.cost(entry, tokens(i)), 3)
                }
            };
            ((*id).to_owned(), value)
        })
        .collect();
    assert_eq!(after.0, expected);

    // The rollups say the same per model (the report reads them), and
    // verify passes.
    let report: Value = serde_json::from_str(&instance.ok(&[
        "report",
        "--json",
        "--group-by",
        "model",
        "--bucket",
        "month",
        "--from",
        "2026-10-01",
        "--to",
        "2026-11-01",
        "--tz",
        "UTC",
    ]))
    .expect("report");
    let mut reported: BTreeMap<String, i64> = BTreeMap::new();
    for row in report["rows"].as_array().expect("rows") {
        let cost = row["cost"].as_str().map_or(0, cost_of);
        *reported
            .entry(row["group"].as_str().expect("group").to_owned())
            .or_default() += cost;
    }
    let mut oracle_totals: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (id, model)) in EVENTS.iter().enumerate() {
        let _ = i;
        *oracle_totals.entry((*model).to_owned()).or_default() += expected[*id].0;
    }
    assert_eq!(reported, oracle_totals);
    instance.ok(&["verify"]);

    // The list says who prices what now.
    let list: Value =
        serde_json::from_str(&instance.ok(&["price", "list", "--json"])).expect("JSON");
    assert_eq!(list["catalogue"]["origin"], "sync");
    let by_model = |name: &str| {
        list["models"]
            .as_array()
            .expect("models")
            .iter()
            .find(|m| m["model"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_model("claude-haiku-4-5")["origin"], "admin");
    assert_eq!(by_model("claude-sonnet-4-5")["entry"], "claude-sonnet-4-5");
    assert_eq!(by_model("claude-sonnet-4-5")["rule"], "exact");
    assert_eq!(by_model("claude-sonnet-4-5")["price"]["input"], "3.300000");
    assert!(
        by_model("claude-sonnet-4-5")["origin"]
            .as_str()
            .is_some_and(|o| o.starts_with("catalogue ")),
        "{list}"
    );
    assert_eq!(by_model("o4-mini")["origin"], Value::Null);
    assert_eq!(list["prices"][0]["origin"], "admin");

    // The same file again changes nothing.
    let again = instance.ok(&["price", "sync", &file, "--yes"]);
    assert!(again.contains("nothing changes"), "{again}");
    assert_eq!(instance.state(), after);
}

#[test]
fn bad_files_are_refused_naming_the_entry_and_the_reason_and_change_nothing() {
    let instance = instance();
    let set = |name: &'static str, field: &'static str, value: Value| {
        changed(move |all| {
            all[name]
                .as_object_mut()
                .expect("entry")
                .insert(field.into(), value);
        })
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "not-json",
            "prices, not JSON".into(),
            vec!["not LiteLLM's format"],
        ),
        ("array", "[1, 2]".into(), vec!["not LiteLLM's format"]),
        ("empty", "{}".into(), vec!["no chat model"]),
        (
            "not-an-object",
            changed(|all| {
                all.insert("claude-sonnet-4-5".into(), json!(5));
            }),
            vec![r#"entry "claude-sonnet-4-5": is not an object"#],
        ),
        (
            "negative",
            set("gpt-5", "input_cost_per_token", json!(-1.25e-06)),
            vec![r#"entry "gpt-5": input_cost_per_token is negative"#],
        ),
        (
            "text",
            set("gpt-5", "output_cost_per_token", json!("1e-05")),
            vec![r#"entry "gpt-5": output_cost_per_token is not a number"#],
        ),
        (
            "hundredfold",
            // 100× is accepted; a little more is not.
            set(
                "claude-sonnet-4-5",
                "output_cost_per_token",
                json!(1.51e-03),
            ),
            vec![
                r#"entry "claude-sonnet-4-5""#,
                "output price would change from 15.000000 to 1510.000000 (more than 100×)",
            ],
        ),
        (
            "per-million",
            set("gpt-5", "input_cost_per_token", json!(1.25)),
            vec![r#"entry "gpt-5""#, "more than $100,000 per million tokens"],
        ),
        (
            "name",
            changed(|all| {
                let entry = all["gpt-5"].clone();
                all.insert("gpt-5\u{7}beep".into(), entry);
            }),
            vec!["gpt-5\\u{7}beep", "control characters"],
        ),
    ];
    let before = instance.state();
    for (name, text, expected) in cases {
        let file = instance.write(&format!("{name}.json"), &text);
        let (ok, out, err) = instance.cli(&["price", "sync", &file, "--yes"]);
        assert!(!ok, "{name}: accepted\n{out}");
        assert!(err.contains("refused, nothing changed"), "{name}: {err}");
        for part in expected {
            assert!(err.contains(part), "{name}: {part:?} in {err}");
        }
        assert_eq!(instance.state(), before, "{name} changed something");
    }
    // Too large to be a price file: refused before it is parsed.
    let large = instance.dir.path().join("large.json");
    std::fs::File::create(&large)
        .and_then(|f| f.set_len(33 << 20))
        .expect("a sparse file");
    let (ok, _, err) = instance.cli(&["price", "sync", large.to_str().expect("utf-8"), "--yes"]);
    assert!(!ok && err.contains("larger than"), "{err}");
    assert_eq!(instance.state(), before);
}

#[test]
fn a_url_is_fetched_over_https_only() {
    let instance = instance();
    let before = instance.state();
    for url in [
        "http://example.com/prices.json",
        "ftp://example.com/prices.json",
        "file:///etc/passwd",
    ] {
        let (ok, _, err) = instance.cli(&["price", "sync", url, "--yes"]);
        assert!(!ok && err.contains("https:// only"), "{url}: {err}");
    }
    // Nothing listens there: the fetch fails, saying where.
    let (ok, _, err) = instance.cli(&[
        "price",
        "sync",
        "https://127.0.0.1:9/prices.json?key=secret",
        "--yes",
    ]);
    assert!(!ok && err.contains("127.0.0.1:9"), "{err}");
    assert_eq!(instance.state(), before);
    assert!(!Path::new(&instance.dir.path().join("prices.json")).exists());
}
