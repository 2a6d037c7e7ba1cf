//! Per-day cost beside ccusage (issue 15): generated Claude Code
//! transcripts using ten current Claude models, imported with a release
//! tokentally (`report --json --bucket day --tz UTC`) and read by
//! `ccusage daily --json --offline --timezone UTC`, the per-day costs
//! compared. Three workloads, each its own directory and database:
//!
//! - `same-rules`: 5-minute cache writes only, every prompt ≤ 200k tokens —
//!   what both tools price by the same rule; expected within 0.01 % a day;
//! - `one-hour`: the same with 1-hour cache writes beside 5-minute ones;
//! - `long-context`: 1-hour writes and requests whose prompt (input + cache
//!   read + cache write) is above 200k tokens — where the tools' tier rules
//!   part (tests/it/claude_models.rs shows which is right).
//!
//! For each: the per-day maximum relative difference and, where days
//! differ, the difference per model over the whole range (from ccusage's
//! `modelBreakdowns` and `report --group-by model`).
//!
//! Usage: `cargo bench --bench ccusage_cost -- BINARY DIR CCUSAGE
//! [MEGABYTES]`: BINARY a release tokentally, DIR where the transcripts
//! are written (kept between runs), CCUSAGE ccusage's native executable,
//! MEGABYTES per workload (default 20).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

mod support;
use support::{folder_bytes, run};

/// Claude Code's ids of ten current models, each priced alike by both
/// tools' catalogues below 200k (the bench checks it: `same-rules`).
const MODELS: [&str; 10] = [
    "claude-opus-4-5-20251101",
    "claude-opus-4-6",
    "claude-opus-4-7",
    "claude-opus-5",
    "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-6",
    "claude-sonnet-5",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-20250514",
    "claude-opus-4-1-20250805",
];

const DAYS: i64 = 14;
/// 2026-10-01T00:00:00Z.
const START: i64 = 1_790_812_800;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    SameRules,
    OneHour,
    LongContext,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::SameRules => "same-rules",
            Workload::OneHour => "one-hour",
            Workload::LongContext => "long-context",
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let usage = "usage: ccusage_cost BINARY DIR CCUSAGE [MEGABYTES]";
    let binary = PathBuf::from(args.next().expect(usage));
    let dir = PathBuf::from(args.next().expect(usage));
    let ccusage = PathBuf::from(args.next().expect(usage));
    let megabytes: u64 = args.next().and_then(|m| m.parse().ok()).unwrap_or(20);
    let version = Command::new(&ccusage)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .expect("ccusage runs");
    println!("{version}; {} models, {DAYS} days (UTC)\n", MODELS.len());
    println!(
        "| workload | MB | events | days | ccusage total | tokentally total | max per-day difference |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut details = Vec::new();
    for workload in [
        Workload::SameRules,
        Workload::OneHour,
        Workload::LongContext,
    ] {
        let root = dir.join(format!("{}-{megabytes}", workload.name()));
        let projects = root.join("claude/projects");
        if !projects.exists() {
            generate(&projects, megabytes * 1_000_000, workload);
        }
        let bytes = folder_bytes(&projects);
        let data = tempfile::tempdir().expect("tempdir");
        let data_dir = data.path().to_str().expect("utf-8");
        run(
            &binary,
            &[
                "--data-dir",
                data_dir,
                "user",
                "add",
                "ada",
                "--role",
                "member",
                "--password-stdin",
            ],
            Some("a long enough password\n"),
        );
        run(
            &binary,
            &[
                "--data-dir",
                data_dir,
                "import",
                projects.to_str().expect("utf-8"),
            ],
            None,
        );
        let ours = ours_by_day(&binary, data_dir);
        let theirs = ccusage_by_day(&ccusage, &root);
        let mut max = 0.0f64;
        let mut worst = String::new();
        let mut events = 0;
        let days: Vec<&String> = ours.days.keys().chain(theirs.days.keys()).collect();
        for day in &days {
            let a = ours.days.get(*day).copied().unwrap_or(0.0);
            let b = theirs.days.get(*day).copied().unwrap_or(0.0);
            let relative = (a - b).abs() / b.abs().max(1e-12);
            if relative > max {
                max = relative;
                worst = (*day).clone();
            }
        }
        events += ours.events;
        let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
        println!(
            "| {} | {:.0} | {events} | {} | ${:.2} | ${:.2} | {:.6} % ({worst}) |",
            workload.name(),
            bytes as f64 / 1e6,
            ours.days.len(),
            total(&theirs.days),
            total(&ours.days),
            100.0 * max
        );
        if max > 1e-4 {
            details.push((workload, ours.models, theirs.models));
        }
        if workload == Workload::SameRules {
            assert!(
                max <= 1e-4,
                "same-rules workload: a day differs by {:.6} %",
                100.0 * max
            );
        }
    }
    for (workload, ours, theirs) in details {
        println!(
            "\n{}: the difference per model, all days:\n",
            workload.name()
        );
        println!("| model | ccusage | tokentally | tokentally − ccusage |");
        println!("| --- | ---: | ---: | ---: |");
        for model in MODELS {
            let a = ours.get(model).copied().unwrap_or(0.0);
            let b = theirs.get(model).copied().unwrap_or(0.0);
            println!(
                "| {model} | ${b:.2} | ${a:.2} | {:+.2} % |",
                100.0 * (a - b) / b.max(1e-12)
            );
        }
    }
}

