//! Every SQL statement on `teams` and `team_members`, and the rules of a
//! change: one team at a time per user, intervals that never overlap,
//! bounded counts. Each change runs in the caller's write transaction, so
//! its checks and its write see the same rows.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::DbError;
use crate::model::team::{self, MAX_MEMBERSHIPS, MAX_TEAMS};
use crate::model::{TeamId, UserId};

/// The start of a user's first membership when none is given: before any
/// event, so the team holds their whole past.
pub const BEGINNING_MS: i64 = i64::MIN;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub created_ms: i64,
}

/// One user's time in one team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub team: TeamId,
    pub team_name: String,
    pub user: UserId,
    pub username: String,
    pub lead: bool,
    /// [`BEGINNING_MS`] for a membership that covers the user's past.
    pub since_ms: i64,
    /// `None` while current.
    pub until_ms: Option<i64>,
}

impl Membership {
    pub fn is_current(&self) -> bool {
        self.until_ms.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("{0}")]
    InvalidName(String),
    #[error("a team named {0:?} already exists")]
    Exists(String),
    #[error("no team named {0:?}")]
    NoSuchTeam(String),
    #[error("no person named {0:?}")]
    NoSuchUser(String),
    #[error("there are {MAX_TEAMS} teams already, the most an instance may have")]
    TooManyTeams,
    #[error(
        "there are {MAX_MEMBERSHIPS} memberships (current and past) already, the most an \
         instance may keep"
    )]
    TooManyMemberships,
    #[error("{user} is not in team {team:?} now")]
    NotAMember { user: String, team: String },
    #[error("{user} is in {team:?} already (since {since}); a start can only be given to a move")]
    AlreadyMember {
        user: String,
        team: String,
        since: String,
    },
    #[error(
        "{user} has been in {team:?} since {since}: a move or a removal must be later than that"
    )]
    BeforeCurrentStart {
        user: String,
        team: String,
        since: String,
    },
    #[error(
        "{user} was in {team:?} until {until}: a new membership cannot start before that \
         (memberships never overlap)"
    )]
    Overlaps {
        user: String,
        team: String,
        until: String,
    },
    #[error("{field} is in the future: a membership changes now or in the past")]
    InFuture { field: &'static str },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for TeamError {
    fn from(e: rusqlite::Error) -> Self {
        TeamError::Db(DbError::from(e))
    }
}

/// A membership time as people read it: RFC 3339 in UTC, or "the
/// beginning".
pub fn time_text(ms: i64) -> String {
    if ms == BEGINNING_MS {
        return "the beginning".to_owned();
    }
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

fn team_from_row(row: &Row<'_>) -> rusqlite::Result<Team> {
    Ok(Team {
        id: TeamId(row.get(0)?),
        name: row.get(1)?,
        created_ms: row.get(2)?,
    })
}

const MEMBERSHIP_COLUMNS: &str =
    "m.team_id, t.name, m.user_id, u.username, m.lead, m.since_ms, m.until_ms";
const MEMBERSHIP_JOINS: &str =
    "team_members m JOIN teams t ON t.id = m.team_id JOIN users u ON u.id = m.user_id";

fn membership_from_row(row: &Row<'_>) -> rusqlite::Result<Membership> {
    Ok(Membership {
        team: TeamId(row.get(0)?),
        team_name: row.get(1)?,
        user: UserId(row.get(2)?),
        username: row.get(3)?,
        lead: row.get(4)?,
        since_ms: row.get(5)?,
        until_ms: row.get(6)?,
    })
}

/// Creates a team; refused past [`MAX_TEAMS`] or when the name is taken
/// (compared without case).
pub fn create(conn: &Connection, name: &str, now_ms: i64) -> Result<Team, TeamError> {
    let name = name.trim();
    team::check_name(name).map_err(TeamError::InvalidName)?;
    let mut count = conn.prepare_cached("SELECT COUNT(*) FROM teams")?;
    let teams: i64 = count.query_row([], |row| row.get(0))?;
    if usize::try_from(teams).unwrap_or(usize::MAX) >= MAX_TEAMS {
        return Err(TeamError::TooManyTeams);
    }
    if by_name(conn, name)?.is_some() {
        return Err(TeamError::Exists(name.to_owned()));
    }
    let mut insert = conn.prepare_cached("INSERT INTO teams (name, created_ms) VALUES (?1, ?2)")?;
    insert.execute(params![name, now_ms])?;
    Ok(Team {
        id: TeamId(conn.last_insert_rowid()),
        name: name.to_owned(),
        created_ms: now_ms,
    })
}

/// Every team, by name.
pub fn list(conn: &Connection) -> Result<Vec<Team>, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, created_ms FROM teams ORDER BY name COLLATE NOCASE")?;
    let teams = stmt
        .query_map([], team_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(teams)
}

/// The team of that name, compared without case.
pub fn by_name(conn: &Connection, name: &str) -> Result<Option<Team>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_ms FROM teams WHERE name = ?1")?;
    Ok(stmt.query_row([name.trim()], team_from_row).optional()?)
}

