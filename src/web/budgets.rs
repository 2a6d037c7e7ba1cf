//! `/budgets`: the budgets that cover the viewer (`budgets::access`), each
//! with used, remaining, the percentage, the forecast and the next reset;
//! admins set and remove any budget, a lead those of the teams they lead.
//! Every change is audited (`budget.create`, `budget.remove`).

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::budget_views::card;
use super::flash::{flash, notices};
use super::layout;
use super::page::PageContext;
use crate::audit::Note;
use crate::budgets::access::Viewer;
use crate::budgets::board::{Shown, board};
use crate::budgets::period::parse_weekday;
use crate::budgets::store::{self, BudgetError, Measure, NewBudget};
use crate::budgets::watch;
use crate::error::AppError;
use crate::model::{Action, TeamId};
use crate::usage::params;
use crate::web::WebState;

const PATH: &str = "/budgets";

fn leads(context: &PageContext) -> Vec<TeamId> {
    context.leads.iter().map(|team| team.id).collect()
}

pub async fn page(
    State(state): State<WebState>,
    mut context: PageContext,
    RawQuery(query): RawQuery,
) -> Result<(Note, Markup), AppError> {
    params::check_names(query.as_deref(), &[]).map_err(|e| AppError::BadRequest(e.to_string()))?;
    context.take_flash().await?;
    let note = Note::new(Action::PageView).details(json!({"page": "budgets"}));
    Ok((note, render_page(&state, &context, None).await?))
}

/// What the page lists besides the budgets: the choices of the form.
struct Choices {
    teams: Vec<(TeamId, String)>,
    people: Vec<String>,
    channels: Vec<String>,
}

async fn render_page(
    state: &WebState,
    context: &PageContext,
    error: Option<&str>,
) -> Result<Markup, AppError> {
    let now = state.clock.now();
    let user = context.viewer.user.clone();
    let leads = leads(context);
    let (board, choices) = state
        .db
        .read(move |conn| {
            let board = board(conn, &user, &leads, now).map_err(crate::db::DbError::from)?;
            let choices = choices(conn, &user, &leads)?;
            Ok::<_, AppError>((board, choices))
        })
        .await?;
    Ok(render(state, context, &board, &choices, now, error))
}

fn choices(
    conn: &rusqlite::Connection,
    user: &crate::model::User,
    leads: &[TeamId],
) -> Result<Choices, crate::db::DbError> {
    let teams = crate::teams::store::list(conn)?
        .into_iter()
        .filter(|team| user.is_admin() || leads.contains(&team.id))
        .map(|team| (team.id, team.name))
        .collect();
    let (people, channels) = if user.is_admin() {
        let people = crate::auth::users::list(conn)?
            .into_iter()
            .map(|u| u.username)
            .collect();
        let mut stmt = conn.prepare_cached("SELECT name FROM channels ORDER BY name")?;
        let channels = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        (people, channels)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Choices {
        teams,
        people,
        channels,
    })
}

fn render(
    state: &WebState,
    context: &PageContext,
    board: &[Shown],
    choices: &Choices,
    now: Timestamp,
    error: Option<&str>,
) -> Markup {
    let csrf = &context.viewer.csrf;
    let admin = context.viewer.user.is_admin();
    let leads = leads(context);
    let viewer = Viewer {
        user: &context.viewer.user,
        leads: &leads,
        team: None,
    };
    let body = html! {
        h1 { "Budgets" }
        p.subtitle {
            "Money or tokens per day, week or month. Each threshold alerts once per period "
            a href="/alerts" { "(past alerts)" } "."
        }
        (notices(context.flash.as_deref(), error))
        @if board.is_empty() { p { "No budget covers you yet." } }
        @for shown in board {
            (card(shown, &context.unit, now, viewer.may_manage(&shown.budget.scope).then(|| remove_form(csrf, &shown.budget.name))))
        }
        @if admin || !choices.teams.is_empty() {
            (create_form(csrf, choices, admin, state.time_zone.as_deref().unwrap_or("UTC")))
        }
    };
    layout::page(context, "Budgets", body)
}

