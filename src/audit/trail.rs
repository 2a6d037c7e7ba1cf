//! The middleware that records one audit entry per request.
//!
//! Handlers say what a request meant with a [`Note`] in their response
//! (action, target, details such as the filters of a data read); requests
//! without one still get an entry from their method, path and status, so
//! nothing a signed-in user or a token does goes unrecorded. Public paths
//! (assets, health checks) are recorded only when a handler notes them
//! (login, setup).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponseParts, Response, ResponseParts};
use serde_json::Value;

use super::{Action, Actor, Audit, Entry, Outcome};
use crate::clock::Clock;
use crate::model::{Access, CurrentUser};

/// Longest user agent kept; the rest is cut (it is client-controlled).
const MAX_USER_AGENT: usize = 256;

/// What a handler says about its request, for the audit entry.
#[derive(Debug, Clone)]
pub struct Note {
    pub action: Action,
    pub target: Option<String>,
    pub details: Value,
    /// Who acted, when the handler knows better than the session (a login
    /// names the user who just signed in).
    pub actor: Option<Actor>,
    /// Overrides the outcome derived from the status.
    pub outcome: Option<Outcome>,
    /// The handler wrote the entry itself, in the transaction of the
    /// change it records (ingest): the trail adds nothing.
    pub recorded: bool,
    /// One row for this request even when it is a refused anonymous one
    /// (a failed sign-in against an existing account), not sampled.
    pub always: bool,
}

impl Note {
    pub fn new(action: Action) -> Note {
        Note {
            action,
            target: None,
            details: Value::Object(Default::default()),
            actor: None,
            outcome: None,
            recorded: false,
            always: false,
        }
    }

    /// Never sampled ([`super::sample`]): one row for this request.
    pub fn always_recorded(mut self) -> Note {
        self.always = true;
        self
    }

    pub fn recorded(mut self) -> Note {
        self.recorded = true;
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Note {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: Value) -> Note {
        self.details = details;
        self
    }

    pub fn actor(mut self, actor: Actor) -> Note {
        self.actor = Some(actor);
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Note {
        self.outcome = Some(outcome);
        self
    }
}

impl IntoResponseParts for Note {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

/// Where a token extractor leaves the token it accepted, so the entry
/// names the token even when the handler fails afterwards.
#[derive(Debug, Clone, Default)]
pub struct ActorSlot(Arc<Mutex<Option<Actor>>>);

impl ActorSlot {
    pub fn set(&self, actor: Actor) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(actor);
        }
    }

    fn take(&self) -> Option<Actor> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Where a request came from, as the audit records it.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// Method and path; never the query string, which may hold a secret
    /// (a setup token). Filters are recorded in the details instead.
    pub route: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    /// Put there by [`trail`]; empty outside it (never an error).
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_default())
    }
}

impl RequestMeta {
    /// The request's origin. Behind a trusted proxy the client is the
    /// last address in `X-Forwarded-For` that is not itself a trusted
    /// proxy; anyone else's header is ignored (it could say anything).
    pub fn of(request: &Request, trusted: &[std::net::IpAddr]) -> RequestMeta {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        // From the right: the entries our proxies appended, then the
        // client. An entry that is no address stops the walk (to the left
        // of it stands what the client itself wrote): the client is then
        // unknown beyond the proxy, which is what is recorded.
        let forwarded = || {
            let entries: Vec<&str> = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .map(|v| v.to_str().unwrap_or("?"))
                .flat_map(|v| v.split(','))
                .collect();
            for entry in entries.into_iter().rev() {
                let ip = forwarded_address(entry)?;
                if !trusted.contains(&ip) {
                    return Some(ip);
                }
            }
            None
        };
        let client = match peer {
            Some(ip) if trusted.contains(&ip) => forwarded().or(Some(ip)),
            other => other,
        };
        let client_addr = client.map(|ip| ip.to_string());
        let user_agent = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        RequestMeta {
            client_addr,
            user_agent,
            route: format!("{} {}", request.method(), recorded_path(request)),
        }
    }
}

/// The path as the audit records it: as requested, except on a route
/// whose path holds a secret (`/invite/{token}`), recorded as the route's
/// pattern so that the secret never reaches the trail.
fn recorded_path(request: &Request) -> &str {
    match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(route) if route.as_str().contains("{token}") => route.as_str(),
        _ => request.uri().path(),
    }
}

/// One `X-Forwarded-For` entry as an address: `203.0.113.5`, `2001:db8::1`,
/// or with a port as some proxies write it (`203.0.113.5:4711`,
/// `[2001:db8::1]:4711`).
fn forwarded_address(entry: &str) -> Option<std::net::IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// What the trail needs: the queue it records into, the clock, and the
/// proxies whose `X-Forwarded-For` it believes.
#[derive(Clone)]
pub struct TrailState {
    pub audit: Audit,
    pub clock: Arc<dyn Clock>,
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
}

/// Records the request's audit entry once the handler has answered. It
/// runs inside every route group (`auth::access`), after the group's
/// checks: a request they turn away (no session, a bad CSRF token) never
/// reaches a handler and is not recorded here.
pub async fn trail(State(state): State<TrailState>, mut request: Request, next: Next) -> Response {
    let meta = RequestMeta::of(&request, &state.trusted_proxies);
    let method = request.method().clone();
    let access = request.extensions().get::<Access>().copied();
    let session_user = request
        .extensions()
        .get::<CurrentUser>()
        .map(|CurrentUser(user)| Actor::user(user));
    let slot = ActorSlot::default();
    request.extensions_mut().insert(slot.clone());
    request.extensions_mut().insert(meta.clone());

    let response = next.run(request).await;

    let note = response.extensions().get::<Note>().cloned();
    let public = access == Some(Access::Public);
    if note.as_ref().is_some_and(|n| n.recorded) || (note.is_none() && public) {
        return response;
    }
    let status = response.status();
    let note = note.unwrap_or_else(|| Note::new(default_action(&method, access, status)));
    let always = note.always;
    let actor = note
        .actor
        .or_else(|| slot.take())
        .or(session_user)
        .unwrap_or(Actor::Anonymous);
    let mut details = note.details;
    if let Value::Object(map) = &mut details {
        map.insert("status".into(), status.as_u16().into());
    }
    let entry = Entry {
        at_ms: state.clock.now().as_millisecond(),
        actor,
        action: note.action,
        target: note.target,
        client_addr: meta.client_addr,
        user_agent: meta.user_agent,
        route: Some(meta.route),
        outcome: note.outcome.unwrap_or_else(|| Outcome::of_status(status)),
        details,
    };
    // Refused anonymous requests are counted, one row per window
    // (`audit::sample`); everything else gets its own row.
    if entry.actor == Actor::Anonymous && status.is_client_error() && !always {
        state.audit.record_refused(entry).await;
    } else {
        state.audit.record(entry).await;
    }
    response
}

/// The action of a request whose handler noted none.
fn default_action(method: &Method, access: Option<Access>, status: StatusCode) -> Action {
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        Action::AccessDenied
    } else if method == Method::POST && access == Some(Access::IngestToken) {
        Action::IngestRequest
    } else if method == Method::GET {
        Action::PageView
    } else {
        Action::Request
    }
}
