//! The forms of `/admin/identities`: link and unlink, create a member
//! from an identity, mark it ignored or not. Each is audited under its own
//! code; a refused form re-renders the page with the reason (422).

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::{Issued, PATH, Show, View, render_page};
use crate::audit::Note;
use crate::auth::RequireAdmin;
use crate::auth::invites;
use crate::error::AppError;
use crate::model::{Action, IdentityKey, IdentityKind};
use crate::usage::identities::{self, IdentityError, Moved};
use crate::web::WebState;
use crate::web::flash::flash;
use crate::web::page::PageContext;

#[derive(Debug, Deserialize)]
pub struct IdentityForm {
    kind: String,
    value: String,
    /// The person to link to.
    #[serde(default)]
    user: String,
    /// The login name of the member to create.
    #[serde(default)]
    username: String,
}

/// What a form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Link,
    Unlink,
    Ignore,
    Unignore,
}

impl Change {
    fn action(self) -> Action {
        match self {
            Change::Link => Action::IdentityLink,
            Change::Unlink => Action::IdentityUnlink,
            Change::Ignore => Action::IdentityIgnore,
            Change::Unignore => Action::IdentityUnignore,
        }
    }
}

pub async fn link(
    State(state): State<WebState>,
    admin: RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<IdentityForm>,
) -> Result<Response, AppError> {
    change(state, admin, context, session, form, Change::Link).await
}

pub async fn unlink(
    State(state): State<WebState>,
    admin: RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<IdentityForm>,
) -> Result<Response, AppError> {
    change(state, admin, context, session, form, Change::Unlink).await
}

pub async fn ignore(
    State(state): State<WebState>,
    admin: RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<IdentityForm>,
) -> Result<Response, AppError> {
    change(state, admin, context, session, form, Change::Ignore).await
}

pub async fn unignore(
    State(state): State<WebState>,
    admin: RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<IdentityForm>,
) -> Result<Response, AppError> {
    change(state, admin, context, session, form, Change::Unignore).await
}

/// The identity a form names, or the message refusing its kind.
fn form_key(form: &IdentityForm) -> Result<IdentityKey, String> {
    match IdentityKind::parse(form.kind.trim()) {
        Some(kind) => Ok(IdentityKey::new(kind, &form.value)),
        None => Err(format!(
            "unknown identity kind {:?}: one of enduser, email, account, install, litellm_user, \
             litellm_key",
            form.kind
        )),
    }
}

/// What a change did, for its notice and audit details.
enum Done {
    Moved(Moved),
    /// Marked ignored (`true`) or not.
    Marked(bool),
}

async fn change(
    state: WebState,
    RequireAdmin(admin): RequireAdmin,
    context: PageContext,
    session: Session,
    form: IdentityForm,
    change: Change,
) -> Result<Response, AppError> {
    let note = Note::new(change.action()).target(format!("identity:{}:{}", form.kind, form.value));
    let key = match form_key(&form) {
        Ok(key) => key,
        Err(message) => return refuse(&state, &context, note, &message).await,
    };
    let target = key.to_string();
    let note = note.target(format!("identity:{target}"));
    let user = form.user.trim().to_owned();
    let (changing, person) = (key.clone(), user.clone());
    let done = state
        .db
        .write(move |conn| match change {
            Change::Link => identities::link(conn, &changing, &person).map(Done::Moved),
            Change::Unlink => identities::unlink(conn, &changing).map(Done::Moved),
            Change::Ignore | Change::Unignore => {
                let ignored = change == Change::Ignore;
                identities::set_ignored(conn, &changing, ignored).map(|_| Done::Marked(ignored))
            }
        })
        .await;
    let done = match done {
        Ok(done) => done,
        Err(IdentityError::Db(e)) => return Err(e.into()),
        Err(e) => return refuse(&state, &context, note, &e.to_string()).await,
    };
    let (note, message) = match done {
        Done::Moved(moved) => {
            let user = (change == Change::Link).then_some(user);
            let note = note.details(json!({
                "user": user,
                "events_moved": moved.events,
                "events_merged": moved.merged,
            }));
            (note, notice(&target, user.as_deref(), moved))
        }
        Done::Marked(true) => (
            note.details(json!({"ignored": true})),
            format!(
                "{target} is marked ignored: still counted and listed, kept apart in the \
                 unassigned total."
            ),
        ),
        Done::Marked(false) => (
            note.details(json!({"ignored": false})),
            format!("{target} is no longer ignored."),
        ),
    };
    tracing::info!(admin = %admin.id, identity = %target, "admin changed an identity");
    flash(&session, message).await?;
    Ok((note, Redirect::to(PATH)).into_response())
}

