//! Security headers on every response: a strict Content-Security-Policy
//! (our own scripts and styles only: no inline script, no inline style,
//! no framing), no MIME sniffing, no referrer beyond our origin.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// `data:` images only for the SVG favicon a browser may inline; chart
/// canvases need nothing else.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// HSTS, when users reach us over HTTPS (built-in TLS, an https public URL,
/// or `--secure-cookies` behind a TLS proxy).
const HSTS: &str = "max-age=31536000";

/// Whether to send HSTS: users reach us over HTTPS.
#[derive(Debug, Clone, Copy)]
pub struct Hsts(pub bool);

pub async fn security_headers(
    axum::extract::State(Hsts(hsts)): axum::extract::State<Hsts>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if hsts {
        set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}

/// `Cache-Control: no-store`, for a response no cache may keep: a page
/// that shows a secret once (the browser's back button included), or an
/// answer that changes from one second to the next.
pub fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}
