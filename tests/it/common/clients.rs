//! Ingest clients for the tests that stress the real binary (crash,
//! backup): each sends NDJSON batches of [`BATCH`] events with ids that name
//! client and batch, retries a batch that got no answer until it is
//! acknowledged, and records what was sent and what was acknowledged.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::server::{agent, run_cli};

pub const CLIENTS: usize = 4;
pub const BATCH: usize = 50;

pub fn batch_body(client: usize, batch: usize) -> String {
    (0..BATCH)
        .map(|event| {
            format!(
                r#"{{"id":"c{client}-b{batch}-e{event}","timestamp":"2026-06-10T10:{:02}:00Z","model":"m{}","input_tokens":{},"output_tokens":{}}}"#,
                event % 60,
                event % 3,
                100 + event,
                event
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the clients know: batches acknowledged (200), per client.
#[derive(Default)]
pub struct Ledger {
    pub acked: Mutex<BTreeSet<(usize, usize)>>,
    pub sent: Mutex<BTreeSet<(usize, usize)>>,
}

/// Sends batch after batch; a batch that got no answer is sent again
/// (idempotent) until acknowledged. Stops starting new batches when told.
pub fn client(
    id: usize,
    base: Arc<RwLock<String>>,
    token: String,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) {
    let agent = agent();
    let mut batch = 0;
    while !stop.load(Ordering::Relaxed) {
        let body = batch_body(id, batch);
        if let Ok(mut sent) = ledger.sent.lock() {
            sent.insert((id, batch));
        }
        loop {
            let url = format!(
                "{}/api/v1/events",
                base.read().map(|b| b.clone()).unwrap_or_default()
            );
            let answer = agent
                .post(&url)
                .header("authorization", &format!("Bearer {token}"))
                .header("content-type", "application/x-ndjson")
                .send(body.as_str());
            match answer {
                Ok(response) if response.status() == 200 => break,
                Ok(response) if ![429, 503].contains(&response.status().as_u16()) => {
                    panic!("batch {id}/{batch}: unexpected {}", response.status())
                }
                // No answer (killed mid-request), not ready or over the
                // rate limit: again.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        if let Ok(mut acked) = ledger.acked.lock() {
            acked.insert((id, batch));
        }
        batch += 1;
    }
}

/// An admin and an ingest token in the data directory `data`, made with
/// the real CLI; the token.
pub fn admin_ingest_token(data: &str) -> String {
    let (ok, _, err) = run_cli(
        &[
            "--data-dir",
            data,
            "user",
            "add",
            "root",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &[],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");
    let (ok, token, err) = run_cli(
        &[
            "--data-dir",
            data,
            "token",
            "create",
            "--user",
            "root",
            "--scope",
            "ingest",
        ],
        &[],
        None,
    );
    assert!(ok, "{err}");
    token.trim().to_owned()
}

/// [`CLIENTS`] client threads sending to whatever `base` says.
pub fn spawn_clients(
    base: &Arc<RwLock<String>>,
    token: &str,
    ledger: &Arc<Ledger>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|id| {
            let (base, token, ledger, stop) =
                (base.clone(), token.to_owned(), ledger.clone(), stop.clone());
            std::thread::spawn(move || client(id, base, token, ledger, stop))
        })
        .collect()
}
