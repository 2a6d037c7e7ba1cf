//! Every SQL statement on `teams` and `team_members`, and the rules of a
//! change: one team at a time per user, intervals that never overlap,
//! bounded counts. Each change runs in the caller's write transaction, so
//! its checks and its write see the same rows.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::DbError;
use crate::model::team::{self, MAX_MEMBERSHIPS, MAX_TEAMS};
use crate::model::{Action, TeamId, UserId};

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

/// What adding a member did, with the names as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAdded {
    pub added: Added,
    pub team: String,
    pub user: String,
    pub lead: bool,
}

impl MemberAdded {
    pub fn details(&self) -> serde_json::Value {
        self.added.details(&self.user, self.lead)
    }

    pub fn describe(&self) -> String {
        self.added.describe(&self.user, &self.team, self.lead)
    }
}

/// What adding a member did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A new membership (the user was in no team).
    Joined { since_ms: i64 },
    /// The user left `from` for this team at `since_ms`.
    Moved { from: String, since_ms: i64 },
    /// Already a member: only the lead flag was set (or it already was).
    Lead { changed: bool },
}

impl Added {
    /// The audit action of this change.
    pub fn action(&self) -> Action {
        match self {
            Added::Joined { .. } => Action::TeamMemberAdd,
            Added::Moved { .. } => Action::TeamMemberMove,
            Added::Lead { .. } => Action::TeamLead,
        }
    }

    /// The audit details of this change of `user`.
    pub fn details(&self, user: &str, lead: bool) -> serde_json::Value {
        match self {
            Added::Joined { since_ms } => serde_json::json!({
                "user": user, "lead": lead, "since": time_text(*since_ms),
            }),
            Added::Moved { from, since_ms } => serde_json::json!({
                "user": user, "lead": lead, "from": from, "since": time_text(*since_ms),
            }),
            Added::Lead { changed } => serde_json::json!({
                "user": user, "lead": lead, "changed": changed,
            }),
        }
    }

