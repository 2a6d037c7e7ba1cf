//! `tokentally import`: files into the local database, with a progress
//! bar on a terminal and a report of every file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::usage::{UsageCommandError, open};
use crate::db::Db;
use crate::import::formats::Format;
use crate::import::sink::{Local, Remote, Sink};
use crate::import::{self, FileReport, ImportError, Importer, claude_code};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or folders (searched for .jsonl, .ndjson and .csv); with none,
    /// Claude Code's transcript folders (CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// What the files hold
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
    /// Whose usage lines without a user are [default: the only user, when there is one]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read and check everything, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Send the events to this tokentally server (e.g. https://tokens.example.com)
    /// instead of the local database
    #[arg(long, value_name = "URL", requires = "token")]
    pub server: Option<String>,
    /// An ingest API token of the server (`tokentally token create` there)
    #[arg(
        long,
        env = "TOKENTALLY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// With --server: where to remember how far each file was sent
    /// [default: $XDG_STATE_HOME/tokentally/import-<server>.json]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The machine the events come from, for events that name none
    /// ("" for none) [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportCommandError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Open(#[from] UsageCommandError),
    #[error("{0}")]
    Incomplete(String),
}

/// Events folded into the rollups per transaction after an import.
const FOLD_CHUNK: usize = 200_000;

pub async fn run(args: ImportArgs, db_path: &Path) -> Result<(), ImportCommandError> {
    let machine = machine(args.machine.as_deref())?;
    let (files, format) = files_to_read(&args)?;
    let db = match &args.server {
        Some(_) => None,
        None => Some(open(db_path).await?),
    };
    let sink = sink(&args, db.clone())?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = ProgressBar::new(total_bytes);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let (dry_run, bar) = (args.dry_run, progress.clone());
    let reports = tokio::task::spawn_blocking(move || {
        let sink = sink(tokio::runtime::Handle::current())?;
        let importer = Importer::new(sink, dry_run, bar).with_machine(machine);
        importer.import_files(&files, format)
    })
    .await
    .map_err(|e| ImportError::Usage(format!("the import task failed: {e}")))?;
    progress.finish_and_clear();
    if let Some(db) = db {
        // What was stored reaches the rollups before the command ends, so
        // that reads need not add a long tail of raw events (a running
        // server would fold them too).
        let folded = crate::usage::rollup::fold_pending(&db, FOLD_CHUNK).await;
        db.shutdown().await;
        folded.map_err(|e| ImportError::Usage(format!("could not fold into the rollups: {e}")))?;
    }
    let reports = reports?;
    print!(
        "{}",
        summary(&reports, args.dry_run, started.elapsed().as_secs_f64())
    );
    let problems: u64 = reports.iter().map(|r| r.problem_count).sum();
    if problems > 0 {
        return Err(ImportCommandError::Incomplete(format!(
            "{problems} line(s) could not be imported (listed above); the rest was imported"
        )));
    }
    Ok(())
}

/// The machine of the events that name none: `--machine`, else this
/// host's name; checked by the rules of every name, so that a host name
/// no event could carry is refused once, here, rather than on every line.
fn machine(given: Option<&str>) -> Result<Option<String>, ImportCommandError> {
    let Some(name) = given.map(str::to_owned).or_else(host_name) else {
        return Ok(None);
    };
    match crate::ingest::event::check_text(&name) {
        Ok(name) if name.is_empty() => Ok(None),
        Ok(name) => Ok(Some(name)),
        Err(reason) if given.is_some() => Err(ImportCommandError::Incomplete(format!(
            "--machine: {reason}"
        ))),
        Err(reason) => Err(ImportCommandError::Incomplete(format!(
            "this host's name {name:?} {reason}: pass --machine NAME"
        ))),
    }
}

/// This host's name, as `hostname` prints it.
#[cfg(unix)]
fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is passed;
    // gethostname writes at most that many bytes.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return None;
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8(buffer[..end].to_vec()).ok()
}

/// This host's name, as Windows names it.
#[cfg(not(unix))]
fn host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

type SinkFactory = Box<dyn FnOnce(tokio::runtime::Handle) -> Result<Sink, ImportError> + Send>;