fn remove_form(csrf: &str, name: &str) -> Markup {
    html! {
        form.inline method="post" action={ (PATH) "/remove" } {
            (layout::csrf_field(csrf))
            input type="hidden" name="name" value=(name);
            button.link type="submit" { "Remove " (name) }
        }
    }
}

fn create_form(csrf: &str, choices: &Choices, admin: bool, zone: &str) -> Markup {
    html! {
        section.card aria-labelledby="set-budget" {
            h2 #set-budget { "Set a budget" }
            form method="post" action=(PATH) {
                (layout::csrf_field(csrf))
                label for="budget-name" { "Name" }
                input #budget-name type="text" name="name" required maxlength="64"
                    autocapitalize="none" spellcheck="false";
                label for="budget-scope" { "For" }
                select #budget-scope name="scope" required {
                    @if admin {
                        option value="everyone" { "Everyone, pooled" }
                        option value="each-member" { "Each member, on their own" }
                    }
                    @for (_, team) in &choices.teams { option value={ "team:" (team) } { "Team " (team) } }
                    @for person in &choices.people { option value={ "user:" (person) } { "Person " (person) } }
                    @if admin { option value="model" { "One model (name below)" } }
                }
                @if admin {
                    label for="budget-model" { "Model (for a model budget)" }
                    input #budget-model type="text" name="model" maxlength="256" spellcheck="false";
                }
                label for="budget-period" { "Period" }
                select #budget-period name="period" {
                    option value="month" { "Month" }
                    option value="week" { "Week" }
                    option value="day" { "Day" }
                }
                label for="budget-measure" { "Counts" }
                select #budget-measure name="measure" {
                    option value="cost" { "Money (US dollars, like prices)" }
                    option value="tokens" { "Tokens" }
                }
                label for="budget-amount" { "Amount per period" }
                input #budget-amount type="text" name="amount" required inputmode="decimal";
                label for="budget-zone" { "Time zone of the period's edges" }
                input #budget-zone type="text" name="time_zone" value=(zone) required;
                label for="budget-week-start" { "Weeks start on" }
                input #budget-week-start type="text" name="week_start" value="monday";
                label for="budget-thresholds" { "Alert at (percent)" }
                input #budget-thresholds type="text" name="thresholds" value="50,80,100";
                @if !choices.channels.is_empty() {
                    label for="budget-channel" { "Send alerts to" }
                    select #budget-channel name="channel" {
                        option value="" { "No channel (the alerts page only)" }
                        @for channel in &choices.channels { option value=(channel) { (channel) } }
                    }
                }
                label.check for="budget-past" {
                    input #budget-past type="checkbox" name="alert_past" value="1";
                    " Also alert for thresholds this period has already passed"
                }
                button type="submit" { "Set budget" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct BudgetForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    measure: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    week_start: String,
    #[serde(default)]
    thresholds: String,
    #[serde(default)]
    channel: String,
    alert_past: Option<String>,
}

impl BudgetForm {
    fn to_new(&self, context: &PageContext) -> Result<NewBudget, BudgetError> {
        let invalid = |field, reason: &str| BudgetError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        let measure = match self.measure.as_str() {
            "tokens" => Measure::Tokens,
            _ => Measure::Cost,
        };
        let amount = match measure {
            Measure::Cost => crate::usage::prices::parse_micros(&self.amount)
                .map_err(|reason| invalid("amount", &reason))?,
            Measure::Tokens => self
                .amount
                .trim()
                .parse()
                .map_err(|_| invalid("amount", "a whole number of tokens"))?,
        };
        let scope = match self.scope.as_str() {
            "model" => format!("model:{}", self.model.trim()),
            other => other.to_owned(),
        };
        Ok(NewBudget {
            name: self.name.clone(),
            period: self.period.clone(),
            week_start: parse_weekday(self.week_start.trim())
                .ok_or_else(|| invalid("week_start", "a weekday: monday … sunday"))?,
            zone: self.time_zone.trim().to_owned(),
            measure,
            amount,
            scope,
            thresholds: store::parse_thresholds(&self.thresholds)?,
            channels: Some(self.channel.trim())
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .into_iter()
                .collect(),
            created_by: Some(context.viewer.user.id),
        })
    }
}

