//! The database: one SQLite file, one writer thread, a small pool of readers.
//!
//! SQLite allows one writer at a time. Rather than letting every request
//! fight for the write lock (and retry on `SQLITE_BUSY`), all writes go to a
//! single thread that owns the write connection ([`writer`]). That thread
//! folds the jobs that are queued together into one transaction (group
//! commit): each job runs inside its own savepoint, so one failing job does
//! not undo its neighbours, and every job is answered only after the shared
//! `COMMIT` — an acknowledged write is durable.
//!
//! Reads run on a small pool of read-only connections ([`pool`]) on tokio's
//! blocking threads, never on the async worker threads. WAL mode lets them
//! read a consistent snapshot while the writer commits.

pub mod audit_key;
pub(crate) mod migrate;
mod pool;
pub mod upgrade;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use migrate::{SchemaStatus, create_at_version, latest_schema_version, schema_status};
pub use writer::{BATCH_BUCKETS, WriterStats};

/// How long a connection waits on a lock held by another process (the CLI
/// and a running server share the file) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `PRAGMA application_id` of a tokentally database ("tktl"), so that we can
/// refuse to migrate some other program's SQLite file.
pub const APPLICATION_ID: i32 = 0x746b_746c;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `BEGIN` or `COMMIT` of the writer's transaction failed: SQLite's
    /// error, the same for every job of the batch.
    #[error("the transaction could not be committed: {0}")]
    Commit(#[source] Arc<rusqlite::Error>),
    /// SQLite rolled the writer's whole transaction back on its own (it
    /// does on a full disk or an I/O error) when a later job of the batch
    /// failed: this job's work was undone with it.
    #[error(
        "the write transaction was rolled back by SQLite (storage trouble: disk full or I/O error)"
    )]
    RolledBack,
    /// A check of ours failed (a copy that is not intact, a dimension
    /// without a name table); the message says which.
    #[error("{0}")]
    Check(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error(
        "{path} was written by a newer tokentally (schema version {found}; this binary knows up to \
         {supported}). It was not modified. Run the newer tokentally, or restore a backup made \
         before the upgrade."
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{path} is not a tokentally database (application id {found:#x}); it was not modified")]
    ForeignDatabase { path: PathBuf, found: i32 },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("cannot start the database writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error("a database task panicked")]
    TaskPanicked,
    /// The audit key is missing, unreadable or not the one the chain was
    /// written with.
    #[error("audit key: {0}")]
    AuditKey(String),
    /// A write refused for what it asks, not for a fault: the message is
    /// for the client (it names the limit and how to proceed).
    #[error("{0}")]
    Refused(String),
    /// A write over a budget that renews (new names a day): the message is
    /// for the client, and the budget renews after `retry_after_s`.
    #[error("{message}")]
    OverBudget { message: String, retry_after_s: u64 },
    /// A sum out of range: only a database written before the per-event
    /// limits can hold one (`tokentally verify --repair`).
    #[error("{0}")]
    Overflow(#[from] crate::model::Overflow),
}

impl DbError {
    /// When the storage refuses writes (disk full or at its size limit,
    /// read-only file or file system, I/O error): what to tell the client.
    /// Such a failure is temporary from the client's point of view: nothing
    /// was written, and the same request succeeds once space returns. Told
    /// by SQLite's error code, never by the text of a message.
    pub fn storage_trouble(&self) -> Option<&'static str> {
        use rusqlite::ErrorCode;
        match self {
            DbError::Sqlite(e) => match e.sqlite_error_code()? {
                ErrorCode::DiskFull => {
                    Some("the disk is full, or the database reached its size limit (128 GiB)")
                }
                ErrorCode::ReadOnly => Some("the database is read-only"),
                ErrorCode::SystemIoFailure => Some("the disk reported an I/O error"),
                _ => None,
            },
            DbError::Commit(e) => match e.sqlite_error_code()? {
                ErrorCode::DiskFull => Some("the disk is full"),
                ErrorCode::ReadOnly => Some("the database is read-only"),
                ErrorCode::SystemIoFailure => Some("the disk reported an I/O error"),
                _ => None,
            },
            DbError::RolledBack => Some("the disk is full or failing"),
            _ => None,
        }
    }
}

/// Tuning that differs between production and tests.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Number of read-only connections.
    pub readers: usize,
    /// Most jobs folded into one write transaction.
    pub max_batch: usize,
    /// The SQLite VFS the connections open the file with (registered by
    /// name beforehand); `None` for SQLite's default. Tests use it to put
    /// a simulated disk under the app (`tests/it/common/powercut.rs`).
    pub vfs: Option<String>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            readers: 4,
            max_batch: 256,
            vfs: None,
        }
    }
}

/// Handle to the database; cheap to clone, shared through `AppState`.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: writer::Writer,
    readers: pool::ReadPool,
}

impl Db {
    /// Opens (creating if needed) the database at `path`, refuses a newer
    /// or foreign schema without touching the file, applies the embedded
    /// migrations and starts the writer thread. Blocking: call it before the
    /// runtime serves requests or from `spawn_blocking`.
    pub fn open(path: &Path, options: &DbOptions) -> Result<Db, DbError> {
        Db::open_with(path, options, &|_| Ok(()))
    }