/// How to make the sink on the import thread: the local database, or the
/// server named by --server.
fn sink(args: &ImportArgs, db: Option<Db>) -> Result<SinkFactory, ImportCommandError> {
    let user = args.user.clone();
    match (&args.server, db) {
        (Some(server), _) => {
            let token = args.token.clone().ok_or_else(|| {
                ImportCommandError::Incomplete(
                    "--server needs --token (or TOKENTALLY_TOKEN)".into(),
                )
            })?;
            let state = match &args.state {
                Some(path) => path.clone(),
                None => default_state_file(server)?,
            };
            let server = server.clone();
            Ok(Box::new(move |_| {
                Ok(Sink::Remote(Remote::new(&server, token, user, state)?))
            }))
        }
        (None, Some(db)) => Ok(Box::new(move |runtime| {
            Ok(Sink::Local(Local::new(db, runtime, user.as_deref())?))
        })),
        (None, None) => Err(ImportCommandError::Incomplete(
            "no database to import into".into(),
        )),
    }
}

/// `$XDG_STATE_HOME/tokentally/import-<server digest>.json` (or under
/// `~/.local/state`): one file per server, so two servers never share
/// positions.
fn default_state_file(server: &str) -> Result<PathBuf, ImportCommandError> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .ok_or_else(|| {
            ImportCommandError::Incomplete("no $HOME or $XDG_STATE_HOME: pass --state FILE".into())
        })?;
    let digest = crate::secret::digest(server.trim_end_matches('/'));
    Ok(base
        .join("tokentally")
        .join(format!("import-{}.json", &digest[..16])))
}

fn files_to_read(args: &ImportArgs) -> Result<(Vec<PathBuf>, Format), ImportCommandError> {
    if !args.paths.is_empty() {
        return Ok((import::collect_files(&args.paths)?, args.format));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let config_dirs = std::env::var("CLAUDE_CONFIG_DIR").ok();
    let roots = claude_code::default_roots(config_dirs.as_deref(), home.as_deref());
    if roots.is_empty() {
        return Err(ImportCommandError::Incomplete(
            "no Claude Code transcripts found (CLAUDE_CONFIG_DIR, ~/.config/claude/projects, \
             ~/.claude/projects); name the files or folders to import"
                .into(),
        ));
    }
    let format = match args.format {
        Format::Auto => Format::ClaudeCode,
        other => other,
    };
    Ok((import::collect_files(&roots)?, format))
}

fn summary(reports: &[FileReport], dry_run: bool, seconds: f64) -> String {
    let mut out = String::new();
    for report in reports {
        let format = report.format.map(Format::name).unwrap_or("?");
        let resumed = if report.resumed_at > 0 {
            format!(", from byte {}", report.resumed_at)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{} [{format}]: {} events ({} new, {} already there); {} bytes read{resumed}\n",
            report.path.display(),
            report.events,
            report.accepted,
            report.duplicates,
            report.bytes_read
        ));
        if !report.skipped.is_empty() {
            let skipped: Vec<String> = report
                .skipped
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            out.push_str(&format!("  skipped lines: {}\n", skipped.join(", ")));
        }
        for (line, reason) in &report.problems {
            out.push_str(&format!("  {}:{line}: {reason}\n", report.path.display()));
        }
        let unlisted = report.problem_count - report.problems.len() as u64;
        if unlisted > 0 {
            out.push_str(&format!(
                "  … and {unlisted} more lines that could not be used\n"
            ));
        }
    }
    let events: u64 = reports.iter().map(|r| r.events).sum();
    let accepted: u64 = reports.iter().map(|r| r.accepted).sum();
    let duplicates: u64 = reports.iter().map(|r| r.duplicates).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes_read).sum();
    let rate = events as f64 / seconds.max(1e-9);
    if dry_run {
        out.push_str(&format!(
            "dry run: {events} events read from {} files ({bytes} bytes) in {seconds:.1} s; \
             nothing was written\n",
            reports.len()
        ));
    } else {
        out.push_str(&format!(
            "imported {accepted} new events ({duplicates} already there) from {} files \
             ({bytes} bytes) in {seconds:.1} s, {rate:.0} events/s\n",
            reports.len()
        ));
    }
    out
}
