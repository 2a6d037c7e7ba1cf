//! Which metric data points are token usage, and what each measures.
//!
//! | metric | kind attribute | notes |
//! | --- | --- | --- |
//! | `claude_code.token.usage` | `type`: input, output, cacheRead, cacheCreation | input excludes cache |
//! | `claude_code.cost.usage` | — | USD, kept as the reported cost |
//! | `gemini_cli.token.usage` | `type`: input, output, thought, cache, tool | input includes cache; thought is output |
//! | `codex.turn.token_usage` | `token_type`: input, cached_input, output, reasoning_output, tool | input includes cache; reasoning is inside output |
//! | `gen_ai.client.token.usage` | `gen_ai.token.type`: input, output | histogram: its `sum`; not counted when the same resource sends one of the metrics above (it describes the same calls) |
//!
//! Every other data point is rejected and reported, with its reason, in the
//! response's partial success. Project, session and machine are read from
//! the point and its resource ([`attrs::project`]).
//!
//! For a collector token each point also names its person
//! (`ingest::identity`, from the point's attributes and its resource's): a
//! point with an unusable identity is rejected like any other.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, metric::Data, number_data_point,
};

use super::attrs;
use super::series::{Quantity, Sample};
use super::{ClaudeCodeSignal, Rejections};
use crate::ingest::identity;

const VENDOR_TOKEN_METRICS: [&str; 3] = [
    "claude_code.token.usage",
    "gemini_cli.token.usage",
    "codex.turn.token_usage",
];

/// A point before its metric's meaning is applied.
struct Point<'a> {
    attributes: &'a [KeyValue],
    start_ns: u64,
    time_ns: u64,
    value: f64,
    cumulative: bool,
}

/// How one metric family reads its points.
struct Family {
    /// Groups the family's metrics into one event (tokens and cost of
    /// Claude Code share their attributes).
    name: &'static str,
    kind_attribute: Option<&'static str>,
    model_keys: &'static [&'static str],
    provider: Option<&'static str>,
    provider_keys: &'static [&'static str],
    activity: Option<&'static str>,
    activity_keys: &'static [&'static str],
    quantity: fn(Option<&str>) -> Result<Option<Quantity>, String>,
}

fn claude_tokens(kind: Option<&str>) -> Result<Option<Quantity>, String> {
    match kind {
        Some("input") => Ok(Some(Quantity::Input)),
        Some("output") => Ok(Some(Quantity::Output)),
        Some("cacheRead") => Ok(Some(Quantity::CacheRead)),
        Some("cacheCreation") => Ok(Some(Quantity::CacheWrite)),
        other => Err(format!("claude_code.token.usage with type {other:?}")),
    }
}

fn cost(_: Option<&str>) -> Result<Option<Quantity>, String> {
    Ok(Some(Quantity::CostUsd))
}

fn gemini_tokens(kind: Option<&str>) -> Result<Option<Quantity>, String> {
    match kind {
        Some("input") => Ok(Some(Quantity::InputWithCache)),
        Some("output" | "thought") => Ok(Some(Quantity::Output)),
        Some("cache") => Ok(Some(Quantity::CacheRead)),
        Some("tool") => Ok(Some(Quantity::Input)),
        other => Err(format!("gemini_cli.token.usage with type {other:?}")),
    }
}

fn codex_tokens(kind: Option<&str>) -> Result<Option<Quantity>, String> {
    match kind {
        Some("input") => Ok(Some(Quantity::InputWithCache)),
        Some("cached_input" | "cached" | "cache_read") => Ok(Some(Quantity::CacheRead)),
        Some("output") => Ok(Some(Quantity::Output)),
        // OpenAI counts reasoning inside the output tokens.
        Some("reasoning_output" | "reasoning") => Ok(None),
        Some("tool") => Ok(Some(Quantity::Input)),
        other => Err(format!("codex.turn.token_usage with token_type {other:?}")),
    }
}

