//! `POST /api/v1/ingest/litellm`: the LiteLLM proxy's `generic_api` logging
//! callback, which sends each call's `StandardLoggingPayload` as a JSON
//! array (`json_array`, its default), NDJSON (`ndjson`) or one object
//! (`single`), all as `application/json`.
//!
//! Mapping (FORMATS.md §5):
//! - id `id`; time `startTime` (epoch seconds; `endTime` if absent);
//!   model `model` (`model_group` if absent); provider
//!   `custom_llm_provider`; cost `response_cost` (USD, reported, so never
//!   re-priced).
//! - tokens: LiteLLM's `prompt_tokens` follows OpenAI and *includes* cached
//!   input (for Anthropic it adds cache reads and cache writes to it), so
//!   input = `prompt_tokens` − cache reads − cache writes, with the cache
//!   counts from `metadata.usage_object` (`cache_read_input_tokens`, or
//!   `prompt_tokens_details.cached_tokens`; `cache_creation_input_tokens`).
//! - user: `metadata.user_api_key_user_id`, else `end_user`, when an
//!   admin's token names an existing tokentally user; otherwise the token's
//!   owner (counted as `unattributed`: a proxy's webhook must not lose data
//!   because a name is unknown here).
//! - identity, for a collector token only (`ingest::identity`): the end
//!   user (`end_user`, `metadata.user_api_key_end_user_id`) or the key's
//!   user (`metadata.user_api_key_user_id`) as `litellm_user`, else the
//!   key (`metadata.user_api_key_alias`, or a digest of its hash) as
//!   `litellm_key`; a payload naming none is the token owner's.
//! - project, the first present of: `metadata.project`,
//!   `metadata.project_name`, the same two in `metadata.requester_metadata`
//!   (the metadata a client sent with its request), a request tag
//!   `project:NAME`, `metadata.user_api_key_team_alias`,
//!   `metadata.user_api_key_team_id`.
//! - activity: the first of `request_tags` that is not a `project:` tag,
//!   else `call_type`.
//! - a failed call (`status` = `failure`) with no tokens is skipped and
//!   counted; one with tokens is stored.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::IngestState;
use super::Sender;
use super::api::MAX_EVENTS;
use super::body::{self, Framing};
use super::error::IngestError;
use super::event::{ApiEvent, EventFields, Problem, number_micros, parse_time, whole_number};
use super::identity;
use super::pipeline::{self, Attribution, Mapped};
use crate::audit::RequestMeta;
use crate::auth::IngestToken;
use crate::usage::rates::Extras;

pub const SOURCE: &str = "litellm";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiteLlmOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    /// Duplicates whose content differs from what is stored under the id.
    pub conflicts: usize,
    /// Payloads not stored, by reason.
    pub skipped: BTreeMap<&'static str, usize>,
    /// Events stored under the token's owner because the user they name
    /// is not a tokentally user (or the token may not name users).
    pub unattributed: usize,
}

pub async fn post_litellm(
    State(state): State<IngestState>,
    IngestToken(grant): IngestToken,
    meta: RequestMeta,
    headers: HeaderMap,
    body: body::BudgetedBody,
) -> Result<(crate::audit::Note, Json<LiteLlmOutcome>), IngestError> {
    let body::BudgetedBody {
        bytes: body,
        mut reservation,
    } = body;
    let now = state.clock.now();
    let by_identity = grant.attributes_by_identity();
    let (events, skipped) = tokio::task::spawn_blocking(move || {
        // LiteLLM labels NDJSON application/json too: look at the body.
        let framing = match body::framing(&headers)? {
            Framing::JsonArray => Framing::Sniff,
            other => other,
        };
        let body = body::decode(&headers, body, &mut reservation)?;
        let items = body::split(framing, &body, MAX_EVENTS)?;
        // The bodies are gone once split: their share goes back.
        drop((body, reservation));
        pipeline::parse_items(items, MAX_EVENTS, |value| parse(value, now, by_identity))
    })
    .await
    .map_err(|e| IngestError::internal(crate::error::context("parse task", e)))??;
    let attributed =
        pipeline::attribute(&state, &grant, events, Attribution::OwnerFallback).await?;
    let skipped: BTreeMap<&'static str, usize> = skipped.into_iter().collect();
    let skipped_count = skipped.values().map(|n| *n as i64).sum();
    let sender = Sender::new(&state, &grant, meta, "litellm");
    let outcome = pipeline::store(&state, attributed.events, sender, skipped_count).await?;
    Ok((
        super::recorded_note(),
        Json(LiteLlmOutcome {
            accepted: outcome.accepted,
            duplicates: outcome.duplicates,
            conflicts: outcome.conflicts,
            skipped,
            unattributed: attributed.unattributed,
        }),
    ))
}

