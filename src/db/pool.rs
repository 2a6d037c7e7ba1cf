//! A small pool of read-only connections. Each read takes a permit, borrows
//! a connection and runs on tokio's blocking threads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::{DbError, open_read_connection};

pub(super) struct ReadPool {
    path: PathBuf,
    vfs: Option<String>,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadPool {
    pub(super) fn open(path: &Path, vfs: Option<&str>, size: usize) -> Result<Self, DbError> {
        let idle = (0..size)
            .map(|_| open_read_connection(path, vfs))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            vfs: vfs.map(str::to_owned),
            idle: Mutex::new(idle),
            permits: Semaphore::new(size),
        })
    }

    pub(super) async fn run<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        // The semaphore is never closed, so acquire only fails if it were.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| E::from(DbError::WriterGone))?;
        let conn = match self.take() {
            Some(conn) => conn,
            None => open_read_connection(&self.path, self.vfs.as_deref())?,
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = in_one_snapshot(&conn, f);
            (conn, result)
        })
        .await;
        match joined {
            Ok((conn, result)) => {
                self.give_back(conn);
                result
            }
            // The connection went down with the panicking closure; the next
            // read opens a fresh one in its place.
            Err(_) => Err(E::from(DbError::TaskPanicked)),
        }
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// Runs a read in one read transaction: every statement of it sees the
/// same snapshot (a read adds the raw events past the rollup watermark to
/// the rollups, and must not see the roller move it in between).
fn in_one_snapshot<F, T, E>(conn: &Connection, f: F) -> Result<T, E>
where
    F: FnOnce(&Connection) -> Result<T, E>,
    E: From<DbError>,
{
    conn.execute_batch("BEGIN").map_err(DbError::from)?;
    let result = f(conn);
    // A read transaction has nothing to keep: ending it cannot lose work.
    if !conn.is_autocommit() {
        conn.execute_batch("COMMIT").map_err(DbError::from)?;
    }
    result
}
