//! The single writer thread and its group commit.
//!
//! Jobs arrive through a channel. The thread takes the first one, then
//! everything else already queued (up to `max_batch`), and runs them all in
//! one `BEGIN IMMEDIATE … COMMIT`. Each job gets its own savepoint: a job
//! that returns an error (or panics) is rolled back alone. Replies are sent
//! only after the commit, so "acknowledged" means "on disk".

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::DbError;

/// A unit of work for the writer; type-erased so one channel carries all.
trait WriteJob: Send {
    /// Runs the job inside the open transaction, in its own savepoint.
    /// Returns `false` when SQLite rolled the whole transaction back (it
    /// does on a full disk or an I/O error): the jobs before this one in
    /// the batch are then undone too.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), BatchFailure>);
}

/// Why every job of a batch failed together.
#[derive(Debug, Clone)]
enum BatchFailure {
    /// `BEGIN` or `COMMIT` failed with this error.
    Sqlite(Arc<rusqlite::Error>),
    /// SQLite rolled the transaction back on its own.
    RolledBack,
}

impl From<BatchFailure> for DbError {
    fn from(failure: BatchFailure) -> Self {
        match failure {
            BatchFailure::Sqlite(e) => DbError::Commit(e),
            BatchFailure::RolledBack => DbError::RolledBack,
        }
    }
}

struct TypedJob<F, T, E> {
    work: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> WriteJob for TypedJob<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: From<DbError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return true;
        };
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            self.outcome = Some(Err(E::from(DbError::from(e))));
            return !conn.is_autocommit();
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(E::from(DbError::TaskPanicked)));
        if outcome.is_err() && conn.is_autocommit() {
            // SQLite already rolled everything back; keep the job's own
            // error (the savepoint is gone with the transaction).
            self.outcome = Some(outcome);
            return false;
        }
        let end = match outcome {
            Ok(_) => conn.execute_batch("RELEASE job"),
            Err(_) => conn.execute_batch("ROLLBACK TO job; RELEASE job"),
        };
        self.outcome = Some(match end {
            Ok(()) => outcome,
            Err(e) => Err(E::from(DbError::from(e))),
        });
        !conn.is_autocommit()
    }

    fn finish(self: Box<Self>, commit: Result<(), BatchFailure>) {
        let answer = match (self.outcome, commit) {
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(failure)) => Err(E::from(DbError::from(failure))),
            (Some(Err(e)), _) => Err(e),
            (None, Err(failure)) => Err(E::from(DbError::from(failure))),
            (None, Ok(())) => Err(E::from(DbError::WriterGone)),
        };
        // The caller may have gone away (client disconnected); the work is
        // committed regardless, which is what it asked for.
        let _ = self.reply.send(answer);
    }
}

enum Message {
    Job(Box<dyn WriteJob>),
    Shutdown(oneshot::Sender<()>),
}

pub(super) struct Writer {
    sender: mpsc::Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<WriterStats>,
}

/// Upper bounds of the batch-size histogram (jobs per transaction).
pub const BATCH_BUCKETS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// What the writer has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Jobs sent and not yet taken into a transaction.
    pub queued: AtomicI64,
    /// Transactions run, and how many jobs each held (cumulative buckets
    /// as Prometheus wants them: `le` each of [`BATCH_BUCKETS`]).
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
    pub batch_buckets: [AtomicU64; 9],
}

impl WriterStats {
    fn batch(&self, jobs: usize) {
        let jobs = jobs as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(jobs, Ordering::Relaxed);
        self.queued.fetch_sub(jobs as i64, Ordering::Relaxed);
        for (bound, count) in BATCH_BUCKETS.iter().zip(&self.batch_buckets) {
            if jobs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Writer {
    pub(super) fn start(conn: Connection, max_batch: usize) -> Result<Writer, DbError> {
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        let counted = stats.clone();
        let thread = std::thread::Builder::new()
            .name("tokentally-writer".into())
            .spawn(move || writer_loop(conn, receiver, max_batch.max(1), &counted))
            .map_err(DbError::WriterThread)?;
        Ok(Writer {
            sender,
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    pub(super) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    pub(super) async fn run<F, T, E>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.sender
            .send(Message::Job(Box::new(job)))
            .map_err(|_| E::from(DbError::WriterGone))?;
        answer.await.map_err(|_| E::from(DbError::WriterGone))?
    }

    pub(super) async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.sender.send(Message::Shutdown(done)).is_ok() {
            let _ = finished.await;
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

fn writer_loop(
    conn: Connection,
    receiver: mpsc::Receiver<Message>,
    max_batch: usize,
    stats: &WriterStats,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::new();
        let mut shutdown = None;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Job(job) => batch.push(job),
                Message::Shutdown(done) => {
                    shutdown = Some(done);
                    break;
                }
            }
            if batch.len() < max_batch {
                next = receiver.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            stats.batch(batch.len());
            run_batch(&conn, batch);
        }
        if let Some(done) = shutdown {
            checkpoint(&conn);
            let _ = done.send(());
            return;
        }
    }
    // Every handle was dropped without an explicit shutdown.
    checkpoint(&conn);
}

fn run_batch(conn: &Connection, mut batch: Vec<Box<dyn WriteJob>>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let failure = BatchFailure::Sqlite(Arc::new(e));
        for job in batch {
            job.finish(Err(failure.clone()));
        }
        return;
    }
    for index in 0..batch.len() {
        if !batch[index].run(conn) {
            tracing::error!(jobs = index + 1, "write transaction rolled back by SQLite");
            // This job and the ones before it are undone; the rest run in
            // a transaction of their own.
            let rest = batch.split_off(index + 1);
            for job in batch {
                job.finish(Err(BatchFailure::RolledBack));
            }
            if !rest.is_empty() {
                run_batch(conn, rest);
            }
            return;
        }
    }
    let commit = conn.execute_batch("COMMIT").map_err(|e| {
        tracing::error!(error = %e, jobs = batch.len(), "write transaction failed to commit");
        let _ = conn.execute_batch("ROLLBACK");
        BatchFailure::Sqlite(Arc::new(e))
    });
    for job in batch {
        job.finish(commit.clone());
    }
}

/// Moves the WAL's content into the main file and truncates the WAL, so a
/// stopped server leaves one self-contained file behind.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "WAL checkpoint at shutdown failed");
    }
}
