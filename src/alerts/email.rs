//! Alert emails over SMTP (lettre, on tokio with rustls).
//!
//! The server is one URL, `smtp_url`: `smtp://user:pass@host:587?tls=starttls`
//! (the default for `smtp://`), `?tls=tls` (implicit TLS, the default for
//! `smtps://`) or `?tls=none` (plain: a relay on localhost). The password
//! lives only in [`Smtp`], whose `Debug` hides it; no error here repeats
//! the URL.

use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::channels::check_email;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain, upgraded with STARTTLS (refused if the server cannot).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only for a relay on the same machine or network.
    None,
}

/// A mail server and the sender address, from `smtp_url` and `smtp_from`.
#[derive(Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    user: Option<String>,
    password: Option<String>,
    pub from: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("from", &self.from)
            .finish()
    }
}

/// A setting that cannot be used; says which, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct SmtpConfigError {
    pub setting: &'static str,
    pub reason: String,
}

fn refuse(setting: &'static str, reason: impl Into<String>) -> SmtpConfigError {
    SmtpConfigError {
        setting,
        reason: reason.into(),
    }
}

/// `%XX` escapes of a URL's user or password.
fn percent_decode(text: &str) -> Result<String, SmtpConfigError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| refuse("smtp_url", "a '%' in the user or password is not %XX"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| refuse("smtp_url", "the user or password is not UTF-8"))
}

impl Smtp {
    /// Reads `smtp_url` and `smtp_from`.
    pub fn parse(url: &str, from: &str) -> Result<Smtp, SmtpConfigError> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| refuse("smtp_url", "smtp://[user:password@]host[:port][?tls=…]"))?;
        let (mut tls, mut port) = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => (SmtpTls::StartTls, 587),
            "smtps" => (SmtpTls::Implicit, 465),
            _ => return Err(refuse("smtp_url", "the scheme is smtp:// or smtps://")),
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            tls = match pair {
                "tls=starttls" => SmtpTls::StartTls,
                "tls=tls" => SmtpTls::Implicit,
                "tls=none" => SmtpTls::None,
                _ => {
                    return Err(refuse(
                        "smtp_url",
                        "the query is tls=starttls, tls=tls or tls=none",
                    ));
                }
            };
        }
        let host = match hostport.rsplit_once(':') {
            Some((host, p)) if !host.ends_with(']') || host.starts_with('[') => {
                port = p
                    .parse()
                    .map_err(|_| refuse("smtp_url", "the port is a number from 1 to 65535"))?;
                host
            }
            _ => hostport,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(refuse("smtp_url", "the URL names no host"));
        }
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                (Some(percent_decode(user)?), Some(percent_decode(password)?))
            }
        };
        check_email(from).map_err(|reason| refuse("smtp_from", reason))?;
        Ok(Smtp {
            host: host.to_owned(),
            port,
            tls,
            user,
            password,
            from: from.trim().to_owned(),
        })
    }

    fn transport(&self, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let parameters =
            || TlsParameters::new(self.host.clone()).map_err(|e| format!("TLS set-up failed: {e}"));
        let tls = match self.tls {
            SmtpTls::StartTls => Tls::Required(parameters()?),
            SmtpTls::Implicit => Tls::Wrapper(parameters()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }

    /// Sends one plain-text email; the error is for the alerts page and
    /// the log (lettre's messages carry the server's reply, not our
    /// credentials).
    pub async fn send(&self, mail: &Mail<'_>, timeout: Duration) -> Result<(), String> {
        let message = mail.message(&self.from)?;
        let transport = self.transport(timeout)?;
        match tokio::time::timeout(timeout, transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the mail server refused or failed: {e}")),
            Err(_) => Err(format!("the mail server did not answer in {timeout:?}")),
        }
    }
}

/// One alert email.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: String,
    pub body: String,
    pub idempotency_key: &'a str,
}

/// The idempotency key, as a header a mail filter can match on.
#[derive(Clone)]
struct IdempotencyKey(String);

impl Header for IdempotencyKey {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Tokentally-Idempotency-Key")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(IdempotencyKey(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The Message-ID of an alert's email: the same for every attempt, so a
/// mail system that sees it twice can tell.
pub fn message_id(key: &str, from: &str) -> String {
    let left: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    let domain = from
        .rsplit_once('@')
        .map_or("tokentally.invalid", |(_, d)| d);
    format!("<{left}@{domain}>")
}

impl Mail<'_> {
    fn message(&self, from_address: &str) -> Result<Message, String> {
        let from: Mailbox = format!("tokentally <{from_address}>")
            .parse()
            .map_err(|e| format!("smtp_from is not an address: {e}"))?;
        let to: Mailbox = self
            .to
            .parse()
            .map_err(|e| format!("the address {:?} is not usable: {e}", self.to))?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(self.subject.clone())
            .message_id(Some(message_id(self.idempotency_key, from_address)))
            .header(IdempotencyKey(self.idempotency_key.to_owned()))
            .header(ContentType::TEXT_PLAIN)
            .body(self.body.clone())
            .map_err(|e| format!("the email could not be built: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_read_with_their_tls_and_never_show_the_password() {
        let smtp = Smtp::parse(
            "smtp://me%40x:p%3Ass@mail.example:2525?tls=none",
            "a@x.example",
        )
        .expect("valid");
        assert_eq!(
            (smtp.host.as_str(), smtp.port, smtp.tls),
            ("mail.example", 2525, SmtpTls::None)
        );
        assert_eq!(smtp.password.as_deref(), Some("p:ss"));
        assert!(!format!("{smtp:?}").contains("p:ss"));
        let tls = Smtp::parse("smtps://mail.example", "a@x.example").expect("valid");
        assert_eq!((tls.port, tls.tls), (465, SmtpTls::Implicit));
        let starttls = Smtp::parse("smtp://u:secretpw@mail.example", "a@x.example").expect("ok");
        assert_eq!((starttls.port, starttls.tls), (587, SmtpTls::StartTls));
        for (url, from) in [
            ("http://mail.example", "a@x.example"),
            ("smtp://u:secretpw@mail.example:99999", "a@x.example"),
            ("smtp://u:secretpw@mail.example?tls=maybe", "a@x.example"),
            ("smtp://u:secretpw@mail.example", "nobody"),
        ] {
            let error = Smtp::parse(url, from).expect_err(url).to_string();
            assert!(!error.contains("secretpw"), "{error}");
        }
    }

    #[test]
    fn the_message_id_is_derived_from_the_key() {
        assert_eq!(
            message_id("threshold:7:r1:u0:1764547200000:80", "alerts@example.com"),
            "<threshold.7.r1.u0.1764547200000.80@example.com>"
        );
    }
}
