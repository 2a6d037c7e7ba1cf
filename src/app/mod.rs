//! The application: its shared state and the router that every capability
//! module contributes its `routes()` to, merged once here.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::audit::{Audit, TrailState};
use crate::auth::{
    self, Gate, HashCost, LoginThrottle, Passwords, RateLimiter, SessionPolicy, SqliteSessionStore,
    access,
};
use crate::clock::Clock;
use crate::db::{Db, DbError, DbOptions};
use crate::error::AppError;
use crate::health::HealthState;
pub use crate::health::Readiness;
use crate::ingest::IngestState;
use crate::ingest::otlp::ClaudeCodeSignal;
use crate::metrics::MetricsState;
use crate::model::Unit;
use crate::usage::UsageState;
use crate::web::WebState;
use crate::web::assets::AssetIndex;
use crate::{health, ingest, metrics, observe, openapi, usage, web};

/// Longest a request may take, body included: a client that sends its
/// body slowly is cut off with 408.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Everything a handler may need; cloned per request (all fields are
/// cheap handles). There are no globals: tests build their own.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub passwords: Passwords,
    pub assets: Arc<AssetIndex>,
    pub readiness: Readiness,
    /// The audit queue: every request's entry goes through it.
    pub audit: Audit,
    /// Failed sign-ins per account and per address.
    pub throttle: LoginThrottle,
    /// Idle and absolute session timeouts.
    pub sessions: SessionPolicy,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Ingest requests per token and second.
    pub ingest_limit: RateLimiter,
    /// The memory that ingest bodies and their decompression share.
    pub decode_budget: crate::ingest::body::DecodeBudget,
    /// Proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    pub secure_cookies: bool,
    /// Which of Claude Code's OTLP signals counts its usage.
    pub claude_code_signal: ClaudeCodeSignal,
    /// The instance's time zone, for users without their own.
    pub time_zone: Option<String>,
    /// How many new names ingestion may create a day (usage::budget).
    pub name_limits: crate::usage::budget::NameLimits,
    /// The unusual-usage rule's knobs and pace (budgets::unusual).
    pub unusual: Arc<crate::budgets::UnusualWatch>,
    /// The URL users reach the server at, when configured (`public_url`):
    /// the Connect page says when it has to guess instead.
    pub public_url: Option<String>,
    /// The base of the setup links the pages show: `public_url`, else the
    /// address the server listens on; `None` until the server knows it
    /// (links are then shown as paths).
    pub link_base: Option<String>,
    /// The unit money is shown in (amounts are stored in USD micro-units
    /// whatever it is): pages, the read API and exports convert with it.
    pub unit: Arc<Unit>,
    /// Wakes the alert delivery worker (`alerts::worker`) when a request
    /// recorded alerts, so they go out at once rather than at its next
    /// poll.
    pub alert_wake: Arc<tokio::sync::Notify>,
}

/// How to build an [`AppState`].
pub struct AppOptions {
    pub db_path: PathBuf,
    pub db: DbOptions,
    pub hash_cost: HashCost,
    pub clock: Arc<dyn Clock>,
    /// Mark the session cookie `Secure` (served over HTTPS).
    pub secure_cookies: bool,
    pub claude_code_signal: ClaudeCodeSignal,
    pub sessions: SessionPolicy,
    /// The zone of users who have not chosen one (IANA name); UTC if none.
    pub time_zone: Option<String>,
    /// Ingest requests a token may make per second (twice that in a
    /// burst); 0 for no limit.
    pub ingest_rate_per_token: u32,
    /// How many new names ingestion may create a day (usage::budget).
    pub name_limits: crate::usage::budget::NameLimits,
    /// The unusual-usage rule's knobs (budgets::unusual).
    pub unusual: crate::budgets::UnusualRule,
    /// Proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The URL users reach the server at (`public_url`), shown in the
    /// configuration the Connect page offers; `None` when not configured.
    pub public_url: Option<String>,
    /// The unit money is shown in; [`Unit::default`] is USD.
    pub unit: Unit,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Password(#[from] auth::PasswordError),
    #[error("the app state needs a Tokio runtime (for its audit queue)")]
    NoRuntime,
}

impl AppState {
    /// Opens and migrates the database and prepares everything else.
    /// Blocking: run it before serving, or in `spawn_blocking`.
    pub fn open(options: AppOptions) -> Result<AppState, StartError> {
        let db = Db::open_with(
            &options.db_path,
            &options.db,
            &crate::usage::price_sync::prepare,
        )?;
        let passwords = Passwords::new(options.hash_cost)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let audit = Audit::start(db.clone(), options.clock.clone(), &runtime);
        Ok(AppState {
            audit,
            throttle: LoginThrottle::default(),
            sessions: options.sessions,
            metrics: Arc::default(),
            ingest_limit: RateLimiter::new(options.ingest_rate_per_token),
            decode_budget: Default::default(),
            trusted_proxies: Arc::new(options.trusted_proxies),
            time_zone: options.time_zone,
            name_limits: options.name_limits,
            unusual: Arc::new(crate::budgets::UnusualWatch::new(options.unusual)),
            link_base: options.public_url.clone(),
            public_url: options.public_url,
            unit: Arc::new(options.unit),
            alert_wake: Arc::default(),
            db,
            clock: options.clock,
            passwords,
            assets: Arc::new(AssetIndex::build()),
            readiness: Readiness::default(),
            secure_cookies: options.secure_cookies,
            claude_code_signal: options.claude_code_signal,
        })
    }

