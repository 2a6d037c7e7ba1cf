//! Sending one alert to one destination: a webhook (any format) over
//! HTTP(S), or an email over SMTP. Used by the worker and by `channel
//! test`, so a test sends through exactly the code alerts do. An error is
//! text for the alerts page and the log: never a secret, never a
//! webhook's full URL (Slack's and Discord's carry their credential in it).

use std::sync::Arc;
use std::time::Duration;

use super::channels::{Channel, Target, host_of};
use super::email::{Mail, Smtp};
use super::formats::{self, Context};
use super::store::AlertRow;

/// How long one delivery may take (connect, send, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest error kept for the alerts page.
const MAX_ERROR: usize = 500;

/// Where one delivery goes, resolved.
#[derive(Debug, Clone)]
pub enum Via {
    Channel(Channel),
    /// A member's own address (their budget's alerts).
    MemberEmail(String),
}

impl Via {
    /// How the log and the audit trail name it (never an address of a
    /// person, never a URL).
    pub fn label(&self) -> String {
        match self {
            Via::Channel(channel) => format!("channel:{}", channel.name),
            Via::MemberEmail(_) => "member-email".to_owned(),
        }
    }
}

/// Everything a delivery needs beyond the alert: the instance's context,
/// the mail server (if configured) and an HTTP client.
#[derive(Clone)]
pub struct Sender {
    pub context: Context,
    pub smtp: Option<Smtp>,
    pub timeout: Duration,
    agent: ureq::Agent,
}

impl Sender {
    pub fn new(context: Context, smtp: Option<Smtp>, timeout: Duration) -> Sender {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("tokentally/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Sender {
            context,
            smtp,
            timeout,
            agent,
        }
    }

    /// Sends `alert` through `via`; `Err` says why not, in words fit to
    /// show an admin.
    pub async fn send(&self, alert: &AlertRow, via: &Via) -> Result<(), String> {
        let outcome = match via {
            Via::Channel(channel) => match &channel.target {
                Target::Webhook {
                    url,
                    format,
                    secret,
                } => {
                    let out = formats::webhook(alert, *format, secret.as_deref(), &self.context);
                    self.post(url, out).await
                }
                Target::Email(address) => self.email(alert, address).await,
            },
            Via::MemberEmail(address) => self.email(alert, address).await,
        };
        outcome.map_err(|e| e.chars().take(MAX_ERROR).collect())
    }

    async fn post(&self, url: &str, out: formats::Outgoing) -> Result<(), String> {
        let agent = self.agent.clone();
        let url: Arc<str> = Arc::from(url);
        let target = Arc::clone(&url);
        let posted = tokio::task::spawn_blocking(move || {
            let mut request = agent.post(&*target).content_type(out.content_type);
            for (name, value) in &out.headers {
                request = request.header(*name, value);
            }
            request
                .send(&out.body[..])
                .map(|response| response.status())
        })
        .await
        .map_err(|_| "the sending task failed".to_owned())?;
        match posted {
            Ok(status) if status.is_success() => Ok(()),
            Ok(status) => Err(format!("the receiver answered HTTP {}", status.as_u16())),
            Err(ureq::Error::Timeout(_)) => Err(format!("no answer within {:?}", self.timeout)),
            Err(e) => Err(e.to_string().replace(&*url, host_of(&url))),
        }
    }

    async fn email(&self, alert: &AlertRow, address: &str) -> Result<(), String> {
        let Some(smtp) = &self.smtp else {
            return Err(
                "email is not configured: set smtp_url and smtp_from (config file, \
                 TOKENTALLY_SMTP_URL and TOKENTALLY_SMTP_FROM, or serve's flags)"
                    .to_owned(),
            );
        };
        let (subject, body) = formats::email_text(alert, &self.context);
        let mail = Mail {
            to: address,
            subject,
            body,
            idempotency_key: &alert.idempotency_key,
        };
        smtp.send(&mail, self.timeout).await
    }
}