/// Every team's name by id.
pub fn names(conn: &Connection) -> Result<HashMap<i64, String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM teams")?;
    let names = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

/// Every membership, current and past: by team name, then start.
pub fn memberships(conn: &Connection) -> Result<Vec<Membership>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM {MEMBERSHIP_JOINS}
         ORDER BY t.name COLLATE NOCASE, m.until_ms IS NOT NULL, m.since_ms, u.username"
    ))?;
    let rows = stmt
        .query_map([], membership_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One user's memberships, oldest first.
pub(super) fn user_memberships(
    conn: &Connection,
    user: UserId,
) -> Result<Vec<Membership>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM {MEMBERSHIP_JOINS}
         WHERE m.user_id = ?1 ORDER BY m.since_ms"
    ))?;
    let rows = stmt
        .query_map([user.0], membership_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The teams `user` leads at `now_ms`, by name. With one team at a time
/// that is one at most; a list keeps the callers honest if that changes.
pub fn led_by(conn: &Connection, user: UserId, now_ms: i64) -> Result<Vec<Team>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, t.name, t.created_ms FROM team_members m JOIN teams t ON t.id = m.team_id
         WHERE m.user_id = ?1 AND m.lead = 1 AND m.since_ms <= ?2
           AND (m.until_ms IS NULL OR m.until_ms > ?2)
         ORDER BY t.name COLLATE NOCASE",
    )?;
    let teams = stmt
        .query_map(params![user.0, now_ms], team_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(teams)
}

/// Every user who was ever in `team` (a superset of its members at any
/// time in a range: the query layer narrows it per piece).
pub fn members_ever(conn: &Connection, team: TeamId) -> Result<Vec<i64>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT user_id FROM team_members WHERE team_id = ?1 ORDER BY user_id",
    )?;
    let ids = stmt
        .query_map([team.0], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The memberships (of `team`, or of every team) that overlap
/// `[from_ms, to_ms)`: what a read of that span must split at.
pub fn overlapping(
    conn: &Connection,
    team: Option<TeamId>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<super::timeline::Interval>, DbError> {
    let interval = |row: &Row<'_>| {
        Ok(super::timeline::Interval {
            user: row.get(0)?,
            team: row.get(1)?,
            since_ms: row.get(2)?,
            until_ms: row.get(3)?,
        })
    };
    let rows = match team {
        Some(team) => {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, team_id, since_ms, until_ms FROM team_members
                 WHERE team_id = ?1 AND since_ms < ?3 AND (until_ms IS NULL OR until_ms > ?2)",
            )?;
            stmt.query_map(params![team.0, from_ms, to_ms], interval)?
                .collect::<Result<Vec<_>, _>>()?
        }
        None => {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, team_id, since_ms, until_ms FROM team_members
                 WHERE since_ms < ?2 AND (until_ms IS NULL OR until_ms > ?1)",
            )?;
            stmt.query_map(params![from_ms, to_ms], interval)?
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(rows)
}

/// A person (not an identity's holder account) by name.
pub(super) fn person(conn: &Connection, username: &str) -> Result<(UserId, String), TeamError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, username FROM users WHERE username = ?1 AND kind = 'person'")?;
    stmt.query_row([username.trim()], |row| {
        Ok((UserId(row.get(0)?), row.get(1)?))
    })
    .optional()?
    .ok_or_else(|| TeamError::NoSuchUser(username.trim().to_owned()))
}

pub(super) fn team_named(conn: &Connection, name: &str) -> Result<Team, TeamError> {
    by_name(conn, name)?.ok_or_else(|| TeamError::NoSuchTeam(name.trim().to_owned()))
}
