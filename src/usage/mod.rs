//! The usage store: raw events, their rollups, prices, and the one query
//! layer every page, export and report goes through. Every query takes a
//! [`Scope`], so what a caller may see is decided by its type, not by a
//! parameter it could forge.

pub mod api;
pub mod buckets;
pub mod budget;
pub mod dims;
pub mod events;
pub use crate::model::limits;
pub mod params;
pub mod plan;
pub mod prices;
pub mod query;
pub mod repair;
pub mod report;
pub mod reprice;
pub mod rollup;
pub mod store;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

/// The fields of one event, as the ingest API takes them and the read API
/// and CSV export give them back. Part of the product: add, never rename.
pub const EVENT_FIELDS: [&str; 13] = [
    "id",
    "timestamp",
    "user",
    "model",
    "provider",
    "activity",
    "project",
    "source",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost",
];

/// Read paths that take a read-scope API token as well as a session.
pub const READ_TOKEN_PATHS: &[&str] = &[
    "/metrics",
    "/api/v1/usage",
    "/api/v1/usage/events",
    "/api/v1/usage/events.csv",
    "/api/v1/events",
    "/api/v1/events.csv",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/usage", get(api::usage))
        .route("/api/v1/usage/events", get(api::events_page))
        .route("/api/v1/usage/events.csv", get(api::events_csv))
        // The names the read API was specified with; GET beside the ingest
        // POST on the same path. The `usage/` forms above stay for scripts
        // written against them.
        .route("/api/v1/events", get(api::events_page))
        .route("/api/v1/events.csv", get(api::events_csv))
}

pub use crate::model::{Overflow, Scope, Totals};
