//! `GET /api/v1/summary`: today's, this week's and this month's cost and
//! tokens in one small object, for a status bar (Homepage, Home
//! Assistant, a shell prompt). Calendar periods in the reader's zone —
//! their own, else the instance's, else UTC — weeks from Monday; whose
//! usage as every read decides ([`Reader`]: a member their own, an admin
//! everyone's or `view`'s). From the rollups: a few rows per period.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

use super::UsageState;
use super::api::ReadError;
use super::params::ParamError;
use super::query::{self, Filters};
use crate::auth::Reader;
use crate::model::format::decimal;
use crate::model::{Action, Totals, Unit};

/// The three periods' `[start, end)` in UTC ms: today, this week (from
/// Monday), this month, in `zone` at `now`.
pub fn periods(zone: &TimeZone, now: Timestamp) -> Result<[(i64, i64); 3], jiff::Error> {
    let today = now.to_zoned(zone.clone()).date();
    let midnight = |day: jiff::civil::Date| -> Result<i64, jiff::Error> {
        Ok(day
            .to_zoned(zone.clone())?
            .start_of_day()?
            .timestamp()
            .as_millisecond())
    };
    let monday = today.checked_sub(i64::from(today.weekday().to_monday_zero_offset()).days())?;
    let month = today.first_of_month();
    Ok([
        (midnight(today)?, midnight(today.tomorrow()?)?),
        (midnight(monday)?, midnight(monday.checked_add(7.days())?)?),
        (midnight(month)?, midnight(month.checked_add(1.month())?)?),
    ])
}

fn period_json(totals: &Totals, unit: &Unit, (start, end): (i64, i64)) -> Value {
    let at = |ms: i64| {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    json!({
        "from": at(start),
        "to": at(end),
        "cost": decimal(totals.cost_micros),
        "cost_in_unit": unit.decimal(totals.cost_micros),
        "tokens": totals.all_tokens(),
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cache_read_tokens": totals.cache_read_tokens,
        "cache_write_tokens": totals.cache_write_tokens,
        "events": totals.calls,
        "unpriced_events": totals.unpriced_calls,
    })
}

/// `GET /api/v1/summary`.
pub async fn summary(
    State(state): State<UsageState>,
    reader: Reader,
) -> Result<Response, ReadError> {
    let zone_name = reader
        .user
        .time_zone
        .clone()
        .or_else(|| state.time_zone.clone())
        .unwrap_or_else(|| "UTC".to_owned());
    // A zone stored before it was checked, or a server started with a bad
    // one: say so rather than guess.
    let zone = TimeZone::get(&zone_name).map_err(|_| {
        ReadError::Param(ParamError {
            field: "time_zone".into(),
            reason: format!("{zone_name:?} is not an IANA time zone"),
        })
    })?;
    let now = state.clock.now();
    let ranges = periods(&zone, now).map_err(|e| {
        ReadError::Param(ParamError {
            field: "time_zone".into(),
            reason: e.to_string(),
        })
    })?;
    let scope = reader.scope;
    let cells = state
        .db
        .read(move |conn| query::range_totals(conn, scope, &Filters::default(), false, &ranges))
        .await?
        .into_iter()
        .next()
        .map(|(_, cells)| cells)
        .unwrap_or_else(|| vec![Totals::default(); 3]);
    let empty = Totals::default();
    let cell = |i: usize| cells.get(i).unwrap_or(&empty);
    let body = json!({
        "today": period_json(cell(0), &state.unit, ranges[0]),
        "week": period_json(cell(1), &state.unit, ranges[1]),
        "month": period_json(cell(2), &state.unit, ranges[2]),
        "time_zone": zone_name,
        "as_of": now.to_string(),
        "unit": &*state.unit,
    });
    let note = reader
        .note(Action::UsageRead)
        .details(json!({"summary": true, "zone": zone_name}));
    Ok((note, Json(body)).into_response())
}
