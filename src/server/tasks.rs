//! What `serve` runs beside the listener until it stops: housekeeping
//! (sessions, OTLP series, audit retention), the audit chain's head kept
//! outside the database, the periodic evaluation of budgets, and the
//! roller that folds acknowledged events into the rollups.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::audit;
use crate::auth::SqliteSessionStore;
use crate::ingest::otlp::series;
use crate::model::Actor;

const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// How often the audit chain's head is checkpointed while it changes
/// (what a truncation can hide at most), and how often it is logged.
const HEAD_EVERY: Duration = Duration::from_secs(5);
const HEAD_LOG_EVERY: Duration = Duration::from_secs(600);

/// Checkpoints the audit chain's head outside the database
/// (`audit::head`), and writes it to the log now and then: a copy of the
/// head that someone with the data directory alone cannot take back.
pub(super) async fn keep_audit_head(state: AppState) {
    let mut every = tokio::time::interval(HEAD_EVERY);
    let mut logged_at: Option<tokio::time::Instant> = None;
    loop {
        every.tick().await;
        let db_path = state.db.path().to_path_buf();
        let now_ms = state.clock.now().as_millisecond();
        let written = state
            .db
            .read(move |conn| crate::audit::head::checkpoint(conn, &db_path, now_ms))
            .await;
        match written {
            Ok(Some(head)) if logged_at.is_none_or(|at| at.elapsed() >= HEAD_LOG_EVERY) => {
                tracing::info!(seq = head.seq, hash = %head.hash, "audit chain head");
                logged_at = Some(tokio::time::Instant::now());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not checkpoint the audit chain's head"),
        }
    }
}

/// How often every budget is evaluated besides the evaluation in each
/// ingest transaction: usage that changes without being stored through
/// ingest (a re-pricing, a link of an identity, a budget changed from the
/// CLI) is caught within this.
const BUDGET_WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) async fn watch_budgets(state: AppState, deliver_now: Arc<tokio::sync::Notify>) {
    let mut every = tokio::time::interval(BUDGET_WATCH_EVERY);
    loop {
        every.tick().await;
        let (now, unusual) = (state.clock.now(), state.unusual.clone());
        match state
            .db
            .write(move |conn| crate::budgets::watch::all(conn, now, &unusual))
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(alerts = n, "budget alerts recorded");
                deliver_now.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "could not evaluate the budgets"),
        }
    }
}

/// Housekeeping every few minutes: expired sessions, the state of OTLP
/// series whose exporter is long gone, and the audit retention.
pub(super) async fn sweep(state: AppState, audit_retention_days: Option<u32>) {
    let store = SqliteSessionStore::new(state.db.clone());
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        match store.delete_expired(state.now_unix()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired sessions"),
        }
        let cutoff = state.now_unix() - series::FORGET_AFTER_S;
        match state
            .db
            .write(move |conn| series::forget_stale(conn, cutoff))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(series = n, "stale OTLP series forgotten"),
            Err(e) => tracing::warn!(error = %e, "could not forget stale OTLP series"),
        }
        if let Some(days) = audit_retention_days {
            purge_audit(&state, days).await;
        }
    }
}

/// Applies the audit retention: entries older than `days` go, behind a
/// purge entry that anchors the rest of the chain.
async fn purge_audit(state: &AppState, days: u32) {
    // Queued entries first, so the purge entry follows them in the chain.
    state.audit.flush().await;
    let now_ms = state.clock.now().as_millisecond();
    let cutoff_ms = now_ms - i64::from(days) * 86_400_000;
    let actor = Actor::System("retention".into());
    match state
        .db
        .write(move |conn| audit::chain::purge_before(conn, cutoff_ms, actor, now_ms))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, days, "old audit entries purged"),
        Err(e) => tracing::warn!(error = %e, "could not purge old audit entries"),
    }
}

/// How often the roller looks for events past the rollup watermark. The
/// tail it leaves is what every read adds from the raw rows, so it stays
/// short; a longer wait would fold larger chunks.
const ROLL_EVERY: Duration = Duration::from_millis(200);

/// Folds acknowledged events into the rollups (`usage::rollup::roll`) in
/// chunks, between other writes.
pub(super) async fn roll_rollups(state: AppState) {
    use crate::usage::rollup;
    let mut every = tokio::time::interval(ROLL_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match state.db.read(rollup::pending).await {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not look for events to fold into the rollups");
                continue;
            }
        }
        if let Err(e) = rollup::fold_pending(&state.db, rollup::CHUNK).await {
            // Reads stay exact meanwhile (they add the waiting events);
            // retrying at once would only repeat the same failure.
            tracing::error!(error = %e, "could not fold events into the rollups; retrying later");
            tokio::time::sleep(ROLL_RETRY_AFTER).await;
        }
    }
}

/// The pause after a failed fold: the failure is a full disk, or a sum out
/// of range in a database written before the per-event limits, which
/// `tokentally verify --repair` mends.
const ROLL_RETRY_AFTER: Duration = Duration::from_secs(30);
