//! How budgets and alerts look: a card per budget (used, remaining, the
//! percentage, the forecast and when the period resets), the compact list
//! on the overview, and the alerts banner. Pooled budgets a member only
//! shares show the percentage, never the amounts (other people's usage).

use jiff::Timestamp;
use maud::{Markup, html};

use super::format;
use crate::alerts::{AlertKind, AlertRow};
use crate::budgets::access::Sight;
use crate::budgets::board::Shown;
use crate::budgets::forecast::Forecast;
use crate::budgets::status::Burn;
use crate::budgets::{Budget, Measure, Standing};
use crate::model::Unit;

/// An amount of the budget's measure, in the instance's unit for money.
pub fn amount(measure: Measure, value: i64, unit: &Unit) -> String {
    match measure {
        Measure::Cost => unit.money(value),
        Measure::Tokens => format!("{} tokens", format::integer(value)),
    }
}

/// "resets in 4 days, on Dec 1 00:00 Europe/Berlin".
pub fn resets(budget: &Budget, end: Timestamp, now: Timestamp) -> String {
    let zone = budget.time_zone();
    let local = end.to_zoned(zone);
    let seconds = (end.as_second() - now.as_second()).max(0);
    let after = match seconds {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 120 => format!("{} minutes", s / 60),
        _ => "a minute".to_owned(),
    };
    format!(
        "resets in {after}, on {} {}",
        local.strftime("%b %-d %H:%M"),
        budget.zone
    )
}

/// "85.5 %" of a standing.
pub fn percent(standing: &Standing) -> String {
    let bp = standing.basis_points();
    format!("{}.{} %", bp / 100, (bp % 100) / 10)
}

fn meter(standing: &Standing, label: &str) -> Markup {
    let bp = standing.basis_points().min(10_000);
    let over = standing.reached(100);
    html! {
        meter.budget-meter min="0" max="10000" low="8000" high="9999" optimum="0"
            value=(bp) aria-label=(label) class=[over.then_some("over")] {}
    }
}

fn forecast_line(budget: &Budget, forecast: &Forecast, unit: &Unit) -> Markup {
    let measure = budget.measure;
    let over = forecast.projected > budget.amount;
    html! {
        p.forecast class=[over.then_some("over")] {
            "Projected at the period's end: " strong { (amount(measure, forecast.projected, unit)) }
            @if over { " — over the budget" }
            " ("
            @if forecast.history_days == 0 {
                "at this period's pace so far"
            } @else {
                (amount(measure, forecast.weekday_rate, unit)) " per working day, "
                (amount(measure, forecast.weekend_rate, unit)) " per weekend day, from the last "
                (forecast.history_days) " days"
            }
            ")."
        }
    }
}

fn standing_block(shown: &Shown, standing: &Standing, unit: &Unit, now: Timestamp) -> Markup {
    let budget = &shown.budget;
    let measure = budget.measure;
    let label = format!("{} used", budget.name);
    html! {
        @if let Some((_, name)) = &standing.member { h3 { (name) } }
        (meter(standing, &label))
        @if shown.sight == Sight::Share {
            p { (percent(standing)) " of the shared budget used; "
                (resets(budget, standing.window.end, now)) "." }
        } @else {
            p {
                strong { (amount(measure, standing.used, unit)) } " of "
                (amount(measure, standing.amount, unit)) " used (" (percent(standing)) "), "
                (amount(measure, standing.remaining(), unit)) " left; "
                (resets(budget, standing.window.end, now)) "."
            }
            @if let Some(forecast) = &standing.forecast { (forecast_line(budget, forecast, unit)) }
        }
    }
}

/// Members of an each-member budget listed in full; the rest summed.
const MEMBER_ROWS: usize = 50;

/// One budget's card; `remove` is the removal form when the viewer may.
pub fn card(shown: &Shown, unit: &Unit, now: Timestamp, remove: Option<Markup>) -> Markup {
    let budget = &shown.budget;
    let id = format!("budget-{}", budget.id);
    let what = match (shown.sight, budget.measure) {
        (Sight::Share, _) => String::new(),
        (_, measure) => format!(
            ", {} per {}",
            amount(measure, budget.amount, unit),
            budget.period.name()
        ),
    };
    html! {
        section.card.budget aria-labelledby=(id) {
            h2 #(id) { (budget.name) }
            p.subtitle {
                (budget.scope.label()) (what) " (" (every(budget)) ", " (budget.zone) "); "
                "alerts at " (thresholds(&budget.thresholds)) "."
            }
            @if shown.standings.is_empty() {
                p { "No usage in this period yet; "
                    (budget.period.window_at(&budget.time_zone(), now).map(|w| resets(budget, w.end, now)).unwrap_or_default()) "." }
            }
            @for standing in shown.standings.iter().take(MEMBER_ROWS) {
                (standing_block(shown, standing, unit, now))
            }
            @if let (Some(burn), [standing]) = (&shown.burn, shown.standings.as_slice()) {
                (burn_chart(shown, standing, burn, unit))
            }
            @if shown.standings.len() > MEMBER_ROWS {
                p { (shown.standings.len() - MEMBER_ROWS) " more members (see `tokentally budget list`)." }
            }
            @if let Some(form) = remove { (form) }
        }
    }
}

fn every(budget: &Budget) -> &'static str {
    match budget.period {
        crate::budgets::Period::Day => "daily",
        crate::budgets::Period::Week { .. } => "weekly",
        crate::budgets::Period::Month => "monthly",
    }
}

