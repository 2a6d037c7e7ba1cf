//! The unassigned usage: what the identities linked to no one hold, over
//! a range, with the ignored ones kept apart. The overview shows it to
//! admins; the numbers come through the one query layer (the rollups of
//! the holder accounts), so they add up with every other total.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::Connection;

use super::query::{self, Filters, QueryError};
use super::rollup::Dim;
use super::{Scope, Totals};
use crate::db::DbError;
use crate::model::IdentityFilter;

/// The usage of one kind of unassigned identity over a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub totals: Totals,
    /// Identities of this kind with usage in the range.
    pub with_usage: usize,
    /// Identities of this kind, with usage in the range or not.
    pub identities: usize,
}

/// The unassigned usage of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unassigned {
    /// Identities linked to no one and not ignored.
    pub held: Held,
    /// Identities linked to no one that an admin marked ignored.
    pub ignored: Held,
}

impl Unassigned {
    /// Whether there is anything to show: an unassigned identity at all.
    pub fn any(&self) -> bool {
        self.held.identities + self.ignored.identities > 0
    }
}

/// The unassigned usage in `[from, to)` within `filters` (their identity
/// filter aside: this is the unassigned part, by definition).
pub fn summary(
    conn: &Connection,
    from: Timestamp,
    to: Timestamp,
    filters: &Filters,
) -> Result<Unassigned, QueryError> {
    let holders = holders(conn)?;
    let mut out = Unassigned::default();
    for ignored in holders.values() {
        kind(&mut out, *ignored).identities += 1;
    }
    if holders.is_empty() {
        return Ok(out);
    }
    let filters = Filters {
        identity: Some(IdentityFilter::Unassigned),
        ..filters.clone()
    };
    let by_holder = query::top(
        conn,
        Scope::Everyone,
        from,
        to,
        &filters,
        Dim::User,
        usize::MAX,
    )?;
    for (name, totals) in &by_holder.rows {
        let Some(ignored) = holders.get(name) else {
            continue;
        };
        let held = kind(&mut out, *ignored);
        held.totals.checked_add(totals).map_err(DbError::from)?;
        held.with_usage += 1;
    }
    Ok(out)
}

fn kind(out: &mut Unassigned, ignored: bool) -> &mut Held {
    if ignored {
        &mut out.ignored
    } else {
        &mut out.held
    }
}

/// The holder accounts of unlinked identities, by username, and whether
/// each identity is ignored.
fn holders(conn: &Connection) -> Result<HashMap<String, bool>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.username, i.ignored FROM identities i JOIN users u ON u.id = i.holder_id
         WHERE i.user_id IS NULL",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
