//! API tokens end to end through the real binary: created by the CLI,
//! used by a client against the running server, listed without their
//! secret, revoked.

use crate::common::server::{Server, agent, run_cli};
use serde_json::{Value, json};

fn cli(data: &str, args: &[&str]) -> (bool, String, String) {
    let mut full = vec!["--data-dir", data];
    full.extend_from_slice(args);
    run_cli(&full, &[], None)
}

fn post_events(server: &Server, token: &str, body: &Value) -> (u16, Value) {
    let mut response = agent()
        .post(&server.url("/api/v1/events"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn a_cli_token_feeds_the_server_until_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let (ok, _, err) = run_cli(
        &[
            "--data-dir",
            data,
            "user",
            "add",
            "ada",
            "--role",
            "member",
            "--password-stdin",
        ],
        &[],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");

    let (ok, _, err) = cli(
        data,
        &["token", "create", "--user", "nobody", "--scope", "ingest"],
    );
    assert!(!ok && err.contains("nobody"), "{err}");
    let (ok, secret, err) = cli(
        data,
        &[
            "token", "create", "--user", "ada", "--scope", "ingest", "--name", "laptop",
        ],
    );
    assert!(ok, "{err}");
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("tt_") && secret.len() > 60, "{secret}");
    assert!(err.contains("shown only now"), "{err}");

    let server = Server::start(dir.path(), &[]);
    server.wait_ready();
    let events = json!([{
        "id": "msg_01", "timestamp": "2026-05-01T09:30:00-04:00", "model": "claude-sonnet-4-5",
        "input_tokens": 1200, "output_tokens": 80, "cost": "0.0048"
    }]);
    assert_eq!(
        post_events(&server, &secret, &events),
        (200, json!({"accepted": 1, "duplicates": 0, "conflicts": 0}))
    );
    assert_eq!(
        post_events(&server, &secret, &events),
        (200, json!({"accepted": 0, "duplicates": 1, "conflicts": 0}))
    );

    let (ok, list, err) = cli(data, &["token", "list", "--user", "ada"]);
    assert!(ok, "{err}");
    assert!(
        list.contains("laptop") && list.contains("ingest") && list.contains("active"),
        "{list}"
    );
    assert!(
        !list.contains(&secret[3..]),
        "the list never shows the secret"
    );
    let id = list
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .expect("a token id")
        .to_owned();

    let (ok, out, err) = cli(data, &["token", "revoke", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked"), "{out}");
    let (status, body) = post_events(&server, &secret, &events);
    assert_eq!(status, 401, "{body}");
    let (ok, _, err) = cli(data, &["token", "revoke", "999"]);
    assert!(!ok && err.contains("999"), "{err}");

    let (status, _) = server.terminate();
    assert!(status.success());
    let (ok, report, err) = cli(
        data,
        &[
            "report",
            "--json",
            "--from",
            "2026-05-01",
            "--to",
            "2026-05-02",
            "--tz",
            "America/New_York",
        ],
    );
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&report).expect("json");
    assert_eq!(report["totals"]["events"], 1);
    assert_eq!(report["totals"]["cost"], "0.004800");
}
