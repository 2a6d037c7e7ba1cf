//! Read transactions, and two connections reading one snapshot: WAL lets
//! any number of readers run at once, each on the database as it was when
//! its read transaction began.

use std::borrow::Borrow;

use rusqlite::Connection;

use crate::db::DbError;

/// A read transaction, ended (committed: it wrote nothing) when dropped.
pub(super) struct ReadTxn<C: Borrow<Connection>> {
    conn: Option<C>,
}

impl<C: Borrow<Connection>> ReadTxn<C> {
    /// Begins a read transaction and takes its snapshot at once (a plain
    /// `BEGIN` waits for the first read).
    pub fn begin(conn: C) -> Result<Self, DbError> {
        conn.borrow().execute_batch("BEGIN")?;
        let txn = ReadTxn { conn: Some(conn) };
        txn.conn()
            .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        Ok(txn)
    }

    pub fn conn(&self) -> &Connection {
        match &self.conn {
            Some(conn) => conn.borrow(),
            None => unreachable!("a ReadTxn holds its connection until dropped"),
        }
    }

    /// Ends the transaction and gives the connection back.
    fn end(mut self) -> Result<C, DbError> {
        let conn = self
            .conn
            .take()
            .ok_or(DbError::Refused("ended twice".into()))?;
        conn.borrow().execute_batch("COMMIT")?;
        Ok(conn)
    }

    /// How many times other connections had committed when the snapshot
    /// was taken (`PRAGMA data_version`: fixed within a transaction).
    fn data_version(&self) -> Result<i64, DbError> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |row| row.get(0))?)
    }
}

impl<'a> ReadTxn<&'a Connection> {
    /// A read transaction on `conn` unless it is in one already (the
    /// caller's, whose snapshot and own writes are the ones to check).
    pub fn begin_if_none(conn: &'a Connection) -> Result<Option<Self>, DbError> {
        match conn.is_autocommit() {
            true => Ok(Some(ReadTxn::begin(conn)?)),
            false => Ok(None),
        }
    }
}

impl<C: Borrow<Connection>> Drop for ReadTxn<C> {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            // Only ends a read: nothing to lose if it fails, and the
            // connection is reset when it is next used or closed.
            let _ = conn.borrow().execute_batch("COMMIT");
        }
    }
}

/// Begins read transactions on `conn` and `second` that see the same
/// snapshot, or `None` when `conn` is already inside a transaction (only
/// it sees its own writes) or writes keep landing in between.
///
/// `second`'s snapshot is taken before and again after `conn`'s: if no
/// other connection committed in between (`data_version` unchanged), the
/// database did not change over that time and `conn`'s snapshot is the
/// same as `second`'s second one.
#[allow(clippy::type_complexity)]
pub(super) fn begin_both(
    conn: &Connection,
    second: Connection,
) -> Result<Option<(ReadTxn<&Connection>, ReadTxn<Connection>)>, DbError> {
    if !conn.is_autocommit() {
        return Ok(None);
    }
    let mut second = second;
    for _ in 0..10 {
        let before = ReadTxn::begin(second)?;
        let version = before.data_version()?;
        let mine = ReadTxn::begin(conn)?;
        let after = ReadTxn::begin(before.end()?)?;
        if after.data_version()? == version {
            return Ok(Some((mine, after)));
        }
        drop(mine);
        second = after.end()?;
    }
    Ok(None)
}