/// Our field names in a problem, as LiteLLM's payload names them.
fn payload_field(ours: &str) -> &str {
    match ours {
        "timestamp" => "startTime",
        "input_tokens" => "prompt_tokens",
        "output_tokens" => "completion_tokens",
        "cache_read_tokens" => "metadata.usage_object.cache_read_input_tokens",
        "cache_write_tokens" => "metadata.usage_object.cache_creation_input_tokens",
        "web_search_requests" => "metadata.usage_object.server_tool_use.web_search_requests",
        "cost" => "response_cost",
        "user" => "metadata.user_api_key_user_id",
        "activity" => "request_tags",
        "provider" => "custom_llm_provider",
        other => other,
    }
}

/// One `StandardLoggingPayload` as an event. `by_identity`: read the
/// identity it names (a collector token's payload).
pub fn parse(value: &Value, now: Timestamp, by_identity: bool) -> Result<Mapped, Vec<Problem>> {
    let Some(payload) = value.as_object() else {
        return Err(vec![(None, "a payload must be a JSON object".into())]);
    };
    let mut problems = Vec::new();
    let identity = if by_identity {
        identity::from_litellm(payload).unwrap_or_else(|problem| {
            problems.push(problem);
            None
        })
    } else {
        None
    };
    let mut problem = |field: &str, reason: String| problems.push((Some(field.to_owned()), reason));
    // Length and characters are checked by `ApiEvent::new`, as for every
    // producer: never cut short here (two long ids could become one).
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let metadata = payload.get("metadata");
    let usage = metadata.and_then(|m| m.get("usage_object"));

    let id = text(payload.get("id"));
    if id.is_none() {
        problem("id", "is required (a non-empty string)".into());
    }
    let model = text(payload.get("model")).or_else(|| text(payload.get("model_group")));
    if model.is_none() {
        problem("model", "is required (a non-empty string)".into());
    }
    let ts_ms = match start_time(payload.get("startTime").or_else(|| payload.get("endTime"))) {
        Ok(ms) => ms,
        Err(reason) => {
            problem("startTime", reason);
            now.as_millisecond()
        }
    };
    let mut count = |field: &str, value: Option<&Value>| match value {
        None | Some(Value::Null) => 0,
        Some(v) => whole_number(v).unwrap_or_else(|reason| {
            problem(field, reason);
            0
        }),
    };
    let prompt = count("prompt_tokens", payload.get("prompt_tokens"));
    let completion = count("completion_tokens", payload.get("completion_tokens"));
    let cache_read = match usage.and_then(|u| u.get("cache_read_input_tokens")) {
        Some(v) if !v.is_null() => count("metadata.usage_object.cache_read_input_tokens", Some(v)),
        _ => count(
            "metadata.usage_object.prompt_tokens_details.cached_tokens",
            usage
                .and_then(|u| u.get("prompt_tokens_details"))
                .and_then(|d| d.get("cached_tokens")),
        ),
    };
    let cache_write = count(
        "metadata.usage_object.cache_creation_input_tokens",
        usage.and_then(|u| u.get("cache_creation_input_tokens")),
    );
    let web_search_requests = count(
        "metadata.usage_object.server_tool_use.web_search_requests",
        usage
            .and_then(|u| u.get("server_tool_use"))
            .and_then(|s| s.get("web_search_requests")),
    );
    let cost_micros = match payload.get("response_cost") {
        None | Some(Value::Null) => None,
        Some(Value::Number(usd)) => number_micros(usd)
            .map_err(|reason| problem("response_cost", reason))
            .ok(),
        Some(_) => {
            problem("response_cost", "must be a non-negative number".into());
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let failed = payload.get("status").and_then(Value::as_str) == Some("failure");
    if failed && prompt == 0 && completion == 0 {
        return Ok(Mapped::Skipped("failed call without tokens"));
    }
    let user = text(metadata.and_then(|m| m.get("user_api_key_user_id")))
        .or_else(|| text(payload.get("end_user")));
    let tags: &[Value] = payload
        .get("request_tags")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let activity = tags
        .iter()
        .filter(|tag| !is_project_tag(tag))
        .find_map(|tag| text(Some(tag)))
        .or_else(|| text(payload.get("call_type")));
    let requester = metadata.and_then(|m| m.get("requester_metadata"));
    let in_metadata = |within: Option<&Value>, key: &str| text(within.and_then(|m| m.get(key)));
    // Where the project came from, to name it in a refusal.
    let (project, project_field) = [
        (in_metadata(metadata, "project"), "metadata.project"),
        (
            in_metadata(metadata, "project_name"),
            "metadata.project_name",
        ),
        (
            in_metadata(requester, "project"),
            "metadata.requester_metadata.project",
        ),
        (
            in_metadata(requester, "project_name"),
            "metadata.requester_metadata.project_name",
        ),
        (tags.iter().find_map(project_tag), "request_tags"),
        (
            in_metadata(metadata, "user_api_key_team_alias"),
            "metadata.user_api_key_team_alias",
        ),
        (
            in_metadata(metadata, "user_api_key_team_id"),
            "metadata.user_api_key_team_id",
        ),
    ]
    .into_iter()
    .find_map(|(project, field)| project.map(|p| (Some(p), field)))
    .unwrap_or((None, "project"));
    let fields = EventFields {
        id: id.unwrap_or_default(),
        ts_ms,
        user,
        model: model.unwrap_or_default(),
        provider: text(payload.get("custom_llm_provider")),
        activity,
        project,
        source: SOURCE.to_owned(),
        // Cached input is inside prompt_tokens; a producer that reports
        // more cache than prompt would go negative: clamp, never wrap.
        tokens: [
            (prompt - cache_read - cache_write).max(0),
            completion,
            cache_read,
            cache_write,
        ],
        // One call; LiteLLM's usage object names no 1-hour cache writes.
        extras: Extras {
            web_search_requests,
            one_request: true,
            ..Extras::default()
        },
        cost_micros,
        session: None,
        machine: None,
        identity,
    };
    ApiEvent::new(fields, now)
        .map(Mapped::Event)
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|(field, reason)| {
                    let field = field.map(|f| match f.as_str() {
                        "project" => project_field.to_owned(),
                        other => payload_field(other).to_owned(),
                    });
                    (field, reason)
                })
                .collect()
        })
}

