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
pub mod limit;
pub mod litellm;
pub mod otlp;
pub use limit::RateLimiter;
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

/// Who sent an ingest request, and through which endpoint. Its audit
/// entry (counts, never contents) is written in the transaction that
/// stores its events, so the trail and the data never disagree, even
/// across a crash.
pub struct Sender {
    actor: crate::model::Actor,
    meta: crate::audit::RequestMeta,
    endpoint: &'static str,
    at_ms: i64,
    /// The token's budget of new names.
    pub budget: crate::usage::budget::NameBudget,
}

impl Sender {
    pub fn new(
        state: &crate::app::AppState,
        grant: &crate::auth::tokens::TokenGrant,
        meta: crate::audit::RequestMeta,
        endpoint: &'static str,
    ) -> Sender {
        let at_ms = state.clock.now().as_millisecond();
        Sender {
            actor: grant.actor(),
            meta,
            endpoint,
            at_ms,
            budget: crate::usage::budget::NameBudget {
                limits: state.name_limits,
                token_id: grant.token.0,
                now_ms: at_ms,
            },
        }
    }

    /// The entry of a request that stored `outcome` and rejected `rejected`
    /// items it could not use.
    pub fn entry(
        &self,
        outcome: crate::usage::store::InsertOutcome,
        rejected: i64,
    ) -> crate::audit::Entry {
        use crate::audit::{Action, Entry, Outcome};
        Entry {
            target: None,
            client_addr: self.meta.client_addr.clone(),
            user_agent: self.meta.user_agent.clone(),
            route: Some(self.meta.route.clone()),
            details: serde_json::json!({
                "endpoint": self.endpoint,
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "conflicts": outcome.conflicts,
                "rejected": rejected,
                "status": 200,
            }),
            ..Entry::new(
                self.at_ms,
                self.actor.clone(),
                Action::IngestRequest,
                Outcome::Success,
            )
        }
    }
}

/// The note of a request whose entry [`Sender::entry`] already wrote.
pub fn recorded_note() -> crate::audit::Note {
    crate::audit::Note::new(crate::model::Action::IngestRequest).recorded()
}
