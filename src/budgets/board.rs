//! The budgets one person may see, with where each stands: what the
//! budgets page, the overview's card and `/metrics` show.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};

use super::Standing;
use super::access::{Sight, Viewer};
use super::status::{Burn, StatusError, burn, standings};
use super::store::{self, Budget};
use crate::alerts::AlertRow;
use crate::model::{TeamId, User, UserId};

/// A budget as a viewer sees it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub budget: Budget,
    pub sight: Sight,
    /// One standing, or one per member (each-member budgets, in full), or
    /// the viewer's own share.
    pub standings: Vec<Standing>,
    /// Day by day, for a budget with one standing the viewer sees in full.
    pub burn: Option<Burn>,
}

/// The team `user` is in now, if any.
pub fn current_team(conn: &Connection, user: UserId) -> Result<Option<TeamId>, crate::db::DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT team_id FROM team_members WHERE user_id = ?1 AND until_ms IS NULL LIMIT 1",
        )?
        .query_row([user.0], |row| row.get(0))
        .optional()?
        .map(TeamId))
}

/// Every budget `user` may see at `now`, by name; `leads` are the teams
/// they lead now.
pub fn board(
    conn: &Connection,
    user: &User,
    leads: &[TeamId],
    now: Timestamp,
) -> Result<Vec<Shown>, StatusError> {
    let viewer = Viewer {
        user,
        leads,
        team: current_team(conn, user.id)?,
    };
    let mut shown = Vec::new();
    for budget in store::list(conn)? {
        let sight = viewer.sight(&budget);
        if sight == Sight::Hidden {
            continue;
        }
        let mut standings = standings(conn, &budget, now)?;
        if sight == Sight::Own {
            standings.retain(|s| s.member.as_ref().is_some_and(|(id, _)| *id == user.id));
            if standings.is_empty() {
                standings.push(unused(&budget, user, now)?);
            }
        }
        let burn = match (sight, standings.as_slice()) {
            (Sight::Full | Sight::Own, [one]) if one.used > 0 => {
                let member = one.member.as_ref().map(|(id, _)| *id);
                Some(burn(conn, &budget, member, now)?)
            }
            _ => None,
        };
        shown.push(Shown {
            budget,
            sight,
            standings,
            burn,
        });
    }
    Ok(shown)
}

/// A member's standing in a period they have not used yet.
fn unused(budget: &Budget, user: &User, now: Timestamp) -> Result<Standing, StatusError> {
    Ok(Standing {
        member: Some((user.id, user.username.clone())),
        window: budget.period.window_at(&budget.time_zone(), now)?,
        used: 0,
        amount: budget.amount,
        forecast: None,
    })
}

/// Alerts recorded since `since_ms` that `user` may see (newest first, at
/// most `limit`), with what they may see of each: the overview's banner.
pub fn recent_alerts(
    conn: &Connection,
    user: &User,
    leads: &[TeamId],
    since_ms: i64,
    limit: usize,
) -> Result<Vec<(AlertRow, Sight)>, crate::db::DbError> {
    let viewer = Viewer {
        user,
        leads,
        team: current_team(conn, user.id)?,
    };
    let budgets = store::list(conn)?;
    let mut shown = Vec::new();
    for alert in crate::alerts::store::recent(conn, None, 200)? {
        if alert.created_ms < since_ms || shown.len() >= limit {
            break;
        }
        let budget = budgets.iter().find(|b| Some(b.id) == alert.budget_id);
        let sight = viewer.alert_shown(&alert, budget);
        if sight != Sight::Hidden {
            shown.push((alert, sight));
        }
    }
    Ok(shown)
}
