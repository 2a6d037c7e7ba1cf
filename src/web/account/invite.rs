//! `/invite/{token}` (public): a member created without a password (from
//! an identity, by an admin) chooses one through their one-time setup
//! link, and is signed in. A wrong, used or expired link gets a page that
//! says so. The token is a secret: the audit trail records this route as
//! its pattern (`audit::trail`), and nothing logs it.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::flash;
use crate::audit::Note;
use crate::auth::invites::{self, INVITE_TTL_S, InviteError};
use crate::auth::session::sign_in;
use crate::auth::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, check_new_password};
use crate::error::AppError;
use crate::model::{Action, Actor, Outcome, User};
use crate::web::WebState;
use crate::web::layout;
use crate::web::page::PublicPageContext;

/// The live invite `token` stands for, if it is one.
async fn invited(state: &WebState, token: &str) -> Result<Option<User>, AppError> {
    let (token, now) = (token.to_owned(), state.now_unix());
    Ok(state
        .db
        .read(move |conn| invites::lookup(conn, &token, now))
        .await?)
}

pub async fn page(
    State(state): State<WebState>,
    page: PublicPageContext,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let Some(user) = invited(&state, &token).await? else {
        return Ok(refused(
            &page,
            Note::new(Action::AccessDenied).target("invite"),
        ));
    };
    let csrf = page.csrf().await?;
    let note = Note::new(Action::PageView)
        .target(format!("user:{}", user.username))
        .details(json!({"page": "invite"}));
    Ok((note, form_page(&page, &csrf, &token, &user, None)).into_response())
}

// Not `Debug`: it carries a password.
#[derive(Deserialize)]
pub struct InviteForm {
    password: String,
    password_confirm: String,
}

pub async fn accept(
    State(state): State<WebState>,
    page: PublicPageContext,
    session: Session,
    Path(token): Path<String>,
    Form(form): Form<InviteForm>,
) -> Result<Response, AppError> {
    let failed = || Note::new(Action::InviteAccept).outcome(Outcome::Failure);
    let Some(user) = invited(&state, &token).await? else {
        return Ok(refused(&page, failed().target("invite")));
    };
    let target = format!("user:{}", user.username);
    let problem = match check_new_password(&form.password) {
        Err(e) => Some(e.to_string()),
        Ok(()) if form.password != form.password_confirm => {
            Some("The two passwords differ.".to_owned())
        }
        Ok(()) => None,
    };
    if let Some(message) = problem {
        let csrf = page.csrf().await?;
        let markup = form_page(&page, &csrf, &token, &user, Some(&message));
        // A live link's attempts each keep their row (as failed sign-ins
        // against a real account do); guesses at links are sampled.
        let note = failed().target(target).always_recorded();
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, note, markup).into_response());
    }
    // argon2id, on a blocking thread.
    let hash = state
        .passwords
        .hash(form.password)
        .await
        .map_err(AppError::internal)?;
    let now = state.now_unix();
    let used = token.clone();
    let accepted = state
        .db
        .write(move |conn| invites::accept(conn, &used, &hash, now))
        .await;
    let user = match accepted {
        Ok(user) => user,
        // Used up by another browser, or expired, since the check above.
        Err(InviteError::Invalid) => return Ok(refused(&page, failed().target(target))),
        Err(e) => return Err(AppError::internal(e)),
    };
    sign_in(&session, user.id, now).await?;
    tracing::info!(user_id = %user.id, "a member chose their password through a setup link");
    flash(
        &session,
        format!("Welcome, {}: your password is set.", user.username),
    )
    .await?;
    let note = Note::new(Action::InviteAccept)
        .target(target)
        .actor(Actor::user(&user));
    // The profile shows the welcome, and the identities that are theirs.
    Ok((note, Redirect::to("/profile")).into_response())
}

/// A wrong, used or expired link: one answer for all of them.
fn refused(page: &PublicPageContext, note: Note) -> Response {
    (StatusCode::NOT_FOUND, note, invalid_page(page)).into_response()
}

fn form_page(
    page: &PublicPageContext,
    csrf: &str,
    token: &str,
    user: &User,
    error: Option<&str>,
) -> Markup {
    let body = html! {
        section.card.narrow aria-labelledby="invite-title" {
            h1 #invite-title { "Choose your password" }
            p {
                "Your account " strong { (user.username) } " is ready. Choose a password to sign in; "
                "this link works once."
            }
            @if let Some(message) = error {
                p.notice.error role="alert" id="form-error" { (message) }
            }
            form method="post" action=(invites::path(token)) {
                (layout::csrf_field(csrf))
                // For password managers: the account the password is for.
                input type="hidden" name="username" value=(user.username) autocomplete="username";
                label for="password" { "Password" }
                p.hint #password-hint { "At least " (MIN_PASSWORD_LEN) " characters." }
                input #password type="password" name="password" aria-describedby="password-hint"
                    autocomplete="new-password" required autofocus
                    minlength=(MIN_PASSWORD_LEN) maxlength=(MAX_PASSWORD_LEN);
                label for="password_confirm" { "Password, again" }
                input #password_confirm type="password" name="password_confirm"
                    autocomplete="new-password" required
                    minlength=(MIN_PASSWORD_LEN) maxlength=(MAX_PASSWORD_LEN);
                button type="submit" { "Set password and sign in" }
            }
        }
    };
    layout::public_page(page, "Choose your password", body)
}

fn invalid_page(page: &PublicPageContext) -> Markup {
    let days = INVITE_TTL_S / 86_400;
    let body = html! {
        section.card.narrow aria-labelledby="invite-title" {
            h1 #invite-title { "This setup link does not work" }
            p {
                "It is wrong, it was already used, or it has expired (a link works once, for "
                (days) " days). Ask an admin for a new one. If you already chose your password, "
                a href="/login" { "sign in" } "."
            }
        }
    };
    layout::public_page(page, "Setup link", body)
}