    /// What happened, for people: "ada joined web (since the beginning:
    /// their past usage counts for web)".
    pub fn describe(&self, user: &str, team: &str, lead: bool) -> String {
        let role = if lead { " as its lead" } else { "" };
        match self {
            Added::Joined { since_ms } if *since_ms == BEGINNING_MS => format!(
                "{user} joined {team}{role}, from the beginning: their past usage counts for {team}"
            ),
            Added::Joined { since_ms } => {
                format!("{user} joined {team}{role} at {}", time_text(*since_ms))
            }
            Added::Moved { from, since_ms } => format!(
                "{user} moved from {from} to {team}{role} at {}: their usage before that stays                  {from}'s",
                time_text(*since_ms)
            ),
            Added::Lead { changed: true } if lead => format!("{user} leads {team} now"),
            Added::Lead { changed: true } => format!("{user} no longer leads {team}"),
            Added::Lead { changed: false } => {
                format!("{user} is in {team} already; nothing changed")
            }
        }
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
fn user_memberships(conn: &Connection, user: UserId) -> Result<Vec<Membership>, DbError> {
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
fn person(conn: &Connection, username: &str) -> Result<(UserId, String), TeamError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, username FROM users WHERE username = ?1 AND kind = 'person'")?;
    stmt.query_row([username.trim()], |row| {
        Ok((UserId(row.get(0)?), row.get(1)?))
    })
    .optional()?
    .ok_or_else(|| TeamError::NoSuchUser(username.trim().to_owned()))
}

fn team_named(conn: &Connection, name: &str) -> Result<Team, TeamError> {
    by_name(conn, name)?.ok_or_else(|| TeamError::NoSuchTeam(name.trim().to_owned()))
}

fn check_not_future(field: &'static str, at_ms: i64, now_ms: i64) -> Result<(), TeamError> {
    if at_ms > now_ms {
        Err(TeamError::InFuture { field })
    } else {
        Ok(())
    }
}

/// Puts `username` in `team_name`, as `lead` or not.
///
/// - In no team: a new membership from `since_ms`; by default their whole
///   past for a first membership ([`BEGINNING_MS`]), else now. It may not
///   start before an earlier membership ended.
/// - In another team: a move. The old membership ends where the new one
///   starts (`since_ms`, default now), which must be later than the old
///   one's start.
/// - In this team: only the lead flag is set; the interval is kept.
pub fn add_member(
    conn: &Connection,
    team_name: &str,
    username: &str,
    lead: bool,
    since_ms: Option<i64>,
    now_ms: i64,
) -> Result<MemberAdded, TeamError> {
    let team = team_named(conn, team_name)?;
    let (user, username) = person(conn, username)?;
    let added = change_membership(conn, &team, user, &username, lead, since_ms, now_ms)?;
    Ok(MemberAdded {
        added,
        team: team.name,
        user: username,
        lead,
    })
}

fn change_membership(
    conn: &Connection,
    team: &Team,
    user: UserId,
    username: &str,
    lead: bool,
    since_ms: Option<i64>,
    now_ms: i64,
) -> Result<Added, TeamError> {
    if let Some(since) = since_ms {
        check_not_future("the start", since, now_ms)?;
    }
    let history = user_memberships(conn, user)?;
    let current = history.iter().find(|m| m.is_current());
    match current {
        Some(current) if current.team == team.id => {
            if since_ms.is_some() {
                return Err(TeamError::AlreadyMember {
                    user: username.to_owned(),
                    team: team.name.clone(),
                    since: time_text(current.since_ms),
                });
            }
            let mut stmt = conn.prepare_cached(
                "UPDATE team_members SET lead = ?3 WHERE user_id = ?1 AND team_id = ?2
                 AND until_ms IS NULL",
            )?;
            stmt.execute(params![user.0, team.id.0, lead])?;
            Ok(Added::Lead {
                changed: current.lead != lead,
            })
        }
        Some(current) => {
            let since = since_ms.unwrap_or(now_ms);
            if since <= current.since_ms {
                return Err(TeamError::BeforeCurrentStart {
                    user: username.to_owned(),
                    team: current.team_name.clone(),
                    since: time_text(current.since_ms),
                });
            }
            check_room(conn)?;
            let mut end = conn.prepare_cached(
                "UPDATE team_members SET until_ms = ?2 WHERE user_id = ?1 AND until_ms IS NULL",
            )?;
            end.execute(params![user.0, since])?;
            insert(conn, team.id, user, lead, since)?;
            Ok(Added::Moved {
                from: current.team_name.clone(),
                since_ms: since,
            })
        }
        None => {
            let since = match (since_ms, history.is_empty()) {
                (Some(since), _) => since,
                (None, true) => BEGINNING_MS,
                (None, false) => now_ms,
            };
            // The latest end, whatever its order in the list.
            let last = history
                .iter()
                .filter_map(|m| m.until_ms.map(|until| (until, m)))
                .max_by_key(|(until, _)| *until);
            if let Some((until, previous)) = last
                && since < until
            {
                return Err(TeamError::Overlaps {
                    user: username.to_owned(),
                    team: previous.team_name.clone(),
                    until: time_text(until),
                });
            }
            check_room(conn)?;
            insert(conn, team.id, user, lead, since)?;
            Ok(Added::Joined { since_ms: since })
        }
    }
}

fn check_room(conn: &Connection) -> Result<(), TeamError> {
    let mut count = conn.prepare_cached("SELECT COUNT(*) FROM team_members")?;
    let rows: i64 = count.query_row([], |row| row.get(0))?;
    if usize::try_from(rows).unwrap_or(usize::MAX) >= MAX_MEMBERSHIPS {
        return Err(TeamError::TooManyMemberships);
    }
    Ok(())
}

fn insert(
    conn: &Connection,
    team: TeamId,
    user: UserId,
    lead: bool,
    since_ms: i64,
) -> Result<(), TeamError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO team_members (team_id, user_id, lead, since_ms) VALUES (?1, ?2, ?3, ?4)",
    )?;
    stmt.execute(params![team.0, user.0, lead, since_ms])?;
    Ok(())
}

/// Ends `username`'s current membership of `team_name` at `at_ms`
/// (default now), which must be later than its start. Returns it, ended.
pub fn remove_member(
    conn: &Connection,
    team_name: &str,
    username: &str,
    at_ms: Option<i64>,
    now_ms: i64,
) -> Result<Membership, TeamError> {
    let team = team_named(conn, team_name)?;
    let (user, username) = person(conn, username)?;
    let at = at_ms.unwrap_or(now_ms);
    check_not_future("the end", at, now_ms)?;
    let history = user_memberships(conn, user)?;
    let Some(current) = history
        .into_iter()
        .find(|m| m.is_current() && m.team == team.id)
    else {
        return Err(TeamError::NotAMember {
            user: username,
            team: team.name,
        });
    };
    if at <= current.since_ms {
        return Err(TeamError::BeforeCurrentStart {
            user: username,
            team: team.name,
            since: time_text(current.since_ms),
        });
    }
    let mut end = conn.prepare_cached(
        "UPDATE team_members SET until_ms = ?3 WHERE user_id = ?1 AND team_id = ?2
         AND until_ms IS NULL",
    )?;
    end.execute(params![user.0, team.id.0, at])?;
    Ok(Membership {
        until_ms: Some(at),
        ..current
    })
}
