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
mod transcript_line;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use indicatif::ProgressBar;
use jiff::Timestamp;

use self::claude_code::{LineContext, Mapped};
use self::formats::{CsvHeader, Format};
use self::lines::{Line, LineReader};
use self::sink::{Chunk, Sink};
use self::state::{HEAD_BYTES, Position};
use crate::db::DbError;
use crate::ingest::event::ApiEvent;

/// Events a reading thread sends at a time (with the file position they
/// reach).
const EVENTS_PER_BATCH: usize = 5_000;
/// Events stored per transaction, from one file or several.
const EVENTS_PER_TRANSACTION: usize = 50_000;
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

/// What a reading thread tells the writing one.
enum Message {
    /// Events of a file and the position after them.
    Chunk(Chunk),
    /// A file read to its end (or to a problem that ends it), with what
    /// reading found; what storing found is added by the writer.
    Done(usize, FileReport),
    Failed(ImportError),
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

    /// Imports `files`, each from where the last run stopped: read and
    /// checked on several threads, stored on this one in transactions that
    /// span files (a transaction and its fsync per file made a folder of
    /// small transcripts slow to import and slower to re-import).
    pub fn import_files(
        &self,
        files: &[PathBuf],
        format: Format,
    ) -> Result<Vec<FileReport>, ImportError> {
        let saved = self.sink.load_positions()?;
        let threads = reading_threads(files.len());
        let next_file = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::sync_channel(threads * 4);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let sender = sender.clone();
                let (next_file, saved) = (&next_file, &saved);
                scope.spawn(move || {
                    loop {
                        let file = next_file.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(file) else {
                            break;
                        };
                        let message = match self.read_file(file, path, format, saved, &sender) {
                            Ok(report) => Message::Done(file, report),
                            Err(error) => Message::Failed(error),
                        };
                        if sender.send(message).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            self.store_all(receiver, files)
        })
    }

    /// Stores what the reading threads send, in transactions of about
    /// [`EVENTS_PER_TRANSACTION`] events with the positions they reach;
    /// on a failure, what was read before it is stored first.
    fn store_all(
        &self,
        receiver: mpsc::Receiver<Message>,
        files: &[PathBuf],
    ) -> Result<Vec<FileReport>, ImportError> {
        let mut read: Vec<Option<FileReport>> = vec![None; files.len()];
        let mut stored: Vec<FileReport> = vec![FileReport::default(); files.len()];
        let mut pending = Vec::new();
        let mut pending_events = 0;
        for message in receiver {
            match message {
                Message::Chunk(chunk) => {
                    self.progress.inc(chunk.bytes);
                    pending_events += chunk.events.len();
                    pending.push(chunk);
                    if pending_events >= EVENTS_PER_TRANSACTION {
                        self.flush(std::mem::take(&mut pending), &mut stored)?;
                        pending_events = 0;
                    }
                }
                Message::Done(file, report) => read[file] = Some(report),
                Message::Failed(error) => {
                    self.flush(pending, &mut stored)?;
                    return Err(error);
                }
            }
        }
        self.flush(pending, &mut stored)?;
        Ok(read
            .into_iter()
            .zip(stored)
            .zip(files)
            .map(|((report, stored), path)| {
                let mut report = report.unwrap_or_else(|| FileReport {
                    path: path.clone(),
                    ..FileReport::default()
                });
                report.add_stored(stored);
                report
            })
            .collect())
    }

    /// Stores `chunks` in one transaction; what it did goes to each
    /// chunk's file in `stored`.
    fn flush(&self, chunks: Vec<Chunk>, stored: &mut [FileReport]) -> Result<(), ImportError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let files: Vec<usize> = chunks.iter().map(|c| c.file).collect();
        let outcomes = self.sink.store(chunks, self.dry_run)?;
        for (file, outcome) in files.into_iter().zip(outcomes) {
            let Some(report) = stored.get_mut(file) else {
                continue;
            };
            report.accepted += outcome.accepted;
            report.duplicates += outcome.duplicates;
            for (line, reason) in outcome.problems {
                report.problem(line, reason);
            }
        }
        Ok(())
    }

