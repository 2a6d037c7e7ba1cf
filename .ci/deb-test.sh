#!/usr/bin/env bash
# The Debian package on this machine (as root; it installs and purges the
# package `tokentally` for real):  .ci/deb-test.sh PACKAGE.deb
# dpkg -i: the binary, the unit, the conffile, the `tokentally` user and
# /var/lib/tokentally in place; the installed binary starts from the
# installed config as that user (in the foreground: systemd need not be
# PID 1) and creates its database; dpkg -r keeps the data; dpkg -P deletes
# it. `systemd-analyze verify` checks the unit where it is installed.
set -euo pipefail
deb=$(realpath "$1")
[ "$(id -u)" -eq 0 ] || { echo "deb-test: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
fail() { echo "deb-test: $*" >&2; exit 1; }
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
    rm -f /tmp/tokentally-deb-test.out /tmp/tokentally-deb-test.err
}
trap cleanup EXIT

# A previous run's package (this test's own) goes first.
if dpkg-query -W tokentally >/dev/null 2>&1; then dpkg -P tokentally >/dev/null; fi
rm -rf /var/lib/tokentally

echo "-- dpkg -i $(basename "$deb")"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\|Installed-Size\):/  &/p'
dpkg -i "$deb"
test -x /usr/bin/tokentally || fail "no /usr/bin/tokentally"
unit=$(dpkg -L tokentally | grep -E '/systemd/system/tokentally\.service$') || fail "no unit"
test -f /etc/tokentally/config.toml || fail "no config"
dpkg-query --showformat='${Conffiles}\n' -W tokentally | grep -q '/etc/tokentally/config.toml' \
    || fail "the config is not a conffile"
getent passwd tokentally >/dev/null || fail "no tokentally user"
[ "$(stat -c '%U:%G %a' /var/lib/tokentally)" = "tokentally:tokentally 700" ] \
    || fail "/var/lib/tokentally: $(stat -c '%U:%G %a' /var/lib/tokentally)"
[ "$(stat -c '%U:%G %a' /etc/tokentally/config.toml)" = "root:tokentally 640" ] \
    || fail "config.toml: $(stat -c '%U:%G %a' /etc/tokentally/config.toml)"
grep -q '^User=tokentally$' "$unit" && grep -q 'ExecStart=/usr/bin/tokentally --config /etc/tokentally/config.toml serve' "$unit" \
    || fail "the unit does not run the installed binary as tokentally"
/usr/bin/tokentally --version
echo "files, conffile, user, state directory: ok ($unit)"

if command -v systemd-analyze >/dev/null; then
    echo "-- systemd-analyze verify"
    systemd-analyze verify "$unit"
    echo "systemd-analyze verify: ok"
fi

echo "-- the installed binary, as tokentally, from the installed config"
# The port of the config may be taken on a shared machine: the flag beats
# the file for the address only; the data directory comes from the file.
# setpriv execs the binary itself (runuser would stay in between and report
# the signal that stops the server as its own exit status).
setpriv --reuid tokentally --regid tokentally --init-groups \
    /usr/bin/tokentally --config /etc/tokentally/config.toml \
    serve --listen 127.0.0.1:0 >/tmp/tokentally-deb-test.out 2>/tmp/tokentally-deb-test.err &
pid=$!
deadline=$((SECONDS + 120))
until url=$(sed -n 's/^tokentally listening on //p' /tmp/tokentally-deb-test.out | head -1) && [ -n "$url" ] \
    && curl -fsS -o /dev/null "$url/readyz"; do
    kill -0 "$pid" 2>/dev/null || { cat /tmp/tokentally-deb-test.err >&2; fail "the server exited"; }
    [ "$SECONDS" -lt "$deadline" ] || fail "/readyz never answered"
    sleep 0.2
done
grep -q 'setup?token=' /tmp/tokentally-deb-test.out || fail "no first-run setup link"
kill -TERM "$pid"
wait "$pid" || { cat /tmp/tokentally-deb-test.err >&2; fail "the server did not stop cleanly"; }
pid=""
[ "$(stat -c %U /var/lib/tokentally/tokentally.db)" = tokentally ] || fail "the database is not the service user's"
echo "served from /var/lib/tokentally as tokentally: ok"

echo "-- dpkg -r keeps the data"
dpkg -r tokentally
test ! -e /usr/bin/tokentally || fail "the binary stayed"
test -f /var/lib/tokentally/tokentally.db || fail "remove deleted the database"
test -f /etc/tokentally/config.toml || fail "remove deleted the conffile"

echo "-- dpkg -P deletes it"
dpkg -P tokentally
test ! -e /var/lib/tokentally || fail "purge left /var/lib/tokentally"
test ! -e /etc/tokentally/config.toml || fail "purge left the config"
echo "deb-test: ok"
