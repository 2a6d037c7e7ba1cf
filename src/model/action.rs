//! The audit vocabulary: what happened (stable codes), who acted, and how
//! it ended. Every capability notes its actions in these words.

use super::user::{User, UserId};

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
    IdentityLink,
    IdentityUnlink,
    IdentityCreateUser,
    IdentityIgnore,
    IdentityUnignore,
    InviteIssue,
    InviteAccept,
    TeamCreate,
    TeamMemberAdd,
    TeamMemberMove,
    TeamMemberRemove,
    TeamLead,
    PriceSync,
    BudgetCreate,
    BudgetRemove,
    ChannelCreate,
    ChannelRemove,
    ChannelTest,
    AlertSent,
    AlertsRead,
}

impl Action {
    pub const ALL: [Action; 49] = [
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
        Action::IdentityLink,
        Action::IdentityUnlink,
        Action::IdentityCreateUser,
        Action::IdentityIgnore,
        Action::IdentityUnignore,
        Action::InviteIssue,
        Action::InviteAccept,
        Action::TeamCreate,
        Action::TeamMemberAdd,
        Action::TeamMemberMove,
        Action::TeamMemberRemove,
        Action::TeamLead,
        Action::PriceSync,
        Action::BudgetCreate,
        Action::BudgetRemove,
        Action::ChannelCreate,
        Action::ChannelRemove,
        Action::ChannelTest,
        Action::AlertSent,
        Action::AlertsRead,
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
            Action::IdentityLink => "identity.link",
            Action::IdentityUnlink => "identity.unlink",
            Action::IdentityCreateUser => "identity.create_user",
            Action::IdentityIgnore => "identity.ignore",
            Action::IdentityUnignore => "identity.unignore",
            Action::InviteIssue => "invite.issue",
            Action::InviteAccept => "invite.accept",
            Action::TeamCreate => "team.create",
            Action::TeamMemberAdd => "team.member_add",
            Action::TeamMemberMove => "team.member_move",
            Action::TeamMemberRemove => "team.member_remove",
            Action::TeamLead => "team.lead",
            Action::PriceSync => "price.sync",
            Action::BudgetCreate => "budget.create",
            Action::BudgetRemove => "budget.remove",
            Action::ChannelCreate => "channel.create",
            Action::ChannelRemove => "channel.remove",
            Action::ChannelTest => "channel.test",
            Action::AlertSent => "alert.sent",
            Action::AlertsRead => "alerts.read",
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
    pub(crate) fn columns(&self) -> (&'static str, Option<i64>, Option<String>) {
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
