//! Identities: a producer's name for a person (`user.email`, `enduser.id`,
//! LiteLLM's end user…), and whose usage it is.
//!
//! Every identity owns a *holder* account (`users.kind = 'identity'`:
//! disabled, no password, never listed as a person). Until an admin links
//! the identity to a person, its events are stored on the holder, so
//! unassigned usage is in the rollups (and every total) from the first
//! event, and never dropped. An identity whose email is a person's email,
//! or an end user (`enduser.id`) named as a person's login name, links
//! itself when it is first seen.
//!
//! Linking moves the identity's events (`events.identity_id`) from the
//! holder to the person, and their rollup rows with them, in the caller's
//! transaction: the link happens whole or not at all. Unlinking moves them
//! back. Later events of a linked identity go to the person directly.

mod listing;
mod moves;

pub use listing::{Sample, linked_to, list, samples, unassigned_holders};
pub use moves::{Created, create_person, link, set_ignored, unlink};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::budget::NameBudget;
use super::rollup::Dim;
use crate::auth::invites::InviteError;
use crate::auth::users::UserError;
use crate::db::DbError;
use crate::model::{IdentityKey, IdentityKind, UserId};

/// An identity as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: i64,
    pub key: IdentityKey,
    /// The account that holds its usage while it is unassigned.
    pub holder: UserId,
    /// The person it is linked to, and their username.
    pub linked: Option<(UserId, String)>,
    pub ignored: bool,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

impl Identity {
    /// The account its events are on now.
    pub fn owner(&self) -> UserId {
        self.linked.as_ref().map_or(self.holder, |(id, _)| *id)
    }
}

/// An identity with the usage attributed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityUsage {
    pub identity: Identity,
    pub events: i64,
    pub cost_micros: i64,
}

/// What a link or unlink did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// Events that now belong to the new owner.
    pub events: usize,
    /// Events the new owner already had under the same source and id (the
    /// same call, reported twice): kept once, the identity's copy removed.
    pub merged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no identity {0} has been seen")]
    NotFound(IdentityKey),
    #[error("no person named {0:?}")]
    NoSuchUser(String),
    /// The change is for unassigned identities only.
    #[error("{0} is linked to {1}; unlink it first")]
    Linked(IdentityKey, String),
    /// The member to create cannot be (a name taken or not allowed).
    #[error(transparent)]
    User(UserError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for IdentityError {
    fn from(e: rusqlite::Error) -> Self {
        IdentityError::Db(DbError::from(e))
    }
}

impl From<UserError> for IdentityError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Db(e) => IdentityError::Db(e),
            other => IdentityError::User(other),
        }
    }
}

impl From<InviteError> for IdentityError {
    fn from(e: InviteError) -> Self {
        match e {
            InviteError::User(e) => e.into(),
            // A member made a moment ago has no password and a live link.
            other => IdentityError::Db(DbError::Check(other.to_string())),
        }
    }
}

const IDENTITY_COLUMNS: &str = "i.id, i.kind, i.value, i.holder_id, i.user_id, u.username, \
                                i.ignored, i.first_seen_ms, i.last_seen_ms";

fn identity_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Identity> {
    let kind: String = row.get(1)?;
    let value: String = row.get(2)?;
    let kind = IdentityKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown identity kind {kind:?}").into(),
        )
    })?;
    let linked = match (
        row.get::<_, Option<i64>>(4)?,
        row.get::<_, Option<String>>(5)?,
    ) {
        (Some(id), Some(name)) => Some((UserId(id), name)),
        _ => None,
    };
    Ok(Identity {
        id: row.get(0)?,
        key: IdentityKey { kind, value },
        holder: UserId(row.get(3)?),
        linked,
        ignored: row.get(6)?,
        first_seen_ms: row.get(7)?,
        last_seen_ms: row.get(8)?,
    })
}