/// Cost per UTC day and per model over all days, in USD, and the events.
struct Costs {
    days: BTreeMap<String, f64>,
    models: BTreeMap<String, f64>,
    events: i64,
}

fn ours_by_day(binary: &Path, data_dir: &str) -> Costs {
    let report = |extra: &[&str]| -> Value {
        let mut args = vec![
            "--data-dir",
            data_dir,
            "report",
            "--json",
            "--bucket",
            "day",
            "--tz",
            "UTC",
            "--from",
            "2026-09-01",
            "--to",
            "2026-11-01",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&run(binary, &args, None)).expect("report json")
    };
    let cost = |row: &Value| {
        row["cost"]
            .as_str()
            .and_then(|c| c.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let by_day = report(&[]);
    let mut days = BTreeMap::new();
    for row in by_day["rows"].as_array().into_iter().flatten() {
        if row["events"].as_i64().unwrap_or(0) > 0 {
            days.insert(row["bucket"].as_str().unwrap_or("").to_owned(), cost(row));
        }
    }
    assert_eq!(
        by_day["totals"]["unpriced_events"].as_i64(),
        Some(0),
        "every model priced"
    );
    let events = by_day["totals"]["events"].as_i64().unwrap_or(0);
    let by_model = report(&["--group-by", "model", "--limit", "100"]);
    let mut models = BTreeMap::new();
    for row in by_model["rows"].as_array().into_iter().flatten() {
        let model = row["group"].as_str().unwrap_or("").to_owned();
        *models.entry(model).or_insert(0.0) += cost(row);
    }
    Costs {
        days,
        models,
        events,
    }
}

fn ccusage_by_day(ccusage: &Path, root: &Path) -> Costs {
    let output = Command::new(ccusage)
        .args([
            "daily",
            "--json",
            "--offline",
            "--timezone",
            "UTC",
            "--breakdown",
        ])
        .env("CLAUDE_CONFIG_DIR", root.join("claude"))
        .output()
        .expect("ccusage");
    assert!(
        output.status.success(),
        "ccusage failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Value = serde_json::from_slice(&output.stdout).expect("ccusage json");
    let mut days = BTreeMap::new();
    let mut models = BTreeMap::new();
    for day in theirs["daily"].as_array().into_iter().flatten() {
        // ccusage 20 names the day `period`; older versions `date`.
        let date = day["period"]
            .as_str()
            .or_else(|| day["date"].as_str())
            .unwrap_or("");
        days.insert(date.to_owned(), day["totalCost"].as_f64().unwrap_or(0.0));
        for model in day["modelBreakdowns"].as_array().into_iter().flatten() {
            let name = model["modelName"].as_str().unwrap_or("").to_owned();
            *models.entry(name).or_insert(0.0) += model["cost"].as_f64().unwrap_or(0.0);
        }
    }
    Costs {
        days,
        models,
        events: 0,
    }
}

/// Sessions in 8 projects over 14 days: user turns and assistant messages
/// of one to three content lines (each repeating the usage, as Claude Code
/// writes them), a model per turn. Prompts grow through a session as its
/// cache does; ≤ 200k tokens unless the workload is `long-context`, where
/// one turn in ten is above 200k (sometimes with cache reads alone above
/// 200k, sometimes input).
fn generate(projects: &Path, target_bytes: u64, workload: Workload) {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut written = 0u64;
    let mut session = 0u64;
    while written < target_bytes {
        session += 1;
        let project = projects.join(format!("-home-ada-src-project-{:02}", session % 8));
        std::fs::create_dir_all(&project).expect("mkdir");
        let path = project.join(format!("{session:08x}-5c1a-4f7e-9a55-0d3c3b2b9e11.jsonl"));
        let mut out = BufWriter::new(File::create(&path).expect("create"));
        let mut t = START + rng.random_range(0..DAYS * 86_400 - 20_000);
        let cwd = format!("/home/ada/src/project-{:02}", session % 8);
        for turn in 0..rng.random_range(10..120) {
            t += rng.random_range(5..120);
            let ts = |t: i64| jiff::Timestamp::from_second(t).expect("ts").to_string();
            let user = json!({"type": "user", "sessionId": session.to_string(), "timestamp": ts(t),
                "cwd": cwd, "message": {"role": "user", "content": "x".repeat(rng.random_range(50..2000))}});
            written += line(&mut out, &user);
            let model = MODELS[rng.random_range(0..MODELS.len())];
            let output = rng.random_range(10..16_000);
            let (input, read, write) =
                if workload == Workload::LongContext && rng.random_range(0..10) == 0 {
                    match rng.random_range(0..3) {
                        // Cache reads alone above 200k.
                        0 => (
                            rng.random_range(1..500),
                            rng.random_range(200_001..400_000),
                            rng.random_range(0..20_000),
                        ),
                        // Input alone above 200k.
                        1 => (
                            rng.random_range(200_001..300_000),
                            rng.random_range(0..50_000),
                            0,
                        ),
                        // Above 200k in all, no kind above it on its own.
                        _ => (
                            rng.random_range(20_000..100_000),
                            rng.random_range(150_000..199_000),
                            rng.random_range(20_000..60_000),
                        ),
                    }
                } else {
                    let input = rng.random_range(1..5_000);
                    let read = rng.random_range(0..170_000);
                    let write = rng.random_range(0..(200_000 - input - read).min(25_000));
                    (input, read, write)
                };
            let one_hour = match workload {
                Workload::SameRules => 0,
                _ => match rng.random_range(0..3) {
                    0 => write,
                    1 => rng.random_range(0..=write),
                    _ => 0,
                },
            };
            let usage = json!({"input_tokens": input, "output_tokens": output,
                "cache_read_input_tokens": read, "cache_creation_input_tokens": write,
                "cache_creation": {"ephemeral_5m_input_tokens": write - one_hour,
                                   "ephemeral_1h_input_tokens": one_hour},
                "service_tier": "standard"});
            let message_id = format!("msg_{session:x}_{turn}");
            let request_id = format!("req_{session:x}_{turn}");
            for block in 0..rng.random_range(1..4) {
                let assistant = json!({"type": "assistant", "sessionId": session.to_string(),
                    "timestamp": ts(t + block), "requestId": request_id, "isSidechain": false,
                    "cwd": cwd, "message": {"id": message_id, "model": model, "role": "assistant",
                        "content": [{"type": "text", "text": "y".repeat(rng.random_range(20..800))}],
                        "usage": usage}});
                written += line(&mut out, &assistant);
            }
            t += rng.random_range(1..30);
        }
        out.flush().expect("flush");
    }
}

fn line(out: &mut impl Write, value: &Value) -> u64 {
    let text = value.to_string();
    writeln!(out, "{text}").expect("write");
    text.len() as u64 + 1
}
