//! API tokens: created for a user with a scope, shown once, stored as a
//! digest, revocable, with the time they were last used.

use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::users;
use crate::db::DbError;
pub use crate::model::TokenId;
use crate::model::{User, UserId};
use crate::secret;

/// What every token starts with, so that a leaked one is recognisable
/// (secret scanners, logs) and cannot be mistaken for a session id.
pub const TOKEN_PREFIX: &str = "tt_";
/// Characters of a token kept in clear to tell tokens apart.
const SHOWN_PREFIX_LEN: usize = 10;
/// Updating `last_used_at` on every request would turn every read into a
/// write; once a minute is precise enough for "last used".
pub const LAST_USED_PRECISION_S: i64 = 60;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Send usage events (event API, OTLP, LiteLLM, remote import).
    Ingest,
    /// Read usage through the API.
    Read,
    /// Send usage events for a team, attributed by the identity each item
    /// names (`user.email`, `enduser.id`, LiteLLM's key user…): the token
    /// of a shared telemetry set-up. Only an admin may hold one, and it
    /// works only while its owner is an admin.
    Collector,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Ingest => "ingest",
            TokenScope::Read => "read",
            TokenScope::Collector => "collector",
        }
    }

    /// Whether the token may send usage events.
    pub fn sends_events(self) -> bool {
        matches!(self, TokenScope::Ingest | TokenScope::Collector)
    }
}

impl FromStr for TokenScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ingest" => Ok(TokenScope::Ingest),
            "read" => Ok(TokenScope::Read),
            "collector" => Ok(TokenScope::Collector),
            other => Err(format!("unknown token scope {other:?}")),
        }
    }
}

/// A token as lists show it: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: TokenId,
    pub user_id: UserId,
    pub username: String,
    pub name: String,
    pub scope: TokenScope,
    /// The first characters of the token (`tt_3f9a0c…`).
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A new token: the secret, shown once, and its row.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub secret: String,
    pub info: TokenInfo,
}

/// The user a valid token acts for, and what it may do.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub token: TokenId,
    pub user: User,
    pub scope: TokenScope,
    pub last_used_at: Option<i64>,
}

impl TokenGrant {
    /// Whether this token attributes events by the identities they name
    /// (`NewEvent::identity`): a collector token whose owner is an admin
    /// now (the role is read at each use, so a demoted owner's collector
    /// token stops). Every other token's events are its owner's, or, for
    /// an admin's token, the user an event names.
    pub fn attributes_by_identity(&self) -> bool {
        self.scope == TokenScope::Collector && self.user.is_admin()
    }

    /// The token as the audit trail names it.
    pub fn actor(&self) -> crate::model::Actor {
        crate::model::Actor::Token {
            owner: self.user.id,
            owner_name: self.user.username.clone(),
            token: self.token.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no user named {0:?}")]
    UnknownUser(String),
    #[error("token names are 1 to 100 characters")]
    BadName,
    #[error(
        "{0:?} is not an admin: a collector token attributes a whole team's usage, so only an \
         admin may hold one (create it for an admin, or use the ingest scope)"
    )]
    CollectorNeedsAdmin(String),
    #[error("no token with id {0}")]
    UnknownToken(TokenId),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for TokenError {
    fn from(e: rusqlite::Error) -> Self {
        TokenError::Db(DbError::from(e))
    }
}

/// Creates a token for `username`; the secret is returned only here. A
/// collector token is created only for an admin.
pub fn create(
    conn: &Connection,
    username: &str,
    scope: TokenScope,
    name: &str,
    now: i64,
) -> Result<CreatedToken, TokenError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(TokenError::BadName);
    }
    let user = users::by_name(conn, username)?
        .ok_or_else(|| TokenError::UnknownUser(username.to_owned()))?;
    if scope == TokenScope::Collector && !user.is_admin() {
        return Err(TokenError::CollectorNeedsAdmin(user.username));
    }
    let secret = format!("{TOKEN_PREFIX}{}", secret::random_token());
    let prefix: String = secret.chars().take(SHOWN_PREFIX_LEN).collect();
    conn.prepare_cached(
        "INSERT INTO api_tokens (user_id, name, scope, token_hash, prefix, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        user.id.0,
        name,
        scope.as_str(),
        secret::digest(&secret),
        prefix,
        now
    ])?;
    let id = TokenId(conn.last_insert_rowid());
    let info = by_id(conn, id)?.ok_or(TokenError::UnknownToken(id))?;
    Ok(CreatedToken { secret, info })
}

const INFO_COLUMNS: &str = "t.id, t.user_id, u.username, t.name, t.scope, t.prefix, t.created_at,
                            t.last_used_at, t.revoked_at";

fn info_from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    let scope: String = row.get(4)?;
    Ok(TokenInfo {
        id: TokenId(row.get(0)?),
        user_id: UserId(row.get(1)?),
        username: row.get(2)?,
        name: row.get(3)?,
        scope: scope.parse().unwrap_or(TokenScope::Read),
        prefix: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

pub fn by_id(conn: &Connection, id: TokenId) -> Result<Option<TokenInfo>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {INFO_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.id = ?1"
        ))?
        .query_row([id.0], info_from_row)
        .optional()?)
}

/// Every token, or one user's; newest first.
pub fn list(conn: &Connection, user: Option<UserId>) -> Result<Vec<TokenInfo>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.id DESC"
    ))?;
    let tokens = stmt
        .query_map([user.map(|u| u.0)], info_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(tokens)
}

/// Revokes a token; revoking one already revoked keeps its first time.
/// With `owner`, only that user's token may be revoked.
pub fn revoke(
    conn: &Connection,
    id: TokenId,
    owner: Option<UserId>,
    now: i64,
) -> Result<TokenInfo, TokenError> {
    let token = by_id(conn, id)?
        .filter(|t| owner.is_none_or(|owner| owner == t.user_id))
        .ok_or(TokenError::UnknownToken(id))?;
    conn.prepare_cached(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id.0, now])?;
    Ok(by_id(conn, token.id)?.unwrap_or(token))
}

/// The grant of a presented secret: `None` for an unknown or revoked token,
/// or one whose user is disabled.
pub fn authenticate(conn: &Connection, presented: &str) -> Result<Option<TokenGrant>, DbError> {
    if !presented.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let found = conn
        .prepare_cached(
            "SELECT id, user_id, scope, last_used_at FROM api_tokens
             WHERE token_hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([secret::digest(presented)], |row| {
            Ok((
                TokenId(row.get(0)?),
                UserId(row.get(1)?),
                row.get::<_, String>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })
        .optional()?;
    let Some((token, user_id, scope, last_used_at)) = found else {
        return Ok(None);
    };
    let Ok(scope) = scope.parse::<TokenScope>() else {
        return Ok(None);
    };
    match users::by_id(conn, user_id)? {
        Some(user) if !user.disabled => Ok(Some(TokenGrant {
            token,
            user,
            scope,
            last_used_at,
        })),
        _ => Ok(None),
    }
}

/// Records a use, at most once per [`LAST_USED_PRECISION_S`].
pub fn touch(conn: &Connection, id: TokenId, now: i64) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
    )?
    .execute(params![id.0, now, LAST_USED_PRECISION_S])?;
    Ok(())
}
