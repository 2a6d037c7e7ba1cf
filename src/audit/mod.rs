//! The audit trail: every access and data retrieval, every login, admin
//! action, token and price change, as an append-only, hash-chained table.
//!
//! Requests are recorded by one middleware ([`trail`]) from what the
//! handler noted ([`Note`]) and what the request was (route, address,
//! user agent, status). Entries go to a queue that a background task
//! writes in batches through the single writer, so a request pays for a
//! channel send, not for a commit. Commands run from the shell (CLI) append
//! their entry in the same transaction as their change.

pub mod chain;
pub mod head;
pub mod key;
mod queue;
pub mod sample;
mod trail;
mod views;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

pub use chain::{BrokenLink, ChainReport, StoredEntry};
pub use queue::Audit;
pub use trail::{ActorSlot, Note, RequestMeta, trail};

use crate::app::AppState;
use crate::auth::{User, UserId};

/// What happened: a stable code, part of the product (exports and
/// compliance scripts filter on it). Add codes; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    LoginFailure,
    LoginThrottled,
    Logout,
    Setup,
    PageView,
    UsageRead,
    EventsRead,
    EventsExport,
    AuditRead,
    AuditExport,
    IngestRequest,
    AccessDenied,
    Request,
    ProfileUpdate,
    PasswordChange,
    SessionsRevoke,
    UserCreate,
    UserDisable,
    UserEnable,
    UserRoleChange,
    UserPasswordReset,
    TokenCreate,
    TokenRevoke,
    PriceSet,
    PriceRemove,
    AuditPurge,
    DataRepair,
    AuditKeyed,
}

impl Action {
    pub const ALL: [Action; 29] = [
        Action::Login,
        Action::LoginFailure,
        Action::LoginThrottled,
        Action::Logout,
        Action::Setup,
        Action::PageView,
        Action::UsageRead,
        Action::EventsRead,
        Action::EventsExport,
        Action::AuditRead,
        Action::AuditExport,
        Action::IngestRequest,
        Action::AccessDenied,
        Action::Request,
        Action::ProfileUpdate,
        Action::PasswordChange,
        Action::SessionsRevoke,
        Action::UserCreate,
        Action::UserDisable,
        Action::UserEnable,
        Action::UserRoleChange,
        Action::UserPasswordReset,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::PriceSet,
        Action::PriceRemove,
        Action::AuditPurge,
        Action::DataRepair,
        Action::AuditKeyed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Action::Login => "login.success",
            Action::LoginFailure => "login.failure",
            Action::LoginThrottled => "login.throttled",
            Action::Logout => "logout",
            Action::Setup => "setup.complete",
            Action::PageView => "page.view",
            Action::UsageRead => "usage.read",
            Action::EventsRead => "events.read",
            Action::EventsExport => "events.export",
            Action::AuditRead => "audit.read",
            Action::AuditExport => "audit.export",
            Action::IngestRequest => "ingest.request",
            Action::AccessDenied => "access.denied",
            Action::Request => "http.request",
            Action::ProfileUpdate => "profile.update",
            Action::PasswordChange => "password.change",
            Action::SessionsRevoke => "sessions.revoke",
            Action::UserCreate => "user.create",
            Action::UserDisable => "user.disable",
            Action::UserEnable => "user.enable",
            Action::UserRoleChange => "user.role",
            Action::UserPasswordReset => "user.password_reset",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::PriceSet => "price.set",
            Action::PriceRemove => "price.remove",
            Action::AuditPurge => "audit.purge",
            Action::DataRepair => "data.repair",
            Action::AuditKeyed => "audit.keyed",
        }
    }

    pub fn from_code(code: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == code)
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Anonymous,
    User {
        id: UserId,
        name: String,
    },
    /// An API token, recorded under its owner with the token's id.
    Token {
        owner: UserId,
        owner_name: String,
        token: i64,
    },
    /// The server itself or the command line (`cli`, `retention`).
    System(String),
}

impl Actor {
    pub fn user(user: &User) -> Actor {
        Actor::User {
            id: user.id,
            name: user.username.clone(),
        }
    }

    /// (actor_kind, actor_id, actor_name) columns.
    fn columns(&self) -> (&'static str, Option<i64>, Option<String>) {
        match self {
            Actor::Anonymous => ("anonymous", None, None),
            Actor::User { id, name } => ("user", Some(id.0), Some(name.clone())),
            Actor::Token {
                owner,
                owner_name,
                token,
            } => (
                "token",
                Some(owner.0),
                Some(format!("{owner_name} (token {token})")),
            ),
            Actor::System(label) => ("system", None, Some(label.clone())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    /// 2xx and 3xx succeeded; 401 and 403 were denied; the rest failed.
    pub fn of_status(status: axum::http::StatusCode) -> Outcome {
        match status.as_u16() {
            200..=399 => Outcome::Success,
            401 | 403 => Outcome::Denied,
            _ => Outcome::Failure,
        }
    }
}

/// One audit entry before it is chained.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at_ms: i64,
    pub actor: Actor,
    pub action: Action,
    pub target: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub route: Option<String>,
    pub outcome: Outcome,
    pub details: Value,
}

impl Entry {
    pub fn new(at_ms: i64, actor: Actor, action: Action, outcome: Outcome) -> Entry {
        Entry {
            at_ms,
            actor,
            action,
            target: None,
            client_addr: None,
            user_agent: None,
            route: None,
            outcome,
            details: json!({}),
        }
    }

    /// An entry for a change made from the command line, by the operator.
    pub fn from_cli(
        at_ms: i64,
        action: Action,
        target: impl Into<String>,
        details: Value,
    ) -> Entry {
        Entry {
            target: Some(target.into()),
            details,
            ..Entry::new(at_ms, Actor::System("cli".into()), action, Outcome::Success)
        }
    }
}

/// Records a change made from the command line, in the change's own
/// transaction (so the change and its entry land together or not at all).
pub fn record_cli(
    conn: &rusqlite::Connection,
    action: Action,
    target: impl Into<String>,
    details: Value,
) -> Result<(), crate::db::DbError> {
    let at_ms = jiff::Timestamp::now().as_millisecond();
    chain::append(conn, &[Entry::from_cli(at_ms, action, target, details)])
}

/// The admin's audit pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(views::page))
        .route("/admin/audit.csv", get(views::export))
}