    /// Unix seconds from the injected clock.
    pub fn now_unix(&self) -> i64 {
        self.clock.now().as_second()
    }

    /// What the access checks of every route group need.
    pub fn gate(&self) -> Gate {
        Gate {
            db: self.db.clone(),
            clock: self.clock.clone(),
            sessions: self.sessions,
            ingest_limit: self.ingest_limit.clone(),
            trail: TrailState {
                audit: self.audit.clone(),
                clock: self.clock.clone(),
                trusted_proxies: self.trusted_proxies.clone(),
            },
        }
    }

    pub fn web(&self) -> WebState {
        WebState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            assets: self.assets.clone(),
            passwords: self.passwords.clone(),
            throttle: self.throttle.clone(),
            time_zone: self.time_zone.clone(),
            connect: web::connect::ConnectSettings {
                public_url: self.public_url.clone(),
                https: self.secure_cookies,
                claude_code_logs: self.claude_code_signal == ClaudeCodeSignal::Logs,
            },
            link_base: self.link_base.clone(),
            unit: self.unit.clone(),
            gate: self.gate(),
        }
    }

    pub fn ingest(&self) -> IngestState {
        IngestState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            decode_budget: self.decode_budget.clone(),
            claude_code_signal: self.claude_code_signal,
            name_limits: self.name_limits,
            unusual: self.unusual.clone(),
            gate: self.gate(),
            alert_wake: self.alert_wake.clone(),
        }
    }

    pub fn usage(&self) -> UsageState {
        UsageState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            unit: self.unit.clone(),
            gate: self.gate(),
            time_zone: self.time_zone.clone(),
        }
    }

    pub fn metrics(&self) -> MetricsState {
        MetricsState {
            db: self.db.clone(),
            metrics: self.metrics.clone(),
            ingest_limit: self.ingest_limit.clone(),
            gate: self.gate(),
            clock: self.clock.clone(),
        }
    }

    fn health(&self) -> HealthState {
        HealthState {
            db: self.db.clone(),
            readiness: self.readiness.clone(),
        }
    }
}

/// The whole HTTP surface: every capability's routes, each in its access
/// group (`auth::access`), merged once. Around them, outermost first:
/// request log, compression, security headers, timeout, session.
pub fn router(state: AppState) -> Router {
    let sessions = SessionManagerLayer::new(SqliteSessionStore::new(state.db.clone()))
        .with_name("tokentally_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.secure_cookies)
        .with_expiry(Expiry::OnInactivity(state.sessions.idle_cookie()));
    let gate = state.gate();
    // Any other path: signed-in users get 404, everyone else the sign-in
    // page, as for any page.
    let not_found = access::signed_in(
        Router::new().fallback(|| async { AppError::NotFound }),
        &gate,
    );
    Router::new()
        .merge(health::routes(state.health(), &gate))
        .merge(openapi::routes(&gate))
        .merge(web::routes(state.web()))
        .merge(ingest::routes(state.ingest()))
        .merge(usage::routes(state.usage()))
        .merge(metrics::routes(state.metrics()))
        .merge(not_found)
        .layer(sessions)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(
            web::headers::Hsts(state.secure_cookies),
            web::headers::security_headers,
        ))
        // gzip for pages, JSON and CSV when the client takes it (a year's
        // overview page: 229 KB → ~30 KB). Assets come gzipped already
        // (`web::assets`) and are left alone; CSRF tokens are masked per
        // page against BREACH (`auth::csrf::mask`).
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            observe::log_request,
        ))
}

#[cfg(test)]
mod error_tests;
