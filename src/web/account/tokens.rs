//! `/tokens`: a user's API tokens (an admin's list shows everyone's and
//! can create one for anyone). A new token's secret is shown once.

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
use crate::auth::Viewer;
use crate::auth::users;
use crate::auth::{
    tokens, tokens::CreatedToken, tokens::TokenError, tokens::TokenInfo, tokens::TokenScope,
};
use crate::error::AppError;
use crate::model::Action;
use crate::model::TokenId;
use crate::web::WebState;
use crate::web::headers::no_store;
use crate::web::layout;
use crate::web::page::PageContext;

async fn visible_tokens(state: &WebState, viewer: &Viewer) -> Result<Vec<TokenInfo>, AppError> {
    let owner = (!viewer.user.is_admin()).then_some(viewer.user.id);
    Ok(state.db.read(move |conn| tokens::list(conn, owner)).await?)
}

async fn usernames(state: &WebState, viewer: &Viewer) -> Result<Vec<String>, AppError> {
    if !viewer.user.is_admin() {
        return Ok(vec![viewer.user.username.clone()]);
    }
    let all = state.db.read(users::list).await?;
    Ok(all.into_iter().map(|u| u.username).collect())
}

pub async fn page(
    State(state): State<WebState>,
    mut context: PageContext,
) -> Result<(Note, Markup), AppError> {
    context.take_flash().await?;
    let list = visible_tokens(&state, &context.viewer).await?;
    let names = usernames(&state, &context.viewer).await?;
    let note = Note::new(Action::PageView).details(json!({"page": "tokens"}));
    Ok((note, render(&context, &list, &names, None, None)))
}

