//! The query string of every usage read (API, chart data, CSV export, and
//! the dashboard's pages): one parser, with an error naming the field.
//!
//! `range`: a preset (`today`, `7d`, `30d`, `this_month`, `last_month`,
//! `90d`, `12m`), default `30d`; or (`range=custom` or no range) `from`,
//! `to`: a date (`YYYY-MM-DD`, local midnight in `zone`; `to` is
//! exclusive) or an RFC 3339 instant. Day presets end with today.
//! `zone`: IANA name; default the user's zone, else UTC. `bucket`: hour,
//! day, week, month; default hour for `today`, month for `12m`, else day.
//! `week_start`: monday, sunday, saturday. `group_by`:
//! model, activity, user, project, source, team. Filters `user`, `model`,
//! `activity`, `project`, `source`, and `session`, `machine` (labels of
//! raw events, read from them): repeatable or comma-separated; `identity`
//! (`unassigned`, or `KIND:VALUE`: one identity's events), once.
//! Events: `sort`, `order` (asc|desc), `limit`, `after` (cursor). A
//! grouped series: `limit`, the most groups answered (the rest summed as
//! one "other"). `view` is read by the access extractor, not here. Any
//! other name is refused ([`NAMES`]; a page adds the few it reads itself),
//! so a misspelt filter is an error rather than silently ignored.

use std::borrow::Cow;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::buckets::BucketSize;
use super::events::{Cursor, EventsQuery, SortColumn};
use super::query::{Filters, GroupBy, SeriesQuery};
use super::rollup::Dim;
use crate::model::IdentityFilter;

const DEFAULT_LIMIT: usize = 100;

// `limit` is both the rows of an events page and the groups of a grouped
// series: one parameter, one default and one maximum.
const _: () = assert!(
    DEFAULT_LIMIT == super::query::DEFAULT_GROUPS
        && super::events::MAX_PAGE == super::query::MAX_GROUPS
);

/// The range presets of the time controls, in the order they are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Today,
    Days7,
    Days30,
    ThisMonth,
    LastMonth,
    Days90,
    Months12,
}

impl Preset {
    pub const ALL: [Preset; 7] = [
        Preset::Today,
        Preset::Days7,
        Preset::Days30,
        Preset::ThisMonth,
        Preset::LastMonth,
        Preset::Days90,
        Preset::Months12,
    ];

    /// The value in URLs.
    pub fn code(self) -> &'static str {
        match self {
            Preset::Today => "today",
            Preset::Days7 => "7d",
            Preset::Days30 => "30d",
            Preset::ThisMonth => "this_month",
            Preset::LastMonth => "last_month",
            Preset::Days90 => "90d",
            Preset::Months12 => "12m",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            Preset::Today => "Today",
            Preset::Days7 => "7 days",
            Preset::Days30 => "30 days",
            Preset::ThisMonth => "This month",
            Preset::LastMonth => "Last month",
            Preset::Days90 => "90 days",
            Preset::Months12 => "12 months",
        }
    }

    pub fn parse(code: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.code() == code)
    }

    /// [from, to) as local dates, for `today` in the zone.
    fn dates(self, today: Date) -> Option<(Date, Date)> {
        let tomorrow = today.tomorrow().ok()?;
        let back = |days: i64| tomorrow.checked_sub(days.days()).ok();
        let month_start = today.first_of_month();
        Some(match self {
            Preset::Today => (today, tomorrow),
            Preset::Days7 => (back(7)?, tomorrow),
            Preset::Days30 => (back(30)?, tomorrow),
            Preset::Days90 => (back(90)?, tomorrow),
            Preset::ThisMonth => (month_start, month_start.checked_add(1.month()).ok()?),
            Preset::LastMonth => (month_start.checked_sub(1.month()).ok()?, month_start),
            Preset::Months12 => (
                month_start.checked_sub(11.months()).ok()?,
                month_start.checked_add(1.month()).ok()?,
            ),
        })
    }

    fn default_bucket(self) -> &'static str {
        match self {
            Preset::Today => "hour",
            Preset::Months12 => "month",
            _ => "day",
        }
    }
}

