//! A data directory driven through the real binary's CLI: the fixture of
//! tests that run `tokentally --data-dir DIR …` commands and then look at
//! the database file.

use std::path::PathBuf;

use super::PASSWORD;
use super::server::run_cli;

pub struct CliInstance {
    pub dir: tempfile::TempDir,
}

impl CliInstance {
    /// A fresh data directory with one user, `ada`, of `role` (`admin` or
    /// `member`), whose password is [`PASSWORD`].
    pub fn with_user(role: &str) -> CliInstance {
        let instance = CliInstance {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        instance.ok(&["user", "add", "ada", "--role", role, "--password-stdin"]);
        instance
    }

    /// Runs `args` against the directory: (succeeded, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let data = self.dir.path().to_str().expect("utf-8");
        let mut full = vec!["--data-dir", data];
        full.extend_from_slice(args);
        run_cli(&full, &[], Some(&format!("{PASSWORD}\n")))
    }

    /// Runs `args`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "{args:?}: {err}");
        out
    }

    /// Runs `args`, which must fail; its stderr.
    pub fn refused(&self, args: &[&str]) -> String {
        let (ok, _, err) = self.run(args);
        assert!(!ok, "{args:?} was accepted");
        err
    }

    /// Writes `text` to a file in the directory; its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_owned()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("tokentally.db")
    }

    /// A connection to the database file (for checks only).
    pub fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).expect("open")
    }
}
