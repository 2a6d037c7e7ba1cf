//! GenAI spans (OpenTelemetry semantic conventions): one event per span
//! that reports token usage. The convention's input tokens include cached
//! input; cache reads and writes are subtracted to keep them apart.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::Rejections;
use super::attrs;
use crate::ingest::event::{ApiEvent, EventFields};
use crate::ingest::identity;
use crate::usage::rates::Extras;

const INPUT: [&str; 2] = ["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"];
const OUTPUT: [&str; 2] = [
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
];
const CACHE_READ: [&str; 2] = [
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
];
const CACHE_WRITE: [&str; 2] = [
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
];

/// The first of `keys` present; an unusable value is the span's problem.
fn first_count(attributes: &[KeyValue], keys: &[&str]) -> Result<Option<i64>, String> {
    for key in keys {
        if let Some(count) = attrs::count(attributes, key)? {
            return Ok(Some(count));
        }
    }
    Ok(None)
}

/// The events of a request; spans without token usage are only counted.
/// `by_identity`: read each span's identity (a collector token's export).
pub fn events(
    request: &ExportTraceServiceRequest,
    now: jiff::Timestamp,
    by_identity: bool,
) -> (Vec<ApiEvent>, Rejections, usize) {
    let mut events = Vec::new();
    let mut rejected = Rejections::default();
    let mut not_usage = 0;
    let spans = request.resource_spans.iter().flat_map(|r| {
        let resource: &[KeyValue] = r
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        r.scope_spans
            .iter()
            .flat_map(|s| s.spans.iter())
            .map(move |span| (resource, span))
    });
    for (resource, span) in spans {
        let a = &span.attributes;
        let (input, output) = match (first_count(a, &INPUT), first_count(a, &OUTPUT)) {
            (Ok(None), Ok(None)) => {
                not_usage += 1;
                continue;
            }
            (Ok(input), Ok(output)) => (input.unwrap_or(0), output.unwrap_or(0)),
            (Err(reason), _) | (_, Err(reason)) => {
                rejected.add(1, reason);
                continue;
            }
        };
        let event = event(resource, span, input, output, by_identity);
        match event.and_then(|fields| super::checked(fields, now)) {
            Ok(event) => events.push(event),
            Err(reason) => rejected.add(1, reason),
        }
    }
    (events, rejected, not_usage)
}

fn event(
    resource: &[KeyValue],
    span: &Span,
    input: i64,
    output: i64,
    by_identity: bool,
) -> Result<EventFields, String> {
    let a = &span.attributes;
    let identity = if by_identity {
        identity::from_otlp(resource, a)?
    } else {
        None
    };
    let model = attrs::first_text(a, &["gen_ai.response.model", "gen_ai.request.model"])
        .ok_or("a GenAI span without gen_ai.response.model or gen_ai.request.model")?;
    if span.trace_id.is_empty() || span.span_id.is_empty() {
        return Err("a GenAI span without a trace or span id".into());
    }
    let cache_read = first_count(a, &CACHE_READ)?.unwrap_or(0);
    let cache_write = first_count(a, &CACHE_WRITE)?.unwrap_or(0);
    Ok(EventFields {
        // A span is one call, and its ids are unique: a re-sent span is a
        // duplicate.
        id: format!(
            "s-{}-{}",
            crate::secret::hex(&span.trace_id),
            crate::secret::hex(&span.span_id)
        ),
        ts_ms: i64::try_from(span.start_time_unix_nano / 1_000_000).unwrap_or(i64::MAX),
        user: None,
        model,
        provider: attrs::first_text(a, &["gen_ai.provider.name", "gen_ai.system"]),
        activity: attrs::text(a, "gen_ai.operation.name"),
        project: attrs::project(a, resource),
        source: super::series::SOURCE.into(),
        tokens: [
            (input - cache_read - cache_write).max(0),
            output,
            cache_read,
            cache_write,
        ],
        // A span is one call.
        extras: Extras {
            one_request: true,
            ..Extras::default()
        },
        cost_micros: None,
        session: attrs::session(a, resource),
        machine: attrs::machine(a, resource),
        identity,
    })
}
