//! `GET /metrics` in the Prometheus text format: requests by route and
//! status, ingest events and duplicates, the writer's queue depth and batch
//! sizes, the database's size; usage by user and model over the current
//! UTC month and each budget's used share ([`usage`], capped). On the
//! main address it needs an admin
//! (session, or the bearer read token of an admin); `--metrics-listen`
//! serves it on a separate address without authentication, for a scraper
//! on a private network.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use std::sync::Arc;

use crate::auth::{Gate, RateLimiter, Reader, access};
use crate::clock::Clock;
use crate::db::{BATCH_BUCKETS, Db};
use crate::error::AppError;
use crate::usage::store::InsertOutcome;

pub mod usage;

/// Counters kept in memory since start.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, status) → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    ingest_events: AtomicU64,
    ingest_duplicates: AtomicU64,
}

/// What the exposition reads.
#[derive(Clone)]
pub struct MetricsState {
    pub db: Db,
    pub metrics: Arc<Metrics>,
    /// Counts the requests it refused.
    pub ingest_limit: RateLimiter,
    pub gate: Gate,
    /// The usage series' month and the budgets' periods.
    pub clock: Arc<dyn Clock>,
}

impl axum::extract::FromRef<MetricsState> for Gate {
    fn from_ref(state: &MetricsState) -> Gate {
        state.gate.clone()
    }
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((route.to_owned(), status)).or_default() += 1;
        }
    }

    pub fn ingested(&self, outcome: InsertOutcome) {
        self.ingest_events
            .fetch_add(outcome.accepted as u64, Ordering::Relaxed);
        self.ingest_duplicates
            .fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
    }
}

/// Label values are escaped as the text format asks.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition.
pub fn render(state: &MetricsState) -> String {
    let mut out = String::new();
    let metrics = &state.metrics;
    let _ = writeln!(
        out,
        "# HELP tokentally_build_info The running binary: version, git commit, target.\n\
         # TYPE tokentally_build_info gauge\n\
         tokentally_build_info{{version=\"{}\",commit=\"{}\",target=\"{}\"}} 1",
        label(crate::build_info::VERSION),
        label(crate::build_info::COMMIT),
        label(crate::build_info::TARGET)
    );
    out.push_str("# HELP tokentally_http_requests_total HTTP requests answered, by matched route and status.\n");
    out.push_str("# TYPE tokentally_http_requests_total counter\n");
    if let Ok(requests) = metrics.requests.lock() {
        for ((route, status), count) in requests.iter() {
            let _ = writeln!(
                out,
                "tokentally_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                label(route)
            );
        }
    }
    let rate_limited = AtomicU64::new(state.ingest_limit.refused());
    let counters = [
        (
            "tokentally_ingest_events_total",
            "Events stored by ingest requests.",
            &metrics.ingest_events,
        ),
        (
            "tokentally_ingest_duplicates_total",
            "Events acknowledged as already stored.",
            &metrics.ingest_duplicates,
        ),
        (
            "tokentally_ingest_rate_limited_total",
            "Ingest requests refused by the per-token rate limit.",
            &rate_limited,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
    let writer = state.db.writer_stats();
    let _ = writeln!(
        out,
        "# HELP tokentally_writer_queue_depth Write jobs waiting for the writer.\n\
         # TYPE tokentally_writer_queue_depth gauge\n\
         tokentally_writer_queue_depth {}",
        writer.queued.load(Ordering::Relaxed).max(0)
    );
    out.push_str(
        "# HELP tokentally_writer_batch_jobs Jobs per write transaction (group commit).\n",
    );
    out.push_str("# TYPE tokentally_writer_batch_jobs histogram\n");
    for (bound, count) in BATCH_BUCKETS.iter().zip(&writer.batch_buckets) {
        let _ = writeln!(
            out,
            "tokentally_writer_batch_jobs_bucket{{le=\"{bound}\"}} {}",
            count.load(Ordering::Relaxed)
        );
    }
    let batches = writer.batches.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "tokentally_writer_batch_jobs_bucket{{le=\"+Inf\"}} {batches}"
    );
    let _ = writeln!(
        out,
        "tokentally_writer_batch_jobs_sum {}",
        writer.jobs.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "tokentally_writer_batch_jobs_count {batches}");
    let _ = writeln!(
        out,
        "# HELP tokentally_database_bytes Size of the database file and its WAL.\n\
         # TYPE tokentally_database_bytes gauge\n\
         tokentally_database_bytes {}",
        state.db.size_bytes()
    );
    out
}

async fn exposition(state: &MetricsState) -> Response {
    let mut text = render(state);
    let now = state.clock.now();
    match state.db.read(move |conn| usage::render(conn, now)).await {
        Ok(section) => text.push_str(&section),
        // The counters still help while the database fails.
        Err(e) => tracing::warn!(error = %e, "metrics: usage series not read"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// On the main address: admins only (their session or read token).
async fn protected(
    State(state): State<MetricsState>,
    reader: Reader,
) -> Result<Response, Response> {
    if !reader.user.is_admin() {
        return Err(AppError::Forbidden.into_json_response());
    }
    Ok(exposition(&state).await)
}

/// On `--metrics-listen`: anyone who can reach that address.
async fn open(State(state): State<MetricsState>) -> Response {
    exposition(&state).await
}

/// Where the exposition is served.
pub const PATH: &str = "/metrics";

/// A session or a read token, of an admin.
pub fn routes(state: MetricsState) -> Router {
    let routes = Router::new().route(PATH, get(protected));
    access::read_token(routes, &state.gate).with_state(state)
}

/// The router of the separate metrics address.
pub fn separate_router(state: MetricsState) -> Router {
    Router::new().route(PATH, get(open)).with_state(state)
}
