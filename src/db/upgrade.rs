//! Safe upgrades: before a start migrates an existing database to a newer
//! schema, a consistent copy of it as it was is written beside it
//! (`tokentally.db.pre-vN.bak`, N the version it had) through the same
//! path as `tokentally backup` ([`super::backup`]). The last [`KEEP`] such
//! copies are kept. When the disk lacks room for the copy, the start is
//! refused and nothing is changed. `tokentally restore` puts a copy back.

use std::path::{Path, PathBuf};

use super::DbError;
use super::migrate::{latest_schema_version, schema_status};

/// Pre-migration copies kept beside the database; older ones are removed.
pub const KEEP: usize = 3;

/// Room asked for beyond the database's own size: 16 MiB and a tenth of
/// the database (the copy is compacted, so never larger than the file; the
/// migration that follows needs some room too).
pub fn room_needed(database_bytes: u64) -> u64 {
    database_bytes
        .saturating_add(database_bytes / 10)
        .saturating_add(16 * 1024 * 1024)
}

/// `DIR/tokentally.db.pre-vN.bak` for the database at `db_path`.
pub fn pre_migration_path(db_path: &Path, version: i64) -> PathBuf {
    PathBuf::from(format!("{}.pre-v{version}.bak", db_path.display()))
}

/// Bytes of the database file and its WAL.
pub fn database_bytes(db_path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", db_path.display()));
    [db_path, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Bytes an unprivileged process may still write on the file system of
/// `dir` (statvfs: available blocks times the fragment size).
pub fn available_bytes(dir: &Path) -> Result<u64, std::io::Error> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated
    // path; nothing is kept past the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// When the database at `db_path` exists at an older schema version than
/// this binary's, writes the pre-migration copy (refusing when the disk
/// lacks room for it), removes the oldest copies beyond [`KEEP`] and
/// returns the copy's path and the version it holds. Does nothing (and
/// returns `None`) for a new or current database. Blocking.
pub fn backup_before_migration(db_path: &Path) -> Result<Option<(PathBuf, i64)>, DbError> {
    let Some(status) = schema_status(db_path)? else {
        return Ok(None);
    };
    let latest = latest_schema_version();
    let version = match status.version {
        Some(version) if version < latest => version,
        _ => return Ok(None),
    };
    let dir = db_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let needed = room_needed(database_bytes(db_path));
    let available = available_bytes(dir).map_err(|e| {
        DbError::Check(format!(
            "cannot tell the free space in {} before migrating {}: {e}",
            dir.display(),
            db_path.display()
        ))
    })?;
    if available < needed {
        return Err(DbError::Check(format!(
            "not enough free disk space to upgrade {db}: before migrating it from schema \
             version {version} to {latest}, tokentally writes a copy of it beside it, which \
             needs {needed} bytes (the database and a margin) in {dir}, but only {available} \
             are free. Nothing was changed; free some space (or move the data directory) and \
             start again",
            db = db_path.display(),
            dir = dir.display(),
        )));
    }
    let target = pre_migration_path(db_path, version);
    // Written under a temporary name and renamed, so that a copy under the
    // final name is always whole (and replaces one left by an earlier
    // start whose migration failed).
    let partial = PathBuf::from(format!("{}.partial", target.display()));
    let remove_stale = |path: &Path| match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DbError::Check(format!(
            "cannot remove the unfinished copy {}: {e}",
            path.display()
        ))),
    };
    remove_stale(&partial)?;
    if let Err(e) = super::backup(db_path, &partial) {
        let _ = std::fs::remove_file(&partial);
        return Err(DbError::Check(format!(
            "cannot write the copy of {} kept before migrating it ({}); nothing was changed: {e}",
            db_path.display(),
            target.display()
        )));
    }
    std::fs::rename(&partial, &target).map_err(|e| {
        DbError::Check(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            target.display()
        ))
    })?;
    tracing::warn!(
        database = %db_path.display(),
        copy = %target.display(),
        from_version = version,
        to_version = latest,
        "migrating the database to a newer schema; a consistent copy of it as it was is kept \
         (tokentally restore puts it back)"
    );
    for old in prune(db_path)? {
        tracing::info!(copy = %old.display(), "removed an old pre-migration copy");
    }
    Ok(Some((target, version)))
}

/// The pre-migration copies of `db_path`, newest first (by modification
/// time, then version).
pub fn pre_migration_copies(db_path: &Path) -> Vec<PathBuf> {
    let dir = db_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let Some(name) = db_path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{name}.pre-v");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut copies: Vec<(std::time::SystemTime, i64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let version: i64 = file_name
                .to_str()?
                .strip_prefix(&prefix)?
                .strip_suffix(".bak")?
                .parse()
                .ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            Some((modified, version, entry.path()))
        })
        .collect();
    copies.sort_by_key(|(modified, version, _)| std::cmp::Reverse((*modified, *version)));
    copies.into_iter().map(|(_, _, path)| path).collect()
}

/// Removes the pre-migration copies beyond the newest [`KEEP`]; returns
/// what it removed.
fn prune(db_path: &Path) -> Result<Vec<PathBuf>, DbError> {
    let mut removed = Vec::new();
    for old in pre_migration_copies(db_path).into_iter().skip(KEEP) {
        std::fs::remove_file(&old).map_err(|e| {
            DbError::Check(format!(
                "cannot remove the old pre-migration copy {}: {e}",
                old.display()
            ))
        })?;
        removed.push(old);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_asked_for_is_the_database_and_a_margin() {
        assert_eq!(room_needed(0), 16 * 1024 * 1024);
        assert_eq!(room_needed(1_000_000_000), 1_100_000_000 + 16 * 1024 * 1024);
        assert_eq!(room_needed(u64::MAX), u64::MAX);
    }

    #[test]
    fn only_the_newest_copies_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("tokentally.db");
        for version in [3, 7, 11, 12] {
            std::fs::write(pre_migration_path(&db, version), b"x").expect("write");
            // Distinct modification times, oldest first.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(dir.path().join("tokentally.db.pre-vX.bak"), b"x").expect("write");
        let removed = prune(&db).expect("prune");
        assert_eq!(removed, [pre_migration_path(&db, 3)]);
        assert_eq!(
            pre_migration_copies(&db),
            [12, 11, 7].map(|v| pre_migration_path(&db, v))
        );
        assert!(dir.path().join("tokentally.db.pre-vX.bak").exists());
    }

    #[test]
    fn free_space_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(available_bytes(dir.path()).expect("statvfs") > 0);
        assert!(available_bytes(&dir.path().join("missing")).is_err());
    }
}
