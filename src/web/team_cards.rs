//! The teams on the team page: each team's usage over the range (and the
//! usage of people in no team), then each team's members with their usage
//! while they were in it. Admins see every team; a lead sees the teams
//! they lead.

use std::collections::HashMap;

use maud::{Markup, html};

use super::chart::{self, Chart, Metric};
use super::controls::DataPage;
use super::format;
use super::overview::cost_cell;
use crate::model::team::VIEW_PREFIX;
use crate::model::{Totals, Unit};
use crate::teams::{Membership, Team};
use crate::usage::query::{NO_TEAM_LABEL, Series, TeamUsage};

/// Teams shown, largest first (then one "Other" row); and members shown
/// per team.
const TEAM_ROWS: usize = 100;
const MEMBER_ROWS: usize = 100;

/// One member's line in a team's table.
pub struct MemberRow {
    pub name: String,
    pub lead: bool,
    /// Still in the team (else they left within or after the range).
    pub current: bool,
    pub totals: Totals,
}

/// One team's card: its usage, and its members'.
pub struct TeamCard {
    pub name: String,
    pub totals: Totals,
    /// Current members, and past ones with usage in the range.
    pub members: Vec<MemberRow>,
}

/// The cards of `teams` (largest cost first), from their usage and their
/// memberships, and the usage of no team.
pub fn cards(
    teams: &[Team],
    usage: Vec<TeamUsage>,
    memberships: &[Membership],
) -> (Vec<TeamCard>, Option<Totals>) {
    let mut no_team = None;
    let mut by_team: HashMap<i64, TeamUsage> = HashMap::new();
    for team_usage in usage {
        match &team_usage.team {
            Some((id, _)) => {
                by_team.insert(id.0, team_usage);
            }
            None => no_team = Some(team_usage.totals),
        }
    }
    let mut cards: Vec<TeamCard> = teams
        .iter()
        .map(|team| {
            let used = by_team.remove(&team.id.0);
            let current: Vec<&Membership> = memberships
                .iter()
                .filter(|m| m.team == team.id && m.is_current())
                .collect();
            let mut members: Vec<MemberRow> = Vec::new();
            let (totals, used_members) =
                used.map_or_else(Default::default, |u| (u.totals, u.members));
            for (name, totals) in used_members {
                let now = current.iter().find(|m| m.username == name);
                members.push(MemberRow {
                    lead: now.is_some_and(|m| m.lead),
                    current: now.is_some(),
                    name,
                    totals,
                });
            }
            for member in current {
                if !members.iter().any(|m| m.name == member.username) {
                    members.push(MemberRow {
                        name: member.username.clone(),
                        lead: member.lead,
                        current: true,
                        totals: Totals::default(),
                    });
                }
            }
            TeamCard {
                name: team.name.clone(),
                totals,
                members,
            }
        })
        .collect();
    cards.sort_by(|a, b| {
        (b.totals.cost_micros, b.totals.calls)
            .cmp(&(a.totals.cost_micros, a.totals.calls))
            .then_with(|| a.name.cmp(&b.name))
    });
    (cards, no_team)
}

/// The link to a team's overview, keeping the range.
fn team_href(page: &DataPage, team: &str) -> String {
    let view = format!("{VIEW_PREFIX}{team}");
    page.url
        .only(&["range", "from", "to", "zone", "bucket"])
        .with(&[("view", Some(&view))])
        .href("/")
}

/// The sum of `rows`, for an "Other" row. Parts of a total that was
/// summed checked: they cannot overflow where the whole did not.
fn sum<'a>(rows: impl Iterator<Item = &'a Totals>) -> Totals {
    let mut total = Totals::default();
    for totals in rows {
        let _ = total.checked_add(totals);
    }
    total
}

fn numbers(unit: &Unit, totals: &Totals) -> Markup {
    html! {
        td.num { (format::integer(totals.calls)) }
        td.num { (format::tokens(totals.all_tokens())) }
        td.num { (cost_cell(unit, totals)) }
    }
}

