//! What the benchmarks that drive the real binary share: running the CLI,
//! an admin's token, starting the server and waiting for `/readyz`, an HTTP
//! client, and the server's memory.

#![allow(dead_code)] // each bench uses a different part

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `tokentally` on `dir` and returns its standard output, trimmed;
/// panics if it fails.
pub fn cli(binary: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let dir = dir.to_str().expect("utf-8 path");
    let mut full = vec!["--data-dir", dir];
    full.extend_from_slice(args);
    run(binary, &full, stdin).trim().to_owned()
}

/// Runs `binary` with `args` (and `stdin`, if any) and returns its
/// standard output; panics if it fails.
pub fn run(binary: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run tokentally");
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        pipe.write_all(input.as_bytes()).expect("stdin");
    }
    let output = child.wait_with_output().expect("tokentally");
    assert!(
        output.status.success(),
        "{} {args:?} failed",
        binary.display()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Bytes of every file under `dir`.
/// Copies a benchmark database into `dir` with its audit key (the audit
/// chain of a database is keyed: without the key the server refuses it).
/// Returns the copy's path.
pub fn copy_database(source: &Path, dir: &Path) -> std::path::PathBuf {
    let copy = dir.join("tokentally.db");
    std::fs::copy(source, &copy).expect("copy the database");
    let key = source.with_file_name("audit.key");
    if key.exists() {
        std::fs::copy(&key, dir.join("audit.key")).expect("copy the audit key");
    }
    copy
}

pub fn folder_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            folder_bytes(&path)
        } else {
            entry.metadata().map(|m| m.len()).unwrap_or(0)
        };
    }
    total
}

/// An admin's ingest token: the events name the workload's users.
pub fn admin_token(binary: &Path, dir: &Path) -> String {
    cli(
        binary,
        dir,
        &[
            "user",
            "add",
            "bench-admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    cli(
        binary,
        dir,
        &[
            "token",
            "create",
            "--user",
            "bench-admin",
            "--scope",
            "ingest",
        ],
        None,
    )
}

/// Starts the server and waits until `/readyz` answers.
pub fn start(binary: &Path, dir: &Path) -> (Child, String) {
    start_with(binary, dir, &[])
}

/// Starts the server with `extra` serve arguments.
pub fn start_with(binary: &Path, dir: &Path, extra: &[&str]) -> (Child, String) {
    start_logging(binary, dir, extra, "warn", Stdio::inherit())
}

/// Starts the server logging every request as JSON (with its
/// `latency_us`, the server's time) to `log`.
pub fn start_logged(binary: &Path, dir: &Path, log: &Path) -> (Child, String) {
    let file = std::fs::File::create(log).expect("log file");
    start_logging(binary, dir, &[], "info", Stdio::from(file))
}

fn start_logging(
    binary: &Path,
    dir: &Path,
    extra: &[&str],
    level: &str,
    stderr: Stdio,
) -> (Child, String) {
    let mut command = Command::new(binary);
    command
        .arg("--data-dir")
        .arg(dir)
        .args(["--log-level", level])
        .args(if level == "info" {
            &["--log-format", "json"][..]
        } else {
            &[]
        })
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ingest-rate-per-token",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr);
    // A bench stopped early (Ctrl-C, a kill) must not leave a server
    // busy on a copy of the 10M database it was about to delete: the
    // kernel kills the server when the bench dies.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent; it runs in the child between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let mut child = command.spawn().expect("serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut base = String::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(url) = line.strip_prefix("tokentally listening on ") {
            base = url.to_owned();
            break;
        }
    }
    let agent = agent();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !base.is_empty() && Instant::now() < deadline {
        if let Ok(r) = agent.get(&format!("{base}/readyz")).call()
            && r.status() == 200
        {
            return (child, base);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready");
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// (current, peak) resident set of a process, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes a process has written to storage so far (`/proc/PID/io`,
/// `write_bytes`: what reached the block layer, WAL and checkpoints alike).
pub fn written_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Signs `username` in through the login form; the session cookie.
pub fn sign_in(base: &str, username: &str, password: &str) -> String {
    // No redirects followed: the session cookie is on the 303 itself.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let page = agent
        .get(&format!("{base}/login"))
        .call()
        .expect("login page");
    let cookie = session_cookie(&page);
    let body = page.into_body().read_to_string().unwrap_or_default();
    let csrf = body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("username", username)
        .append_pair("password", password)
        .append_pair("csrf_token", &csrf)
        .finish();
    let signed_in = agent
        .post(&format!("{base}/login"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(form)
        .expect("login");
    assert_eq!(signed_in.status(), 303, "signed in");
    session_cookie(&signed_in)
}

fn session_cookie(response: &ureq::http::Response<ureq::Body>) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tokentally_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}
