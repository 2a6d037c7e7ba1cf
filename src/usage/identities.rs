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

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::budget::NameBudget;
use super::rollup::{self, CostOrigin, Delta, Dim, DimValues, event_metrics};
use crate::auth::invites::{self, InviteError};
use crate::auth::users::{self, Profile, UserError};
use crate::db::DbError;
use crate::model::{IdentityKey, IdentityKind, Role, UserId};

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

/// Every identity with its events and cost, unassigned ones first, then
/// by the last time they were seen.
pub fn list(conn: &Connection) -> Result<Vec<IdentityUsage>, DbError> {
    list_where(conn, "1", None)
}

/// The identities linked to the person `user`, with their events and cost
/// (what their profile shows them).
pub fn linked_to(conn: &Connection, user: UserId) -> Result<Vec<IdentityUsage>, DbError> {
    list_where(conn, "i.user_id = ?1", Some(user.0))
}

fn list_where(
    conn: &Connection,
    condition: &str,
    user: Option<i64>,
) -> Result<Vec<IdentityUsage>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {IDENTITY_COLUMNS},
                (SELECT COUNT(*) FROM events e WHERE e.identity_id = i.id),
                (SELECT COALESCE(SUM(cost_micros), 0) FROM events e WHERE e.identity_id = i.id)
         FROM identities i LEFT JOIN users u ON u.id = i.user_id
         WHERE {condition}
         ORDER BY i.user_id IS NOT NULL, i.last_seen_ms DESC, i.id"
    ))?;
    let map = |row: &rusqlite::Row<'_>| {
        Ok(IdentityUsage {
            identity: identity_from_row(row)?,
            events: row.get(9)?,
            cost_micros: row.get(10)?,
        })
    };
    let rows = match user {
        Some(id) => stmt.query_map([id], map)?.collect::<Result<_, _>>()?,
        None => stmt.query_map([], map)?.collect::<Result<_, _>>()?,
    };
    Ok(rows)
}

/// What an identity's latest event came with: enough for an admin to
/// recognise whose it is before linking (the program, the model, the
/// repository, the machine). `None` fields were not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    pub source: String,
    pub model: String,
    pub activity: Option<String>,
    pub project: Option<String>,
    pub machine: Option<String>,
}

impl Sample {
    /// The sample as `name: value` pairs, those sent only.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("source", self.source.as_str()),
            ("model", self.model.as_str()),
        ];
        for (name, value) in [
            ("activity", &self.activity),
            ("project", &self.project),
            ("machine", &self.machine),
        ] {
            if let Some(value) = value {
                pairs.push((name, value.as_str()));
            }
        }
        pairs
    }
}

