//! First run: while no enabled admin exists, a one-time setup link lets the
//! person who started the server create the first admin.

use rusqlite::Connection;

use super::users::{self, NewUser, Role, UserError, UserId};
use crate::db::{Db, DbError};
use crate::secret::{digest, random_token};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("this setup link is invalid or was already used")]
    InvalidToken,
    #[error("setup is complete: an admin exists")]
    AlreadyDone,
    #[error(transparent)]
    User(#[from] UserError),
}

impl From<rusqlite::Error> for SetupError {
    fn from(e: rusqlite::Error) -> Self {
        SetupError::User(UserError::from(e))
    }
}

impl From<DbError> for SetupError {
    fn from(e: DbError) -> Self {
        SetupError::User(UserError::Db(e))
    }
}

/// Issues a fresh setup token when no enabled admin exists (replacing any
/// earlier one), or clears all tokens when setup is done. Returns the new
/// token; only its digest is stored.
pub async fn issue_token_if_needed(db: &Db, now: i64) -> Result<Option<String>, DbError> {
    db.write(move |conn| {
        conn.prepare_cached("DELETE FROM setup_tokens")?
            .execute([])?;
        if users::enabled_admin_count(conn)? > 0 {
            return Ok(None);
        }
        let token = random_token();
        conn.prepare_cached("INSERT INTO setup_tokens (token_hash, created_at) VALUES (?1, ?2)")?
            .execute(rusqlite::params![digest(&token), now])?;
        Ok(Some(token))
    })
    .await
}

/// Whether `token` is a live setup token.
pub fn token_is_valid(conn: &Connection, token: &str) -> Result<bool, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT COUNT(*) FROM setup_tokens WHERE token_hash = ?1")?;
    let count: i64 = stmt.query_row([digest(token)], |row| row.get(0))?;
    Ok(count > 0)
}

/// Whether the first admin still has to be created.
pub fn is_pending(conn: &Connection) -> Result<bool, DbError> {
    Ok(users::enabled_admin_count(conn)? == 0)
}

/// Uses up `token` and creates the first admin, in one transaction: two
/// browsers racing on one link cannot both succeed.
pub fn create_first_admin(
    conn: &Connection,
    token: &str,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<UserId, SetupError> {
    if !is_pending(conn)? {
        return Err(SetupError::AlreadyDone);
    }
    let used = conn
        .prepare_cached("DELETE FROM setup_tokens WHERE token_hash = ?1")?
        .execute([digest(token)])?;
    if used != 1 {
        return Err(SetupError::InvalidToken);
    }
    let id = users::insert(
        conn,
        &NewUser {
            username,
            display_name: None,
            role: Role::Admin,
            password_hash,
        },
        now,
    )?;
    Ok(id)
}
