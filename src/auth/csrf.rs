//! CSRF protection: every state-changing request that rides on the session
//! cookie must carry the session's secret token, either as the
//! `csrf_token` form field or the `X-CSRF-Token` header. A cross-site page
//! can make the browser send the cookie, but it cannot read the token.
//! Requests authenticated by a bearer token carry no ambient credential:
//! their route groups (`auth::access`) have no CSRF layer.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::session::session_error;
use crate::error::AppError;
use crate::secret::{constant_time_eq, hex, random_token};

const CSRF_KEY: &str = "csrf";
/// The form field and header that carry the token.
pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Largest form read to find the token; our forms are small.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The session's CSRF token, masked afresh for this page (see [`mask`]),
/// created on first use (the login page creates one for the anonymous
/// session, so the login form is covered too).
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session
        .get::<String>(CSRF_KEY)
        .await
        .map_err(session_error)?
    {
        return Ok(mask(&token));
    }
    let token = random_token();
    session
        .insert(CSRF_KEY, token.clone())
        .await
        .map_err(session_error)?;
    Ok(mask(&token))
}

/// `token` XORed with a fresh random pad, sent as `hex(pad) hex(masked)`.
/// Pages are gzipped, and a page holds both the token and text an
/// attacker can put in the URL (filters); with the same bytes in every
/// page, the compressed length would leak the token a guess at a time
/// (BREACH). Masked, the bytes differ on every page and nothing repeats.
pub fn mask(token: &str) -> String {
    let token = token.as_bytes();
    let mut pad = vec![0u8; token.len()];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut pad);
    let masked: Vec<u8> = token.iter().zip(&pad).map(|(t, p)| t ^ p).collect();
    format!("{}{}", hex(&pad), hex(&masked))
}

/// The token a masked one stands for; `None` if it is not one.
fn unmask(presented: &str) -> Option<String> {
    let bytes = unhex(presented)?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let (pad, masked) = bytes.split_at(bytes.len() / 2);
    let token: Vec<u8> = masked.iter().zip(pad).map(|(m, p)| m ^ p).collect();
    String::from_utf8(token).ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.is_ascii() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The middleware: rejects a state-changing cookie request without the
/// right token with 403, before any handler runs.
pub async fn protect(session: Session, request: Request, next: Next) -> Response {
    if is_safe(request.method()) {
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
    match (expected, presented.as_deref().and_then(unmask)) {
        (Some(expected), Some(presented)) if constant_time_eq(&expected, &presented) => {
            next.run(request).await
        }
        _ => rejection(),
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_differ_and_unmask_to_the_token() {
        let token = random_token();
        let (a, b) = (mask(&token), mask(&token));
        assert_ne!(a, b, "a fresh pad each time");
        assert!(!a.contains(&token));
        assert_eq!(unmask(&a).as_deref(), Some(token.as_str()));
        assert_eq!(unmask(&b).as_deref(), Some(token.as_str()));
        // The bare token, or a tampered mask, is not the token.
        assert_ne!(unmask(&token).as_deref(), Some(token.as_str()));
        let mut tampered = a.clone().into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_ne!(unmask(&tampered).as_deref(), Some(token.as_str()));
        assert_eq!(unmask("zz"), None);
        assert_eq!(unmask(""), None);
        assert_eq!(unmask("é1"), None);
    }
}
