//! `tokentally restore FILE`: puts a backup (from `tokentally backup`, or a
//! pre-migration copy `tokentally.db.pre-vN.bak`) back as the database,
//! while the service is stopped.
//!
//! In order: FILE must be a tokentally database this binary understands;
//! the database must not be in use (SQLite's exclusive lock, taken without
//! waiting, is refused while a server or a command has it open); a copy of
//! FILE passes the checks of `tokentally verify` (the rollups against the
//! raw events, values in range, the audit chain) — FILE itself is never
//! written; the current database is kept as
//! `tokentally.db.before-restore.bak` (a consistent copy, its audit key
//! beside it); then FILE's bytes replace the database, so it comes back at
//! the schema version it has (the next start migrates it again, keeping a
//! pre-migration copy). Any failure before the last step changes nothing.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use crate::audit;
use crate::db::{self, DbError};
use crate::server::DB_FILE;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to put back: a file from `tokentally backup` (its audit key
    /// FILE.audit-key beside it is restored too), or a pre-migration copy
    /// tokentally.db.pre-vN.bak
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

fn fail(message: String) -> CliError {
    CliError::Usage(message)
}

/// Runs `tokentally restore`. Blocking, apart from the check, which runs
/// `verify` on its own runtime.
pub fn run(args: RestoreArgs, data_dir: &Path) -> Result<(), CliError> {
    let file = args.file;
    let db_path = data_dir.join(DB_FILE);
    if !file.is_file() {
        return Err(fail(format!("no backup file at {}", file.display())));
    }
    if db_path.exists() && std::fs::canonicalize(&file).ok() == std::fs::canonicalize(&db_path).ok()
    {
        return Err(fail(format!(
            "{} is the database itself; name a backup of it",
            file.display()
        )));
    }
    let version = backup_version(&file)?;
    // Held until the database is replaced: nothing else opens it meanwhile.
    let lock = match db_path.exists() {
        true => Some(db::lock_exclusive(&db_path)?),
        false => None,
    };
    let key_beside = PathBuf::from(format!("{}.audit-key", file.display()));
    let key_beside = key_beside.is_file().then_some(key_beside);

    println!(
        "checking {} (on a copy) as `tokentally verify` does:",
        file.display()
    );
    check_copy(&file, key_beside.as_deref(), data_dir).map_err(|e| {
        fail(format!(
            "{} did not pass the checks, so nothing was changed: {e}",
            file.display()
        ))
    })?;

    let before = PathBuf::from(format!("{}.before-restore.bak", db_path.display()));
    if let Some(lock) = &lock {
        keep_current(lock, &db_path, &before)?;
    }
    drop(lock);

    let restoring = PathBuf::from(format!("{}.restoring", db_path.display()));
    copy_synced(&file, &restoring)?;
    std::fs::rename(&restoring, &db_path).map_err(|e| {
        fail(format!(
            "cannot move {} to {}: {e}",
            restoring.display(),
            db_path.display()
        ))
    })?;
    for suffix in ["-wal", "-shm"] {
        remove_if_there(&PathBuf::from(format!("{}{suffix}", db_path.display())))?;
    }
    // The head checkpointed for the replaced chain is further along than
    // the restored one: kept aside, or verify would call the chain cut.
    let head = audit::head::head_path(&db_path);
    if head.exists() {
        let aside = PathBuf::from(format!("{}.before-restore", head.display()));
        std::fs::rename(&head, &aside).map_err(|e| {
            fail(format!(
                "cannot move {} aside to {}: {e}",
                head.display(),
                aside.display()
            ))
        })?;
    }
    if let Some(key) = &key_beside {
        let installed = audit::key::key_path(&db_path);
        copy_key(key, &installed)?;
        println!(
            "its audit key {} restored as {}",
            key.display(),
            installed.display()
        );
    }
    println!(
        "restored {} (schema version {version}) as {}",
        file.display(),
        db_path.display()
    );
    if before.exists() {
        println!("the database as it was is kept at {}", before.display());
    }
    let latest = db::latest_schema_version();
    if version < latest {
        println!(
            "the next start migrates it to schema version {latest} (keeping a copy of it first)"
        );
    }
    Ok(())
}

/// The schema version of the backup, refusing a file that is not a
/// tokentally database or that a newer tokentally wrote.
fn backup_version(file: &Path) -> Result<i64, CliError> {
    let status = db::schema_status(file)
        .map_err(|e| {
            fail(format!(
                "{} is not a readable SQLite database: {e}",
                file.display()
            ))
        })?
        .ok_or_else(|| fail(format!("no backup file at {}", file.display())))?;
    if status.application_id != db::APPLICATION_ID {
        return Err(fail(format!(
            "{} is not a tokentally database (application id {:#x})",
            file.display(),
            status.application_id
        )));
    }
    let latest = db::latest_schema_version();
    match status.version {
        None => Err(fail(format!(
            "{} holds no tokentally schema (an empty database)",
            file.display()
        ))),
        Some(found) if found > latest => Err(fail(format!(
            "{} was written by a newer tokentally (schema version {found}; this binary knows up \
             to {latest}); restore it with that version",
            file.display()
        ))),
        Some(found) => Ok(found),
    }
}

/// Runs `verify` on a copy of `file` in a scratch directory inside the
/// data directory (verify migrates what it opens: the copy, never `file`).
fn check_copy(file: &Path, key: Option<&Path>, data_dir: &Path) -> Result<(), CliError> {
    let scratch = data_dir.join(format!(".restore-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| fail(format!("cannot create {}: {e}", scratch.display())))?;
    let outcome = (|| {
        let copy = scratch.join(DB_FILE);
        copy_synced(file, &copy)?;
        // The copy's key: the one beside the backup, else the database's
        // own (a pre-migration copy shares it).
        let current_key = audit::key::key_path(&data_dir.join(DB_FILE));
        let key = key
            .map(Path::to_path_buf)
            .or_else(|| current_key.is_file().then_some(current_key));
        if let Some(key) = key {
            copy_key(&key, &audit::key::key_path(&copy))?;
        }
        let args = super::usage::VerifyArgs { repair: false };
        super::runtime()?.block_on(super::usage::verify(&copy, args))?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

/// Keeps the current database (through the locked connection) and its
/// audit key as `before` and `before.audit-key`, replacing older ones.
fn keep_current(
    lock: &rusqlite::Connection,
    db_path: &Path,
    before: &Path,
) -> Result<(), CliError> {
    let partial = PathBuf::from(format!("{}.partial", before.display()));
    remove_if_there(&partial)?;
    lock.execute("VACUUM INTO ?1", [partial.to_string_lossy().as_ref()])
        .map_err(|e| {
            fail(format!(
                "cannot copy {} to {} before restoring (nothing was changed): {e}",
                db_path.display(),
                partial.display()
            ))
        })?;
    std::fs::rename(&partial, before)
        .map_err(|e| fail(format!("cannot write {}: {e}", before.display())))?;
    let key = audit::key::key_path(db_path);
    if key.is_file() {
        copy_key(
            &key,
            &PathBuf::from(format!("{}.audit-key", before.display())),
        )?;
    }
    Ok(())
}

/// Copies `from` to `to` (replacing it) and flushes it to the disk.
fn copy_synced(from: &Path, to: &Path) -> Result<(), CliError> {
    let copied = std::fs::copy(from, to)
        .and_then(|_| std::fs::File::open(to))
        .and_then(|f| f.sync_all());
    copied.map_err(|e| {
        fail(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

/// Copies an audit key file, readable by its owner only.
fn copy_key(from: &Path, to: &Path) -> Result<(), CliError> {
    let text = std::fs::read(from)
        .map_err(|e| fail(format!("cannot read the audit key {}: {e}", from.display())))?;
    remove_if_there(to)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(to)
        .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
        .map_err(|e| fail(format!("cannot write the audit key {}: {e}", to.display())))
}

fn remove_if_there(path: &Path) -> Result<(), CliError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::Db(DbError::Check(format!(
            "cannot remove {}: {e}",
            path.display()
        )))),
    }
}
