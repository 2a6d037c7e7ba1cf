//! Claude Code transcripts (`~/.claude/projects/<project>/<session>.jsonl`,
//! FORMATS.md §4): one JSON object per line, usage on assistant lines.
//!
//! Traps handled here:
//! - one line per content block, each repeating the message's usage: the
//!   event id is `message.id` + `requestId`, so the repeats are duplicates;
//! - sidechain (sub-agent) replays reuse a message id: the same id, so
//!   counted once;
//! - `<synthetic>` messages are Claude Code's own, not model calls: skipped;
//! - Anthropic's `input_tokens` already excludes cache reads and writes.

use std::path::Path;

use jiff::Timestamp;
use serde_json::Value;

use crate::ingest::event::{self, ApiEvent, EventFields};

pub const SOURCE: &str = "claude-code";

/// What one transcript line is to the importer.
#[derive(Debug, PartialEq, Eq)]
pub enum Mapped {
    Event(Box<ApiEvent>),
    /// A line without usage (user turns, summaries, snapshots) or one to
    /// leave out: counted under its reason, not a problem.
    Skipped(&'static str),
    /// A line that should hold usage but cannot be read: a problem.
    Invalid(String),
}

/// Where to find transcripts when no path is given, as Claude Code does:
/// each folder of `CLAUDE_CONFIG_DIR` (comma-separated), else
/// `~/.config/claude` and `~/.claude`; their `projects/` folders.
pub fn default_roots(config_dirs: Option<&str>, home: Option<&Path>) -> Vec<std::path::PathBuf> {
    let bases: Vec<std::path::PathBuf> = match config_dirs.filter(|d| !d.trim().is_empty()) {
        Some(dirs) => dirs
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .collect(),
        None => home
            .map(|home| vec![home.join(".config/claude"), home.join(".claude")])
            .unwrap_or_default(),
    };
    bases
        .into_iter()
        .map(|base| base.join("projects"))
        .filter(|projects| projects.is_dir())
        .collect()
}

/// Whether a first line looks like a transcript rather than our events.
pub fn looks_like_transcript(line: &Value) -> bool {
    line.get("sessionId").is_some()
        || line.get("parentUuid").is_some()
        || matches!(
            line.get("type").and_then(Value::as_str),
            Some("summary" | "user" | "assistant" | "system" | "file-history-snapshot")
        )
}

/// A string as sent (trimmed; "" is none). Its length and characters are
/// checked with every other producer's by [`ApiEvent::new`]: cutting a
/// long id short could make two calls one.
fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// One transcript line, checked as at `now`.
pub fn map(line: &[u8], now: Timestamp) -> Mapped {
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Mapped::Invalid("not JSON".into());
    };
    let Some(usage) = value.get("message").and_then(|m| m.get("usage")) else {
        return Mapped::Skipped("no usage (user turns, summaries, snapshots)");
    };
    let message = &value["message"];
    let model = text(message.get("model"));
    if model.as_deref() == Some("<synthetic>") {
        return Mapped::Skipped("<synthetic> messages");
    }
    let Some(model) = model else {
        return Mapped::Invalid("message.model is missing".into());
    };
    let Some(message_id) = text(message.get("id")) else {
        return Mapped::Invalid("message.id is missing".into());
    };
    let Some(timestamp) = text(value.get("timestamp")) else {
        return Mapped::Invalid("timestamp is missing".into());
    };
    let ts_ms = match event::parse_time(&timestamp) {
        Ok(instant) => instant.as_millisecond(),
        Err(reason) => return Mapped::Invalid(format!("timestamp: {reason}")),
    };
    let mut problems = Vec::new();
    let mut count = |field: &str| match usage.get(field).filter(|v| !v.is_null()) {
        None => 0,
        Some(v) => event::whole_number(v).unwrap_or_else(|reason| {
            problems.push(format!("message.usage.{field}: {reason}"));
            0
        }),
    };
    let tokens = [
        count("input_tokens"),
        count("output_tokens"),
        count("cache_read_input_tokens"),
        count("cache_creation_input_tokens"),
    ];
    let id = match text(value.get("requestId")) {
        Some(request) => format!("{message_id}:{request}"),
        None => message_id,
    };
    let cost_micros = match value.get("costUSD").filter(|v| !v.is_null()) {
        None => None,
        Some(usd) => match usd.as_f64().map(event::float_micros) {
            Some(Ok(micros)) => Some(micros),
            Some(Err(reason)) => {
                problems.push(format!("costUSD: {reason}"));
                None
            }
            None => {
                problems.push("costUSD: must be a number".into());
                None
            }
        },
    };
    if !problems.is_empty() {
        return Mapped::Invalid(problems.join("; "));
    }
    let sidechain = value.get("isSidechain").and_then(Value::as_bool) == Some(true);
    let fields = EventFields {
        id,
        ts_ms,
        user: None,
        model,
        provider: Some("anthropic".into()),
        activity: Some(
            if sidechain {
                "claude-code subagent"
            } else {
                "claude-code"
            }
            .into(),
        ),
        project: text(value.get("cwd")).map(|cwd| project_name(&cwd)),
        source: SOURCE.into(),
        tokens,
        cost_micros,
        identity: None,
    };
    match ApiEvent::new(fields, now) {
        Ok(event) => Mapped::Event(Box::new(event)),
        Err(problems) => Mapped::Invalid(event::describe(problems)),
    }
}

