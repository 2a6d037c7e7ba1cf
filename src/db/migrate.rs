//! Embedded schema migrations (refinery), and the refusal to touch a
//! database this binary does not understand.
//!
//! Migrations only ever move forward. A database whose recorded schema
//! version is newer than the newest migration embedded here was written by
//! a newer tokentally; opening it with this binary could silently corrupt
//! data that the newer schema relies on, so we stop before writing a byte.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{APPLICATION_ID, DbError};

refinery::embed_migrations!("migrations");

const HISTORY_TABLE: &str = "refinery_schema_history";

/// The newest schema version this binary can write.
pub fn latest_schema_version() -> i64 {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// What a database file holds, read without writing to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    pub application_id: i32,
    /// The newest applied migration, or `None` for an empty database.
    pub version: Option<i64>,
}

/// Reads the schema status of an existing file through a read-only
/// connection. Returns `None` when the file does not exist.
pub fn schema_status(path: &Path) -> Result<Option<SchemaStatus>, DbError> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let application_id: i32 = conn.query_row("PRAGMA application_id", [], |row| row.get(0))?;
    let has_history: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [HISTORY_TABLE],
            |row| row.get(0),
        )
        .optional()?;
    let version = match has_history {
        Some(_) => conn.query_row(
            &format!("SELECT MAX(version) FROM {HISTORY_TABLE}"),
            [],
            |row| row.get(0),
        )?,
        None => None,
    };
    Ok(Some(SchemaStatus {
        application_id,
        version,
    }))
}

/// Fails, without modifying the file, when `path` holds a database written
/// by a newer tokentally or by another program.
pub(crate) fn refuse_unknown_schema(path: &Path) -> Result<(), DbError> {
    let Some(status) = schema_status(path)? else {
        return Ok(());
    };
    if status.application_id != 0 && status.application_id != APPLICATION_ID {
        return Err(DbError::ForeignDatabase {
            path: path.to_path_buf(),
            found: status.application_id,
        });
    }
    let supported = latest_schema_version();
    match status.version {
        Some(found) if found > supported => Err(DbError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported,
        }),
        _ => Ok(()),
    }
}

/// Creates a database at `path` with the embedded migrations up to
/// `version` only: what an older tokentally wrote, for upgrade tests.
/// With an audit key beside the file, the connection has it (migrations
/// from V11 on name its function).
#[doc(hidden)]
pub fn create_at_version(path: &Path, version: i32) -> Result<(), DbError> {
    let mut conn = Connection::open(path)?;
    if let Some(key) = super::audit_key::load(path)? {
        super::audit_key::install(&conn, &key)?;
    }
    migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run(&mut conn)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(())
}

/// Applies every embedded migration not yet applied, each in its own
/// transaction.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), DbError> {
    let report = migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(conn)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    for migration in report.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "applied migration"
        );
    }
    Ok(())
}
