//! Turning metric samples into events: temporality (delta points are
//! increments; cumulative points are differenced against the last value of
//! their series, with resets detected), then one event per group of series
//! and export time. Runs inside the writer's transaction.
//!
//! A series' state (`otlp_series`) is kept per person: its key is the
//! digest of the metric, the resource's and the point's attributes and,
//! for a collector token's point that names one, the identity
//! ([`Sample::series`]); a point attributed to the token's owner has that
//! digest qualified by the owner ([`state_key`]). Two people sending alike
//! series, through one collector token or through their own tokens, never
//! difference against each other's counters.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::Rejections;
use crate::db::DbError;
use crate::ingest::event::{ApiEvent, EventFields, describe, float_micros};
use crate::model::{IdentityKey, UserId};
use crate::usage::rates::Extras;
use crate::usage::store::NewEvent;

pub const SOURCE: &str = "otlp";

/// What one data point measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Input tokens, cache excluded (Anthropic's convention).
    Input,
    /// Input tokens that include the cached ones (OpenAI's and Gemini's):
    /// the group's cache reads are subtracted.
    InputWithCache,
    Output,
    CacheRead,
    CacheWrite,
    /// A cost in USD, as the producer estimates it.
    CostUsd,
}

/// One mapped metric data point.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The point's own series (metric, resource, attributes, and the
    /// identity when it names one).
    pub series: String,
    /// The series that together make one event (the same call site and
    /// model, all token kinds).
    pub group: String,
    pub quantity: Quantity,
    pub value: f64,
    pub cumulative: bool,
    pub start_ns: u64,
    pub time_ns: u64,
    pub model: String,
    pub provider: Option<String>,
    pub activity: Option<String>,
    /// The same for every point of a group: its attributes are part of it.
    pub project: Option<String>,
    pub session: Option<String>,
    pub machine: Option<String>,
    /// The person the point names (collector tokens only).
    pub identity: Option<IdentityKey>,
}

struct SeriesState {
    start_ns: u64,
    time_ns: u64,
    value: f64,
}

fn load(conn: &Connection, series: &str) -> Result<Option<SeriesState>, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT start_unix_nano, time_unix_nano, value FROM otlp_series WHERE series = ?1",
        )?
        .query_row([series], |row| {
            Ok(SeriesState {
                start_ns: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                time_ns: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                value: row.get(2)?,
            })
        })
        .optional()?)
}

/// Where a sample's series state is kept, and the key an older version
/// kept it under (read when the new key has none yet, so that upgrading
/// does not count a running counter's whole total again; old rows age out
/// through [`forget_stale`]). A sample that names an identity has it in
/// its digest already; any other is its token owner's.
pub fn state_key(sample: &Sample, owner: UserId) -> (String, Option<&str>) {
    if sample.identity.is_some() {
        return (sample.series.clone(), None);
    }
    let key = Sha256::digest(format!("user:{}\0{}", owner.0, sample.series).as_bytes());
    (crate::secret::hex(&key), Some(&sample.series))
}

fn save(conn: &Connection, key: &str, sample: &Sample, now_s: i64) -> Result<(), DbError> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO otlp_series (series, start_unix_nano, time_unix_nano, value, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (series) DO UPDATE SET start_unix_nano = excluded.start_unix_nano,
             time_unix_nano = excluded.time_unix_nano, value = excluded.value,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        key,
        as_i64(sample.start_ns),
        as_i64(sample.time_ns),
        sample.value,
        now_s
    ])?;
    Ok(())
}

/// A cumulative series unseen this long belongs to a process that is
/// gone: SDKs re-export every cumulative series each interval while they
/// run. Its state is dropped so the table does not grow without end.
pub const FORGET_AFTER_S: i64 = 30 * 86_400;

/// Drops the state of series not updated since `cutoff_s`; returns how many.
pub fn forget_stale(conn: &Connection, cutoff_s: i64) -> Result<usize, DbError> {
    Ok(conn
        .prepare_cached("DELETE FROM otlp_series WHERE updated_at < ?1")?
        .execute([cutoff_s])?)
}

