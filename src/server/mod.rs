//! `tokentally serve`: open the database, print how to get in, listen
//! (plain or TLS, with connection limits: [`listen`]), and shut down
//! gracefully (in-flight requests finish, the writer drains, the WAL is
//! checkpointed) on SIGTERM or Ctrl-C.

pub mod listen;
mod tasks;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::alerts;
use crate::app::{self, AppOptions, AppState, StartError};
use crate::auth::{HashCost, SessionPolicy, setup, users};
use crate::clock::SystemClock;
use crate::db::{DbError, DbOptions};
use crate::demo;
use crate::ingest::otlp::ClaudeCodeSignal;
use crate::model::Role;
use crate::secret::random_password;
use crate::teams;

/// Everything `serve` needs, after defaults, config file, env and flags
/// have been merged.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub demo: bool,
    /// The address users reach the server at, for the setup link.
    pub public_url: Option<String>,
    /// Which of Claude Code's OTLP signals counts its usage.
    pub claude_code_otel: ClaudeCodeSignal,
    /// Session cookies `Secure` even though `public_url` is not https.
    pub secure_cookies: bool,
    pub time_zone: Option<String>,
    /// Audit entries older than this are purged daily; `None` keeps all.
    pub audit_retention_days: Option<u32>,
    pub sessions: SessionPolicy,
    pub hash_cost: HashCost,
    /// Ingest requests per token and second (0: no limit).
    pub ingest_rate_per_token: u32,
    /// New names ingestion may create a day.
    pub name_limits: crate::usage::budget::NameLimits,
    /// The unusual-usage rule's knobs (budgets::unusual).
    pub unusual: crate::budgets::UnusualRule,
    /// MiB that ingest bodies and their decompression may take at once
    /// (0: no bound).
    pub ingest_memory_mib: usize,
    /// A separate address serving `/metrics` without authentication.
    pub metrics_listen: Option<SocketAddr>,
    /// PEM certificate chain and key for built-in TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub limits: listen::Limits,
    /// Proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The unit money is shown in (checked when the settings were read).
    pub unit: crate::model::Unit,
    /// The mail server of alert emails (none: they fail and are retried).
    pub smtp: Option<crate::alerts::email::Smtp>,
    /// The first retry delay of a failed alert delivery (tests shorten it).
    pub alert_retry_ms: Option<u64>,
}

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "tokentally.db";
/// The demo database, apart from the real one.
pub const DEMO_DB_FILE: &str = "demo.db";
/// Events in the demo data set: a year of a small team's usage.
const DEMO_EVENTS: usize = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    User(#[from] users::UserError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot remove the old demo database {path}: {source}")]
    DemoReset {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("time zone {0:?} is not an IANA time zone (e.g. Europe/Berlin)")]
    TimeZone(String),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

pub async fn run(settings: ServeSettings) -> Result<(), ServeError> {
    if let Some(zone) = &settings.time_zone
        && jiff::tz::TimeZone::get(zone).is_err()
    {
        return Err(ServeError::TimeZone(zone.clone()));
    }
    let db_path = if settings.demo {
        reset_demo_database(&settings.data_dir)?
    } else {
        settings.data_dir.join(DB_FILE)
    };
    let options = AppOptions {
        db_path: db_path.clone(),
        db: DbOptions::default(),
        hash_cost: settings.hash_cost,
        clock: Arc::new(SystemClock),
        secure_cookies: settings.secure_cookies
            || settings.tls.is_some()
            || settings
                .public_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://")),
        claude_code_signal: settings.claude_code_otel,
        sessions: settings.sessions,
        time_zone: settings.time_zone.clone(),
        ingest_rate_per_token: settings.ingest_rate_per_token,
        name_limits: settings.name_limits,
        unusual: settings.unusual.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        public_url: settings.public_url.clone(),
        unit: settings.unit.clone(),
    };
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls::Tls::new(cert, key)?),
        None => None,
    };
    let mut state = tokio::task::spawn_blocking(move || AppState::open(options))
        .await
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))??;
    state.decode_budget = crate::ingest::body::DecodeBudget::new(
        settings.ingest_memory_mib.saturating_mul(1024 * 1024),
    );
    tracing::info!(database = %db_path.display(), "database ready");

    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.listen,
            source,
        })?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{local}"));
    // Setup links the pages show start with it.
    state.link_base = Some(base_url.clone());

    if settings.demo {
        start_demo(&state).await?;
    } else if let Some(token) = setup::issue_token_if_needed(&state.db, state.now_unix()).await? {
        // The one secret we do print: it is single-use and the only way in
        // on a fresh install without shell access to the CLI.
        tracing::warn!("no admin exists yet; open the setup link to create one");
        println!("First run: create the admin at {base_url}/setup?token={token}");
    }

    let sweeper = tokio::spawn(tasks::sweep(state.clone(), settings.audit_retention_days));
    let head_keeper = tokio::spawn(tasks::keep_audit_head(state.clone()));
    let roller = tokio::spawn(tasks::roll_rollups(state.clone()));
    let alert_worker = start_alert_worker(&state, &settings);
    let budget_watch = tokio::spawn(tasks::watch_budgets(state.clone(), alert_worker.waker()));
    let metrics_server = match settings.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, state.clone()).await?),
        None => None,
    };
    println!("tokentally listening on {scheme}://{local}");
    tracing::info!(address = %local, tls = tls.is_some(), "listening");
    #[cfg(unix)]
    if let Some(tls) = &tls {
        tls.reload_on_sighup();
    }
    let app = app::router(state.clone());
    listen::serve(
        listener,
        app,
        tls,
        settings.limits,
        &settings.trusted_proxies,
        shutdown_signal(),
    )
    .await;

    tracing::info!("stopping: draining writes");
    // After the delivery in hand, before the writer stops.
    alert_worker.stop().await;
    sweeper.abort();
    head_keeper.abort();
    roller.abort();
    budget_watch.abort();
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    // Refusal counts not yet written go in now.
    state.audit.drain().await;
    state.db.shutdown().await;
    let db_path = state.db.path().to_path_buf();
    let now_ms = state.clock.now().as_millisecond();
    match crate::audit::head::checkpoint_file(&db_path, now_ms) {
        Ok(Some(head)) => tracing::info!(seq = head.seq, hash = %head.hash, "audit chain head"),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not checkpoint the audit chain's head"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The delivery worker of alerts (`alerts::worker`), with the instance's
/// links, unit and mail server.
fn start_alert_worker(state: &AppState, settings: &ServeSettings) -> alerts::worker::Worker {
    let context = alerts::formats::Context {
        public_url: settings.public_url.clone(),
        unit: settings.unit.clone(),
    };
    let sender = alerts::deliver::Sender::new(
        context,
        settings.smtp.clone(),
        alerts::deliver::SEND_TIMEOUT,
    );
    let mut worker_settings = alerts::worker::WorkerSettings::default();
    if let Some(ms) = settings.alert_retry_ms {
        worker_settings.retry_base_ms = i64::try_from(ms.max(1)).unwrap_or(i64::MAX);
    }
    alerts::worker::Worker::spawn(
        state.db.clone(),
        state.clock.clone(),
        sender,
        worker_settings,
        state.alert_wake.clone(),
    )
}

/// Serves `/metrics` alone on its own address (no authentication: bind it
/// where only the scraper reaches).
async fn serve_metrics(
    addr: SocketAddr,
    state: AppState,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr()?;
    println!("metrics on http://{local}/metrics");
    let router = crate::metrics::separate_router(state.metrics());
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    }))
}