/// A refused parameter: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParamError {
    /// The parameter's name (one of ours, or the unknown one as given).
    pub field: Cow<'static, str>,
    pub reason: String,
}

fn refuse(field: &'static str, reason: impl Into<String>) -> ParamError {
    ParamError {
        field: Cow::Borrowed(field),
        reason: reason.into(),
    }
}

/// Every parameter [`parse`] reads, plus `view` (read by the access
/// extractor) and `tz` (the API's first name for `zone`).
pub const NAMES: [&str; 21] = [
    "range",
    "from",
    "to",
    "zone",
    "tz",
    "bucket",
    "week_start",
    "group_by",
    "user",
    "model",
    "activity",
    "project",
    "source",
    "sort",
    "order",
    "limit",
    "after",
    "view",
    "session",
    "machine",
    "identity",
];

/// Refuses the first parameter of `query` whose name is in none of
/// `known`, naming it and the ones that are known. A misspelt parameter
/// would otherwise be silently ignored (and `modle=x` show everything).
pub fn check_names(query: Option<&str>, known: &[&[&str]]) -> Result<(), ParamError> {
    let unknown = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(name, _)| name)
        .find(|name| !known.iter().any(|list| list.contains(&name.as_ref())));
    let Some(name) = unknown else {
        return Ok(());
    };
    let names: Vec<&str> = known.iter().flat_map(|list| list.iter().copied()).collect();
    let reason = if names.is_empty() {
        "unknown parameter; this page takes none".to_owned()
    } else {
        format!("unknown parameter; known: {}", names.join(", "))
    };
    // Bounded: the name is whatever was sent (pages and JSON escape it).
    Err(ParamError {
        field: Cow::Owned(name.chars().take(64).collect()),
        reason,
    })
}

/// Everything a usage read may ask for.
#[derive(Debug, Clone)]
pub struct ReadParams {
    pub series: SeriesQuery,
    /// The preset the range came from; `None` for a custom range.
    pub preset: Option<Preset>,
    pub sort: SortColumn,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
}

impl ReadParams {
    pub fn events_query(&self) -> EventsQuery {
        EventsQuery {
            from: self.series.from,
            to: self.series.to,
            filters: self.series.filters.clone(),
            sort: self.sort,
            descending: self.descending,
            limit: self.limit,
            after: self.after.clone(),
        }
    }

    /// What the audit records of a read: the parameters as given.
    pub fn audit_details(&self) -> serde_json::Value {
        let f = &self.series.filters;
        serde_json::json!({
            "from": self.series.from.to_string(),
            "to": self.series.to.to_string(),
            "zone": self.series.zone.iana_name(),
            "range": self.preset.map_or("custom", Preset::code),
            "bucket": self.series.bucket.name(),
            "group_by": self.series.group_by.map(GroupBy::name),
            "filters": {
                "user": f.users, "model": f.models, "activity": f.activities,
                "project": f.projects, "source": f.sources,
                "session": f.sessions, "machine": f.machines,
                "identity": f.identity.as_ref().map(ToString::to_string),
            },
        })
    }
}

pub fn dim_name(dim: Dim) -> &'static str {
    dim.name()
}

/// Parses `query` (the raw query string) for a user whose zone is
/// `user_zone`, at `now`. A parameter not in [`NAMES`] is refused.
pub fn parse(
    query: Option<&str>,
    user_zone: Option<&str>,
    now: Timestamp,
) -> Result<ReadParams, ParamError> {
    parse_with(query, &[], user_zone, now)
}

