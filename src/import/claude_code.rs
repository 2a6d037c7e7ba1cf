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
//!
//! The project is the last component of the line's `cwd` (the repository
//! directory's name, not the path to it); a line without `cwd` takes the
//! project of its folder ([`LineContext::folder_project`]). The session is
//! the line's `sessionId`; the machine the one the import runs for.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::Value;

use super::transcript_line::TranscriptLine;
use crate::ingest::event::{self, ApiEvent, EventFields};
use crate::usage::rates::Extras;

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

/// What a line does not say, but its file and the import do.
#[derive(Debug, Default)]
pub struct LineContext {
    /// The machine every event of the import comes from (unless an event
    /// names its own).
    pub machine: Option<String>,
    /// The transcript's folder under `projects/`, as Claude Code named it.
    folder: Option<String>,
    /// Its project, worked out when a line first needs it.
    folder_project: OnceCell<Option<String>>,
}

impl LineContext {
    /// The context of the lines of the file at `path`.
    pub fn for_file(path: &Path, machine: Option<String>) -> LineContext {
        LineContext {
            machine,
            folder: project_folder(path),
            folder_project: OnceCell::new(),
        }
    }

    /// The project of the transcript's folder (see [`folder_project`]).
    pub fn folder_project(&self) -> Option<String> {
        self.folder_project
            .get_or_init(|| self.folder.as_deref().and_then(folder_project))
            .clone()
    }
}

/// The folder of a transcript under Claude Code's `projects/`: the
/// component after the last `projects` of its path, when a file lies below
/// it (`…/projects/-home-ada-src-web-shop/<session>.jsonl`, or deeper).
fn project_folder(path: &Path) -> Option<String> {
    let parts: Vec<&std::ffi::OsStr> = path.parent()?.iter().collect();
    let at = parts.iter().rposition(|part| *part == "projects")?;
    parts.get(at + 1)?.to_str().map(str::to_owned)
}

/// The project a transcript folder stands for. Claude Code names the
/// folder of a working directory after its path with every character that
/// is not an ASCII letter or digit made a `-` (`/home/ada/src/web-shop` is
/// `-home-ada-src-web-shop`), which cannot be read back alone (`web-shop`,
/// or `web/shop`?). The directories of this machine decide: the folder
/// names the existing directory whose path encodes to it, and the project
/// is that directory's name. When none does (the directory is gone, or the
/// transcripts came from another machine), the folder's last `-` part.
pub fn folder_project(folder: &str) -> Option<String> {
    let mut budget = MAX_DIRECTORIES_READ;
    let found = folder
        .strip_prefix('-')
        .and_then(|rest| find_encoded(Path::new("/"), rest, &mut budget));
    match found {
        Some(dir) => dir.file_name()?.to_str().map(str::to_owned),
        None => folder
            .rsplit('-')
            .find(|part| !part.is_empty())
            .map(str::to_owned),
    }
}

/// Directories [`folder_project`] may list for one folder.
const MAX_DIRECTORIES_READ: usize = 64;

/// A name as Claude Code puts it in a folder name: every character that is
/// not an ASCII letter or digit becomes `-` (one per UTF-16 unit, as
/// JavaScript counts).
fn encode(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let dashes = if c.is_ascii_alphanumeric() {
                0
            } else {
                c.len_utf16()
            };
            let keep = (dashes == 0).then_some(c);
            keep.into_iter().chain(std::iter::repeat_n('-', dashes))
        })
        .collect()
}

