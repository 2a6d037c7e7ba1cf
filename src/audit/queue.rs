//! The audit queue: requests hand their entry to a channel and go on; one
//! task takes whatever has queued up and appends it in one writer job.
//! Refused anonymous requests pass through [`Refusals`] first (counted,
//! one row per window); a second task writes the counts of closed windows.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::sample::Refusals;
use super::{Entry, chain};
use crate::clock::Clock;
use crate::db::{Db, DbError};

/// Entries waiting beyond this make `record` wait: back-pressure instead of
/// unbounded memory when the disk cannot keep up. Entries are never dropped.
const QUEUE_CAPACITY: usize = 8192;
/// Most entries in one writer job.
const MAX_BATCH: usize = 1024;
/// How long the first entry of a batch waits for others. Every commit
/// makes each reader connection drop its page cache (SQLite notices the
/// changed WAL), so committing per request would tax every read; a short
/// wait makes one commit out of a burst. A flush cuts it short.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);
/// How often the counts of closed refusal windows are written.
const SWEEP_REFUSALS: std::time::Duration = std::time::Duration::from_secs(10);

enum Command {
    Record(Entry),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// Handle to the audit queue; cheap to clone, one per [`crate::app::AppState`].
#[derive(Clone)]
pub struct Audit {
    sender: mpsc::Sender<Command>,
    refusals: Refusals,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

impl Audit {
    /// Starts the task that writes queued entries. Needs a Tokio runtime
    /// (it may be called from `spawn_blocking`).
    pub fn start(db: Db, clock: Arc<dyn Clock>, runtime: &tokio::runtime::Handle) -> Audit {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        runtime.spawn(write_loop(db, receiver));
        let refusals = Refusals::default();
        runtime.spawn(sweep_refusals(refusals.clone(), sender.downgrade(), clock));
        Audit { sender, refusals }
    }

    /// Queues the entry of a refused anonymous request: written when it is
    /// the first of its window, else counted ([`super::sample`]).
    pub async fn record_refused(&self, entry: Entry) {
        for row in self.refusals.admit(entry) {
            self.record(row).await;
        }
    }

    /// Writes every refusal count not yet written, then flushes: the
    /// shutdown's last audit step.
    pub async fn drain(&self) {
        for row in self.refusals.drain() {
            self.record(row).await;
        }
        self.flush().await;
    }

    /// The refusal windows (tests).
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Queues `entry`. Only waits when the queue is full.
    pub async fn record(&self, entry: Entry) {
        if self.sender.send(Command::Record(entry)).await.is_err() {
            // Only after shutdown; never expected while serving.
            tracing::error!("the audit queue is closed; an entry was not recorded");
        }
    }

    /// Waits until every entry queued so far is committed (tests, shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Writes the counts of closed refusal windows every few seconds, until
/// the queue is gone.
async fn sweep_refusals(
    refusals: Refusals,
    sender: mpsc::WeakSender<Command>,
    clock: Arc<dyn Clock>,
) {
    let mut every = tokio::time::interval(SWEEP_REFUSALS);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(sender) = sender.upgrade() else {
            return;
        };
        for row in refusals.closed(clock.now().as_millisecond()) {
            if sender.send(Command::Record(row)).await.is_err() {
                return;
            }
        }
    }
}

async fn write_loop(db: Db, mut receiver: mpsc::Receiver<Command>) {
    while let Some(first) = receiver.recv().await {
        let mut entries = Vec::new();
        let mut waiters = Vec::new();
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Record(entry) => entries.push(entry),
                Command::Flush(done) => waiters.push(done),
            }
            if entries.len() >= MAX_BATCH {
                break;
            }
            next = match receiver.try_recv() {
                Ok(command) => Some(command),
                // Nothing queued: wait for more unless someone is waiting
                // for a flush (or the linger is over).
                Err(_) if waiters.is_empty() => tokio::time::timeout_at(deadline, receiver.recv())
                    .await
                    .ok()
                    .flatten(),
                Err(_) => None,
            };
        }
        if !entries.is_empty() {
            write_batch(&db, entries).await;
        }
        for done in waiters {
            let _ = done.send(());
        }
    }
}

/// Appends one batch; on failure retries once, then logs what was lost
/// (the count and actions, never the contents).
async fn write_batch(db: &Db, entries: Vec<Entry>) {
    let entries = std::sync::Arc::new(entries);
    for attempt in 1..=2 {
        let batch = entries.clone();
        let written = db.write(move |conn| chain::append(conn, &batch)).await;
        match written {
            Ok(()) => return,
            Err(e) if attempt == 1 => {
                tracing::warn!(error = %e, "audit batch failed; retrying");
            }
            Err(e) => log_lost(&entries, &e),
        }
    }
}

fn log_lost(entries: &[Entry], error: &DbError) {
    let actions: Vec<&str> = entries.iter().map(|e| e.action.code()).collect();
    tracing::error!(
        error = %error,
        count = entries.len(),
        ?actions,
        "audit entries could not be written"
    );
}
