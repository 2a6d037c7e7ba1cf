//! The standard synthetic workload (see `shared/DATASET.md`), first
//! version: a year of usage with a daily rhythm, quiet weekends, growth over
//! the year, skewed users, eight models (one deliberately without a price),
//! twelve activities, log-normal token counts and cache reads on about half
//! of the calls. Deterministic for a seed and an end instant.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, weighted::WeightedIndex};
use rusqlite::{Connection, params};

use crate::auth::UserId;
use crate::db::DbError;

/// A model of the workload: name, provider, weight, and price in USD per
/// million tokens for input, output, cache read, cache write (`None`:
/// unpriced, as a self-hosted model is).
struct ModelSpec {
    name: &'static str,
    provider: &'static str,
    weight: u32,
    price: Option<[f64; 4]>,
}

const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "claude-sonnet-4-5",
        provider: "anthropic",
        weight: 30,
        price: Some([3.0, 15.0, 0.30, 3.75]),
    },
    ModelSpec {
        name: "claude-haiku-4-5",
        provider: "anthropic",
        weight: 15,
        price: Some([1.0, 5.0, 0.10, 1.25]),
    },
    ModelSpec {
        name: "claude-opus-4-1",
        provider: "anthropic",
        weight: 5,
        price: Some([15.0, 75.0, 1.50, 18.75]),
    },
    ModelSpec {
        name: "gpt-5",
        provider: "openai",
        weight: 12,
        price: Some([1.25, 10.0, 0.125, 0.0]),
    },
    ModelSpec {
        name: "gpt-5-mini",
        provider: "openai",
        weight: 15,
        price: Some([0.25, 2.0, 0.025, 0.0]),
    },
    ModelSpec {
        name: "gpt-4.1",
        provider: "openai",
        weight: 8,
        price: Some([2.0, 8.0, 0.50, 0.0]),
    },
    ModelSpec {
        name: "gemini-2.5-pro",
        provider: "google",
        weight: 10,
        price: Some([1.25, 10.0, 0.31, 0.0]),
    },
    ModelSpec {
        name: "llama-3.3-70b-local",
        provider: "self-hosted",
        weight: 5,
        price: None,
    },
];

const ACTIVITIES: &[(&str, u32)] = &[
    ("coding agent", 30),
    ("chat", 20),
    ("code review", 10),
    ("summarisation", 8),
    ("support triage", 6),
    ("data extraction", 6),
    ("test generation", 5),
    ("research", 5),
    ("email drafting", 4),
    ("translation", 3),
    ("report: weekly sales", 2),
    ("report: churn analysis", 1),
];

const PROJECTS: &[(&str, u32)] = &[
    ("", 40),
    ("website", 25),
    ("mobile-app", 20),
    ("internal-tools", 15),
];

/// Relative activity per UTC hour: quiet nights, a working-day plateau.
const HOURLY: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 19, 15, 18, 20, 19, 17, 13, 9, 7, 6, 5, 4, 3,
];

/// The source name demo events are recorded under.
pub const SOURCE: &str = "demo";

/// What to generate.
#[derive(Debug, Clone)]
pub struct Workload {
    pub events: usize,
    pub seed: u64,
    /// The instant the year of usage ends at (exclusive).
    pub end: Timestamp,
    pub days: i64,
}

struct GeneratedEvent {
    ts_ms: i64,
    user: UserId,
    model: usize,
    activity: usize,
    project: usize,
    tokens: [i64; 4],
}

/// Writes the workload for `users` (most active first) into `conn`, in the
/// caller's transaction. Returns the number of events written.
pub fn generate(
    conn: &Connection,
    users: &[UserId],
    workload: &Workload,
) -> Result<usize, DbError> {
    if users.is_empty() || workload.events == 0 {
        return Ok(0);
    }
    let mut events = sample_events(users, workload);
    events.sort_by_key(|event| event.ts_ms);
    insert_events(conn, &events, workload.seed)?;
    Ok(events.len())
}

