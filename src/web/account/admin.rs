//! `/admin/users`: create users, disable or enable them, change roles,
//! reset passwords, sign a user out everywhere, give a member who has no
//! password yet a fresh setup link. The last enabled admin can
//! be neither demoted nor disabled.

use std::collections::HashSet;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::{flash, notices, when};
use crate::audit::Note;
use crate::auth::invites::{self, InviteError};
use crate::auth::session_store::delete_user_sessions;
use crate::auth::{RequireAdmin, Viewer, check_new_password};
use crate::auth::{users, users::NewUser, users::Profile, users::UserError};
use crate::error::AppError;
use crate::model::Action;
use crate::model::{Role, User, UserId};
use crate::secret::random_password;
use crate::web::WebState;
use crate::web::layout;
use crate::web::page::PageContext;

pub async fn page(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    mut context: PageContext,
) -> Result<(Note, Markup), AppError> {
    context.take_flash().await?;
    let people = state.db.read(People::read).await?;
    let note = Note::new(Action::PageView).details(json!({"page": "admin.users"}));
    Ok((note, render(&context, &people, None, None)))
}

/// Everyone, and who has no password yet.
struct People {
    all: Vec<User>,
    /// Created without a password (from an identity): waiting for their
    /// setup link.
    awaiting: HashSet<UserId>,
}

impl People {
    fn read(conn: &rusqlite::Connection) -> Result<People, crate::db::DbError> {
        Ok(People {
            all: users::list(conn)?,
            awaiting: users::without_password(conn)?.into_iter().collect(),
        })
    }
}

/// A secret made for someone, shown once to the admin: a generated
/// password, or a setup link.
struct Issued<'a> {
    username: &'a str,
    secret: &'a str,
    link: bool,
}

