//! The standard synthetic workload (defined in `docs/WORKLOAD.md`), first
//! version: a year of usage with a daily rhythm, quiet weekends, growth over
//! the year, skewed users, eight models (one deliberately without a price),
//! twelve activities, log-normal token counts and cache reads on about half
//! of the calls. Deterministic for a seed and an end instant.

use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, weighted::WeightedIndex};
use rusqlite::{Connection, params};

use crate::db::DbError;
use crate::model::UserId;
use crate::usage::rollup::MS_PER_DAY;
use crate::usage::store::{Inserter, NewEvent};

/// A model of the workload: name, provider and weight. Prices come from
/// the price catalogue; `llama-3.3-70b-local` has none on purpose (a
/// self-hosted model), so the workload has unpriced events.
struct ModelSpec {
    name: &'static str,
    provider: &'static str,
    weight: u32,
}

const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "claude-sonnet-4-5",
        provider: "anthropic",
        weight: 30,
    },
    ModelSpec {
        name: "claude-haiku-4-5",
        provider: "anthropic",
        weight: 15,
    },
    ModelSpec {
        name: "claude-opus-4-1",
        provider: "anthropic",
        weight: 5,
    },
    ModelSpec {
        name: "gpt-5",
        provider: "openai",
        weight: 12,
    },
    ModelSpec {
        name: "gpt-5-mini",
        provider: "openai",
        weight: 15,
    },
    ModelSpec {
        name: "gpt-4.1",
        provider: "openai",
        weight: 8,
    },
    ModelSpec {
        name: "gemini-2.5-pro",
        provider: "google",
        weight: 10,
    },
    ModelSpec {
        name: "llama-3.3-70b-local",
        provider: "self-hosted",
        weight: 5,
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
    /// The instant the usage ends at (exclusive).
    pub end: Timestamp,
    pub days: i64,
}

/// The samplers of one workload, built once.
struct Samplers {
    user: WeightedIndex<f64>,
    model: WeightedIndex<u32>,
    activity: WeightedIndex<u32>,
    project: WeightedIndex<u32>,
    hour: WeightedIndex<u32>,
    input: LogNormal<f64>,
    output: LogNormal<f64>,
    cache_read: LogNormal<f64>,
    cache_write: LogNormal<f64>,
}

impl Samplers {
    fn new(user_count: usize) -> Samplers {
        // A few heavy users and a long tail: Zipf-like weights by rank.
        let user_weights = (1..=user_count).map(|rank| 1.0 / (rank as f64).powf(1.1));
        let log_normal = |median: f64, sigma: f64| {
            LogNormal::new(median.ln(), sigma).expect("constant parameters are valid")
        };
        Samplers {
            user: WeightedIndex::new(user_weights).expect("positive weights"),
            model: WeightedIndex::new(MODELS.iter().map(|m| m.weight)).expect("positive weights"),
            activity: WeightedIndex::new(ACTIVITIES.iter().map(|a| a.1)).expect("positive weights"),
            project: WeightedIndex::new(PROJECTS.iter().map(|p| p.1)).expect("positive weights"),
            hour: WeightedIndex::new(HOURLY).expect("positive weights"),
            input: log_normal(2000.0, 1.0),
            output: log_normal(300.0, 0.9),
            cache_read: log_normal(8000.0, 1.2),
            cache_write: log_normal(1500.0, 1.0),
        }
    }

    fn event(
        &self,
        rng: &mut ChaCha8Rng,
        users: &[UserId],
        ts_ms: i64,
        index: u64,
        seed: u64,
    ) -> NewEvent {
        let model = &MODELS[self.model.sample(rng)];
        let project = PROJECTS[self.project.sample(rng)].0;
        let with_cache = rng.random_bool(0.5);
        let writes_cache = rng.random_bool(0.1);
        let count = |sample: f64| sample.round() as i64;
        NewEvent {
            extras: Default::default(),
            ts_ms,
            user: users[self.user.sample(rng)],
            source: SOURCE.to_owned(),
            external_id: format!("demo-{seed}-{index}"),
            model: model.name.to_owned(),
            provider: Some(model.provider.to_owned()),
            activity: Some(ACTIVITIES[self.activity.sample(rng)].0.to_owned()),
            project: (!project.is_empty()).then(|| project.to_owned()),
            tokens: [
                count(self.input.sample(rng)) + 1,
                count(self.output.sample(rng)) + 1,
                if with_cache {
                    count(self.cache_read.sample(rng))
                } else {
                    0
                },
                if writes_cache {
                    count(self.cache_write.sample(rng))
                } else {
                    0
                },
            ],
            reported_cost_micros: None,
            session: None,
            machine: None,
            identity: None,
        }
    }
}

