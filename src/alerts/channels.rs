//! Channels: where alerts go. A webhook (a URL, a body format and an
//! optional signing secret) or an email address. Every SQL statement on
//! `channels` is here, with the rules of a channel; a secret is stored to
//! sign with and never read back out of this module except by the sender
//! ([`Channel::secret`] is not serialised, not shown, not logged).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use crate::db::DbError;

/// The most channels an instance keeps: each alert fans out to its
/// budget's channels, and the list is shown whole.
pub const MAX_CHANNELS: usize = 100;
/// The longest webhook URL (what the table accepts).
pub const MAX_URL: usize = 2048;
/// The longest signing secret.
pub const MAX_SECRET: usize = 256;
/// The longest email address (RFC 5321's path limit, less the brackets).
pub const MAX_EMAIL: usize = 254;

/// The shape of a webhook's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Our own JSON object, signed when a secret is set.
    Json,
    Slack,
    Discord,
    Mattermost,
    /// Microsoft Teams (a MessageCard).
    Teams,
    /// ntfy: a plain-text body with Title, Priority and Tags headers.
    Ntfy,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Json,
        Format::Slack,
        Format::Discord,
        Format::Mattermost,
        Format::Teams,
        Format::Ntfy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Mattermost => "mattermost",
            Format::Teams => "teams",
            Format::Ntfy => "ntfy",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Where a channel sends.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    Webhook {
        url: String,
        format: Format,
        secret: Option<String>,
    },
    Email(String),
}

// By hand: the secret must not reach a log through `{:?}`.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Webhook {
                url,
                format,
                secret,
            } => f
                .debug_struct("Webhook")
                .field("host", &host_of(url))
                .field("format", format)
                .field("secret", &secret.as_ref().map(|_| "set"))
                .finish(),
            Target::Email(address) => f.debug_tuple("Email").field(address).finish(),
        }
    }
}

/// A stored channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub target: Target,
    pub created_ms: i64,
}

impl Channel {
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Webhook { .. } => "webhook",
            Target::Email(_) => "email",
        }
    }

    /// What the list and the audit trail say about it: never the secret
    /// (only whether one is set); a webhook's URL only for `list` (it can
    /// itself be a credential, as Slack's are), its host for the trail.
    pub fn describe(&self, with_url: bool) -> Value {
        match &self.target {
            Target::Webhook {
                url,
                format,
                secret,
            } => json!({
                "name": self.name,
                "kind": "webhook",
                "format": format.name(),
                "url": if with_url { Some(url.as_str()) } else { None },
                "host": host_of(url),
                "secret": if secret.is_some() { "set" } else { "none" },
            }),
            Target::Email(address) => json!({
                "name": self.name,
                "kind": "email",
                "email": address,
            }),
        }
    }
}

/// The host of a URL, for what is shown where the URL itself is not.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// A channel as typed.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub webhook: Option<String>,
    pub format: Option<String>,
    pub secret: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A field a person typed is wrong: named, with the reason.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("a channel named {0:?} already exists")]
    Exists(String),
    #[error("no channel named {0:?}")]
    NotFound(String),
    #[error("there are {MAX_CHANNELS} channels already, the most an instance may have")]
    TooMany,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for ChannelError {
    fn from(e: rusqlite::Error) -> Self {
        ChannelError::Db(DbError::from(e))
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ChannelError {
    ChannelError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Checks a new channel's fields; the error names the first wrong one.
pub fn check(new: &NewChannel) -> Result<(String, Target), ChannelError> {
    let name = new.name.trim();
    if !crate::model::names::is_plain_name(name) {
        return Err(invalid(
            "name",
            "1 to 64 letters, digits, '.', '-', '_' or '@', starting with a letter or digit",
        ));
    }
    let target = match (&new.webhook, &new.email) {
        (Some(url), None) => webhook(url, new.format.as_deref(), new.secret.as_deref())?,
        (None, Some(address)) => {
            if new.secret.is_some() {
                return Err(invalid("secret", "only a webhook is signed"));
            }
            if new.format.is_some() {
                return Err(invalid("format", "only a webhook has a body format"));
            }
            check_email(address).map_err(|reason| invalid("email", reason))?;
            Target::Email(address.trim().to_owned())
        }
        _ => {
            return Err(invalid(
                "target",
                "give either --webhook URL or --email ADDRESS",
            ));
        }
    };
    Ok((name.to_owned(), target))
}

fn webhook(url: &str, format: Option<&str>, secret: Option<&str>) -> Result<Target, ChannelError> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| invalid("webhook", "an http:// or https:// URL"))?;
    if rest.is_empty() || host_of(url).is_empty() {
        return Err(invalid("webhook", "the URL names no host"));
    }
    if url.len() > MAX_URL || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            "webhook",
            format!("at most {MAX_URL} characters, without spaces"),
        ));
    }
    let format = match format {
        None => Format::Json,
        Some(name) => Format::parse(name).ok_or_else(|| {
            invalid(
                "format",
                "one of json, slack, discord, mattermost, teams, ntfy",
            )
        })?,
    };
    if let Some(secret) = secret
        && !(1..=MAX_SECRET).contains(&secret.len())
    {
        return Err(invalid(
            "secret",
            format!("1 to {MAX_SECRET} bytes (it is never shown back)"),
        ));
    }
    Ok(Target::Webhook {
        url: url.to_owned(),
        format,
        secret: secret.map(str::to_owned),
    })
}

/// The reason an email address is refused, if it is: one `@` with text on
/// both sides, no spaces or control characters, at most 254 characters.
/// (The mail server has the last word; this catches typing mistakes.)
pub fn check_email(address: &str) -> Result<(), String> {
    let address = address.trim();
    let Some((local, domain)) = address.split_once('@') else {
        return Err("an address such as ops@example.com".into());
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err("one '@' with a name before it and a domain after it".into());
    }
    if address.len() > MAX_EMAIL {
        return Err(format!("at most {MAX_EMAIL} characters"));
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err("no spaces, control characters, '<', '>', ',' or ';'".into());
    }
    Ok(())
}

