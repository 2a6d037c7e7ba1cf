//! The optional TOML config file, and the merge of defaults < file < env <
//! flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::unit::{RateValue, UnitArgs, UnitKeys, UnitKindArg};
use super::{GlobalArgs, ServeArgs};
use crate::auth::{HashCost, SessionPolicy};
use crate::ingest::otlp::ClaudeCodeSignal;
use crate::model::Unit;
use crate::observe::LogFormat;
use crate::server::ServeSettings;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./tokentally-data";
/// Ingest requests per token and second: far above what an exporter or a
/// proxy sends, low enough that a runaway script cannot starve the writer.
pub const DEFAULT_INGEST_RATE: u32 = 50;

/// The config file's keys: the same names as the long flags, with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub public_url: Option<String>,
    pub demo: Option<bool>,
    pub claude_code_otel: Option<ClaudeCodeSignal>,
    pub secure_cookies: Option<bool>,
    pub time_zone: Option<String>,
    pub audit_retention_days: Option<u32>,
    pub session_idle_hours: Option<u32>,
    pub session_max_days: Option<u32>,
    pub password_hash_memory_kib: Option<u32>,
    pub password_hash_passes: Option<u32>,
    pub ingest_rate_per_token: Option<u32>,
    pub max_new_names_per_token_per_day: Option<u32>,
    pub max_new_names_per_day: Option<u32>,
    // Unusual usage (`budgets::unusual`): 0 switches the rule (factor) or
    // a measure (floor) off.
    pub unusual_factor: Option<f64>,
    pub unusual_floor_tokens: Option<i64>,
    /// USD in the hour.
    pub unusual_floor_cost: Option<f64>,
    pub unusual_channels: Option<Vec<String>>,
    pub ingest_memory_mib: Option<usize>,
    pub metrics_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub header_timeout: Option<u64>,
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,
    // The unit money is shown in (`cli::unit`).
    pub unit: Option<UnitKindArg>,
    pub currency: Option<String>,
    pub currency_symbol: Option<String>,
    pub usd_rate: Option<RateValue>,
    pub credits_per_usd: Option<RateValue>,
    pub credits_name: Option<String>,
    pub credits_symbol: Option<String>,
    // Alert emails (`alerts::email`).
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
}

impl FileConfig {
    /// Reads `path`, or gives the empty config when no file is named.
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text; the error names the line and the key.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }
}

impl FileConfig {
    /// The keys of the unit money is shown in.
    pub fn unit_keys(&self) -> UnitKeys {
        UnitKeys {
            unit: self.unit,
            currency: self.currency.clone(),
            currency_symbol: self.currency_symbol.clone(),
            usd_rate: self.usd_rate.clone(),
            credits_per_usd: self.credits_per_usd.clone(),
            credits_name: self.credits_name.clone(),
            credits_symbol: self.credits_symbol.clone(),
        }
    }
}

/// The unit money is shown in: `args` (flags and their variables) over
/// the file's keys, checked; the error names the setting.
pub(super) fn unit(args: &UnitArgs, file: &FileConfig) -> Result<Unit, String> {
    super::unit::resolve(args, &file.unit_keys())
}

