//! `tokentally token …`: API tokens from the shell. The secret is printed
//! once, on standard output alone, so `$(tokentally token create …)` works.

use std::path::Path;

use clap::Subcommand;

use crate::audit;
use crate::model::Action;

use super::usage::{UsageCommandError, open};
use crate::auth::users;
use crate::auth::{tokens, tokens::TokenError, tokens::TokenInfo, tokens::TokenScope};
use crate::db::Db;
use crate::model::TokenId;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (once) on standard output
    Create {
        /// The user the token acts for
        #[arg(long)]
        user: String,
        /// What the token may do
        #[arg(long, value_enum)]
        scope: TokenScope,
        /// A label to recognise it by (e.g. the machine it is used on)
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List tokens (never their secrets)
    List {
        /// Only this user's tokens
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id (from `token list`); it stops working at once
    Revoke { id: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum TokenCommandError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Open(#[from] UsageCommandError),
    #[error("no user named {0:?}")]
    UnknownUser(String),
}

pub async fn run(command: TokenCommand, db_path: &Path) -> Result<(), TokenCommandError> {
    let db = open(db_path).await?;
    let outcome = dispatch(&db, command).await;
    db.shutdown().await;
    outcome
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn dispatch(db: &Db, command: TokenCommand) -> Result<(), TokenCommandError> {
    match command {
        TokenCommand::Create { user, scope, name } => {
            let created = db
                .write(move |conn| {
                    let created = tokens::create(conn, &user, scope, &name, now())?;
                    let details = serde_json::json!({
                        "token_id": created.info.id.0,
                        "scope": scope.as_str(),
                        "name": created.info.name,
                    });
                    audit::record_cli(
                        conn,
                        Action::TokenCreate,
                        format!("user:{}", created.info.username),
                        details,
                    )?;
                    Ok::<_, TokenError>(created)
                })
                .await?;
            eprintln!(
                "created {} token {} ({}) for {}; it is shown only now:",
                created.info.scope.as_str(),
                created.info.id,
                created.info.name,
                created.info.username
            );
            println!("{}", created.secret);
        }
        TokenCommand::List { user } => {
            let owner = match user {
                None => None,
                Some(name) => {
                    let lookup = name.clone();
                    let found = db
                        .read(move |conn| users::by_name(conn, &lookup))
                        .await
                        .map_err(TokenError::from)?;
                    Some(found.ok_or(TokenCommandError::UnknownUser(name))?.id)
                }
            };
            let all = db
                .read(move |conn| tokens::list(conn, owner))
                .await
                .map_err(TokenError::from)?;
            print!("{}", token_table(&all));
        }
        TokenCommand::Revoke { id } => {
            let token = db
                .write(move |conn| {
                    let token = tokens::revoke(conn, TokenId(id), None, now())?;
                    let details = serde_json::json!({"token_id": id, "name": token.name});
                    audit::record_cli(
                        conn,
                        Action::TokenRevoke,
                        format!("user:{}", token.username),
                        details,
                    )?;
                    Ok::<_, TokenError>(token)
                })
                .await?;
            println!(
                "revoked token {} ({}) of {}",
                token.id, token.name, token.username
            );
        }
    }
    Ok(())
}

fn time(seconds: Option<i64>) -> String {
    seconds
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn token_table(all: &[TokenInfo]) -> String {
    let mut out = format!(
        "{:<5} {:<16} {:<20} {:<7} {:<13} {:<21} {:<21} {}\n",
        "ID", "USER", "NAME", "SCOPE", "PREFIX", "CREATED", "LAST USED", "STATUS"
    );
    for token in all {
        let status = match token.revoked_at {
            Some(at) => format!("revoked {}", time(Some(at))),
            None => "active".to_owned(),
        };
        out.push_str(&format!(
            "{:<5} {:<16} {:<20} {:<7} {:<13} {:<21} {:<21} {status}\n",
            token.id.0,
            token.username,
            token.name,
            token.scope.as_str(),
            format!("{}…", token.prefix),
            time(Some(token.created_at)),
            time(token.last_used_at),
        ));
    }
    out
}