pub fn find(conn: &Connection, key: &IdentityKey) -> Result<Option<Identity>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {IDENTITY_COLUMNS} FROM identities i LEFT JOIN users u ON u.id = i.user_id
         WHERE i.kind = ?1 AND i.value = ?2"
    ))?;
    Ok(stmt
        .query_row(params![key.kind.as_str(), key.value], identity_from_row)
        .optional()?)
}

/// In the writer: the identity `key` stands for and the account its usage
/// goes to now, creating the identity (with its holder, or linked to the
/// person whose email it is) when it is new. A new identity is a new name,
/// charged to `budget`.
pub fn resolve(
    conn: &Connection,
    key: &IdentityKey,
    seen_ms: i64,
    budget: Option<&NameBudget>,
) -> Result<(i64, UserId), DbError> {
    if let Some(identity) = find(conn, key)? {
        return Ok((identity.id, identity.owner()));
    }
    if let Some(budget) = budget {
        budget.charge(conn, Dim::User, &key.to_string())?;
    }
    let holder = create_holder(conn, key, seen_ms)?;
    let person = match key.kind {
        IdentityKind::Email => person_with_email(conn, &key.value)?,
        IdentityKind::EndUser => person_named(conn, &key.value)?,
        _ => None,
    };
    conn.prepare_cached(
        "INSERT INTO identities (kind, value, holder_id, user_id, first_seen_ms, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        key.kind.as_str(),
        key.value,
        holder.0,
        person.map(|p| p.0),
        seen_ms
    ])?;
    Ok((conn.last_insert_rowid(), person.unwrap_or(holder)))
}

/// Widens the identity's first and last seen to take in `[first_ms,
/// last_ms]` (the times of the events an inserter stored for it).
pub fn seen(conn: &Connection, id: i64, first_ms: i64, last_ms: i64) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE identities SET first_seen_ms = min(first_seen_ms, ?2),
                               last_seen_ms = max(last_seen_ms, ?3)
         WHERE id = ?1",
    )?
    .execute(params![id, first_ms, last_ms])?;
    Ok(())
}

/// The holder account of a new identity. Its name starts with `~`, which
/// no person's name may (`auth::users::validate_username`), and is fixed
/// by the identity, so it never collides.
fn create_holder(conn: &Connection, key: &IdentityKey, now_ms: i64) -> Result<UserId, DbError> {
    let digest = Sha256::digest(format!("{}\n{}", key.kind, key.value));
    let username = format!("~{}-{}", key.kind, crate::secret::hex(&digest[..12]));
    let now_s = now_ms.div_euclid(1000);
    conn.prepare_cached(
        "INSERT INTO users (username, display_name, role, password_hash, disabled, created_at,
                            updated_at, kind)
         VALUES (?1, ?2, 'member', NULL, 1, ?3, ?3, 'identity')",
    )?
    .execute(params![username, key.to_string(), now_s])?;
    Ok(UserId(conn.last_insert_rowid()))
}

/// The one enabled person whose email is `email` (case aside), if exactly
/// one has it.
fn person_with_email(conn: &Connection, email: &str) -> Result<Option<UserId>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM users WHERE kind = 'person' AND disabled = 0 AND lower(email) = lower(?1)
         LIMIT 2",
    )?;
    let ids: Vec<i64> = stmt
        .query_map([email], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(match ids.as_slice() {
        [one] => Some(UserId(*one)),
        _ => None,
    })
}

/// The enabled person whose username is `name` (case aside): an admin who
/// sets `enduser.id` in the managed settings sets it to the login name.
/// Only an admin's collector token attributes by identity, so no member can
/// name someone else this way.
fn person_named(conn: &Connection, name: &str) -> Result<Option<UserId>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM users WHERE kind = 'person' AND disabled = 0 AND lower(username) = lower(?1)",
    )?;
    Ok(stmt
        .query_row([name], |row| row.get(0))
        .optional()?
        .map(UserId))
}
