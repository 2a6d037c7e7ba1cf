//! `tokentally channel …`: where budget alerts go (webhooks and email
//! addresses). Every change is audited in its transaction; a secret is
//! never printed, logged or put in the audit trail.

use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::json;

use super::usage::{UsageCommandError, open};
use crate::alerts::channels::{self, Channel, ChannelError, NewChannel};
use crate::alerts::deliver::{SEND_TIMEOUT, Sender, Via};
use crate::alerts::email::{Smtp, SmtpConfigError};
use crate::alerts::formats::{Context, sample_alert};
use crate::audit::{self, Action, Actor, Entry, Outcome};
use crate::db::{Db, DbError};

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Add a channel: a webhook (--webhook URL) or an email address
    /// (--email ADDRESS)
    Add(AddArgs),
    /// List channels (a secret shows only as "set")
    List {
        /// JSON, one object per channel
        #[arg(long)]
        json: bool,
    },
    /// Send a sample alert through the channel, as alerts are sent
    Test {
        name: String,
        #[command(flatten)]
        smtp: SmtpArgs,
    },
    /// Remove a channel (budgets stop sending to it; its pending
    /// deliveries are dropped)
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Its name: letters, digits, '.', '-', '_' or '@'
    pub name: String,
    /// An http:// or https:// URL alerts are POSTed to
    #[arg(long, conflicts_with = "email", required_unless_present = "email")]
    pub webhook: Option<String>,
    /// The body: json (ours, signed with --secret), slack, discord,
    /// mattermost, teams or ntfy [default: json]
    #[arg(long, requires = "webhook")]
    pub format: Option<String>,
    /// Signs each body: X-Tokentally-Signature: sha256=HMAC-SHA256(secret,
    /// body). Never shown back
    #[arg(long, requires = "webhook")]
    pub secret: Option<String>,
    /// An email address alerts are mailed to (needs smtp_url and smtp_from)
    #[arg(long)]
    pub email: Option<String>,
}

/// The mail server, for `serve` and `channel test`.
#[derive(Clone, Default, Args)]
pub struct SmtpArgs {
    /// Mail server for alert emails: smtp://user:password@host:587 (STARTTLS),
    /// ?tls=tls or smtps:// (implicit TLS), ?tls=none (plain, local relays)
    #[arg(
        long,
        env = "TOKENTALLY_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// The From address of alert emails
    #[arg(long, env = "TOKENTALLY_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,
}

// By hand: the URL may hold the mail server's password.
impl std::fmt::Debug for SmtpArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpArgs")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "(hidden)"))
            .field("smtp_from", &self.smtp_from)
            .finish()
    }
}

impl SmtpArgs {
    /// The mail server from these flags over the file's keys; `None` when
    /// no `smtp_url` is set.
    pub fn resolve(
        &self,
        file_url: Option<&str>,
        file_from: Option<&str>,
    ) -> Result<Option<Smtp>, SmtpConfigError> {
        let url = self.smtp_url.as_deref().or(file_url);
        let from = self.smtp_from.as_deref().or(file_from);
        match (url, from) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(SmtpConfigError {
                setting: "smtp_from",
                reason: "needed with smtp_url: the From address of alert emails".into(),
            }),
            (Some(url), Some(from)) => Smtp::parse(url, from).map(Some),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelCommandError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Open(#[from] UsageCommandError),
    #[error(transparent)]
    Smtp(#[from] SmtpConfigError),
    #[error("the test alert to {name} failed: {reason}")]
    TestFailed { name: String, reason: String },
}

impl From<DbError> for ChannelCommandError {
    fn from(e: DbError) -> Self {
        ChannelCommandError::Channel(ChannelError::Db(e))
    }
}

/// What `channel test` needs of the instance's configuration.
pub struct Instance {
    pub public_url: Option<String>,
    pub unit: crate::model::Unit,
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
}

pub async fn run(
    command: ChannelCommand,
    db_path: &Path,
    instance: Instance,
) -> Result<(), ChannelCommandError> {
    let db = open(db_path).await?;
    let outcome = dispatch(&db, command, instance).await;
    db.shutdown().await;
    outcome
}

async fn dispatch(
    db: &Db,
    command: ChannelCommand,
    instance: Instance,
) -> Result<(), ChannelCommandError> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    match command {
        ChannelCommand::Add(args) => {
            let new = NewChannel {
                name: args.name,
                webhook: args.webhook,
                format: args.format,
                secret: args.secret,
                email: args.email,
            };
            let channel = db
                .write(move |conn| {
                    let channel = channels::add(conn, &new, now_ms)?;
                    let target = format!("channel:{}", channel.name);
                    let details = channel.describe(false);
                    audit::record_cli(conn, Action::ChannelCreate, target, details)?;
                    Ok::<_, ChannelError>(channel)
                })
                .await?;
            println!("created {} channel {}", channel.kind(), channel.name);
        }
        ChannelCommand::List { json } => {
            let channels = db.read(channels::list).await?;
            for channel in &channels {
                print_channel(channel, json);
            }
        }
        ChannelCommand::Test { name, smtp } => test(db, &name, &smtp, instance).await?,
        ChannelCommand::Remove { name } => {
            let removed = db
                .write(move |conn| {
                    let channel = channels::remove(conn, &name)?;
                    let target = format!("channel:{}", channel.name);
                    let details = channel.describe(false);
                    audit::record_cli(conn, Action::ChannelRemove, target, details)?;
                    Ok::<_, ChannelError>(channel)
                })
                .await?;
            println!("removed channel {}", removed.name);
        }
    }
    Ok(())
}

fn print_channel(channel: &Channel, json: bool) {
    let described = channel.describe(true);
    if json {
        println!("{described}");
        return;
    }
    let text = |key: &str| described[key].as_str().unwrap_or("").to_owned();
    match channel.kind() {
        "webhook" => println!(
            "{:<20} webhook {:<10} {}  secret: {}",
            channel.name,
            text("format"),
            text("url"),
            text("secret"),
        ),
        _ => println!("{:<20} email   {}", channel.name, text("email")),
    }
}

/// Sends a sample alert through the real delivery code; audited with its
/// outcome.
async fn test(
    db: &Db,
    name: &str,
    smtp: &SmtpArgs,
    instance: Instance,
) -> Result<(), ChannelCommandError> {
    let smtp = smtp.resolve(instance.smtp_url.as_deref(), instance.smtp_from.as_deref())?;
    let lookup = name.to_owned();
    let channel = db
        .read(move |conn| channels::get(conn, &lookup))
        .await?
        .ok_or_else(|| ChannelError::NotFound(name.to_owned()))?;
    let context = Context {
        public_url: instance.public_url,
        unit: instance.unit,
    };
    let sender = Sender::new(context, smtp, SEND_TIMEOUT);
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let outcome = sender
        .send(&sample_alert(now_ms), &Via::Channel(channel.clone()))
        .await;
    let mut entry = Entry::new(
        now_ms,
        Actor::System("cli".into()),
        Action::ChannelTest,
        if outcome.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    );
    entry.target = Some(format!("channel:{}", channel.name));
    entry.details = json!({"error": outcome.as_ref().err()});
    db.write(move |conn| audit::chain::append(conn, &[entry]))
        .await?;
    match outcome {
        Ok(()) => {
            println!("sent a test alert to {}", channel.name);
            Ok(())
        }
        Err(reason) => Err(ChannelCommandError::TestFailed {
            name: channel.name,
            reason,
        }),
    }
}
