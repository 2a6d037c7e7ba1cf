//! `/alerts`: past alerts the viewer may see (`budgets::access`): an admin
//! every alert with how its deliveries went; a member their own and those
//! of the pooled budgets they share (as percentages only).

use axum::extract::{RawQuery, State};
use maud::{Markup, html};
use serde_json::json;

use super::budget_views::amount;
use super::page::PageContext;
use super::{format, layout};
use crate::alerts::store::recent_with_deliveries;
use crate::alerts::{AlertKind, AlertRow};
use crate::audit::Note;
use crate::budgets::Measure;
use crate::budgets::access::{Sight, Viewer};
use crate::budgets::board::current_team;
use crate::budgets::store;
use crate::error::AppError;
use crate::model::{Action, TeamId, Unit};
use crate::usage::params;
use crate::web::WebState;

/// Alerts read per page (the newest first).
const ROWS: usize = 200;

/// An alert as shown, with what the viewer may see of it.
struct Line {
    alert: AlertRow,
    sight: Sight,
    /// Delivered, waiting, retrying and given-up deliveries (admins).
    deliveries: crate::alerts::store::DeliveryCounts,
    last_error: Option<String>,
}

pub async fn page(
    State(state): State<WebState>,
    context: PageContext,
    RawQuery(query): RawQuery,
) -> Result<(Note, Markup), AppError> {
    params::check_names(query.as_deref(), &[]).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let user = context.viewer.user.clone();
    let leads: Vec<TeamId> = context.leads.iter().map(|t| t.id).collect();
    let lines = state
        .db
        .read(move |conn| {
            let budgets = store::list(conn)?;
            let viewer = Viewer {
                user: &user,
                leads: &leads,
                team: current_team(conn, user.id)?,
            };
            let mut lines = Vec::new();
            for (alert, deliveries, last_error) in recent_with_deliveries(conn, ROWS)? {
                let budget = budgets.iter().find(|b| Some(b.id) == alert.budget_id);
                let sight = viewer.alert_shown(&alert, budget);
                if sight != Sight::Hidden {
                    lines.push(Line {
                        alert,
                        sight,
                        deliveries,
                        last_error,
                    });
                }
            }
            Ok::<_, AppError>(lines)
        })
        .await?;
    let note =
        Note::new(Action::AlertsRead).details(json!({"page": "alerts", "rows": lines.len()}));
    Ok((note, render(&context, &state, &lines)))
}

fn render(context: &PageContext, state: &WebState, lines: &[Line]) -> Markup {
    let admin = context.viewer.user.is_admin();
    let zone = context
        .viewer
        .user
        .time_zone
        .as_deref()
        .or(state.time_zone.as_deref())
        .and_then(|z| jiff::tz::TimeZone::get(z).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let body = html! {
        h1 { "Alerts" }
        p.subtitle { "What watching usage found, newest first. " a href="/budgets" { "Budgets" } }
        @if lines.is_empty() {
            p { "No alerts yet." }
        } @else {
            div.table-scroll {
                table #alerts-table {
                    caption.visually-hidden { "Past alerts" }
                    thead { tr {
                        th scope="col" { "When" }
                        th scope="col" { "What" }
                        th scope="col" { "Budget or person" }
                        th scope="col" { "Figures" }
                        @if admin { th scope="col" { "Delivery" } }
                    } }
                    tbody {
                        @for line in lines {
                            tr {
                                td { (format::date_time(line.alert.created_ms, &zone)) }
                                td { (what(&line.alert)) }
                                td { (subject(&line.alert)) }
                                td { (figures(line, &context.unit)) }
                                @if admin { td { (delivery(line)) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(context, "Alerts", body)
}

fn what(alert: &AlertRow) -> String {
    match alert.kind {
        AlertKind::Threshold => format!("{} % reached", alert.threshold),
        AlertKind::Projected => "projected to exceed".to_owned(),
        AlertKind::Unusual => "unusual usage".to_owned(),
    }
}

fn subject(alert: &AlertRow) -> String {
    let text = |key: &str| {
        alert
            .details
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match (text("budget"), text("member").or_else(|| text("user"))) {
        (Some(budget), Some(member)) => format!("{budget} ({member})"),
        (Some(budget), None) => format!("{budget} ({})", text("scope").unwrap_or_default()),
        (None, Some(member)) => member,
        (None, None) => String::new(),
    }
}

fn figures(line: &Line, unit: &Unit) -> String {
    let alert = &line.alert;
    let measure = if alert.measure == "tokens" {
        Measure::Tokens
    } else {
        Measure::Cost
    };
    match (line.sight, alert.amount) {
        (Sight::Share, Some(total)) if total > 0 => {
            let percent = i128::from(alert.used) * 100 / i128::from(total);
            format!("{percent} % used")
        }
        (_, Some(total)) => {
            let mut text = format!(
                "{} of {}",
                amount(measure, alert.used, unit),
                amount(measure, total, unit)
            );
            if let Some(projected) = alert.projected {
                text.push_str(&format!(", projected {}", amount(measure, projected, unit)));
            }
            text
        }
        (_, None) => amount(measure, alert.used, unit),
    }
}

fn delivery(line: &Line) -> Markup {
    let (delivered, waiting, retrying, given_up) = line.deliveries;
    html! {
        @if delivered + waiting + retrying + given_up == 0 { "recorded (no channel)" }
        @if delivered > 0 { (delivered) " delivered " }
        @if waiting > 0 { (waiting) " waiting " }
        @if retrying > 0 { (retrying) " retrying " }
        @if given_up > 0 { (given_up) " given up after 48 hours" }
        @if let Some(error) = &line.last_error { span.cell-note { (error) } }
    }
}
