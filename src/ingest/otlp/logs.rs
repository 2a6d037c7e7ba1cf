//! Claude Code's `claude_code.api_request` log events: one event per model
//! request, with its tokens and estimated cost. The token metrics describe
//! the same requests, so a server counts one or the other
//! ([`ClaudeCodeSignal`]).

use jiff::Timestamp;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::attrs;
use super::{ClaudeCodeSignal, Rejections};
use crate::ingest::event::{ApiEvent, EventFields};
use crate::ingest::identity;
use crate::usage::rates::Extras;

const API_REQUEST: &str = "claude_code.api_request";

fn is_api_request(record: &LogRecord) -> bool {
    let body_is = matches!(
        record.body.as_ref().and_then(|b| b.value.as_ref()),
        Some(any_value::Value::StringValue(s)) if s == API_REQUEST
    );
    record.event_name == API_REQUEST
        || body_is
        || matches!(
            attrs::text(&record.attributes, "event.name").as_deref(),
            Some("api_request" | API_REQUEST)
        )
}

/// The events of a request; records that are not usage are only counted.
/// `by_identity`: read each record's identity (a collector token's export).
pub fn events(
    request: &ExportLogsServiceRequest,
    claude_code_from: ClaudeCodeSignal,
    now: Timestamp,
    by_identity: bool,
) -> (Vec<ApiEvent>, Rejections, usize) {
    let mut events = Vec::new();
    let mut rejected = Rejections::default();
    let mut not_usage = 0;
    for resource_logs in &request.resource_logs {
        let resource: &[KeyValue] = resource_logs
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for record in resource_logs
            .scope_logs
            .iter()
            .flat_map(|s| s.log_records.iter())
        {
            if !is_api_request(record) {
                not_usage += 1;
                continue;
            }
            if claude_code_from == ClaudeCodeSignal::Metrics {
                rejected.add(
                    1,
                    "claude_code.api_request (this server counts Claude Code from its \
                     claude_code.token.usage metrics)"
                        .into(),
                );
                continue;
            }
            let event = event(resource, record, by_identity);
            match event.and_then(|fields| super::checked(fields, now)) {
                Ok(event) => events.push(event),
                Err(reason) => rejected.add(1, reason),
            }
        }
    }
    (events, rejected, not_usage)
}

fn event(
    resource: &[KeyValue],
    record: &LogRecord,
    by_identity: bool,
) -> Result<EventFields, String> {
    let a = &record.attributes;
    let identity = if by_identity {
        identity::from_otlp(resource, a)?
    } else {
        None
    };
    let model = attrs::text(a, "model").ok_or("claude_code.api_request without a model")?;
    let time_ns = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|t| *t > 0);
    let ts_ms = match attrs::text(a, "event.timestamp") {
        Some(text) => crate::ingest::event::parse_time(&text)
            .map_err(|reason| format!("event.timestamp: {reason}"))?
            .as_millisecond(),
        None => time_ns
            .map(|ns| i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX))
            .ok_or("claude_code.api_request without a time")?,
    };
    let count = |key: &str| attrs::count(a, key).map(Option::unwrap_or_default);
    let cost_micros = attrs::usd_micros(a, "cost_usd")?;
    // The same record re-sent is the same event.
    let id = attrs::digest(&[resource, a], &[], &format!("{API_REQUEST}@{ts_ms}"));
    Ok(EventFields {
        id: format!("l-{}", &id[..40]),
        ts_ms,
        user: None,
        model,
        provider: Some("anthropic".into()),
        activity: Some("claude-code".into()),
        project: attrs::project(a, resource),
        source: super::series::SOURCE.into(),
        tokens: [
            count("input_tokens")?,
            count("output_tokens")?,
            count("cache_read_tokens")?,
            count("cache_creation_tokens")?,
        ],
        // A log record (`claude_code.api_request`) is one request.
        extras: Extras {
            one_request: true,
            ..Extras::default()
        },
        cost_micros,
        session: attrs::session(a, resource),
        machine: attrs::machine(a, resource),
        identity,
    })
}
