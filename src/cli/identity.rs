//! `tokentally identity …`: the identities producers send (`user.email`,
//! `enduser.id`, LiteLLM's end user…), and linking them to people. A link
//! moves the identity's past events to the person, exactly and in one
//! transaction; an unlink moves them back to unassigned. `create-user`
//! makes a member from an identity (with a one-time setup link instead of
//! a password); `ignore` and `unignore` mark it. Each change is audited.

use std::path::Path;

use clap::Subcommand;

use super::usage::{UsageCommandError, open};
use crate::audit;
use crate::auth::{invites, users};
use crate::db::Db;
use crate::model::format::decimal;
use crate::model::{Action, IdentityKey, IdentityKind, Unit};
use crate::usage::identities::{self, IdentityError, IdentityUsage, Moved};

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// List identities: unassigned first, with their events and cost
    List {
        /// JSON, one object per identity
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        unit: super::unit::UnitArgs,
    },
    /// Link an identity to a person: its past and future usage is theirs
    Link {
        /// enduser, email, account, install, litellm_user or litellm_key
        kind: String,
        value: String,
        /// The person's username
        #[arg(long)]
        user: String,
    },
    /// Unlink an identity: its usage goes back to unassigned
    Unlink { kind: String, value: String },
    /// Create a member (without a password) from an unassigned identity: its
    /// usage moves to them; prints their one-time setup link (7 days)
    CreateUser {
        /// enduser, email, account, install, litellm_user or litellm_key
        kind: String,
        value: String,
        /// The login name [default: an email's local part, or the value, made a valid name]
        #[arg(long, value_name = "LOGIN")]
        name: Option<String>,
        /// The URL people reach the server at, for the link [default: public_url of the
        /// config file; without one the link is printed as a path]
        #[arg(long, env = "TOKENTALLY_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
    },
    /// Mark an unassigned identity ignored: still counted and listed, kept apart
    Ignore { kind: String, value: String },
    /// Take the ignored mark off an identity
    Unignore { kind: String, value: String },
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityCommandError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Open(#[from] UsageCommandError),
    #[error(
        "unknown identity kind {0:?}: one of enduser, email, account, install, litellm_user, \
         litellm_key"
    )]
    Kind(String),
}

/// Runs an identity command on the database at `db_path`; `public_url` is
/// the config file's, for the setup link of `create-user`.
pub async fn run(
    command: IdentityCommand,
    db_path: &Path,
    public_url: Option<String>,
    unit: Unit,
) -> Result<(), IdentityCommandError> {
    let db = open(db_path).await?;
    let outcome = dispatch(&db, command, public_url, &unit).await;
    db.shutdown().await;
    outcome
}

fn key(kind: &str, value: &str) -> Result<IdentityKey, IdentityCommandError> {
    let kind = IdentityKind::parse(kind).ok_or_else(|| IdentityCommandError::Kind(kind.into()))?;
    Ok(IdentityKey::new(kind, value))
}

async fn dispatch(
    db: &Db,
    command: IdentityCommand,
    file_public_url: Option<String>,
    unit: &Unit,
) -> Result<(), IdentityCommandError> {
    match command {
        IdentityCommand::List { json, .. } => {
            let all = db
                .read(|conn| identities::list(conn).map_err(IdentityError::from))
                .await?;
            print_list(&all, json, unit);
        }
        IdentityCommand::Link { kind, value, user } => {
            let key = key(&kind, &value)?;
            let target = key.to_string();
            // On standard error: standard output is the result alone.
            eprintln!("linking {target} to {user}…");
            let moved = db
                .write(move |conn| {
                    let moved = identities::link(conn, &key, &user)?;
                    record(conn, Action::IdentityLink, &target, Some(&user), moved)?;
                    Ok::<_, IdentityError>(moved)
                })
                .await?;
            println!(
                "linked {kind}:{value}: {} events moved{}",
                moved.events,
                merged_note(moved)
            );
        }
        IdentityCommand::Unlink { kind, value } => {
            let key = key(&kind, &value)?;
            let target = key.to_string();
            let moved = db
                .write(move |conn| {
                    let moved = identities::unlink(conn, &key)?;
                    record(conn, Action::IdentityUnlink, &target, None, moved)?;
                    Ok::<_, IdentityError>(moved)
                })
                .await?;
            println!(
                "unlinked {kind}:{value}: {} events are unassigned again{}",
                moved.events,
                merged_note(moved)
            );
        }
        IdentityCommand::CreateUser {
            kind,
            value,
            name,
            public_url,
        } => {
            let key = key(&kind, &value)?;
            let name = name.unwrap_or_else(|| users::suggested_username(&key.value));
            let base = public_url.or(file_public_url);
            create_user(db, key, name, base.as_deref()).await?;
        }
        IdentityCommand::Ignore { kind, value } => mark(db, key(&kind, &value)?, true).await?,
        IdentityCommand::Unignore { kind, value } => mark(db, key(&kind, &value)?, false).await?,
    }
    Ok(())
}

