//! `/connect`: how to send usage to this instance, producer by producer —
//! Claude Code, Gemini CLI, Codex, an OpenTelemetry SDK, LiteLLM's
//! callback, `tokentally import` — each as a block to paste, with this
//! instance's URL and a token made on the spot (a collector token for an
//! admin, a personal ingest token for a member, through the same path and
//! audit note as the Tokens page); then a check that turns green when the
//! first event arrives.
//!
//! "Arrived" means stored after the page was opened: the page puts a mark
//! ([`arrivals::mark`], the newest event's id) in the session under the
//! time it was opened, and `/connect/status?since=MS` (polled by
//! `ui/connect.js`) or `/connect?since=MS` (the link that works without
//! script) counts the events of the caller's scope stored since — an
//! admin's: everyone's, held identities' included; a member's: their own.
//! The mark itself never leaves the server: it counts everyone's events.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use super::WebState;
use super::account::tokens::create_token;
use super::connect_views::{self, BaseUrl, Check, ConnectView};
use super::headers::no_store;
use super::page::PageContext;
use crate::audit::Note;
use crate::auth::session_error;
use crate::auth::tokens::TokenScope;
use crate::error::{ApiError, AppError};
use crate::model::{Action, CurrentUser, Scope, User};
use crate::usage::arrivals::{self, Arrivals};

/// What the page needs to know of the instance's configuration.
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// The configured `public_url`, if any.
    pub public_url: Option<String>,
    /// Users reach the server over HTTPS (built-in TLS, an https public
    /// URL, `--secure-cookies`): a guessed URL starts with `https://`.
    pub https: bool,
    /// The server counts Claude Code's usage from its log events
    /// (`--claude-code-otel logs`) rather than its metrics.
    pub claude_code_logs: bool,
}

/// The configured public URL, else one guessed from `Host` when that is a
/// plain host name or address with an optional port (anything else —
/// markup, paths, credentials, spaces — is not guessed from).
pub fn base_url(settings: &ConnectSettings, headers: &HeaderMap) -> BaseUrl {
    if let Some(url) = settings.public_url.as_deref().map(str::trim)
        && !url.is_empty()
    {
        return BaseUrl::Configured(url.trim_end_matches('/').to_owned());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|host| plausible_host(host));
    match host {
        Some(host) => {
            let scheme = if settings.https { "https" } else { "http" };
            BaseUrl::Guessed(format!("{scheme}://{host}"))
        }
        None => BaseUrl::Unknown,
    }
}

/// `name(.name)*` or `[v6-address]`, then an optional `:port`.
fn plausible_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 260 {
        return false;
    }
    let (name_ok, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let Some((address, after)) = rest.split_once(']') else {
                return false;
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return false,
                },
            };
            let address_ok = !address.is_empty()
                && address
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
            (address_ok, port)
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) => (plausible_name(name), Some(port)),
            None => (plausible_name(host), None),
        },
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
    });
    name_ok && port_ok
}

/// Dot-separated labels of ASCII letters, digits and inner hyphens.
fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The session key of the marks of the Connect pages this session opened.
const MARKS_KEY: &str = "connect_marks";
/// Marks kept per session (pages open in several tabs); the oldest go.
const MAX_MARKS: usize = 8;

/// A Connect page opened at `opened_ms`, when the newest event was `after`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Mark {
    opened_ms: i64,
    after: i64,
}