/// How many events fall on each UTC day of the span: weights for growth
/// through the year, quiet weekends and a part-day at the end, shared out
/// so the counts add up to exactly `total`.
fn events_per_day(first_day: i64, end_ms: i64, days: i64, total: usize) -> Vec<usize> {
    let weights: Vec<f64> = (0..=days)
        .map(|offset| {
            let day = first_day + offset;
            let growth = 0.4 + 0.6 * (offset as f64 / days as f64);
            let weekday = (day + 3).rem_euclid(7); // 0 = Monday
            let weekend = if weekday >= 5 { 0.3 } else { 1.0 };
            let open_ms = (end_ms - day * MS_PER_DAY).clamp(0, MS_PER_DAY);
            growth * weekend * (open_ms as f64 / MS_PER_DAY as f64)
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    // Largest remainders get the events the floors left over.
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|a, b| {
        (exact[*b] - exact[*b].floor()).total_cmp(&(exact[*a] - exact[*a].floor()))
    });
    let short = total - counts.iter().sum::<usize>();
    for index in order.into_iter().take(short) {
        counts[index] += 1;
    }
    counts
}

/// Produces the workload one UTC day at a time, in time order, so that a
/// large workload never sits in memory and can be written in many
/// transactions.
pub struct Generator {
    rng: ChaCha8Rng,
    samplers: Samplers,
    users: Vec<UserId>,
    counts: std::vec::IntoIter<usize>,
    day_start_ms: i64,
    end_ms: i64,
    seed: u64,
    index: u64,
}

impl Generator {
    pub fn new(users: Vec<UserId>, workload: &Workload) -> Generator {
        let days = workload.days.max(1);
        let end_ms = workload.end.as_millisecond();
        let first_day = end_ms.div_euclid(MS_PER_DAY) - days;
        let counts = if users.is_empty() {
            Vec::new()
        } else {
            events_per_day(first_day, end_ms, days, workload.events)
        };
        Generator {
            rng: ChaCha8Rng::seed_from_u64(workload.seed),
            samplers: Samplers::new(users.len().max(1)),
            users,
            counts: counts.into_iter(),
            day_start_ms: first_day * MS_PER_DAY,
            end_ms,
            seed: workload.seed,
            index: 0,
        }
    }

    /// The next day's events (possibly none), or `None` after the last day.
    pub fn next_day(&mut self) -> Option<Vec<NewEvent>> {
        let count = self.counts.next()?;
        let day_start = self.day_start_ms;
        self.day_start_ms += MS_PER_DAY;
        let mut stamps: Vec<i64> = (0..count)
            .map(|_| {
                loop {
                    let hour = self.samplers.hour.sample(&mut self.rng) as i64;
                    let ts = day_start + hour * 3_600_000 + self.rng.random_range(0..3_600_000);
                    if ts < self.end_ms {
                        break ts;
                    }
                }
            })
            .collect();
        stamps.sort_unstable();
        Some(
            stamps
                .into_iter()
                .map(|ts| {
                    self.index += 1;
                    self.samplers
                        .event(&mut self.rng, &self.users, ts, self.index, self.seed)
                })
                .collect(),
        )
    }
}

/// Writes the whole workload for `users` (most active first) in the
/// caller's transaction. Returns the number of events written.
pub fn generate(
    conn: &Connection,
    users: &[UserId],
    workload: &Workload,
) -> Result<usize, DbError> {
    let mut generator = Generator::new(users.to_vec(), workload);
    let mut inserter = Inserter::new(conn)?;
    let mut written = 0;
    while let Some(events) = generator.next_day() {
        written += inserter.insert(conn, &events)?.accepted;
    }
    crate::usage::rollup::roll_all(conn)?;
    Ok(written)
}

/// The workload's users for `tokentally demo`: `user-001`, `user-002`, …
/// (members without a password, so nobody can sign in as them), created
/// when missing. Returns their ids, heaviest first.
pub fn ensure_users(conn: &Connection, count: usize, now: i64) -> Result<Vec<UserId>, DbError> {
    let mut ids = Vec::with_capacity(count);
    for n in 1..=count {
        let name = format!("user-{n:03}");
        conn.prepare_cached(
            "INSERT OR IGNORE INTO users (username, role, created_at, updated_at)
             VALUES (?1, 'member', ?2, ?2)",
        )?
        .execute(params![name, now])?;
        let id: i64 = conn
            .prepare_cached("SELECT id FROM users WHERE username = ?1")?
            .query_row([&name], |row| row.get(0))?;
        ids.push(UserId(id));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_placed_and_none_after_the_end() {
        let end_ms = 20_000 * MS_PER_DAY + 5 * 3_600_000; // 05:00 on the last day
        let counts = events_per_day(20_000 - 365, end_ms, 365, 100_000);
        assert_eq!(counts.iter().sum::<usize>(), 100_000);
        assert_eq!(counts.len(), 366);
        assert!(
            counts[365] < counts[364],
            "the last day is only 5 hours long"
        );
        assert!(counts[300] > counts[10], "usage grows over the year");
    }
}
