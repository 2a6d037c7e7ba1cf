//! The overview, everyone's home page: totals for the range with the
//! change against the period before, usage per bucket stacked by model or
//! by activity, and the top models and activities. A member sees their
//! own; an admin everyone's, their own or one user's (`view`).

use axum::extract::State;
use maud::{Markup, html};

use super::chart::{self, Chart, Metric};
use super::controls::{DataPage, ViewChoices, time_controls, view_switcher};
use super::{budget_views, format, layout};
use crate::alerts::AlertRow;
use crate::audit::Note;
use crate::budgets::access::Sight;
use crate::budgets::board::{self, Shown};
use crate::db::DbError;
use crate::error::AppError;
use crate::model::TeamId;
use crate::model::{Scope, Totals, Unit};
use crate::usage::query::{self, GroupBy, QueryError, Series, SeriesQuery, Top, TotalsWithChange};
use crate::usage::rollup::Dim;
use crate::usage::unassigned::{self, Unassigned};
use crate::web::WebState;

/// How far back the overview's banner shows alerts.
const ALERTS_SHOWN_MS: i64 = 86_400_000;
/// Rows of the top models and activities tables (then one "Other" row).
const TOP: usize = 8;
/// Groups of the other dimension kept for a bar's hover breakdown; the
/// rest show as one "Other" entry.
const BREAKDOWN_GROUPS: usize = 24;

impl From<QueryError> for AppError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Buckets(e) => AppError::BadRequest(e.to_string()),
            QueryError::Db(e) => AppError::from(e),
        }
    }
}

/// Everything the overview shows, read in one go.
struct Overview {
    totals: TotalsWithChange,
    split: Series,
    breakdown: Series,
    models: Top,
    activities: Top,
    choices: ViewChoices,
    /// Admins viewing everyone: the usage held by unlinked identities.
    unassigned: Option<Unassigned>,
    /// The budgets that cover the viewer, and the alerts of the last day.
    budgets: Vec<Shown>,
    alerts: Vec<(AlertRow, Sight)>,
}

/// The split of the bars: `model` (default), `activity`, or `team` (the
/// team each call's user was in then; offered where several people's
/// usage is shown, [`by_team_offered`]).
fn split(page: &DataPage) -> (GroupBy, GroupBy, &'static str, &'static str) {
    match page.url.get("split") {
        Some("activity") => (
            Dim::Activity.into(),
            Dim::Model.into(),
            "activity",
            "By model",
        ),
        Some("team") if by_team_offered(page) => {
            (GroupBy::Team, Dim::Model.into(), "team", "By model")
        }
        _ => (
            Dim::Model.into(),
            Dim::Activity.into(),
            "model",
            "By activity",
        ),
    }
}

/// Whether the bars may be split by team: for everyone's usage. One
/// person's usage, or one team's, is in one team at a time.
fn by_team_offered(page: &DataPage) -> bool {
    match page.reader.scope {
        Scope::Everyone => true,
        Scope::User(_) | Scope::Team(_) => false,
    }
}

pub async fn page(
    State(state): State<WebState>,
    page: DataPage,
) -> Result<(Note, Markup), AppError> {
    let scope = page.reader.scope;
    let query = page.params.series.clone();
    let (split_dim, other_dim, _, _) = split(&page);
    let admin = page.context.viewer.user.is_admin();
    let everyone = admin && matches!(scope, Scope::Everyone);
    // The chart keeps its largest series by what it shows.
    let rank = Metric::parse(page.url.get("metric")).rank();
    let (user, now) = (page.context.viewer.user.clone(), state.clock.now());
    let leads: Vec<TeamId> = page.context.leads.iter().map(|t| t.id).collect();
    let data = state
        .db
        .read(move |conn| {
            let grouped = |dim| SeriesQuery {
                group_by: Some(dim),
                ..query.clone()
            };
            let (from, to, filters) = (query.from, query.to, &query.filters);
            Ok::<_, AppError>(Overview {
                totals: query::totals_with_change(conn, scope, from, to, filters)?,
                split: query::series_top(
                    conn,
                    scope,
                    &grouped(split_dim),
                    chart::MAX_SERIES,
                    rank,
                )?,
                breakdown: query::series_top(
                    conn,
                    scope,
                    &grouped(other_dim),
                    BREAKDOWN_GROUPS,
                    rank,
                )?,
                models: query::top(conn, scope, from, to, filters, Dim::Model, TOP)?,
                activities: query::top(conn, scope, from, to, filters, Dim::Activity, TOP)?,
                choices: ViewChoices::load(conn, admin)?,
                unassigned: if everyone {
                    Some(unassigned::summary(conn, from, to, filters)?)
                } else {
                    None
                },
                budgets: board::board(conn, &user, &leads, now).map_err(DbError::from)?,
                alerts: board::recent_alerts(
                    conn,
                    &user,
                    &leads,
                    now.as_millisecond() - ALERTS_SHOWN_MS,
                    3,
                )?,
            })
        })
        .await?;
    let body = render(&page, &data, now);
    Ok((
        page.note("overview"),
        layout::page(&page.context, "Overview", body),
    ))
}

