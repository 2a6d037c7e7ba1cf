//! `tokentally team …` through the real binary: teams created, people put
//! in them, moved and taken out with clear refusals, listed as text and
//! JSON, and `report --group-by team` counting each call for the team its
//! user was in when it was made.

use crate::common::server::run_cli;
use serde_json::Value;

fn cli(data: &str, args: &[&str]) -> (bool, String, String) {
    let mut full = vec!["--data-dir", data];
    full.extend_from_slice(args);
    run_cli(&full, &[], None)
}

/// Runs a command that must succeed; its standard output.
fn ok(data: &str, args: &[&str]) -> String {
    let (ok, out, err) = cli(data, args);
    assert!(ok, "{args:?}: {err}");
    out
}

/// Runs a command that must fail; its error.
fn refused(data: &str, args: &[&str]) -> String {
    let (ok, out, err) = cli(data, args);
    assert!(!ok, "{args:?} succeeded: {out}");
    err
}

/// (team, input tokens) per row of a report grouped by team.
fn report(data: &str) -> Vec<(String, i64)> {
    let out = ok(
        data,
        &[
            "report",
            "--group-by",
            "team",
            "--bucket",
            "month",
            "--from",
            "2026-05-01",
            "--to",
            "2026-06-01",
            "--tz",
            "UTC",
            "--json",
        ],
    );
    let json: Value = serde_json::from_str(&out).expect("JSON");
    let mut rows: Vec<(String, i64)> = json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let group = r["group"].as_str().unwrap_or_default().to_owned();
            (group, r["input_tokens"].as_i64().unwrap_or_default())
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn teams_from_the_shell_group_each_call_by_the_team_of_its_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    for user in ["ada", "bob", "cat"] {
        let (ok, _, err) = run_cli(
            &[
                "--data-dir",
                data,
                "user",
                "add",
                user,
                "--role",
                "member",
                "--password-stdin",
            ],
            &[],
            Some("a long enough password\n"),
        );
        assert!(ok, "{err}");
    }
    let events = dir.path().join("events.jsonl");
    let mut lines = String::new();
    for (id, user, at, input) in [
        ("a1", "ada", "2026-05-02T10:00:00Z", 100),
        ("b1", "bob", "2026-05-03T10:00:00Z", 20),
        ("b2", "bob", "2026-05-06T10:00:00Z", 3),
        ("c1", "cat", "2026-05-04T10:00:00Z", 4000),
    ] {
        lines.push_str(&format!(
            "{{\"id\":\"{id}\",\"timestamp\":\"{at}\",\"model\":\"m\",\"user\":\"{user}\",\"input_tokens\":{input}}}\n"
        ));
    }
    std::fs::write(&events, lines).expect("write");
    ok(data, &["import", events.to_str().expect("utf-8")]);

    assert_eq!(ok(data, &["team", "add", "web"]).trim(), "created team web");
    ok(data, &["team", "add", "ops"]);
    assert!(refused(data, &["team", "add", "WEB"]).contains("a team named \"WEB\" already exists"));
    assert!(refused(data, &["team", "add", "web team"]).contains("a team name is 1 to 64"));

    let joined = ok(data, &["team", "member", "add", "web", "ada", "--lead"]);
    assert!(
        joined.contains("ada joined web as its lead, from the beginning"),
        "{joined}"
    );
    ok(data, &["team", "member", "add", "web", "bob"]);
    let moved = ok(
        data,
        &[
            "team",
            "member",
            "add",
            "ops",
            "bob",
            "--since",
            "2026-05-05",
            "--tz",
            "UTC",
        ],
    );
    assert!(
        moved.contains("bob moved from web to ops at 2026-05-05T00:00:00Z"),
        "{moved}"
    );
    for (args, says) in [
        (
            vec![
                "team",
                "member",
                "add",
                "web",
                "bob",
                "--since",
                "2026-05-04T00:00:00Z",
            ],
            "bob has been in \"ops\" since 2026-05-05T00:00:00Z",
        ),
        (
            vec!["team", "member", "add", "nope", "bob"],
            "no team named \"nope\"",
        ),
        (
            vec!["team", "member", "add", "web", "nobody"],
            "no person named \"nobody\"",
        ),
        (
            vec!["team", "member", "add", "web", "cat", "--since", "whenever"],
            "--since",
        ),
        (
            vec!["team", "member", "remove", "web", "cat"],
            "cat is not in team \"web\" now",
        ),
    ] {
        let error = refused(data, &args);
        assert!(error.contains(says), "{args:?}: {error}");
    }
    // bob's call of 3 May is web's, the one of 6 May ops'; cat is in no team.
    assert_eq!(
        report(data),
        [
            ("(no team)".to_owned(), 4000),
            ("ops".to_owned(), 3),
            ("web".to_owned(), 120),
        ]
    );
    let left = ok(
        data,
        &[
            "team",
            "member",
            "remove",
            "ops",
            "bob",
            "--at",
            "2026-05-06T09:00:00Z",
        ],
    );
    assert!(
        left.contains("bob left ops at 2026-05-06T09:00:00Z"),
        "{left}"
    );
    assert_eq!(report(data)[0], ("(no team)".to_owned(), 4003));

    let list = ok(data, &["team", "list"]);
    assert!(
        list.contains("ops (0 members now)") && list.contains("web (1 member now)"),
        "{list}"
    );
    let teams: Vec<Value> = ok(data, &["team", "list", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(teams.len(), 2);
    let web = teams.iter().find(|t| t["name"] == "web").expect("web");
    assert_eq!(web["members"][0]["user"], "ada");
    assert_eq!(web["members"][0]["lead"], true);
    assert_eq!(
        web["members"][0]["since"],
        Value::Null,
        "from the beginning"
    );
    assert_eq!(web["members"][1]["until"], "2026-05-05T00:00:00Z");
    // Every change is in the audit trail, as the shell's, which verifies.
    let db = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let mut stmt = db
        .prepare(
            "SELECT action, COUNT(*) FROM audit_log WHERE action LIKE 'team.%'
             AND actor_name = 'cli' GROUP BY action ORDER BY action",
        )
        .expect("prepare");
    let actions: Vec<(String, i64)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        actions,
        [
            ("team.create".to_owned(), 2),
            ("team.member_add".to_owned(), 2),
            ("team.member_move".to_owned(), 1),
            ("team.member_remove".to_owned(), 1),
        ]
    );
    drop(stmt);
    drop(db);
    let verified = ok(data, &["verify"]);
    assert!(verified.contains("audit chain"), "{verified}");
}