/// Waits for SIGTERM (systemd, `kill`) or SIGINT (Ctrl-C). The handlers
/// are installed here, before the listener takes its first request: a
/// handler installed on the future's first poll left a window after
/// start-up in which SIGTERM still killed the process outright, with no
/// drain and no audit head checkpoint (a test that stopped the server
/// right after `/readyz` saw it under load).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (terminate, interrupt) = handlers;
            tokio::select! {
                () = received(terminate) => {},
                () = received(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown requested");
    }
}

/// The next delivery of `signal`; never, if it could not be installed.
#[cfg(unix)]
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// The demo always starts from a fresh database, so its year of usage
/// ends now and its passwords are new.
fn reset_demo_database(data_dir: &Path) -> Result<PathBuf, ServeError> {
    let path = data_dir.join(DEMO_DB_FILE);
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ServeError::DemoReset { path: file, source }),
        }
    }
    Ok(path)
}

/// The demo's people: one admin and two members.
const DEMO_PEOPLE: &[(&str, &str, Role)] = &[
    ("ada", "Ada Lovelace", Role::Admin),
    ("grace", "Grace Hopper", Role::Member),
    ("alan", "Alan Turing", Role::Member),
];

/// Creates the demo accounts (printing their passwords), then fills in a
/// year of usage in the background; `/readyz` says ready once it is in.
async fn start_demo(state: &AppState) -> Result<(), ServeError> {
    let mut accounts = Vec::new();
    for (username, display_name, role) in DEMO_PEOPLE {
        let password = random_password();
        let hash = state
            .passwords
            .hash(password.clone())
            .await
            .map_err(StartError::from)?;
        accounts.push((*username, *display_name, *role, password, hash));
    }
    let now = state.now_unix();
    let rows: Vec<_> = accounts
        .iter()
        .map(|(u, d, r, _, h)| (u.to_string(), d.to_string(), *r, h.clone()))
        .collect();
    let ids = state
        .db
        .write(move |conn| {
            rows.iter()
                .map(|(username, display_name, role, hash)| {
                    let new = users::NewUser {
                        username,
                        display_name: Some(display_name),
                        role: *role,
                        password_hash: hash,
                    };
                    users::insert(conn, &new, now)
                })
                .collect::<Result<Vec<_>, users::UserError>>()
        })
        .await?;

    // Two teams, with history: grace leads platform, where alan was until
    // three months ago, when he moved to research (whose lead is nobody:
    // an admin sees it).
    let now_ms = state.clock.now().as_millisecond();
    let teams = state
        .db
        .write(move |conn| {
            let moved_ms = now_ms - 90 * 86_400_000;
            for team in ["platform", "research"] {
                teams::store::create(conn, team, now_ms)?;
            }
            for (team, user, lead, since) in [
                ("platform", "grace", true, None),
                ("platform", "alan", false, None),
                ("research", "alan", false, Some(moved_ms)),
            ] {
                teams::membership::add_member(conn, team, user, lead, since, now_ms)?;
            }
            Ok::<_, teams::TeamError>(())
        })
        .await;
    if let Err(e) = teams {
        tracing::warn!(error = %e, "the demo teams could not be made");
    }

    println!("Demo mode: a fresh demo database with a year of usage. Sign in as:");
    for (username, _, role, password, _) in &accounts {
        println!("  {:<7} {username:<6} password: {password}", role.as_str());
    }

    let workload = demo::Workload {
        events: DEMO_EVENTS,
        seed: 1,
        end: state.clock.now(),
        days: 365,
    };
    state.readiness.set_not_ready("loading the demo data set");
    let state = state.clone();
    tokio::spawn(async move {
        let written = state
            .db
            .write(move |conn| demo::generate(conn, &ids, &workload))
            .await;
        match written {
            Ok(events) => {
                tracing::info!(events, "demo data loaded");
                state.readiness.set_ready();
            }
            Err(e) => {
                tracing::error!(error = %e, "demo data could not be generated");
                state
                    .readiness
                    .set_not_ready("the demo data could not be generated");
            }
        }
    });
    Ok(())
}
