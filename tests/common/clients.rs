//! Ingest clients for the tests that stress the real binary (crash,
//! backup): each sends NDJSON batches of [`BATCH`] events with ids that name
//! client and batch, retries a batch that got no answer until it is
//! acknowledged, and records what was sent and what was acknowledged.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::server::agent;

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
