//! What auditing costs a data read, measured side by side in one run: the
//! same `GET /api/v1/usage` (read token, a month by model) through its
//! handler alone and through the real read routes (the read-token group,
//! whose layers end in the audit middleware),
//! interleaved request by request over one database. Also: the time a
//! request spends handing its entry to the queue, and how fast the
//! background writer appends entries to the chain.
//!
//! Usage: `cargo bench --bench audit -- [EVENTS [REQUESTS]]` (defaults
//! 200,000 events of the standard workload, 4,000 requests per variant).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tokentally::app::{AppOptions, AppState};
use tokentally::audit::{Action, Actor, Entry, Outcome};
use tokentally::auth::tokens::{self, TokenScope};
use tokentally::auth::users::{self, NewUser};
use tokentally::auth::{HashCost, Role};
use tokentally::clock::{Clock, ManualClock};
use tokentally::db::DbOptions;
use tokentally::demo::{self, Workload};
use tower::ServiceExt;

const PATH: &str = "/api/v1/usage?group_by=model&bucket=day";

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let events: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let requests: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(4_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(events, requests));
}

async fn run(events: usize, requests: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, token) = setup(dir.path(), events).await;
    // The handler alone, and the real read routes: the read-token group,
    // whose layers are the group mark, the session-or-token check (a
    // header test for a bearer request) and the audit trail.
    let plain: Router = Router::new()
        .route(
            "/api/v1/usage",
            axum::routing::get(tokentally::usage::api::usage),
        )
        .with_state(state.usage());
    let audited: Router = tokentally::usage::routes(state.usage());

    // Warm the caches and the statement cache of every reader.
    for _ in 0..200 {
        call(&plain, &token).await;
        call(&audited, &token).await;
    }
    state.audit.flush().await;
    let mut without = Vec::with_capacity(requests);
    let mut with = Vec::with_capacity(requests);
    for i in 0..requests {
        // Alternate which goes first, so neither always meets warm caches.
        if i % 2 == 0 {
            without.push(call(&plain, &token).await);
            with.push(call(&audited, &token).await);
        } else {
            with.push(call(&audited, &token).await);
            without.push(call(&plain, &token).await);
        }
    }
    let flush_started = Instant::now();
    state.audit.flush().await;
    let drain = flush_started.elapsed();

    let enqueue = enqueue_cost(&state, 20_000).await;
    let append = append_rate(&state, 20_000).await;

    let (w50, w90) = percentiles(&mut without);
    let (a50, a90) = percentiles(&mut with);
    println!(
        "GET {PATH} with a read token, {requests} requests per variant, {events} events, \
         interleaved\n"
    );
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!(
        "| read, no audit: median / p90 | {:.1} / {:.1} µs |",
        us(w50),
        us(w90)
    );
    println!(
        "| read, audited: median / p90 | {:.1} / {:.1} µs |",
        us(a50),
        us(a90)
    );
    println!(
        "| audit cost of a read (median difference) | {:.1} µs ({:+.1} %) |",
        us(a50) - us(w50),
        (us(a50) / us(w50) - 1.0) * 100.0
    );
    println!(
        "| queue hand-off per entry (request side) | {:.2} µs |",
        enqueue
    );
    println!("| chain append (writer side, batched) | {append:.0} entries/s |");
    println!(
        "| queue left to drain after the run | {:.1} ms |",
        drain.as_secs_f64() * 1e3
    );
    state.db.shutdown().await;
}

async fn setup(dir: &std::path::Path, events: usize) -> (AppState, String) {
    let clock = Arc::new(ManualClock::new(
        "2026-11-01T00:00:00Z".parse().expect("timestamp"),
    ));
    let options = AppOptions {
        db_path: dir.join("tokentally.db"),
        db: DbOptions::default(),
        hash_cost: HashCost::cheapest(),
        clock: clock.clone(),
        secure_cookies: false,
        claude_code_signal: Default::default(),
        sessions: Default::default(),
        time_zone: None,
        ingest_rate_per_token: 0,
        name_limits: Default::default(),
        unusual: Default::default(),
        trusted_proxies: Vec::new(),
        public_url: None,
        unit: Default::default(),
    };
    let state = tokio::task::spawn_blocking(move || AppState::open(options))
        .await
        .expect("join")
        .expect("state");
    let end = clock.now();
    let token = state
        .db
        .write(move |conn| {
            let names = ["ada", "grace", "alan", "edsger", "barbara"];
            let mut ids = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let role = if i == 0 { Role::Admin } else { Role::Member };
                let new = NewUser {
                    username: name,
                    display_name: None,
                    role,
                    password_hash: "x",
                };
                ids.push(users::insert(conn, &new, 0).map_err(setup_error)?);
            }
            let workload = Workload {
                events,
                seed: 42,
                end,
                days: 365,
            };
            demo::generate(conn, &ids, &workload).map_err(setup_error)?;
            tokens::create(conn, "grace", TokenScope::Read, "bench", 0)
                .map(|t| t.secret)
                .map_err(setup_error)
        })
        .await
        .unwrap_or_else(|e: SetupError| panic!("cannot build the bench database: {}", e.0));
    (state, token)
}

async fn call(router: &Router, token: &str) -> Duration {
    let request = Request::get(PATH)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert!(response.status().is_success(), "{}", response.status());
    let _ = response.into_body().collect().await.expect("body");
    started.elapsed()
}

/// Microseconds a request spends queueing one entry.
async fn enqueue_cost(state: &AppState, entries: usize) -> f64 {
    let entry = Entry {
        details: serde_json::json!({"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z",
                                     "group_by": "model", "filters": {"model": ["claude-x"]}}),
        route: Some("GET /api/v1/usage".into()),
        client_addr: Some("127.0.0.1".into()),
        user_agent: Some("bench/1.0".into()),
        ..Entry::new(
            0,
            Actor::System("bench".into()),
            Action::UsageRead,
            Outcome::Success,
        )
    };
    state.audit.flush().await;
    let started = Instant::now();
    for _ in 0..entries {
        state.audit.record(entry.clone()).await;
    }
    let elapsed = started.elapsed();
    state.audit.flush().await;
    elapsed.as_secs_f64() * 1e6 / entries as f64
}

/// Entries per second the writer appends, batches of what has queued up.
async fn append_rate(state: &AppState, entries: usize) -> f64 {
    state.audit.flush().await;
    let started = Instant::now();
    for i in 0..entries {
        let entry = Entry::new(
            i as i64,
            Actor::System("bench".into()),
            Action::PageView,
            Outcome::Success,
        );
        state.audit.record(entry).await;
    }
    state.audit.flush().await;
    entries as f64 / started.elapsed().as_secs_f64()
}

/// Any failure while building the bench database, as text.
#[derive(Debug)]
struct SetupError(String);

impl From<tokentally::db::DbError> for SetupError {
    fn from(e: tokentally::db::DbError) -> Self {
        SetupError(e.to_string())
    }
}

fn setup_error(e: impl std::fmt::Display) -> SetupError {
    SetupError(e.to_string())
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.9))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
