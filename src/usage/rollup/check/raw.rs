//! A prepared statement stepped through SQLite's C API, its integers read
//! with `sqlite3_column_int64` alone. The check reads some 30M rows of up
//! to 16 integers at 10M events; rusqlite's `Row::get_ref` asks SQLite for
//! the column count and the value's type before the value (three calls,
//! each taking the connection's mutex), which was about a seventh of the
//! check's time. Every column read here is an INTEGER of a STRICT table
//! (or NULL, read as 0, which is what a missing dimension means).

use std::ffi::{CStr, CString, c_int};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::{Connection, ffi};

use crate::db::DbError;

/// One prepared statement of `conn`, finalized when dropped (before the
/// connection can be: it borrows it).
pub(super) struct RawStatement<'c> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    _conn: PhantomData<&'c Connection>,
}

/// The error SQLite reports for `rc` on `db`.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> DbError {
    // SAFETY: `db` is a live connection handle (borrowed for 'c); the
    // message is copied out before any other call on it.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db);
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message).into()
}

impl<'c> RawStatement<'c> {
    pub fn prepare(conn: &'c Connection, sql: &str) -> Result<Self, DbError> {
        let text = CString::new(sql).map_err(|_| DbError::Refused("a NUL in SQL".into()))?;
        // SAFETY: the handle stays valid while `conn` is borrowed, and
        // this statement does not outlive that borrow.
        let db = unsafe { conn.handle() };
        let mut stmt = ptr::null_mut();
        // SAFETY: a NUL-terminated text (-1: up to the NUL) and an out
        // pointer to a local.
        let rc =
            unsafe { ffi::sqlite3_prepare_v2(db, text.as_ptr(), -1, &mut stmt, ptr::null_mut()) };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            let err = error(db, rc);
            // SAFETY: finalizing NULL is a no-op; otherwise it is ours.
            unsafe { ffi::sqlite3_finalize(stmt) };
            return Err(err);
        }
        Ok(RawStatement {
            db,
            stmt,
            _conn: PhantomData,
        })
    }

    /// Runs the statement afresh with `params` bound to ?1, ?2, ...
    pub fn query(&mut self, params: &[i64]) -> Result<RawRows<'_, 'c>, DbError> {
        // SAFETY: `stmt` is a live statement of ours (reset also clears a
        // previous run's error state; its return repeats that error,
        // already reported then).
        unsafe { ffi::sqlite3_reset(self.stmt) };
        for (i, value) in params.iter().enumerate() {
            let index = c_int::try_from(i + 1)
                .map_err(|_| DbError::Refused("too many parameters".into()))?;
            // SAFETY: as above; an out-of-range index is an error code.
            let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt, index, *value) };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
        }
        Ok(RawRows { statement: self })
    }
}

impl Drop for RawStatement<'_> {
    fn drop(&mut self) {
        // SAFETY: ours, finalized once.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// The rows of one run of a statement.
pub(super) struct RawRows<'s, 'c> {
    statement: &'s mut RawStatement<'c>,
}

impl RawRows<'_, '_> {
    /// Steps to the next row; false when there is none.
    pub fn next(&mut self) -> Result<bool, DbError> {
        // SAFETY: a live statement of ours, stepped on its connection's
        // thread (the connection is not `Sync`, and this borrows it).
        let rc = unsafe { ffi::sqlite3_step(self.statement.stmt) };
        match rc {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(error(self.statement.db, rc)),
        }
    }

    /// The integer in column `index` of the current row (NULL: 0). Only
    /// to be called after [`RawRows::next`] gave true, for a column the
    /// statement has: SQLite answers 0 otherwise, never anything unsafe.
    pub fn int(&self, index: c_int) -> i64 {
        // SAFETY: a live statement; SQLite checks the index and the row.
        unsafe { ffi::sqlite3_column_int64(self.statement.stmt, index) }
    }
}

impl Drop for RawRows<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: a live statement of ours: ends the run (and its read
        // of the tables) now rather than at the next one.
        unsafe { ffi::sqlite3_reset(self.statement.stmt) };
    }
}