/// Checks and stores a new channel; returns it.
pub fn add(conn: &Connection, new: &NewChannel, now_ms: i64) -> Result<Channel, ChannelError> {
    let (name, target) = check(new)?;
    let count: i64 = conn.query_row("SELECT count(*) FROM channels", [], |r| r.get(0))?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_CHANNELS {
        return Err(ChannelError::TooMany);
    }
    if get(conn, &name)?.is_some() {
        return Err(ChannelError::Exists(name));
    }
    let (kind, format, value, secret) = match &target {
        Target::Webhook {
            url,
            format,
            secret,
        } => ("webhook", Some(format.name()), url, secret.as_deref()),
        Target::Email(address) => ("email", None, address, None),
    };
    conn.prepare_cached(
        "INSERT INTO channels (name, kind, format, target, secret, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![name, kind, format, value, secret, now_ms])?;
    Ok(Channel {
        id: conn.last_insert_rowid(),
        name,
        target,
        created_ms: now_ms,
    })
}

const COLUMNS: &str = "id, name, kind, format, target, secret, created_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Channel> {
    let kind: String = row.get(2)?;
    let format: Option<String> = row.get(3)?;
    let value: String = row.get(4)?;
    let target = if kind == "email" {
        Target::Email(value)
    } else {
        Target::Webhook {
            url: value,
            format: format
                .as_deref()
                .and_then(Format::parse)
                .unwrap_or(Format::Json),
            secret: row.get(5)?,
        }
    };
    Ok(Channel {
        id: row.get(0)?,
        name: row.get(1)?,
        target,
        created_ms: row.get(6)?,
    })
}

/// Every channel, by name.
pub fn list(conn: &Connection) -> Result<Vec<Channel>, ChannelError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM channels ORDER BY name"))?
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?)
}

/// The channel named `name` (without case).
pub fn get(conn: &Connection, name: &str) -> Result<Option<Channel>, ChannelError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM channels WHERE name = ?1"))?
        .query_row([name.trim()], from_row)
        .optional()?)
}

/// The channel with row id `id`.
pub fn by_id(conn: &Connection, id: i64) -> Result<Option<Channel>, DbError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM channels WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Removes the channel named `name`; budgets stop sending to it and its
/// pending deliveries go with it. Returns what was removed.
pub fn remove(conn: &Connection, name: &str) -> Result<Channel, ChannelError> {
    let channel = get(conn, name)?.ok_or_else(|| ChannelError::NotFound(name.to_owned()))?;
    conn.prepare_cached("DELETE FROM channels WHERE id = ?1")?
        .execute([channel.id])?;
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook_channel(url: &str, format: Option<&str>, secret: Option<&str>) -> NewChannel {
        NewChannel {
            name: "ops".into(),
            webhook: Some(url.into()),
            format: format.map(Into::into),
            secret: secret.map(Into::into),
            email: None,
        }
    }

    fn field_of(new: &NewChannel) -> &'static str {
        match check(new) {
            Err(ChannelError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn bad_channels_are_refused_naming_the_field() {
        let long = format!("https://x/{}", "a".repeat(MAX_URL));
        let secret = "s".repeat(MAX_SECRET + 1);
        for (new, field) in [
            (webhook_channel("ftp://x", None, None), "webhook"),
            (webhook_channel("https://", None, None), "webhook"),
            (webhook_channel(&long, None, None), "webhook"),
            (webhook_channel("https://a b", None, None), "webhook"),
            (webhook_channel("https://x", Some("xml"), None), "format"),
            (webhook_channel("https://x", None, Some("")), "secret"),
            (webhook_channel("https://x", None, Some(&secret)), "secret"),
        ] {
            assert_eq!(field_of(&new), field, "{new:?}");
        }
        let mut bad_name = webhook_channel("https://x", None, None);
        bad_name.name = "two words".into();
        assert_eq!(field_of(&bad_name), "name");
        for address in ["ops", "@x", "ops@", "a@b@c", "a b@c", "a\n@c", "a<b>@c"] {
            let new = NewChannel {
                name: "mail".into(),
                webhook: None,
                format: None,
                secret: None,
                email: Some(address.into()),
            };
            assert_eq!(field_of(&new), "email", "{address:?}");
        }
        let signed_mail = NewChannel {
            secret: Some("x".into()),
            email: Some("ops@example.com".into()),
            webhook: None,
            ..webhook_channel("", None, None)
        };
        assert_eq!(field_of(&signed_mail), "secret");
    }

    #[test]
    fn good_channels_pass_and_default_to_json() {
        let (name, target) =
            check(&webhook_channel("https://hooks.example/x", None, Some("k"))).expect("valid");
        assert_eq!(name, "ops");
        assert!(matches!(
            target,
            Target::Webhook {
                format: Format::Json,
                ..
            }
        ));
        assert!(check_email("ops+alerts@example.com").is_ok());
    }

    #[test]
    fn debug_and_describe_never_show_the_secret() {
        let channel = Channel {
            id: 1,
            name: "ops".into(),
            target: Target::Webhook {
                url: "https://user:pw@hooks.example/x".into(),
                format: Format::Json,
                secret: Some("hunter2-secret".into()),
            },
            created_ms: 0,
        };
        let shown = format!(
            "{channel:?} {} {}",
            channel.describe(true),
            channel.describe(false)
        );
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert_eq!(channel.describe(false)["host"], "hooks.example");
        assert_eq!(channel.describe(false)["secret"], "set");
    }
}
