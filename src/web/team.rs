//! The team page, for admins and team leads. An admin sees usage per
//! team (each call counts for the team its user was in then) with a
//! table of every team and of no team, then each team's members with
//! their usage while in it, then everyone's usage per user, stacked, with
//! a sortable table. A lead sees the teams they lead and their members'
//! usage while in them, nothing else; anyone else is refused (403).

use axum::extract::State;
use maud::{Markup, html};

use super::chart::{self, Chart, Metric};
use super::controls::{DataPage, time_controls};
use super::overview::cost_cell;
use super::team_cards::{self, TeamCard};
use super::{format, layout};
use crate::audit::Note;
use crate::error::AppError;
use crate::model::{Scope, Totals};
use crate::teams::{self, Team};
use crate::usage::query::{self, GroupBy, Series, SeriesQuery};
use crate::usage::rollup::Dim;
use crate::web::WebState;

/// Users shown in the table, in the chosen order; the rest are one row.
const TABLE_ROWS: usize = 100;

/// Sortable columns of the user table: URL name, header, numeric.
const COLUMNS: [(&str, &str, bool); 6] = [
    ("user", "User", false),
    ("calls", "Calls", true),
    ("input_tokens", "Input", true),
    ("output_tokens", "Output", true),
    ("tokens", "All tokens", true),
    ("cost", "Cost", true),
];

pub async fn page(
    State(state): State<WebState>,
    page: DataPage,
) -> Result<(Note, Markup), AppError> {
    if page.context.viewer.user.is_admin() {
        return admin_page(state, page).await;
    }
    if page.context.leads.is_empty() {
        return Err(AppError::Forbidden);
    }
    lead_page(state, page).await
}

/// What a lead sees: each team they lead, fenced to it ([`Scope::Team`]):
/// its members' usage while they were in it.
async fn lead_page(state: WebState, page: DataPage) -> Result<(Note, Markup), AppError> {
    let led: Vec<Team> = page.context.leads.clone();
    let query = page.params.series.clone();
    let cards = state
        .db
        .read(move |conn| {
            let memberships = teams::store::memberships(conn)?;
            let mut cards = Vec::new();
            for team in &led {
                let scope = Scope::Team(team.id);
                let usage = query::team_usage(conn, scope, query.from, query.to, &query.filters)?;
                let (mut card, _) =
                    team_cards::cards(std::slice::from_ref(team), usage, &memberships);
                cards.append(&mut card);
            }
            Ok::<_, AppError>(cards)
        })
        .await?;
    let names: Vec<&str> = page.context.leads.iter().map(|t| t.name.as_str()).collect();
    let mut note = page.note("team");
    note.details["teams"] = names.clone().into();
    if let [team] = names.as_slice() {
        note = note.target(format!("team:{team}"));
    }
    let body = html! {
        h1 { "Team" }
        p.subtitle {
            "The usage of the team" @if names.len() > 1 { "s" } " you lead, "
            (page.range_label()) ": each member's while they were in it."
        }
        (time_controls(&page, "/team"))
        (team_cards::sections(&page, &cards, false))
    };
    Ok((note, layout::page(&page.context, "Team", body)))
}

/// Everything an admin's team page shows, read in one go.
struct AdminTeam {
    teams_series: Series,
    cards: Vec<TeamCard>,
    no_team: Option<Totals>,
    series: Series,
    users: query::Top,
}

async fn admin_page(state: WebState, page: DataPage) -> Result<(Note, Markup), AppError> {
    // The team is everyone, whatever `view` says: that is what the page is.
    let query = SeriesQuery {
        group_by: Some(Dim::User.into()),
        ..page.params.series.clone()
    };
    let rank = Metric::parse(page.url.get("metric")).rank();
    let data = state
        .db
        .read(move |conn| {
            let everyone = Scope::Everyone;
            let by_team = SeriesQuery {
                group_by: Some(GroupBy::Team),
                ..query.clone()
            };
            let (from, to, filters) = (query.from, query.to, &query.filters);
            let usage = query::team_usage(conn, everyone, from, to, filters)?;
            let all_teams = teams::store::list(conn)?;
            let memberships = teams::store::memberships(conn)?;
            let (cards, no_team) = team_cards::cards(&all_teams, usage, &memberships);
            Ok::<_, AppError>(AdminTeam {
                teams_series: query::series_top(conn, everyone, &by_team, chart::MAX_SERIES, rank)?,
                cards,
                no_team,
                series: query::series_top(conn, everyone, &query, chart::MAX_SERIES, rank)?,
                users: query::top(conn, everyone, from, to, filters, Dim::User, usize::MAX)?,
            })
        })
        .await?;
    let (sort, descending) = team_sort(&page);
    let mut rows = data.users.rows;
    sort_rows(&mut rows, sort, descending);
    // A bounded table: the first rows in this order, then the rest summed.
    let rest = match rows.len() > TABLE_ROWS {
        true => {
            let mut sum = Totals::default();
            for (_, totals) in &rows[TABLE_ROWS..] {
                sum.checked_add(totals)
                    .map_err(|e| AppError::from(crate::db::DbError::from(e)))?;
            }
            Some((rows.len() - TABLE_ROWS, sum))
        }
        false => None,
    };
    rows.truncate(TABLE_ROWS);
    let teams = html! {
        (team_cards::overview(&page, &data.teams_series, &data.cards, data.no_team.as_ref()))
        (team_cards::sections(&page, &data.cards, true))
    };
    let body = render(
        &page,
        teams,
        &data.series,
        &rows,
        rest.as_ref(),
        sort,
        descending,
    );
    Ok((page.note("team"), layout::page(&page.context, "Team", body)))
}

