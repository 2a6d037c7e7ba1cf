//! Ingestion: usage events from producers, authenticated by API tokens,
//! validated whole (a request is stored entirely or not at all), and
//! idempotent (an event whose id, source and user are stored already is
//! acknowledged as a duplicate, never counted twice).
//!
//! Events reach the single database writer, which folds concurrent
//! requests into one transaction (group commit); a request is answered
//! only after that transaction commits.

pub mod api;
pub mod body;
pub mod error;
pub mod event;
pub mod litellm;
pub mod otlp;
pub mod pipeline;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

pub use error::{FieldError, IngestError};

use crate::app::AppState;

/// Paths that take an API token (`Authorization: Bearer tt_…`) instead of
/// a session; `auth::require_login` lets them through to their extractor.
pub const TOKEN_PATHS: &[&str] = &[
    "/api/v1/events",
    "/api/v1/ingest/litellm",
    "/v1/metrics",
    "/v1/logs",
    "/v1/traces",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", post(api::post_events))
        .route("/api/v1/ingest/litellm", post(litellm::post_litellm))
        .route("/v1/metrics", post(otlp::post_metrics))
        .route("/v1/logs", post(otlp::post_logs))
        .route("/v1/traces", post(otlp::post_traces))
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
}

/// The audit note of an ingest request: counts, never contents.
pub(crate) fn audit_note(
    endpoint: &str,
    accepted: usize,
    duplicates: usize,
    rejected: i64,
) -> crate::audit::Note {
    crate::audit::Note::new(crate::audit::Action::IngestRequest).details(serde_json::json!({
        "endpoint": endpoint,
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
    }))
}
