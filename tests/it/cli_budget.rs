//! `tokentally budget …` through the real binary: clear refusals naming
//! the field, alerts recorded by an import in its own transaction (the
//! server delivers them later), `list --json` with used, remaining,
//! percentage, projection and reset, removal that keeps the alerts, and
//! every change in the audit trail.

use serde_json::Value;

use crate::common::server::run_cli;

struct Instance {
    dir: tempfile::TempDir,
}

impl Instance {
    fn new() -> Instance {
        let instance = Instance {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        instance.ok(&["user", "add", "ada", "--role", "member", "--password-stdin"]);
        instance
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let data = self.dir.path().to_str().expect("utf-8");
        let mut full = vec!["--data-dir", data];
        full.extend_from_slice(args);
        run_cli(&full, &[], Some("a long enough password\n"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "{args:?}: {err}");
        out
    }

    fn refused(&self, args: &[&str]) -> String {
        let (ok, _, err) = self.run(args);
        assert!(!ok, "{args:?} was accepted");
        err
    }

    fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let conn = rusqlite::Connection::open(self.dir.path().join("tokentally.db")).expect("open");
        let mut stmt = conn.prepare(sql).expect("prepare");
        let columns = stmt.column_count();
        stmt.query_map([], |row| {
            (0..columns)
                .map(|i| {
                    row.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                        rusqlite::types::Value::Integer(n) => n.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    })
                })
                .collect()
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }
}

#[test]
fn bad_budgets_are_refused_naming_the_field_and_nothing_is_stored() {
    let instance = Instance::new();
    for (args, expected) in [
        (
            vec!["--period", "year", "--amount", "5"],
            "period: day, week or month",
        ),
        (vec!["--period", "day", "--amount=-5"], "amount:"),
        (
            vec!["--period", "day", "--amount", "0"],
            "amount: more than zero",
        ),
        (
            vec!["--period", "day", "--tokens", "5", "--thresholds", "80,50"],
            "thresholds:",
        ),
        (
            vec!["--period", "day", "--tokens", "5", "--thresholds", "0"],
            "thresholds:",
        ),
        (
            vec!["--period", "day", "--tokens", "5", "--scope", "team:nope"],
            "scope: no team named \"nope\"",
        ),
        (
            vec!["--period", "day", "--tokens", "5", "--scope", "user:nobody"],
            "scope: no person named",
        ),
        (
            vec!["--period", "day", "--tokens", "5", "--scope", "galaxy"],
            "scope: everyone, team:NAME",
        ),
        (
            vec![
                "--period",
                "day",
                "--tokens",
                "5",
                "--time-zone",
                "Mars/Olympus",
            ],
            "time_zone:",
        ),
        (
            vec![
                "--period",
                "week",
                "--tokens",
                "5",
                "--week-start",
                "funday",
            ],
            "week_start:",
        ),
        (
            vec!["--period", "day", "--tokens", "5", "--channel", "nope"],
            "channel: no channel named",
        ),
    ] {
        let mut full = vec!["budget", "add", "b"];
        full.extend(args.iter().copied());
        let err = instance.refused(&full);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(instance.query("SELECT name FROM budgets").is_empty());
    let err = instance.refused(&["budget", "remove", "nope"]);
    assert!(err.contains("no budget named \"nope\""), "{err}");
}

#[test]
fn an_import_records_the_thresholds_it_crosses_and_list_says_where_it_stands() {
    let instance = Instance::new();
    let out = instance.ok(&[
        "budget",
        "add",
        "tokens",
        "--period",
        "month",
        "--tokens",
        "1000",
        "--scope",
        "user:ada",
        "--time-zone",
        "UTC",
    ]);
    assert!(out.contains("created budget tokens"), "{out}");
    // This month (UTC), so that the period the budget watches holds them.
    let now = jiff::Timestamp::now();
    let month_start = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("midnight")
        .timestamp();
    let lines: String = (0..9)
        .map(|i| {
            let at = now
                .checked_sub(jiff::SignedDuration::from_secs(i + 1))
                .expect("time")
                .max(month_start);
            format!(
                "{{\"id\":\"e{i}\",\"timestamp\":\"{at}\",\"model\":\"m\",\"input_tokens\":100,\"output_tokens\":0}}\n"
            )
        })
        .collect();
    let file = instance.dir.path().join("events.jsonl");
    std::fs::write(&file, lines).expect("write");
    instance.ok(&["import", file.to_str().expect("utf-8"), "--user", "ada"]);
    // 900 of 1,000: 50 and 80 % (the projection too, unless the month
    // is nearly over), recorded by the import's own transaction.
    let thresholds = instance
        .query("SELECT threshold FROM alerts WHERE kind = 'threshold' AND quiet = 0 ORDER BY id");
    assert_eq!(
        thresholds,
        vec![vec!["50".to_owned()], vec!["80".to_owned()]]
    );
    let list = instance.ok(&["budget", "list", "--json"]);
    let line: Value = serde_json::from_str(list.trim()).expect("one JSON line");
    let standing = &line["standing"][0];
    assert_eq!(line["name"], "tokens");
    assert_eq!(line["scope"], "user:ada");
    assert_eq!(standing["used"], "900");
    assert_eq!(standing["remaining"], "100");
    assert_eq!(standing["percent"], 90.0);
    assert!(
        standing["resets_at"]
            .as_str()
            .is_some_and(|r| r.ends_with("-01T00:00:00Z")),
        "{standing}"
    );
    let text = instance.ok(&["budget", "list"]);
    assert!(
        text.contains("used 900 tokens (90.00 %), 100 tokens left"),
        "{text}"
    );
    // Removed: its alerts stay; both changes are audited.
    instance.ok(&["budget", "remove", "tokens"]);
    assert!(instance.query("SELECT id FROM budgets").is_empty());
    assert_eq!(
        instance
            .query("SELECT id FROM alerts WHERE kind = 'threshold'")
            .len(),
        2
    );
    let audited =
        instance.query("SELECT action FROM audit_log WHERE action LIKE 'budget.%' ORDER BY seq");
    assert_eq!(
        audited,
        vec![
            vec!["budget.create".to_owned()],
            vec!["budget.remove".to_owned()]
        ]
    );
}
