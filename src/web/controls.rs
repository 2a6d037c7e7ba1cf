//! What every data page shares: the request turned into a [`DataPage`]
//! (the page context, whose usage, the parsed URL state), and the time
//! controls and view switcher rendered from it.

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;
use maud::{Markup, html};

use super::page::PageContext;
use super::url::UrlState;
use crate::audit::Note;
use crate::auth::Reader;
use crate::auth::users;
use crate::db::DbError;
use crate::error::AppError;
use crate::model::Action;
use crate::model::Scope;
use crate::model::team::VIEW_PREFIX;
use crate::teams;
use crate::usage::buckets::BucketSize;
use crate::usage::params::{self, Preset, ReadParams};
use crate::usage::query::SeriesQuery;
use crate::web::WebState;

/// A data page's request: the page context (with the viewer), the scope
/// they may read, and the parameters of the URL.
pub struct DataPage {
    pub context: PageContext,
    pub reader: Reader,
    pub params: ReadParams,
    pub url: UrlState,
    /// The bucket asked for, when it made too many bars for a page and a
    /// larger one is shown instead ([`coarsen`]).
    pub coarsened: Option<BucketSize>,
}

/// The most bars a chart or table of a page shows: a year by day.
pub const PAGE_BUCKETS: i64 = 400;

/// Makes the series' bucket larger until the range has at most
/// [`PAGE_BUCKETS`] of them (the overview by hour over a year would be
/// 8,760 bars and a 5 MB page); the bucket asked for, when it changed.
/// A range of more than [`PAGE_BUCKETS`] months keeps its bucket.
fn coarsen(series: &mut SeriesQuery) -> Option<BucketSize> {
    let asked = series.bucket;
    let span_ms = series.to.as_millisecond() - series.from.as_millisecond();
    let approximate_ms = |bucket| match bucket {
        BucketSize::Hour => 3_600_000,
        BucketSize::Day => 86_400_000,
        BucketSize::Week { .. } => 7 * 86_400_000,
        BucketSize::Month => 28 * 86_400_000,
    };
    let week = BucketSize::Week {
        start: jiff::civil::Weekday::Monday,
    };
    while span_ms / approximate_ms(series.bucket) > PAGE_BUCKETS {
        series.bucket = match series.bucket {
            BucketSize::Hour => BucketSize::Day,
            BucketSize::Day => week,
            BucketSize::Week { .. } | BucketSize::Month => BucketSize::Month,
        };
        if series.bucket == BucketSize::Month {
            break;
        }
    }
    // A range too long even by month is left as asked, for the bucket
    // limit to refuse with its own message (centuries by hour are a
    // mistake, not a page).
    if span_ms / approximate_ms(series.bucket) > PAGE_BUCKETS {
        series.bucket = asked;
    }
    (series.bucket != asked).then_some(asked)
}

/// The parameters a data page reads itself, besides the usage parameters
/// ([`params::NAMES`]); any other is refused.
fn page_parameters(path: &str) -> &'static [&'static str] {
    match path {
        // The split of the bars and the measure shown.
        "/" => &["split", "metric"],
        // The team table sorts by its own columns (calls, all tokens).
        "/team" => &["metric", "sort"],
        _ => &[],
    }
}

impl FromRequestParts<WebState> for DataPage {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let context = PageContext::from_request_parts(parts, state).await?;
        let reader = Reader::from_request_parts(parts, state).await?;
        let RawQuery(query) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let zone = reader
            .user
            .time_zone
            .as_deref()
            .or(state.time_zone.as_deref());
        let extra = page_parameters(parts.uri.path());
        let mut params = params::parse_with(query.as_deref(), extra, zone, state.clock.now())
            .map_err(|e| AppError::BadRequest(e.to_string()).into_response())?;
        let coarsened = coarsen(&mut params.series);
        Ok(DataPage {
            context,
            reader,
            params,
            url: UrlState::parse(query.as_deref()),
            coarsened,
        })
    }
}

impl DataPage {
    pub fn zone(&self) -> &TimeZone {
        &self.params.series.zone
    }

    /// The audit note of viewing `page`, with the parameters.
    pub fn note(&self, page: &str) -> Note {
        let mut details = self.params.audit_details();
        details["page"] = page.into();
        self.reader.note(Action::PageView).details(details)
    }

    /// "Your usage", "Everyone's usage", "Grace Hopper's usage", "Team
    /// web's usage".
    pub fn whose(&self) -> String {
        match self.reader.scope {
            Scope::Everyone => "Everyone's usage".to_owned(),
            Scope::User(_) => match &self.reader.viewing {
                Some(user) => format!("{}'s usage", user.shown_name()),
                None => "Your usage".to_owned(),
            },
            Scope::Team(_) => match &self.reader.team {
                Some(team) => format!("Team {}'s usage", team.name),
                None => "A team's usage".to_owned(),
            },
        }
    }

