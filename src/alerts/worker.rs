//! The delivery worker: takes what is due from the outbox
//! (`alert_deliveries`), sends it, and records the outcome.
//!
//! It polls (every [`POLL`], or sooner when woken) because alerts are
//! also recorded by other processes (`tokentally import` writes the same
//! database). Deliveries go in alert order per destination: a later alert
//! waits while an earlier one to the same destination is still being
//! retried, so a receiver that was down sees 50 %, 80 %, 100 % in that
//! order when it comes back. A failure is retried after [`backoff`]
//! (exponential, capped at an hour) until [`RETRY_WINDOW_MS`] after the
//! alert, then given up (`given_up_ms`, shown on the alerts page).
//!
//! Exactly once: a delivery is marked delivered after the receiver
//! acknowledged it. If the process dies in between, it is sent again
//! with the same `Idempotency-Key`, which the receiver can drop; nothing
//! else sends twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, params};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::channels;
use super::deliver::{Sender, Via};
use super::store::{self, AlertRow};
use crate::audit::{self, Action, Actor, Entry, Outcome};
use crate::clock::Clock;
use crate::db::{Db, DbError};

/// How often the outbox is read when nobody wakes the worker.
pub const POLL: Duration = Duration::from_secs(2);
/// The most deliveries one pass takes (each may wait its timeout).
pub const BATCH: usize = 50;
/// How long a failing delivery is retried, from the alert's recording.
pub const RETRY_WINDOW_MS: i64 = 48 * 3_600_000;
/// The first retry's delay; doubled each attempt.
pub const RETRY_BASE_MS: i64 = 5_000;
/// The longest delay between two attempts.
pub const RETRY_CAP_MS: i64 = 3_600_000;

/// The delay before the next attempt after `attempts` failed ones (1 or
/// more): `base × 2^(attempts-1)`, at most [`RETRY_CAP_MS`].
pub fn backoff(base_ms: i64, attempts: i64) -> i64 {
    let doublings = u32::try_from((attempts - 1).clamp(0, 30)).unwrap_or(30);
    base_ms
        .saturating_mul(1_i64 << doublings)
        .min(RETRY_CAP_MS.max(base_ms))
}

/// The worker's knobs (tests shorten the retry delay).
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub retry_base_ms: i64,
    pub poll: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            retry_base_ms: RETRY_BASE_MS,
            poll: POLL,
        }
    }
}

/// A running worker: wake it, or stop it (it finishes the delivery in
/// hand, never one cut in half).
pub struct Worker {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Worker {
    /// Starts the worker; `wake` is what makes it look at the outbox at
    /// once (the application's `alert_wake`, notified by requests that
    /// recorded alerts).
    pub fn spawn(
        db: Db,
        clock: Arc<dyn Clock>,
        sender: Sender,
        settings: WorkerSettings,
        wake: Arc<Notify>,
    ) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let run = Run {
            db,
            clock,
            sender,
            settings,
            stopped,
        };
        let handle = tokio::spawn(run.forever(Arc::clone(&wake)));
        Worker { wake, stop, handle }
    }

    /// Looks at the outbox now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What wakes it, for code that records alerts in this process (a
    /// `notify_one` after the commit saves up to a poll's wait).
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Stops after the delivery in hand (at most its timeout).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

struct Run {
    db: Db,
    clock: Arc<dyn Clock>,
    sender: Sender,
    settings: WorkerSettings,
    stopped: watch::Receiver<bool>,
}

/// One due delivery, resolved.
struct Due {
    rowid: i64,
    attempts: i64,
    alert: AlertRow,
    via: Via,
}

impl Run {
    async fn forever(mut self, wake: Arc<Notify>) {
        loop {
            if *self.stopped.borrow() {
                return;
            }
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "the alert outbox could not be read");
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll) => {}
                () = wake.notified() => {}
                _ = self.stopped.changed() => {}
            }
        }
    }

    /// Sends what is due now; a destination that fails is skipped for the
    /// rest of the pass (its later alerts wait their turn).
    async fn pass(&mut self) -> Result<(), DbError> {
        let now_ms = self.clock.now().as_millisecond();
        let due = self.db.read(move |conn| due(conn, now_ms, BATCH)).await?;
        let mut failing = HashSet::new();
        for delivery in due {
            if *self.stopped.borrow() {
                break;
            }
            let destination = match &delivery.via {
                Via::Channel(channel) => format!("c{}", channel.id),
                Via::MemberEmail(address) => format!("e{address}"),
            };
            if failing.contains(&destination) {
                continue;
            }
            let outcome = self.sender.send(&delivery.alert, &delivery.via).await;
            if outcome.is_err() {
                failing.insert(destination);
            }
            self.record(delivery, outcome).await?;
        }
        Ok(())
    }

    async fn record(&self, delivery: Due, outcome: Result<(), String>) -> Result<(), DbError> {
        let now_ms = self.clock.now().as_millisecond();
        let label = delivery.via.label();
        let alert_id = delivery.alert.id;
        match &outcome {
            Ok(()) => tracing::info!(alert = alert_id, to = %label, "alert delivered"),
            Err(error) => {
                tracing::warn!(alert = alert_id, to = %label, attempt = delivery.attempts + 1,
                               error = %error, "alert delivery failed");
            }
        }
        let base_ms = self.settings.retry_base_ms;
        self.db
            .write(move |conn| match outcome {
                Ok(()) => delivered(conn, &delivery, now_ms),
                Err(error) => failed(conn, &delivery, &error, now_ms, base_ms),
            })
            .await
    }
}

