//! The command line: every subcommand, its options, and what each does.
//!
//! Each option can come from four places; the later wins: built-in
//! default, the TOML config file (`--config`), a `TOKENTALLY_*`
//! environment variable, the flag itself. clap handles env and flags;
//! [`config`] layers the file and the defaults under them.

mod budget;
mod channel;
mod config;
mod identity;
mod import;
mod price;
mod price_sync;
mod restore;
mod systemd;
mod team;
mod token;
mod unit;
mod usage;
mod user;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use config::{ConfigError, FileConfig};

use crate::db::{self, DbError};
use crate::observe::{LogFormat, init_logging};
use crate::server::{self, DB_FILE, ServeError};

#[derive(Debug, Parser)]
#[command(
    name = "tokentally",
    version = crate::build_info::LONG_VERSION,
    about = "A self-hosted dashboard of LLM token usage and cost",
    long_about = "A self-hosted dashboard of LLM token usage and cost: one binary with its \
                  web UI and an embedded SQLite database.\n\nEvery option can also be set in \
                  the config file (--config) or by its TOKENTALLY_* environment variable; \
                  flags beat the environment, which beats the file.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML config file (keys: the long options of `serve` with `_`, e.g. listen, data_dir,
    /// public_url, time_zone, audit_retention_days)
    #[arg(long, global = true, env = "TOKENTALLY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the database [default: ./tokentally-data]
    #[arg(long, global = true, env = "TOKENTALLY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log line format [default: pretty]
    #[arg(long, global = true, env = "TOKENTALLY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `tokentally=debug,info` [default: info for serve, warn otherwise]
    #[arg(
        long,
        global = true,
        env = "TOKENTALLY_LOG_LEVEL",
        value_name = "FILTER"
    )]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (dashboard, API)
    Serve(ServeArgs),
    /// Manage users
    #[command(subcommand)]
    User(user::UserCommand),
    /// Write a consistent copy of the database to FILE (safe while the server runs)
    Backup(BackupArgs),
    /// Put a backup back as the database (service stopped): checks a copy of it as `verify`
    /// does first and keeps the current database as tokentally.db.before-restore.bak
    Restore(restore::RestoreArgs),
    /// Print a hardened systemd unit for this binary
    SystemdUnit(systemd::SystemdArgs),
    /// Write the standard synthetic workload into the database (for trying out and benchmarks)
    Demo(usage::DemoArgs),
    /// Import usage from files: Claude Code transcripts, or events as JSONL or CSV
    Import(import::ImportArgs),
    /// Print usage per bucket (and group) as a table or JSON
    Report(usage::ReportArgs),
    /// Show or change the price table (re-prices the events a change applies to)
    #[command(subcommand)]
    Price(price::PriceCommand),
    /// Manage API tokens (for the event API, OTLP exporters, LiteLLM, remote import)
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// List the identities producers send, and link them to people
    #[command(subcommand)]
    Identity(identity::IdentityCommand),
    /// Manage teams and their members (usage is grouped by the team its user was in then)
    #[command(subcommand)]
    Team(team::TeamCommand),
    /// Manage budgets: money or tokens per day, week or month, with alerts
    #[command(subcommand)]
    Budget(budget::BudgetCommand),
    /// Manage alert channels: webhooks (JSON, Slack, Discord, Mattermost, Teams, ntfy) and
    /// email addresses
    #[command(subcommand)]
    Channel(channel::ChannelCommand),
    /// Check the database: recompute every rollup from the raw events, look for values out of range and walk the audit chain
    Verify(usage::VerifyArgs),
    /// Print the version, the schema version, the SQLite version, the git commit and the target
    Version,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080]
    #[arg(long, env = "TOKENTALLY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Start on a fresh demo database (DATA_DIR/demo.db) with demo users and a year of usage
    #[arg(long, env = "TOKENTALLY_DEMO")]
    pub demo: bool,
    /// The URL users reach this server at (e.g. https://tokens.example.com), used in the
    /// setup link; an https URL also marks session cookies Secure
    #[arg(long, env = "TOKENTALLY_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Count Claude Code's OTLP usage from its token metrics or from its
    /// claude_code.api_request log events (they describe the same requests) [default: metrics]
    #[arg(long, env = "TOKENTALLY_CLAUDE_CODE_OTEL", value_enum)]
    pub claude_code_otel: Option<crate::ingest::otlp::ClaudeCodeSignal>,
    /// Mark session cookies Secure although public_url is not https (TLS ends at a proxy
    /// that forwards plain HTTP under another name)
    #[arg(long, env = "TOKENTALLY_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// The instance's IANA time zone, for users who have not chosen one [default: UTC]
    #[arg(long, env = "TOKENTALLY_TIME_ZONE", value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// Delete audit entries older than this many days (the purge is itself audited and
    /// keeps the chain verifiable); 0 keeps everything [default: 0]
    #[arg(long, env = "TOKENTALLY_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
    /// End a session after this many hours without a request [default: 12]
    #[arg(long, env = "TOKENTALLY_SESSION_IDLE_HOURS", value_name = "HOURS")]
    pub session_idle_hours: Option<u32>,
    /// End a session this many days after sign-in, however active [default: 7]
    #[arg(long, env = "TOKENTALLY_SESSION_MAX_DAYS", value_name = "DAYS")]
    pub session_max_days: Option<u32>,
    /// argon2id memory per password hash, KiB [default: 19456, OWASP's recommendation]
    #[arg(long, env = "TOKENTALLY_PASSWORD_HASH_MEMORY_KIB", value_name = "KIB")]
    pub password_hash_memory_kib: Option<u32>,
    /// Ingest requests one API token may make per second (bursts of twice that);
    /// 0 for no limit [default: 50]
    #[arg(long, env = "TOKENTALLY_INGEST_RATE_PER_TOKEN", value_name = "N")]
    pub ingest_rate_per_token: Option<u32>,
    /// New names (models, activities, projects, providers, sources) one API
    /// token may create per UTC day; 0 for no limit [default: 500]
    #[arg(
        long,
        env = "TOKENTALLY_MAX_NEW_NAMES_PER_TOKEN_PER_DAY",
        value_name = "N"
    )]
    pub max_new_names_per_token_per_day: Option<u32>,
    /// New names all tokens together may create per UTC day; 0 for no
    /// limit [default: 5000]
    #[arg(long, env = "TOKENTALLY_MAX_NEW_NAMES_PER_DAY", value_name = "N")]
    pub max_new_names_per_day: Option<u32>,
    /// MiB that ingest request bodies and their decompression may take at once (at least
    /// 80: one maximal body and its maximal decompression); a request that cannot get its
    /// share within 5 s is answered 503 with Retry-After; 0 for no bound [default: 128]
    #[arg(long, env = "TOKENTALLY_INGEST_MEMORY_MIB", value_name = "MIB")]
    pub ingest_memory_mib: Option<usize>,
    /// Also serve GET /metrics, without authentication, on this address (e.g.
    /// 127.0.0.1:9464); on the main address /metrics needs an admin
    #[arg(long, env = "TOKENTALLY_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); SIGHUP reloads both
    #[arg(
        long,
        env = "TOKENTALLY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(
        long,
        env = "TOKENTALLY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open [default: 30]
    #[arg(long, env = "TOKENTALLY_HEADER_TIMEOUT", value_name = "SECONDS")]
    pub header_timeout: Option<u64>,
    /// Most connections served at once; more wait [default: 1024]
    #[arg(long, env = "TOKENTALLY_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most connections one client address (IPv6: its /64) may hold; more from it are
    /// closed at once. Trusted proxies are exempt; 0 for no cap [default: 64]
    #[arg(long, env = "TOKENTALLY_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Reverse proxies (IP addresses, comma-separated) whose X-Forwarded-For names the
    /// client; no other request's header is believed
    #[arg(
        long,
        env = "TOKENTALLY_TRUSTED_PROXIES",
        value_name = "IPS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// argon2id passes per password hash [default: 2]
    #[arg(long, env = "TOKENTALLY_PASSWORD_HASH_PASSES", value_name = "N")]
    pub password_hash_passes: Option<u32>,
    #[command(flatten)]
    pub unit: unit::UnitArgs,
    #[command(flatten)]
    pub smtp: channel::SmtpArgs,
    /// Milliseconds before the first retry of a failed alert delivery (doubled each time,
    /// at most an hour) [default: 5000]; for tests
    #[arg(
        long,
        env = "TOKENTALLY_ALERT_RETRY_MS",
        value_name = "MS",
        hide = true
    )]
    pub alert_retry_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy; must not exist yet
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    User(#[from] user::UserCommandError),
    #[error(transparent)]
    UsageStore(#[from] usage::UsageCommandError),
    #[error(transparent)]
    Token(#[from] token::TokenCommandError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityCommandError),
    #[error(transparent)]
    Team(#[from] team::TeamCommandError),
    #[error(transparent)]
    Budget(#[from] budget::BudgetCommandError),
    #[error(transparent)]
    Import(#[from] import::ImportCommandError),
    #[error(transparent)]
    Channel(#[from] channel::ChannelCommandError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs a parsed command line; the process exit code comes from here.
pub fn run(cli: Cli) -> ExitCode {
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokentally: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<(), CliError> {
    let file = FileConfig::load(cli.global.config.as_deref())?;
    let is_serve = matches!(cli.command, Command::Serve(_));
    let log_format = cli
        .global
        .log_format
        .or(file.log_format)
        .unwrap_or(LogFormat::Pretty);
    let log_level = cli
        .global
        .log_level
        .clone()
        .or_else(|| file.log_level.clone())
        .unwrap_or_else(|| if is_serve { "info" } else { "warn" }.to_owned());
    init_logging(log_format, &log_level);
    let data_dir = config::data_dir(&cli.global, &file);
    let checkpoints_head = !matches!(cli.command, Command::Serve(_) | Command::Verify(_));
    let outcome = run_command(cli.command, data_dir.clone(), &file);
    // Whatever a command appended to the audit trail is checkpointed
    // outside the database (audit::head); the server does its own, and
    // `verify` must judge the file as it found it.
    if checkpoints_head {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        if let Err(e) = crate::audit::head::checkpoint_file(&data_dir.join(DB_FILE), now_ms) {
            tracing::warn!(error = %e, "could not checkpoint the audit chain's head");
        }
    }
    outcome
}

fn run_command(
    command: Command,
    data_dir: std::path::PathBuf,
    file: &FileConfig,
) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => {
            let unit = config::unit(&args.unit, file).map_err(CliError::Usage)?;
            let smtp = args
                .smtp
                .resolve(file.smtp_url.as_deref(), file.smtp_from.as_deref())
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let mut settings = config::serve_settings(args, data_dir, file, unit);
            settings.smtp = smtp;
            runtime()?.block_on(server::run(settings))?;
            Ok(())
        }
        Command::User(command) => {
            runtime()?.block_on(user::run(command, &data_dir.join(DB_FILE)))?;
            Ok(())
        }
        Command::Backup(args) => backup(&data_dir.join(DB_FILE), &args.file),
        Command::Restore(args) => restore::run(args, &data_dir),
        Command::Demo(args) => Ok(runtime()?.block_on(usage::demo(args, &data_dir.join(DB_FILE)))?),
        Command::Report(args) => {
            let unit = config::unit(&args.unit, file).map_err(CliError::Usage)?;
            Ok(runtime()?.block_on(usage::report(args, &data_dir.join(DB_FILE), unit))?)
        }
        Command::Price(command) => {
            Ok(runtime()?.block_on(price::run(command, &data_dir.join(DB_FILE)))?)
        }
        Command::Import(args) => {
            Ok(runtime()?.block_on(import::run(args, &data_dir.join(DB_FILE)))?)
        }
        Command::Token(command) => {
            Ok(runtime()?.block_on(token::run(command, &data_dir.join(DB_FILE)))?)
        }
        Command::Identity(command) => {
            let public_url = file.public_url.clone();
            // Only the list shows money.
            let unit = match &command {
                identity::IdentityCommand::List { unit, .. } => {
                    config::unit(unit, file).map_err(CliError::Usage)?
                }
                _ => crate::model::Unit::default(),
            };
            let db_path = data_dir.join(DB_FILE);
            Ok(runtime()?.block_on(identity::run(command, &db_path, public_url, unit))?)
        }
        Command::Team(command) => {
            Ok(runtime()?.block_on(team::run(command, &data_dir.join(DB_FILE)))?)
        }
        Command::Budget(command) => {
            let unit = match &command {
                budget::BudgetCommand::List { unit, .. } => {
                    config::unit(unit, file).map_err(CliError::Usage)?
                }
                _ => crate::model::Unit::default(),
            };
            let instance = budget::Instance {
                unit,
                time_zone: file.time_zone.clone(),
            };
            let db_path = data_dir.join(DB_FILE);
            Ok(runtime()?.block_on(budget::run(command, &db_path, instance))?)
        }
        Command::Channel(command) => {
            let instance = channel::Instance {
                public_url: file.public_url.clone(),
                unit: config::unit(&unit::UnitArgs::default(), file).map_err(CliError::Usage)?,
                smtp_url: file.smtp_url.clone(),
                smtp_from: file.smtp_from.clone(),
            };
            let db_path = data_dir.join(DB_FILE);
            Ok(runtime()?.block_on(channel::run(command, &db_path, instance))?)
        }
        Command::Verify(args) => {
            Ok(runtime()?.block_on(usage::verify(&data_dir.join(DB_FILE), args))?)
        }
        Command::SystemdUnit(args) => {
            print!("{}", systemd::unit(&args));
            Ok(())
        }
        Command::Version => {
            println!("tokentally {}", crate::build_info::VERSION);
            println!("schema version {}", db::latest_schema_version());
            println!("SQLite {}", rusqlite::version());
            println!("commit {}", crate::build_info::COMMIT);
            println!("target {}", crate::build_info::TARGET);
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn backup(source: &std::path::Path, target: &std::path::Path) -> Result<(), CliError> {
    if !source.exists() {
        return Err(CliError::Usage(format!(
            "no database at {} (set --data-dir)",
            source.display()
        )));
    }
    if target.exists() {
        return Err(CliError::Usage(format!(
            "{} exists already; choose a new file name",
            target.display()
        )));
    }
    db::backup(source, target)?;
    let bytes = std::fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    println!("backup written to {} ({bytes} bytes)", target.display());
    // The copy's audit chain is keyed: without its key nothing can verify
    // it, so the key travels beside it (owner-readable only).
    if let Some(key) = crate::audit::key::load(source)? {
        let key_copy = std::path::PathBuf::from(format!("{}.audit-key", target.display()));
        crate::audit::key::write_key(&key_copy, &key)?;
        println!(
            "its audit key written to {} (restore it as audit.key)",
            key_copy.display()
        );
    }
    Ok(())
}