fn render(
    context: &PageContext,
    list: &[TokenInfo],
    names: &[String],
    error: Option<&str>,
    created: Option<&CreatedToken>,
) -> Markup {
    let viewer = &context.viewer;
    let admin = viewer.user.is_admin();
    let body = html! {
        h1 { "API tokens" }
        p.subtitle { "Tokens let exporters, proxies and scripts send usage (ingest) or read it (read)." }
        @if admin {
            p {
                "A " strong { "collector" } " token (admins only) sends a whole team's usage through one \
                 shared set-up (managed settings, a LiteLLM proxy): each event goes to the person it \
                 names (" code { "user.email" } ", " code { "enduser.id" } ", LiteLLM's key user…), and \
                 events naming no one to the token's owner. Create it for an admin."
            }
        }
        (notices(context.flash.as_deref(), error))
        @if let Some(created) = created {
            section.card aria-labelledby="created-title" {
                h2 #created-title { "New token: copy it now" }
                p { "This is the only time the token is shown. It is stored only as a digest." }
                pre { code #new-token { (created.secret) } }
            }
        }
        section.card aria-labelledby="create-title" {
            h2 #create-title { "Create a token" }
            form method="post" action="/tokens" {
                (layout::csrf_field(&viewer.csrf))
                label for="token-name" { "Name" }
                input #token-name type="text" name="name" required maxlength="100" placeholder="laptop claude code";
                label for="token-scope" { "Scope" }
                select #token-scope name="scope" {
                    option value="ingest" { "ingest: send usage" }
                    option value="read" { "read: read usage through the API" }
                    @if admin {
                        option value="collector" { "collector: send a team's usage, by identity" }
                    }
                }
                @if admin {
                    label for="token-user" { "For user" }
                    select #token-user name="user" {
                        @for name in names {
                            option value=(name) selected[*name == viewer.user.username] { (name) }
                        }
                    }
                }
                button type="submit" { "Create token" }
            }
        }
        section.card aria-labelledby="list-title" {
            h2 #list-title { @if admin { "All tokens" } @else { "Your tokens" } }
            @if list.is_empty() {
                p { "No tokens yet." }
            } @else {
                div.table-scroll {
                    table {
                        thead { tr {
                            th scope="col" { "Name" }
                            @if admin { th scope="col" { "User" } }
                            th scope="col" { "Scope" }
                            th scope="col" { "Starts with" }
                            th scope="col" { "Created" }
                            th scope="col" { "Last used" }
                            th scope="col" { "Status" }
                        } }
                        tbody {
                            @for token in list {
                                tr {
                                    th scope="row" { (token.name) }
                                    @if admin { td { (token.username) } }
                                    td { (token.scope.as_str()) }
                                    td { code { (token.prefix) "…" } }
                                    td { (when(Some(token.created_at))) }
                                    td { (when(token.last_used_at)) }
                                    td {
                                        @if let Some(at) = token.revoked_at {
                                            "revoked " (when(Some(at)))
                                        } @else {
                                            form method="post" action={ "/tokens/" (token.id) "/revoke" } {
                                                (layout::csrf_field(&viewer.csrf))
                                                button.link type="submit" aria-label={ "Revoke token " (token.name) } { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(context, "API tokens", body)
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    name: String,
    scope: String,
    user: Option<String>,
}

pub async fn create(
    State(state): State<WebState>,
    context: PageContext,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let viewer = &context.viewer;
    // A member's token is always their own, whatever the form says.
    let owner = match form.user.as_deref().map(str::trim) {
        Some(name) if viewer.user.is_admin() && !name.is_empty() => name.to_owned(),
        Some(name) if !name.is_empty() && !name.eq_ignore_ascii_case(&viewer.user.username) => {
            return Err(AppError::Forbidden);
        }
        _ => viewer.user.username.clone(),
    };
    let (note, created) = match form.scope.parse::<TokenScope>() {
        Ok(scope) => create_token(&state, owner, scope, form.name.clone()).await?,
        Err(_) => (
            Note::new(Action::TokenCreate).target(format!("user:{owner}")),
            Err(format!(
                "scope: {:?} is not one of ingest, read, collector",
                form.scope
            )),
        ),
    };
    let list = visible_tokens(&state, viewer).await?;
    let names = usernames(&state, viewer).await?;
    match created {
        Ok(created) => {
            let page = render(&context, &list, &names, None, Some(&created));
            Ok((StatusCode::CREATED, no_store(), note, page).into_response())
        }
        Err(message) => {
            let page = render(&context, &list, &names, Some(&message), None);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response())
        }
    }
}

/// Creates a token for `owner` through the token store, with the audit
/// note of every page that creates one (`token.create`: the owner, and the
/// token's id, scope and name, never its secret). A refusal (a bad name, a
/// collector token for a member) is the message to show; the database
/// failing is the error.
pub async fn create_token(
    state: &WebState,
    owner: String,
    scope: TokenScope,
    name: String,
) -> Result<(Note, Result<CreatedToken, String>), AppError> {
    let note = Note::new(Action::TokenCreate).target(format!("user:{owner}"));
    let now = state.now_unix();
    let created = state
        .db
        .write(move |conn| tokens::create(conn, &owner, scope, &name, now))
        .await;
    match created {
        Ok(created) => {
            let note = note.details(json!({
                "token_id": created.info.id.0,
                "scope": created.info.scope.as_str(),
                "name": created.info.name,
            }));
            Ok((note, Ok(created)))
        }
        Err(TokenError::Db(e)) => Err(AppError::from(e)),
        Err(refused) => Ok((note, Err(refused.to_string()))),
    }
}

pub async fn revoke(
    State(state): State<WebState>,
    viewer: Viewer,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    // A member may only revoke their own; an unknown id and someone
    // else's token look the same (404), so ids reveal nothing.
    let owner = (!viewer.user.is_admin()).then_some(viewer.user.id);
    let now = state.now_unix();
    let revoked = state
        .db
        .write(move |conn| tokens::revoke(conn, TokenId(id), owner, now))
        .await;
    match revoked {
        Ok(token) => {
            let note = Note::new(Action::TokenRevoke)
                .target(format!("user:{}", token.username))
                .details(json!({"token_id": id, "name": token.name}));
            flash(&session, format!("Token {:?} is revoked.", token.name)).await?;
            Ok((note, Redirect::to("/tokens")).into_response())
        }
        Err(TokenError::UnknownToken(_)) => Ok((
            Note::new(Action::TokenRevoke).details(json!({"token_id": id})),
            AppError::NotFound,
        )
            .into_response()),
        Err(e) => Err(AppError::internal(e)),
    }
}