/// Puts the mark of now into the session; returns the time it is filed under.
async fn new_mark(state: &WebState, session: &Session) -> Result<i64, AppError> {
    let after = state.db.read(arrivals::mark).await?;
    let opened_ms = state.clock.now().as_millisecond();
    let mut marks: Vec<Mark> = session
        .get(MARKS_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    marks.retain(|m| m.opened_ms != opened_ms);
    marks.push(Mark { opened_ms, after });
    let excess = marks.len().saturating_sub(MAX_MARKS);
    marks.drain(..excess);
    session
        .insert(MARKS_KEY, marks)
        .await
        .map_err(session_error)?;
    Ok(opened_ms)
}

/// The mark this session filed under `since`, if any.
async fn find_mark(session: &Session, since: i64) -> Result<Option<i64>, AppError> {
    let marks: Vec<Mark> = session
        .get(MARKS_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    Ok(marks.iter().find(|m| m.opened_ms == since).map(|m| m.after))
}

/// A refused query parameter: its name, and why (starting with the name).
type ParamError = (String, String);

/// `since`, the only parameter of the page and the status: Unix ms.
fn since_param(query: Option<&str>) -> Result<Option<i64>, ParamError> {
    let mut since = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "since" => {
                let parsed = value.trim().parse::<i64>().map_err(|_| {
                    (
                        "since".to_owned(),
                        format!("since: {value:?} is not a time in Unix milliseconds"),
                    )
                })?;
                since = Some(parsed);
            }
            other => {
                return Err((
                    other.to_owned(),
                    format!("{other}: unknown parameter (only since)"),
                ));
            }
        }
    }
    Ok(since)
}

