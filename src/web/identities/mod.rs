//! `/admin/identities` (admins): the identities producers have sent
//! (`user.email`, `enduser.id`, LiteLLM's end user…), unassigned first,
//! with their events and cost, filterable (`show=unassigned|ignored|linked`),
//! and on each the forms that change it ([`forms`]): link it to a person
//! or unlink it, create a member from it (with a one-time setup link shown
//! once), mark it ignored or not. A link moves the identity's past events
//! to the person in one transaction (`usage::identities::link`), as
//! `tokentally identity link` does, and is audited the same way. Every
//! view of the page is audited (`page.view`, page `identities`).

mod forms;

use std::collections::HashMap;

pub use forms::{create, ignore, link, unignore, unlink};

use axum::extract::{RawQuery, State};
use maud::{Markup, html};
use serde_json::json;

use super::flash::notices;
use super::page::PageContext;
use super::{format, layout};
use crate::audit::Note;
use crate::auth::{RequireAdmin, users};
use crate::error::AppError;
use crate::model::{Action, IdentityKey, User};
use crate::usage::identities::{self, IdentityUsage, Sample};
use crate::usage::params;
use crate::web::WebState;

const PATH: &str = "/admin/identities";

/// Which identities the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    All,
    Unassigned,
    Ignored,
    Linked,
}

impl Show {
    const ALL: [Show; 4] = [Show::All, Show::Unassigned, Show::Ignored, Show::Linked];

    fn code(self) -> &'static str {
        match self {
            Show::All => "all",
            Show::Unassigned => "unassigned",
            Show::Ignored => "ignored",
            Show::Linked => "linked",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Show::All => "All",
            Show::Unassigned => "Unassigned",
            Show::Ignored => "Ignored",
            Show::Linked => "Linked",
        }
    }

    fn parse(query: Option<&str>) -> Result<Show, AppError> {
        params::check_names(query, &[&["show"]])
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        let given = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .filter(|(name, _)| name == "show")
            .map(|(_, value)| value.into_owned())
            .last();
        match given.as_deref().map(str::trim) {
            None | Some("") => Ok(Show::All),
            Some(code) => Show::ALL
                .into_iter()
                .find(|show| show.code() == code)
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "show: {code:?}: use all, unassigned, ignored or linked"
                    ))
                }),
        }
    }

    /// Unassigned: linked to no one and not ignored. Ignored ones are
    /// unassigned too, but listed under their own filter.
    fn keeps(self, row: &IdentityUsage) -> bool {
        let identity = &row.identity;
        match self {
            Show::All => true,
            Show::Unassigned => identity.linked.is_none() && !identity.ignored,
            Show::Ignored => identity.ignored,
            Show::Linked => identity.linked.is_some(),
        }
    }
}

pub async fn page(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    mut context: PageContext,
    RawQuery(query): RawQuery,
) -> Result<(Note, Markup), AppError> {
    // A misspelt parameter is refused, not ignored.
    let show = Show::parse(query.as_deref())?;
    context.take_flash().await?;
    let note = Note::new(Action::PageView).details(json!({
        "page": "identities",
        "show": show.code(),
    }));
    let view = View {
        show,
        error: None,
        issued: None,
    };
    Ok((note, render_page(&state, &context, &view).await?))
}

/// A member made from an identity, and their setup link, shown once.
struct Issued {
    username: String,
    link: String,
}

/// What the page shows besides the list.
struct View<'a> {
    show: Show,
    error: Option<&'a str>,
    issued: Option<&'a Issued>,
}

async fn render_page(
    state: &WebState,
    context: &PageContext,
    view: &View<'_>,
) -> Result<Markup, AppError> {
    let (all, samples, people) = state
        .db
        .read(|conn| {
            Ok::<_, AppError>((
                identities::list(conn)?,
                identities::samples(conn)?,
                users::list(conn)?,
            ))
        })
        .await?;
    let listed = Listed {
        all: &all,
        samples: &samples,
        people: &people,
    };
    Ok(render(context, &listed, view))
}

/// What the list is made of.
struct Listed<'a> {
    all: &'a [IdentityUsage],
    samples: &'a HashMap<i64, Sample>,
    people: &'a [User],
}