/// The directory below `dir` whose path below `dir` encodes to `rest`;
/// longer names are tried first, and other readings after them.
fn find_encoded(dir: &Path, rest: &str, budget: &mut usize) -> Option<PathBuf> {
    if rest.is_empty() {
        return Some(dir.to_path_buf());
    }
    *budget = budget.checked_sub(1)?;
    let mut candidates: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let encoded = encode(&name);
            let matches = rest == encoded || rest.starts_with(&format!("{encoded}-"));
            (matches && entry.path().is_dir()).then(|| (encoded, entry.path()))
        })
        .collect();
    candidates.sort_by_key(|(encoded, _)| std::cmp::Reverse(encoded.len()));
    candidates.into_iter().find_map(|(encoded, path)| {
        let after = rest[encoded.len()..].strip_prefix('-').unwrap_or("");
        find_encoded(&path, after, budget)
    })
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
fn text(value: Option<&Cow<'_, str>>) -> Option<String> {
    value
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// One transcript line of a file with `context`, checked as at `now`.
pub fn map(line: &[u8], context: &LineContext, now: Timestamp) -> Mapped {
    let Some(fields) = TranscriptLine::parse(line) else {
        return Mapped::Invalid("not JSON".into());
    };
    let Some((message, usage)) = fields
        .message
        .as_ref()
        .and_then(|m| Some((m, m.usage.as_ref()?)))
    else {
        return Mapped::Skipped("no usage (user turns, summaries, snapshots)");
    };
    let model = text(message.model.as_ref());
    if model.as_deref() == Some("<synthetic>") {
        return Mapped::Skipped("<synthetic> messages");
    }
    let Some(model) = model else {
        return Mapped::Invalid("message.model is missing".into());
    };
    let Some(message_id) = text(message.id.as_ref()) else {
        return Mapped::Invalid("message.id is missing".into());
    };
    let Some(timestamp) = text(fields.timestamp.as_ref()) else {
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
    let in_usage = |outer: &str, field: &str| {
        usage
            .get(outer)
            .and_then(|o| o.get(field))
            .filter(|v| !v.is_null())
    };
    let mut nested = |outer: &str, field: &str| match in_usage(outer, field) {
        None => 0,
        Some(v) => event::whole_number(v).unwrap_or_else(|reason| {
            problems.push(format!("message.usage.{outer}.{field}: {reason}"));
            0
        }),
    };
    // One message is one request: its tier follows from its own prompt.
    let extras = Extras {
        cache_write_1h: nested("cache_creation", "ephemeral_1h_input_tokens"),
        web_search_requests: nested("server_tool_use", "web_search_requests"),
        one_request: true,
    };
    let id = match text(fields.request_id.as_ref()) {
        Some(request) => format!("{message_id}:{request}"),
        None => message_id,
    };
    let cost_micros = match &fields.cost_usd {
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
    let sidechain = fields.is_sidechain == Some(true);
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
        project: text(fields.cwd.as_ref())
            .map(|cwd| project_name(&cwd))
            .or_else(|| context.folder_project()),
        source: SOURCE.into(),
        tokens,
        extras,
        cost_micros,
        session: text(fields.session_id.as_ref()),
        machine: context.machine.clone(),
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

    fn none() -> LineContext {
        LineContext::default()
    }

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
                                      "cache_creation": {"ephemeral_5m_input_tokens": 200,
                                                         "ephemeral_1h_input_tokens": 1000},
                                      "server_tool_use": {"web_search_requests": 2}}}
            })),
            &none(),
            now(),
        );
        let Mapped::Event(event) = mapped else {
            panic!("{mapped:?}")
        };
        assert_eq!(event.id, "msg_1:req_1");
        assert_eq!(event.tokens, [4, 250, 15000, 1200]);
        let extras = Extras {
            cache_write_1h: 1000,
            web_search_requests: 2,
            one_request: true,
        };
        assert_eq!(event.extras, extras);
        assert_eq!(event.project.as_deref(), Some("web-shop"));
        assert_eq!(event.activity.as_deref(), Some("claude-code"));
        assert_eq!(event.cost_micros, None);
        assert_eq!(event.session.as_deref(), Some("s1"));
        assert_eq!(event.machine, None);
    }

    #[test]
    fn a_line_without_cwd_takes_the_project_of_its_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("src").join("web-shop.v2_x");
        std::fs::create_dir_all(&repo).expect("mkdir");
        // A shorter reading of the same folder name, which leads nowhere.
        std::fs::create_dir_all(dir.path().join("src/web")).expect("mkdir");
        let folder = encode(&repo.to_string_lossy());
        assert!(folder.ends_with("-src-web-shop-v2-x"), "{folder}");
        assert_eq!(folder_project(&folder).as_deref(), Some("web-shop.v2_x"));
        // A directory that is not on this machine: the folder's last part.
        assert_eq!(
            folder_project("-nonexistent-tokentally-src-web-shop").as_deref(),
            Some("shop")
        );
        assert_eq!(folder_project("C--Users-ada-api").as_deref(), Some("api"));

        let transcript = dir
            .path()
            .join(".claude/projects")
            .join(&folder)
            .join("5c1a/subagents/agent-1.jsonl");
        let context = LineContext::for_file(&transcript, Some("laptop-7".into()));
        let usage = json!({"type": "assistant", "sessionId": "5c1a", "requestId": "r",
                           "timestamp": "2026-05-01T10:00:00Z",
                           "message": {"id": "m", "model": "claude-sonnet-4-5",
                                       "usage": {"input_tokens": 1}}});
        let Mapped::Event(event) = map(&line(usage.clone()), &context, now()) else {
            panic!("not an event")
        };
        assert_eq!(event.project.as_deref(), Some("web-shop.v2_x"));
        assert_eq!(event.session.as_deref(), Some("5c1a"));
        assert_eq!(event.machine.as_deref(), Some("laptop-7"));
        // A `cwd` wins over the folder.
        let mut with_cwd = usage;
        with_cwd["cwd"] = json!("/home/ada/src/api");
        let Mapped::Event(event) = map(&line(with_cwd), &context, now()) else {
            panic!("not an event")
        };
        assert_eq!(event.project.as_deref(), Some("api"));
        // A file outside any `projects/` folder has no folder project.
        let loose = LineContext::for_file(Path::new("/tmp/session.jsonl"), None);
        assert_eq!(loose.folder_project(), None);
    }

    #[test]
    fn other_lines_are_skipped_or_named() {
        assert_eq!(
            map(
                b"{\"type\":\"user\",\"message\":{\"role\":\"user\"}}",
                &none(),
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
                &none(),
                now()
            ),
            Mapped::Skipped("<synthetic> messages")
        );
        assert!(matches!(
            map(b"{not json", &none(), now()),
            Mapped::Invalid(_)
        ));
        assert!(matches!(
            map(&line(json!({"message": {"id": "m", "model": "x", "usage": {}}})), &none(), now()),
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
