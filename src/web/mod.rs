//! The pages people look at: the shared layout, embedded assets, number
//! and date formatting, the URL state and time controls every data page
//! shares, the charts, and the pages themselves.

pub mod assets;
mod chart;
mod controls;
mod events;
pub mod flash;
pub use crate::model::format;
pub mod headers;
pub mod layout;
mod overview;
mod prices;
mod team;
pub mod url;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/events", get(events::page))
        .route("/team", get(team::page))
        .route("/admin/prices", get(prices::page).post(prices::set))
        .route("/admin/prices/remove", post(prices::remove))
        .route("/assets/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
}
