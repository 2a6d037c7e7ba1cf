//! `/admin/teams` (admins): create teams, put people in them, move them,
//! take them out, make them lead. The same rules as `tokentally team …`
//! (`teams::store`): a first membership covers the person's past, joining
//! another team is a move from the given time (default now), and only the
//! lead flag changes for someone already in the team. Every change is
//! audited (`team.create`, `team.member_add`, `team.member_move`,
//! `team.member_remove`, `team.lead`).

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::tz::TimeZone;
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
use crate::model::{Action, User};
use crate::teams::membership;
use crate::teams::store::{self, BEGINNING_MS, Membership, Team, TeamError};
use crate::usage::params;
use crate::web::WebState;

const PATH: &str = "/admin/teams";

pub async fn page(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    mut context: PageContext,
    RawQuery(query): RawQuery,
) -> Result<(Note, Markup), AppError> {
    // The page takes no parameters: a misspelt one is refused, not ignored.
    params::check_names(query.as_deref(), &[]).map_err(|e| AppError::BadRequest(e.to_string()))?;
    context.take_flash().await?;
    let note = Note::new(Action::PageView).details(json!({"page": "admin.teams"}));
    Ok((note, render_page(&state, &context, None).await?))
}

/// The admin's zone: times typed in the forms are read in it and shown
/// in it.
fn zone(state: &WebState, user: &User) -> TimeZone {
    user.time_zone
        .as_deref()
        .or(state.time_zone.as_deref())
        .and_then(|name| TimeZone::get(name).ok())
        .unwrap_or(TimeZone::UTC)
}

async fn render_page(
    state: &WebState,
    context: &PageContext,
    error: Option<&str>,
) -> Result<Markup, AppError> {
    let (teams, memberships, people) = state
        .db
        .read(|conn| {
            Ok::<_, AppError>((
                store::list(conn)?,
                store::memberships(conn)?,
                users::list(conn)?,
            ))
        })
        .await?;
    let zone = zone(state, &context.viewer.user);
    Ok(render(
        context,
        &Lists {
            teams: &teams,
            memberships: &memberships,
            people: &people,
        },
        &zone,
        error,
    ))
}

struct Lists<'a> {
    teams: &'a [Team],
    memberships: &'a [Membership],
    people: &'a [User],
}

fn render(
    context: &PageContext,
    lists: &Lists<'_>,
    zone: &TimeZone,
    error: Option<&str>,
) -> Markup {
    let csrf = &context.viewer.csrf;
    let zone_name = zone.iana_name().unwrap_or("UTC");
    let body = html! {
        h1 { "Teams" }
        p.subtitle {
            "Each call counts for the team its user was in when it was made. A person's first team "
            "holds their whole past; joining another team later moves them from then on, and their "
            "earlier usage stays with the old team. A lead sees their team's usage."
        }
        (notices(context.flash.as_deref(), error))
        section.card aria-labelledby="create-team" {
            h2 #create-team { "Create a team" }
            form method="post" action=(PATH) {
                (layout::csrf_field(csrf))
                label for="team-name" { "Name" }
                input #team-name type="text" name="name" required maxlength="64"
                    autocapitalize="none" spellcheck="false";
                p.hint { "Letters, digits, '.', '-', '_' or '@', like a username." }
                button type="submit" { "Create team" }
            }
        }
        @if !lists.teams.is_empty() {
            section.card aria-labelledby="add-member" {
                h2 #add-member { "Add or move a member" }
                form method="post" action={ (PATH) "/members" } {
                    (layout::csrf_field(csrf))
                    label for="member-team" { "Team" }
                    select #member-team name="team" required {
                        @for team in lists.teams { option value=(team.name) { (team.name) } }
                    }
                    label for="member-user" { "Person" }
                    select #member-user name="user" required {
                        option value="" { "Choose a person" }
                        @for person in lists.people {
                            option value=(person.username) {
                                (person.username) @if person.disabled { " (disabled)" }
                            }
                        }
                    }
                    label.check for="member-lead" {
                        input #member-lead type="checkbox" name="lead" value="1";
                        " Leads the team (sees its members' usage)"
                    }
                    label for="member-since" { "From (optional, " (zone_name) ")" }
                    input #member-since type="datetime-local" name="since";
                    p.hint {
                        "Empty: from the beginning for a person's first team, else now. "
                        "For someone already in the team, only the lead choice is changed."
                    }
                    button type="submit" { "Add or move" }
                }
            }
        }
        @for team in lists.teams {
            (team_card(csrf, team, lists.memberships, zone))
        }
    };
    layout::page(context, "Teams", body)
}