/// Whether a request tag is a `project:` tag (never the activity).
fn is_project_tag(tag: &Value) -> bool {
    tag.as_str()
        .is_some_and(|t| t.trim_start().starts_with("project:"))
}

/// The project a request tag names (`project:NAME`), if it is one; a tag
/// `project:` with no name names none.
fn project_tag(tag: &Value) -> Option<String> {
    let name = tag.as_str()?.trim().strip_prefix("project:")?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Epoch seconds (a float) or an RFC 3339 string, as milliseconds.
fn start_time(value: Option<&Value>) -> Result<i64, String> {
    match value {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if (0.0..1e11).contains(&s) => Ok((s * 1000.0).round() as i64),
            _ => Err("must be epoch seconds".into()),
        },
        Some(Value::String(s)) => parse_time(s)
            .map(|t| t.as_millisecond())
            .map_err(|reason| format!("is neither epoch seconds nor an RFC 3339 time: {reason}")),
        _ => Err("is required (epoch seconds)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().expect("now")
    }

    fn event(value: Value) -> ApiEvent {
        match parse(&value, now(), false) {
            Ok(Mapped::Event(event)) => event,
            Ok(Mapped::Skipped(why)) => panic!("skipped: {why}"),
            Err(problems) => panic!("{problems:?}"),
        }
    }

    #[test]
    fn anthropic_through_litellm_keeps_cache_apart_from_input() {
        let e = event(json!({
            "id": "chatcmpl-1", "startTime": 1780000000.25, "model": "claude-sonnet-4-5",
            "prompt_tokens": 7396, "completion_tokens": 120, "response_cost": 0.0123456789,
            "status": "success", "call_type": "acompletion", "request_tags": ["review"],
            "custom_llm_provider": "anthropic",
            "metadata": {"user_api_key_user_id": "ada", "user_api_key_team_alias": "web",
                         "usage_object": {"cache_read_input_tokens": 7000,
                                          "cache_creation_input_tokens": 253,
                                          "server_tool_use": {"web_search_requests": 3}}}
        }));
        assert_eq!(e.tokens, [143, 120, 7000, 253]);
        assert_eq!(
            (e.extras.web_search_requests, e.extras.one_request),
            (3, true)
        );
        assert_eq!(e.ts_ms, 1_780_000_000_250);
        assert_eq!(e.cost_micros, Some(12_346));
        assert_eq!(
            (
                e.user.as_deref(),
                e.activity.as_deref(),
                e.project.as_deref()
            ),
            (Some("ada"), Some("review"), Some("web"))
        );
        assert_eq!(
            (e.provider.as_deref(), e.source.as_str()),
            (Some("anthropic"), "litellm")
        );
    }

    #[test]
    fn openai_cached_tokens_come_from_prompt_details() {
        let e = event(json!({
            "id": "x", "startTime": 1780000000, "model": "gpt-5", "prompt_tokens": 2000,
            "completion_tokens": 10, "call_type": "completion", "end_user": "grace",
            "metadata": {"usage_object": {"prompt_tokens_details": {"cached_tokens": 1500}}}
        }));
        assert_eq!(e.tokens, [500, 10, 1500, 0]);
        assert_eq!(
            (e.user.as_deref(), e.activity.as_deref()),
            (Some("grace"), Some("completion"))
        );
        assert_eq!(e.cost_micros, None);
    }

    #[test]
    fn failures_without_tokens_are_skipped_and_bad_payloads_named() {
        assert!(matches!(
            parse(
                &json!({"id": "f", "startTime": 1780000000, "model": "m", "status": "failure"}),
                now(),
                false
            ),
            Ok(Mapped::Skipped(_))
        ));
        let problems = parse(
            &json!({"startTime": "soon", "prompt_tokens": -1}),
            now(),
            false,
        )
        .err()
        .expect("invalid");
        let fields: Vec<_> = problems.iter().filter_map(|(f, _)| f.as_deref()).collect();
        assert_eq!(fields, vec!["id", "model", "startTime", "prompt_tokens"]);
    }
}
