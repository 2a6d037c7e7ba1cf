//! `/profile`: display name, email, time zone, password, the identities
//! linked to the user (theirs only), and "sign out everywhere".

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::{flash, notices};
use crate::audit::Note;
use crate::auth::session::{session_error, sign_in};
use crate::auth::session_store::delete_user_sessions;
use crate::auth::users::{self, Profile};
use crate::auth::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, Viewer, check_new_password};
use crate::error::AppError;
use crate::model::Action;
use crate::usage::identities::{self, IdentityUsage};
use crate::web::WebState;
use crate::web::page::PageContext;
use crate::web::{format, layout};

pub async fn page(
    State(state): State<WebState>,
    mut context: PageContext,
) -> Result<(Note, Markup), AppError> {
    context.take_flash().await?;
    Ok((
        Note::new(Action::PageView).details(json!({"page": "profile"})),
        render_page(&state, &context, None).await?,
    ))
}

/// The page, with the identities linked to the signed-in user (theirs
/// alone: only they and admins see them).
async fn render_page(
    state: &WebState,
    context: &PageContext,
    error: Option<&str>,
) -> Result<Markup, AppError> {
    let id = context.viewer.user.id;
    let linked = state
        .db
        .read(move |conn| identities::linked_to(conn, id))
        .await?;
    Ok(render(context, &linked, error))
}

fn render(context: &PageContext, linked: &[IdentityUsage], error: Option<&str>) -> Markup {
    let viewer = &context.viewer;
    let user = &viewer.user;
    let body = html! {
        h1 { "Your profile" }
        (notices(context.flash.as_deref(), error))
        section.card aria-labelledby="details-title" {
            h2 #details-title { "Details" }
            p.hint { "Signed in as " strong { (user.username) } " (" (user.role) ")." }
            form method="post" action="/profile" {
                (layout::csrf_field(&viewer.csrf))
                label for="display_name" { "Display name" }
                input #display_name type="text" name="display_name" maxlength="100"
                    value=(user.display_name.as_deref().unwrap_or("")) autocomplete="name";
                label for="email" { "Email (optional)" }
                input #email type="email" name="email" maxlength="254"
                    value=(user.email.as_deref().unwrap_or("")) autocomplete="email";
                label for="time_zone" { "Time zone" }
                p.hint #tz-hint { "An IANA name such as Europe/Berlin; empty for the server's default (UTC)." }
                input #time_zone type="text" name="time_zone" aria-describedby="tz-hint"
                    value=(user.time_zone.as_deref().unwrap_or("")) spellcheck="false";
                button type="submit" { "Save details" }
            }
        }
        section.card aria-labelledby="password-title" {
            h2 #password-title { "Change password" }
            p.hint { "Changing it signs out your other sessions." }
            form method="post" action="/profile/password" {
                (layout::csrf_field(&viewer.csrf))
                label for="current_password" { "Current password" }
                input #current_password type="password" name="current_password"
                    autocomplete="current-password" required maxlength=(MAX_PASSWORD_LEN);
                label for="new_password" { "New password" }
                p.hint #new-hint { "At least " (MIN_PASSWORD_LEN) " characters." }
                input #new_password type="password" name="new_password" aria-describedby="new-hint"
                    autocomplete="new-password" required minlength=(MIN_PASSWORD_LEN) maxlength=(MAX_PASSWORD_LEN);
                label for="new_password_confirm" { "New password, again" }
                input #new_password_confirm type="password" name="new_password_confirm"
                    autocomplete="new-password" required minlength=(MIN_PASSWORD_LEN) maxlength=(MAX_PASSWORD_LEN);
                button type="submit" { "Change password" }
            }
        }
        (identities_card(linked))
        section.card aria-labelledby="sessions-title" {
            h2 #sessions-title { "Sessions" }
            p { "Sign out on every browser and device, this one included." }
            form method="post" action="/profile/sessions/revoke" {
                (layout::csrf_field(&viewer.csrf))
                button type="submit" { "Sign out everywhere" }
            }
        }
    };
    layout::page(context, "Profile", body)
}

