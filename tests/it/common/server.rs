//! The real `tokentally` binary as a child process, for tests that need
//! signals, stdout and a real socket. Start-up is awaited by reading the
//! "listening" line and then `/readyz`; never by sleeping a fixed time.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_tokentally");
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Server {
    child: Child,
    pub base_url: String,
    /// Every stdout line printed before "listening".
    pub banner: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `tokentally serve --listen 127.0.0.1:0 --data-dir DIR` plus
    /// `extra` arguments and waits until it reports its address.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BINARY)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("TOKENTALLY_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        let (lines, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let deadline = Instant::now() + START_TIMEOUT;
        let base_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = receive
                .recv_timeout(left)
                .expect("the server printed its address in time");
            if let Some(url) = line.strip_prefix("tokentally listening on ") {
                break url.to_owned();
            }
            banner.push(line);
        };
        Server {
            child,
            base_url,
            banner,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Polls `/readyz` until it answers 200 (each poll is a real request;
    /// the pause only spaces them out).
    pub fn wait_ready(&self) {
        let agent = agent();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(response) = agent.get(&self.url("/readyz")).call()
                && response.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "/readyz never said ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the status and stderr.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = self.child.wait().expect("the server exits");
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Server {
    /// `Some` (exit status and stderr) when the server has stopped on its
    /// own; `None` while it runs.
    pub fn exited(&mut self) -> Option<(ExitStatus, String)> {
        let status = self.child.try_wait().expect("try_wait")?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Some((status, stderr))
    }

    /// SIGKILL: no chance to flush or checkpoint anything.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that reports every status (no errors for 4xx/5xx) and
/// does not follow redirects, so tests see exactly what the server said.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Runs the binary with `args` (and optional stdin); returns exit status,
/// stdout and stderr.
pub fn run_cli(
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_remove("TOKENTALLY_DATA_DIR")
        .env_remove("TOKENTALLY_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the binary starts");
    // Dropping the pipe closes stdin, so a reader sees end-of-file.
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        pipe.write_all(input.as_bytes()).expect("stdin");
    }
    let output = child.wait_with_output().expect("the binary finishes");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `name=value` part of the session cookie a real server sets.
pub fn session_cookie(response: &ureq::http::Response<ureq::Body>) -> Option<String> {
    super::session_cookie_in(response.headers())
}