fn zone_of(state: &WebState, user: &User) -> jiff::tz::TimeZone {
    user.time_zone
        .as_deref()
        .or(state.time_zone.as_deref())
        .and_then(|name| jiff::tz::TimeZone::get(name).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The page; `?since=MS` (the "check again" link) shows what arrived since
/// the page opened at MS, in this session, instead of starting afresh.
pub async fn page(
    State(state): State<WebState>,
    context: PageContext,
    session: Session,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let since =
        since_param(query.as_deref()).map_err(|(_, reason)| AppError::BadRequest(reason))?;
    let user = context.viewer.user.clone();
    let check = match since {
        Some(since) => match find_mark(&session, since).await? {
            Some(mark) => Some(Check {
                since_ms: since,
                arrivals: Some(count(&state, &user, mark).await?),
            }),
            None => None,
        },
        None => None,
    };
    let check = match check {
        Some(check) => check,
        None => Check {
            since_ms: new_mark(&state, &session).await?,
            arrivals: None,
        },
    };
    let note = Note::new(Action::PageView).details(json!({
        "page": "connect",
        "checked": check.arrivals.is_some(),
    }));
    let base = base_url(&state.connect, &headers);
    let view = ConnectView {
        context: &context,
        base: &base,
        token: None,
        error: None,
        check: &check,
        zone: zone_of(&state, &user),
        claude_code_logs: state.connect.claude_code_logs,
    };
    Ok((no_store(), note, connect_views::render(&view)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    /// `personal` asks an admin's page for an ingest token of their own
    /// instead of a collector token; a member's is always personal.
    #[serde(default)]
    kind: Option<String>,
}

/// Creates the token the page's blocks are filled with, and shows the
/// page again with it, once (`Cache-Control: no-store`).
pub async fn create(
    State(state): State<WebState>,
    context: PageContext,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let user = context.viewer.user.clone();
    let personal = !user.is_admin() || form.kind.as_deref() == Some("personal");
    let scope = if personal {
        TokenScope::Ingest
    } else {
        TokenScope::Collector
    };
    let zone = zone_of(&state, &user);
    let today = state.clock.now().to_zoned(zone.clone()).date();
    let name = format!("connect {today}");
    let (note, created) = create_token(&state, user.username.clone(), scope, name).await?;
    let check = Check {
        since_ms: new_mark(&state, &session).await?,
        arrivals: None,
    };
    let base = base_url(&state.connect, &headers);
    let view = ConnectView {
        context: &context,
        base: &base,
        token: created.as_ref().ok(),
        error: created.as_ref().err().map(String::as_str),
        check: &check,
        zone,
        claude_code_logs: state.connect.claude_code_logs,
    };
    let status = if created.is_ok() {
        StatusCode::CREATED
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, no_store(), note, connect_views::render(&view)).into_response())
}

/// The events of the caller's scope stored after `mark`.
async fn count(state: &WebState, user: &User, mark: i64) -> Result<Arrivals, AppError> {
    let scope = Scope::widest_for(user);
    Ok(state
        .db
        .read(move |conn| arrivals::since(conn, scope, mark))
        .await?)
}

/// `GET /connect/status?since=MS`: `{"received", "events", "last_event",
/// "text"}` for the page this session opened at MS; 404 when it opened
/// none then (reload the page).
pub async fn status(
    State(state): State<WebState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    match status_answer(&state, &user, &session, query.as_deref()).await {
        Ok(answer) => answer,
        Err(e) => (no_store(), e).into_response(),
    }
}

async fn status_answer(
    state: &WebState,
    user: &User,
    session: &Session,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let bad = |(field, reason): ParamError| {
        ApiError::new(StatusCode::BAD_REQUEST, reason.clone()).field(field, reason)
    };
    let since = since_param(query).map_err(bad)?.ok_or_else(|| {
        bad((
            "since".to_owned(),
            "since: required (the time the Connect page was opened)".to_owned(),
        ))
    })?;
    let Some(mark) = find_mark(session, since).await.map_err(ApiError::from)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "since: this session opened no Connect page at that time; reload /connect",
        ));
    };
    let check = Check {
        since_ms: since,
        arrivals: Some(count(state, user, mark).await.map_err(ApiError::from)?),
    };
    let arrivals = check.arrivals.unwrap_or_default();
    let last_event = arrivals
        .last_ms
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string());
    let body = json!({
        "since": since,
        "received": check.received(),
        "events": arrivals.events,
        "last_event": last_event,
        "text": check.text(user.is_admin(), &zone_of(state, user)),
    });
    let note = Note::new(Action::UsageRead).details(json!({
        "read": "connect.status",
        "scope": if user.is_admin() { "everyone" } else { "own" },
        "events": arrivals.events,
    }));
    Ok((no_store(), note, axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guessed(host: &str, https: bool) -> BaseUrl {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().expect("header value"));
        let settings = ConnectSettings {
            https,
            ..ConnectSettings::default()
        };
        base_url(&settings, &headers)
    }

    #[test]
    fn a_configured_url_wins() {
        let settings = ConnectSettings {
            public_url: Some("https://tokens.example.com/".into()),
            ..ConnectSettings::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "evil.example".parse().expect("value"));
        assert_eq!(
            base_url(&settings, &headers),
            BaseUrl::Configured("https://tokens.example.com".into())
        );
    }

    #[test]
    fn plain_hosts_are_guessed_from() {
        for (host, https, url) in [
            ("tokens.example.com", true, "https://tokens.example.com"),
            ("127.0.0.1:8080", false, "http://127.0.0.1:8080"),
            ("[::1]:8080", false, "http://[::1]:8080"),
            ("[2001:db8::1]", true, "https://[2001:db8::1]"),
            ("localhost", false, "http://localhost"),
        ] {
            assert_eq!(guessed(host, https), BaseUrl::Guessed(url.into()), "{host}");
        }
    }

    #[test]
    fn anything_else_is_not() {
        for host in [
            "<script>alert(1)</script>",
            "evil.example/path",
            "user@evil.example",
            "a b",
            "example.com:99999",
            "example.com:",
            "-bad.example",
            "bad..example",
            "[::1",
            "[::1]x",
            "[zz::1]",
            "\"quoted\"",
            "",
        ] {
            assert_eq!(guessed(host, false), BaseUrl::Unknown, "{host:?}");
        }
    }

    #[test]
    fn since_is_strict() {
        assert_eq!(since_param(None), Ok(None));
        assert_eq!(since_param(Some("since=123")), Ok(Some(123)));
        assert_eq!(
            since_param(Some("since=abc")).map_err(|(field, _)| field),
            Err("since".to_owned())
        );
        assert_eq!(
            since_param(Some("since=1&view=a")).map_err(|(field, _)| field),
            Err("view".to_owned())
        );
    }
}
