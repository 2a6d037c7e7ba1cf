//! `tokentally import`: usage from files on disk — Claude Code transcripts,
//! and our own events as JSONL or CSV — into the local database.
//!
//! Files of any size are streamed line by line ([`lines`]). Import is
//! incremental: the position reached in each file is stored with the
//! events of the lines before it, in one transaction ([`state`]), so a
//! second run reads only what was appended, and a crash never leaves the
//! position ahead of or behind the events. Every event has a stable id,
//! so re-reading a file (replaced, truncated, or imported again from
//! another path) never counts anything twice. Lines that cannot be used are
//! counted by reason; those that should have held usage are reported with
//! their file and line number.

pub mod claude_code;
pub mod formats;
pub mod lines;
pub mod sink;
pub mod state;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use jiff::Timestamp;

use self::claude_code::{LineContext, Mapped};
use self::formats::{CsvHeader, Format};
use self::lines::{Line, LineReader};
use self::sink::Sink;
use self::state::{HEAD_BYTES, Position};
use crate::db::DbError;
use crate::ingest::event::ApiEvent;

/// Events per transaction (with the file position they reach).
const EVENTS_PER_BATCH: usize = 5_000;
/// Problems kept per file for the report (all are counted).
const PROBLEMS_LISTED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Remote(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: Option<Format>,
    /// Where reading started (0 unless resumed).
    pub resumed_at: u64,
    pub bytes_read: u64,
    pub events: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Lines that should have held an event but could not be used.
    pub problem_count: u64,
    /// The first of them: (line number, reason).
    pub problems: Vec<(u64, String)>,
}

impl FileReport {
    fn problem(&mut self, line: u64, reason: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push((line, reason));
        }
    }
}

pub struct Importer {
    sink: Sink,
    dry_run: bool,
    now: Timestamp,
    progress: ProgressBar,
    /// The machine of every event that names none (this host, by default).
    machine: Option<String>,
}

impl Importer {
    /// Runs on a blocking thread.
    pub fn new(sink: Sink, dry_run: bool, progress: ProgressBar) -> Importer {
        Importer {
            sink,
            dry_run,
            now: Timestamp::now(),
            progress,
            machine: None,
        }
    }

    /// Events that name no machine are `machine`'s.
    pub fn with_machine(mut self, machine: Option<String>) -> Importer {
        self.machine = machine;
        self
    }

    /// Imports one file from where the last run stopped.
    pub fn import_file(&self, path: &Path, format: Format) -> Result<FileReport, ImportError> {
        let canonical = path.canonicalize().map_err(io_error(path))?;
        let key = canonical.to_string_lossy().into_owned();
        let size = std::fs::metadata(&canonical).map_err(io_error(path))?.len();
        let saved = self.sink.load_position(&key)?;
        let start = state::resume_from(&canonical, size, saved).map_err(io_error(path))?;
        let mut report = FileReport {
            path: path.to_path_buf(),
            resumed_at: start.offset,
            ..FileReport::default()
        };
        let first_line = first_line(&canonical).map_err(io_error(path))?;
        let format = format.resolve(&canonical, first_line.as_deref());
        report.format = Some(format);
        // Transcript lines never name a user: without one to give them,
        // every line would be refused and the file marked as read.
        if format == Format::ClaudeCode && !self.sink.has_default_user() {
            return Err(ImportError::Usage(format!(
                "{}: Claude Code transcripts name no user and this database has several: \
                 pass --user NAME",
                path.display()
            )));
        }
        let header = match (format, &first_line) {
            (Format::Csv, Some(line)) => match CsvHeader::parse(line) {
                Ok(header) => Some(header),
                Err(reason) => {
                    report.problem(1, reason);
                    return Ok(report);
                }
            },
            _ => None,
        };
        // The folder as given: Claude Code's `projects/<folder>/` may be a
        // link to elsewhere.
        let context = LineContext::for_file(path, self.machine.clone());
        let file = File::open(&canonical).map_err(io_error(path))?;
        let mut reader = LineReader::at(file, start.offset, start.lines).map_err(io_error(path))?;
        let mut batch = Vec::new();
        let mut lines_done = start.lines;
        while let Some((number, line)) = reader.next_line().map_err(io_error(path))? {
            lines_done = number;
            let mapped = match (&line, &header) {
                (Line::TooLong(_), _) => Mapped::Skipped("lines over 16 MiB"),
                (Line::Text(_), Some(_)) if number == 1 => Mapped::Skipped("CSV header"),
                (Line::Text(text), Some(header)) => {
                    formats::map_csv(header, text, &context, self.now)
                }
                (Line::Text(text), None) => match format {
                    Format::ClaudeCode => claude_code::map(text, &context, self.now),
                    _ => formats::map_jsonl(text, &context, self.now),
                },
            };
            match mapped {
                Mapped::Event(event) => batch.push((number, *event)),
                Mapped::Skipped(reason) => *report.skipped.entry(reason).or_default() += 1,
                Mapped::Invalid(reason) => report.problem(number, reason),
            }
            if batch.len() >= EVENTS_PER_BATCH {
                let events = std::mem::take(&mut batch);
                self.flush(&key, format, &mut report, events, (reader.offset(), number))?;
                self.progress
                    .inc(reader.offset() - start.offset - report.bytes_read);
                report.bytes_read = reader.offset() - start.offset;
            }
        }
        self.flush(
            &key,
            format,
            &mut report,
            batch,
            (reader.offset(), lines_done),
        )?;
        self.progress
            .inc(reader.offset() - start.offset - report.bytes_read);
        report.bytes_read = reader.offset() - start.offset;
        Ok(report)
    }

    /// Stores `events` and the position after them together.
    fn flush(
        &self,
        key: &str,
        format: Format,
        report: &mut FileReport,
        events: Vec<(u64, ApiEvent)>,
        (offset, lines): (u64, u64),
    ) -> Result<(), ImportError> {
        report.events += events.len() as u64;
        let head_bytes = offset.min(HEAD_BYTES);
        let head_sha256 =
            state::head_digest(Path::new(key), head_bytes).map_err(io_error(Path::new(key)))?;
        let position = Position {
            head_sha256,
            head_bytes,
            offset,
            lines,
        };
        let stored = self
            .sink
            .store(key, format.name(), events, position, self.dry_run)?;
        report.accepted += stored.accepted;
        report.duplicates += stored.duplicates;
        for (line, reason) in stored.problems {
            report.problem(line, reason);
        }
        Ok(())
    }
}

/// The first line of a file (bounded), for format detection and headers.
fn first_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut reader = LineReader::at(File::open(path)?, 0, 0)?;
    Ok(match reader.next_line()? {
        Some((_, Line::Text(text))) => Some(text),
        _ => None,
    })
}

/// The files named by `paths`: files as given, folders searched (sorted)
/// for `.jsonl`, `.ndjson` and `.csv` files.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ImportError> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(io_error(path))?;
        if metadata.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, files)?;
        } else if formats::is_importable(&entry) {
            files.push(entry);
        }
    }
    Ok(())
}
