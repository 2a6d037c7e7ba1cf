//! The chain's head, checkpointed outside the database, so that removing
//! the newest entries — or every entry — is detected.
//!
//! A keyed chain cannot be forged, but it can be cut short: delete the
//! last rows (with the triggers dropped) and what is left is a valid chain.
//! So the head (last `seq` and its hash) is appended, with a MAC under the
//! audit key, to `tokentally.db.audit-head` beside the database: by the
//! server every few seconds while it changes and at shutdown, and by every
//! command-line command that ran. It is also written to the log at intervals, for a
//! copy in another place (journald, a log collector). `tokentally verify`
//! requires the newest checkpoint's entry to be in the chain with the same
//! hash — or to have been removed by a keyed retention purge.
//!
//! What it does not catch: entries written after the last checkpoint (at
//! most a few seconds' worth while the server runs) and then removed; and
//! someone who also replaces the head file by an older copy of itself, or
//! who holds the key. The log lines are the defence against the former.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::db::DbError;
use crate::db::audit_key::{self as key, AuditKey};

/// The checkpoint file's suffix: `tokentally.db.audit-head` beside
/// `tokentally.db` (one per database: the demo's is apart).
pub const HEAD_SUFFIX: &str = ".audit-head";
/// Past this size the file is rewritten with its last line only.
const COMPACT_AT_BYTES: u64 = 64 * 1024;

/// One checkpoint of the chain's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at_ms: i64,
}

impl Checkpoint {
    fn line(&self, key: &AuditKey) -> String {
        let (seq, at_ms) = (self.seq.to_string(), self.at_ms.to_string());
        let mac = key.mac(&["head", &seq, &self.hash, &at_ms]);
        format!("{seq} {} {at_ms} {mac}\n", self.hash)
    }

    fn parse(line: &str, key: &AuditKey) -> Option<Checkpoint> {
        let mut parts = line.split_ascii_whitespace();
        let (seq, hash, at_ms, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let checkpoint = Checkpoint {
            seq: seq.parse().ok()?,
            hash: hash.to_owned(),
            at_ms: at_ms.parse().ok()?,
        };
        (key.mac(&["head", seq, hash, at_ms]) == mac).then_some(checkpoint)
    }
}

/// Where the head of the database at `db_path` is checkpointed.
pub fn head_path(db_path: &Path) -> PathBuf {
    PathBuf::from(format!("{}{HEAD_SUFFIX}", db_path.display()))
}

/// The newest valid checkpoint, and how many lines were not valid (made
/// without the key, or damaged).
pub fn newest(db_path: &Path, key: &AuditKey) -> Result<(Option<Checkpoint>, usize), DbError> {
    let path = head_path(db_path);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, 0)),
        Err(e) => return Err(io_error(&path, e)),
    };
    let mut newest: Option<Checkpoint> = None;
    let mut invalid = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match Checkpoint::parse(line, key) {
            Some(c) if newest.as_ref().is_none_or(|n| c.seq >= n.seq) => newest = Some(c),
            Some(_) => {}
            None => invalid += 1,
        }
    }
    Ok((newest, invalid))
}

/// Appends the chain's current head to the file when it is newer than the
/// newest checkpoint there; returns it when written. `conn` must see
/// committed data only (a read connection, or no open transaction).
pub fn checkpoint(
    conn: &Connection,
    db_path: &Path,
    now_ms: i64,
) -> Result<Option<Checkpoint>, DbError> {
    let Some(key) = key::load(db_path)? else {
        return Ok(None);
    };
    let head = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?;
    let Some((seq, hash)) = head else {
        return Ok(None);
    };
    let (newest, _) = newest(db_path, &key)?;
    // Never move backwards: after a truncation the file must keep saying
    // what the chain once reached.
    if newest.is_some_and(|n| n.seq >= seq) {
        return Ok(None);
    }
    let checkpoint = Checkpoint {
        seq,
        hash,
        at_ms: now_ms,
    };
    let path = head_path(db_path);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let written = if size > COMPACT_AT_BYTES {
        replace_with(&path, &checkpoint.line(&key))
    } else {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(checkpoint.line(&key).as_bytes()))
    };
    written.map_err(|e| io_error(&path, e))?;
    Ok(Some(checkpoint))
}

/// [`checkpoint`] on a read-only connection of its own: for the end of a
/// command or of the server, when every write is committed. No database
/// (a command that made none): nothing to do.
pub fn checkpoint_file(db_path: &Path, now_ms: i64) -> Result<Option<Checkpoint>, DbError> {
    if !db_path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has_log: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'audit_log')",
        [],
        |row| row.get(0),
    )?;
    if !has_log {
        return Ok(None);
    }
    checkpoint(&conn, db_path, now_ms)
}

/// Writes `line` as the whole file, atomically (a new file renamed over).
fn replace_with(path: &Path, line: &str) -> std::io::Result<()> {
    let partial = path.with_extension("head.new");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// Whether the chain still holds the newest checkpoint; the reason when it
/// does not. `first_kept_seq` is the oldest entry a keyed purge kept (0:
/// none purged).
pub fn check(conn: &Connection, db_path: &Path, key: &AuditKey) -> Result<Option<String>, DbError> {
    let (newest, invalid) = newest(db_path, key)?;
    if invalid > 0 {
        return Ok(Some(format!(
            "{invalid} line(s) of {} were not written with the audit key",
            head_path(db_path).display()
        )));
    }
    let Some(checkpoint) = newest else {
        return Ok(None);
    };
    let (oldest, newest_seq): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT MIN(seq), MAX(seq) FROM audit_log", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let at = jiff::Timestamp::from_millisecond(checkpoint.at_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let Some(newest_seq) = newest_seq else {
        return Ok(Some(format!(
            "the audit log is empty, but it held entry {} at {at} (checkpoint in {}): \
             entries were removed",
            checkpoint.seq,
            head_path(db_path).display()
        )));
    };
    if newest_seq < checkpoint.seq {
        return Ok(Some(format!(
            "the newest entry is {newest_seq}, but the log held entry {} at {at} (checkpoint in \
             {}): the newest entries were removed",
            checkpoint.seq,
            head_path(db_path).display()
        )));
    }
    if oldest.is_some_and(|oldest| oldest > checkpoint.seq) {
        // Purged by retention: the chain walk checks that a keyed purge
        // anchors what is left.
        return Ok(None);
    }
    let stored: Option<String> = conn
        .query_row(
            "SELECT hash FROM audit_log WHERE seq = ?1",
            [checkpoint.seq],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match stored {
        Some(hash) if hash == checkpoint.hash => None,
        _ => Some(format!(
            "entry {} is not the one checkpointed at {at} in {}: the log was rewritten",
            checkpoint.seq,
            head_path(db_path).display()
        )),
    })
}

fn io_error(path: &Path, e: std::io::Error) -> DbError {
    DbError::AuditKey(format!("{}: {e}", path.display()))
}
