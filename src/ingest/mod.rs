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
pub mod identity;
pub mod litellm;
pub mod otlp;
pub mod pipeline;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{MethodRouter, post};

pub use error::{FieldError, IngestError};

use crate::auth::{Gate, access};
use crate::clock::Clock;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::usage::budget::NameLimits;

/// The handles ingestion works with, handed out by the application.
#[derive(Clone)]
pub struct IngestState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The memory that ingest bodies and their decompression share.
    pub decode_budget: body::DecodeBudget,
    /// Which of Claude Code's OTLP signals counts its usage.
    pub claude_code_signal: otlp::ClaudeCodeSignal,
    /// How many new names ingestion may create a day (usage::budget).
    pub name_limits: NameLimits,
    /// The unusual-usage rule, checked after stored batches (at most once a
    /// minute).
    pub unusual: Arc<crate::budgets::UnusualWatch>,
    pub gate: Gate,
    /// Wakes the alert delivery worker when a request recorded alerts.
    pub alert_wake: Arc<tokio::sync::Notify>,
}

impl FromRef<IngestState> for Gate {
    fn from_ref(state: &IngestState) -> Gate {
        state.gate.clone()
    }
}

/// The ingest endpoints. The router is built from this table, and
/// [`paths`] reads it (the API description's test compares the two).
fn endpoints() -> [(&'static str, MethodRouter<IngestState>); 5] {
    [
        ("/api/v1/events", post(api::post_events)),
        ("/api/v1/ingest/litellm", post(litellm::post_litellm)),
        ("/v1/metrics", post(otlp::post_metrics)),
        ("/v1/logs", post(otlp::post_logs)),
        ("/v1/traces", post(otlp::post_traces)),
    ]
}

/// The paths this module serves.
pub fn paths() -> Vec<&'static str> {
    endpoints().into_iter().map(|(path, _)| path).collect()
}

/// The ingest endpoints: an ingest-scope API token each, nothing else.
pub fn routes(state: IngestState) -> Router {
    let routes = endpoints()
        .into_iter()
        .fold(Router::new(), |routes, (path, handler)| {
            routes.route(path, handler)
        })
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES));
    access::ingest_token(routes, &state.gate).with_state(state)
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
        state: &IngestState,
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
