//! Our own event format (FORMATS.md §1), validated field by field so that
//! every problem is reported with the field it concerns.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::auth::UserId;
use crate::usage::prices::parse_micros;
use crate::usage::store::NewEvent;

/// Longest id, name or label we store.
const MAX_TEXT: usize = 256;
/// More tokens than any single call uses; keeps sums far from overflow.
const MAX_TOKENS: i64 = 1_000_000_000_000;
/// Events stamped further ahead than this are a clock or unit mistake
/// (milliseconds sent as seconds, say).
const MAX_FUTURE_S: i64 = 24 * 3600;
/// The source of events sent to the event API without one.
pub const DEFAULT_SOURCE: &str = "api";

use crate::usage::EVENT_FIELDS as FIELDS;

/// One valid event as the API received it; the user is still a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEvent {
    pub id: String,
    pub ts_ms: i64,
    pub user: Option<String>,
    pub model: String,
    pub provider: Option<String>,
    pub activity: Option<String>,
    pub project: Option<String>,
    pub source: String,
    pub tokens: [i64; 4],
    pub cost_micros: Option<i64>,
}

impl ApiEvent {
    /// The event for the store, as `user`'s.
    pub fn into_new_event(self, user: UserId) -> NewEvent {
        NewEvent {
            ts_ms: self.ts_ms,
            user,
            source: self.source,
            external_id: self.id,
            model: self.model,
            provider: self.provider,
            activity: self.activity,
            project: self.project,
            tokens: self.tokens,
            reported_cost_micros: self.cost_micros,
        }
    }
}

/// A problem with one field (`None`: the event as a whole).
pub type Problem = (Option<String>, String);

/// Validates one event; every problem is listed, not only the first.
pub fn parse(value: &Value, now: Timestamp) -> Result<ApiEvent, Vec<Problem>> {
    let Some(object) = value.as_object() else {
        return Err(vec![(None, "an event must be a JSON object".into())]);
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problems.push((
                Some(key.clone()),
                format!("unknown field; the fields are {}", FIELDS.join(", ")),
            ));
        }
    }
    let mut fields = Fields {
        object,
        problems: &mut problems,
    };
    let id = fields.required_text("id");
    let ts_ms = fields.timestamp(now);
    let user = fields.optional_text("user");
    let model = fields.required_text("model");
    let provider = fields.optional_text("provider");
    let activity = fields.optional_text("activity");
    let project = fields.optional_text("project");
    let source = fields
        .optional_text("source")
        .unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    let tokens = [
        fields.tokens("input_tokens"),
        fields.tokens("output_tokens"),
        fields.tokens("cache_read_tokens"),
        fields.tokens("cache_write_tokens"),
    ];
    let cost_micros = fields.cost();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ApiEvent {
        id: id.unwrap_or_default(),
        ts_ms: ts_ms.unwrap_or_default(),
        user,
        model: model.unwrap_or_default(),
        provider,
        activity,
        project,
        source,
        tokens,
        cost_micros,
    })
}

struct Fields<'a> {
    object: &'a Map<String, Value>,
    problems: &'a mut Vec<Problem>,
}

