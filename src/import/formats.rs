//! The file formats `tokentally import` reads, how it tells them apart, and
//! our own two (JSONL and CSV of the event fields of the API).

use std::path::Path;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::claude_code::{self, LineContext, Mapped};
use crate::ingest::event;
use crate::usage::api::EXPORT_ONLY_COLUMNS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Decide per file: `.csv` is CSV; a JSONL file is a Claude Code
    /// transcript when its first line looks like one, else our events.
    Auto,
    /// A header of event field names, then one event per line.
    Csv,
    /// One event object per line, as the event API takes them.
    Jsonl,
    /// Claude Code transcripts.
    ClaudeCode,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::ClaudeCode => "claude-code",
        }
    }

    /// The concrete format of `path`, whose first line is `first_line`.
    pub fn resolve(self, path: &Path, first_line: Option<&[u8]>) -> Format {
        if self != Format::Auto {
            return self;
        }
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if extension.as_deref() == Some("csv") {
            return Format::Csv;
        }
        let transcript = first_line
            .and_then(|line| serde_json::from_slice::<Value>(line).ok())
            .is_some_and(|value| claude_code::looks_like_transcript(&value));
        if transcript {
            Format::ClaudeCode
        } else {
            Format::Jsonl
        }
    }
}

/// Whether `path` is a file `import` would read when given its folder.
pub fn is_importable(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("jsonl" | "ndjson" | "csv")
    )
}

/// One line of our JSONL.
pub fn map_jsonl(line: &[u8], context: &LineContext, now: Timestamp) -> Mapped {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Mapped::Skipped("empty lines");
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(mut value) => {
            if let Value::Object(object) = &mut value {
                default_machine(object, context);
            }
            from_event(&value, now)
        }
        Err(e) => Mapped::Invalid(format!("not JSON: {e}")),
    }
}

/// An event that names no machine is from the import's.
fn default_machine(object: &mut Map<String, Value>, context: &LineContext) {
    let named = object.get("machine").is_some_and(|v| !v.is_null());
    if let (false, Some(machine)) = (named, &context.machine) {
        object.insert("machine".into(), Value::from(machine.as_str()));
    }
}

/// The header of a CSV file: event field names.
#[derive(Debug, Clone)]
pub struct CsvHeader(Vec<String>);

impl CsvHeader {
    pub fn parse(line: &[u8]) -> Result<CsvHeader, String> {
        let fields = record(line)?;
        let names: Vec<String> = fields.iter().map(|f| f.trim().to_owned()).collect();
        for required in ["id", "timestamp", "model"] {
            if !names.iter().any(|n| n == required) {
                return Err(format!(
                    "the header has no {required:?} column; the first line must name the event \
                     fields (id,timestamp,model,input_tokens,…)"
                ));
            }
        }
        Ok(CsvHeader(names))
    }
}

const INTEGER_FIELDS: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "web_search_requests",
];

/// One CSV row, validated like an API event.
pub fn map_csv(header: &CsvHeader, line: &[u8], context: &LineContext, now: Timestamp) -> Mapped {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Mapped::Skipped("empty lines");
    }
    let fields = match record(line) {
        Ok(fields) => fields,
        Err(reason) => return Mapped::Invalid(reason),
    };
    if fields.len() != header.0.len() {
        return Mapped::Invalid(format!(
            "{} fields where the header has {}",
            fields.len(),
            header.0.len()
        ));
    }
    let mut object = Map::new();
    let mut computed = false;
    for (name, raw) in header.0.iter().zip(fields) {
        let raw = raw.trim();
        // An export says where each cost came from: one computed from
        // prices is priced again here, not taken as the producer's report.
        if name == "cost_origin" && !raw.is_empty() && raw != "reported" {
            computed = true;
        }
        // The export's own columns (the cost in the instance's unit) are no
        // event field: an export imports as it was exported.
        if raw.is_empty() || EXPORT_ONLY_COLUMNS.contains(&name.as_str()) {
            continue;
        }
        let value = match raw.parse::<i64>() {
            Ok(n) if INTEGER_FIELDS.contains(&name.as_str()) => Value::from(n),
            _ => Value::from(raw),
        };
        object.insert(name.clone(), value);
    }
    if computed {
        object.remove("cost");
    }
    default_machine(&mut object, context);
    from_event(&Value::Object(object), now)
}

