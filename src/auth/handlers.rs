//! Login, logout and first-run setup handlers.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::extract::safe_next;
use super::session_store::USER_ID_KEY;
use super::setup::{self, SetupError};
use super::users::{self, UserError, UserId};
use super::{check_new_password, views};
use crate::app::AppState;
use crate::error::AppError;

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

// Deliberately not `Debug`: the form carries a password.

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(format!("session: {e}"))
}

/// Binds the session to `user`, under a new session id: an id planted
/// before login (session fixation) is worthless afterwards.
async fn sign_in(session: &Session, user: UserId) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(USER_ID_KEY, user)
        .await
        .map_err(session_error)
}

async fn logged_in(session: &Session) -> Result<bool, AppError> {
    Ok(session
        .get::<UserId>(USER_ID_KEY)
        .await
        .map_err(session_error)?
        .is_some())
}

pub async fn login_page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    let next = safe_next(query.next.as_deref());
    if logged_in(&session).await? {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(views::login_page(&state.assets, &next, None, "").into_response())
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim().to_owned();
    let lookup = username.clone();
    let found = state
        .db
        .read(move |conn| users::credentials(conn, &lookup))
        .await?;
    let (user, stored_hash) = match found {
        Some((user, hash)) if !user.disabled => (Some(user), hash),
        _ => (None, None),
    };
    // Verify even for an unknown user (against a dummy hash), so the
    // answer takes as long either way and does not reveal who exists.
    let password_ok = state.passwords.verify(form.password, stored_hash).await;
    let Some(user) = user.filter(|_| password_ok) else {
        tracing::info!("login failed");
        let page = views::login_page(
            &state.assets,
            &next,
            Some("Wrong username or password."),
            &username,
        );
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    sign_in(&session, user.id).await?;
    tracing::info!(user_id = %user.id, "login succeeded");
    Ok(Redirect::to(&next).into_response())
}

pub async fn logout(session: Session) -> Result<Response, AppError> {
    session.flush().await.map_err(session_error)?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
    password_confirm: String,
}

pub async fn setup_page(
    State(state): State<AppState>,
    Query(query): Query<SetupQuery>,
) -> Result<Response, AppError> {
    let token = query.token.unwrap_or_default();
    let check = token.clone();
    let (pending, valid) = state
        .db
        .read(move |conn| {
            Ok::<_, AppError>((
                setup::is_pending(conn)?,
                setup::token_is_valid(conn, &check)?,
            ))
        })
        .await?;
    if !pending {
        return Ok(Redirect::to("/login").into_response());
    }
    if !valid {
        return Ok((StatusCode::FORBIDDEN, views::setup_invalid(&state.assets)).into_response());
    }
    Ok(views::setup_page(&state.assets, &token, None, "").into_response())
}

pub async fn setup(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<SetupForm>,
) -> Result<Response, AppError> {
    let username = form.username.trim().to_owned();
    let refuse = |message: String| {
        let page = views::setup_page(&state.assets, &form.token, Some(&message), &username);
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    if let Err(e) = users::validate_username(&username) {
        return refuse(e.to_string());
    }
    if let Err(e) = check_new_password(&form.password) {
        return refuse(e.to_string());
    }
    if form.password != form.password_confirm {
        return refuse("The two passwords differ.".into());
    }
    let hash = state
        .passwords
        .hash(form.password.clone())
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.now_unix();
    let (token, name) = (form.token.clone(), username.clone());
    let created = state
        .db
        .write(move |conn| setup::create_first_admin(conn, &token, &name, &hash, now))
        .await;
    match created {
        Ok(user_id) => {
            sign_in(&session, user_id).await?;
            tracing::info!(user_id = %user_id, "first admin created through setup");
            Ok(Redirect::to("/").into_response())
        }
        Err(SetupError::InvalidToken) => {
            Ok((StatusCode::FORBIDDEN, views::setup_invalid(&state.assets)).into_response())
        }
        Err(SetupError::AlreadyDone) => Ok(Redirect::to("/login").into_response()),
        Err(SetupError::User(e @ (UserError::Exists(_) | UserError::InvalidName))) => {
            refuse(e.to_string())
        }
        Err(SetupError::User(e)) => Err(AppError::Internal(e.to_string())),
    }
}