fn when(ms: i64, zone: &TimeZone) -> String {
    match ms {
        BEGINNING_MS => "the beginning".to_owned(),
        ms => format::date_time(ms, zone),
    }
}

/// Past memberships shown per team, the latest first; the rest are
/// counted (`tokentally team list` shows them all).
const PAST_ROWS: usize = 20;

fn team_card(csrf: &str, team: &Team, memberships: &[Membership], zone: &TimeZone) -> Markup {
    let id = format!("team-{}", team.id);
    let mut members: Vec<&Membership> = memberships
        .iter()
        .filter(|m| m.team == team.id && m.is_current())
        .collect();
    let mut past: Vec<&Membership> = memberships
        .iter()
        .filter(|m| m.team == team.id && !m.is_current())
        .collect();
    past.sort_by_key(|m| std::cmp::Reverse(m.until_ms));
    let earlier = past.len().saturating_sub(PAST_ROWS);
    members.extend(past.into_iter().take(PAST_ROWS));
    html! {
        section.card aria-labelledby=(id) {
            h2 #(id) { "Team " (team.name) }
            @if members.is_empty() {
                p { "No members yet." }
            } @else {
                div.table-scroll {
                    table {
                        caption.visually-hidden { "Members of " (team.name) ", current and past" }
                        thead { tr {
                            th scope="col" { "Member" }
                            th scope="col" { "Lead" }
                            th scope="col" { "From" }
                            th scope="col" { "Until" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for member in members {
                                (member_row(csrf, team, member, zone))
                            }
                        }
                    }
                }
                @if earlier > 0 {
                    p { (earlier) " earlier memberships are not shown (" code { "tokentally team list" } " lists them all)." }
                }
            }
        }
    }
}

fn member_row(csrf: &str, team: &Team, member: &Membership, zone: &TimeZone) -> Markup {
    let who = format!("{} in {}", member.username, team.name);
    html! {
        tr {
            th scope="row" { (member.username) }
            td { @if member.lead { "lead" } }
            td { (when(member.since_ms, zone)) }
            td { @match member.until_ms { Some(until) => { (when(until, zone)) } None => { "now" } } }
            td.actions {
                @if member.is_current() {
                    form.inline method="post" action={ (PATH) "/members" } {
                        (layout::csrf_field(csrf))
                        input type="hidden" name="team" value=(team.name);
                        input type="hidden" name="user" value=(member.username);
                        @if !member.lead { input type="hidden" name="lead" value="1"; }
                        button.link type="submit" aria-label={ @if member.lead { "Stop leading: " } @else { "Make lead: " } (who) } {
                            @if member.lead { "Not lead" } @else { "Make lead" }
                        }
                    }
                    form.inline method="post" action={ (PATH) "/members/remove" } {
                        (layout::csrf_field(csrf))
                        input type="hidden" name="team" value=(team.name);
                        input type="hidden" name="user" value=(member.username);
                        button.link type="submit" aria-label={ "Remove " (who) } { "Remove" }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

pub async fn create(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let name = form.name.trim().to_owned();
    let now_ms = state.clock.now().as_millisecond();
    let note = Note::new(Action::TeamCreate).target(format!("team:{name}"));
    let created = state
        .db
        .write(move |conn| store::create(conn, &name, now_ms))
        .await;
    match created {
        Ok(team) => {
            flash(&session, format!("Team {} created.", team.name)).await?;
            let note = note.target(format!("team:{}", team.name));
            Ok((note, Redirect::to(PATH)).into_response())
        }
        Err(e) => refused(&state, &context, note, e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    team: String,
    #[serde(default)]
    user: String,
    /// Present (any value) when the box is ticked.
    lead: Option<String>,
    #[serde(default)]
    since: String,
}

/// A time typed in a form: `2026-06-01T09:30` (a `datetime-local` field)
/// in the admin's zone, a date, or an RFC 3339 instant; empty for none.
fn typed_time(value: &str, zone: &TimeZone) -> Result<Option<i64>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(local) = value.parse::<jiff::civil::DateTime>() {
        return local
            .to_zoned(zone.clone())
            .map(|z| Some(z.timestamp().as_millisecond()))
            .map_err(|_| format!("from: {value:?} is outside the supported dates"));
    }
    params::bound("from", value, zone)
        .map(|t| Some(t.as_millisecond()))
        .map_err(|e| e.to_string())
}

pub async fn add_member(
    State(state): State<WebState>,
    RequireAdmin(admin): RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<MemberForm>,
) -> Result<Response, AppError> {
    let note = Note::new(Action::TeamMemberAdd).target(format!("team:{}", form.team.trim()));
    let since = match typed_time(&form.since, &zone(&state, &admin)) {
        Ok(since) => since,
        Err(message) => return refuse(&state, &context, note, &message).await,
    };
    let lead = form.lead.is_some();
    let now_ms = state.clock.now().as_millisecond();
    let (team, user) = (form.team, form.user);
    let added = state
        .db
        .write(move |conn| membership::add_member(conn, &team, &user, lead, since, now_ms))
        .await;
    match added {
        Ok(done) => {
            flash(&session, format!("{}.", done.describe())).await?;
            let note = Note::new(done.added.action())
                .target(format!("team:{}", done.team))
                .details(done.details());
            Ok((note, Redirect::to(PATH)).into_response())
        }
        Err(e) => refused(&state, &context, note, e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    team: String,
    #[serde(default)]
    user: String,
}

pub async fn remove_member(
    State(state): State<WebState>,
    RequireAdmin(_): RequireAdmin,
    context: PageContext,
    session: Session,
    Form(form): Form<RemoveForm>,
) -> Result<Response, AppError> {
    let note = Note::new(Action::TeamMemberRemove).target(format!("team:{}", form.team.trim()));
    let now_ms = state.clock.now().as_millisecond();
    let (team, user) = (form.team, form.user);
    let ended = state
        .db
        .write(move |conn| membership::remove_member(conn, &team, &user, None, now_ms))
        .await;
    match ended {
        Ok(ended) => {
            let message = format!("{} left {}.", ended.username, ended.team_name);
            flash(&session, message).await?;
            let until = ended.until_ms.map(store::time_text);
            let note = note
                .target(format!("team:{}", ended.team_name))
                .details(json!({"user": ended.username, "until": until}));
            Ok((note, Redirect::to(PATH)).into_response())
        }
        Err(e) => refused(&state, &context, note, e).await,
    }
}

/// A refused change: the storage's own failures are errors; the rest are
/// the admin's to correct, shown on the page (422).
async fn refused(
    state: &WebState,
    context: &PageContext,
    note: Note,
    error: TeamError,
) -> Result<Response, AppError> {
    match error {
        TeamError::Db(e) => Err(e.into()),
        other => refuse(state, context, note, &other.to_string()).await,
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
    use super::*;

    #[test]
    fn typed_times_are_read_in_the_admin_s_zone() {
        let berlin = TimeZone::get("Europe/Berlin").expect("zone");
        for (typed, expected) in [
            ("", None),
            ("2026-06-01T09:30", Some("2026-06-01T07:30:00Z")),
            ("2026-06-01", Some("2026-05-31T22:00:00Z")),
            ("2026-06-01T09:30:00Z", Some("2026-06-01T09:30:00Z")),
        ] {
            let got = typed_time(typed, &berlin).expect(typed);
            let expected = expected.map(|t| {
                t.parse::<jiff::Timestamp>()
                    .expect("timestamp")
                    .as_millisecond()
            });
            assert_eq!(got, expected, "{typed:?}");
        }
        assert!(typed_time("soon", &berlin).is_err());
    }
}
