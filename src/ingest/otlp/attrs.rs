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

/// A number sent as an int, a double or a decimal string.
pub fn number(attrs: &[KeyValue], key: &str) -> Option<f64> {
    match get(attrs, key)? {
        any_value::Value::IntValue(n) => Some(*n as f64),
        any_value::Value::DoubleValue(x) => Some(*x),
        any_value::Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A token count: a non-negative whole number, however it was sent.
pub fn count(attrs: &[KeyValue], key: &str) -> Option<i64> {
    number(attrs, key)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x.round() as i64)
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
