# tokentally tasks. `cargo install just` gets `just`.

target := "x86_64-unknown-linux-gnu"

# List the recipes
default:
    @just --list

# Run the app on a fresh demo database
demo:
    cargo run --release -- serve --demo

# The whole test suite (the same command the README and CI use)
test:
    cargo test

# Formatting and lints as CI checks them
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Static, stripped release binary at target/dist/tokentally
dist:
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target {{target}}
    mkdir -p target/dist
    cp target/{{target}}/release/tokentally target/dist/tokentally
    # A static-pie (static, and still loaded at a random address) is what
    # ldd calls "statically linked"; a non-PIE one "not a dynamic executable".
    @ldd target/dist/tokentally 2>&1 | grep -qE 'statically linked|not a dynamic executable' || (echo "not static"; ldd target/dist/tokentally; exit 1)
    @ls -l target/dist/tokentally | awk '{ printf "target/dist/tokentally: %.1f MB, static\n", $5 / 1000000 }'

# Release artifacts in target/dist: static binaries for x86_64 and aarch64
# Linux (musl, cargo-zigbuild), a tarball and a .deb for each, SHA256SUMS;
# installs the tools it needs first (.ci/release.sh says which)
release:
    .ci/release.sh tools build pack

# Start-up time (/healthz, /readyz) and idle RSS of the static release
# binary on an empty data directory, medians of RUNS (README)
startup runs="11": dist
    benches/startup.sh target/dist/tokentally {{runs}}

# Reference queries, HTTP ingest, the audit cost of a read and the dashboard in Chromium (BENCHMARKS.md) on N events (default 1M)
bench events="1000000":
    cargo build --profile perf
    test -f target/bench/{{events}}/tokentally.db || target/perf/tokentally --data-dir target/bench/{{events}} demo --events {{events}} --seed 42 --end 2026-11-01T00:00:00Z
    cargo bench --bench reference -- target/bench/{{events}}/tokentally.db
    cargo bench --bench ingest -- target/perf/tokentally target/bench/{{events}}/tokentally.db
    cargo bench --bench audit
    cargo bench --bench dashboard -- target/perf/tokentally target/bench/{{events}}/tokentally.db

# Import of ~1 GB of synthetic Claude Code transcripts, first and incremental
# run, against ccusage when npm can install it (BENCHMARKS.md)
bench-import megabytes="1024":
    cargo build --profile perf
    mkdir -p target/bench/ccusage
    cd target/bench/ccusage && (npm install --no-audit --no-fund ccusage@20.0.24 @ccusage/ccusage-linux-x64@20.0.24 >/dev/null 2>&1 || echo "ccusage not installed; comparing nothing")
    cargo bench --bench import -- target/perf/tokentally target/bench/import-{{megabytes}} {{megabytes}} $(find target/bench/ccusage/node_modules/@ccusage -name ccusage -type f -perm -u+x 2>/dev/null | head -1)

# Per-day cost against ccusage 20.0.24 on generated transcripts of ten
# current Claude models (MEGABYTES per workload; BENCHMARKS.md "Cost against
# ccusage"): same rules within 0.01 %, then 1-hour writes and long context
bench-ccusage megabytes="20":
    cargo build --profile perf
    mkdir -p target/bench/ccusage
    cd target/bench/ccusage && npm install --no-audit --no-fund ccusage@20.0.24 @ccusage/ccusage-linux-x64@20.0.24 >/dev/null 2>&1
    chmod u+x target/bench/ccusage/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage
    cargo bench --bench ccusage_cost -- target/perf/tokentally target/bench/ccusage-cost target/bench/ccusage/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage {{megabytes}}

# Linking an identity with N held events to a person, and unlinking it
# (one transaction each, verify after both); default 100k and 1M
bench-link *events:
    cargo bench --bench link -- {{events}}

# Server memory under 64 parallel maximal gzip requests, with and without
# the ingest memory budget (BENCHMARKS.md); EXTRA: another binary to compare
bench-memory extra="":
    cargo build --profile perf
    cargo bench --bench memory -- target/perf/tokentally {{extra}}

# Long forms: the usage properties with CASES cases each (CI runs 36 and 12),
# then crash safety: SIGKILL the server KILLS times under concurrent ingest
soak kills="200" cases="2000":
    PROPTEST_CASES={{cases}} cargo test --release --test it usage:: -- --skip cli_usage::
    TOKENTALLY_CRASH_KILLS={{kills}} cargo test --release --test it crash:: -- --nocapture

# Fuzz every decoder of outside input for SECONDS each (cargo-fuzz; the
# corpus grows in fuzz/corpus, crashes land in fuzz/artifacts: copy each into
# fuzz/regressions/TARGET so `cargo test` replays it for good)
fuzz seconds="60":
    cargo install cargo-fuzz --locked --version 0.13.2
    cd fuzz && for t in $(cargo fuzz list); do RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t -- -max_total_time={{seconds}} -rss_limit_mb=2048 || exit 1; done

# Loopback load: wrk mixing dashboard reads and ingest on N events (BENCHMARKS.md)
load events="10000000" seconds="30":
    cargo build --profile perf
    test -f target/bench/{{events}}/tokentally.db || target/perf/tokentally --data-dir target/bench/{{events}} demo --events {{events}} --seed 42 --end 2026-11-01T00:00:00Z
    command -v wrk >/dev/null || apt-get install -y wrk
    cargo bench --bench load -- target/perf/tokentally target/bench/{{events}}/tokentally.db {{seconds}}

# Every page and read-API answer over the combinations of range, view,
# filter, sort and bucket on N events, timed by the server (BENCHMARKS.md)
bench-pages events="10000000" passes="2":
    cargo build --profile perf
    test -f target/bench/{{events}}/tokentally.db || target/perf/tokentally --data-dir target/bench/{{events}} demo --events {{events}} --seed 42 --end 2026-11-01T00:00:00Z
    cargo bench --bench pages -- target/perf/tokentally target/bench/{{events}}/tokentally.db {{passes}}

# Unusual usage (budgets::unusual, default knobs) on a year of the standard
# workload: false alerts over the year (a check every STEP minutes), minutes
# to detect an injected 20x loop, and the time of one check (BENCHMARKS.md)
bench-unusual events="1000000" step="15":
    cargo bench --bench unusual -- {{events}} {{step}}

# `tokentally verify` on EVENTS (default 1M and 10M): its parts in process
# (range checks, the rollups by the old SQL GROUP BY with OLD=--old, the
# streaming check on one and two connections, the audit chain), then the
# whole command with its peak RSS, on a copy of each database; OLD=old also
# times the old SQL GROUP BY check (~20 min at 10M) (BENCHMARKS.md "verify")
bench-verify old="new" *events="1000000 10000000":
    cargo build --profile perf
    for n in {{events}}; do \
        test -f target/bench/$n/tokentally.db || target/perf/tokentally --data-dir target/bench/$n demo --events $n --seed 42 --end 2026-11-01T00:00:00Z; \
        rm -rf target/bench/verify-$n && mkdir -p target/bench/verify-$n && \
        cp target/bench/$n/tokentally.db target/bench/$n/audit.key target/bench/$n/tokentally.db.audit-head target/bench/verify-$n/; \
        cargo bench --profile perf --bench verify -- {{ if old == "old" { "--old" } else { "" } }} --cli target/perf/tokentally target/bench/verify-$n/tokentally.db || exit 1; \
    done
