//! A tower-sessions store on our own database, so that every write goes
//! through the one writer (no second connection contending for the lock).
//! Session ids are stored as SHA-256 digests: a leaked database copy does
//! not contain live session cookies.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::UserId;
use super::session::USER_ID_KEY;
use crate::db::{Db, DbError};
use crate::secret::digest;

#[derive(Clone)]
pub struct SqliteSessionStore {
    db: Db,
}

impl std::fmt::Debug for SqliteSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSessionStore").finish_non_exhaustive()
    }
}

impl SqliteSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Deletes expired sessions; returns how many went.
    pub async fn delete_expired(&self, now: i64) -> Result<usize, DbError> {
        self.db
            .write(move |conn| {
                let mut stmt =
                    conn.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?;
                Ok(stmt.execute([now])?)
            })
            .await
    }
}

/// Ends every session of `user` (password change, account disabled).
pub fn delete_user_sessions(conn: &Connection, user: UserId) -> Result<usize, DbError> {
    let mut stmt = conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?;
    Ok(stmt.execute([user.0])?)
}

struct EncodedRecord {
    id_hash: String,
    user_id: Option<i64>,
    data: String,
    expires_at: i64,
}

fn encode(record: &Record) -> session_store::Result<EncodedRecord> {
    let data = serde_json::to_string(&record.data)
        .map_err(|e| session_store::Error::Encode(e.to_string()))?;
    Ok(EncodedRecord {
        id_hash: digest(&record.id.to_string()),
        user_id: record.data.get(USER_ID_KEY).and_then(|v| v.as_i64()),
        data,
        expires_at: record.expiry_date.unix_timestamp(),
    })
}

fn backend(e: DbError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A collision of 128-bit random ids is next to impossible, but the
        // contract asks us to handle it: draw a new id until one is free.
        loop {
            let encoded = encode(record)?;
            let inserted = self
                .db
                .write(move |conn| {
                    let mut stmt = conn.prepare_cached(
                        "INSERT OR IGNORE INTO sessions (id_hash, user_id, data, expires_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    let n = stmt.execute(params![
                        encoded.id_hash,
                        encoded.user_id,
                        encoded.data,
                        encoded.expires_at
                    ])?;
                    Ok::<_, DbError>(n == 1)
                })
                .await
                .map_err(backend)?;
            if inserted {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let encoded = encode(record)?;
        let saved = self
            .db
            .write(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "INSERT INTO sessions (id_hash, user_id, data, expires_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id_hash) DO UPDATE SET
                        user_id = excluded.user_id,
                        data = excluded.data,
                        expires_at = excluded.expires_at",
                )?;
                stmt.execute(params![
                    encoded.id_hash,
                    encoded.user_id,
                    encoded.data,
                    encoded.expires_at
                ])?;
                Ok::<_, DbError>(())
            })
            .await;
        match saved {
            // A full or read-only disk must not turn every page into an
            // error: the session keeps what it had (only "last seen" or a
            // CSRF token of a new anonymous session is not kept).
            Err(e) if e.storage_trouble().is_some() => {
                tracing::warn!(error = %e, "session not saved: storage trouble");
                Ok(())
            }
            other => other.map_err(backend),
        }
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let id = *session_id;
        let id_hash = digest(&id.to_string());
        // tower-sessions stamps expiry dates from the wall clock itself, so
        // they are compared against the wall clock, not the injected one.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let found = self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT data, expires_at FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
                )?;
                let row = stmt
                    .query_row(params![id_hash, now], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                    })
                    .optional()?;
                Ok::<_, DbError>(row)
            })
            .await
            .map_err(backend)?;
        let Some((data, expires_at)) = found else {
            return Ok(None);
        };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let id_hash = digest(&session_id.to_string());
        self.db
            .write(move |conn| {
                let mut stmt = conn.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?;
                stmt.execute([id_hash])?;
                Ok::<_, DbError>(())
            })
            .await
            .map_err(backend)
    }
}
