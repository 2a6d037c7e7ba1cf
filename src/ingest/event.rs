//! The one event type every producer maps into, and its one validation.
//!
//! The event API, OTLP metrics, logs and traces, LiteLLM, and file import
//! each turn what they receive into [`EventFields`]; only
//! [`ApiEvent::new`] turns those into an event that can be stored, and it
//! enforces the same rules for all of them: names of at most
//! [`MAX_TEXT`] characters without control, bidirectional or zero-width
//! characters; a time no more than a day ahead of now nor more than
//! [`MAX_AGE_DAYS`] days behind it; every count and the cost within the
//! store's per-event maximums ([`crate::model::limits`]). Each path reports
//! a refusal its own way (a 422 with index and field; OTLP partial success
//! with counts and reasons; file:line for import).

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::model::limits;
use crate::model::{IdentityKey, UserId};
use crate::usage::prices::parse_micros;
use crate::usage::rates::Extras;
use crate::usage::store::NewEvent;

/// Longest id, name or label we store, in characters.
pub const MAX_TEXT: usize = crate::model::names::MAX_TEXT;
/// The rules of every stored name live with the other name rules.
pub use crate::model::names::check_text;
/// Events stamped further ahead than this are a clock or unit mistake
/// (milliseconds sent as seconds, say).
const MAX_FUTURE_MS: i64 = 24 * 3_600_000;
/// Events older than this many days are a unit mistake (seconds read as
/// milliseconds land in January 1970) or a broken clock.
pub const MAX_AGE_DAYS: i64 = 3_653;
/// The source of events sent to the event API without one.
pub const DEFAULT_SOURCE: &str = "api";

use crate::usage::EVENT_FIELDS as FIELDS;
pub use crate::usage::PRICE_FIELDS;

/// What a producer said about one call, mapped to our fields but not yet
/// checked. Field names are those of the event API (FORMATS.md §1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFields {
    pub id: String,
    pub ts_ms: i64,
    pub user: Option<String>,
    pub model: String,
    pub provider: Option<String>,
    pub activity: Option<String>,
    pub project: Option<String>,
    pub source: String,
    pub tokens: [i64; 4],
    /// The 1-hour share of cache writes, web searches, one request or
    /// several.
    pub extras: Extras,
    pub cost_micros: Option<i64>,
    /// The producer's session or conversation id (raw events only).
    pub session: Option<String>,
    /// The host the event came from (raw events only).
    pub machine: Option<String>,
    /// The person the producer names (`ingest::identity`), read only for
    /// a collector token; the pipeline keeps it only for one.
    pub identity: Option<IdentityKey>,
}

/// One valid event; the user is still a name. Built only by
/// [`ApiEvent::new`], so holding one means it passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEvent(EventFields);

impl std::ops::Deref for ApiEvent {
    type Target = EventFields;
    fn deref(&self) -> &EventFields {
        &self.0
    }
}

const TOKEN_FIELDS: [&str; 4] = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
];

