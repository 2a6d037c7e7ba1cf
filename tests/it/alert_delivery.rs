//! Budget alerts reach a real webhook receiver exactly once, through the
//! real binary: channels and budgets made with the CLI, usage through the
//! HTTP event API, the delivery worker of `serve`. Exactly once survives a
//! receiver that is down, a restart and a SIGKILL between the crossing and
//! the delivery (counted by a receiver that deduplicates on
//! `Idempotency-Key`, as the README tells receivers to).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::common::clients::admin_ingest_token;
use crate::common::server::{Server, agent, run_cli};
use crate::common::webhook::{Received, Receiver, free_port};

const WAIT: Duration = Duration::from_secs(40);

fn cli(data: &str, args: &[&str]) -> String {
    let mut all = vec!["--data-dir", data];
    all.extend_from_slice(args);
    let (ok, out, err) = run_cli(&all, &[], None);
    assert!(ok, "{args:?}: {err}");
    out
}

/// One event of `model` costing `cost` US dollars, now.
pub(crate) fn ingest(server: &Server, token: &str, id: &str, model: &str, cost: &str) {
    let now = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let line = serde_json::json!({
        "id": id,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "model": model,
        "input_tokens": 10,
        "output_tokens": 10,
        "cost": cost,
    });
    let response = agent()
        .post(&server.url("/api/v1/events"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/x-ndjson")
        .send(line.to_string())
        .expect("ingest answers");
    assert_eq!(response.status(), 200, "ingest of {id}");
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A day budget of $10 on one model, alerting `channel` (a day has no
/// forecast on a fresh instance, so only thresholds alert).
fn budget(data: &str, name: &str, model: &str, channel: &str) {
    let scope = format!("model:{model}");
    cli(
        data,
        &[
            "budget",
            "add",
            name,
            "--period",
            "day",
            "--amount",
            "10",
            "--scope",
            &scope,
            "--time-zone",
            "UTC",
            "--channel",
            channel,
        ],
    );
}

/// Three deliveries: thresholds 50, 80, 100 in that order, each signed
/// with `secret`, carrying its key in the header and the body.
fn assert_thresholds(got: &[Received], budget: &str, model: &str, secret: &str, used: &[&str]) {
    assert_eq!(got.len(), 3, "{got:?}");
    for ((delivery, threshold), used) in got.iter().zip([50, 80, 100]).zip(used) {
        let body = delivery.json();
        assert_eq!(body["kind"], "threshold");
        assert_eq!(body["threshold"], threshold);
        assert_eq!(body["budget"], budget);
        assert_eq!(body["scope"], format!("model:{model}"));
        assert_eq!(body["amount"], "10.000000");
        assert_eq!(body["used"], *used);
        assert_eq!(body["unit"]["code"], "USD", "{body}");
        let events = body["events_url"].as_str().expect("events_url");
        assert!(
            events.starts_with("http://tokens.example/events?from=") && events.contains(model),
            "{events}"
        );
        let key = body["idempotency_key"].as_str().expect("key");
        assert_eq!(delivery.header("idempotency-key"), Some(key));
        assert!(key.ends_with(&format!(":{threshold}")), "{key}");
        let signature = delivery.header("x-tokentally-signature").expect("signed");
        assert_eq!(
            signature,
            format!("sha256={}", hmac_hex(secret, &delivery.body))
        );
        let fields: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields.len(), 12, "{fields:?}");
    }
}

#[test]
fn thresholds_crossed_in_steps_and_in_one_jump_arrive_once_each_in_order_signed() {
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let token = admin_ingest_token(data);
    let step_secret = "step-secret-Zq81";
    let jump_secret = "jump-secret-Lk27";
    cli(
        data,
        &[
            "channel",
            "add",
            "stepper",
            "--webhook",
            &receiver.url("/steps"),
            "--secret",
            step_secret,
        ],
    );
    cli(
        data,
        &[
            "channel",
            "add",
            "jumper",
            "--webhook",
            &receiver.url("/jump"),
            "--secret",
            jump_secret,
        ],
    );
    budget(data, "steps", "step-model", "stepper");
    budget(data, "jump", "jump-model", "jumper");
    let server = Server::start(dir.path(), &["--public-url", "http://tokens.example"]);
    server.wait_ready();

    for (i, cost) in ["3", "3", "3", "3"].iter().enumerate() {
        ingest(&server, &token, &format!("s{i}"), "step-model", cost);
    }
    ingest(&server, &token, "j0", "jump-model", "12");
    // An event sent twice is stored once, and alerts nothing new.
    ingest(&server, &token, "j0", "jump-model", "12");

    let steps = receiver.wait_for("/steps", 3, WAIT);
    let jump = receiver.wait_for("/jump", 3, WAIT);
    // Another two polls: nothing more arrives.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(receiver.all("/steps").len(), 3);
    assert_eq!(receiver.all("/jump").len(), 3);
    assert_thresholds(
        &steps,
        "steps",
        "step-model",
        step_secret,
        &["6.000000", "9.000000", "12.000000"],
    );
    assert_thresholds(&jump, "jump", "jump-model", jump_secret, &["12.000000"; 3]);

    let (_, log) = server.terminate();
    for secret in [step_secret, jump_secret] {
        assert!(!log.contains(secret), "the log shows a secret:\n{log}");
    }
    assert!(log.contains("alert delivered"), "{log}");
    let sent = audit_count(dir.path(), "alert.sent");
    assert_eq!(sent, 6);
}

fn audit_count(data_dir: &std::path::Path, action: &str) -> i64 {
    let conn = rusqlite::Connection::open(data_dir.join("tokentally.db")).expect("db");
    conn.query_row(
        "SELECT count(*) FROM audit_log WHERE action = ?1",
        [action],
        |row| row.get(0),
    )
    .expect("count")
}

fn failed_attempts(data_dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(data_dir.join("tokentally.db")).expect("db");
    conn.query_row(
        "SELECT coalesce(sum(attempts), 0) FROM alert_deliveries WHERE delivered_ms IS NULL",
        [],
        |row| row.get(0),
    )
    .expect("attempts")
}

#[test]
fn a_sigkill_a_restart_and_a_receiver_that_was_down_still_deliver_each_alert_once() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let token = admin_ingest_token(data);
    cli(
        data,
        &[
            "channel",
            "add",
            "ops",
            "--webhook",
            &url,
            "--secret",
            "kill-secret-9",
        ],
    );
    budget(data, "daily", "kill-model", "ops");
    let fast = [
        "--public-url",
        "http://tokens.example",
        "--alert-retry-ms",
        "200",
    ];

    // Crossed, then killed before anything could be delivered (the
    // receiver is not there yet either).
    let server = Server::start(dir.path(), &fast);
    server.wait_ready();
    ingest(&server, &token, "k0", "kill-model", "12");
    server.kill_hard();

    // Back up; the receiver is still down: attempts fail and back off.
    let server = Server::start(dir.path(), &fast);
    server.wait_ready();
    let deadline = std::time::Instant::now() + WAIT;
    while failed_attempts(dir.path()) == 0 {
        assert!(std::time::Instant::now() < deadline, "no attempt was made");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The receiver comes back: each alert arrives, in order.
    let receiver = Receiver::start(port);
    let got = receiver.wait_for("/hook", 3, WAIT);
    assert_thresholds(
        &got,
        "daily",
        "kill-model",
        "kill-secret-9",
        &["12.000000"; 3],
    );

    // A clean restart sends nothing again.
    let (_, log) = server.terminate();
    assert!(!log.contains("kill-secret-9"), "{log}");
    let server = Server::start(dir.path(), &fast);
    server.wait_ready();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(receiver.unique("/hook").len(), 3);
    assert_eq!(receiver.all("/hook").len(), 3, "a repeat was sent");
    drop(server);
}

#[test]
fn channel_list_never_shows_a_secret_and_test_sends_through_the_real_code() {
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let secret = "list-secret-Hq55";
    cli(
        data,
        &[
            "channel",
            "add",
            "probe",
            "--webhook",
            &receiver.url("/probe"),
            "--secret",
            secret,
        ],
    );
    cli(
        data,
        &[
            "channel",
            "add",
            "chat",
            "--webhook",
            &receiver.url("/chat"),
            "--format",
            "slack",
        ],
    );
    cli(
        data,
        &["channel", "add", "mail", "--email", "ops@example.com"],
    );
    for args in [&["channel", "list"][..], &["channel", "list", "--json"]] {
        let out = cli(data, args);
        assert!(!out.contains(secret), "{out}");
        assert!(
            out.contains("probe") && out.contains("ops@example.com"),
            "{out}"
        );
    }
    assert!(cli(data, &["channel", "list"]).contains("secret: set"));

    cli(data, &["channel", "test", "probe"]);
    let got = receiver.wait_for("/probe", 1, WAIT);
    let signature = got[0].header("x-tokentally-signature").expect("signed");
    assert_eq!(
        signature,
        format!("sha256={}", hmac_hex(secret, &got[0].body))
    );
    cli(data, &["channel", "test", "chat"]);
    let chat = receiver.wait_for("/chat", 1, WAIT);
    let text = chat[0].json()["text"]
        .as_str()
        .expect("slack text")
        .to_owned();
    assert!(text.contains("80 % reached"), "{text}");

    // Email without a mail server: a clear error, and audited.
    let (ok, _, err) = run_cli(&["--data-dir", data, "channel", "test", "mail"], &[], None);
    assert!(!ok);
    assert!(err.contains("smtp_url"), "{err}");
    assert_eq!(audit_count(dir.path(), "channel.test"), 3);
    assert_eq!(audit_count(dir.path(), "channel.create"), 3);

    for (args, field) in [
        (
            &["channel", "add", "x", "--webhook", "ftp://x"][..],
            "webhook:",
        ),
        (
            &["channel", "add", "y", "--email", "not-an-address"],
            "email:",
        ),
        (
            &["channel", "add", "probe", "--email", "a@b.example"],
            "already exists",
        ),
    ] {
        let mut all = vec!["--data-dir", data];
        all.extend_from_slice(args);
        let (ok, _, err) = run_cli(&all, &[], None);
        assert!(!ok && err.contains(field), "{args:?}: {err}");
    }
    cli(data, &["channel", "remove", "chat"]);
    assert!(!cli(data, &["channel", "list"]).contains("chat"));
}

#[test]
fn alerts_recorded_by_an_import_in_another_process_are_delivered_by_the_server() {
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    admin_ingest_token(data);
    cli(
        data,
        &[
            "channel",
            "add",
            "ops",
            "--webhook",
            &receiver.url("/import"),
            "--secret",
            "imp-9",
        ],
    );
    budget(data, "imported", "import-model", "ops");
    let server = Server::start(dir.path(), &["--public-url", "http://tokens.example"]);
    server.wait_ready();

    let now = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let line = serde_json::json!({
        "id": "i0", "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "model": "import-model", "input_tokens": 1, "output_tokens": 1, "cost": "12",
    });
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, format!("{line}\n")).expect("write");
    cli(
        data,
        &[
            "import",
            "--format",
            "jsonl",
            "--user",
            "root",
            file.to_str().expect("utf-8"),
        ],
    );

    let got = receiver.wait_for("/import", 3, WAIT);
    assert_thresholds(&got, "imported", "import-model", "imp-9", &["12.000000"; 3]);
    drop(server);
}