    /// Reads one file from where the last run stopped (`saved`), sending
    /// its events in chunks with the position each reaches.
    fn read_file(
        &self,
        file: usize,
        path: &Path,
        format: Format,
        saved: &HashMap<String, Position>,
        out: &mpsc::SyncSender<Message>,
    ) -> Result<FileReport, ImportError> {
        let canonical = path.canonicalize().map_err(io_error(path))?;
        let key = canonical.to_string_lossy().into_owned();
        let size = std::fs::metadata(&canonical).map_err(io_error(path))?.len();
        let start = state::resume_from(&canonical, size, saved.get(&key).cloned())
            .map_err(io_error(path))?;
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
        let handle = File::open(&canonical).map_err(io_error(path))?;
        let mut reader =
            LineReader::at(handle, start.offset, start.lines).map_err(io_error(path))?;
        let mut chunk = ChunkBuilder::new(file, key, format, start.offset);
        let mut repeats = Repeats::new(self.sink.has_default_user());
        let mut lines_done = start.lines;
        while let Some((number, line)) = reader.next_line().map_err(io_error(path))? {
            lines_done = number;
            let mapped = match (line, &header) {
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
                Mapped::Event(event) if repeats.seen(&event) => {
                    report.events += 1;
                    report.duplicates += 1;
                }
                Mapped::Event(event) => chunk.events.push((number, *event)),
                Mapped::Skipped(reason) => *report.skipped.entry(reason).or_default() += 1,
                Mapped::Invalid(reason) => report.problem(number, reason),
            }
            if chunk.events.len() >= EVENTS_PER_BATCH {
                let full = chunk.take(&canonical, (reader.offset(), number), &mut report)?;
                if out.send(Message::Chunk(full)).is_err() {
                    return Ok(report);
                }
            }
        }
        let last = chunk.take(&canonical, (reader.offset(), lines_done), &mut report)?;
        // A file read before and unchanged since has nothing to store.
        let unchanged = last.events.is_empty() && last.position.offset == start.offset;
        if !unchanged && out.send(Message::Chunk(last)).is_err() {
            return Ok(report);
        }
        Ok(report)
    }
}

/// Threads reading files: one per core (at most 8), never more than files.
fn reading_threads(files: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.clamp(1, 8).min(files.max(1))
}

/// Ids seen lately in one file. Claude Code writes an assistant message
/// once per content block, each line repeating its id and usage, and a
/// sub-agent's replay repeats it again: half a transcript's usage lines
/// are repeats, told apart here without asking the database.
struct Repeats {
    /// Only events that name no user are compared: a line naming a user
    /// may be refused where its repeat must be refused too.
    enabled: bool,
    ids: HashSet<(String, String)>,
}

/// Ids kept per file before starting over (repeats are near each other).
const REPEATS_KEPT: usize = 100_000;

impl Repeats {
    fn new(enabled: bool) -> Repeats {
        Repeats {
            enabled,
            ids: HashSet::new(),
        }
    }

    /// Whether `event` repeats one seen before in this file.
    fn seen(&mut self, event: &ApiEvent) -> bool {
        if !self.enabled || event.user.is_some() || event.identity.is_some() {
            return false;
        }
        if self.ids.len() >= REPEATS_KEPT {
            self.ids.clear();
        }
        !self.ids.insert((event.source.clone(), event.id.clone()))
    }
}

/// The chunk a reading thread is filling.
struct ChunkBuilder {
    file: usize,
    key: String,
    format: Format,
    events: Vec<(u64, ApiEvent)>,
    /// Where the last chunk ended.
    offset: u64,
}

impl ChunkBuilder {
    fn new(file: usize, key: String, format: Format, offset: u64) -> ChunkBuilder {
        ChunkBuilder {
            file,
            key,
            format,
            events: Vec::new(),
            offset,
        }
    }

    /// The events so far and the position `(offset, lines)` after them.
    fn take(
        &mut self,
        path: &Path,
        (offset, lines): (u64, u64),
        report: &mut FileReport,
    ) -> Result<Chunk, ImportError> {
        let head_bytes = offset.min(HEAD_BYTES);
        let head_sha256 = state::head_digest(path, head_bytes).map_err(io_error(path))?;
        let events = std::mem::take(&mut self.events);
        report.events += events.len() as u64;
        report.bytes_read += offset - self.offset;
        let bytes = offset - self.offset;
        self.offset = offset;
        Ok(Chunk {
            file: self.file,
            key: self.key.clone(),
            format: self.format.name(),
            events,
            position: Position {
                head_sha256,
                head_bytes,
                offset,
                lines,
            },
            bytes,
        })
    }
}

impl FileReport {
    /// What storing the file's events did.
    fn add_stored(&mut self, stored: FileReport) {
        self.accepted += stored.accepted;
        self.duplicates += stored.duplicates;
        let unlisted = stored.problem_count - stored.problems.len() as u64;
        for (line, reason) in stored.problems {
            self.problem(line, reason);
        }
        self.problem_count += unlisted;
    }
}

/// The first line of a file (bounded), for format detection and headers.
fn first_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut reader = LineReader::with_buffer(File::open(path)?, 0, 0, 8 * 1024)?;
    Ok(match reader.next_line()? {
        Some((_, Line::Text(text))) => Some(text.to_vec()),
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
