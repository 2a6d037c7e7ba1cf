//! `tokentally demo`, `report` and `verify`: the usage store from the shell.

use std::path::Path;
use std::time::Instant;

use clap::{Args, ValueEnum};
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::audit;
use crate::db::{Db, DbError, DbOptions};
use crate::demo::{self, Generator, Workload};
use crate::model::Scope;
use crate::usage;
use crate::usage::buckets::BucketSize;
use crate::usage::query::{self, Filters, GroupBy, QueryError, Rank, SeriesQuery};
use crate::usage::report::Report;
use crate::usage::rollup::{self, Dim};
use crate::usage::store::Inserter;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of events to generate
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Seed: the same seed (and --end) gives the same events
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of users (user-001, user-002, …; created when missing)
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Days of usage, ending at --end
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// When the usage ends (RFC 3339); default: now
    #[arg(long)]
    pub end: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BucketArg {
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GroupArg {
    Model,
    Activity,
    User,
    Project,
    Source,
    /// The team each event's user was in when it happened
    Team,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WeekStartArg {
    Monday,
    Sunday,
    Saturday,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Bucket size
    #[arg(long, value_enum, default_value = "day")]
    pub bucket: BucketArg,
    /// First day (YYYY-MM-DD, local to --tz) or instant (RFC 3339); default: 30 days ago
    #[arg(long)]
    pub from: Option<String>,
    /// End, exclusive (YYYY-MM-DD, local to --tz) or instant (RFC 3339); default: tomorrow
    #[arg(long)]
    pub to: Option<String>,
    /// IANA time zone of the buckets; default: this machine's zone
    #[arg(long, env = "TOKENTALLY_TZ")]
    pub tz: Option<String>,
    /// First day of a week bucket
    #[arg(long, value_enum, default_value = "monday")]
    pub week_start: WeekStartArg,
    /// Split each bucket by this dimension
    #[arg(long, value_enum)]
    pub group_by: Option<GroupArg>,
    /// Only these users (repeatable)
    #[arg(long)]
    pub user: Vec<String>,
    /// Only these models (repeatable)
    #[arg(long)]
    pub model: Vec<String>,
    /// Only these activities (repeatable)
    #[arg(long)]
    pub activity: Vec<String>,
    /// Only these projects (repeatable)
    #[arg(long)]
    pub project: Vec<String>,
    /// Only these sources (repeatable)
    #[arg(long)]
    pub source: Vec<String>,
    /// With --group-by: the most groups shown, largest cost first; the
    /// rest are summed as one "other" (1 to 1000)
    #[arg(long, default_value_t = query::DEFAULT_GROUPS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=query::MAX_GROUPS as u64))]
    pub limit: usize,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub unit: super::unit::UnitArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageCommandError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Mismatch(String),
}

/// Opens the database as a start does: migrated, and with the embedded
/// price catalogue loaded if it is newer (`usage::price_sync::prepare`).
pub(super) async fn open(db_path: &Path) -> Result<Db, UsageCommandError> {
    open_as(db_path, crate::usage::price_sync::prepare).await
}

async fn open_as(
    db_path: &Path,
    prepare: fn(&rusqlite::Connection) -> Result<(), DbError>,
) -> Result<Db, UsageCommandError> {
    let path = db_path.to_path_buf();
    tokio::task::spawn_blocking(move || Db::open_with(&path, &DbOptions::default(), &prepare))
        .await
        .map_err(|e| UsageCommandError::Invalid(e.to_string()))?
        .map_err(UsageCommandError::from)
}

/// Events written per transaction by `tokentally demo`.
const EVENTS_PER_TRANSACTION: usize = 200_000;

/// `tokentally demo`: writes the standard workload and reports the load
/// rate.
pub async fn demo(args: DemoArgs, db_path: &Path) -> Result<(), UsageCommandError> {
    let db = open(db_path).await?;
    let now = jiff::Timestamp::now();
    let user_count = args.users.max(1);
    let users = db
        .write(move |conn| demo::ensure_users(conn, user_count, now.as_second()))
        .await?;
    let workload = Workload {
        events: args.events,
        seed: args.seed,
        end: args.end.unwrap_or(now),
        days: args.days,
    };
    let started = Instant::now();
    let mut generator = Generator::new(users, &workload);
    let (mut accepted, mut duplicates) = (0, 0);
    let mut done = false;
    while !done {
        // Several days per transaction: each rollup series' latest page is
        // then written once per transaction instead of once per day.
        let mut batch = Vec::new();
        while batch.len() < EVENTS_PER_TRANSACTION {
            match generator.next_day() {
                Some(day) => batch.extend(day),
                None => {
                    done = true;
                    break;
                }
            }
        }
        // Folded in the same transaction: a chunk of several days shares
        // its rollup rows.
        let outcome = db
            .write(move |conn| {
                let outcome = Inserter::new(conn)?.insert(conn, &batch)?;
                rollup::roll_all(conn)?;
                Ok::<_, DbError>(outcome)
            })
            .await?;
        accepted += outcome.accepted;
        duplicates += outcome.duplicates;
    }
    db.shutdown().await;
    let seconds = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(db_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {accepted} events ({duplicates} already there) in {seconds:.1} s: {:.0} events/s; \
         database {:.1} MB",
        accepted as f64 / seconds.max(1e-9),
        size as f64 / 1e6
    );
    Ok(())
}

pub(super) fn parse_zone(name: Option<&str>) -> Result<TimeZone, UsageCommandError> {
    match name {
        Some(name) => TimeZone::get(name)
            .map_err(|_| UsageCommandError::Invalid(format!("--tz: unknown time zone {name:?}"))),
        None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
    }
}

/// A date (local midnight in `tz`) or an RFC 3339 instant.
pub(super) fn parse_bound(
    flag: &'static str,
    value: &str,
    tz: &TimeZone,
) -> Result<Timestamp, UsageCommandError> {
    crate::usage::params::bound(flag, value, tz)
        .map_err(|e| UsageCommandError::Invalid(e.to_string()))
}

fn series_query(args: &ReportArgs) -> Result<SeriesQuery, UsageCommandError> {
    let zone = parse_zone(args.tz.as_deref())?;
    let today = Zoned::now().with_time_zone(zone.clone()).date();
    let default_from = today.saturating_sub(jiff::Span::new().days(30)).to_string();
    let default_to = today.tomorrow().unwrap_or(today).to_string();
    let from = parse_bound(
        "--from",
        args.from.as_deref().unwrap_or(&default_from),
        &zone,
    )?;
    let to = parse_bound("--to", args.to.as_deref().unwrap_or(&default_to), &zone)?;
    let week_start = match args.week_start {
        WeekStartArg::Monday => Weekday::Monday,
        WeekStartArg::Sunday => Weekday::Sunday,
        WeekStartArg::Saturday => Weekday::Saturday,
    };
    let bucket = match args.bucket {
        BucketArg::Hour => BucketSize::Hour,
        BucketArg::Day => BucketSize::Day,
        BucketArg::Week => BucketSize::Week { start: week_start },
        BucketArg::Month => BucketSize::Month,
    };
    let group_by = args.group_by.map(|g| match g {
        GroupArg::Model => GroupBy::Dim(Dim::Model),
        GroupArg::Activity => GroupBy::Dim(Dim::Activity),
        GroupArg::User => GroupBy::Dim(Dim::User),
        GroupArg::Project => GroupBy::Dim(Dim::Project),
        GroupArg::Source => GroupBy::Dim(Dim::Source),
        GroupArg::Team => GroupBy::Team,
    });
    Ok(SeriesQuery {
        from,
        to,
        zone,
        bucket,
        group_by,
        filters: Filters {
            users: args.user.clone(),
            models: args.model.clone(),
            activities: args.activity.clone(),
            projects: args.project.clone(),
            sources: args.source.clone(),
            ..Filters::default()
        },
    })
}

/// `tokentally report`: the same query layer as the dashboard, money in
/// `unit` beside the stored USD.
pub async fn report(
    args: ReportArgs,
    db_path: &Path,
    unit: crate::model::Unit,
) -> Result<(), UsageCommandError> {
    let query = series_query(&args)?;
    let limit = args.limit;
    let db = open(db_path).await?;
    // The shell user owns the database file: they see everyone.
    let series = db
        .read(move |conn| query::series_top(conn, Scope::Everyone, &query, limit, Rank::Cost))
        .await;
    db.shutdown().await;
    let report = Report::from_series(&series?, &unit);
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| UsageCommandError::Invalid(e.to_string()))?;
        println!("{json}");
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Remove events above the per-event maximums (written first to
    /// removed-events-TIME.jsonl beside the database, in the import format)
    /// and rebuild every rollup from the raw events
    #[arg(long)]
    pub repair: bool,
}

/// `tokentally verify`: recomputes every rollup from the raw events, looks
/// for values out of range (a database written before the per-event
/// limits) and walks the audit chain; reports the first difference or
/// broken link. `--repair` first removes what is out of range and rebuilds
/// the rollups.
pub async fn verify(db_path: &Path, args: VerifyArgs) -> Result<(), UsageCommandError> {
    // Judges the file as it is: no catalogue is loaded (and nothing
    // re-priced) before the check.
    let db = open_as(db_path, |_| Ok(())).await?;
    if args.repair {
        let dir = db_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .to_path_buf();
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let repaired = db
            .write(move |conn| usage::repair::repair(conn, &dir, now_ms))
            .await;
        match repaired {
            Ok(repaired) => match &repaired.removed_to {
                Some(path) => println!(
                    "repaired: removed {} event(s) above the per-event maximums (saved to {}; \
                     correct and import them again if they are real) and rebuilt the rollups",
                    repaired.removed_events,
                    path.display()
                ),
                None => println!("repaired: rebuilt the rollups from the raw events"),
            },
            Err(e) => {
                db.shutdown().await;
                return Err(e.into());
            }
        }
    }
    let head_path = db_path.to_path_buf();
    // Two read connections of its own, outside any transaction (the
    // pool's reads run in one already), so that the check runs on two
    // cores reading one snapshot; the audit checks then read that snapshot
    // too.
    let outcome = tokio::task::spawn_blocking(move || {
        let open = || {
            let conn = crate::db::open_read_connection(&head_path, None)?;
            // The pages read through a mapping of the file rather than
            // copied into SQLite's cache (the check reads all of it).
            conn.pragma_update(None, "mmap_size", 1_i64 << 40)?;
            Ok::<_, DbError>(conn)
        };
        let (conn, second) = (open()?, open()?);
        let (checked, (findings, chain, head)) =
            rollup::check_then(&conn, Some(second), |conn, checked| {
                let head = match audit::key::load(&head_path)? {
                    Some(key) => audit::head::check(conn, &head_path, &key)?,
                    None => Some("the audit key is missing".to_owned()),
                };
                let findings = usage::repair::findings_of(conn, checked)?;
                let chain = audit::chain::verify(conn)?;
                Ok((findings, chain, head))
            })?;
        // Sums over events above the limits are not the rollups' to
        // match: only compare when nothing is out of range.
        let mismatch = match findings.is_clean() {
            true => checked.mismatch,
            false => None,
        };
        Ok::<_, DbError>((checked.events, findings, mismatch, chain, head))
    })
    .await
    .unwrap_or(Err(DbError::TaskPanicked));
    db.shutdown().await;
    let (events, findings, mismatch, chain, head) = outcome?;
    let mut problems = Vec::new();
    if !findings.is_clean() {
        problems.push(format!(
            "values out of range (written before the per-event limits): {} event(s) above a \
             per-event maximum{}, {} rollup cell(s) out of range; run `tokentally verify \
             --repair` to remove those events (they are saved to a file first) and rebuild the \
             rollups",
            findings.events_over_limits,
            match findings.examples.is_empty() {
                true => String::new(),
                false => format!(" (e.g. {})", findings.examples.join(", ")),
            },
            findings.cells_out_of_range
        ));
    }
    match mismatch {
        None if findings.is_clean() => {
            println!("ok: the rollups agree with all {events} raw events")
        }
        None => {}
        Some(mismatch) => problems.push(format!(
            "the rollups differ from the raw events; first difference: {mismatch}"
        )),
    }
    match (chain.broken, head) {
        (None, None) => println!(
            "ok: the audit chain of {} entries is intact and holds its last checkpointed head",
            chain.entries
        ),
        (Some(broken), _) => problems.push(format!("the audit chain is broken at {broken}")),
        (None, Some(head)) => problems.push(format!("the audit chain was cut short: {head}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(UsageCommandError::Mismatch(problems.join("; ")))
    }
}
