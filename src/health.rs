//! Liveness and readiness probes, public by design (no data in them).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use std::sync::{Arc, Mutex};

use crate::auth::{Gate, access};
use crate::db::{Db, DbError};

/// What the probes look at.
#[derive(Clone)]
pub struct HealthState {
    pub db: Db,
    pub readiness: Readiness,
}

/// Public: a load balancer or systemd asks without credentials.
pub fn routes(state: HealthState, gate: &Gate) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    access::public(routes, gate).with_state(state)
}

/// Whether the app is ready for traffic beyond the database answering
/// (the demo data set is still being generated, say).
#[derive(Clone, Default)]
pub struct Readiness {
    not_ready_because: Arc<Mutex<Option<String>>>,
}

impl Readiness {
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        if let Ok(mut slot) = self.not_ready_because.lock() {
            *slot = Some(reason.into());
        }
    }

    pub fn set_ready(&self) {
        if let Ok(mut slot) = self.not_ready_because.lock() {
            *slot = None;
        }
    }

    pub fn not_ready_because(&self) -> Option<String> {
        self.not_ready_because
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
    }
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers reads and the writer takes work, and start-up
/// work (the demo data) is finished.
async fn readyz(State(state): State<HealthState>) -> (StatusCode, Json<Value>) {
    let reads = state
        .db
        .read(|conn| Ok::<i64, DbError>(conn.query_row("SELECT 1", [], |row| row.get(0))?))
        .await
        .is_ok();
    let writes = state.db.writer_alive().await;
    let problem = match (reads, writes, state.readiness.not_ready_because()) {
        (false, _, _) => Some("the database does not answer reads".to_owned()),
        (_, false, _) => Some("the database writer has stopped".to_owned()),
        (_, _, reason) => reason,
    };
    match problem {
        None => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": reason})),
        ),
    }
}