pub(super) fn data_dir(global: &GlobalArgs, file: &FileConfig) -> PathBuf {
    global
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

pub(super) fn serve_settings(
    args: ServeArgs,
    data_dir: PathBuf,
    file: &FileConfig,
    unit: Unit,
) -> ServeSettings {
    let default_listen: SocketAddr = DEFAULT_LISTEN.parse().expect("the default address parses");
    ServeSettings {
        listen: args.listen.or(file.listen).unwrap_or(default_listen),
        data_dir,
        // A flag can only switch the demo on; the file may too.
        demo: args.demo || file.demo.unwrap_or(false),
        public_url: args.public_url.clone().or_else(|| file.public_url.clone()),
        claude_code_otel: args
            .claude_code_otel
            .or(file.claude_code_otel)
            .unwrap_or_default(),
        secure_cookies: args.secure_cookies || file.secure_cookies.unwrap_or(false),
        time_zone: args.time_zone.clone().or_else(|| file.time_zone.clone()),
        audit_retention_days: args
            .audit_retention_days
            .or(file.audit_retention_days)
            .filter(|days| *days > 0),
        sessions: session_policy(&args, file),
        hash_cost: hash_cost(&args, file),
        ingest_rate_per_token: args
            .ingest_rate_per_token
            .or(file.ingest_rate_per_token)
            .unwrap_or(DEFAULT_INGEST_RATE),
        name_limits: name_limits(&args, file),
        unusual: unusual_rule(file),
        ingest_memory_mib: args
            .ingest_memory_mib
            .or(file.ingest_memory_mib)
            .unwrap_or(crate::ingest::body::DEFAULT_BUDGET_MIB),
        metrics_listen: args.metrics_listen.or(file.metrics_listen),
        tls: args
            .tls_cert
            .clone()
            .zip(args.tls_key.clone())
            .or_else(|| file.tls_cert.clone().zip(file.tls_key.clone())),
        limits: crate::server::listen::Limits {
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(crate::server::listen::Limits::default().max_connections),
            max_connections_per_address: args
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .unwrap_or(crate::server::listen::Limits::default().max_connections_per_address),
            header_timeout: args.header_timeout.or(file.header_timeout).map_or(
                crate::server::listen::Limits::default().header_timeout,
                |s| std::time::Duration::from_secs(s.max(1)),
            ),
            ..Default::default()
        },
        trusted_proxies: if args.trusted_proxies.is_empty() {
            file.trusted_proxies.clone().unwrap_or_default()
        } else {
            args.trusted_proxies.clone()
        },
        unit,
        // Read (and checked) by the caller: it can fail.
        smtp: None,
        alert_retry_ms: args.alert_retry_ms,
    }
}

fn session_policy(args: &ServeArgs, file: &FileConfig) -> SessionPolicy {
    let default = SessionPolicy::default();
    SessionPolicy {
        idle_s: args
            .session_idle_hours
            .or(file.session_idle_hours)
            .map_or(default.idle_s, |h| i64::from(h.max(1)) * 3600),
        absolute_s: args
            .session_max_days
            .or(file.session_max_days)
            .map_or(default.absolute_s, |d| i64::from(d.max(1)) * 86_400),
    }
}

fn hash_cost(args: &ServeArgs, file: &FileConfig) -> HashCost {
    let default = HashCost::default();
    HashCost {
        memory_kib: args
            .password_hash_memory_kib
            .or(file.password_hash_memory_kib)
            .unwrap_or(default.memory_kib),
        passes: args
            .password_hash_passes
            .or(file.password_hash_passes)
            .unwrap_or(default.passes),
        lanes: default.lanes,
    }
}

/// The unusual-usage rule: the file, else the defaults. Negative or
/// non-finite numbers count as 0 (off).
pub fn unusual_rule(file: &FileConfig) -> crate::budgets::UnusualRule {
    let default = crate::budgets::UnusualRule::default();
    let usd_to_micros = |usd: f64| {
        let micros = (usd * 1_000_000.0).round();
        if micros.is_finite() && micros > 0.0 {
            micros.min(i64::MAX as f64) as i64
        } else {
            0
        }
    };
    crate::budgets::UnusualRule {
        factor: file.unusual_factor.map_or(default.factor, |f| {
            if f.is_finite() { f.max(0.0) } else { 0.0 }
        }),
        floor_tokens: file
            .unusual_floor_tokens
            .map_or(default.floor_tokens, |t| t.max(0)),
        floor_cost_micros: file
            .unusual_floor_cost
            .map_or(default.floor_cost_micros, usd_to_micros),
        channels: file.unusual_channels.clone().unwrap_or_default(),
    }
}

/// The budget of new names: flag, else file, else the default.
fn name_limits(args: &ServeArgs, file: &FileConfig) -> crate::usage::budget::NameLimits {
    let default = crate::usage::budget::NameLimits::default();
    crate::usage::budget::NameLimits {
        per_token_per_day: args
            .max_new_names_per_token_per_day
            .or(file.max_new_names_per_token_per_day)
            .unwrap_or(default.per_token_per_day),
        per_instance_per_day: args
            .max_new_names_per_day
            .or(file.max_new_names_per_day)
            .unwrap_or(default.per_instance_per_day),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let config = FileConfig::parse(
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/tokentally\"\nlog_format = \"json\"\n\
             log_level = \"debug\"\npublic_url = \"https://t.example\"\ndemo = false\n\
             claude_code_otel = \"logs\"\n",
        )
        .expect("valid config");
        assert_eq!(config.listen, Some("0.0.0.0:9000".parse().expect("addr")));
        assert_eq!(config.log_format, Some(LogFormat::Json));
        assert_eq!(config.data_dir, Some(PathBuf::from("/var/lib/tokentally")));
        assert_eq!(config.claude_code_otel, Some(ClaudeCodeSignal::Logs));
    }

    #[test]
    fn the_unusual_usage_knobs_come_from_the_file() {
        let rule = unusual_rule(&file(
            "unusual_factor = 8.5\nunusual_floor_tokens = 3000000\nunusual_floor_cost = 2.5\n\
             unusual_channels = [\"ops\"]\n",
        ));
        assert_eq!(rule.factor, 8.5);
        assert_eq!(rule.floor_tokens, 3_000_000);
        assert_eq!(rule.floor_cost_micros, 2_500_000);
        assert_eq!(rule.channels, vec!["ops".to_owned()]);
        assert_eq!(
            unusual_rule(&file("")),
            crate::budgets::UnusualRule::default()
        );
        let off = unusual_rule(&file("unusual_factor = 0\nunusual_floor_cost = -1\n"));
        assert!(!off.is_on());
        assert_eq!(off.floor_cost_micros, 0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let unknown = FileConfig::parse("listne = \"x\"").expect_err("typo must fail");
        assert!(unknown.contains("listne"), "{unknown}");
        let bad = FileConfig::parse("\n\nlisten = \"not an address\"").expect_err("bad address");
        assert!(bad.contains("line 3"), "{bad}");
    }

    fn file(text: &str) -> FileConfig {
        FileConfig::parse(text).expect("config")
    }

    #[test]
    fn the_file_sets_the_unit_and_flags_win() {
        let eur = unit(
            &UnitArgs::default(),
            &file("currency = \"EUR\"\nusd_rate = \"0.92\"\n"),
        )
        .expect("EUR");
        assert_eq!(eur.money(1_000_000), "€0.92");
        let flags = UnitArgs {
            usd_rate: Some("0.5".into()),
            currency_symbol: Some("EUR".into()),
            ..UnitArgs::default()
        };
        let flagged =
            unit(&flags, &file("currency = \"EUR\"\nusd_rate = \"0.92\"\n")).expect("flags win");
        assert_eq!(flagged.money(1_000_000), "EUR 0.50");
        let credits = unit(
            &UnitArgs::default(),
            &file("unit = \"credits\"\ncredits_per_usd = 100\ncredits_symbol = \"cr\"\n"),
        )
        .expect("credits");
        assert_eq!(credits.money(1_000_000), "100.00 cr");
        assert_eq!(
            unit(&UnitArgs::default(), &FileConfig::default()).expect("default"),
            Unit::default()
        );
    }

    #[test]
    fn bad_settings_are_refused_naming_them() {
        for (text, named) in [
            (
                "currency = \"eur\"\nusd_rate = \"1\"",
                "invalid setting currency (",
            ),
            ("currency = \"EUR\"", "invalid setting usd_rate ("),
            ("currency = \"EUR\"\nusd_rate = 0.92", "usd_rate = \"0.92\""),
            (
                "currency = \"EUR\"\nusd_rate = \"-1\"",
                "invalid setting usd_rate (",
            ),
            ("unit = \"credits\"", "invalid setting credits_per_usd ("),
            (
                "unit = \"credits\"\ncredits_per_usd = \"0\"",
                "greater than 0",
            ),
            (
                "unit = \"credits\"\ncredits_per_usd = \"10\"\nusd_rate = \"2\"",
                "invalid setting usd_rate (",
            ),
            (
                "credits_per_usd = \"10\"",
                "invalid setting credits_per_usd (",
            ),
            (
                "currency = \"EUR\"\nusd_rate = \"1\"\ncurrency_symbol = \"€€€€€€€€€\"",
                "invalid setting currency_symbol (--currency-symbol / \
                 TOKENTALLY_CURRENCY_SYMBOL",
            ),
        ] {
            let error = unit(&UnitArgs::default(), &file(text)).expect_err(text);
            assert!(error.contains(named), "{text:?}: {error}");
        }
        let unknown = FileConfig::parse("unit = \"euros\"").expect_err("unknown unit");
        assert!(unknown.contains("unit"), "{unknown}");
    }
}
