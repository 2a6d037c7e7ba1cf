//! The audit queue: requests hand their entry to a channel and go on; one
//! task takes whatever has queued up and appends it in one writer job.

use tokio::sync::{mpsc, oneshot};

use super::{Entry, chain};
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

enum Command {
    Record(Entry),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// Handle to the audit queue; cheap to clone, one per [`crate::app::AppState`].
#[derive(Clone)]
pub struct Audit {
    sender: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

impl Audit {
    /// Starts the task that writes queued entries. Needs a Tokio runtime
    /// (it may be called from `spawn_blocking`).
    pub fn start(db: Db, runtime: &tokio::runtime::Handle) -> Audit {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        runtime.spawn(write_loop(db, receiver));
        Audit { sender }
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
