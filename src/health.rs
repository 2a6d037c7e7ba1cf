//! Liveness and readiness probes, public by design (no data in them).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::db::DbError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers reads and the writer takes work, and start-up
/// work (the demo data) is finished.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