/// The identities producers send for this user (their email in Claude
/// Code's telemetry, a LiteLLM user…), linked to them by an admin or by
/// their profile's email.
fn identities_card(linked: &[IdentityUsage]) -> Markup {
    let utc = jiff::tz::TimeZone::UTC;
    html! {
        section.card aria-labelledby="identities-title" {
            h2 #identities-title { "Your identities" }
            p.hint {
                "The names producers send for you (an email in an agent's telemetry, an end user "
                "or key of a proxy). Their usage is yours. Only you and admins see them."
            }
            @if linked.is_empty() {
                p { "None yet: your usage comes through your own API tokens." }
            } @else {
                div.table-scroll {
                    table {
                        caption.visually-hidden { "Your identities; dates in UTC" }
                        thead { tr {
                            th scope="col" { "Kind" }
                            th scope="col" { "Value" }
                            th scope="col" { "First seen" }
                            th scope="col" { "Last seen" }
                            th.num scope="col" { "Events" }
                        } }
                        tbody {
                            @for row in linked {
                                @let identity = &row.identity;
                                tr {
                                    td { (identity.key.kind) }
                                    th scope="row" { (identity.key.value) }
                                    td { (format::date(identity.first_seen_ms, &utc)) }
                                    td { (format::date(identity.last_seen_ms, &utc)) }
                                    td.num { (format::integer(row.events)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    display_name: String,
    email: String,
    time_zone: String,
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

pub async fn update(
    State(state): State<WebState>,
    context: PageContext,
    session: Session,
    Form(form): Form<ProfileForm>,
) -> Result<Response, AppError> {
    let viewer = &context.viewer;
    let profile = Profile {
        display_name: optional(&form.display_name),
        email: optional(&form.email),
        time_zone: optional(&form.time_zone),
    };
    let note = Note::new(Action::ProfileUpdate).target(format!("user:{}", viewer.user.username));
    if let Err(e) = users::validate_profile(&profile) {
        let page = render_page(&state, &context, Some(&e.to_string())).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response());
    }
    let (id, now) = (viewer.user.id, state.now_unix());
    state
        .db
        .write(move |conn| users::update_profile(conn, id, &profile, now))
        .await
        .map_err(AppError::internal)?;
    flash(&session, "Your details are saved.").await?;
    Ok((note, Redirect::to("/profile")).into_response())
}

// Not `Debug`: it carries passwords.
#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_confirm: String,
}

pub async fn change_password(
    State(state): State<WebState>,
    context: PageContext,
    session: Session,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let viewer = &context.viewer;
    let note = Note::new(Action::PasswordChange).target(format!("user:{}", viewer.user.username));
    let id = viewer.user.id;
    let stored = state
        .db
        .read(move |conn| users::password_hash(conn, id))
        .await?;
    let problem = if !state.passwords.verify(form.current_password, stored).await {
        Some("The current password is wrong.".to_owned())
    } else if let Err(e) = check_new_password(&form.new_password) {
        Some(e.to_string())
    } else if form.new_password != form.new_password_confirm {
        Some("The two new passwords differ.".to_owned())
    } else {
        None
    };
    if let Some(message) = problem {
        let page = render_page(&state, &context, Some(&message)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response());
    }
    let hash = state
        .passwords
        .hash(form.new_password)
        .await
        .map_err(AppError::internal)?;
    let (name, now) = (viewer.user.username.clone(), state.now_unix());
    // Ends every session of the user (the others are the point)…
    state
        .db
        .write(move |conn| users::set_password(conn, &name, &hash, now))
        .await
        .map_err(AppError::internal)?;
    // …then keeps this one signed in, under a new id.
    sign_in(&session, id, now).await?;
    flash(
        &session,
        "Your password is changed; your other sessions are signed out.",
    )
    .await?;
    Ok((note, Redirect::to("/profile")).into_response())
}

pub async fn sign_out_everywhere(
    State(state): State<WebState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response, AppError> {
    let id = viewer.user.id;
    let ended = state
        .db
        .write(move |conn| delete_user_sessions(conn, id))
        .await?;
    session.flush().await.map_err(session_error)?;
    let note = Note::new(Action::SessionsRevoke)
        .target(format!("user:{}", viewer.user.username))
        .details(json!({"sessions": ended}));
    Ok((note, Redirect::to("/login")).into_response())
}