    /// The range as people read it: "7 days" or "2026-06-01 – 2026-06-07".
    pub fn range_label(&self) -> String {
        match self.params.preset {
            Some(preset) => preset.label().to_owned(),
            None => {
                let zone = self.zone();
                let from = self.params.series.from.as_millisecond();
                // `to` is exclusive: show the last day inside the range.
                let last = self.params.series.to.as_millisecond() - 1;
                format!(
                    "{} – {}",
                    super::format::date(from, zone),
                    super::format::date(last, zone)
                )
            }
        }
    }
}

/// The time controls: presets, bucket, a custom range, the zone.
pub fn time_controls(page: &DataPage, path: &str) -> Markup {
    let current = page.params.preset;
    let bucket = page.params.series.bucket.name();
    let zone = page.zone();
    let (from, to) = (
        super::format::date(page.params.series.from.as_millisecond(), zone),
        super::format::date(page.params.series.to.as_millisecond() - 1, zone),
    );
    // Hours make sense for a week at most (168 bars).
    let hour_ok =
        page.params.series.to.as_second() - page.params.series.from.as_second() <= 7 * 86_400;
    html! {
        section.controls aria-label="Time range" {
            nav.segmented aria-label="Range presets" {
                @for preset in Preset::ALL {
                    @let href = page.url.with(&[("range", Some(preset.code())), ("from", None), ("to", None), ("bucket", None)]).href(path);
                    a href=(href) aria-current=[(current == Some(preset)).then_some("true")] { (preset.label()) }
                }
            }
            nav.segmented aria-label="Bucket" {
                @for (name, label) in [("hour", "Hour"), ("day", "Day"), ("week", "Week"), ("month", "Month")] {
                    @if name != "hour" || hour_ok || bucket == "hour" {
                        @let href = page.url.with(&[("bucket", Some(name))]).href(path);
                        a href=(href) aria-current=[(bucket == name).then_some("true")] { (label) }
                    }
                }
            }
            form.custom-range method="get" action=(path) {
                (page.url.hidden_inputs(&["range", "from", "to", "after"]))
                input type="hidden" name="range" value="custom";
                label for="range-from" { "From" }
                input #range-from type="date" name="from" value=(from) required;
                label for="range-to" { "To (inclusive)" }
                input #range-to type="date" name="to" value=(to) required;
                button type="submit" { "Apply" }
            }
            p.zone { "Times in " strong { (zone.iana_name().unwrap_or("UTC")) } "." }
            @if let Some(asked) = page.coarsened {
                p.notice role="note" {
                    "By " (asked.name()) " this range has more than " (PAGE_BUCKETS)
                    " bars; shown by " (bucket) " instead. Narrow the range to see it by "
                    (asked.name()) " (the API answers up to "
                    (crate::usage::buckets::MAX_BUCKETS) " buckets)."
                }
            }
        }
    }
}

/// Whose usage the view switcher offers beyond "me": every user and
/// every team to an admin (read with the page's data, [`ViewChoices::load`]);
/// a lead gets the teams they lead from the page context.
#[derive(Debug, Clone, Default)]
pub struct ViewChoices {
    pub usernames: Vec<String>,
    pub teams: Vec<String>,
}

impl ViewChoices {
    /// Every user and team for an admin; nothing for anyone else.
    pub fn load(conn: &rusqlite::Connection, admin: bool) -> Result<ViewChoices, DbError> {
        if !admin {
            return Ok(ViewChoices::default());
        }
        Ok(ViewChoices {
            usernames: users::list(conn)?.into_iter().map(|u| u.username).collect(),
            teams: teams::store::list(conn)?
                .into_iter()
                .map(|t| t.name)
                .collect(),
        })
    }
}

/// The switch between one's own usage and the others one may see: an
/// admin's everyone, one user or one team; a lead's teams.
pub fn view_switcher(page: &DataPage, path: &str, choices: &ViewChoices) -> Markup {
    let user = &page.context.viewer.user;
    let admin = user.is_admin();
    let teams: Vec<&str> = match admin {
        true => choices.teams.iter().map(String::as_str).collect(),
        false => page.context.leads.iter().map(|t| t.name.as_str()).collect(),
    };
    if !admin && teams.is_empty() {
        return html! {};
    }
    let current = page
        .url
        .get("view")
        .unwrap_or(if admin { "everyone" } else { "me" });
    html! {
        form.view-switch method="get" action=(path) {
            (page.url.hidden_inputs(&["view"]))
            label for="view" { "Whose usage" }
            select #view name="view" {
                @if admin {
                    option value="everyone" selected[current == "everyone"] { "Everyone" }
                }
                option value="me" selected[current == "me" || current == user.username] { "Me" }
                @for name in &choices.usernames {
                    @if *name != user.username {
                        option value=(name) selected[current == name.as_str()] { (name) }
                    }
                }
                @for team in teams {
                    @let value = format!("{VIEW_PREFIX}{team}");
                    option value=(value) selected[current.eq_ignore_ascii_case(&value)] { "Team " (team) }
                }
            }
            button type="submit" { "Show" }
        }
    }
}
