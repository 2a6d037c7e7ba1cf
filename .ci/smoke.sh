#!/usr/bin/env bash
# Smoke test of a release binary where it will run:
#   .ci/smoke.sh BINARY [RUNNER]
# RUNNER runs it on another CPU (e.g. qemu-aarch64). Checks --version,
# `serve --demo` (readiness by polling /readyz, then signs in with the
# demo's printed admin password and loads the overview), an import of the
# Claude Code transcript fixture, and `verify`.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=$(realpath "$1")
runner=${2:-}
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

run() {
    # shellcheck disable=SC2086 # RUNNER may be a command with arguments
    $runner "$binary" "$@"
}

# Polls CMD until it succeeds or SECONDS pass; the pause only spaces the polls.
poll() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "smoke: $what did not happen within ${seconds}s" >&2
            return 1
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            echo "smoke: the server exited while waiting for: $what" >&2
            return 1
        fi
        sleep 0.2
    done
}

echo "-- $binary ${runner:+(under $runner)}"
version=$(run --version)
echo "$version"
echo "$version" | grep -Eq '^tokentally [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]+|unknown), [a-z0-9_]+-[a-z0-9_-]+\)$' \
    || { echo "smoke: unexpected --version output" >&2; exit 1; }
run version

echo "-- serve --demo"
start=$SECONDS
# Not through run(): $! must be the server (or its runner) itself, so that
# SIGTERM reaches it. shellcheck disable=SC2086
$runner "$binary" --data-dir "$work/demo" serve --demo --listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
listening() { grep -q '^tokentally listening on ' "$work/out" 2>/dev/null; }
poll 120 "the server printing its address" listening || { cat "$work/err" >&2; exit 1; }
url=$(sed -n 's/^tokentally listening on //p' "$work/out" | head -1)
ready() { curl -fsS -o /dev/null "$url/readyz"; }
poll 300 "/readyz answering 200" ready || { cat "$work/err" >&2; exit 1; }
echo "ready after $((SECONDS - start)) s at $url"
curl -fsS "$url/healthz" | grep -q '"ok"'

# Signs in as the demo's admin (its password is printed at start).
password=$(sed -n 's/^ *admin .* password: //p' "$work/out" | head -1)
[ -n "$password" ] || { echo "smoke: the demo printed no admin password" >&2; cat "$work/out" >&2; exit 1; }
username=$(sed -n 's/^ *admin *\([^ ]*\) *password: .*/\1/p' "$work/out" | head -1)
jar="$work/cookies"
login_page=$(curl -fsS -c "$jar" -b "$jar" "$url/login")
csrf=$(printf '%s' "$login_page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
[ -n "$csrf" ] || { echo "smoke: no CSRF token on /login" >&2; exit 1; }
status=$(curl -sS -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
    --data-urlencode "username=$username" --data-urlencode "password=$password" \
    --data-urlencode "csrf_token=$csrf" "$url/login")
[ "$status" = 303 ] || { echo "smoke: sign-in answered $status" >&2; exit 1; }
overview=$(curl -fsS -b "$jar" "$url/")
printf '%s' "$overview" | grep -q 'Overview' || { echo "smoke: / is not the overview" >&2; exit 1; }
echo "signed in as $username; the overview answered ($(printf '%s' "$overview" | wc -c) bytes)"
kill -TERM "$pid"
wait "$pid" || { echo "smoke: the server did not stop cleanly" >&2; cat "$work/err" >&2; exit 1; }
pid=""

echo "-- import and verify"
echo 'smoke-test-password' | run --data-dir "$work/data" user add ada --role admin --password-stdin
run --data-dir "$work/data" import --user ada tests/fixtures/claude-code/projects
run --data-dir "$work/data" report --group-by model >/dev/null
run --data-dir "$work/data" verify
echo "smoke: ok"