/// The project of a working directory: its last component.
fn project_name(cwd: &str) -> String {
    cwd.trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or(cwd)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().expect("now")
    }
    use serde_json::json;

    fn line(value: Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn an_assistant_line_is_one_event_keyed_by_message_and_request() {
        let mapped = map(
            &line(json!({
                "type": "assistant", "sessionId": "s1", "requestId": "req_1", "isSidechain": false,
                "cwd": "/home/ada/src/web-shop", "timestamp": "2026-05-01T10:00:00.123Z",
                "message": {"id": "msg_1", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
                            "usage": {"input_tokens": 4, "output_tokens": 250,
                                      "cache_read_input_tokens": 15000,
                                      "cache_creation_input_tokens": 1200,
                                      "cache_creation": {"ephemeral_5m_input_tokens": 1200}}}
            })),
            now(),
        );
        let Mapped::Event(event) = mapped else {
            panic!("{mapped:?}")
        };
        assert_eq!(event.id, "msg_1:req_1");
        assert_eq!(event.tokens, [4, 250, 15000, 1200]);
        assert_eq!(event.project.as_deref(), Some("web-shop"));
        assert_eq!(event.activity.as_deref(), Some("claude-code"));
        assert_eq!(event.cost_micros, None);
    }

    #[test]
    fn other_lines_are_skipped_or_named() {
        assert_eq!(
            map(
                b"{\"type\":\"user\",\"message\":{\"role\":\"user\"}}",
                now()
            ),
            Mapped::Skipped("no usage (user turns, summaries, snapshots)")
        );
        assert_eq!(
            map(
                &line(
                    json!({"type": "assistant", "timestamp": "2026-05-01T10:00:00Z",
                "message": {"id": "m", "model": "<synthetic>", "usage": {"input_tokens": 0}}})
                ),
                now()
            ),
            Mapped::Skipped("<synthetic> messages")
        );
        assert!(matches!(map(b"{not json", now()), Mapped::Invalid(_)));
        assert!(matches!(
            map(&line(json!({"message": {"id": "m", "model": "x", "usage": {}}})), now()),
            Mapped::Invalid(reason) if reason.contains("timestamp")
        ));
    }

    #[test]
    fn roots_follow_claude_config_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        std::fs::create_dir_all(a.join("projects")).expect("mkdir");
        let roots = default_roots(Some(&format!("{}, /nonexistent", a.display())), None);
        assert_eq!(roots, vec![a.join("projects")]);
        std::fs::create_dir_all(dir.path().join(".claude/projects")).expect("mkdir");
        assert_eq!(
            default_roots(None, Some(dir.path())),
            vec![dir.path().join(".claude/projects")]
        );
    }
}