/// Creates a member from an unassigned identity: the account (without a
/// password), the link (its past events move to them) and a one-time
/// setup link, in one transaction; the link is shown once, on this page.
pub async fn create(
    State(state): State<WebState>,
    RequireAdmin(admin): RequireAdmin,
    context: PageContext,
    Form(form): Form<IdentityForm>,
) -> Result<Response, AppError> {
    let note = Note::new(Action::IdentityCreateUser)
        .target(format!("identity:{}:{}", form.kind, form.value));
    let key = match form_key(&form) {
        Ok(key) => key,
        Err(message) => return refuse(&state, &context, note, &message).await,
    };
    let username = form.username.trim().to_owned();
    let note = note.target(format!("identity:{key}"));
    let (creating, name, now) = (key.clone(), username.clone(), state.now_unix());
    let created = state
        .db
        .write(move |conn| identities::create_person(conn, &creating, &name, now))
        .await;
    let created = match created {
        Ok(created) => created,
        Err(IdentityError::Db(e)) => return Err(e.into()),
        Err(e) => return refuse(&state, &context, note, &e.to_string()).await,
    };
    // The token is in the page only: never in the note, the log or a flash.
    let note = note.details(json!({
        "user": username,
        "events_moved": created.moved.events,
        "events_merged": created.moved.merged,
        "setup_link_expires_at": now + invites::INVITE_TTL_S,
    }));
    tracing::info!(admin = %admin.id, user_id = %created.user, "admin created a member from an identity");
    let issued = Issued {
        link: invites::link(state.link_base.as_deref(), &created.token),
        username,
    };
    let view = View {
        show: Show::All,
        error: None,
        issued: Some(&issued),
    };
    let page = render_page(&state, &context, &view).await?;
    Ok((StatusCode::CREATED, note, page).into_response())
}

/// "email:carol@example.com is now bob's: 80 events moved."
fn notice(identity: &str, user: Option<&str>, moved: Moved) -> String {
    let merged = match moved.merged {
        0 => String::new(),
        n => format!(" ({n} already stored for that person under the same id were kept once)"),
    };
    let events = match moved.events {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    };
    match user {
        Some(person) => format!("{identity} is now {person}'s: {events} moved{merged}."),
        None => format!("{identity} is unassigned again: {events} moved{merged}."),
    }
}

async fn refuse(
    state: &WebState,
    context: &PageContext,
    note: Note,
    message: &str,
) -> Result<Response, AppError> {
    let view = View {
        show: Show::All,
        error: Some(message),
        issued: None,
    };
    let page = render_page(state, context, &view).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response())
}

#[cfg(test)]
mod tests {
    use super::{Moved, notice};

    #[test]
    fn the_notice_says_whose_it_is_and_what_moved() {
        let moved = Moved {
            events: 80,
            merged: 0,
        };
        assert_eq!(
            notice("email:carol@example.com", Some("bob"), moved),
            "email:carol@example.com is now bob's: 80 events moved."
        );
        let one = Moved {
            events: 1,
            merged: 2,
        };
        assert_eq!(
            notice("enduser:x", None, one),
            "enduser:x is unassigned again: 1 event moved \
             (2 already stored for that person under the same id were kept once)."
        );
    }
}
