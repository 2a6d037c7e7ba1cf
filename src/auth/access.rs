//! Access declared with the routes. Every route belongs to one group —
//! [`public`], [`signed_in`], [`admin`], [`ingest_token`] or
//! [`read_token`] — and the group's layers run in front of its handlers.
//! There is no list of paths anywhere else: what a route requires is
//! written where the route is.
//!
//! Each group, outermost first: marks the request with its
//! [`Access`] (the audit trail and the extractors read it), then its
//! checks (a session; the CSRF token of a cookie request), then the audit
//! trail, then (admin group) the admin check, then the handler. A request
//! turned away for want of a session or a CSRF token never reaches the
//! trail, as before the groups; a member refused an admin route is
//! recorded. Token groups check their token in the handler's
//! extractor ([`IngestToken`](super::IngestToken),
//! [`Reader`](super::Reader)), which cannot run without one.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::extract::has_bearer;
use super::gate::Gate;
use super::session::{session_error, signed_in_user};
use super::{User, csrf, users};
use crate::audit::trail;
use crate::error::{ApiError, AppError};
use crate::model::{Access, CurrentUser};

/// Anyone may call these: sign-in, first-run setup, health checks,
/// assets, the API description. Forms still need their CSRF token.
pub fn public<S: Clone + Send + Sync + 'static>(routes: Router<S>, gate: &Gate) -> Router<S> {
    routes
        .layer(middleware::from_fn_with_state(gate.trail.clone(), trail))
        .layer(middleware::from_fn(csrf::protect))
        .layer(middleware::map_request(mark(Access::Public)))
}

/// A signed-in, enabled user (any role). Pages send anyone else to the
/// sign-in page and back.
pub fn signed_in<S: Clone + Send + Sync + 'static>(routes: Router<S>, gate: &Gate) -> Router<S> {
    routes
        .layer(middleware::from_fn_with_state(gate.trail.clone(), trail))
        .layer(middleware::from_fn(csrf::protect))
        .layer(middleware::from_fn_with_state(
            gate.clone(),
            require_session,
        ))
        .layer(middleware::map_request(mark(Access::SignedIn)))
}

/// A signed-in admin; other users get 403. Handlers still take
/// [`RequireAdmin`](super::RequireAdmin), so that a route moved out of
/// this group by mistake stays closed.
pub fn admin<S: Clone + Send + Sync + 'static>(routes: Router<S>, gate: &Gate) -> Router<S> {
    // The admin check runs inside the trail: a member's attempt is
    // recorded (`access.denied`).
    routes
        .layer(middleware::from_fn(require_admin))
        .layer(middleware::from_fn_with_state(gate.trail.clone(), trail))
        .layer(middleware::from_fn(csrf::protect))
        .layer(middleware::from_fn_with_state(
            gate.clone(),
            require_session,
        ))
        .layer(middleware::map_request(mark(Access::Admin)))
}

/// An API token of the ingest scope, and nothing else: no session, no
/// CSRF (no ambient credential). The handler's `IngestToken` checks it.
pub fn ingest_token<S: Clone + Send + Sync + 'static>(routes: Router<S>, gate: &Gate) -> Router<S> {
    routes
        .layer(middleware::from_fn_with_state(gate.trail.clone(), trail))
        .layer(middleware::map_request(mark(Access::IngestToken)))
}

/// A read-scope API token (checked by the handler's `Reader`), or else a
/// signed-in session; programs get JSON errors.
pub fn read_token<S: Clone + Send + Sync + 'static>(routes: Router<S>, gate: &Gate) -> Router<S> {
    routes
        .layer(middleware::from_fn_with_state(gate.trail.clone(), trail))
        .layer(middleware::from_fn_with_state(
            gate.clone(),
            require_session_or_bearer,
        ))
        .layer(middleware::map_request(mark(Access::ReadToken)))
}

/// The layer that puts the group into the request.
fn mark(
    access: Access,
) -> impl Fn(Request) -> std::future::Ready<Request> + Clone + Send + Sync + 'static {
    move |mut request: Request| {
        request.extensions_mut().insert(access);
        std::future::ready(request)
    }
}

/// A session of an enabled user, whose [`CurrentUser`] it attaches for the
/// handler and the audit trail.
async fn require_session(
    State(gate): State<Gate>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    match session_user(&gate, &session).await {
        Ok(Some(user)) => {
            // The trail, inside the group, names this user as the actor.
            request.extensions_mut().insert(CurrentUser(user));
            next.run(request).await
        }
        Ok(None) => login_redirect(&request),
        Err(e) => e.into_response(),
    }
}

/// A bearer request goes on to its token extractor; any other needs a
/// session.
async fn require_session_or_bearer(
    State(gate): State<Gate>,
    request: Request,
    next: Next,
) -> Response {
    if has_bearer(request.headers()) {
        return next.run(request).await;
    }
    // The session layer (`app::router`) puts it there for every request.
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return AppError::internal("no session layer in front of the read routes").into_response();
    };
    require_session(State(gate), session, request, next).await
}

async fn require_admin(request: Request, next: Next) -> Response {
    match request.extensions().get::<CurrentUser>() {
        Some(CurrentUser(user)) if user.is_admin() => next.run(request).await,
        _ => AppError::Forbidden.into_response(),
    }
}

/// The enabled user behind this session, if any, within its timeouts. A
/// session that points to a missing or disabled user is ended.
async fn session_user(state: &Gate, session: &Session) -> Result<Option<User>, AppError> {
    let now = state.now_unix();
    let Some(user_id) = signed_in_user(session, &state.sessions, now).await? else {
        return Ok(None);
    };
    let user = state
        .db
        .read(move |conn| users::by_id(conn, user_id))
        .await?;
    match user {
        Some(user) if !user.disabled => Ok(Some(user)),
        _ => {
            session.flush().await.map_err(session_error)?;
            Ok(None)
        }
    }
}

/// Pages send the visitor to the login page (and back afterwards); API
/// clients get a plain 401.
fn login_redirect(request: &Request) -> Response {
    let api = request
        .extensions()
        .get::<Access>()
        .is_some_and(|a| a.is_api());
    if api {
        return ApiError::unauthorized("login required").into_response();
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    if wanted == "/" {
        return Redirect::to("/login").into_response();
    }
    let next = url_encode(wanted);
    Redirect::to(&format!("/login?next={next}")).into_response()
}

fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_next() {
        assert_eq!(
            url_encode("/events?a=b&c=d e"),
            "/events%3Fa%3Db%26c%3Dd%20e"
        );
    }
}
