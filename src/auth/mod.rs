//! Authentication and access: users, passwords, sessions, first-run setup,
//! login and logout, and the extractors that turn a request into a user.
//!
//! Login is required by default: [`require_login`] runs in front of every
//! route and lets through only the explicit [`PUBLIC_PATHS`] list.

mod extract;
mod handlers;
mod password;
pub mod session_store;
pub mod setup;
pub mod tokens;
pub mod users;
mod views;

use axum::Router;
use axum::routing::{get, post};

pub use extract::{CurrentUser, IngestToken, RequireAdmin, require_login};
pub use password::{
    HashCost, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PasswordError, Passwords, check_new_password,
};
pub use session_store::SqliteSessionStore;
pub use users::{Role, User, UserId};

use crate::app::AppState;

/// Paths reachable without logging in. Everything else redirects to the
/// login page (pages) or answers 401.
pub const PUBLIC_PATHS: &[&str] = &["/login", "/setup", "/healthz", "/readyz", "/favicon.ico"];
/// Path prefixes reachable without logging in.
pub const PUBLIC_PREFIXES: &[&str] = &["/assets/"];

pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Paths authenticated by an API token rather than a session: they skip
/// the login requirement, and their handlers cannot run without the
/// token extractor ([`IngestToken`]) succeeding.
pub fn takes_token(path: &str) -> bool {
    crate::ingest::TOKEN_PATHS.contains(&path)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(handlers::login_page).post(handlers::login))
        .route("/logout", post(handlers::logout))
        .route("/setup", get(handlers::setup_page).post(handlers::setup))
}