/// The sample of every identity with events, by identity id, from its
/// latest stored event (through the identity index: a cost that grows
/// with the identity's events, as the counts beside it do).
pub fn samples(conn: &Connection) -> Result<std::collections::HashMap<i64, Sample>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, s.name, m.name, a.name, p.name, mc.name
         FROM identities i
         JOIN events e ON e.id = (SELECT MAX(x.id) FROM events x WHERE x.identity_id = i.id)
         JOIN sources s ON s.id = e.source_id
         JOIN models m ON m.id = e.model_id
         LEFT JOIN activities a ON a.id = e.activity_id
         LEFT JOIN projects p ON p.id = e.project_id
         LEFT JOIN event_machines mc ON mc.id = e.machine_id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get(0)?,
            Sample {
                source: row.get(1)?,
                model: row.get(2)?,
                activity: row.get(3)?,
                project: row.get(4)?,
                machine: row.get(5)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The holder accounts of the identities linked to no one (ignored ones
/// included): whose events are the unassigned usage.
pub fn unassigned_holders(conn: &Connection) -> Result<Vec<i64>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT holder_id FROM identities WHERE user_id IS NULL ORDER BY holder_id",
    )?;
    let ids = stmt.query_map([], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
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

/// Links `key` to the person `username`: its events (from wherever they
/// are) move to them. Idempotent.
pub fn link(conn: &Connection, key: &IdentityKey, username: &str) -> Result<Moved, IdentityError> {
    let identity = find(conn, key)?.ok_or_else(|| IdentityError::NotFound(key.clone()))?;
    let person: Option<i64> = conn
        .prepare_cached("SELECT id FROM users WHERE username = ?1 AND kind = 'person'")?
        .query_row([username], |row| row.get(0))
        .optional()?;
    let person = UserId(person.ok_or_else(|| IdentityError::NoSuchUser(username.to_owned()))?);
    let moved = move_events(conn, identity.id, identity.owner(), person)?;
    conn.prepare_cached("UPDATE identities SET user_id = ?2, ignored = 0 WHERE id = ?1")?
        .execute(params![identity.id, person.0])?;
    Ok(moved)
}

/// Unlinks `key`: its events move back to its holder, unassigned.
/// Idempotent.
pub fn unlink(conn: &Connection, key: &IdentityKey) -> Result<Moved, IdentityError> {
    let identity = find(conn, key)?.ok_or_else(|| IdentityError::NotFound(key.clone()))?;
    let moved = move_events(conn, identity.id, identity.owner(), identity.holder)?;
    conn.prepare_cached("UPDATE identities SET user_id = NULL WHERE id = ?1")?
        .execute([identity.id])?;
    Ok(moved)
}

/// Marks the unassigned identity `key` ignored, or not: its usage is still
/// counted and it is still listed, marked, and kept apart in the
/// overview's unassigned total. Idempotent. A linked identity is refused
/// (it is someone's; linking clears the mark).
pub fn set_ignored(
    conn: &Connection,
    key: &IdentityKey,
    ignored: bool,
) -> Result<Identity, IdentityError> {
    let identity = find(conn, key)?.ok_or_else(|| IdentityError::NotFound(key.clone()))?;
    if let Some((_, name)) = &identity.linked {
        return Err(IdentityError::Linked(key.clone(), name.clone()));
    }
    conn.prepare_cached("UPDATE identities SET ignored = ?2 WHERE id = ?1")?
        .execute(params![identity.id, ignored])?;
    Ok(Identity {
        ignored,
        ..identity
    })
}

/// A member made from an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub user: UserId,
    pub moved: Moved,
    /// The one-time setup link's token: shown once, never stored.
    pub token: String,
}

/// Creates the member `username`, without a password, from the unassigned
/// identity `key`, in the caller's transaction: the account (with the
/// identity's address as its email, for an email that is one), the link
/// (its past events move to them, as [`link`] moves them) and a setup
/// link ([`invites::issue`]) all happen, or none does.
pub fn create_person(
    conn: &Connection,
    key: &IdentityKey,
    username: &str,
    now_s: i64,
) -> Result<Created, IdentityError> {
    let identity = find(conn, key)?.ok_or_else(|| IdentityError::NotFound(key.clone()))?;
    if let Some((_, name)) = &identity.linked {
        return Err(IdentityError::Linked(key.clone(), name.clone()));
    }
    let user = users::insert_without_password(conn, username, Role::Member, now_s)?;
    if key.kind == IdentityKind::Email {
        let profile = Profile {
            email: Some(key.value.clone()),
            ..Profile::default()
        };
        // An email identity that is no plausible address stays off the profile.
        if users::validate_profile(&profile).is_ok() {
            users::update_profile(conn, user, &profile, now_s)?;
        }
    }
    let moved = link(conn, key, username)?;
    let token = invites::issue(conn, user, now_s)?;
    Ok(Created { user, moved, token })
}

/// One event of an identity, as its rollup rows see it.
struct Held {
    id: i64,
    ts_ms: i64,
    dims: DimValues,
    metrics: crate::model::Totals,
}

/// Moves the events of identity `identity` on account `from` to `to`, and
/// their rollup rows: minus on `from`, plus on `to`, then `from`'s rows
/// that are left empty are removed (the rollups hold no row that the raw
/// events do not give). An event `to` already has under the same source
/// and id is the same call: the identity's copy is removed.
fn move_events(
    conn: &Connection,
    identity: i64,
    from: UserId,
    to: UserId,
) -> Result<Moved, DbError> {
    if from == to {
        return Ok(Moved::default());
    }
    let held = held_events(conn, identity, from)?;
    let twins = twins(conn, identity, from, to)?;
    let mut deltas = Vec::with_capacity(held.len() * 2);
    let mut moved = Moved::default();
    for event in held {
        let mut minus = crate::model::Totals::default();
        minus.checked_add_signed(&event.metrics, -1)?;
        deltas.push(Delta {
            ts_ms: event.ts_ms,
            dims: DimValues {
                user: from.0,
                ..event.dims
            },
            metrics: minus,
        });
        if twins.contains(&event.id) {
            moved.merged += 1;
            continue;
        }
        deltas.push(Delta {
            ts_ms: event.ts_ms,
            dims: DimValues {
                user: to.0,
                ..event.dims
            },
            metrics: event.metrics,
        });
        moved.events += 1;
    }
    let mut remove = conn.prepare_cached("DELETE FROM events WHERE id = ?1")?;
    for id in &twins {
        remove.execute([id])?;
    }
    // One statement for the rest: a statement per event costs as much again.
    conn.prepare_cached("UPDATE events SET user_id = ?3 WHERE identity_id = ?1 AND user_id = ?2")?
        .execute(params![identity, from.0, to.0])?;
    rollup::apply(conn, &deltas)?;
    rollup::remove_empty_rows(conn, from)?;
    Ok(moved)
}

/// The identity's events on `from` whose source and id `to` already has
/// (each looked up through the dedup key's index).
fn twins(
    conn: &Connection,
    identity: i64,
    from: UserId,
    to: UserId,
) -> Result<std::collections::HashSet<i64>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT mine.id FROM events mine
         JOIN events theirs ON theirs.source_id = mine.source_id AND theirs.user_id = ?3
                           AND theirs.external_id = mine.external_id
         WHERE mine.identity_id = ?1 AND mine.user_id = ?2",
    )?;
    let ids = stmt.query_map(params![identity, from.0, to.0], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

fn held_events(conn: &Connection, identity: i64, owner: UserId) -> Result<Vec<Held>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, ts_ms, model_id, activity_id, project_id, source_id, provider_id,
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros,
                cost_origin
         FROM events WHERE identity_id = ?1 AND user_id = ?2",
    )?;
    let rows = stmt.query_map(params![identity, owner.0], |row| {
        let tokens = [row.get(7)?, row.get(8)?, row.get(9)?, row.get(10)?];
        let origin = CostOrigin::from_column(row.get(12)?);
        Ok(Held {
            id: row.get(0)?,
            ts_ms: row.get(1)?,
            dims: DimValues {
                user: owner.0,
                model: row.get(2)?,
                activity: row.get::<_, Option<i64>>(3)?.unwrap_or(0),
                project: row.get::<_, Option<i64>>(4)?.unwrap_or(0),
                source: row.get(5)?,
                provider: row.get::<_, Option<i64>>(6)?.unwrap_or(0),
            },
            metrics: event_metrics(&tokens, row.get(11)?, origin),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