fn render(page: &DataPage, data: &Overview, now: jiff::Timestamp) -> Markup {
    let metric = Metric::parse(page.url.get("metric"));
    let (_, _, filter, breakdown_title) = split(page);
    let caption = format!(
        "{} per {} by {filter}, {}",
        match metric {
            Metric::Tokens => "Tokens",
            Metric::Cost => "Cost",
        },
        page.params.series.bucket.name(),
        page.range_label()
    );
    html! {
        div.page-head {
            h1 { (page.whose()) }
            (view_switcher(page, "/", &data.choices))
        }
        (budget_views::alerts_banner(&data.alerts, &page.context.unit))
        (time_controls(page, "/"))
        (totals_cards(&page.context.unit, &data.totals))
        (budget_views::overview_card(&data.budgets, &page.context.unit, now))
        @if let Some(unassigned) = data.unassigned.as_ref().filter(|u| u.any()) {
            (unassigned_card(page, unassigned))
        }
        @if data.totals.current.calls == 0 {
            section.card.empty {
                h2 { "No usage in this range" }
                p { "Nothing was recorded between these dates. Usage appears here as soon as events arrive: "
                    a href="/connect" { "connect a producer" }
                    " (Claude Code, Gemini CLI, Codex, an OpenTelemetry SDK, LiteLLM or "
                    code { "tokentally import" } ") to send some." }
            }
        } @else {
            section.card aria-labelledby="chart-heading" {
                div.card-head {
                    h2 #chart-heading { "Usage over time" }
                    (toggles(page, metric, filter))
                }
                (chart::render(&Chart {
                    id: "usage-chart",
                    caption: &caption,
                    series: &data.split,
                    breakdown: Some((breakdown_title, &data.breakdown)),
                    metric,
                    filter,
                    url: &page.url,
                    unit: &page.context.unit,
                }))
            }
            div.two-columns {
                (top_table(page, "Top models", "model", &data.models))
                (top_table(page, "Top activities", "activity", &data.activities))
            }
        }
    }
}

fn toggles(page: &DataPage, metric: Metric, filter: &str) -> Markup {
    let mut splits = vec![("model", "By model"), ("activity", "By activity")];
    if by_team_offered(page) {
        splits.push(("team", "By team"));
    }
    html! {
        div.toggles {
            nav.segmented aria-label="Split bars by" {
                @for (value, label) in splits {
                    a href=(page.url.with(&[("split", Some(value))]).href("/"))
                        aria-current=[(filter == value).then_some("true")] { (label) }
                }
            }
            nav.segmented aria-label="Measure" {
                @for (value, label) in [(Metric::Tokens, "Tokens"), (Metric::Cost, "Cost")] {
                    a href=(page.url.with(&[("metric", Some(value.code()))]).href("/"))
                        aria-current=[(metric == value).then_some("true")] { (label) }
                }
            }
        }
    }
}

fn change(current: i64, previous: i64) -> Markup {
    html! {
        dd.change {
            @if let Some(text) = format::change(current, previous) {
                (text) " vs previous period"
            } @else {
                "no earlier usage to compare"
            }
        }
    }
}

fn totals_cards(unit: &Unit, totals: &TotalsWithChange) -> Markup {
    let (now, before) = (&totals.current, &totals.previous);
    html! {
        section aria-label="Totals" {
            dl.totals {
                div { dt { "Cost" } dd { (unit.money(now.cost_micros)) } (change(now.cost_micros, before.cost_micros)) }
                div { dt { "Calls" } dd { (format::integer(now.calls)) } (change(now.calls, before.calls)) }
                div { dt { "Tokens" } dd { (format::tokens(now.all_tokens())) } (change(now.all_tokens(), before.all_tokens())) }
                div { dt { "Input" } dd { (format::tokens(now.input_tokens)) } }
                div { dt { "Output" } dd { (format::tokens(now.output_tokens)) } }
                div { dt { "Cache read" } dd { (format::tokens(now.cache_read_tokens)) } }
                div { dt { "Cache write" } dd { (format::tokens(now.cache_write_tokens)) } }
            }
            (cost_origins(unit, now))
            @if now.unpriced_calls > 0 {
                p.notice role="note" {
                    (format::integer(now.unpriced_calls))
                    " calls have no known price and are not included in the cost. "
                    "An admin can add prices on the Prices page."
                }
            }
        }
    }
}

