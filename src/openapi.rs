//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every API
//! endpoint, ingest included. Written by hand, next to nothing; kept true
//! by `tests/it/openapi.rs`, which checks that every documented path is served,
//! every served API path is documented, and that real answers and requests
//! validate against the schemas given here.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::auth::{Gate, access};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Public: it says nothing the source does not.
pub fn routes(gate: &Gate) -> Router {
    access::public(
        Router::new().route("/api/v1/openapi.json", get(document)),
        gate,
    )
}

async fn document() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        DOCUMENT,
    )
}
