//! Every page and read-API answer over the combinations a user can ask
//! for — range, whose usage (view), one filter at a time, sort and bucket
//! (and the overview's split, the API's grouping) — against the real
//! server on a copy of a benchmark database (10M events for BENCHMARKS.md),
//! one request at a time, each timed by the server itself (`latency_us`
//! of its request log). Reports the slowest answers, per page and overall,
//! and how many took more than 50 ms. The CSV export is left out: it is a
//! download of everything asked for, not an answer of bounded size.
//!
//! Usage: `cargo bench --bench pages -- BINARY SOURCE_DB [PASSES [ONLY]]`
//! (`just bench-pages`). PASSES (default 2): the walk is repeated, the
//! later passes answering from whatever the first left cached. ONLY: walk
//! only the URLs containing this text.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;
use support::{agent, cli, sign_in, start_logged};

const PASSWORD: &str = "a long enough password";
const LIMIT_MS: f64 = 50.0;

/// Ranges: every preset (relative to today), and two custom ones over the
/// generated data (which ends 2026-11-01): its last 30 days and its year.
const RANGES: [&str; 9] = [
    "range=today",
    "range=7d",
    "range=30d",
    "range=this_month",
    "range=last_month",
    "range=90d",
    "range=12m",
    "from=2026-10-02&to=2026-11-01",
    "from=2025-11-01&to=2026-11-01",
];

/// Whose usage: everyone's (an admin's default), one user's, one team's.
const VIEWS: [&str; 3] = ["", "view=user-001", "view=team:bench"];

/// One filter at a time, each matching something where the data has it.
const FILTERS: [&str; 8] = [
    "user=user-002",
    "model=claude-sonnet-4-5",
    "activity=chat",
    "project=website",
    "source=demo",
    "session=none-such",
    "machine=none-such",
    "identity=unassigned",
];

const BUCKETS: [&str; 4] = ["bucket=hour", "bucket=day", "bucket=week", "bucket=month"];

const TEAM_SORTS: [&str; 6] = [
    "user",
    "calls",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost",
];

const GROUPS: [&str; 7] = [
    "",
    "group_by=model",
    "group_by=activity",
    "group_by=user",
    "group_by=project",
    "group_by=source",
    "group_by=team",
];

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let usage = "usage: pages BINARY SOURCE_DB [PASSES [ONLY]]";
    let binary = PathBuf::from(args.next().expect(usage));
    let source = PathBuf::from(args.next().expect(usage));
    let passes: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2);
    let only = args.next().unwrap_or_default();

    let work = tempfile::tempdir_in(source.parent().unwrap_or(Path::new("."))).expect("tempdir");
    for name in ["tokentally.db", "audit.key"] {
        let from = source.with_file_name(name);
        if from.exists() {
            std::fs::copy(&from, work.path().join(name)).expect("copy the database");
        }
    }
    prepare(&binary, work.path());
    let log = work.path().join("server.log");
    let (mut server, base) = start_logged(&binary, work.path(), &log);
    let cookie = sign_in(&base, "pages-admin", PASSWORD);
    let urls: Vec<String> = combinations()
        .into_iter()
        .filter(|u| u.contains(&only))
        .collect();
    let mut timings = ServerLog::open(&log);
    let agent = agent();
    let mut results = Vec::new();
    for pass in 1..=passes {
        let started = Instant::now();
        let mut answers = Vec::with_capacity(urls.len());
        for url in &urls {
            answers.push(fetch(&agent, &base, &cookie, url, &mut timings));
        }
        println!(
            "pass {pass}: {} answers in {:.1} s",
            answers.len(),
            started.elapsed().as_secs_f64()
        );
        results.push(answers);
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    for (pass, answers) in results.iter().enumerate() {
        report(pass + 1, answers);
    }
}