/// How much of the cost producers reported and how much was computed from
/// prices, and the share of calls with no price at all.
fn cost_origins(unit: &Unit, totals: &Totals) -> Markup {
    if totals.calls == 0 {
        return html! {};
    }
    let reported = totals.reported_cost_micros;
    let computed = totals.computed_cost_micros();
    let share = |part: i64, whole: i64| format::percent_of(part, whole);
    html! {
        p.cost-origins #cost-origins {
            "Of the cost, "
            (unit.money(reported)) " (" (share(reported, totals.cost_micros)) ") was reported by producers and "
            (unit.money(computed)) " (" (share(computed, totals.cost_micros)) ") computed from prices"
            @if totals.unpriced_calls > 0 {
                "; " (format::integer(totals.unpriced_calls)) " of " (format::integer(totals.calls))
                " calls (" (share(totals.unpriced_calls, totals.calls)) ") have no price"
            }
            "."
        }
    }
}

/// Admins, everyone's usage: what identities linked to no one hold (in
/// every total above already), the ignored ones apart, with the way to
/// their events and to the page that assigns them.
fn unassigned_card(page: &DataPage, unassigned: &Unassigned) -> Markup {
    let events = page
        .url
        .only(&[
            "range", "from", "to", "zone", "model", "activity", "project", "source", "session",
            "machine",
        ])
        .with(&[("view", Some("everyone")), ("identity", Some("unassigned"))])
        .href("/events");
    let (held, ignored) = (&unassigned.held, &unassigned.ignored);
    let unit = &page.context.unit;
    let identities = |n: usize| match n {
        1 => "1 identity".to_owned(),
        n => format!("{n} identities"),
    };
    html! {
        section.card aria-labelledby="unassigned-heading" {
            div.card-head {
                h2 #unassigned-heading { "Unassigned usage" }
                a.button href=(events) { "See its events" }
            }
            p {
                "Usage sent under identities that are linked to no person yet; it is in the totals above. "
                a href="/admin/identities?show=unassigned" { "Assign them" } "."
            }
            dl.totals {
                div { dt { "Cost" } dd { (unit.money(held.totals.cost_micros)) } }
                div { dt { "Calls" } dd { (format::integer(held.totals.calls)) } }
                div { dt { "Tokens" } dd { (format::tokens(held.totals.all_tokens())) } }
                div {
                    dt { "Identities" }
                    dd { (format::integer(held.with_usage as i64)) }
                    dd.change { "with usage in this range, of " (identities(held.identities)) }
                }
            }
            @if ignored.identities > 0 {
                p {
                    "Ignored (still counted, kept apart): "
                    (identities(ignored.identities)) ", "
                    (unit.money(ignored.totals.cost_micros)) ", "
                    (format::integer(ignored.totals.calls)) " calls, "
                    (format::tokens(ignored.totals.all_tokens())) " tokens in this range."
                }
            }
        }
    }
}

/// Cost in the instance's unit, or "unpriced" when none of it had a
/// price.
pub fn cost_cell(unit: &Unit, totals: &Totals) -> Markup {
    html! {
        @if totals.calls > 0 && totals.unpriced_calls == totals.calls {
            span.unpriced { "unpriced" }
        } @else {
            (unit.money(totals.cost_micros))
            @if totals.unpriced_calls > 0 { " " span.unpriced { "(part unpriced)" } }
        }
    }
}

fn top_table(page: &DataPage, title: &str, filter: &str, top: &Top) -> Markup {
    let id = format!("top-{filter}");
    let events = page.url.only(&[
        "view", "range", "from", "to", "zone", "user", "model", "activity", "project", "source",
    ]);
    html! {
        section.card aria-labelledby=(id) {
            h2 #(id) { (title) }
            div.table-scroll {
                table {
                    thead { tr {
                        th scope="col" { (filter) }
                        th.num scope="col" { "Calls" }
                        th.num scope="col" { "Tokens" }
                        th.num scope="col" { "Cost" }
                    } }
                    tbody {
                        @for (name, totals) in &top.rows {
                            tr {
                                th scope="row" {
                                    @if name.is_empty() {
                                        "(none)"
                                    } @else {
                                        a href=(events.with(&[(filter, Some(name))]).href("/events")) { (name) }
                                    }
                                }
                                td.num { (format::integer(totals.calls)) }
                                td.num { (format::tokens(totals.all_tokens())) }
                                td.num { (cost_cell(&page.context.unit, totals)) }
                            }
                        }
                        @if let Some(other) = &top.other {
                            tr.other {
                                th scope="row" { (chart::other_label(other.groups)) }
                                td.num { (format::integer(other.totals.calls)) }
                                td.num { (format::tokens(other.totals.all_tokens())) }
                                td.num { (cost_cell(&page.context.unit, &other.totals)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
