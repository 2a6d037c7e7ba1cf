//! Authentication and access: passwords, sessions, API tokens and their
//! rate limit, first-run setup, and the extractors and route groups that
//! turn a request into a user or turn it away.
//!
//! Login is required by default: every route belongs to one of the groups
//! of [`access`], declared where the routes are; only the routes put in
//! [`access::public`] are reachable without a session or a token.
//! The pages (sign-in, profile, tokens, users) are in `web::account`.

pub mod access;
pub mod csrf;
mod extract;
mod gate;
pub mod invites;
mod limit;
mod password;
pub mod session;
pub mod session_store;
pub mod setup;
mod throttle;
pub mod tokens;
pub mod users;

/// Kept here too: older code and scripts name it `auth::CurrentUser`.
pub use crate::model::CurrentUser;
pub use extract::{IngestToken, Reader, RequireAdmin, Viewer, safe_next};
pub use gate::Gate;
pub use limit::RateLimiter;
pub use password::{
    HashCost, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PasswordError, Passwords, check_new_password,
};
pub use session::SessionPolicy;
pub(crate) use session::session_error;
pub use session_store::SqliteSessionStore;
pub use throttle::LoginThrottle;
pub use users::{Role, User, UserId};