/// A team with a lead and members, and the admin that reads.
fn prepare(binary: &Path, dir: &Path) {
    cli(
        binary,
        dir,
        &[
            "user",
            "add",
            "pages-admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    cli(binary, dir, &["team", "add", "bench"], None);
    for n in 1..=10 {
        let user = format!("user-{n:03}");
        cli(
            binary,
            dir,
            &["team", "member", "add", "bench", &user],
            None,
        );
    }
}

/// Every URL the walk asks for.
fn combinations() -> Vec<String> {
    let mut urls = vec!["/api/v1/summary".to_owned()];
    for range in RANGES {
        for view in VIEWS {
            let at = |path: &str, rest: &str| url(path, &[range, view, rest]);
            for bucket in BUCKETS {
                for split in ["split=model", "split=activity", "split=team"] {
                    urls.push(at("/", &format!("{bucket}&{split}")));
                }
                urls.push(at("/team", bucket));
                for group in GROUPS {
                    urls.push(at("/api/v1/usage", &format!("{bucket}&{group}")));
                }
            }
            for filter in FILTERS {
                urls.push(at("/", filter));
                urls.push(at("/team", filter));
                urls.push(at("/api/v1/usage", &format!("{filter}&group_by=model")));
                for sort in ["time", "cost", "model"] {
                    urls.push(at("/events", &format!("{filter}&sort={sort}")));
                }
                urls.push(at("/api/v1/events", &format!("{filter}&sort=cost")));
            }
            for sort in TEAM_SORTS {
                urls.push(at("/team", &format!("sort={sort}&order=asc")));
            }
            // Every sort the events table offers, by its URL name.
            for sort in tokentally::usage::events::SortColumn::ALL.map(|c| c.name()) {
                for order in ["desc", "asc"] {
                    urls.push(at("/events", &format!("sort={sort}&order={order}")));
                }
                urls.push(at("/api/v1/events", &format!("sort={sort}")));
            }
        }
    }
    urls
}

fn url(path: &str, parts: &[&str]) -> String {
    let query: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    format!("{path}?{}", query.join("&"))
}

struct Answer {
    url: String,
    status: u16,
    bytes: usize,
    server_ms: f64,
}

fn fetch(
    agent: &ureq::Agent,
    base: &str,
    cookie: &str,
    url: &str,
    timings: &mut ServerLog,
) -> Answer {
    let response = agent
        .get(&format!("{base}{url}"))
        .header("cookie", cookie)
        .call()
        .expect("request");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .map(|b| b.len())
        .unwrap_or(0);
    Answer {
        url: url.to_owned(),
        status,
        bytes,
        server_ms: timings.next_latency_ms(),
    }
}

/// The server's request log, read as it grows.
struct ServerLog {
    lines: BufReader<std::fs::File>,
}

impl ServerLog {
    fn open(path: &Path) -> ServerLog {
        let file = std::fs::File::open(path).expect("server log");
        let mut log = ServerLog {
            lines: BufReader::new(file),
        };
        // Skip what start-up and signing in logged.
        while log.next_line(Duration::ZERO).is_some() {}
        log
    }

    fn next_line(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut line = String::new();
        loop {
            match self.lines.read_line(&mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => return Some(line),
                _ if Instant::now() >= deadline => return None,
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// The latency of the next finished request, in ms.
    fn next_latency_ms(&mut self) -> f64 {
        while let Some(line) = self.next_line(Duration::from_secs(5)) {
            if let Some(rest) = line.split("\"latency_us\":").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse::<f64>().unwrap_or(f64::NAN) / 1000.0;
            }
        }
        f64::NAN
    }
}

fn report(pass: usize, answers: &[Answer]) {
    let over = answers.iter().filter(|a| a.server_ms > LIMIT_MS).count();
    let failed: Vec<&Answer> = answers
        .iter()
        .filter(|a| !(200..300).contains(&a.status))
        .collect();
    let mut sorted: Vec<&Answer> = answers.iter().collect();
    sorted.sort_by(|a, b| b.server_ms.total_cmp(&a.server_ms));
    let total: f64 = answers.iter().map(|a| a.server_ms).sum();
    println!(
        "\npass {pass}: {} answers, {over} over {LIMIT_MS} ms of server time, {} not 2xx, \
         server time in all {:.1} s\n",
        answers.len(),
        failed.len(),
        total / 1000.0
    );
    for answer in failed.iter().take(5) {
        println!("not 2xx: {} {}", answer.status, answer.url);
    }
    println!("| slowest (pass {pass}) | server ms | bytes | status |");
    println!("| --- | ---: | ---: | ---: |");
    for answer in sorted.iter().take(12) {
        println!(
            "| `{}` | {:.1} | {} | {} |",
            answer.url, answer.server_ms, answer.bytes, answer.status
        );
    }
    println!("\n| page (pass {pass}) | answers | slowest ms | median ms | largest bytes |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for page in [
        "/?",
        "/events?",
        "/team?",
        "/api/v1/usage?",
        "/api/v1/events?",
    ] {
        let mut ms: Vec<f64> = answers
            .iter()
            .filter(|a| a.url.starts_with(page))
            .map(|a| a.server_ms)
            .collect();
        if ms.is_empty() {
            continue;
        }
        ms.sort_by(f64::total_cmp);
        let largest = answers
            .iter()
            .filter(|a| a.url.starts_with(page))
            .map(|a| a.bytes)
            .max()
            .unwrap_or(0);
        println!(
            "| {} | {} | {:.1} | {:.1} | {largest} |",
            page.trim_end_matches('?'),
            ms.len(),
            ms[ms.len() - 1],
            ms[ms.len() / 2]
        );
    }
}
