//! `/admin/identities` (admins): the identities producers have sent
//! (`user.email`, `enduser.id`, LiteLLM's end user…), unassigned first,
//! with their events and cost, and a form on each to link it to a person
//! or to unlink it. A link moves the identity's past events to the person
//! in one transaction (`usage::identities::link`), as
//! `tokentally identity link` does, and is audited the same way.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::flash::{flash, notices};
use super::page::PageContext;
use super::{format, layout};
use crate::audit::Note;
use crate::auth::{RequireAdmin, users};
use crate::error::AppError;
use crate::model::{Action, IdentityKey, IdentityKind, User};
use crate::usage::identities::{self, IdentityError, IdentityUsage, Moved};
use crate::usage::params;
use crate::web::WebState;

const PATH: &str = "/admin/identities";

pub async fn page(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    mut context: PageContext,
    RawQuery(query): RawQuery,
) -> Result<(Note, Markup), AppError> {
    // The page takes no parameters: a misspelt one is refused, not ignored.
    params::check_names(query.as_deref(), &[]).map_err(|e| AppError::BadRequest(e.to_string()))?;
    context.take_flash().await?;
    let note = Note::new(Action::PageView).details(json!({"page": "identities"}));
    Ok((note, render_page(&state, &context, None).await?))
}

async fn render_page(
    state: &WebState,
    context: &PageContext,
    error: Option<&str>,
) -> Result<Markup, AppError> {
    let all = state.db.read(identities::list).await?;
    let people = state.db.read(users::list).await?;
    Ok(render(context, &all, &people, error))
}

fn render(
    context: &PageContext,
    all: &[IdentityUsage],
    people: &[User],
    error: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Identities" }
        p.subtitle {
            "The names producers send for a person (an email, an end user, a LiteLLM user or key). "
            "An unassigned identity's usage is counted from its first event; linking it to a person "
            "moves its past and future usage to them, unlinking moves it back."
        }
        (notices(context.flash.as_deref(), error))
        section.card aria-labelledby="identities-title" {
            h2 #identities-title { "Every identity" }
            @if all.is_empty() {
                p { "No producer has sent an identity yet." }
            } @else {
                div.table-scroll {
                    table {
                        caption.visually-hidden { "Identities, unassigned first; dates in UTC" }
                        thead { tr {
                            th scope="col" { "Kind" }
                            th scope="col" { "Value" }
                            th scope="col" { "Person" }
                            th scope="col" { "First seen" }
                            th scope="col" { "Last seen" }
                            th.num scope="col" { "Events" }
                            th.num scope="col" { "Cost" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for (n, row) in all.iter().enumerate() {
                                (identity_row(context, people, n, row))
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(context, "Identities", body)
}

fn identity_row(context: &PageContext, people: &[User], n: usize, row: &IdentityUsage) -> Markup {
    let csrf = &context.viewer.csrf;
    let identity = &row.identity;
    let key = &identity.key;
    let utc = jiff::tz::TimeZone::UTC;
    let select_id = format!("identity-user-{n}");
    html! {
        tr {
            td { (key.kind) }
            th scope="row" { (key.value) }
            td {
                @match &identity.linked {
                    Some((_, name)) => { a href={ "/?view=" (name) } { (name) } }
                    None => { "unassigned" }
                }
            }
            td { (format::date(identity.first_seen_ms, &utc)) }
            td { (format::date(identity.last_seen_ms, &utc)) }
            td.num { (format::integer(row.events)) }
            td.num { (format::money(row.cost_micros)) }
            td.actions {
                @match &identity.linked {
                    Some(_) => {
                        form.inline method="post" action={ (PATH) "/unlink" } {
                            (layout::csrf_field(csrf))
                            input type="hidden" name="kind" value=(key.kind);
                            input type="hidden" name="value" value=(key.value);
                            button.link type="submit" aria-label={ "Unlink " (key) } { "Unlink" }
                        }
                    }
                    None => {
                        form.view-switch method="post" action={ (PATH) "/link" } {
                            (layout::csrf_field(csrf))
                            input type="hidden" name="kind" value=(key.kind);
                            input type="hidden" name="value" value=(key.value);
                            label.visually-hidden for=(select_id) { "Person for " (key) }
                            select id=(select_id) name="user" required {
                                option value="" { "Choose a person" }
                                @for person in people {
                                    option value=(person.username) {
                                        (person.username)
                                        @if person.disabled { " (disabled)" }
                                    }
                                }
                            }
                            button type="submit" aria-label={ "Link " (key) } { "Link" }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LinkForm {
    kind: String,
    value: String,
    #[serde(default)]
    user: String,
}

/// What the form asks for: a link to a person, or an unlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Link,
    Unlink,
}

impl Change {
    fn action(self) -> Action {
        match self {
            Change::Link => Action::IdentityLink,
            Change::Unlink => Action::IdentityUnlink,
        }
    }
}

pub async fn link(
    State(state): State<WebState>,
    admin: RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<LinkForm>,
) -> Result<Response, AppError> {
    change(state, admin, context, session, form, Change::Link).await
}

pub async fn unlink(
    State(state): State<WebState>,
    admin: RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<LinkForm>,
) -> Result<Response, AppError> {
    change(state, admin, context, session, form, Change::Unlink).await
}

async fn change(
    state: WebState,
    RequireAdmin(admin): RequireAdmin,
    context: PageContext,
    session: Session,
    form: LinkForm,
    change: Change,
) -> Result<Response, AppError> {
    let note = Note::new(change.action()).target(format!("identity:{}:{}", form.kind, form.value));
    let Some(kind) = IdentityKind::parse(form.kind.trim()) else {
        let message = format!(
            "unknown identity kind {:?}: one of enduser, email, account, install, litellm_user, \
             litellm_key",
            form.kind
        );
        return refuse(&state, &context, note, &message).await;
    };
    let key = IdentityKey::new(kind, &form.value);
    let target = key.to_string();
    let note = note.target(format!("identity:{target}"));
    let user = form.user.trim().to_owned();
    let moving = key.clone();
    let person = user.clone();
    let moved = state
        .db
        .write(move |conn| match change {
            Change::Link => identities::link(conn, &moving, &person),
            Change::Unlink => identities::unlink(conn, &moving),
        })
        .await;
    let moved = match moved {
        Ok(moved) => moved,
        Err(IdentityError::Db(e)) => return Err(e.into()),
        Err(e @ (IdentityError::NotFound(_) | IdentityError::NoSuchUser(_))) => {
            return refuse(&state, &context, note, &e.to_string()).await;
        }
    };
    let user = match change {
        Change::Link => Some(user),
        Change::Unlink => None,
    };
    let note = note.details(json!({
        "user": user,
        "events_moved": moved.events,
        "events_merged": moved.merged,
    }));
    tracing::info!(admin = %admin.id, identity = %target, "admin changed an identity's person");
    flash(&session, notice(&target, user.as_deref(), moved)).await?;
    Ok((note, Redirect::to(PATH)).into_response())
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
    let page = render_page(state, context, Some(message)).await?;
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
