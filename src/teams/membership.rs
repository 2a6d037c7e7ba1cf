//! Changes of membership: joining, moving, leading, leaving. The rules
//! (one team at a time, intervals that never overlap, a first membership
//! covering the past, bounded rows) are checked in the caller's write
//! transaction, so a check and its write see the same rows.

use rusqlite::{Connection, params};

use super::store::{
    BEGINNING_MS, Membership, Team, TeamError, person, team_named, time_text, user_memberships,
};
use crate::model::team::MAX_MEMBERSHIPS;
use crate::model::{Action, TeamId, UserId};

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