/// [`parse`] for a page that reads the parameters `extra` itself: they are
/// accepted, and left to the page even when [`NAMES`] has them too (the
/// team table's `sort` names its own columns, not the events').
pub fn parse_with(
    query: Option<&str>,
    extra: &[&str],
    user_zone: Option<&str>,
    now: Timestamp,
) -> Result<ReadParams, ParamError> {
    check_names(query, &[&NAMES, extra])?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| !extra.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect();
    let one = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let many = |name: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    // `tz` is the name the read API was specified with; `zone` the one the
    // pages write into their URLs. Both are kept.
    let zone = match one("zone").or_else(|| one("tz")).or(user_zone) {
        Some(name) => TimeZone::get(name)
            .map_err(|_| refuse("zone", format!("{name:?} is not an IANA time zone")))?,
        None => TimeZone::UTC,
    };
    let today = now.to_zoned(zone.clone()).date();
    let custom = one("from").is_some() || one("to").is_some();
    let preset = match one("range") {
        Some("custom") | None if custom => None,
        None | Some("custom") => Some(Preset::Days30),
        Some(code) => Some(Preset::parse(code).ok_or_else(|| {
            refuse(
                "range",
                format!("{code:?}: use today, 7d, 30d, this_month, last_month, 90d or 12m"),
            )
        })?),
    };
    let (default_from, default_to) = preset
        .unwrap_or(Preset::Days30)
        .dates(today)
        .ok_or_else(|| refuse("range", "outside the supported calendar"))?;
    // A preset wins over dates left in the URL from a custom range.
    let given = |name| if preset.is_some() { None } else { one(name) };
    let from = match given("from") {
        Some(value) => bound("from", value, &zone)?,
        None => local_midnight("from", default_from, &zone)?,
    };
    let to = match given("to") {
        Some(value) => bound("to", value, &zone)?,
        None => local_midnight("to", default_to, &zone)?,
    };
    if from >= to {
        return Err(refuse("to", "must be later than from"));
    }
    let week_start = match one("week_start").unwrap_or("monday") {
        "monday" => Weekday::Monday,
        "sunday" => Weekday::Sunday,
        "saturday" => Weekday::Saturday,
        other => {
            return Err(refuse(
                "week_start",
                format!("{other:?}: use monday, sunday or saturday"),
            ));
        }
    };
    let default_bucket = preset.map_or("day", Preset::default_bucket);
    let bucket = match one("bucket").unwrap_or(default_bucket) {
        "hour" => BucketSize::Hour,
        "day" => BucketSize::Day,
        "week" => BucketSize::Week { start: week_start },
        "month" => BucketSize::Month,
        other => {
            return Err(refuse(
                "bucket",
                format!("{other:?}: use hour, day, week or month"),
            ));
        }
    };
    let group_by = match one("group_by") {
        None => None,
        Some("model") => Some(GroupBy::Dim(Dim::Model)),
        Some("activity") => Some(GroupBy::Dim(Dim::Activity)),
        Some("user") => Some(GroupBy::Dim(Dim::User)),
        Some("project") => Some(GroupBy::Dim(Dim::Project)),
        Some("source") => Some(GroupBy::Dim(Dim::Source)),
        // The team each event's user was in when it happened.
        Some("team") => Some(GroupBy::Team),
        Some(other) => {
            return Err(refuse(
                "group_by",
                format!("{other:?}: use model, activity, user, project, source or team"),
            ));
        }
    };
    let sort = match one("sort") {
        None => SortColumn::Time,
        Some(name) => SortColumn::parse(name)
            .ok_or_else(|| refuse("sort", format!("{name:?} is not a column")))?,
    };
    let descending = match one("order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => return Err(refuse("order", format!("{other:?}: use asc or desc"))),
    };
    let limit = match one("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=super::events::MAX_PAGE).contains(n))
            .ok_or_else(|| {
                refuse(
                    "limit",
                    format!("a number from 1 to {}", super::events::MAX_PAGE),
                )
            })?,
    };
    let identity = match one("identity") {
        None => None,
        Some(text) => Some(IdentityFilter::parse(text).ok_or_else(|| {
            refuse(
                "identity",
                "use unassigned, or KIND:VALUE with KIND one of enduser, email, account, \
                 install, litellm_user, litellm_key",
            )
        })?),
    };
    let after = match one("after") {
        None => None,
        Some(text) => Some(
            Cursor::decode(text).ok_or_else(|| refuse("after", "not a cursor from this API"))?,
        ),
    };
    Ok(ReadParams {
        series: SeriesQuery {
            from,
            to,
            zone,
            bucket,
            group_by,
            filters: Filters {
                users: many("user"),
                models: many("model"),
                activities: many("activity"),
                projects: many("project"),
                sources: many("source"),
                sessions: many("session"),
                machines: many("machine"),
                identity,
            },
        },
        preset,
        sort,
        descending,
        limit,
        after,
    })
}

