//! The per-file import position (table `import_files`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::db::DbError;

/// Bytes of a file's start whose digest identifies it.
pub const HEAD_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub head_sha256: String,
    pub head_bytes: u64,
    pub offset: u64,
    pub lines: u64,
}

impl Position {
    pub const START: Position = Position {
        head_sha256: String::new(),
        head_bytes: 0,
        offset: 0,
        lines: 0,
    };
}

/// Every file's position, by path.
pub fn load_all(conn: &Connection) -> Result<HashMap<String, Position>, DbError> {
    let mut statement = conn
        .prepare_cached("SELECT path, head_sha256, head_bytes, offset, lines FROM import_files")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            Position {
                head_sha256: row.get(1)?,
                head_bytes: row.get::<_, i64>(2)?.try_into().unwrap_or(0),
                offset: row.get::<_, i64>(3)?.try_into().unwrap_or(0),
                lines: row.get::<_, i64>(4)?.try_into().unwrap_or(0),
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn save(
    conn: &Connection,
    path: &str,
    format: &str,
    position: &Position,
    now: i64,
) -> Result<(), DbError> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO import_files (path, format, head_sha256, head_bytes, offset, lines, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (path) DO UPDATE SET format = excluded.format,
             head_sha256 = excluded.head_sha256, head_bytes = excluded.head_bytes,
             offset = excluded.offset, lines = excluded.lines, updated_at = excluded.updated_at",
    )?
    .execute(params![
        path,
        format,
        position.head_sha256,
        as_i64(position.head_bytes),
        as_i64(position.offset),
        as_i64(position.lines),
        now
    ])?;
    Ok(())
}

/// SHA-256 of the first `bytes` bytes of `path` (fewer if it is shorter).
pub fn head_digest(path: &Path, bytes: u64) -> io::Result<String> {
    let mut head = Vec::new();
    File::open(path)?.take(bytes).read_to_end(&mut head)?;
    Ok(crate::secret::hex(&Sha256::digest(&head)))
}

/// Where to resume `path` (now `size` bytes long) given its saved position:
/// there, if the file still starts the same and is not shorter; else from
/// the start (its events are deduplicated, so re-reading is safe).
pub fn resume_from(path: &Path, size: u64, saved: Option<Position>) -> io::Result<Position> {
    let Some(saved) = saved else {
        return Ok(Position::START);
    };
    if saved.offset > size || head_digest(path, saved.head_bytes)? != saved.head_sha256 {
        return Ok(Position::START);
    }
    Ok(saved)
}
