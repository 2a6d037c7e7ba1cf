//! Import throughput on synthetic Claude Code transcripts (~1 GB by
//! default): a first run, then an incremental second run after Claude Code
//! "appended" to a few sessions; and, when a `ccusage` binary is given, the
//! same files through `ccusage daily --json` in the same run, with the time
//! ratio and whether the daily token totals agree.
//!
//! Usage: `cargo bench --bench import -- BINARY DIR [MEGABYTES [CCUSAGE]]`:
//! BINARY a release tokentally, DIR where the transcripts are written (kept
//! between runs), CCUSAGE the path of ccusage's `ccusage` executable.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

mod support;
use support::{folder_bytes, run};

const MODELS: [&str; 3] = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-haiku-4-5-20251001",
];

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let binary = PathBuf::from(
        args.next()
            .expect("usage: import BINARY DIR [MB [CCUSAGE]]"),
    );
    let dir = PathBuf::from(
        args.next()
            .expect("usage: import BINARY DIR [MB [CCUSAGE]]"),
    );
    let megabytes: u64 = args.next().and_then(|m| m.parse().ok()).unwrap_or(1024);
    let ccusage = args.next().map(PathBuf::from);

    let projects = dir.join("claude/projects");
    if !projects.exists() {
        generate(&projects, megabytes * 1_000_000);
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

    let import = |label: &str| {
        let started = Instant::now();
        let out = run(
            &binary,
            &[
                "--data-dir",
                data_dir,
                "import",
                projects.to_str().expect("utf-8"),
            ],
            None,
        );
        let seconds = started.elapsed().as_secs_f64();
        let events: u64 = out
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("imported "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        println!("| {label} | {seconds:.2} s | {events} new events |");
        (seconds, events)
    };
    println!(
        "{:.0} MB of transcripts in {}\n",
        bytes as f64 / 1e6,
        projects.display()
    );
    println!("| run | time | events |");
    println!("| --- | ---: | ---: |");
    let (first, events) = import("first import");
    append_to_some_sessions(&projects);
    let (second, _) = import("second import (3 sessions appended)");
    println!();
    println!(
        "first import: {:.1} MB/s, {:.0} events/s; second run {:.2} s ({:.0}x faster)",
        bytes as f64 / 1e6 / first,
        events as f64 / first,
        second,
        first / second.max(1e-9)
    );

    if let Some(ccusage) = ccusage {
        compare_with_ccusage(&ccusage, &dir, &binary, data_dir, (first, second));
    }
}

/// Sessions in 20 projects over 60 days: user turns, assistant messages of
/// one to three content blocks (each line repeating the usage), tool
/// results, sub-agent replays, synthetic messages and the occasional large
/// snapshot line.
fn generate(projects: &Path, target_bytes: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut written = 0u64;
    let mut session = 0u64;
    let start = 1_777_000_000i64; // 2026-04-24
    while written < target_bytes {
        session += 1;
        let project = projects.join(format!("-home-ada-src-project-{:02}", session % 20));
        std::fs::create_dir_all(&project).expect("mkdir");
        let path = project.join(format!("{session:08x}-5c1a-4f7e-9a55-0d3c3b2b9e11.jsonl"));
        let mut out = BufWriter::new(File::create(&path).expect("create"));
        let mut t = start + rng.random_range(0..60 * 86_400);
        for turn in 0..rng.random_range(20..200) {
            t += rng.random_range(5..120);
            let ts = |t: i64| jiff::Timestamp::from_second(t).expect("ts").to_string();
            let user = json!({"type": "user", "sessionId": session.to_string(), "timestamp": ts(t),
                "cwd": format!("/home/ada/src/project-{:02}", session % 20),
                "message": {"role": "user", "content": "x".repeat(rng.random_range(50..2000))}});
            written += line(&mut out, &user);
            let usage = json!({"input_tokens": rng.random_range(1..50),
                "output_tokens": rng.random_range(10..2000),
                "cache_read_input_tokens": rng.random_range(0..60_000),
                "cache_creation_input_tokens": rng.random_range(0..4_000)});
            let model = MODELS[rng.random_range(0..MODELS.len())];
            let message_id = format!("msg_{session:x}_{turn}");
            let request_id = format!("req_{session:x}_{turn}");
            for block in 0..rng.random_range(1..4) {
                let assistant = json!({"type": "assistant", "sessionId": session.to_string(),
                    "timestamp": ts(t + block), "requestId": request_id, "isSidechain": false,
                    "cwd": format!("/home/ada/src/project-{:02}", session % 20),
                    "message": {"id": message_id, "model": model, "role": "assistant",
                        "content": [{"type": "text", "text": "y".repeat(rng.random_range(20..800))}],
                        "usage": usage}});
                written += line(&mut out, &assistant);
            }
            if rng.random_range(0..10) == 0 {
                let replay = json!({"type": "assistant", "sessionId": session.to_string(),
                    "timestamp": ts(t + 5), "requestId": request_id, "isSidechain": true,
                    "message": {"id": message_id, "model": model, "usage": usage}});
                written += line(&mut out, &replay);
            }
            if rng.random_range(0..50) == 0 {
                let snapshot = json!({"type": "file-history-snapshot",
                    "snapshot": {"files": "z".repeat(rng.random_range(20_000..400_000))}});
                written += line(&mut out, &snapshot);
            }
        }
        out.flush().expect("flush");
    }
}

fn line(out: &mut impl Write, value: &Value) -> u64 {
    let text = value.to_string();
    writeln!(out, "{text}").expect("write");
    text.len() as u64 + 1
}

/// A new call at the end of three sessions, as Claude Code appends (new
/// ids on every run of the benchmark, which keeps its files).
fn append_to_some_sessions(projects: &Path) {
    let run = jiff::Timestamp::now().as_nanosecond();
    let mut files = Vec::new();
    for project in std::fs::read_dir(projects)
        .expect("projects")
        .flatten()
        .take(3)
    {
        if let Some(file) = std::fs::read_dir(project.path())
            .expect("files")
            .flatten()
            .next()
        {
            files.push(file.path());
        }
    }
    for (i, path) in files.iter().enumerate() {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("append");
        let call = json!({"type": "assistant", "sessionId": "appended", "requestId": format!("req_appended_{run}_{i}"),
            "timestamp": "2026-06-20T10:00:00Z",
            "message": {"id": format!("msg_appended_{run}_{i}"), "model": MODELS[0],
                "usage": {"input_tokens": 3, "output_tokens": 30}}});
        writeln!(file, "{call}").expect("write");
    }
}

/// Runs ccusage on the same files and compares its daily token totals
/// (UTC days) with tokentally's report.
fn compare_with_ccusage(
    ccusage: &Path,
    dir: &Path,
    binary: &Path,
    data_dir: &str,
    (first, second): (f64, f64),
) {
    let started = Instant::now();
    let output = Command::new(ccusage)
        .args(["daily", "--json", "--offline", "--timezone", "UTC"])
        .env("CLAUDE_CONFIG_DIR", dir.join("claude"))
        .output()
        .expect("ccusage");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "ccusage failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Value = serde_json::from_slice(&output.stdout).expect("ccusage json");
    let mut by_day_theirs: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for day in theirs["daily"].as_array().into_iter().flatten() {
        let n = |f: &str| day[f].as_i64().unwrap_or(0);
        // ccusage 20 names the day `period`; older versions `date`.
        let date = day["period"]
            .as_str()
            .or_else(|| day["date"].as_str())
            .unwrap_or("");
        by_day_theirs.insert(
            date.to_owned(),
            [
                n("inputTokens"),
                n("outputTokens"),
                n("cacheReadTokens"),
                n("cacheCreationTokens"),
            ],
        );
    }
    let report_started = Instant::now();
    let report = run(
        binary,
        &[
            "--data-dir",
            data_dir,
            "report",
            "--json",
            "--bucket",
            "day",
            "--tz",
            "UTC",
            "--from",
            "2026-01-01",
            "--to",
            "2027-01-01",
        ],
        None,
    );
    let report_seconds = report_started.elapsed().as_secs_f64();
    let report: Value = serde_json::from_str(&report).expect("report json");
    let mut by_day_ours: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for row in report["rows"].as_array().into_iter().flatten() {
        let n = |f: &str| row[f].as_i64().unwrap_or(0);
        let cells = [
            n("input_tokens"),
            n("output_tokens"),
            n("cache_read_tokens"),
            n("cache_write_tokens"),
        ];
        if cells != [0; 4] {
            by_day_ours.insert(row["bucket"].as_str().unwrap_or("").to_owned(), cells);
        }
    }
    let differing = by_day_ours
        .iter()
        .filter(|(day, cells)| by_day_theirs.get(*day) != Some(cells))
        .count()
        + by_day_theirs
            .keys()
            .filter(|d| !by_day_ours.contains_key(*d))
            .count();
    println!(
        "ccusage daily --json on the same files: {seconds:.2} s; tokentally's first import \
         {first:.2} s ({:.2}x ccusage), second import {second:.3} s ({:.0}x faster than \
         ccusage), report --json {report_seconds:.3} s ({:.0}x faster); {} days, daily token \
         totals {}",
        first / seconds,
        seconds / second,
        seconds / report_seconds,
        by_day_theirs.len(),
        if differing == 0 {
            "agree".to_owned()
        } else {
            format!("differ on {differing} days")
        }
    );
}
