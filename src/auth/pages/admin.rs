//! `/admin/users`: create users, disable or enable them, change roles,
//! reset passwords, sign a user out everywhere. The last enabled admin can
//! be neither demoted nor disabled.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::{flash, notices, take_flash, when};
use crate::app::AppState;
use crate::audit::Note;
use crate::auth::session_store::delete_user_sessions;
use crate::auth::{RequireAdmin, Viewer, check_new_password};
use crate::auth::{users, users::NewUser, users::Profile, users::UserError};
use crate::error::AppError;
use crate::model::Action;
use crate::model::{Role, User};
use crate::secret::random_password;
use crate::web::layout;

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    viewer: Viewer,
    session: Session,
) -> Result<(Note, Markup), AppError> {
    let flash = take_flash(&session).await?;
    let all = state.db.read(users::list).await?;
    let note = Note::new(Action::PageView).details(json!({"page": "admin.users"}));
    Ok((
        note,
        render(&state, &viewer, &all, flash.as_deref(), None, None),
    ))
}

/// A password generated for someone, shown once to the admin.
struct Issued<'a> {
    username: &'a str,
    password: &'a str,
}

fn render(
    state: &AppState,
    viewer: &Viewer,
    all: &[User],
    flash: Option<&str>,
    error: Option<&str>,
    issued: Option<&Issued<'_>>,
) -> Markup {
    let body = html! {
        h1 { "Users" }
        (notices(flash, error))
        @if let Some(issued) = issued {
            section.card aria-labelledby="issued-title" {
                h2 #issued-title { "Password for " (issued.username) ": copy it now" }
                p { "It is shown only this once. Hand it over in person or through a channel you trust." }
                pre { code #issued-password { (issued.password) } }
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
                        @for user in all { (user_row(viewer, user)) }
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
    layout::page(&state.assets, Some(viewer), "Users", body)
}

fn action_form(viewer: &Viewer, user: &User, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/admin/users/" (user.username) "/" (action) } {
            (layout::csrf_field(&viewer.csrf))
            button.link type="submit" aria-label={ (label) " " (user.username) } { (label) }
        }
    }
}

fn user_row(viewer: &Viewer, user: &User) -> Markup {
    html! {
        tr {
            th scope="row" {
                a href={ "/?view=" (user.username) } { (user.username) }
            }
            td { (user.display_name.as_deref().unwrap_or("")) }
            td { (user.role) }
            td { @if user.disabled { "disabled" } @else { "active" } }
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
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    viewer: Viewer,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let username = form.username.trim().to_owned();
    let note = Note::new(Action::UserCreate).target(format!("user:{username}"));
    let role: Role = match form.role.parse() {
        Ok(role) => role,
        Err(reason) => return refuse(&state, &viewer, note, &format!("role: {reason}")).await,
    };
    let profile = Profile {
        display_name: optional(form.display_name.as_deref()),
        email: optional(form.email.as_deref()),
        time_zone: None,
    };
    if let Err(e) = users::validate_username(&username).and(users::validate_profile(&profile)) {
        return refuse(&state, &viewer, note, &e.to_string()).await;
    }
    let password = random_password();
    let hash = state
        .passwords
        .hash(password.clone())
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
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
            let all = state.db.read(users::list).await?;
            let issued = Issued {
                username: &username,
                password: &password,
            };
            let page = render(&state, &viewer, &all, None, None, Some(&issued));
            Ok((StatusCode::CREATED, note, page).into_response())
        }
        Err(UserError::Db(e)) => Err(e.into()),
        Err(e) => refuse(&state, &viewer, note, &e.to_string()).await,
    }
}

async fn refuse(
    state: &AppState,
    viewer: &Viewer,
    note: Note,
    message: &str,
) -> Result<Response, AppError> {
    let all = state.db.read(users::list).await?;
    let page = render(state, viewer, &all, None, Some(message), None);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response())
}

/// One admin action on one user, named by the last path segment.
pub async fn act(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    viewer: Viewer,
    session: Session,
    Path((username, action)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let target = format!("user:{username}");
    let (code, done) = match action.as_str() {
        "disable" => (Action::UserDisable, "is disabled and signed out"),
        "enable" => (Action::UserEnable, "is enabled"),
        "promote" => (Action::UserRoleChange, "is now an admin"),
        "demote" => (Action::UserRoleChange, "is now a member"),
        "password" => return reset_password(state, viewer, username).await,
        "sessions" => (Action::SessionsRevoke, "is signed out everywhere"),
        _ => return Err(AppError::NotFound),
    };
    let note = Note::new(code)
        .target(target)
        .details(json!({"change": action}));
    let now = state.now_unix();
    let name = username.clone();
    let changed = state
        .db
        .write(move |conn| match action.as_str() {
            "disable" => users::set_disabled(conn, &name, true, now).map(|_| ()),
            "enable" => users::set_disabled(conn, &name, false, now).map(|_| ()),
            "promote" => users::set_role(conn, &name, Role::Admin, now).map(|_| ()),
            "demote" => users::set_role(conn, &name, Role::Member, now).map(|_| ()),
            _ => {
                let user = users::by_name(conn, &name)?
                    .ok_or_else(|| UserError::NotFound(name.clone()))?;
                delete_user_sessions(conn, user.id)?;
                Ok(())
            }
        })
        .await;
    match changed {
        Ok(()) => {
            tracing::info!(admin = %admin.id, "admin changed a user");
            flash(&session, format!("{username} {done}.")).await?;
            Ok((note, Redirect::to("/admin/users")).into_response())
        }
        Err(UserError::NotFound(_)) => Ok((note, AppError::NotFound).into_response()),
        Err(UserError::Db(e)) => Err(e.into()),
        Err(e) => refuse(&state, &viewer, note, &e.to_string()).await,
    }
}

/// Sets a generated password (shown once) and ends the user's sessions.
async fn reset_password(
    state: AppState,
    viewer: Viewer,
    username: String,
) -> Result<Response, AppError> {
    let note = Note::new(Action::UserPasswordReset).target(format!("user:{username}"));
    let password = random_password();
    check_new_password(&password).map_err(|e| AppError::Internal(e.to_string()))?;
    let hash = state
        .passwords
        .hash(password.clone())
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let (name, now) = (username.clone(), state.now_unix());
    let changed = state
        .db
        .write(move |conn| users::set_password(conn, &name, &hash, now))
        .await;
    match changed {
        Ok(_) => {
            let all = state.db.read(users::list).await?;
            let issued = Issued {
                username: &username,
                password: &password,
            };
            let page = render(&state, &viewer, &all, None, None, Some(&issued));
            Ok((note, page).into_response())
        }
        Err(UserError::NotFound(_)) => Ok((note, AppError::NotFound).into_response()),
        Err(e) => Err(AppError::Internal(e.to_string())),
    }
}