fn team_sort(page: &DataPage) -> (&'static str, bool) {
    let sort = page
        .url
        .get("sort")
        .and_then(|s| COLUMNS.iter().find(|(name, _, _)| *name == s))
        .map_or("cost", |(name, _, _)| *name);
    (sort, page.url.get("order") != Some("asc"))
}

fn sort_rows(rows: &mut [(String, Totals)], sort: &str, descending: bool) {
    rows.sort_by(|(a_name, a), (b_name, b)| {
        let order = match sort {
            "user" => a_name.cmp(b_name),
            "calls" => a.calls.cmp(&b.calls),
            "input_tokens" => a.input_tokens.cmp(&b.input_tokens),
            "output_tokens" => a.output_tokens.cmp(&b.output_tokens),
            "tokens" => a.all_tokens().cmp(&b.all_tokens()),
            _ => a.cost_micros.cmp(&b.cost_micros),
        };
        if descending { order.reverse() } else { order }
    });
}

fn render(
    page: &DataPage,
    teams: Markup,
    series: &Series,
    rows: &[(String, Totals)],
    rest: Option<&(usize, Totals)>,
    sort: &str,
    descending: bool,
) -> Markup {
    let metric = Metric::parse(page.url.get("metric"));
    let caption = format!(
        "Tokens per {} by user, {}",
        page.params.series.bucket.name(),
        page.range_label()
    );
    html! {
        h1 { "Team" }
        p.subtitle { "Everyone's usage, " (page.range_label()) ", by team and by user." }
        (time_controls(page, "/team"))
        (teams)
        section.card aria-labelledby="team-chart" {
            h2 #team-chart { "Usage per user" }
            (chart::render(&Chart {
                id: "team-chart-plot",
                caption: &caption,
                series,
                breakdown: None,
                metric,
                filter: "user",
                url: &page.url,
                unit: &page.context.unit,
            }))
        }
        section.card aria-labelledby="team-table" {
            h2 #team-table { "Users" }
            div.table-scroll {
                table {
                    thead { tr {
                        @for (name, label, numeric) in COLUMNS {
                            @let current = sort == name;
                            @let next_order = if current && descending { "asc" } else { "desc" };
                            th scope="col" class=[numeric.then_some("num")]
                                aria-sort=[current.then_some(if descending { "descending" } else { "ascending" })] {
                                a href=(page.url.with(&[("sort", Some(name)), ("order", Some(next_order))]).href("/team")) {
                                    (label)
                                    span.sort-mark aria-hidden="true" {
                                        @if current { @if descending { " ▼" } @else { " ▲" } }
                                    }
                                }
                            }
                        }
                    } }
                    tbody {
                        @for (user, totals) in rows {
                            tr {
                                th scope="row" { a href={ "/?view=" (user) } { (user) } }
                                td.num { (format::integer(totals.calls)) }
                                td.num { (format::tokens(totals.input_tokens)) }
                                td.num { (format::tokens(totals.output_tokens)) }
                                td.num { (format::tokens(totals.all_tokens())) }
                                td.num { (cost_cell(&page.context.unit, totals)) }
                            }
                        }
                        @if let Some((users, totals)) = rest {
                            tr.other {
                                th scope="row" { (chart::other_label(*users)) }
                                td.num { (format::integer(totals.calls)) }
                                td.num { (format::tokens(totals.input_tokens)) }
                                td.num { (format::tokens(totals.output_tokens)) }
                                td.num { (format::tokens(totals.all_tokens())) }
                                td.num { (cost_cell(&page.context.unit, totals)) }
                            }
                        }
                    }
                }
            }
            @if rows.is_empty() { p { "Nobody used anything in this range." } }
        }
    }
}
