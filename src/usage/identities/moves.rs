//! Changing whose an identity's usage is: link, unlink, ignore, and
//! creating a member from it. Each moves the identity's events and their
//! rollup rows in the caller's transaction, whole or not at all.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Identity, IdentityError, Moved, find};
use crate::auth::invites;
use crate::auth::users::{self, Profile};
use crate::db::DbError;
use crate::model::{IdentityKey, IdentityKind, Role, UserId};
use crate::usage::rollup::{self, CostOrigin, Delta, DimValues, event_metrics};

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
    // The deltas below meet rollups holding every event.
    rollup::roll_all(conn)?;
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
