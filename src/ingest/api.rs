//! `POST /api/v1/events`: our own event format, as a JSON array or NDJSON,
//! optionally gzip-compressed, all or nothing.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use super::IngestState;
use super::Sender;
use super::body;
use super::error::IngestError;
use super::event;
use super::pipeline::{self, Attribution, Mapped};
use crate::audit::RequestMeta;
use crate::auth::IngestToken;

/// Most events in one request.
pub const MAX_EVENTS: usize = 10_000;

/// The answer to an accepted request. Field names are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Events stored by this request.
    pub accepted: usize,
    /// Events whose id (with source and user) was already stored: not
    /// counted again.
    pub duplicates: usize,
    /// Of the duplicates, those whose content differs from the event
    /// stored under the same id: the stored one stands. Usually a sender
    /// that reuses ids for different calls.
    pub conflicts: usize,
}

pub async fn post_events(
    State(state): State<IngestState>,
    IngestToken(grant): IngestToken,
    meta: RequestMeta,
    headers: HeaderMap,
    body: body::BudgetedBody,
) -> Result<(crate::audit::Note, Json<IngestOutcome>), IngestError> {
    let body::BudgetedBody {
        bytes: body,
        mut reservation,
    } = body;
    let now = state.clock.now();
    // Decompressing and parsing megabytes is CPU work: off the async threads.
    let events = tokio::task::spawn_blocking(move || {
        let framing = body::framing(&headers)?;
        let body = body::decode(&headers, body, &mut reservation)?;
        let items = body::split(framing, &body, MAX_EVENTS)?;
        // The bodies are gone once split: their share goes back.
        drop((body, reservation));
        let (events, _) = pipeline::parse_items(items, MAX_EVENTS, |value| {
            event::parse(value, now).map(Mapped::Event)
        })?;
        if events.is_empty() {
            return Err(IngestError::BadRequest(
                "the request holds no events".into(),
            ));
        }
        Ok(events)
    })
    .await
    .map_err(|e| IngestError::internal(crate::error::context("parse task", e)))??;
    let attributed = pipeline::attribute(&state, &grant, events, Attribution::Strict).await?;
    let sender = Sender::new(&state, &grant, meta, "events");
    let outcome = pipeline::store(&state, attributed.events, sender, 0).await?;
    Ok((
        super::recorded_note(),
        Json(IngestOutcome {
            accepted: outcome.accepted,
            duplicates: outcome.duplicates,
            conflicts: outcome.conflicts,
        }),
    ))
}
