//! What the Identities page, the profile and the overview list: every
//! identity with its usage, a sample of its latest event, the holders of
//! the unassigned usage.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{IDENTITY_COLUMNS, IdentityUsage, identity_from_row};
use crate::db::DbError;
use crate::model::UserId;

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
pub fn samples(conn: &Connection) -> Result<HashMap<i64, Sample>, DbError> {
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
