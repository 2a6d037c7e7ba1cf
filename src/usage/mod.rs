//! The usage store: raw events, their rollups, prices, and the one query
//! layer every page, export and report goes through. Every query takes a
//! [`Scope`], so what a caller may see is decided by its type, not by a
//! parameter it could forge.

pub mod api;
pub mod arrivals;
pub mod buckets;
pub mod budget;
pub mod catalogue;
mod cells;
pub mod dims;
pub mod events;
pub mod identities;
pub use crate::model::limits;
pub mod params;
pub mod plan;
pub mod price_list;
pub mod price_sync;
pub mod prices;
pub mod query;
pub mod rates;
pub mod repair;
pub mod report;
pub mod reprice;
pub mod rollup;
mod segments;
pub mod store;
pub mod summary;
pub mod unassigned;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{MethodRouter, get};

use crate::auth::{Gate, access};
use crate::clock::Clock;
use crate::db::Db;

/// The fields of one event, as the ingest API takes them and the read API
/// and CSV export give them back. Part of the product: add, never rename.
pub const EVENT_FIELDS: [&str; 15] = [
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
    "session",
    "machine",
];

/// Optional counts the event API takes for pricing (issue 15), kept on the
/// stored event and given back by the events API and the CSV export.
pub const PRICE_FIELDS: [&str; 2] = ["cache_write_1h_tokens", "web_search_requests"];

/// What the read API needs, handed out by the application.
#[derive(Clone)]
pub struct UsageState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// The unit the answers' `cost_in_unit` and `unit` are in.
    pub unit: Arc<crate::model::Unit>,
    pub gate: Gate,
    /// The instance's zone, for users without their own (the summary's
    /// calendar periods).
    pub time_zone: Option<String>,
}

impl FromRef<UsageState> for Gate {
    fn from_ref(state: &UsageState) -> Gate {
        state.gate.clone()
    }
}

/// The read API. The router is built from this table, and [`paths`]
/// reads it (the API description's test compares the two).
fn endpoints() -> [(&'static str, MethodRouter<UsageState>); 6] {
    [
        ("/api/v1/usage", get(api::usage)),
        ("/api/v1/usage/events", get(api::events_page)),
        ("/api/v1/usage/events.csv", get(api::events_csv)),
        // The names the read API was specified with; GET beside the ingest
        // POST on the same path. The `usage/` forms above stay for scripts
        // written against them.
        ("/api/v1/events", get(api::events_page)),
        ("/api/v1/events.csv", get(api::events_csv)),
        // Today, this week, this month: for status bars.
        ("/api/v1/summary", get(summary::summary)),
    ]
}

/// The paths this module serves.
pub fn paths() -> Vec<&'static str> {
    endpoints().into_iter().map(|(path, _)| path).collect()
}

/// The read API: a session, or a read-scope API token.
pub fn routes(state: UsageState) -> Router {
    let routes = endpoints()
        .into_iter()
        .fold(Router::new(), |routes, (path, handler)| {
            routes.route(path, handler)
        });
    access::read_token(routes, &state.gate).with_state(state)
}

pub use crate::model::{Overflow, Scope, Totals};
