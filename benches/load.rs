//! A bounded loopback load run: `wrk` mixing dashboard reads from many
//! signed-in sessions with NDJSON ingest from several tokens, against the
//! real server on a copy of a benchmark database (10M events for the
//! figures in BENCHMARKS.md). Reports throughput, latency percentiles,
//! errors (non-2xx/3xx and socket errors, which must be 0) and the
//! server's peak RSS.
//!
//! Usage: `cargo bench --bench load -- BINARY SOURCE_DB [SECONDS [CONNECTIONS]]`
//! (`just load` builds and runs it). Needs `wrk` (Debian: `apt-get install wrk`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod support;
use support::{cli, rss_kib, sign_in, start_with};

const SESSIONS: usize = 16;
const TOKENS: usize = 4;
/// One request in this many is an ingest batch.
const INGEST_EVERY: usize = 5;
const BATCH: usize = 100;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let usage = "usage: load BINARY SOURCE_DB [SECONDS [CONNECTIONS]]";
    let binary = PathBuf::from(args.next().expect(usage));
    let source = PathBuf::from(args.next().expect(usage));
    let seconds: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(30);
    let connections: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(32);

    let work = tempfile::tempdir_in(source.parent().unwrap_or(Path::new("."))).expect("tempdir");
    support::copy_database(&source, work.path());
    let tokens = ingest_tokens(&binary, work.path());
    let (mut server, base) = start_with(&binary, work.path(), &[]);
    let cookies = sessions(&base);
    let script = work.path().join("mix.lua");
    std::fs::write(&script, lua(&cookies, &tokens)).expect("script");

    // Peak RSS: VmHWM is the high-water mark since the process started.
    let output = Command::new("wrk")
        .args(["--latency", "-t", "2", "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--timeout", "30s", "-s"])
        .arg(&script)
        .arg(&base)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let (rss, peak) = rss_kib(server.id());
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();

    println!("{report}");
    println!(
        "{seconds} s, {connections} connections, {SESSIONS} sessions reading (/, /events, \
         /team, /api/v1/usage), {TOKENS} tokens sending {BATCH}-event batches (1 request in \
         {INGEST_EVERY})\n"
    );
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| requests/s | {} |", field(&report, "Requests/sec:"));
    println!(
        "| latency p50 / p90 / p99 | {} / {} / {} |",
        pct(&report, "50%"),
        pct(&report, "90%"),
        pct(&report, "99%")
    );
    println!(
        "| errors (non-2xx/3xx, socket) | {} / {} |",
        non_2xx(&report),
        socket_errors(&report)
    );
    println!(
        "| server RSS at the end (peak) | {} / {} MiB |",
        rss / 1024,
        peak / 1024
    );
    std::thread::sleep(Duration::from_millis(10));
}

fn field(report: &str, name: &str) -> String {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned()
}

fn pct(report: &str, name: &str) -> String {
    field(report, name)
}

fn non_2xx(report: &str) -> String {
    report
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("0")
        .to_owned()
}

fn socket_errors(report: &str) -> String {
    report
        .lines()
        .find(|l| l.contains("Socket errors:"))
        .map(|l| {
            l.trim()
                .trim_start_matches("Socket errors:")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "0".to_owned())
}

/// Ingest tokens of an admin, so batches may name the workload's users.
fn ingest_tokens(binary: &Path, dir: &Path) -> Vec<String> {
    cli(
        binary,
        dir,
        &[
            "user",
            "add",
            "load-admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    (0..TOKENS)
        .map(|_| {
            cli(
                binary,
                dir,
                &[
                    "token",
                    "create",
                    "--user",
                    "load-admin",
                    "--scope",
                    "ingest",
                ],
                None,
            )
        })
        .collect()
}

/// Signs in SESSIONS times through the login form; the session cookies.
fn sessions(base: &str) -> Vec<String> {
    (0..SESSIONS)
        .map(|_| sign_in(base, "load-admin", "a long enough password"))
        .collect()
}

/// The wrk script: each request is a page or API read with a random
/// session, or (one in INGEST_EVERY) an ingest batch with unique ids.
fn lua(cookies: &[String], tokens: &[String]) -> String {
    let quote = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"
local cookies = {{ {cookies} }}
local tokens = {{ {tokens} }}
local reads = {{ "/", "/?range=7d&split=activity", "/events", "/events?sort=cost",
                 "/team?range=90d&bucket=week", "/api/v1/usage?group_by=model&range=90d" }}
local counter = 0
local thread_id = 0
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  thread_id = id
  math.randomseed(os.time() + thread_id)
end

function request()
  counter = counter + 1
  if counter % {every} == 0 then
    local lines = {{}}
    local ts = os.date("!%Y-%m-%dT%H:%M:%SZ")
    for i = 1, {batch} do
      lines[i] = string.format('{{"id":"load-%d-%d-%d","timestamp":"%s","user":"user-%03d","model":"claude-sonnet-4-5","activity":"load","input_tokens":%d,"output_tokens":%d}}',
        thread_id, counter, i, ts, (i % 20) + 1, 100 + i, i)
    end
    local token = tokens[(counter % #tokens) + 1]
    return wrk.format("POST", "/api/v1/events",
      {{ ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/x-ndjson" }},
      table.concat(lines, "\n"))
  end
  local cookie = cookies[math.random(#cookies)]
  return wrk.format("GET", reads[math.random(#reads)], {{ ["Cookie"] = cookie }})
end

-- The first few failures, so an error count is never a mystery.
local shown = 0
function response(status, headers, body)
  if status >= 300 and shown < 3 then
    shown = shown + 1
    print("error sample: " .. status .. " " .. string.sub(body or "", 1, 200))
  end
end
"#,
        cookies = quote(cookies),
        tokens = quote(tokens),
        every = INGEST_EVERY,
        batch = BATCH,
    )
}