fn thresholds(values: &[i64]) -> String {
    values
        .iter()
        .map(|v| format!("{v} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The overview's compact list: one line per budget standing.
pub fn overview_card(board: &[Shown], unit: &Unit, now: Timestamp) -> Markup {
    if board.is_empty() {
        return html! {};
    }
    html! {
        section.card aria-labelledby="budgets-heading" {
            div.card-head {
                h2 #budgets-heading { "Budgets" }
                a.button href="/budgets" { "All budgets" }
            }
            ul.budget-list {
                @for shown in board {
                    @for standing in shown.standings.iter().take(3) {
                        li {
                            strong { (shown.budget.name) }
                            @if let Some((_, name)) = &standing.member { " (" (name) ")" }
                            ": " (percent(standing))
                            @if shown.sight != Sight::Share {
                                " — " (amount(shown.budget.measure, standing.used, unit)) " of "
                                (amount(shown.budget.measure, standing.amount, unit))
                                @if let Some(f) = standing.forecast {
                                    ", projected " (amount(shown.budget.measure, f.projected, unit))
                                    @if f.projected > standing.amount { span.over { " (over)" } }
                                }
                            }
                            "; " (resets(&shown.budget, standing.window.end, now))
                            (meter(standing, &format!("{} used", shown.budget.name)))
                        }
                    }
                }
            }
        }
    }
}

/// The overview's banner: alerts of the last day the viewer may see.
pub fn alerts_banner(alerts: &[(AlertRow, Sight)], unit: &Unit) -> Markup {
    if alerts.is_empty() {
        return html! {};
    }
    html! {
        div.notice.alert-banner role="status" {
            ul {
                @for (alert, sight) in alerts {
                    li { (alert_text(alert, *sight, unit)) }
                }
            }
            a href="/alerts" { "All alerts" }
        }
    }
}

/// One alert in a sentence, with the amounts only where the viewer may
/// see them.
pub fn alert_text(alert: &AlertRow, sight: Sight, unit: &Unit) -> String {
    let text = |key: &str| {
        alert
            .details
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
    };
    let measure = if alert.measure == "tokens" {
        Measure::Tokens
    } else {
        Measure::Cost
    };
    let who = match text("member") {
        "" => String::new(),
        member => format!(" ({member})"),
    };
    let figures = match (sight, alert.amount) {
        (Sight::Full | Sight::Own, Some(total)) => format!(
            ": {} of {}",
            amount(measure, alert.used, unit),
            amount(measure, total, unit)
        ),
        _ => String::new(),
    };
    match alert.kind {
        AlertKind::Threshold => format!(
            "Budget {}{who} reached {} %{figures}.",
            text("budget"),
            alert.threshold
        ),
        AlertKind::Projected => format!(
            "Budget {}{who} is projected to exceed its amount this period{figures}.",
            text("budget")
        ),
        AlertKind::Unusual => format!("Unusual usage{who}{figures}."),
    }
}

/// What `ui/app.js` draws for a budget: used so far (solid), the forecast
/// from today to the period's end (dashed), and the amount (flat). Amounts
/// in the unit's micro-units (money) or tokens.
#[derive(serde::Serialize)]
struct BurnData<'a> {
    labels: &'a [String],
    used: Vec<Option<i64>>,
    projected: Vec<Option<i64>>,
    amount: i64,
    metric: &'static str,
    money: (String, String),
}

/// The budget's chart: a figure with its table (always there) and the
/// data the script draws from.
pub fn burn_chart(shown: &Shown, standing: &Standing, burn: &Burn, unit: &Unit) -> Markup {
    let budget = &shown.budget;
    let value = |v: i64| match budget.measure {
        Measure::Cost => unit.chart_value(v),
        Measure::Tokens => v,
    };
    let days = burn.days.len();
    let done = burn.used.len();
    let mut used: Vec<Option<i64>> = burn.used.iter().map(|v| Some(value(*v))).collect();
    used.resize(days, None);
    // The dashed line: from today's total, evenly to the projection.
    let mut projected = vec![None; days];
    if let (Some(forecast), Some(last)) = (standing.forecast, burn.used.last()) {
        let left = (days - done) as i64;
        for (step, slot) in projected
            .iter_mut()
            .enumerate()
            .skip(done.saturating_sub(1))
        {
            let k = (step + 1 - done) as i64;
            let at = if left == 0 {
                *last
            } else {
                last + (forecast.projected - last) * k / left.max(1)
            };
            *slot = Some(value(at));
        }
    }
    let data = BurnData {
        labels: &burn.days,
        used,
        projected,
        amount: value(budget.amount),
        metric: budget.measure.name(),
        money: (unit.prefix(), unit.suffix()),
    };
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let id = format!("burn-{}", budget.id);
    html! {
        figure.chart-figure aria-labelledby={ (id) "-caption" } {
            figcaption #{ (id) "-caption" } {
                (budget.name) ": used day by day, and the forecast to the period's end"
            }
            div.burn-chart id=(id) data-burn=(id) hidden {}
            script type="application/json" id={ (id) "-data" } { (maud::PreEscaped(json)) }
            details.chart-table {
                summary { "Table of this chart" }
                div.table-scroll {
                    table {
                        caption.visually-hidden { (budget.name) ", used by the end of each day" }
                        thead { tr { th scope="col" { "Day" } th.num scope="col" { "Used so far" } } }
                        tbody {
                            @for (day, used) in burn.days.iter().zip(&burn.used) {
                                tr { th scope="row" { (day) } td.num { (amount(budget.measure, *used, unit)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
