#!/usr/bin/env bash
# Start-up time and idle memory of a tokentally binary (README, "Building a
# release"): `tokentally serve` on a fresh, empty data directory, RUNS times.
# For each run: milliseconds from spawn to the first 200 from /healthz and
# from /readyz (polled every 2 ms), then after 2 s idle the resident set
# (VmRSS) and its peak (VmHWM). Prints the medians.
#
# Usage: benches/startup.sh BINARY [RUNS]   (`just startup` builds and runs it)
set -euo pipefail
bin=${1:?usage: benches/startup.sh BINARY [RUNS]}
runs=${2:-11}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wait_for() { # URL START_MS -> ms since START_MS at the first 200
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ]; do sleep 0.002; done
    echo $(( $(now_ms) - $2 ))
}
field_mib() { awk -v f="$1:" '$1 == f { printf "%.1f\n", $2 / 1024 }' "/proc/$2/status"; }
: > /tmp/startup.$$
for _ in $(seq "$runs"); do
    dir=$(mktemp -d)
    : > "$dir/out"
    start=$(now_ms)
    "$bin" --data-dir "$dir" --log-level warn serve --listen 127.0.0.1:0 > "$dir/out" 2> /dev/null &
    pid=$!
    until base=$(sed -n 's/^tokentally listening on //p' "$dir/out") && [ -n "$base" ]; do sleep 0.001; done
    health=$(wait_for "$base/healthz" "$start")
    ready=$(wait_for "$base/readyz" "$start")
    sleep 2
    echo "$health $ready $(field_mib VmRSS $pid) $(field_mib VmHWM $pid)" >> /tmp/startup.$$
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir"
done
col() { awk -v c="$1" '{ print $c }' /tmp/startup.$$ | median; }
echo "$bin, $runs runs on an empty data directory (medians):"
echo "| measure | value |"
echo "| --- | ---: |"
echo "| /healthz answers after | $(col 1) ms |"
echo "| /readyz answers after | $(col 2) ms |"
echo "| idle RSS after 2 s (peak) | $(col 3) MiB ($(col 4) MiB) |"
rm -f /tmp/startup.$$