async fn create_user(
    db: &Db,
    key: IdentityKey,
    name: String,
    base: Option<&str>,
) -> Result<(), IdentityCommandError> {
    let target = key.to_string();
    let shown = target.clone();
    let now = jiff::Timestamp::now().as_second();
    let username = name.clone();
    let created = db
        .write(move |conn| {
            let created = identities::create_person(conn, &key, &username, now)?;
            let details = serde_json::json!({
                "user": username,
                "events_moved": created.moved.events,
                "events_merged": created.moved.merged,
                "setup_link_expires_at": now + invites::INVITE_TTL_S,
            });
            audit::record_cli(
                conn,
                Action::IdentityCreateUser,
                format!("identity:{target}"),
                details,
            )?;
            Ok::<_, IdentityError>(created)
        })
        .await?;
    println!(
        "created the member {name} from {shown}: {} events moved{}",
        created.moved.events,
        merged_note(created.moved)
    );
    let link = invites::link(base, &created.token);
    if base.is_none() {
        println!("setup link (a path: put this server's address in front of it): {link}");
    } else {
        println!("setup link: {link}");
    }
    // On standard error: standard output is the result alone.
    eprintln!("the link works once and expires in 7 days; it is not shown again");
    Ok(())
}

async fn mark(db: &Db, key: IdentityKey, ignored: bool) -> Result<(), IdentityCommandError> {
    let target = key.to_string();
    let action = if ignored {
        Action::IdentityIgnore
    } else {
        Action::IdentityUnignore
    };
    let shown = target.clone();
    db.write(move |conn| {
        identities::set_ignored(conn, &key, ignored)?;
        let details = serde_json::json!({ "ignored": ignored });
        audit::record_cli(conn, action, format!("identity:{target}"), details)?;
        Ok::<_, IdentityError>(())
    })
    .await?;
    if ignored {
        println!("{shown} is ignored: still counted and listed, kept apart as unassigned");
    } else {
        println!("{shown} is no longer ignored");
    }
    Ok(())
}

/// The audit entry of a link or unlink, in its transaction.
fn record(
    conn: &rusqlite::Connection,
    action: Action,
    identity: &str,
    user: Option<&str>,
    moved: Moved,
) -> Result<(), IdentityError> {
    let details = serde_json::json!({
        "user": user,
        "events_moved": moved.events,
        "events_merged": moved.merged,
    });
    audit::record_cli(conn, action, format!("identity:{identity}"), details)?;
    Ok(())
}

fn merged_note(moved: Moved) -> String {
    if moved.merged == 0 {
        String::new()
    } else {
        format!(
            " ({} already stored for that person under the same id were kept once)",
            moved.merged
        )
    }
}

/// `cost` is the stored amount in USD; `cost_in_unit` and `unit` are the
/// configured unit's, as everywhere money is shown.
fn print_list(all: &[IdentityUsage], json: bool, unit: &Unit) {
    for row in all {
        let identity = &row.identity;
        let linked = identity.linked.as_ref().map(|(_, name)| name.as_str());
        if json {
            let line = serde_json::json!({
                "kind": identity.key.kind.as_str(),
                "value": identity.key.value,
                "user": linked,
                "ignored": identity.ignored,
                "first_seen_ms": identity.first_seen_ms,
                "last_seen_ms": identity.last_seen_ms,
                "events": row.events,
                "cost": decimal(row.cost_micros),
                "cost_in_unit": unit.decimal(row.cost_micros),
                "unit": unit,
            });
            println!("{line}");
        } else {
            println!(
                "{:<44} {:<16} {:>10} events {:>14}",
                identity.key.to_string(),
                linked.unwrap_or("(unassigned)"),
                row.events,
                unit.money(row.cost_micros)
            );
        }
    }
}
