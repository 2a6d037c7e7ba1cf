//! Alert emails through a real SMTP server (Python's aiosmtpd, which
//! prints every message it receives), from the real binary: a channel's
//! address and the member's own address each get each alert once, with
//! the idempotency key in a header and a Message-ID derived from it. Without a
//! mail server (or with one that is down) deliveries fail with a clear
//! error, are retried, and nothing shows the SMTP password.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::server::{Server, run_cli};
use crate::common::webhook::free_port;

const WAIT: Duration = Duration::from_secs(40);

/// `python3 -m aiosmtpd -n` on a free port: its messages, as printed.
struct SmtpSink {
    child: Child,
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    /// Whether Python's aiosmtpd is there: in CI it must be (`.ci/run`
    /// installs it); elsewhere the test is skipped with the command that
    /// installs it, so `cargo test` runs on a machine with only Rust.
    fn available() -> bool {
        let present = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !present {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install aiosmtpd (.ci/run does)"
            );
            eprintln!("skipping: no aiosmtpd (python3 -m pip install aiosmtpd)");
        }
        present
    }

    fn start() -> SmtpSink {
        let port = free_port();
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (aiosmtpd: pip install aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&messages);
        std::thread::spawn(move || {
            let mut current: Option<String> = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("---------- MESSAGE FOLLOWS") {
                    current = Some(String::new());
                } else if line.starts_with("------------ END MESSAGE") {
                    if let Some(message) = current.take() {
                        collected.lock().expect("messages").push(message);
                    }
                } else if let Some(message) = current.as_mut() {
                    message.push_str(&line);
                    message.push('\n');
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("aiosmtpd exited ({status}): is it installed? pip install aiosmtpd");
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            child,
            port,
            messages,
        }
    }

    fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.messages.lock().expect("messages").clone();
            if got.len() >= count {
                return got;
            }
            assert!(Instant::now() < deadline, "{} of {count} emails", got.len());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(data: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut all = vec!["--data-dir", data];
    all.extend_from_slice(args);
    let (ok, out, err) = run_cli(&all, &[], stdin);
    assert!(ok, "{args:?}: {err}");
    out
}

/// alice (alice@example.com) with an ingest token, a channel `mail`
/// (ops@example.com) and a $10 day budget on alice's usage; the token.
fn set_up(data: &str) -> String {
    let password = Some("a long enough password\n");
    cli(
        data,
        &["user", "add", "root", "--role", "admin", "--password-stdin"],
        password,
    );
    cli(
        data,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "member",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        password,
    );
    let token = cli(
        data,
        &["token", "create", "--user", "alice", "--scope", "ingest"],
        None,
    );
    cli(
        data,
        &["channel", "add", "mail", "--email", "ops@example.com"],
        None,
    );
    cli(
        data,
        &[
            "budget",
            "add",
            "alice-day",
            "--period",
            "day",
            "--amount",
            "10",
            "--scope",
            "user:alice",
            "--time-zone",
            "UTC",
            "--channel",
            "mail",
        ],
        None,
    );
    token.trim().to_owned()
}

/// One costed event, as the webhook tests send it.
fn ingest(server: &Server, token: &str, cost: &str) {
    crate::alert_delivery::ingest(server, token, "e1", "mail-model", cost);
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn a_channel_address_and_the_members_own_address_each_get_each_alert_once() {
    if !SmtpSink::available() {
        return;
    }
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let token = set_up(data);
    let smtp_url = format!("smtp://127.0.0.1:{}?tls=none", sink.port);
    let server = Server::start(
        dir.path(),
        &[
            "--smtp-url",
            &smtp_url,
            "--smtp-from",
            "alerts@tokentally.test",
        ],
    );
    server.wait_ready();
    ingest(&server, &token, "12");

    let messages = sink.wait_for(6);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        sink.messages.lock().expect("messages").len(),
        6,
        "a repeat was sent"
    );
    for to in ["ops@example.com", "alice@example.com"] {
        let mine: Vec<&String> = messages
            .iter()
            .filter(|m| header(m, "To").is_some_and(|t| t.contains(to)))
            .collect();
        assert_eq!(mine.len(), 3, "{to}: {messages:#?}");
        for (message, threshold) in mine.iter().zip([50, 80, 100]) {
            let key = header(message, "X-Tokentally-Idempotency-Key").expect("the key header");
            assert!(key.ends_with(&format!(":{threshold}")), "{key}");
            let id = header(message, "Message-ID").expect("Message-ID");
            assert_eq!(id, format!("<{}@tokentally.test>", key.replace(':', ".")));
            let subject = header(message, "Subject").expect("Subject");
            assert!(
                subject.contains(&format!("{threshold} % reached")),
                "{subject}"
            );
            assert!(message.contains("alice-day"), "{message}");
        }
    }
    drop(server);
}

fn last_errors(data_dir: &std::path::Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(data_dir.join("tokentally.db")).expect("db");
    let mut statement = conn
        .prepare("SELECT attempts, coalesce(last_error, '') FROM alert_deliveries WHERE delivered_ms IS NULL")
        .expect("prepare");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn wait_for_failures(data_dir: &std::path::Path) -> Vec<(i64, String)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = last_errors(data_dir);
        if rows.iter().any(|(attempts, _)| *attempts > 0) {
            return rows;
        }
        assert!(Instant::now() < deadline, "no failed attempt: {rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn without_a_mail_server_emails_fail_clearly_are_retried_and_never_show_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let token = set_up(data);

    // Not configured: a clear error, retried.
    let fast = ["--alert-retry-ms", "200"];
    let server = Server::start(dir.path(), &fast);
    server.wait_ready();
    ingest(&server, &token, "12");
    let failures = wait_for_failures(dir.path());
    // The first alert to each address is tried; the later two wait their
    // turn (alerts reach a destination in order).
    assert_eq!(failures.len(), 6, "{failures:?}");
    let tried: Vec<&String> = failures
        .iter()
        .filter(|(a, _)| *a > 0)
        .map(|(_, e)| e)
        .collect();
    assert!(tried.len() <= 2, "{failures:?}");
    assert!(tried.iter().all(|e| e.contains("smtp_url")), "{failures:?}");
    let retried = Instant::now() + WAIT;
    while !last_errors(dir.path())
        .iter()
        .any(|(attempts, _)| *attempts > 1)
    {
        assert!(Instant::now() < retried, "never retried");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.terminate();

    // Configured with a password, but the server is down.
    let password = "Smtp-Pass-W0rd-31";
    let url = format!("smtp://bob:{password}@127.0.0.1:{}?tls=none", free_port());
    let mut args = vec!["--smtp-url", &url, "--smtp-from", "alerts@tokentally.test"];
    args.extend_from_slice(&fast);
    let server = Server::start(dir.path(), &args);
    server.wait_ready();
    let deadline = Instant::now() + WAIT;
    let failures = loop {
        let rows = last_errors(dir.path());
        if rows.iter().all(|(_, e)| !e.contains("smtp_url")) {
            break rows;
        }
        assert!(Instant::now() < deadline, "still the old error: {rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, log) = server.terminate();
    assert!(log.contains("alert delivery failed"), "{log}");
    assert!(
        !log.contains(password),
        "the log shows the SMTP password:\n{log}"
    );
    for (_, error) in &failures {
        assert!(!error.contains(password), "{error}");
    }
}