fn gen_ai_tokens(kind: Option<&str>) -> Result<Option<Quantity>, String> {
    match kind {
        // The convention's input includes cached input, which this metric
        // does not break out: kept as input.
        Some("input") => Ok(Some(Quantity::Input)),
        Some("output") => Ok(Some(Quantity::Output)),
        other => Err(format!(
            "gen_ai.client.token.usage with gen_ai.token.type {other:?}"
        )),
    }
}

const CLAUDE_CODE: Family = Family {
    name: "claude_code",
    kind_attribute: Some("type"),
    model_keys: &["model"],
    provider: Some("anthropic"),
    provider_keys: &[],
    activity: Some("claude-code"),
    activity_keys: &[],
    quantity: claude_tokens,
};

fn family(name: &str) -> Option<Family> {
    Some(match name {
        "claude_code.token.usage" => CLAUDE_CODE,
        "claude_code.cost.usage" => Family {
            kind_attribute: None,
            quantity: cost,
            ..CLAUDE_CODE
        },
        "gemini_cli.token.usage" => Family {
            name: "gemini_cli",
            kind_attribute: Some("type"),
            model_keys: &["model"],
            provider: Some("google"),
            provider_keys: &[],
            activity: Some("gemini-cli"),
            activity_keys: &[],
            quantity: gemini_tokens,
        },
        "codex.turn.token_usage" => Family {
            name: "codex",
            kind_attribute: Some("token_type"),
            model_keys: &["model", "slug"],
            provider: Some("openai"),
            provider_keys: &[],
            activity: Some("codex"),
            activity_keys: &[],
            quantity: codex_tokens,
        },
        "gen_ai.client.token.usage" => Family {
            name: "gen_ai",
            kind_attribute: Some("gen_ai.token.type"),
            model_keys: &["gen_ai.response.model", "gen_ai.request.model"],
            provider: None,
            provider_keys: &["gen_ai.provider.name", "gen_ai.system"],
            activity: None,
            activity_keys: &["gen_ai.operation.name"],
            quantity: gen_ai_tokens,
        },
        _ => return None,
    })
}

/// The samples of a request, and the points that could not be used.
/// `by_identity`: read each point's identity (a collector token's export).
pub fn samples(
    request: &ExportMetricsServiceRequest,
    claude_code_from: ClaudeCodeSignal,
    by_identity: bool,
) -> (Vec<Sample>, Rejections) {
    let mut samples = Vec::new();
    let mut rejected = Rejections::default();
    for resource_metrics in &request.resource_metrics {
        let resource: &[KeyValue] = resource_metrics
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let metrics: Vec<&Metric> = resource_metrics
            .scope_metrics
            .iter()
            .flat_map(|scope| scope.metrics.iter())
            .collect();
        let vendor = metrics
            .iter()
            .find(|m| VENDOR_TOKEN_METRICS.contains(&m.name.as_str()))
            .map(|m| m.name.clone());
        for metric in metrics {
            let points = match points(metric) {
                Ok(points) => points,
                Err((count, reason)) => {
                    rejected.add(count, reason);
                    continue;
                }
            };
            if points.is_empty() {
                continue;
            }
            let refusal = match (metric.name.as_str(), &vendor) {
                ("gen_ai.client.token.usage", Some(vendor)) => Some(format!(
                    "gen_ai.client.token.usage from a resource that also sends {vendor} \
                     (the same calls; counted once, from {vendor})"
                )),
                ("claude_code.token.usage" | "claude_code.cost.usage", _)
                    if claude_code_from == ClaudeCodeSignal::Logs =>
                {
                    Some(format!(
                        "{} (this server counts Claude Code from its claude_code.api_request \
                         log events)",
                        metric.name
                    ))
                }
                _ => None,
            };
            if let Some(reason) = refusal {
                rejected.add(points.len(), reason);
                continue;
            }
            let Some(family) = family(&metric.name) else {
                rejected.add(
                    points.len(),
                    format!("{} is not a token or cost metric", metric.name),
                );
                continue;
            };
            for point in points {
                match sample(&metric.name, &family, resource, &point, by_identity) {
                    Ok(Some(sample)) => samples.push(sample),
                    Ok(None) => {}
                    Err(reason) => rejected.add(1, reason),
                }
            }
        }
    }
    (samples, rejected)
}

