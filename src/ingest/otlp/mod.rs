//! OTLP/HTTP receivers: `POST /v1/metrics`, `/v1/traces` and `/v1/logs`,
//! protobuf or JSON, gzip or not, with the exporter's bearer token
//! (`OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer tt_…"`).
//!
//! What is read: token and cost metrics of Claude Code, Gemini CLI, Codex
//! and the GenAI conventions ([`metrics`]); Claude Code's
//! `claude_code.api_request` log events ([`logs`]); GenAI spans
//! ([`traces`]). Everything becomes events of the token's owner, source
//! `otlp`, with the project, session and machine each item or its
//! resource names ([`attrs::project`], [`attrs::session`],
//! [`attrs::machine`]); a collector token's items go to the person each
//! names (`ingest::identity`: `enduser.id`, `user.email`, account, install
//! id, from the item and its resource), and to its owner when they name no
//! one. A retried export adds nothing: delta points and spans have stable
//! ids, cumulative series are differenced against the last value stored
//! with the events ([`series`]). Metric points that cannot be used
//! are counted, with their reasons, in the response's partial success;
//! log records and spans that carry no usage are mentioned there too.

pub mod attrs;
pub mod codec;
pub mod logs;
pub mod metrics;
pub mod series;
pub mod traces;

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse as _;
use axum::response::Response;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::body;
use super::error::IngestError;
use super::event::{ApiEvent, EventFields};
use super::pipeline::{self, Attribution};
use crate::audit::{RequestMeta, chain};
use crate::auth::IngestToken;
use crate::ingest::IngestState;
use crate::ingest::Sender;
use crate::usage::store::{InsertOutcome, Inserter};

/// Which of Claude Code's two descriptions of the same requests counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClaudeCodeSignal {
    /// The `claude_code.token.usage` and `claude_code.cost.usage` metrics
    /// (`OTEL_METRICS_EXPORTER=otlp`).
    #[default]
    Metrics,
    /// The `claude_code.api_request` log events (`OTEL_LOGS_EXPORTER=otlp`).
    Logs,
}

/// Most data points, log records or spans in one export (the event API's
/// limit too); SDKs export far fewer (512 spans or records by default).
pub const MAX_ITEMS: usize = super::api::MAX_EVENTS;

/// Most distinct reasons listed in a partial-success message; the rest
/// are counted together, so a hostile export cannot make the answer large.
const MAX_REASONS: usize = 20;

/// Data that could not be used, by reason.
#[derive(Debug, Default)]
pub struct Rejections {
    pub count: i64,
    reasons: BTreeMap<String, i64>,
}

impl Rejections {
    pub fn add(&mut self, count: usize, reason: String) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.count = self.count.saturating_add(count);
        let reason = if self.reasons.len() < MAX_REASONS || self.reasons.contains_key(&reason) {
            reason
        } else {
            "other reasons".to_owned()
        };
        let counted = self.reasons.entry(reason).or_default();
        *counted = counted.saturating_add(count);
    }

    /// Adds every rejection of `other`.
    pub fn merge(&mut self, other: Rejections) {
        for (reason, count) in other.reasons {
            self.add(usize::try_from(count).unwrap_or(usize::MAX), reason);
        }
    }

    /// The partial-success message: every reason with its count, and a
    /// note on what was not usage (which is not a rejection).
    fn message(&self, not_usage: usize, what: &str) -> String {
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, n)| format!("{n} rejected: {reason}"))
            .collect();
        if not_usage > 0 {
            parts.push(format!("{not_usage} {what} carried no token usage"));
        }
        parts.join("; ")
    }
}

pub async fn post_metrics(
    State(state): State<IngestState>,
    IngestToken(grant): IngestToken,
    meta: RequestMeta,
    headers: HeaderMap,
    body: body::BudgetedBody,
) -> Result<Response, IngestError> {
    let signal = state.claude_code_signal;
    let by_identity = grant.attributes_by_identity();
    let ((samples, mut rejected), encoding) = decode_and_map(
        headers,
        body,
        |request: &ExportMetricsServiceRequest| count_points(request),
        move |request: &ExportMetricsServiceRequest| metrics::samples(request, signal, by_identity),
    )
    .await?;
    let (owner, now) = (grant.user.id, state.clock.now());
    let unusual = state.unusual.clone();
    let sender = Sender::new(&state, &grant, meta, "otlp.metrics");
    let (stored, refused, alerts) = state
        .db
        .write(move |conn| {
            // The series state moves with the events: both or neither.
            let (events, refused) = series::to_events(conn, &samples, owner, now)?;
            let stored = if events.is_empty() {
                InsertOutcome::default()
            } else {
                Inserter::new(conn)?
                    .with_budget(sender.budget)
                    .insert(conn, &events)?
            };
            let alerts = crate::budgets::watch::after_insert(conn, now, &stored, &unusual)?;
            let rejected_count = rejected.count + refused.count;
            chain::append(conn, &[sender.entry(stored, rejected_count)])?;
            Ok::<_, crate::db::DbError>((stored, refused, alerts))
        })
        .await?;
    if alerts > 0 {
        state.alert_wake.notify_one();
    }
    state.metrics.ingested(stored);
    rejected.merge(refused);
    let note = crate::ingest::recorded_note();
    let partial_success = (rejected.count > 0).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: rejected.count,
        error_message: rejected.message(0, ""),
    });
    Ok((
        note,
        codec::respond(&ExportMetricsServiceResponse { partial_success }, encoding),
    )
        .into_response())
}