/// What a cumulative point adds: its difference from the last value of its
/// series; all of it when the series is new or restarted (a new start time,
/// or a value that fell); nothing when it is not newer than the last point
/// (a retried or reordered export).
fn cumulative_increment(
    conn: &Connection,
    sample: &Sample,
    owner: UserId,
    now_s: i64,
) -> Result<Option<f64>, DbError> {
    let (key, legacy) = state_key(sample, owner);
    let last = match (load(conn, &key)?, legacy) {
        (None, Some(legacy)) => load(conn, legacy)?,
        (last, _) => last,
    };
    let increment = match last {
        Some(last) if last.start_ns == sample.start_ns && sample.time_ns <= last.time_ns => {
            return Ok(None);
        }
        Some(last) if last.start_ns == sample.start_ns && sample.value >= last.value => {
            sample.value - last.value
        }
        _ => sample.value,
    };
    save(conn, &key, sample, now_s)?;
    Ok(Some(increment))
}

#[derive(Default)]
struct Sums {
    /// (series, start, time, value) of every point in the group: what
    /// makes the event's id.
    points: Vec<String>,
    input: f64,
    input_with_cache: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
    cost_usd: Option<f64>,
}

/// Events for `samples`, attributed to `user` (the token's owner) or, for
/// a sample that names one, to its identity; and the groups of points
/// that make no valid event (each point of such a group is rejected).
pub fn to_events(
    conn: &Connection,
    samples: &[Sample],
    user: UserId,
    now: jiff::Timestamp,
) -> Result<(Vec<NewEvent>, Rejections), DbError> {
    let now_s = now.as_second();
    // (group, second) → the first sample (for its labels) and the sums. An
    // SDK stamps each instrument of one collection a few microseconds
    // apart: a call's tokens and its cost meet within the second.
    let mut groups: BTreeMap<(String, u64), (&Sample, Sums)> = BTreeMap::new();
    for sample in samples {
        let increment = if sample.cumulative {
            match cumulative_increment(conn, sample, user, now_s)? {
                Some(increment) => increment,
                None => continue,
            }
        } else {
            sample.value
        };
        let (_, sums) = groups
            .entry((sample.group.clone(), sample.time_ns / 1_000_000_000))
            .or_insert_with(|| (sample, Sums::default()));
        sums.points.push(format!(
            "{}/{}/{}/{}",
            sample.series, sample.start_ns, sample.time_ns, sample.value
        ));
        match sample.quantity {
            Quantity::Input => sums.input += increment,
            Quantity::InputWithCache => sums.input_with_cache += increment,
            Quantity::Output => sums.output += increment,
            Quantity::CacheRead => sums.cache_read += increment,
            Quantity::CacheWrite => sums.cache_write += increment,
            Quantity::CostUsd => *sums.cost_usd.get_or_insert(0.0) += increment,
        }
    }
    // `as` saturates: a sum past i64 stays huge and is refused below.
    let round = |x: f64| x.max(0.0).round() as i64;
    let mut events = Vec::new();
    let mut rejected = Rejections::default();
    for (_, (first, mut sums)) in groups {
        let input = sums.input + (sums.input_with_cache - sums.cache_read).max(0.0);
        let tokens = [
            round(input),
            round(sums.output),
            round(sums.cache_read),
            round(sums.cache_write),
        ];
        let cost_micros = match sums.cost_usd.map(float_micros) {
            Some(Err(reason)) => {
                rejected.add(sums.points.len(), format!("{}: cost {reason}", first.model));
                continue;
            }
            cost => cost.and_then(Result::ok),
        };
        if tokens == [0; 4] && cost_micros.unwrap_or(0) == 0 {
            continue;
        }
        // The same points are the same usage: a retried delta export is a
        // duplicate, however its points are ordered.
        sums.points.sort();
        let id = Sha256::digest(sums.points.join("\n").as_bytes());
        let fields = EventFields {
            id: format!("m-{}", &crate::secret::hex(&id)[..40]),
            ts_ms: i64::try_from(first.time_ns / 1_000_000).unwrap_or(i64::MAX),
            user: None,
            model: first.model.clone(),
            provider: first.provider.clone(),
            activity: first.activity.clone(),
            project: first.project.clone(),
            source: SOURCE.into(),
            tokens,
            // A metric point may sum several requests: no tier applies.
            extras: Extras::default(),
            cost_micros,
            session: first.session.clone(),
            machine: first.machine.clone(),
            identity: first.identity.clone(),
        };
        match ApiEvent::new(fields, now) {
            Ok(event) => events.push(event.into_new_event(user)),
            Err(problems) => rejected.add(sums.points.len(), describe(problems)),
        }
    }
    Ok((events, rejected))
}
