//! CSRF protection: every state-changing request that rides on the session
//! cookie must carry the session's secret token, either as the
//! `csrf_token` form field or the `X-CSRF-Token` header. A cross-site page
//! can make the browser send the cookie, but it cannot read the token.
//! Requests authenticated by a bearer token carry no ambient credential
//! and are exempt.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::session::session_error;
use super::takes_token;
use crate::app::AppState;
use crate::error::AppError;
use crate::secret::{constant_time_eq, random_token};

const CSRF_KEY: &str = "csrf";
/// The form field and header that carry the token.
pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Largest form read to find the token; our forms are small.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The session's CSRF token, created on first use (the login page creates
/// one for the anonymous session, so the login form is covered too).
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session
        .get::<String>(CSRF_KEY)
        .await
        .map_err(session_error)?
    {
        return Ok(token);
    }
    let token = random_token();
    session
        .insert(CSRF_KEY, token.clone())
        .await
        .map_err(session_error)?;
    Ok(token)
}

/// The middleware: rejects a state-changing cookie request without the
/// right token with 403, before any handler runs.
pub async fn protect(
    State(_state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if is_safe(request.method()) || bearer_request(&request) {
        return next.run(request).await;
    }
    let expected = match session.get::<String>(CSRF_KEY).await {
        Ok(token) => token,
        Err(e) => return session_error(e).into_response(),
    };
    let (request, presented) = match presented_token(request).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match (expected, presented) {
        (Some(expected), Some(presented)) if constant_time_eq(&expected, &presented) => {
            next.run(request).await
        }
        _ => rejection(),
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A request that is authenticated by a bearer token alone, never by the
/// cookie: every request on an ingest path (no token, no entry: 401), and
/// a bearer request on a path that takes a token.
fn bearer_request(request: &Request) -> bool {
    let path = request.uri().path();
    if crate::ingest::TOKEN_PATHS.contains(&path) {
        return true;
    }
    takes_token(path)
        && request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("bearer "))
}

/// The token from the header, or from the form body (which is read and
/// put back for the handler).
async fn presented_token(request: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(token) = request.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        let token = token.to_owned();
        return Ok((request, Some(token)));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge("The form is too large.".into()).into_response())?;
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn rejection() -> Response {
    let message =
        "This form has expired or did not come from tokentally. Reload the page and try again.";
    (
        StatusCode::FORBIDDEN,
        crate::error::error_page(StatusCode::FORBIDDEN, message),
    )
        .into_response()
}
