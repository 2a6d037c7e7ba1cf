//! Reading OTLP attributes (`KeyValue` lists) as the producers send them:
//! Claude Code, for one, sends its token counts as strings.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use sha2::{Digest, Sha256};

pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

pub fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match get(attrs, key)? {
        any_value::Value::StringValue(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        any_value::Value::IntValue(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `keys` that is present as text.
pub fn first_text(attrs: &[KeyValue], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| text(attrs, key))
}

/// Where an item's project, session and machine are read, in this order
/// of keys; for each key the item's own attribute (data point, log record,
/// span) wins over its resource's. Producers differ in where they put them:
/// Claude Code copies `OTEL_RESOURCE_ATTRIBUTES` onto its data points,
/// SDKs keep them on the resource.
///
/// - project: `project.name`, then `project` (named by whoever set up the
///   producer), then the repository: `vcs.repository.name`, as
///   `OWNER/NAME` when the same attribute set has `vcs.owner.name`.
/// - session: `session.id` (Claude Code, Gemini CLI), `conversation.id`
///   (Codex), `gen_ai.conversation.id` (the GenAI conventions).
/// - machine: `host.name` (the OpenTelemetry resource convention).
pub const PROJECT_KEYS: [&str; 2] = ["project.name", "project"];
pub const SESSION_KEYS: [&str; 3] = ["session.id", "conversation.id", "gen_ai.conversation.id"];
pub const MACHINE_KEYS: [&str; 1] = ["host.name"];

/// The first of `keys` present as text, each looked up on the item, then
/// on its resource.
pub fn layered(item: &[KeyValue], resource: &[KeyValue], keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|key| text(item, key).or_else(|| text(resource, key)))
}

/// The project of an item ([`PROJECT_KEYS`], then the repository).
pub fn project(item: &[KeyValue], resource: &[KeyValue]) -> Option<String> {
    layered(item, resource, &PROJECT_KEYS)
        .or_else(|| repository(item))
        .or_else(|| repository(resource))
}

/// `vcs.repository.name`, prefixed by `vcs.owner.name` of the same
/// attributes (unless the name already starts with it).
fn repository(attrs: &[KeyValue]) -> Option<String> {
    let name = text(attrs, "vcs.repository.name")?;
    Some(match text(attrs, "vcs.owner.name") {
        Some(owner) if !name.starts_with(&format!("{owner}/")) => format!("{owner}/{name}"),
        _ => name,
    })
}

/// The session of an item ([`SESSION_KEYS`]).
pub fn session(item: &[KeyValue], resource: &[KeyValue]) -> Option<String> {
    layered(item, resource, &SESSION_KEYS)
}

/// The machine of an item ([`MACHINE_KEYS`]).
pub fn machine(item: &[KeyValue], resource: &[KeyValue]) -> Option<String> {
    layered(item, resource, &MACHINE_KEYS)
}

/// A number sent as an int, a double or a decimal string.
pub fn number(attrs: &[KeyValue], key: &str) -> Option<f64> {
    match get(attrs, key)? {
        any_value::Value::IntValue(n) => Some(*n as f64),
        any_value::Value::DoubleValue(x) => Some(*x),
        any_value::Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A token count: a non-negative whole number, however it was sent (an
/// int, a whole double, a decimal string); `Ok(None)` when absent, and the
/// reason when present but unusable (NaN, a fraction, text, a list…), so
/// that the item is rejected and counted instead of read as zero.
pub fn count(attrs: &[KeyValue], key: &str) -> Result<Option<i64>, String> {
    let Some(value) = get(attrs, key) else {
        return Ok(None);
    };
    let number = match value {
        any_value::Value::IntValue(n) => Some(*n as f64),
        any_value::Value::DoubleValue(x) => Some(*x),
        any_value::Value::StringValue(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match number {
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 => {
            crate::model::limits::check_tokens(x.min(i64::MAX as f64) as i64)
                .map(Some)
                .map_err(|reason| format!("{key} {reason}"))
        }
        _ => Err(format!("{key} is not a non-negative whole number")),
    }
}

/// An amount of money in USD (a number or a decimal string) as
/// micro-units; `Ok(None)` when absent, the reason when unusable.
pub fn usd_micros(attrs: &[KeyValue], key: &str) -> Result<Option<i64>, String> {
    if get(attrs, key).is_none() {
        return Ok(None);
    }
    match number(attrs, key) {
        Some(usd) => crate::ingest::event::float_micros(usd)
            .map(Some)
            .map_err(|reason| format!("{key} {reason}")),
        None => Err(format!("{key} is not a number")),
    }
}

/// A stable digest of a set of attributes, independent of their order,
/// leaving out `skip`: identifies a series or a group of series.
pub fn digest(parts: &[&[KeyValue]], skip: &[&str], salt: &str) -> String {
    let mut pairs: Vec<String> = parts
        .iter()
        .flat_map(|attrs| attrs.iter())
        .filter(|kv| !skip.contains(&kv.key.as_str()))
        .map(|kv| format!("{}={}", kv.key, render(kv.value.as_ref())))
        .collect();
    pairs.sort();
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    for pair in pairs {
        hasher.update([0]);
        hasher.update(pair.as_bytes());
    }
    crate::secret::hex(&hasher.finalize())
}

fn render(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => format!("s:{s}"),
        Some(any_value::Value::IntValue(n)) => format!("i:{n}"),
        Some(any_value::Value::DoubleValue(x)) => format!("d:{x}"),
        Some(any_value::Value::BoolValue(b)) => format!("b:{b}"),
        Some(other) => format!("o:{other:?}"),
        None => "-".to_owned(),
    }
}
