// Migrations are embedded by a macro that cargo cannot see into: rebuild
// when one is added or changed. Also records what `--version` and
// /metrics report: the git commit (or "unknown" outside a git checkout, as
// in a source tarball) and the target triple.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TOKENTALLY_GIT_COMMIT={commit}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=TOKENTALLY_TARGET={target}");
    // A new commit changes HEAD, or the branch it points to (which, in a
    // worktree, lives in the common git directory).
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_owned())
    };
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
        if let (Ok(text), Some(common)) = (
            std::fs::read_to_string(&head),
            git(&["rev-parse", "--git-common-dir"]),
        ) && let Some(reference) = text.trim().strip_prefix("ref: ")
        {
            println!("cargo:rerun-if-changed={common}/{reference}");
            println!("cargo:rerun-if-changed={common}/packed-refs");
        }
    }
}
