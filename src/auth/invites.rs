//! One-time setup links for people without a password (a member an admin
//! made from an identity, or one whose link expired): the person opens
//! `{public_url}/invite/{token}` and chooses their password.
//!
//! Like the first-run setup token ([`super::setup`]), only a SHA-256 of
//! the token is stored; a link works once, for [`INVITE_TTL_S`], and only
//! while its user is enabled and still has no password. Issuing a link
//! replaces the user's earlier one.

use rusqlite::{Connection, OptionalExtension, params};

use super::users::{self, User, UserError, UserId};
use crate::db::DbError;
use crate::secret::{digest, random_token};

/// How long a setup link works: seven days.
pub const INVITE_TTL_S: i64 = 7 * 86_400;

/// The path of a setup link, without the server's address.
pub fn path(token: &str) -> String {
    format!("/invite/{token}")
}

/// The whole setup link: `base` (the public URL) and the path, or the
/// path alone when the address is not known.
pub fn link(base: Option<&str>, token: &str) -> String {
    match base {
        Some(base) => format!("{}{}", base.trim_end_matches('/'), path(token)),
        None => path(token),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// Wrong, used, expired, or its user can no longer take it (disabled,
    /// or a password was set another way): one answer for all, so a
    /// guesser learns nothing.
    #[error("this setup link is invalid, was already used, or has expired")]
    Invalid,
    #[error("{0:?} already has a password; a setup link is only for people without one")]
    HasPassword(String),
    #[error(transparent)]
    User(#[from] UserError),
}

impl From<rusqlite::Error> for InviteError {
    fn from(e: rusqlite::Error) -> Self {
        InviteError::User(UserError::from(e))
    }
}

impl From<DbError> for InviteError {
    fn from(e: DbError) -> Self {
        InviteError::User(UserError::Db(e))
    }
}

/// A fresh setup link's token for `user`, who must be a person without a
/// password; their earlier links stop working. Expired links of anyone
/// are removed on the way. Only the token's digest is stored.
pub fn issue(conn: &Connection, user: UserId, now: i64) -> Result<String, InviteError> {
    let found: Option<(String, bool)> = conn
        .prepare_cached(
            "SELECT username, password_hash IS NOT NULL FROM users
             WHERE id = ?1 AND kind = 'person'",
        )?
        .query_row([user.0], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (username, has_password) = found.ok_or_else(|| UserError::NotFound(user.to_string()))?;
    if has_password {
        return Err(InviteError::HasPassword(username));
    }
    conn.prepare_cached("DELETE FROM invites WHERE user_id = ?1 OR expires_at <= ?2")?
        .execute(params![user.0, now])?;
    let token = random_token();
    conn.prepare_cached(
        "INSERT INTO invites (token_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![digest(&token), user.0, now, now + INVITE_TTL_S])?;
    Ok(token)
}

/// The user a live link `token` is for: not expired, and its user
/// enabled, a person, and still without a password.
pub fn lookup(conn: &Connection, token: &str, now: i64) -> Result<Option<User>, DbError> {
    let user: Option<i64> = conn
        .prepare_cached(
            "SELECT i.user_id FROM invites i JOIN users u ON u.id = i.user_id
             WHERE i.token_hash = ?1 AND i.expires_at > ?2
               AND u.kind = 'person' AND u.disabled = 0 AND u.password_hash IS NULL",
        )?
        .query_row(params![digest(token), now], |row| row.get(0))
        .optional()?;
    match user {
        Some(id) => users::by_id(conn, UserId(id)),
        None => Ok(None),
    }
}

/// Uses up `token` and sets its user's password, in one transaction (the
/// caller's): two browsers racing on one link cannot both succeed. Every
/// other link of the user goes too.
pub fn accept(
    conn: &Connection,
    token: &str,
    password_hash: &str,
    now: i64,
) -> Result<User, InviteError> {
    let user = lookup(conn, token, now)?.ok_or(InviteError::Invalid)?;
    let used = conn
        .prepare_cached("DELETE FROM invites WHERE user_id = ?1")?
        .execute([user.id.0])?;
    if used == 0 {
        return Err(InviteError::Invalid);
    }
    users::set_password(conn, &user.username, password_hash, now)?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_the_public_url_and_the_path() {
        assert_eq!(
            link(Some("https://t.example/"), "abc"),
            "https://t.example/invite/abc"
        );
        assert_eq!(
            link(Some("http://h:8080"), "abc"),
            "http://h:8080/invite/abc"
        );
        assert_eq!(link(None, "abc"), "/invite/abc");
    }
}