pub async fn create(
    State(state): State<WebState>,
    context: PageContext,
    session: Session,
    Form(form): Form<BudgetForm>,
) -> Result<Response, AppError> {
    // Only admins and leads set budgets (a lead, for the teams they lead).
    if !context.viewer.user.is_admin() && context.leads.is_empty() {
        return Err(AppError::Forbidden);
    }
    let note = Note::new(Action::BudgetCreate).target(format!("budget:{}", form.name.trim()));
    let new = match form.to_new(&context) {
        Ok(new) => new,
        Err(e) => return refused(&state, &context, note, e).await,
    };
    let leads = leads(&context);
    let user = context.viewer.user.clone();
    let now = state.clock.now();
    let alert_past = form.alert_past.is_some();
    let created = state
        .db
        .write(move |conn| {
            let budget = store::create(conn, &new, now.as_millisecond())?;
            let viewer = Viewer {
                user: &user,
                leads: &leads,
                team: None,
            };
            if !viewer.may_manage(&budget.scope) {
                // Checked after resolving the scope's names; the
                // transaction is rolled back with the refusal.
                return Err(BudgetError::Invalid {
                    field: "scope",
                    reason: "you may set budgets only for the teams you lead".into(),
                });
            }
            if alert_past {
                watch::evaluate(conn, &budget, now, false)?;
            } else {
                watch::settle(conn, &budget, now)?;
            }
            Ok::<_, BudgetError>(budget)
        })
        .await;
    match created {
        Ok(budget) => {
            flash(&session, format!("Budget {} set.", budget.name)).await?;
            let details = budget.describe();
            Ok((note.details(details), Redirect::to(PATH)).into_response())
        }
        Err(e) => refused(&state, &context, note, e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    name: String,
}

pub async fn remove(
    State(state): State<WebState>,
    context: PageContext,
    session: Session,
    Form(form): Form<RemoveForm>,
) -> Result<Response, AppError> {
    if !context.viewer.user.is_admin() && context.leads.is_empty() {
        return Err(AppError::Forbidden);
    }
    let name = form.name.trim().to_owned();
    let note = Note::new(Action::BudgetRemove).target(format!("budget:{name}"));
    let leads = leads(&context);
    let admin = context.viewer.user.is_admin();
    let removed = state
        .db
        .write(move |conn| {
            let budget = store::find(conn, &name)?.ok_or(BudgetError::NotFound(name.clone()))?;
            let may = admin
                || matches!(&budget.scope, crate::budgets::BudgetScope::Team { id, .. } if leads.contains(id));
            if !may {
                return Err(BudgetError::NotFound(name));
            }
            store::remove(conn, &budget.name)
        })
        .await;
    match removed {
        Ok(budget) => {
            flash(
                &session,
                format!("Budget {} removed; its past alerts stay.", budget.name),
            )
            .await?;
            Ok((note, Redirect::to(PATH)).into_response())
        }
        Err(e) => refused(&state, &context, note, e).await,
    }
}

async fn refused(
    state: &WebState,
    context: &PageContext,
    note: Note,
    error: BudgetError,
) -> Result<Response, AppError> {
    match error {
        BudgetError::Db(e) => Err(e.into()),
        other => {
            let page = render_page(state, context, Some(&other.to_string())).await?;
            let note = note.outcome(crate::model::Outcome::Failure);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, note, page).into_response())
        }
    }
}