fn render(
    context: &PageContext,
    people: &People,
    error: Option<&str>,
    issued: Option<&Issued<'_>>,
) -> Markup {
    let viewer = &context.viewer;
    let all = &people.all;
    let body = html! {
        h1 { "Users" }
        (notices(context.flash.as_deref(), error))
        @if let Some(issued) = issued {
            section.card aria-labelledby="issued-title" {
                @if issued.link {
                    h2 #issued-title { "Setup link for " (issued.username) ": copy it now" }
                    p {
                        "It is shown only this once, works once and expires in 7 days; earlier links of "
                        (issued.username) " no longer work. Send it through a channel you trust."
                    }
                    pre { code #issued-link { (issued.secret) } }
                } @else {
                    h2 #issued-title { "Password for " (issued.username) ": copy it now" }
                    p { "It is shown only this once. Hand it over in person or through a channel you trust." }
                    pre { code #issued-password { (issued.secret) } }
                }
            }
        }
        section.card aria-labelledby="users-title" {
            h2 #users-title { "Everyone" }
            div.table-scroll {
                table {
                    thead { tr {
                        th scope="col" { "Username" }
                        th scope="col" { "Name" }
                        th scope="col" { "Role" }
                        th scope="col" { "Status" }
                        th scope="col" { "Created" }
                        th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for user in all {
                            (user_row(viewer, user, people.awaiting.contains(&user.id)))
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="create-title" {
            h2 #create-title { "Add a user" }
            form method="post" action="/admin/users" {
                (layout::csrf_field(&viewer.csrf))
                label for="new-username" { "Username" }
                input #new-username type="text" name="username" required maxlength="64"
                    autocapitalize="none" spellcheck="false";
                label for="new-display" { "Display name (optional)" }
                input #new-display type="text" name="display_name" maxlength="100";
                label for="new-email" { "Email (optional)" }
                input #new-email type="email" name="email" maxlength="254";
                label for="new-role" { "Role" }
                select #new-role name="role" {
                    option value="member" { "member: sees their own usage" }
                    option value="admin" { "admin: sees and manages everyone" }
                }
                p.hint { "A password is generated and shown once." }
                button type="submit" { "Add user" }
            }
        }
    };
    layout::page(context, "Users", body)
}

fn action_form(viewer: &Viewer, user: &User, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/admin/users/" (user.username) "/" (action) } {
            (layout::csrf_field(&viewer.csrf))
            button.link type="submit" aria-label={ (label) " " (user.username) } { (label) }
        }
    }
}

fn user_row(viewer: &Viewer, user: &User, awaiting: bool) -> Markup {
    html! {
        tr {
            th scope="row" {
                a href={ "/?view=" (user.username) } { (user.username) }
            }
            td { (user.display_name.as_deref().unwrap_or("")) }
            td { (user.role) }
            td {
                @if user.disabled { "disabled" }
                @else if awaiting { "no password yet" }
                @else { "active" }
            }
            td { (when(Some(user.created_at))) }
            td.actions {
                @if user.disabled {
                    (action_form(viewer, user, "enable", "Enable"))
                } @else {
                    (action_form(viewer, user, "disable", "Disable"))
                }
                @if user.is_admin() {
                    (action_form(viewer, user, "demote", "Make member"))
                } @else {
                    (action_form(viewer, user, "promote", "Make admin"))
                }
                @if awaiting {
                    (action_form(viewer, user, "invite", "New setup link"))
                }
                (action_form(viewer, user, "password", "Reset password"))
                (action_form(viewer, user, "sessions", "Sign out everywhere"))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    username: String,
    display_name: Option<String>,
    email: Option<String>,
    role: String,
}

fn optional(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

pub async fn create(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    context: PageContext,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let username = form.username.trim().to_owned();
    let note = Note::new(Action::UserCreate).target(format!("user:{username}"));
    let role: Role = match form.role.parse() {
        Ok(role) => role,
        Err(reason) => return refuse(&state, &context, note, &format!("role: {reason}")).await,
    };
    let profile = Profile {
        display_name: optional(form.display_name.as_deref()),
        email: optional(form.email.as_deref()),
        time_zone: None,
    };
    if let Err(e) = users::validate_username(&username).and(users::validate_profile(&profile)) {
        return refuse(&state, &context, note, &e.to_string()).await;
    }
    let (password, hash) = generated_password(&state).await?;
    let (name, now) = (username.clone(), state.now_unix());
    let created = state
        .db
        .write(move |conn| {
            let new = NewUser {
                username: &name,
                display_name: profile.display_name.as_deref(),
                role,
                password_hash: &hash,
            };
            let id = users::insert(conn, &new, now)?;
            users::update_profile(conn, id, &profile, now)?;
            Ok::<_, UserError>(id)
        })
        .await;
    match created {
        Ok(_) => {
            let note = note.details(json!({"role": role.as_str()}));
            let people = state.db.read(People::read).await?;
            let issued = Issued {
                username: &username,
                secret: &password,
                link: false,
            };
            let page = render(&context, &people, None, Some(&issued));
            Ok((StatusCode::CREATED, note, page).into_response())
        }
        Err(UserError::Db(e)) => Err(e.into()),
        Err(e) => refuse(&state, &context, note, &e.to_string()).await,
    }
}

async fn refuse(
    state: &WebState,
    context: &PageContext,
    note: Note,
    message: &str,
) -> Result<Response, AppError> {
    let people = state.db.read(People::read).await?;
    let page = render(context, &people, Some(message), None);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response())
}

/// What an admin can do to a user: the last path segment of
/// `/admin/users/{username}/{action}`. Every match on it is exhaustive, so
/// an action added here must be handled wherever actions are dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserAction {
    /// A change of the user's row (or sessions), made in the writer.
    Change(UserChange),
    /// A new generated password, hashed before the write and shown once.
    ResetPassword,
    /// A new one-time setup link for a member without a password, shown
    /// once.
    Invite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserChange {
    Disable,
    Enable,
    Promote,
    Demote,
    SignOutEverywhere,
}

impl UserAction {
    const ALL: [UserAction; 7] = [
        UserAction::Change(UserChange::Disable),
        UserAction::Change(UserChange::Enable),
        UserAction::Change(UserChange::Promote),
        UserAction::Change(UserChange::Demote),
        UserAction::Change(UserChange::SignOutEverywhere),
        UserAction::ResetPassword,
        UserAction::Invite,
    ];

    fn parse(segment: &str) -> Option<UserAction> {
        UserAction::ALL.into_iter().find(|a| a.segment() == segment)
    }

    fn segment(self) -> &'static str {
        match self {
            UserAction::Change(UserChange::Disable) => "disable",
            UserAction::Change(UserChange::Enable) => "enable",
            UserAction::Change(UserChange::Promote) => "promote",
            UserAction::Change(UserChange::Demote) => "demote",
            UserAction::Change(UserChange::SignOutEverywhere) => "sessions",
            UserAction::ResetPassword => "password",
            UserAction::Invite => "invite",
        }
    }
}

impl UserChange {
    /// The audit code, and how the notice ends ("ada is enabled.").
    fn code_and_outcome(self) -> (Action, &'static str) {
        match self {
            UserChange::Disable => (Action::UserDisable, "is disabled and signed out"),
            UserChange::Enable => (Action::UserEnable, "is enabled"),
            UserChange::Promote => (Action::UserRoleChange, "is now an admin"),
            UserChange::Demote => (Action::UserRoleChange, "is now a member"),
            UserChange::SignOutEverywhere => (Action::SessionsRevoke, "is signed out everywhere"),
        }
    }

    /// Makes the change to the user `name`, in the writer.
    fn apply(self, conn: &rusqlite::Connection, name: &str, now: i64) -> Result<(), UserError> {
        match self {
            UserChange::Disable => users::set_disabled(conn, name, true, now).map(|_| ()),
            UserChange::Enable => users::set_disabled(conn, name, false, now).map(|_| ()),
            UserChange::Promote => users::set_role(conn, name, Role::Admin, now).map(|_| ()),
            UserChange::Demote => users::set_role(conn, name, Role::Member, now).map(|_| ()),
            UserChange::SignOutEverywhere => {
                let user = users::by_name(conn, name)?
                    .ok_or_else(|| UserError::NotFound(name.to_owned()))?;
                delete_user_sessions(conn, user.id)?;
                Ok(())
            }
        }
    }
}

/// One admin action on one user, named by the last path segment.
pub async fn act(
    State(state): State<WebState>,
    RequireAdmin(admin): RequireAdmin,
    context: PageContext,
    session: Session,
    Path((username, segment)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let change = match UserAction::parse(&segment).ok_or(AppError::NotFound)? {
        UserAction::ResetPassword => return reset_password(state, context, username).await,
        UserAction::Invite => return issue_invite(state, context, username).await,
        UserAction::Change(change) => change,
    };
    let (code, done) = change.code_and_outcome();
    let note = Note::new(code)
        .target(format!("user:{username}"))
        .details(json!({"change": segment}));
    let now = state.now_unix();
    let name = username.clone();
    let changed = state
        .db
        .write(move |conn| change.apply(conn, &name, now))
        .await;
    match changed {
        Ok(()) => {
            tracing::info!(admin = %admin.id, "admin changed a user");
            flash(&session, format!("{username} {done}.")).await?;
            Ok((note, Redirect::to("/admin/users")).into_response())
        }
        Err(UserError::NotFound(_)) => Ok((note, AppError::NotFound).into_response()),
        Err(UserError::Db(e)) => Err(e.into()),
        Err(e) => refuse(&state, &context, note, &e.to_string()).await,
    }
}

/// Sets a generated password (shown once) and ends the user's sessions.
/// A new random password (shown once to the admin) and its hash.
async fn generated_password(state: &WebState) -> Result<(String, String), AppError> {
    let password = random_password();
    // A generated password meets the rules a typed one must meet.
    check_new_password(&password).map_err(AppError::internal)?;
    let hash = state
        .passwords
        .hash(password.clone())
        .await
        .map_err(AppError::internal)?;
    Ok((password, hash))
}

async fn reset_password(
    state: WebState,
    context: PageContext,
    username: String,
) -> Result<Response, AppError> {
    let note = Note::new(Action::UserPasswordReset).target(format!("user:{username}"));
    let (password, hash) = generated_password(&state).await?;
    let (name, now) = (username.clone(), state.now_unix());
    let changed = state
        .db
        .write(move |conn| users::set_password(conn, &name, &hash, now))
        .await;
    match changed {
        Ok(_) => {
            let people = state.db.read(People::read).await?;
            let issued = Issued {
                username: &username,
                secret: &password,
                link: false,
            };
            let page = render(&context, &people, None, Some(&issued));
            Ok((note, page).into_response())
        }
        Err(UserError::NotFound(_)) => Ok((note, AppError::NotFound).into_response()),
        Err(e) => Err(AppError::internal(e)),
    }
}

/// A fresh one-time setup link for a member who has no password yet
/// (earlier links stop working), shown once; only its digest is stored.
async fn issue_invite(
    state: WebState,
    context: PageContext,
    username: String,
) -> Result<Response, AppError> {
    let note = Note::new(Action::InviteIssue).target(format!("user:{username}"));
    let (name, now) = (username.clone(), state.now_unix());
    let issued = state
        .db
        .write(move |conn| {
            let user =
                users::by_name(conn, &name)?.ok_or_else(|| UserError::NotFound(name.clone()))?;
            invites::issue(conn, user.id, now)
        })
        .await;
    match issued {
        Ok(token) => {
            let note = note.details(json!({"expires_at": now + invites::INVITE_TTL_S}));
            let link = invites::link(state.link_base.as_deref(), &token);
            let people = state.db.read(People::read).await?;
            let issued = Issued {
                username: &username,
                secret: &link,
                link: true,
            };
            let page = render(&context, &people, None, Some(&issued));
            Ok((StatusCode::CREATED, note, page).into_response())
        }
        Err(InviteError::User(UserError::NotFound(_))) => {
            Ok((note, AppError::NotFound).into_response())
        }
        Err(InviteError::User(UserError::Db(e))) => Err(e.into()),
        Err(e) => refuse(&state, &context, note, &e.to_string()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::UserAction;

    #[test]
    fn every_action_round_trips_through_its_path_segment() {
        for action in UserAction::ALL {
            assert_eq!(UserAction::parse(action.segment()), Some(action));
        }
        assert_eq!(UserAction::parse("delete"), None);
        assert_eq!(UserAction::parse(""), None);
    }
}