fn from_event(value: &Value, now: Timestamp) -> Mapped {
    match event::parse(value, now) {
        Ok(event) => Mapped::Event(Box::new(event)),
        Err(problems) => Mapped::Invalid(event::describe(problems)),
    }
}

fn record(line: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_owned).collect()),
        Some(Err(e)) => Err(format!("not CSV: {e}")),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().expect("now")
    }

    #[test]
    fn csv_rows_become_events_or_name_their_problem() {
        let header =
            CsvHeader::parse(b"id,timestamp,model,activity,input_tokens,output_tokens,cost")
                .expect("header");
        let laptop = LineContext::for_file(Path::new("usage.csv"), Some("laptop".into()));
        let Mapped::Event(event) = map_csv(
            &header,
            b"r1,2026-05-01T10:00:00Z,gpt-5,\"chat, long\",100,20,0.5",
            &laptop,
            now(),
        ) else {
            panic!("not an event")
        };
        assert_eq!(event.activity.as_deref(), Some("chat, long"));
        assert_eq!(event.tokens, [100, 20, 0, 0]);
        assert_eq!(event.cost_micros, Some(500_000));
        assert_eq!(event.machine.as_deref(), Some("laptop"));
        let Mapped::Invalid(reason) = map_csv(
            &header,
            b"r2,2026-05-01T10:00:00Z,gpt-5,,ten,20,",
            &laptop,
            now(),
        ) else {
            panic!("accepted")
        };
        assert!(reason.contains("input_tokens"), "{reason}");
        assert!(
            matches!(map_csv(&header, b"r3,x", &laptop, now()), Mapped::Invalid(r) if r.contains("fields"))
        );
        assert!(CsvHeader::parse(b"when,model").is_err());
    }

    #[test]
    fn the_exports_cost_in_unit_is_skipped_and_cost_stays_usd() {
        let header = CsvHeader::parse(b"id,timestamp,model,cost,cost_in_unit,unit")
            .expect("the export's header");
        let context = LineContext::for_file(Path::new("export.csv"), None);
        let Mapped::Event(event) = map_csv(
            &header,
            b"r1,2026-05-01T10:00:00Z,gpt-5,0.500000,46.000000,credits",
            &context,
            now(),
        ) else {
            panic!("not an event")
        };
        assert_eq!(event.cost_micros, Some(500_000));
    }

    #[test]
    fn an_event_of_our_own_keeps_its_machine_and_session() {
        let laptop = LineContext::for_file(Path::new("usage.csv"), Some("laptop".into()));
        let line = br#"{"id":"1","timestamp":"2026-05-01T10:00:00Z","model":"m","session":"s-9","machine":"ci-runner"}"#;
        let Mapped::Event(event) = map_jsonl(line, &laptop, now()) else {
            panic!("not an event")
        };
        assert_eq!(
            (event.session.as_deref(), event.machine.as_deref()),
            (Some("s-9"), Some("ci-runner"))
        );
        let line = br#"{"id":"2","timestamp":"2026-05-01T10:00:00Z","model":"m"}"#;
        let Mapped::Event(event) = map_jsonl(line, &laptop, now()) else {
            panic!("not an event")
        };
        assert_eq!(event.machine.as_deref(), Some("laptop"));
    }

    #[test]
    fn formats_are_told_apart() {
        let path = Path::new("x.jsonl");
        assert_eq!(Format::Auto.resolve(Path::new("a.CSV"), None), Format::Csv);
        assert_eq!(
            Format::Auto.resolve(path, Some(br#"{"type":"summary","summary":"s"}"#)),
            Format::ClaudeCode
        );
        assert_eq!(
            Format::Auto.resolve(path, Some(br#"{"id":"1","model":"m"}"#)),
            Format::Jsonl
        );
        assert_eq!(
            Format::Jsonl.resolve(path, Some(br#"{"sessionId":"s"}"#)),
            Format::Jsonl
        );
    }
}