impl ApiEvent {
    /// Checks `fields` against every rule; trims names, lower-cases the
    /// source (`API` and `api` are one source: the dedup key must not
    /// depend on case). Every problem is listed, not only the first.
    pub fn new(mut fields: EventFields, now: Timestamp) -> Result<ApiEvent, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut required = |field: &str, text: &mut String| match check_text(text) {
            Ok(clean) if clean.is_empty() => problems.push(problem(field, "must not be empty")),
            Ok(clean) => *text = clean,
            Err(reason) => problems.push(problem(field, reason)),
        };
        required("id", &mut fields.id);
        required("model", &mut fields.model);
        required("source", &mut fields.source);
        fields.source = fields.source.to_lowercase();
        for (field, text) in [
            ("user", &mut fields.user),
            ("provider", &mut fields.provider),
            ("activity", &mut fields.activity),
            ("project", &mut fields.project),
            ("session", &mut fields.session),
            ("machine", &mut fields.machine),
        ] {
            if let Some(value) = text.take() {
                match check_text(&value) {
                    Ok(clean) => *text = Some(clean).filter(|t| !t.is_empty()),
                    Err(reason) => problems.push(problem(field, reason)),
                }
            }
        }
        if let Some(Err(reason)) = fields.identity.as_ref().map(|i| check_text(&i.value)) {
            problems.push(problem("identity", reason));
        }
        if let Err(reason) = check_time(fields.ts_ms, now) {
            problems.push(problem("timestamp", reason));
        }
        for (field, count) in TOKEN_FIELDS.iter().zip(fields.tokens) {
            if let Err(reason) = limits::check_tokens(count) {
                problems.push(problem(field, reason));
            }
        }
        if let Err(reason) = limits::check_tokens(fields.extras.cache_write_1h) {
            problems.push(problem("cache_write_1h_tokens", reason));
        } else if fields.extras.cache_write_1h > fields.tokens[3] {
            problems.push(problem(
                "cache_write_1h_tokens",
                "must not exceed cache_write_tokens",
            ));
        }
        if let Err(reason) = limits::check_web_searches(fields.extras.web_search_requests) {
            problems.push(problem("web_search_requests", reason));
        }
        if let Some(Err(reason)) = fields.cost_micros.map(limits::check_cost) {
            problems.push(problem("cost", reason));
        }
        if problems.is_empty() {
            Ok(ApiEvent(fields))
        } else {
            Err(problems)
        }
    }

    /// The event for the store, as `user`'s (or, with an identity, as the
    /// identity's: see `NewEvent::identity`).
    pub fn into_new_event(self, user: UserId) -> NewEvent {
        let fields = self.0;
        NewEvent {
            ts_ms: fields.ts_ms,
            user,
            source: fields.source,
            external_id: fields.id,
            model: fields.model,
            provider: fields.provider,
            activity: fields.activity,
            project: fields.project,
            tokens: fields.tokens,
            extras: fields.extras,
            reported_cost_micros: fields.cost_micros,
            session: fields.session,
            machine: fields.machine,
            identity: fields.identity,
        }
    }
}

fn problem(field: &str, reason: impl Into<String>) -> Problem {
    (Some(field.to_owned()), reason.into())
}

/// Whether an event at `ts_ms` may be stored at `now`.
pub fn check_time(ts_ms: i64, now: Timestamp) -> Result<(), String> {
    let now_ms = now.as_millisecond();
    if ts_ms > now_ms + MAX_FUTURE_MS {
        return Err("is more than a day in the future".into());
    }
    if ts_ms < now_ms - MAX_AGE_DAYS * 86_400_000 {
        return Err(format!(
            "is more than {MAX_AGE_DAYS} days (ten years) in the past"
        ));
    }
    Ok(())
}

/// An RFC 3339 time with its offset, strictly: offsets within ±23:59 and a
/// 60th second only where a leap second can be (23:59:60 UTC on 30 June or
/// 31 December). jiff alone accepts offsets up to ±25:59 and any `:60`.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let wrong = || {
        format!("{text:?} is not an RFC 3339 time with an offset (e.g. 2026-03-08T14:05:00+01:00)")
    };
    let bytes = text.as_bytes();
    // YYYY-MM-DDTHH:MM:SS is 19 bytes; then a fraction and the offset.
    if bytes.len() < 20
        || !bytes[..19].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => matches!(b, b'T' | b't' | b' '),
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
    {
        return Err(wrong());
    }
    let offset = &text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset_ok = match offset.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit())
                && (h1 - b'0') * 10 + (h2 - b'0') <= 23
                && (m1 - b'0') * 10 + (m2 - b'0') <= 59
        }
        _ => false,
    };
    if !offset_ok {
        return Err(format!(
            "{text:?} has no valid offset: end it with Z or ±HH:MM, at most ±23:59"
        ));
    }
    let instant = text.parse::<Timestamp>().map_err(|_| wrong())?;
    if &text[17..19] == "60" {
        let utc = instant.to_zoned(jiff::tz::TimeZone::UTC);
        let leap_day = matches!((utc.month(), utc.day()), (6, 30) | (12, 31));
        if !(leap_day && utc.hour() == 23 && utc.minute() == 59) {
            return Err(format!(
                "{text:?} has a 60th second where no leap second can be"
            ));
        }
    }
    Ok(instant)
}

