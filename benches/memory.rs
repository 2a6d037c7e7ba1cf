//! Memory under hostile ingest: 64 parallel requests, each a ~64 KiB gzip
//! body that inflates to just under the 64 MiB decompression limit, sent
//! with a valid token to the real server. Reports the server's idle RSS,
//! its peak (VmHWM), its RSS once every request is answered and 2 s later,
//! and the answers by status.
//!
//! Usage: `cargo bench --bench memory -- BINARY [EXTRA_BINARY]` (`just
//! bench-memory`). BINARY runs twice: with the default ingest memory budget
//! and with `--ingest-memory-mib 0` (no bound); an EXTRA_BINARY (say, a
//! build from before the budget) runs once, with its defaults.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{admin_token, agent, rss_kib, start_with};

const PARALLEL: usize = 64;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let usage = "usage: memory BINARY [EXTRA_BINARY]";
    let binary = PathBuf::from(args.next().expect(usage));
    let extra = args.next().map(PathBuf::from);
    let bomb = Arc::new(gzip_bomb());
    println!(
        "{PARALLEL} parallel requests, each {} KiB of gzip inflating to 64 MiB - 4 KiB\n",
        bomb.len() / 1024
    );
    println!(
        "| server | idle RSS | peak RSS (VmHWM) | RSS when answered | RSS 2 s later | answers | wall time |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | --- | ---: |");
    run("budget (default)", &binary, &[], &bomb);
    run(
        "no budget (`--ingest-memory-mib 0`)",
        &binary,
        &["--ingest-memory-mib", "0"],
        &bomb,
    );
    if let Some(extra) = extra {
        run(&extra.display().to_string(), &extra, &[], &bomb);
    }
}

fn run(label: &str, binary: &Path, extra: &[&str], bomb: &Arc<Vec<u8>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = admin_token(binary, dir.path());
    // (start_with turns the per-token rate limit off.)
    let (mut child, base) = start_with(binary, dir.path(), extra);
    let pid = child.id();
    let (idle, _) = rss_kib(pid);
    let started = Instant::now();
    let senders: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (url, token, bomb) = (format!("{base}/api/v1/events"), token.clone(), bomb.clone());
            std::thread::spawn(move || {
                agent()
                    .post(&url)
                    .header("authorization", &format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .send(&bomb[..])
                    .map(|r| r.status().as_u16().to_string())
                    .unwrap_or_else(|e| format!("error ({e})"))
            })
        })
        .collect();
    let mut answers = BTreeMap::<String, usize>::new();
    for sender in senders {
        *answers.entry(sender.join().expect("join")).or_default() += 1;
    }
    let wall = started.elapsed();
    let (answered, peak) = rss_kib(pid);
    std::thread::sleep(Duration::from_secs(2));
    let (later, _) = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let answers: Vec<String> = answers
        .iter()
        .map(|(status, n)| format!("{n}× {status}"))
        .collect();
    let mib = |kib: u64| format!("{} MiB", kib / 1024);
    println!(
        "| {label} | {} | {} | {} | {} | {} | {:.1} s |",
        mib(idle),
        mib(peak),
        mib(answered),
        mib(later),
        answers.join(", "),
        wall.as_secs_f64()
    );
    let _ = std::io::stdout().flush();
}

/// A JSON array of blanks just under 64 MiB, gzipped.
fn gzip_bomb() -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"[").expect("gzip");
    let blanks = vec![b' '; 1024 * 1024];
    for _ in 0..63 {
        encoder.write_all(&blanks).expect("gzip");
    }
    encoder
        .write_all(&blanks[..1024 * 1024 - 4096])
        .expect("gzip");
    encoder.write_all(b"]").expect("gzip");
    encoder.finish().expect("gzip")
}