/// The deliveries due at `now_ms`, in alert order, each the earliest one
/// still pending for its destination.
fn due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<Due>, DbError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .prepare_cached(
            "SELECT d.rowid, d.alert_id, d.channel_id, d.email, d.attempts
             FROM alert_deliveries d
             WHERE d.delivered_ms IS NULL AND d.given_up_ms IS NULL AND d.next_attempt_ms <= ?1
               AND NOT EXISTS (
                   SELECT 1 FROM alert_deliveries e
                   WHERE e.delivered_ms IS NULL AND e.given_up_ms IS NULL
                     AND e.alert_id < d.alert_id
                     AND e.channel_id IS d.channel_id AND e.email IS d.email)
             ORDER BY d.alert_id, d.channel_id, d.email
             LIMIT ?2",
        )?
        .query_map(params![now_ms, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut due = Vec::with_capacity(rows.len());
    for (rowid, alert_id, channel_id, email, attempts) in rows {
        let Some(alert) = store::by_id(conn, alert_id)? else {
            continue;
        };
        let via = match (channel_id, email) {
            (Some(id), _) => match channels::by_id(conn, id)? {
                Some(channel) => Via::Channel(channel),
                None => continue,
            },
            (None, Some(address)) => Via::MemberEmail(address),
            (None, None) => continue,
        };
        due.push(Due {
            rowid,
            attempts,
            alert,
            via,
        });
    }
    Ok(due)
}

fn delivered(conn: &Connection, delivery: &Due, now_ms: i64) -> Result<(), DbError> {
    let changed = conn
        .prepare_cached(
            "UPDATE alert_deliveries SET delivered_ms = ?1, attempts = attempts + 1,
                 last_error = NULL
             WHERE rowid = ?2 AND delivered_ms IS NULL",
        )?
        .execute(params![now_ms, delivery.rowid])?;
    if changed == 0 {
        return Ok(());
    }
    let mut entry = Entry::new(
        now_ms,
        Actor::System("alerts".into()),
        Action::AlertSent,
        Outcome::Success,
    );
    entry.target = Some(format!("alert:{}", delivery.alert.id));
    entry.details = json!({
        "to": delivery.via.label(),
        "kind": delivery.alert.kind.name(),
        "idempotency_key": delivery.alert.idempotency_key,
        "attempts": delivery.attempts + 1,
    });
    audit::chain::append(conn, &[entry])
}

fn failed(
    conn: &Connection,
    delivery: &Due,
    error: &str,
    now_ms: i64,
    base_ms: i64,
) -> Result<(), DbError> {
    let attempts = delivery.attempts + 1;
    let give_up = now_ms - delivery.alert.created_ms >= RETRY_WINDOW_MS;
    if give_up {
        tracing::warn!(alert = delivery.alert.id, to = %delivery.via.label(),
                       "alert delivery given up after the retry window");
    }
    conn.prepare_cached(
        "UPDATE alert_deliveries SET attempts = ?1, last_error = ?2, next_attempt_ms = ?3,
             given_up_ms = ?4
         WHERE rowid = ?5 AND delivered_ms IS NULL",
    )?
    .execute(params![
        attempts,
        error,
        now_ms + backoff(base_ms, attempts),
        give_up.then_some(now_ms),
        delivery.rowid
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_an_hour() {
        let delays: Vec<i64> = (1..=5).map(|a| backoff(RETRY_BASE_MS, a)).collect();
        assert_eq!(delays, [5_000, 10_000, 20_000, 40_000, 80_000]);
        assert_eq!(backoff(RETRY_BASE_MS, 20), RETRY_CAP_MS);
        assert_eq!(backoff(RETRY_BASE_MS, 1_000), RETRY_CAP_MS);
        assert_eq!(backoff(100, 1), 100);
    }
}