    /// [`Db::open`], then `prepare` in one transaction on the write
    /// connection, after the migrations and before the writer starts: what
    /// the layers above keep current in the database at every start (the
    /// price catalogue, `usage::price_sync::prepare`). A failure leaves the
    /// database as the migrations left it and is returned.
    pub fn open_with(
        path: &Path,
        options: &DbOptions,
        prepare: &dyn Fn(&Connection) -> Result<(), DbError>,
    ) -> Result<Db, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::DataDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        migrate::refuse_unknown_schema(path)?;
        // An existing database at an older schema: a consistent copy of it
        // first (or a refusal, changing nothing, when there is no room).
        if options.vfs.is_none() {
            upgrade::backup_before_migration(path)?;
        }
        let (_, new_key) = audit_key::load_or_create(path)?;
        let vfs = options.vfs.as_deref();
        let mut conn = open_write_connection(path, vfs)?;
        migrate::apply(&mut conn)?;
        if let Err(e) = audit_key::check_new_key(&conn, new_key) {
            if new_key {
                // Leave no wrong key behind: the next start must refuse too.
                let _ = std::fs::remove_file(audit_key::key_path(path));
            }
            return Err(e);
        }
        let transaction = conn.transaction()?;
        prepare(&transaction)?;
        transaction.commit()?;
        let writer = writer::Writer::start(conn, options.max_batch)?;
        let readers = pool::ReadPool::open(path, vfs, options.readers.max(1))?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer,
                readers,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The writer's queue and batch counters.
    pub fn writer_stats(&self) -> &WriterStats {
        self.inner.writer.stats()
    }

    /// Bytes of the database file and its WAL.
    pub fn size_bytes(&self) -> u64 {
        let wal = PathBuf::from(format!("{}-wal", self.inner.path.display()));
        [self.inner.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Runs `f` on a read-only connection, off the async threads.
    pub async fn read<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.inner.readers.run(f).await
    }

    /// Runs `f` inside the writer's transaction (in its own savepoint) and
    /// answers once that transaction is committed. An `Err` from `f` rolls
    /// back only `f`'s own changes.
    pub async fn write<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.inner.writer.run(f).await
    }

    /// True while the writer thread takes work.
    pub async fn writer_alive(&self) -> bool {
        self.write(|_| Ok::<_, DbError>(())).await.is_ok()
    }

    /// Finishes every queued write, checkpoints the WAL into the main file
    /// and stops the writer. Later writes fail with [`DbError::WriterGone`].
    pub async fn shutdown(&self) {
        self.inner.writer.shutdown().await;
    }
}

fn set_common_pragmas(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Every connection of ours can hash audit entries (and so append and
    // purge); the key comes from beside the file it opened.
    let db_path = conn.path().map(Path::new).unwrap_or(Path::new(""));
    if let Some(key) = audit_key::load(db_path)? {
        audit_key::install(conn, &key)?;
    }
    Ok(())
}

fn open_write_connection(path: &Path, vfs: Option<&str>) -> Result<Connection, DbError> {
    let conn = match vfs {
        None => Connection::open(path)?,
        Some(vfs) => Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs)?,
    };
    set_common_pragmas(&conn)?;
    // WAL: readers never block the writer and see a consistent snapshot.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before the writer acknowledges it, so an
    // accepted event survives a power cut, not only a crash. Group commit
    // spreads the fsync over many requests.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    // Each job runs in a savepoint, whose undo journal SQLite would
    // otherwise write to a temporary file page by page.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The size cap that bounds how many events the file can hold, and so
    // every sum over them (usage::limits). Not persisted by SQLite: set on
    // every writing connection.
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let max_pages = crate::model::limits::max_page_count(page_size);
    conn.query_row(&format!("PRAGMA max_page_count = {max_pages}"), [], |_| {
        Ok(())
    })?;
    Ok(conn)
}

pub(crate) fn open_read_connection(path: &Path, vfs: Option<&str>) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = match vfs {
        None => Connection::open_with_flags(path, flags)?,
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs)?,
    };
    set_common_pragmas(&conn)?;
    conn.pragma_update(None, "cache_size", -16 * 1024)?;
    Ok(conn)
}

/// Opens the database at `path` and takes SQLite's exclusive lock on it,
/// without waiting: it fails with a message naming the file while any
/// other connection has it open (a running server, a CLI command). The
/// lock is held until the connection is dropped. For `tokentally restore`.
pub fn lock_exclusive(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(Duration::ZERO)?;
    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |_| Ok(()))?;
    let locked = conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;");
    match locked {
        Ok(()) => Ok(conn),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
            Err(DbError::Check(format!(
                "{} is in use (a running tokentally server or command has it open); stop the \
                 service (e.g. `systemctl stop tokentally`) and try again",
                path.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes a consistent copy of the live database at `source` to `target`
/// with `VACUUM INTO`. It reads one snapshot through a read-only connection,
/// so it is safe while a server writes; the copy is compact and has no WAL.
pub fn backup(source: &Path, target: &Path) -> Result<(), DbError> {
    migrate::refuse_unknown_schema(source)?;
    let conn = open_read_connection(source, None)?;
    let target_str = target.to_string_lossy();
    conn.execute("VACUUM INTO ?1", [target_str.as_ref()])?;
    let check = Connection::open_with_flags(target, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = check.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        return Err(DbError::Check(format!(
            "the copy failed its integrity check: {verdict}"
        )));
    }
    Ok(())
}