/// A metric's points, if it is a counter (a sum, or a histogram's sum).
fn points(metric: &Metric) -> Result<Vec<Point<'_>>, (usize, String)> {
    let cumulative = |temporality: i32| temporality == AggregationTemporality::Cumulative as i32;
    match &metric.data {
        Some(Data::Sum(sum)) => Ok(sum
            .data_points
            .iter()
            .map(|p| {
                // A point without a value (what a decoder makes of "NaN"
                // sent as asInt, say) is rejected and counted in
                // `sample`, not dropped unseen.
                let value = match p.value {
                    Some(number_data_point::Value::AsDouble(x)) => x,
                    Some(number_data_point::Value::AsInt(n)) => n as f64,
                    None => f64::NAN,
                };
                Point {
                    attributes: &p.attributes,
                    start_ns: p.start_time_unix_nano,
                    time_ns: p.time_unix_nano,
                    value,
                    cumulative: cumulative(sum.aggregation_temporality),
                }
            })
            .collect()),
        Some(Data::Histogram(histogram)) => Ok(histogram
            .data_points
            .iter()
            .map(|p| Point {
                attributes: &p.attributes,
                start_ns: p.start_time_unix_nano,
                time_ns: p.time_unix_nano,
                value: p.sum.unwrap_or(0.0),
                cumulative: cumulative(histogram.aggregation_temporality),
            })
            .collect()),
        Some(Data::Gauge(g)) => Err((g.data_points.len(), format!("{} is a gauge", metric.name))),
        Some(Data::ExponentialHistogram(h)) => Err((
            h.data_points.len(),
            format!("{} is an exponential histogram", metric.name),
        )),
        Some(Data::Summary(s)) => {
            Err((s.data_points.len(), format!("{} is a summary", metric.name)))
        }
        None => Ok(Vec::new()),
    }
}

fn sample(
    metric: &str,
    family: &Family,
    resource: &[KeyValue],
    point: &Point<'_>,
    by_identity: bool,
) -> Result<Option<Sample>, String> {
    let kind = family
        .kind_attribute
        .and_then(|key| attrs::text(point.attributes, key));
    let Some(quantity) = (family.quantity)(kind.as_deref())? else {
        return Ok(None);
    };
    if !point.value.is_finite() || point.value < 0.0 {
        return Err(format!("{metric} with a negative or non-finite value"));
    }
    let Some(model) = attrs::first_text(point.attributes, family.model_keys) else {
        return Err(format!("{metric} without a model attribute"));
    };
    let identity = if by_identity {
        identity::from_otlp(resource, point.attributes)?
    } else {
        None
    };
    let parts = [resource, point.attributes];
    let skip: Vec<&str> = family.kind_attribute.into_iter().collect();
    // The identity is part of the series and of the group: two people's
    // points never share a counter's state nor an event, even where
    // their attribute sets look alike (the same attributes, one on the
    // resource and one on the point, for instance).
    let salted = |salt: &str| match &identity {
        Some(identity) => format!("{salt}\0{identity}"),
        None => salt.to_owned(),
    };
    Ok(Some(Sample {
        series: attrs::digest(&parts, &[], &salted(metric)),
        group: attrs::digest(&parts, &skip, &salted(family.name)),
        quantity,
        value: point.value,
        cumulative: point.cumulative,
        start_ns: point.start_ns,
        time_ns: point.time_ns,
        model,
        provider: family
            .provider
            .map(str::to_owned)
            .or_else(|| attrs::first_text(point.attributes, family.provider_keys)),
        activity: family
            .activity
            .map(str::to_owned)
            .or_else(|| attrs::first_text(point.attributes, family.activity_keys)),
        project: attrs::project(point.attributes, resource),
        session: attrs::session(point.attributes, resource),
        machine: attrs::machine(point.attributes, resource),
        identity,
    }))
}
