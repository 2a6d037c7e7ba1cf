//! Authentication and access: users, passwords, sessions, first-run setup,
//! login and logout, and the extractors that turn a request into a user.
//!
//! Login is required by default: [`require_login`] runs in front of every
//! route and lets through only the explicit [`PUBLIC_PATHS`] list.

pub mod csrf;
mod extract;
mod handlers;
mod pages;
mod password;
mod session;
pub mod session_store;
pub mod setup;
mod throttle;
pub mod tokens;
pub mod users;
mod views;

use axum::Router;
use axum::routing::{get, post};

pub use extract::{CurrentUser, IngestToken, Reader, RequireAdmin, Viewer, require_login};
pub use password::{
    HashCost, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PasswordError, Passwords, check_new_password,
};
pub use session::SessionPolicy;
pub(crate) use session::session_error;
pub use session_store::SqliteSessionStore;
pub use throttle::LoginThrottle;
pub use users::{Role, User, UserId};

use crate::app::AppState;

/// Paths reachable without logging in. Everything else redirects to the
/// login page (pages) or answers 401.
/// The API description is public: it says nothing the source does not.
pub const PUBLIC_PATHS: &[&str] = &[
    "/login",
    "/setup",
    "/healthz",
    "/readyz",
    "/favicon.ico",
    "/api/v1/openapi.json",
];
/// Path prefixes reachable without logging in.
pub const PUBLIC_PREFIXES: &[&str] = &["/assets/"];

pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Paths that take an API token: ingest paths take only a token (they
/// skip the login requirement, and their handlers cannot run without the
/// [`IngestToken`] extractor); read paths take a read token or a session
/// ([`Reader`]).
pub fn takes_token(path: &str) -> bool {
    crate::ingest::TOKEN_PATHS.contains(&path) || crate::usage::READ_TOKEN_PATHS.contains(&path)
}

/// Paths whose callers are programs: their errors are JSON, not pages.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/v1/") || path == "/metrics"
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(handlers::login_page).post(handlers::login))
        .route("/logout", post(handlers::logout))
        .route("/setup", get(handlers::setup_page).post(handlers::setup))
        .route(
            "/profile",
            get(pages::profile::page).post(pages::profile::update),
        )
        .route("/profile/password", post(pages::profile::change_password))
        .route(
            "/profile/sessions/revoke",
            post(pages::profile::sign_out_everywhere),
        )
        .route(
            "/tokens",
            get(pages::tokens::page).post(pages::tokens::create),
        )
        .route("/tokens/{id}/revoke", post(pages::tokens::revoke))
        .route(
            "/admin/users",
            get(pages::admin::page).post(pages::admin::create),
        )
        .route("/admin/users/{username}/{action}", post(pages::admin::act))
}