fn sample_events(users: &[UserId], workload: &Workload) -> Vec<GeneratedEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(workload.seed);
    // A few heavy users and a long tail: Zipf-like weights by rank.
    let user_weights: Vec<f64> = (1..=users.len())
        .map(|rank| 1.0 / (rank as f64).powf(1.1))
        .collect();
    let pick_user = WeightedIndex::new(&user_weights).expect("positive weights");
    let pick_model = WeightedIndex::new(MODELS.iter().map(|m| m.weight)).expect("positive weights");
    let pick_activity =
        WeightedIndex::new(ACTIVITIES.iter().map(|a| a.1)).expect("positive weights");
    let pick_project = WeightedIndex::new(PROJECTS.iter().map(|p| p.1)).expect("positive weights");
    let pick_hour = WeightedIndex::new(HOURLY).expect("positive weights");
    let input = LogNormal::new(2000f64.ln(), 1.0).expect("valid log-normal");
    let output = LogNormal::new(300f64.ln(), 0.9).expect("valid log-normal");
    let cache_read = LogNormal::new(8000f64.ln(), 1.2).expect("valid log-normal");
    let cache_write = LogNormal::new(1500f64.ln(), 1.0).expect("valid log-normal");

    let days = workload.days.max(1);
    let first_day = workload
        .end
        .checked_sub(SignedDuration::from_hours(24 * days))
        .unwrap_or(workload.end)
        .as_second()
        .div_euclid(86_400);
    let end_ms = workload.end.as_millisecond();
    let mut events = Vec::with_capacity(workload.events);
    while events.len() < workload.events {
        let day = rng.random_range(0..=days);
        // Usage grows through the year; weekends are quiet.
        let growth = 0.4 + 0.6 * (day as f64 / days as f64);
        let weekday = (first_day + day + 3).rem_euclid(7); // 0 = Monday
        let weekend = if weekday >= 5 { 0.3 } else { 1.0 };
        if rng.random::<f64>() > growth * weekend {
            continue;
        }
        let second = (first_day + day) * 86_400
            + pick_hour.sample(&mut rng) as i64 * 3600
            + rng.random_range(0..3600);
        let ts_ms = second * 1000 + rng.random_range(0..1000);
        if ts_ms >= end_ms {
            continue;
        }
        let with_cache = rng.random_bool(0.5);
        let writes_cache = rng.random_bool(0.1);
        events.push(GeneratedEvent {
            ts_ms,
            user: users[pick_user.sample(&mut rng)],
            model: pick_model.sample(&mut rng),
            activity: pick_activity.sample(&mut rng),
            project: pick_project.sample(&mut rng),
            tokens: [
                input.sample(&mut rng).round() as i64 + 1,
                output.sample(&mut rng).round() as i64 + 1,
                if with_cache {
                    cache_read.sample(&mut rng).round() as i64
                } else {
                    0
                },
                if writes_cache {
                    cache_write.sample(&mut rng).round() as i64
                } else {
                    0
                },
            ],
        });
    }
    events
}

/// Cost in micro-USD, rounded half up; prices are USD per million tokens,
/// which is the same number as micro-USD per token.
fn cost_micros(price: &[f64; 4], tokens: &[i64; 4]) -> i64 {
    let micros: f64 = price.iter().zip(tokens).map(|(p, t)| p * *t as f64).sum();
    micros.round() as i64
}

fn insert_events(conn: &Connection, events: &[GeneratedEvent], seed: u64) -> Result<(), DbError> {
    let mut dims = Dimensions::default();
    let source = dims.id(conn, "sources", SOURCE)?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO events (ts_ms, user_id, source_id, external_id, model_id, provider_id,
             activity_id, project_id, input_tokens, output_tokens, cache_read_tokens,
             cache_write_tokens, cost_micros, cost_origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for (index, event) in events.iter().enumerate() {
        let model = &MODELS[event.model];
        let model_id = dims.id(conn, "models", model.name)?;
        let provider_id = dims.id(conn, "providers", model.provider)?;
        let activity_id = dims.id(conn, "activities", ACTIVITIES[event.activity].0)?;
        let project = PROJECTS[event.project].0;
        let project_id = if project.is_empty() {
            None
        } else {
            Some(dims.id(conn, "projects", project)?)
        };
        let (cost, origin) = match &model.price {
            Some(price) => (cost_micros(price, &event.tokens), 1),
            None => (0, 0),
        };
        insert.execute(params![
            event.ts_ms,
            event.user.0,
            source,
            format!("demo-{seed}-{index}"),
            model_id,
            provider_id,
            activity_id,
            project_id,
            event.tokens[0],
            event.tokens[1],
            event.tokens[2],
            event.tokens[3],
            cost,
            origin
        ])?;
    }
    Ok(())
}

/// Interns dimension names into their small tables, remembering ids.
#[derive(Default)]
struct Dimensions {
    known: HashMap<(&'static str, String), i64>,
}

impl Dimensions {
    fn id(&mut self, conn: &Connection, table: &'static str, name: &str) -> Result<i64, DbError> {
        if let Some(id) = self.known.get(&(table, name.to_owned())) {
            return Ok(*id);
        }
        // `table` is one of our own constant names, never user input.
        conn.prepare_cached(&format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)"))?
            .execute([name])?;
        let id: i64 = conn
            .prepare_cached(&format!("SELECT id FROM {table} WHERE name = ?1"))?
            .query_row([name], |row| row.get(0))?;
        self.known.insert((table, name.to_owned()), id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_price_times_tokens() {
        // 1M input at $3/M and 100k output at $15/M: $3 + $1.50.
        assert_eq!(
            cost_micros(&[3.0, 15.0, 0.3, 3.75], &[1_000_000, 100_000, 0, 0]),
            4_500_000
        );
        assert_eq!(cost_micros(&[0.3, 0.0, 0.0, 0.0], &[5, 0, 0, 0]), 2);
    }

    #[test]
    fn same_seed_same_events_and_all_inside_the_range() {
        let workload = Workload {
            events: 2000,
            seed: 7,
            end: "2026-06-01T00:00:00Z".parse().expect("timestamp"),
            days: 365,
        };
        let users = [UserId(1), UserId(2), UserId(3)];
        let a = sample_events(&users, &workload);
        let b = sample_events(&users, &workload);
        assert_eq!(a.len(), 2000);
        let key = |e: &GeneratedEvent| (e.ts_ms, e.user, e.model, e.activity, e.tokens);
        assert!(a.iter().map(key).eq(b.iter().map(key)));
        let end = workload.end.as_millisecond();
        let start = end - 366 * 86_400_000;
        assert!(a.iter().all(|e| e.ts_ms >= start && e.ts_ms < end));
        // Skew: the first user is the heaviest.
        let count = |u| a.iter().filter(|e| e.user == u).count();
        assert!(count(UserId(1)) > count(UserId(3)));
    }
}
