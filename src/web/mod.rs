//! The pages people look at: the shared layout, embedded assets, number
//! formatting, and the dashboard.

pub mod assets;
mod dashboard;
pub mod format;
pub mod layout;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/assets/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
}
