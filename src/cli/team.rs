//! `tokentally team …`: teams and their members from the shell. A user's
//! first membership covers their whole past; joining another team later
//! is a move from `--since` (default now), and the usage before it stays
//! with the old team. Every change is audited in its transaction.

use std::path::Path;

use clap::Subcommand;
use jiff::tz::TimeZone;

use super::usage::{UsageCommandError, open, parse_bound, parse_zone};
use crate::audit;
use crate::db::Db;
use crate::model::Action;
use crate::teams::membership;
use crate::teams::store::{self, BEGINNING_MS, Membership, Team, TeamError};

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team
    Add {
        /// Its name: letters, digits, '.', '-', '_' or '@' (like a username)
        name: String,
    },
    /// List teams with their members, current and past
    List {
        /// JSON, one object per team
        #[arg(long)]
        json: bool,
    },
    /// Put people in teams, move them, take them out
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Put USER in TEAM. A first membership covers USER's whole past; if
    /// USER is in another team, they move (from --since, default now); if
    /// already in TEAM, only the lead flag is set (or cleared, without --lead)
    Add {
        team: String,
        user: String,
        /// The member leads the team: sees its members' usage
        #[arg(long)]
        lead: bool,
        /// When the membership starts: a date (local midnight in --tz) or an RFC 3339
        /// instant; not in the future
        #[arg(long)]
        since: Option<String>,
        /// IANA time zone of a --since date; default: this machine's zone
        #[arg(long, env = "TOKENTALLY_TZ")]
        tz: Option<String>,
    },
    /// Take USER out of TEAM (their membership ends; their past usage
    /// stays the team's)
    Remove {
        team: String,
        user: String,
        /// When the membership ends: a date (local midnight in --tz) or an RFC 3339
        /// instant; default: now
        #[arg(long)]
        at: Option<String>,
        /// IANA time zone of an --at date; default: this machine's zone
        #[arg(long, env = "TOKENTALLY_TZ")]
        tz: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TeamCommandError {
    #[error(transparent)]
    Team(#[from] TeamError),
    #[error(transparent)]
    Open(#[from] UsageCommandError),
}

pub async fn run(command: TeamCommand, db_path: &Path) -> Result<(), TeamCommandError> {
    let db = open(db_path).await?;
    let outcome = dispatch(&db, command).await;
    db.shutdown().await;
    outcome
}

fn time(
    flag: &'static str,
    value: Option<&str>,
    tz: Option<&str>,
) -> Result<Option<i64>, UsageCommandError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let zone: TimeZone = parse_zone(tz)?;
    Ok(Some(parse_bound(flag, value, &zone)?.as_millisecond()))
}

async fn dispatch(db: &Db, command: TeamCommand) -> Result<(), TeamCommandError> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    match command {
        TeamCommand::Add { name } => {
            let team = db
                .write(move |conn| {
                    let team = store::create(conn, &name, now_ms)?;
                    let target = format!("team:{}", team.name);
                    audit::record_cli(conn, Action::TeamCreate, target, serde_json::json!({}))?;
                    Ok::<_, TeamError>(team)
                })
                .await?;
            println!("created team {}", team.name);
        }
        TeamCommand::List { json } => {
            let (teams, memberships) = db
                .read(|conn| Ok::<_, TeamError>((store::list(conn)?, store::memberships(conn)?)))
                .await?;
            print_list(&teams, &memberships, json);
        }
        TeamCommand::Member(MemberCommand::Add {
            team,
            user,
            lead,
            since,
            tz,
        }) => {
            let since = time("--since", since.as_deref(), tz.as_deref())?;
            let text = db
                .write(move |conn| {
                    let done = membership::add_member(conn, &team, &user, lead, since, now_ms)?;
                    let target = format!("team:{}", done.team);
                    audit::record_cli(conn, done.added.action(), target, done.details())?;
                    Ok::<_, TeamError>(done.describe())
                })
                .await?;
            println!("{text}");
        }
        TeamCommand::Member(MemberCommand::Remove { team, user, at, tz }) => {
            let at = time("--at", at.as_deref(), tz.as_deref())?;
            let ended = db
                .write(move |conn| {
                    let ended = membership::remove_member(conn, &team, &user, at, now_ms)?;
                    let until = ended.until_ms.map(store::time_text);
                    let details = serde_json::json!({"user": ended.username, "until": until});
                    let target = format!("team:{}", ended.team_name);
                    audit::record_cli(conn, Action::TeamMemberRemove, target, details)?;
                    Ok::<_, TeamError>(ended)
                })
                .await?;
            println!(
                "{} left {} at {}: their usage until then stays the team's",
                ended.username,
                ended.team_name,
                store::time_text(ended.until_ms.unwrap_or(now_ms))
            );
        }
    }
    Ok(())
}

fn print_list(teams: &[Team], memberships: &[Membership], json: bool) {
    for team in teams {
        let members: Vec<&Membership> = memberships.iter().filter(|m| m.team == team.id).collect();
        if json {
            let rows: Vec<serde_json::Value> = members
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "user": m.username,
                        "lead": m.lead,
                        // null: from the beginning (a first membership).
                        "since": (m.since_ms != BEGINNING_MS).then(|| store::time_text(m.since_ms)),
                        // null: current.
                        "until": m.until_ms.map(store::time_text),
                    })
                })
                .collect();
            let line = serde_json::json!({
                "name": team.name,
                "created": store::time_text(team.created_ms),
                "members": rows,
            });
            println!("{line}");
            continue;
        }
        let current = members.iter().filter(|m| m.is_current()).count();
        let plural = if current == 1 { "" } else { "s" };
        println!("{} ({current} member{plural} now)", team.name);
        for member in members {
            let lead = if member.lead { "lead" } else { "" };
            let span = match member.until_ms {
                None => format!("since {}", store::time_text(member.since_ms)),
                Some(until) => format!(
                    "from {} until {} (past)",
                    store::time_text(member.since_ms),
                    store::time_text(until)
                ),
            };
            println!("  {:<24} {lead:<4}  {span}", member.username);
        }
    }
}
