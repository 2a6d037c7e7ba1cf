//! What this binary is: its version, the git commit it was built from
//! ("unknown" when built outside a git checkout) and its target triple,
//! recorded by `build.rs`. `--version`, `tokentally version` and the
//! `tokentally_build_info` metric print them.

/// The crate version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The short git commit, or "unknown".
pub const COMMIT: &str = env!("TOKENTALLY_GIT_COMMIT");
/// The target triple, e.g. `aarch64-unknown-linux-musl`.
pub const TARGET: &str = env!("TOKENTALLY_TARGET");

/// What `tokentally --version` prints after the name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TOKENTALLY_GIT_COMMIT"),
    ", ",
    env!("TOKENTALLY_TARGET"),
    ")"
);