fn render(context: &PageContext, listed: &Listed<'_>, view: &View<'_>) -> Markup {
    let all = listed.all;
    let shown: Vec<&IdentityUsage> = all.iter().filter(|row| view.show.keeps(row)).collect();
    let body = html! {
        h1 { "Identities" }
        p.subtitle {
            "The names producers send for a person (an email, an end user, a LiteLLM user or key). "
            "An unassigned identity's usage is counted from its first event; linking it to a person "
            "moves its past and future usage to them, unlinking moves it back. An ignored one is "
            "still counted and listed, and kept apart in the overview's unassigned total."
        }
        (notices(context.flash.as_deref(), view.error))
        @if let Some(issued) = view.issued {
            section.card aria-labelledby="issued-title" {
                h2 #issued-title { "Setup link for " (issued.username) ": copy it now" }
                p {
                    "It is shown only this once, works once and expires in 7 days. Send it to "
                    (issued.username) " through a channel you trust; they choose their password with it. "
                    "A new link can be made on the Users page."
                }
                pre { code #issued-link { (issued.link) } }
            }
        }
        nav.segmented aria-label="Show identities" {
            @for show in Show::ALL {
                a href={ (PATH) "?show=" (show.code()) }
                    aria-current=[(show == view.show).then_some("true")] { (show.label()) }
            }
        }
        section.card aria-labelledby="identities-title" {
            h2 #identities-title {
                @match view.show {
                    Show::All => "Every identity",
                    Show::Unassigned => "Unassigned identities",
                    Show::Ignored => "Ignored identities",
                    Show::Linked => "Linked identities",
                }
            }
            @if all.is_empty() {
                p { "No producer has sent an identity yet." }
            } @else if shown.is_empty() {
                p { "None." }
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
                            th scope="col" { "Latest event's" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for (n, row) in shown.iter().enumerate() {
                                (identity_row(context, listed, n, row))
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(context, "Identities", body)
}

/// The hidden fields naming an identity in its row's forms.
fn key_fields(key: &IdentityKey) -> Markup {
    html! {
        input type="hidden" name="kind" value=(key.kind);
        input type="hidden" name="value" value=(key.value);
    }
}

fn identity_row(
    context: &PageContext,
    listed: &Listed<'_>,
    n: usize,
    row: &IdentityUsage,
) -> Markup {
    let people = listed.people;
    let csrf = &context.viewer.csrf;
    let identity = &row.identity;
    let key = &identity.key;
    let utc = jiff::tz::TimeZone::UTC;
    let select_id = format!("identity-user-{n}");
    let name_id = format!("identity-name-{n}");
    let events = events_href(identity);
    html! {
        tr {
            td { (key.kind) }
            th scope="row" { (key.value) }
            td {
                @match &identity.linked {
                    Some((_, name)) => { a href={ "/?view=" (name) } { (name) } }
                    None if identity.ignored => { "unassigned, " strong { "ignored" } }
                    None => { "unassigned" }
                }
            }
            td { (format::date(identity.first_seen_ms, &utc)) }
            td { (format::date(identity.last_seen_ms, &utc)) }
            td.num { a href=(events) aria-label={ "Events of " (key) } { (format::integer(row.events)) } }
            td.num { (context.unit.money(row.cost_micros)) }
            td {
                @if let Some(sample) = listed.samples.get(&identity.id) {
                    dl.sample {
                        @for (name, value) in sample.pairs() {
                            div { dt { (name) } dd { (value) } }
                        }
                    }
                }
            }
            td.actions {
                @match &identity.linked {
                    Some(_) => {
                        form.inline method="post" action={ (PATH) "/unlink" } {
                            (layout::csrf_field(csrf))
                            (key_fields(key))
                            button.link type="submit" aria-label={ "Unlink " (key) } { "Unlink" }
                        }
                    }
                    None => {
                        form.view-switch method="post" action={ (PATH) "/link" } {
                            (layout::csrf_field(csrf))
                            (key_fields(key))
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
                        form.view-switch method="post" action={ (PATH) "/create" } {
                            (layout::csrf_field(csrf))
                            (key_fields(key))
                            label.visually-hidden for=(name_id) { "Login name of a new member for " (key) }
                            input id=(name_id) type="text" name="username" required maxlength="64"
                                value=(proposed_username(key, people))
                                autocapitalize="none" spellcheck="false";
                            button type="submit" aria-label={ "Create a member from " (key) } { "Create member" }
                        }
                        @let (action, label) = if identity.ignored { ("unignore", "Unignore") } else { ("ignore", "Ignore") };
                        form.inline method="post" action={ (PATH) "/" (action) } {
                            (layout::csrf_field(csrf))
                            (key_fields(key))
                            button.link type="submit" aria-label={ (label) " " (key) } { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// The login name proposed for a member made from `key`: the email's
/// local part (or the value), made a valid username, with a number added
/// when a person has it already (names compare without case).
fn proposed_username(key: &IdentityKey, people: &[User]) -> String {
    let base = users::suggested_username(&key.value);
    let taken = |name: &str| people.iter().any(|p| p.username.eq_ignore_ascii_case(name));
    if !taken(&base) {
        return base;
    }
    (2..1000)
        .map(|n| {
            let suffix = n.to_string();
            let room = 64 - suffix.len();
            format!("{}{suffix}", &base[..base.len().min(room)])
        })
        .find(|name| !taken(name))
        .unwrap_or(base)
}

/// The events page showing every event of `identity`: everyone's, from
/// its first to its last event.
fn events_href(identity: &identities::Identity) -> String {
    let instant = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    format!(
        "/events?view=everyone&range=custom&from={}&to={}&identity={}",
        url_value(&instant(identity.first_seen_ms)),
        url_value(&instant(identity.last_seen_ms + 1)),
        url_value(&identity.key.to_string())
    )
}

/// `value` encoded for a query string.
fn url_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
