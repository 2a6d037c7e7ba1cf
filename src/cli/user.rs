//! `tokentally user …`: manage accounts from the shell, against the same
//! database file a running server uses.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use clap::Subcommand;

use crate::audit;
use crate::auth::users::{self, NewUser, Profile, UserError};
use crate::auth::{HashCost, PasswordError, Passwords, check_new_password};
use crate::db::{Db, DbError, DbOptions};
use crate::model::Action;
use crate::model::Role;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user
    Add {
        /// Login name: letters, digits, '.', '-', '_', '@'
        name: String,
        /// What the user may see and do
        #[arg(long, value_enum)]
        role: Role,
        /// Name shown in the UI
        #[arg(long)]
        display_name: Option<String>,
        /// Email address (optional)
        #[arg(long)]
        email: Option<String>,
        /// IANA time zone for the user's dashboard (default: the instance's)
        #[arg(long)]
        time_zone: Option<String>,
        /// Read the password from the first line of standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (the last enabled admin cannot be demoted)
    Role {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List users
    List,
    /// Set a user's password (ends their sessions)
    Passwd {
        name: String,
        /// Read the password from the first line of standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: they cannot sign in and their sessions end
    Disable { name: String },
    /// Enable a disabled user again
    Enable { name: String },
}

#[derive(Debug, thiserror::Error)]
pub enum UserCommandError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Input(String),
}

pub async fn run(command: UserCommand, db_path: &Path) -> Result<(), UserCommandError> {
    let path = db_path.to_path_buf();
    let db = tokio::task::spawn_blocking(move || {
        Db::open_with(
            &path,
            &DbOptions {
                readers: 1,
                ..DbOptions::default()
            },
            &crate::usage::price_sync::prepare,
        )
    })
    .await
    .map_err(|e| UserCommandError::Input(e.to_string()))??;
    let outcome = dispatch(&db, command).await;
    db.shutdown().await;
    outcome
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn dispatch(db: &Db, command: UserCommand) -> Result<(), UserCommandError> {
    match command {
        UserCommand::Add {
            name,
            role,
            display_name,
            email,
            time_zone,
            password_stdin,
        } => {
            users::validate_username(&name)?;
            let profile = Profile {
                display_name,
                email,
                time_zone,
            };
            users::validate_profile(&profile)?;
            let hash = new_password_hash(password_stdin).await?;
            let username = name.clone();
            db.write(move |conn| {
                let new = NewUser {
                    username: &username,
                    display_name: profile.display_name.as_deref(),
                    role,
                    password_hash: &hash,
                };
                let id = users::insert(conn, &new, now())?;
                users::update_profile(conn, id, &profile, now())?;
                audit::record_cli(
                    conn,
                    Action::UserCreate,
                    format!("user:{username}"),
                    serde_json::json!({"role": role.as_str()}),
                )?;
                Ok::<_, UserError>(())
            })
            .await?;
            println!("created {role} {name}");
        }
        UserCommand::List => {
            let all = db.read(users::list).await?;
            println!(
                "{:<24} {:<7} {:<9} {:<20}",
                "USERNAME", "ROLE", "STATUS", "CREATED"
            );
            for user in all {
                let created = jiff::Timestamp::from_second(user.created_at)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default();
                let status = if user.disabled { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<7} {:<9} {created}",
                    user.username, user.role, status
                );
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let hash = new_password_hash(password_stdin).await?;
            let username = name.clone();
            db.write(move |conn| {
                users::set_password(conn, &username, &hash, now())?;
                audit::record_cli(
                    conn,
                    Action::UserPasswordReset,
                    format!("user:{username}"),
                    serde_json::json!({}),
                )?;
                Ok::<_, UserError>(())
            })
            .await?;
            println!("password of {name} changed; their sessions were ended");
        }
        UserCommand::Role { name, role } => {
            let username = name.clone();
            db.write(move |conn| {
                users::set_role(conn, &username, role, now())?;
                audit::record_cli(
                    conn,
                    Action::UserRoleChange,
                    format!("user:{username}"),
                    serde_json::json!({"role": role.as_str()}),
                )?;
                Ok::<_, UserError>(())
            })
            .await?;
            println!("{name} is now {role}");
        }
        UserCommand::Disable { name } => set_disabled(db, name, true).await?,
        UserCommand::Enable { name } => set_disabled(db, name, false).await?,
    }
    Ok(())
}

async fn set_disabled(db: &Db, name: String, disabled: bool) -> Result<(), UserCommandError> {
    let username = name.clone();
    db.write(move |conn| {
        users::set_disabled(conn, &username, disabled, now())?;
        let action = if disabled {
            Action::UserDisable
        } else {
            Action::UserEnable
        };
        audit::record_cli(
            conn,
            action,
            format!("user:{username}"),
            serde_json::json!({}),
        )?;
        Ok::<_, UserError>(())
    })
    .await?;
    if disabled {
        println!("{name} disabled; their sessions were ended");
    } else {
        println!("{name} enabled");
    }
    Ok(())
}

/// Reads a new password (stdin line or a hidden prompt, asked twice),
/// checks it and hashes it at the production cost.
async fn new_password_hash(from_stdin: bool) -> Result<String, UserCommandError> {
    let password = tokio::task::spawn_blocking(move || read_password(from_stdin))
        .await
        .map_err(|e| UserCommandError::Input(e.to_string()))??;
    check_new_password(&password)?;
    let passwords = Passwords::new(HashCost::default())?;
    Ok(passwords.hash(password).await?)
}

fn read_password(from_stdin: bool) -> Result<String, UserCommandError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| UserCommandError::Input(format!("cannot read standard input: {e}")))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UserCommandError::Input(
            "no terminal to ask for the password on; pass --password-stdin".into(),
        ));
    }
    let first = rpassword::prompt_password("New password: ")
        .map_err(|e| UserCommandError::Input(e.to_string()))?;
    let second = rpassword::prompt_password("Again: ")
        .map_err(|e| UserCommandError::Input(e.to_string()))?;
    if first != second {
        return Err(UserCommandError::Input("the two passwords differ".into()));
    }
    Ok(first)
}
