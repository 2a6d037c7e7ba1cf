//! `POST /api/v1/events`: our own event format, as a JSON array or NDJSON,
//! optionally gzip-compressed, all or nothing.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::body::{self, Framing};
use super::error::{FieldError, IngestError};
use super::event::{self, ApiEvent};
use crate::app::AppState;
use crate::auth::tokens::TokenGrant;
use crate::auth::users;
use crate::auth::{IngestToken, UserId};
use crate::db::DbError;
use crate::usage::store::{Inserter, NewEvent};

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
}

pub async fn post_events(
    State(state): State<AppState>,
    IngestToken(grant): IngestToken,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestOutcome>, IngestError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => body::too_large_body(),
        _ => IngestError::BadRequest(rejection.body_text()),
    })?;
    let now = state.clock.now();
    // Decompressing and parsing megabytes is CPU work: off the async threads.
    let events = tokio::task::spawn_blocking(move || parse_request(&headers, body, now))
        .await
        .map_err(|e| IngestError::Internal(format!("parse task: {e}")))??;
    let attributed = attribute(&state, &grant, events).await?;
    let outcome = state
        .db
        .write(move |conn| Inserter::new(conn)?.insert(conn, &attributed))
        .await?;
    Ok(Json(IngestOutcome {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
    }))
}

/// Splits, parses and validates every event; any problem fails the whole
/// request, listing each.
fn parse_request(
    headers: &HeaderMap,
    body: Bytes,
    now: Timestamp,
) -> Result<Vec<ApiEvent>, IngestError> {
    let framing = body::framing(headers)?;
    let body = body::decode(headers, body)?;
    let values = split(framing, &body)?;
    if values.len() > MAX_EVENTS {
        return Err(IngestError::TooLarge(format!(
            "{} events in one request; send at most {MAX_EVENTS}",
            values.len()
        )));
    }
    let mut events = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    for (index, (line, value)) in values.into_iter().enumerate() {
        let parsed = match value {
            Ok(value) => event::parse(&value, now),
            Err(reason) => Err(vec![(None, reason)]),
        };
        match parsed {
            Ok(event) => events.push(event),
            Err(problems) => {
                errors.extend(problems.into_iter().map(|(field, reason)| FieldError {
                    index,
                    line,
                    field,
                    reason,
                }))
            }
        }
    }
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }
    if events.is_empty() {
        return Err(IngestError::BadRequest(
            "the request holds no events".into(),
        ));
    }
    Ok(events)
}

type Item = (Option<usize>, Result<Value, String>);

/// The body's events with their NDJSON line numbers; a line that is not
/// JSON is that event's problem, a JSON array that is not JSON is the
/// request's.
fn split(framing: Framing, body: &[u8]) -> Result<Vec<Item>, IngestError> {
    match framing {
        Framing::JsonArray => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(values)) => Ok(values.into_iter().map(|v| (None, Ok(v))).collect()),
            Ok(object @ Value::Object(_)) => Ok(vec![(None, Ok(object))]),
            Ok(_) => Err(IngestError::BadRequest(
                "the body must be a JSON array of events (or one event object)".into(),
            )),
            Err(e) => Err(IngestError::BadRequest(format!(
                "the body is not valid JSON: {e}"
            ))),
        },
        Framing::Ndjson => Ok(body
            .split(|byte| *byte == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(number, line)| {
                let value = serde_json::from_slice::<Value>(line)
                    .map_err(|e| format!("the line is not valid JSON: {e}"));
                (Some(number + 1), value)
            })
            .collect()),
    }
}

/// Whose events these are: the token's owner's, or, for an admin's token,
/// any named user's.
async fn attribute(
    state: &AppState,
    grant: &TokenGrant,
    events: Vec<ApiEvent>,
) -> Result<Vec<NewEvent>, IngestError> {
    let owner = grant.user.clone();
    let named: Vec<String> = events
        .iter()
        .filter_map(|e| e.user.clone())
        .filter(|name| !name.eq_ignore_ascii_case(&owner.username))
        .collect();
    let known: HashMap<String, UserId> = if owner.is_admin() && !named.is_empty() {
        state
            .db
            .read(move |conn| {
                let mut known = HashMap::new();
                for name in named {
                    if let Some(user) = users::by_name(conn, &name)? {
                        known.insert(name.to_lowercase(), user.id);
                    }
                }
                Ok::<_, DbError>(known)
            })
            .await?
    } else {
        HashMap::new()
    };
    let mut errors = Vec::new();
    let mut attributed = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        let user = match &event.user {
            None => Ok(owner.id),
            Some(name) if name.eq_ignore_ascii_case(&owner.username) => Ok(owner.id),
            Some(name) if owner.is_admin() => known
                .get(&name.to_lowercase())
                .copied()
                .ok_or_else(|| format!("no user named {name:?}")),
            Some(_) => Err(format!(
                "this token belongs to {:?} and may only send their events; only an admin's \
                 token may name other users",
                owner.username
            )),
        };
        match user {
            Ok(user) => attributed.push(new_event(event, user)),
            Err(reason) => errors.push(FieldError {
                index,
                line: None,
                field: Some("user".into()),
                reason,
            }),
        }
    }
    if errors.is_empty() {
        Ok(attributed)
    } else {
        Err(IngestError::Invalid(errors))
    }
}

fn new_event(event: ApiEvent, user: UserId) -> NewEvent {
    NewEvent {
        ts_ms: event.ts_ms,
        user,
        source: event.source,
        external_id: event.id,
        model: event.model,
        provider: event.provider,
        activity: event.activity,
        project: event.project,
        tokens: event.tokens,
        reported_cost_micros: event.cost_micros,
    }
}