/// The admin's overview of the teams: usage per team as a chart, and a
/// table of every team (and no team).
pub fn overview(
    page: &DataPage,
    series: &Series,
    cards: &[TeamCard],
    no_team: Option<&Totals>,
) -> Markup {
    let metric = Metric::parse(page.url.get("metric"));
    let caption = format!(
        "Tokens per {} by team, {}",
        page.params.series.bucket.name(),
        page.range_label()
    );
    let rest = match cards.len() > TEAM_ROWS {
        true => Some((
            cards.len() - TEAM_ROWS,
            sum(cards[TEAM_ROWS..].iter().map(|c| &c.totals)),
        )),
        false => None,
    };
    html! {
        section.card aria-labelledby="teams-chart" {
            h2 #teams-chart { "Usage per team" }
            p { "Each call counts for the team its user was in when it was made." }
            (chart::render(&Chart {
                id: "teams-chart-plot",
                caption: &caption,
                series,
                breakdown: None,
                metric,
                filter: "team",
                url: &page.url,
                unit: &page.context.unit,
            }))
        }
        section.card aria-labelledby="teams-table" {
            h2 #teams-table { "Teams" }
            @if cards.is_empty() {
                p { "There are no teams yet. " a href="/admin/teams" { "Create one" } "." }
            }
            div.table-scroll {
                table {
                    thead { tr {
                        th scope="col" { "Team" }
                        th.num scope="col" { "Members now" }
                        th.num scope="col" { "Calls" }
                        th.num scope="col" { "Tokens" }
                        th.num scope="col" { "Cost" }
                    } }
                    tbody {
                        @for card in cards.iter().take(TEAM_ROWS) {
                            tr {
                                th scope="row" { a href=(team_href(page, &card.name)) { (card.name) } }
                                td.num { (card.members.iter().filter(|m| m.current).count()) }
                                (numbers(&page.context.unit, &card.totals))
                            }
                        }
                        @if let Some((teams, totals)) = &rest {
                            tr.other {
                                th scope="row" { (chart::other_label(*teams)) }
                                td.num {}
                                (numbers(&page.context.unit, totals))
                            }
                        }
                        tr {
                            th scope="row" { (NO_TEAM_LABEL) }
                            td.num {}
                            (numbers(&page.context.unit, no_team.unwrap_or(&Totals::default())))
                        }
                    }
                }
            }
            p { a href="/admin/teams" { "Manage teams and members" } }
        }
    }
}

/// One card per team (the first [`TEAM_ROWS`]): its members and their
/// usage while in it. `admin` links each member to their own overview.
pub fn sections(page: &DataPage, cards: &[TeamCard], admin: bool) -> Markup {
    html! {
        @for (index, card) in cards.iter().take(TEAM_ROWS).enumerate() {
            (section(page, index, card, admin))
        }
    }
}

fn section(page: &DataPage, index: usize, card: &TeamCard, admin: bool) -> Markup {
    let id = format!("team-section-{index}");
    let mut members: Vec<&MemberRow> = card.members.iter().collect();
    members.sort_by(|a, b| {
        (b.totals.cost_micros, b.totals.calls)
            .cmp(&(a.totals.cost_micros, a.totals.calls))
            .then_with(|| a.name.cmp(&b.name))
    });
    let rest = match members.len() > MEMBER_ROWS {
        true => Some((
            members.len() - MEMBER_ROWS,
            sum(members[MEMBER_ROWS..].iter().copied().map(|m| &m.totals)),
        )),
        false => None,
    };
    html! {
        section.card aria-labelledby=(id) {
            h2 #(id) { "Team " (card.name) }
            p {
                (page.context.unit.money(card.totals.cost_micros)) " in "
                (format::integer(card.totals.calls)) " calls. "
                a href=(team_href(page, &card.name)) { "Overview of team " (card.name) }
            }
            div.table-scroll {
                table {
                    caption.visually-hidden { "Members of " (card.name) " and their usage while in it" }
                    thead { tr {
                        th scope="col" { "Member" }
                        th.num scope="col" { "Calls" }
                        th.num scope="col" { "Tokens" }
                        th.num scope="col" { "Cost" }
                    } }
                    tbody {
                        @for member in members.iter().take(MEMBER_ROWS) {
                            tr {
                                th scope="row" {
                                    @if admin {
                                        a href={ "/?view=" (member.name) } { (member.name) }
                                    } @else {
                                        (member.name)
                                    }
                                    @if member.lead { " " span.badge { "lead" } }
                                    @if !member.current { " " span.unpriced { "(left)" } }
                                }
                                (numbers(&page.context.unit, &member.totals))
                            }
                        }
                        @if let Some((more, totals)) = &rest {
                            tr.other {
                                th scope="row" { (chart::other_label(*more)) }
                                (numbers(&page.context.unit, totals))
                            }
                        }
                    }
                }
            }
            @if card.members.is_empty() { p { "No members." } }
        }
    }
}