/// A problem with one field (`None`: the event as a whole).
pub type Problem = (Option<String>, String);

/// Problems as one line: `field: reason; …` (for import's file:line).
pub fn describe(problems: Vec<Problem>) -> String {
    problems
        .into_iter()
        .map(|(field, reason)| match field {
            Some(field) => format!("{field}: {reason}"),
            None => reason,
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Validates one event of the event API; every problem is listed.
pub fn parse(value: &Value, now: Timestamp) -> Result<ApiEvent, Vec<Problem>> {
    let Some(object) = value.as_object() else {
        return Err(vec![(None, "an event must be a JSON object".into())]);
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        if !FIELDS.contains(&key.as_str()) && !PRICE_FIELDS.contains(&key.as_str()) {
            problems.push((
                Some(key.clone()),
                format!(
                    "unknown field; the fields are {}, {}",
                    FIELDS.join(", "),
                    PRICE_FIELDS.join(", ")
                ),
            ));
        }
    }
    let mut fields = Fields {
        object,
        problems: &mut problems,
    };
    let id = fields.text("id");
    let ts_ms = fields.timestamp();
    let user = fields.text("user");
    let model = fields.text("model");
    let provider = fields.text("provider");
    let activity = fields.text("activity");
    let project = fields.text("project");
    let source = fields.text("source");
    let tokens = TOKEN_FIELDS.map(|field| fields.tokens(field));
    let extras = Extras {
        cache_write_1h: fields.tokens("cache_write_1h_tokens"),
        web_search_requests: fields.tokens("web_search_requests"),
        // An event sent to the API is one call.
        one_request: true,
    };
    let cost_micros = fields.cost();
    let session = fields.text("session");
    let machine = fields.text("machine");
    let draft = EventFields {
        id: id.unwrap_or_default(),
        ts_ms: ts_ms.unwrap_or(now.as_millisecond()),
        user,
        model: model.unwrap_or_default(),
        provider,
        activity,
        project,
        source: source.unwrap_or_else(|| DEFAULT_SOURCE.to_owned()),
        tokens,
        extras,
        cost_micros,
        session,
        machine,
        identity: None,
    };
    let checked = ApiEvent::new(draft, now);
    // Type problems first; a field already named is not named twice.
    match checked {
        Ok(event) if problems.is_empty() => Ok(event),
        Ok(_) => Err(problems),
        Err(more) => {
            for (field, reason) in more {
                if !problems.iter().any(|(f, _)| *f == field) {
                    problems.push((field, reason));
                }
            }
            Err(problems)
        }
    }
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

    /// A string field as sent; its content is checked by [`ApiEvent::new`].
    /// `id` and `model` are required; absent, null and "" mean none for
    /// the others.
    fn text(&mut self, field: &str) -> Option<String> {
        let Some(value) = self.get(field) else {
            if matches!(field, "id" | "model") {
                self.problem(field, "is required");
            }
            return None;
        };
        match value.as_str() {
            Some(text) => Some(text.to_owned()),
            None => {
                self.problem(field, "must be a string");
                None
            }
        }
    }

    fn timestamp(&mut self) -> Option<i64> {
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
        match parse_time(text) {
            Ok(instant) => Some(instant.as_millisecond()),
            Err(reason) => {
                self.problem("timestamp", reason);
                None
            }
        }
    }

    /// A non-negative whole number (`12`, `12.0`, `1.2e1`); absent or null
    /// is 0. Its maximum is checked by [`ApiEvent::new`].
    fn tokens(&mut self, field: &str) -> i64 {
        let Some(value) = self.get(field).cloned() else {
            return 0;
        };
        match whole_number(&value) {
            Ok(n) => n,
            Err(reason) => {
                self.problem(field, reason);
                0
            }
        }
    }

    /// A decimal string (exact, at most six places) or a number (a binary
    /// float already: rounded once to the micro-unit, as LiteLLM's costs
    /// are).
    fn cost(&mut self) -> Option<i64> {
        let value = self.get("cost").cloned()?;
        let micros = match &value {
            Value::String(text) => parse_micros(text),
            Value::Number(number) => number_micros(number),
            _ => Err("must be a decimal string (\"0.012\") or a number".into()),
        };
        match micros {
            Ok(micros) => Some(micros),
            Err(reason) => {
                self.problem("cost", reason);
                None
            }
        }
    }
}

/// A JSON number as a whole count: integers, and floats with no fraction
/// (`1.0`, `1e3`), which some producers send for counts.
pub fn whole_number(value: &Value) -> Result<i64, String> {
    let Some(number) = value.as_number() else {
        return Err("must be a whole number".into());
    };
    if let Some(n) = number.as_i64() {
        return if n < 0 {
            Err("must not be negative".into())
        } else {
            Ok(n)
        };
    }
    match number.as_f64() {
        Some(x) if x < 0.0 => Err("must not be negative".into()),
        Some(x) if x.fract() == 0.0 && x <= limits::MAX_TOKENS as f64 => Ok(x as i64),
        Some(x) if x.fract() == 0.0 || x.is_infinite() => Err(format!(
            "must be at most {} (one event's maximum)",
            limits::MAX_TOKENS
        )),
        _ => Err("must be a whole number".into()),
    }
}

/// A JSON number of money as micro-units: exact when it has at most six
/// decimal places, else rounded once (it was a binary float anyway).
pub fn number_micros(number: &serde_json::Number) -> Result<i64, String> {
    // serde_json prints a number as its shortest exact form (0.1 stays
    // "0.1"), so a decimal written by the client survives the trip.
    if let Ok(micros) = parse_micros(&number.to_string()) {
        return Ok(micros);
    }
    float_micros(number.as_f64().unwrap_or(f64::NAN))
}

/// A float amount of money (USD, as producers estimate it) as micro-units.
pub fn float_micros(amount: f64) -> Result<i64, String> {
    let micros = (amount * 1e6).round();
    if !micros.is_finite() || micros < 0.0 {
        Err("must be a non-negative number".into())
    } else if micros > limits::MAX_COST_MICROS as f64 {
        limits::check_cost(limits::MAX_COST_MICROS + 1)
    } else {
        Ok(micros as i64)
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
                "cache_read_tokens": 5000, "cache_write_tokens": 0, "cost": "0.012345",
                "session": " 5c1a7f0e ", "machine": "ada-laptop"
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
        assert_eq!(
            (event.session.as_deref(), event.machine.as_deref()),
            (Some("5c1a7f0e"), Some("ada-laptop"))
        );
    }

    #[test]
    fn a_minimal_event_takes_defaults() {
        let event = parse(
            &json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "cost": 0.25}),
            now(),
        )
        .expect("valid");
        assert_eq!(
            (
                event.user.clone(),
                event.activity.clone(),
                event.source.as_str()
            ),
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
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "session": "s\u{7}"}),
                "session",
                "control",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "machine": "m".repeat(257)}),
                "machine",
                "256",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "machine": "host\u{200b}"}),
                "machine",
                "invisible",
            ),
            (
                json!({"id": "1", "timestamp": "2026-03-08T14:05:00Z", "model": "m", "session": 5}),
                "session",
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
