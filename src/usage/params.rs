//! The query string of every usage read (API, chart data, CSV export, and
//! the dashboard's pages): one parser, with an error naming the field.
//!
//! `from`, `to`: a date (`YYYY-MM-DD`, local midnight in `zone`) or an RFC
//! 3339 instant; default the last 30 days up to the end of today.
//! `zone`: IANA name; default the user's zone, else UTC. `bucket`: hour,
//! day, week, month. `week_start`: monday, sunday, saturday. `group_by`:
//! model, activity, user, project, source. Filters `user`, `model`,
//! `activity`, `project`, `source`: repeatable or comma-separated.
//! Events: `sort`, `order` (asc|desc), `limit`, `after` (cursor). `view`
//! is read by the access extractor, not here.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::buckets::BucketSize;
use super::events::{Cursor, EventsQuery, SortColumn};
use super::query::{Filters, SeriesQuery};
use super::rollup::Dim;

const DEFAULT_DAYS: i64 = 30;
const DEFAULT_LIMIT: usize = 100;

/// A refused parameter: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParamError {
    pub field: &'static str,
    pub reason: String,
}

fn refuse(field: &'static str, reason: impl Into<String>) -> ParamError {
    ParamError {
        field,
        reason: reason.into(),
    }
}

/// Everything a usage read may ask for.
#[derive(Debug, Clone)]
pub struct ReadParams {
    pub series: SeriesQuery,
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
            "bucket": self.series.bucket.name(),
            "group_by": self.series.group_by.map(dim_name),
            "filters": {
                "user": f.users, "model": f.models, "activity": f.activities,
                "project": f.projects, "source": f.sources,
            },
        })
    }
}

pub fn dim_name(dim: Dim) -> &'static str {
    match dim {
        Dim::User => "user",
        Dim::Model => "model",
        Dim::Activity => "activity",
        Dim::Project => "project",
        Dim::Source => "source",
        Dim::Provider => "provider",
    }
}

/// Parses `query` (the raw query string) for a user whose zone is
/// `user_zone`, at `now`.
pub fn parse(
    query: Option<&str>,
    user_zone: Option<&str>,
    now: Timestamp,
) -> Result<ReadParams, ParamError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
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
    let zone = match one("zone").or(user_zone) {
        Some(name) => TimeZone::get(name)
            .map_err(|_| refuse("zone", format!("{name:?} is not an IANA time zone")))?,
        None => TimeZone::UTC,
    };
    let today = now.to_zoned(zone.clone()).date();
    let default_to = today.tomorrow().unwrap_or(today);
    let default_from = default_to
        .checked_sub(DEFAULT_DAYS.days())
        .unwrap_or(default_to);
    let from = match one("from") {
        Some(value) => bound("from", value, &zone)?,
        None => local_midnight("from", default_from, &zone)?,
    };
    let to = match one("to") {
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
    let bucket = match one("bucket").unwrap_or("day") {
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
        Some("model") => Some(Dim::Model),
        Some("activity") => Some(Dim::Activity),
        Some("user") => Some(Dim::User),
        Some("project") => Some(Dim::Project),
        Some("source") => Some(Dim::Source),
        Some(other) => {
            return Err(refuse(
                "group_by",
                format!("{other:?}: use model, activity, user, project or source"),
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
            },
        },
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
    let date: jiff::civil::Date = value.parse().map_err(|_| {
        refuse(
            field,
            format!("{value:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 instant"),
        )
    })?;
    local_midnight(field, date, zone)
}

fn local_midnight(
    field: &'static str,
    date: jiff::civil::Date,
    zone: &TimeZone,
) -> Result<Timestamp, ParamError> {
    date.to_zoned(zone.clone())
        .map(|z| z.timestamp())
        .map_err(|e| refuse(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-06-15T12:00:00Z".parse().expect("timestamp")
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
        assert_eq!(params.series.group_by, Some(Dim::Model));
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
        ] {
            let error = parse(Some(query), None, now()).expect_err(query);
            assert_eq!(error.field, field, "{query}");
        }
    }
}