pub async fn post_logs(
    State(state): State<IngestState>,
    IngestToken(grant): IngestToken,
    meta: RequestMeta,
    headers: HeaderMap,
    body: body::BudgetedBody,
) -> Result<Response, IngestError> {
    let signal = state.claude_code_signal;
    let now = state.clock.now();
    let by_identity = grant.attributes_by_identity();
    let ((events, rejected, not_usage), encoding) = decode_and_map(
        headers,
        body,
        |request: &ExportLogsServiceRequest| {
            request
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum()
        },
        move |request: &ExportLogsServiceRequest| logs::events(request, signal, now, by_identity),
    )
    .await?;
    let message = Stored {
        endpoint: "otlp.logs",
        what: "log records",
        not_usage,
    }
    .store(&state, &grant, meta, events, &rejected)
    .await?;
    let note = crate::ingest::recorded_note();
    let partial_success = (!message.is_empty()).then_some(ExportLogsPartialSuccess {
        rejected_log_records: rejected.count,
        error_message: message,
    });
    Ok((
        note,
        codec::respond(&ExportLogsServiceResponse { partial_success }, encoding),
    )
        .into_response())
}

pub async fn post_traces(
    State(state): State<IngestState>,
    IngestToken(grant): IngestToken,
    meta: RequestMeta,
    headers: HeaderMap,
    body: body::BudgetedBody,
) -> Result<Response, IngestError> {
    let now = state.clock.now();
    let by_identity = grant.attributes_by_identity();
    let ((events, rejected, not_usage), encoding) = decode_and_map(
        headers,
        body,
        |request: &ExportTraceServiceRequest| {
            request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum()
        },
        move |request: &ExportTraceServiceRequest| traces::events(request, now, by_identity),
    )
    .await?;
    let message = Stored {
        endpoint: "otlp.traces",
        what: "spans",
        not_usage,
    }
    .store(&state, &grant, meta, events, &rejected)
    .await?;
    let note = crate::ingest::recorded_note();
    let partial_success = (!message.is_empty()).then_some(ExportTracePartialSuccess {
        rejected_spans: rejected.count,
        error_message: message,
    });
    Ok((
        note,
        codec::respond(&ExportTraceServiceResponse { partial_success }, encoding),
    )
        .into_response())
}

/// Decodes an export request and maps it with `map`, off the async
/// threads: decompressing and decoding megabytes is CPU work. An export of
/// more than [`MAX_ITEMS`] items (by `count`) is refused whole.
async fn decode_and_map<R, T>(
    headers: HeaderMap,
    body: body::BudgetedBody,
    count: impl FnOnce(&R) -> usize + Send + 'static,
    map: impl FnOnce(&R) -> T + Send + 'static,
) -> Result<(T, codec::Encoding), IngestError>
where
    R: prost::Message + Default + serde::de::DeserializeOwned,
    T: Send + 'static,
{
    let body::BudgetedBody {
        bytes,
        mut reservation,
    } = body;
    tokio::task::spawn_blocking(move || {
        let (request, encoding) = codec::decode_within::<R>(&headers, bytes, &mut reservation)?;
        let items = count(&request);
        if items > MAX_ITEMS {
            return Err(IngestError::TooLarge(format!(
                "{items} data points, log records or spans in one export; send at most \
                 {MAX_ITEMS} (lower the exporter's batch size)"
            )));
        }
        Ok((map(&request), encoding))
    })
    .await
    .map_err(|e| IngestError::internal(crate::error::context("decode task", e)))?
}

/// The data points of a metrics export.
fn count_points(request: &ExportMetricsServiceRequest) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Sum(d)) => d.data_points.len(),
            Some(Data::Gauge(d)) => d.data_points.len(),
            Some(Data::Histogram(d)) => d.data_points.len(),
            Some(Data::ExponentialHistogram(d)) => d.data_points.len(),
            Some(Data::Summary(d)) => d.data_points.len(),
            None => 0,
        })
        .sum()
}

/// `fields` as an event, or the reasons it cannot be one (on one line:
/// OTLP reports rejections as text).
fn checked(fields: EventFields, now: jiff::Timestamp) -> Result<ApiEvent, String> {
    ApiEvent::new(fields, now).map_err(crate::ingest::event::describe)
}

/// How a logs or traces export is stored and answered.
struct Stored {
    endpoint: &'static str,
    /// What the export's items are called in the partial-success message.
    what: &'static str,
    /// Items that carried no token usage (not a rejection).
    not_usage: usize,
}

impl Stored {
    /// Stores the events as the token owner's (OTLP names no tokentally
    /// user), or a collector token's as their identities', with the
    /// request's audit entry; the partial-success message.
    async fn store(
        self,
        state: &IngestState,
        grant: &crate::auth::tokens::TokenGrant,
        meta: RequestMeta,
        events: Vec<ApiEvent>,
        rejected: &Rejections,
    ) -> Result<String, IngestError> {
        let sender = Sender::new(state, grant, meta, self.endpoint);
        let attributed = pipeline::attribute(state, grant, events, Attribution::Strict).await?;
        pipeline::store(state, attributed.events, sender, rejected.count).await?;
        Ok(rejected.message(self.not_usage, self.what))
    }
}