/// A date (local midnight in `zone`) or an RFC 3339 instant.
pub fn bound(field: &'static str, value: &str, zone: &TimeZone) -> Result<Timestamp, ParamError> {
    if let Ok(instant) = value.parse::<Timestamp>() {
        return Ok(instant);
    }
    local_midnight(field, date(field, value)?, zone)
}

/// The years a date may have: well inside what the time library can
/// convert in any zone, so a date that passes always converts.
const YEARS: std::ops::RangeInclusive<i64> = 1..=9998;

/// A calendar date (`YYYY-MM-DD`); when `value` is not one, says what is
/// wrong in our own words (no month 13, no 30 February, a year too far),
/// never the time library's message.
pub fn date(field: &'static str, value: &str) -> Result<Date, ParamError> {
    let parsed = value.parse::<Date>().ok();
    if let Some(date) = parsed.filter(|d| YEARS.contains(&i64::from(d.year()))) {
        return Ok(date);
    }
    Err(refuse(field, date_problem(value)))
}

/// Why `value` is neither a supported date nor an RFC 3339 instant.
fn date_problem(value: &str) -> String {
    let shown: String = value.chars().take(40).collect();
    let generic = format!("{shown:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 instant");
    // The date part of `YYYY-MM-DD` or `YYYY-MM-DDThh:mm…`.
    let day_part = value.split(['T', 't', ' ']).next().unwrap_or("");
    let numbers: Vec<&str> = day_part.split('-').collect();
    let [year, month, day] = numbers[..] else {
        return generic;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year) && digits(month) && digits(day)) {
        return generic;
    }
    let number = |s: &str| s.parse::<i64>().unwrap_or(i64::MAX);
    let (year, month, day) = (number(year), number(month), number(day));
    if !YEARS.contains(&year) {
        return format!(
            "{shown:?}: the year must be from {} to {}",
            YEARS.start(),
            YEARS.end()
        );
    }
    if !(1..=12).contains(&month) {
        return format!("{shown:?}: there is no month {month} (months are 1 to 12)");
    }
    let days = Date::new(year as i16, month as i8, 1).map_or(31, |d| i64::from(d.days_in_month()));
    if !(1..=days).contains(&day) {
        return format!("{shown:?}: {year:04}-{month:02} has no day {day} (it has {days} days)");
    }
    generic
}

