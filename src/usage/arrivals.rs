//! What arrived since a moment: the Connect page's "waiting for the first
//! event" check. A moment is a mark, the newest event's row id when the
//! page was opened; an event stored later has a larger id (SQLite gives a
//! new row the largest id plus one), whatever time the event itself
//! names: a transcript imported today from last month counts as arrived.
//!
//! The mark says how many events the instance has stored, which is
//! everyone's business but an admin's: it stays on the server (the page
//! keeps it in the session), and only the count of the caller's own
//! [`Scope`] is answered.

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::DbError;
use crate::model::Scope;

/// The mark of now: the newest stored event's id (0 with none).
pub fn mark(conn: &Connection) -> Result<i64, DbError> {
    let newest: Option<i64> = conn
        .prepare_cached("SELECT MAX(id) FROM events")?
        .query_row([], |row| row.get(0))
        .optional()?
        .flatten();
    Ok(newest.unwrap_or(0))
}

/// The events of `scope` stored after `mark`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrivals {
    pub events: i64,
    /// The latest time (Unix ms) those events name, if any arrived.
    pub last_ms: Option<i64>,
}

/// The events of `scope` stored after `mark`. Read along the row ids
/// (the unary `+` keeps SQLite off the user's time index, which would
/// visit every event the user ever had): the cost is the events stored
/// since the mark.
pub fn since(conn: &Connection, scope: Scope, mark: i64) -> Result<Arrivals, DbError> {
    let row = |row: &rusqlite::Row<'_>| -> rusqlite::Result<Arrivals> {
        Ok(Arrivals {
            events: row.get(0)?,
            last_ms: row.get(1)?,
        })
    };
    let arrivals = match scope {
        Scope::Everyone => conn
            .prepare_cached("SELECT COUNT(*), MAX(ts_ms) FROM events WHERE id > ?1")?
            .query_row([mark], row)?,
        Scope::User(user) => conn
            .prepare_cached(
                "SELECT COUNT(*), MAX(ts_ms) FROM events WHERE id > ?1 AND +user_id = ?2",
            )?
            .query_row(params![mark, user.0], row)?,
        // A team's: its members' events while they were in it.
        Scope::Team(team) => conn
            .prepare_cached(
                "SELECT COUNT(*), MAX(e.ts_ms) FROM events e WHERE e.id > ?1
                 AND EXISTS (SELECT 1 FROM team_members tm WHERE tm.user_id = e.user_id
                   AND tm.team_id = ?2 AND tm.since_ms <= e.ts_ms
                   AND (tm.until_ms IS NULL OR e.ts_ms < tm.until_ms))",
            )?
            .query_row(params![mark, team.0], row)?,
    };
    Ok(arrivals)
}
