//! Login, logout and first-run setup handlers.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::login_views as views;
use crate::audit::{Note, RequestMeta};
use crate::auth::session::{USER_ID_KEY, session_error, sign_in};
use crate::auth::setup::{self, SetupError};
use crate::auth::users::{self, UserError, UserId};
use crate::auth::{check_new_password, safe_next};
use crate::error::AppError;
use crate::model::{Action, Actor, Outcome};
use crate::web::WebState;
use crate::web::page::PublicPageContext;

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

// Deliberately not `Debug`: the form carries a password.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn logged_in(session: &Session) -> Result<bool, AppError> {
    Ok(session
        .get::<UserId>(USER_ID_KEY)
        .await
        .map_err(session_error)?
        .is_some())
}

pub async fn login_page(
    page: PublicPageContext,
    session: Session,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    let next = safe_next(query.next.as_deref());
    if logged_in(&session).await? {
        return Ok(Redirect::to(&next).into_response());
    }
    let csrf = page.csrf().await?;
    let form = views::LoginView {
        csrf: &csrf,
        next: &next,
        error: None,
        username: "",
    };
    Ok(views::login_page(&page, &form).into_response())
}

pub async fn login(
    State(state): State<WebState>,
    page: PublicPageContext,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim().to_owned();
    let now = state.now_unix();
    let address = meta.client_addr.as_deref();
    let csrf = page.csrf().await?;
    let refuse = |status: StatusCode, message: &str, note: Note| {
        let view = views::LoginView {
            csrf: &csrf,
            next: &next,
            error: Some(message),
            username: &username,
        };
        (status, note, views::login_page(&page, &view)).into_response()
    };
    let target = format!("user:{username}");
    let attempt = match state.throttle.begin(&username, address, now).await {
        Ok(attempt) => attempt,
        Err(throttled) => {
            let note = Note::new(Action::LoginThrottled)
                .target(target)
                .actor(Actor::Anonymous)
                .outcome(Outcome::Denied);
            let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, &throttled.message(), note);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(throttled.retry_after_s),
            );
            return Ok(response);
        }
    };
    let lookup = username.clone();
    let found = state
        .db
        .read(move |conn| users::credentials(conn, &lookup))
        .await?;
    let existing_account = found.is_some();
    let (user, stored_hash) = match found {
        Some((user, hash)) if !user.disabled => (Some(user), hash),
        _ => (None, None),
    };
    // Verify even for an unknown user (against a dummy hash), so the
    // answer takes as long either way and does not reveal who exists.
    let password_ok = state.passwords.verify(form.password, stored_hash).await;
    let Some(user) = user.filter(|_| password_ok) else {
        attempt.failed(&username, address, now);
        tracing::info!("login failed");
        let mut note = Note::new(Action::LoginFailure)
            .target(target)
            .actor(Actor::Anonymous)
            .outcome(Outcome::Failure);
        // Guesses at a real account each keep their row; guesses at names
        // that do not exist are sampled like other anonymous refusals.
        if existing_account {
            note = note.always_recorded();
        }
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "Wrong username or password.",
            note,
        ));
    };
    attempt.succeeded(&username);
    sign_in(&session, user.id, now).await?;
    tracing::info!(user_id = %user.id, "login succeeded");
    let note = Note::new(Action::Login)
        .target(format!("user:{}", user.username))
        .actor(Actor::user(&user));
    Ok((note, Redirect::to(&next)).into_response())
}

pub async fn logout(session: Session) -> Result<Response, AppError> {
    session.flush().await.map_err(session_error)?;
    Ok((Note::new(Action::Logout), Redirect::to("/login")).into_response())
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
    State(state): State<WebState>,
    page: PublicPageContext,
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
        return Ok(setup_refused(&page));
    }
    let csrf = page.csrf().await?;
    Ok(views::setup_page(&page, &csrf, &token, None, "").into_response())
}

pub async fn setup(
    State(state): State<WebState>,
    page: PublicPageContext,
    session: Session,
    Form(form): Form<SetupForm>,
) -> Result<Response, AppError> {
    let username = form.username.trim().to_owned();
    let csrf = page.csrf().await?;
    let refuse = |message: String| {
        let markup = views::setup_page(&page, &csrf, &form.token, Some(&message), &username);
        Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
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
        .map_err(AppError::internal)?;
    let now = state.now_unix();
    let (token, name) = (form.token.clone(), username.clone());
    let created = state
        .db
        .write(move |conn| setup::create_first_admin(conn, &token, &name, &hash, now))
        .await;
    match created {
        Ok(user_id) => {
            sign_in(&session, user_id, now).await?;
            tracing::info!(user_id = %user_id, "first admin created through setup");
            let note = Note::new(Action::Setup)
                .target(format!("user:{username}"))
                .actor(Actor::User {
                    id: user_id,
                    name: username.clone(),
                });
            Ok((note, Redirect::to("/")).into_response())
        }
        Err(SetupError::InvalidToken) => Ok(setup_refused(&page)),
        Err(SetupError::AlreadyDone) => Ok(Redirect::to("/login").into_response()),
        Err(SetupError::User(e @ (UserError::Exists(_) | UserError::InvalidName))) => {
            refuse(e.to_string())
        }
        Err(SetupError::User(e)) => Err(AppError::internal(e)),
    }
}

/// A wrong or spent setup link: refused, and audited (someone is trying
/// to become the first admin).
fn setup_refused(page: &PublicPageContext) -> Response {
    let note = Note::new(Action::AccessDenied).target("setup");
    (StatusCode::FORBIDDEN, note, views::setup_invalid(page)).into_response()
}