impl Fields<'_> {
    fn problem(&mut self, field: &str, reason: impl Into<String>) {
        self.problems.push((Some(field.to_owned()), reason.into()));
    }

    /// A present, non-null value.
    fn get(&self, field: &str) -> Option<&Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    fn text(&mut self, field: &str, value: &Value) -> Option<String> {
        let Some(text) = value.as_str() else {
            self.problem(field, "must be a string");
            return None;
        };
        let text = text.trim();
        if text.chars().count() > MAX_TEXT {
            self.problem(field, format!("must be at most {MAX_TEXT} characters"));
            return None;
        }
        if text.chars().any(char::is_control) {
            self.problem(field, "must not contain control characters");
            return None;
        }
        Some(text.to_owned())
    }

    fn required_text(&mut self, field: &str) -> Option<String> {
        let Some(value) = self.get(field).cloned() else {
            self.problem(field, "is required");
            return None;
        };
        let text = self.text(field, &value)?;
        if text.is_empty() {
            self.problem(field, "must not be empty");
            return None;
        }
        Some(text)
    }

    /// Absent, null and "" all mean none.
    fn optional_text(&mut self, field: &str) -> Option<String> {
        let value = self.get(field).cloned()?;
        self.text(field, &value).filter(|t| !t.is_empty())
    }

    fn timestamp(&mut self, now: Timestamp) -> Option<i64> {
        let Some(value) = self.get("timestamp").cloned() else {
            self.problem("timestamp", "is required");
            return None;
        };
        let Some(text) = value.as_str() else {
            self.problem(
                "timestamp",
                "must be an RFC 3339 string with an offset, e.g. 2026-03-08T14:05:00Z",
            );
            return None;
        };
        let Ok(instant) = text.parse::<Timestamp>() else {
            self.problem(
                "timestamp",
                format!("{text:?} is not an RFC 3339 time with an offset (e.g. 2026-03-08T14:05:00+01:00)"),
            );
            return None;
        };
        if instant.as_second() > now.as_second() + MAX_FUTURE_S {
            self.problem(
                "timestamp",
                format!("{text} is more than a day in the future"),
            );
            return None;
        }
        if instant.as_second() < 0 {
            self.problem("timestamp", format!("{text} is before 1970"));
            return None;
        }
        Some(instant.as_millisecond())
    }

    /// A non-negative integer; absent or null is 0.
    fn tokens(&mut self, field: &str) -> i64 {
        let Some(value) = self.get(field).cloned() else {
            return 0;
        };
        match value.as_i64() {
            Some(n) if (0..=MAX_TOKENS).contains(&n) => n,
            Some(n) if n < 0 => {
                self.problem(field, "must not be negative");
                0
            }
            Some(_) => {
                self.problem(field, format!("must be at most {MAX_TOKENS}"));
                0
            }
            None => {
                self.problem(field, "must be a whole number");
                0
            }
        }
    }

    /// A decimal string or number, exact to the micro-unit.
    fn cost(&mut self) -> Option<i64> {
        let value = self.get("cost").cloned()?;
        let text = match &value {
            Value::String(text) => text.clone(),
            // serde_json prints a number as its shortest exact form
            // (0.1 stays "0.1"), so a decimal written by the client
            // survives the trip through f64.
            Value::Number(number) => number.to_string(),
            _ => {
                self.problem("cost", "must be a decimal string (\"0.012\") or a number");
                return None;
            }
        };
        match parse_micros(&text) {
            Ok(micros) => Some(micros),
            Err(reason) => {
                self.problem("cost", reason);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().expect("now")
    }

    #[test]
    fn a_full_event_parses_exactly() {
        let event = parse(
            &json!({
                "id": "msg_1", "timestamp": "2026-03-08T14:05:00+01:00", "user": "ada",
                "model": "claude-sonnet-4-5", "provider": "anthropic", "activity": "code review",
                "project": "web", "source": "cli", "input_tokens": 1200, "output_tokens": 300,
                "cache_read_tokens": 5000, "cache_write_tokens": 0, "cost": "0.012345"
            }),
            now(),
        )
        .expect("valid");
        assert_eq!(
            event.ts_ms,
            "2026-03-08T13:05:00Z"
                .parse::<Timestamp>()
                .expect("t")
                .as_millisecond()
        );
        assert_eq!(event.tokens, [1200, 300, 5000, 0]);
        assert_eq!(event.cost_micros, Some(12_345));
        assert_eq!(event.source, "cli");
    }

    #[test]
    fn a_minimal_event_takes_defaults() {
        let event = parse(
            &json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "cost": 0.25}),
            now(),
        )
        .expect("valid");
        assert_eq!(
            (event.user, event.activity, event.source.as_str()),
            (None, None, "api")
        );
        assert_eq!(event.tokens, [0; 4]);
        assert_eq!(event.cost_micros, Some(250_000));
    }

    #[test]
    fn every_problem_names_its_field() {
        let cases = [
            (
                json!({"timestamp": "2026-03-08T14:05:00Z", "model": "m"}),
                "id",
                "required",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08 14:05", "model": "m"}),
                "timestamp",
                "RFC 3339",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00", "model": "m"}),
                "timestamp",
                "offset",
            ),
            (
                json!({"id": "1", "timestamp": "2027-01-01T00:00:00Z", "model": "m"}),
                "timestamp",
                "future",
            ),
            (
                json!({"id": "1", "timestamp": 1772978700, "model": "m"}),
                "timestamp",
                "RFC 3339",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z"}),
                "model",
                "required",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": ""}),
                "model",
                "empty",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "input_tokens": -1}),
                "input_tokens",
                "negative",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "output_tokens": 1.5}),
                "output_tokens",
                "whole",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "cost": "-1"}),
                "cost",
                "decimal",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "cost": "0.1234567"}),
                "cost",
                "6 decimal",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "input_token": 5}),
                "input_token",
                "unknown field",
            ),
            (
                json!({"id": 7, "timestamp": "2026-03-08T14:05:00Z", "model": "m"}),
                "id",
                "string",
            ),
        ];
        for (event, field, reason) in cases {
            let problems = parse(&event, now()).expect_err("invalid");
            assert!(
                problems
                    .iter()
                    .any(|(f, r)| f.as_deref() == Some(field) && r.contains(reason)),
                "{event}: expected {field}: {reason}, got {problems:?}"
            );
        }
        assert_eq!(
            parse(&json!([1]), now()).expect_err("not an object")[0].0,
            None
        );
    }
}