fn local_midnight(
    field: &'static str,
    date: jiff::civil::Date,
    zone: &TimeZone,
) -> Result<Timestamp, ParamError> {
    date.to_zoned(zone.clone())
        .map(|z| z.timestamp())
        .map_err(|_| refuse(field, format!("{date} is outside the supported dates")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-06-15T12:00:00Z".parse().expect("timestamp")
    }

    #[test]
    fn presets_cover_calendar_periods_in_the_zone() {
        for (range, from, to, bucket) in [
            (
                "today",
                "2026-06-15T00:00:00Z",
                "2026-06-16T00:00:00Z",
                BucketSize::Hour,
            ),
            (
                "7d",
                "2026-06-09T00:00:00Z",
                "2026-06-16T00:00:00Z",
                BucketSize::Day,
            ),
            (
                "this_month",
                "2026-06-01T00:00:00Z",
                "2026-07-01T00:00:00Z",
                BucketSize::Day,
            ),
            (
                "last_month",
                "2026-05-01T00:00:00Z",
                "2026-06-01T00:00:00Z",
                BucketSize::Day,
            ),
            (
                "12m",
                "2025-07-01T00:00:00Z",
                "2026-07-01T00:00:00Z",
                BucketSize::Month,
            ),
        ] {
            let params = parse(Some(&format!("range={range}")), None, now()).expect(range);
            assert_eq!(params.series.from.to_string(), from, "{range}");
            assert_eq!(params.series.to.to_string(), to, "{range}");
            assert_eq!(params.series.bucket, bucket, "{range}");
        }
        // Dates make a custom range; a preset wins over leftover dates.
        let custom = parse(
            Some("range=custom&from=2026-01-01&to=2026-01-02"),
            None,
            now(),
        )
        .expect("custom");
        assert_eq!(custom.preset, None);
        assert_eq!(custom.series.from.to_string(), "2026-01-01T00:00:00Z");
        let preset = parse(Some("range=7d&from=2026-01-01"), None, now()).expect("preset");
        assert_eq!(preset.preset, Some(Preset::Days7));
        assert_eq!(preset.series.from.to_string(), "2026-06-09T00:00:00Z");
    }

    #[test]
    fn defaults_are_the_last_thirty_days_by_day() {
        let params = parse(None, None, now()).expect("params");
        assert_eq!(params.series.from.to_string(), "2026-05-17T00:00:00Z");
        assert_eq!(params.series.to.to_string(), "2026-06-16T00:00:00Z");
        assert_eq!(params.series.bucket, BucketSize::Day);
        assert_eq!(params.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn user_zone_and_filters() {
        let params = parse(
            Some("from=2026-06-01&to=2026-06-02&model=a,b&model=c&group_by=model"),
            Some("Asia/Kolkata"),
            now(),
        )
        .expect("params");
        assert_eq!(params.series.from.to_string(), "2026-05-31T18:30:00Z");
        assert_eq!(params.series.filters.models, ["a", "b", "c"]);
        assert_eq!(params.series.group_by, Some(GroupBy::Dim(Dim::Model)));
        let teams = parse(Some("group_by=team"), None, now()).expect("team");
        assert_eq!(teams.series.group_by, Some(GroupBy::Team));
    }

    #[test]
    fn errors_name_the_field() {
        for (query, field) in [
            ("zone=Mars/Olympus", "zone"),
            ("from=yesterday", "from"),
            ("from=2026-06-02&to=2026-06-01", "to"),
            ("bucket=fortnight", "bucket"),
            ("group_by=colour", "group_by"),
            ("sort=secret", "sort"),
            ("order=up", "order"),
            ("limit=0", "limit"),
            ("limit=999999", "limit"),
            ("after=zzz", "after"),
            ("range=forever", "range"),
            ("modle=gpt-5", "modle"),
            ("range=7d&tz=UTC&splt=x", "splt"),
            ("from=2026-02-30", "from"),
            ("identity=carol", "identity"),
            ("identity=phone:1", "identity"),
            ("to=2026-13-01", "to"),
        ] {
            let error = parse(Some(query), None, now()).expect_err(query);
            assert_eq!(error.field, field, "{query}");
        }
    }

    #[test]
    fn unknown_parameters_are_named_with_the_known_ones() {
        let error = parse(Some("range=7d&modle=a"), None, now()).expect_err("modle");
        assert_eq!(error.field, "modle");
        assert!(error.reason.contains("model, activity"), "{error}");
        // A page's own parameters pass, and are left to the page.
        let params = parse_with(
            Some("sort=calls&metric=cost"),
            &["sort", "metric"],
            None,
            now(),
        )
        .expect("page parameters");
        assert_eq!(params.sort, SortColumn::Time);
        assert!(parse_with(Some("metric=cost"), &[], None, now()).is_err());
    }

    #[test]
    fn impossible_dates_say_what_is_wrong() {
        for (value, says) in [
            ("2026-02-30", "2026-02 has no day 30 (it has 28 days)"),
            ("2024-02-30", "2024-02 has no day 30 (it has 29 days)"),
            ("2026-13-01", "there is no month 13"),
            ("2026-00-01", "there is no month 0"),
            ("99999-01-01", "the year must be from 1 to 9998"),
            ("9999-12-31", "the year must be from 1 to 9998"),
            ("0000-01-01", "the year must be from 1 to 9998"),
            ("2026-02-30T10:00:00Z", "no day 30"),
            (
                "soon",
                "neither a date (YYYY-MM-DD) nor an RFC 3339 instant",
            ),
        ] {
            let error = date("from", value).expect_err(value);
            assert_eq!(error.field, "from");
            assert!(error.reason.contains(says), "{value}: {error}");
        }
        assert_eq!(date("to", "2026-02-28").expect("a date").day(), 28);
    }
}
