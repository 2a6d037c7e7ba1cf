#!/usr/bin/env bash
# Release artifacts (what `just release` runs):
#   .ci/release.sh [tools] [build] [pack]     (no step: all three)
# tools: the musl targets (rustup), zig and cargo-zigbuild (PyPI: ziglang,
#        cargo-zigbuild), cargo-deb (crates.io); each only when missing.
# build: fully static binaries for x86_64 and aarch64 Linux (musl) with
#        cargo-zigbuild, --locked, in the profile RELEASE_PROFILE (default
#        `release`: fat LTO, stripped; `perf` gives thin LTO, unstripped).
# pack:  target/dist/tokentally-VERSION-TARGET.tar.gz (binary, LICENSE,
#        README.md, tokentally.service), the two .debs (cargo-deb) and
#        target/dist/SHA256SUMS over all of them; prints every size.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
PROFILE=${RELEASE_PROFILE:-release}
DIST=target/dist
ZIGLANG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.1
CARGO_DEB_VERSION=3.8.0
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)

binary_of() { echo "target/$1/$PROFILE/tokentally"; }

tools() {
    local installed
    installed=$(rustup target list --installed)
    for target in "${TARGETS[@]}"; do
        grep -qx "$target" <<<"$installed" || rustup target add "$target"
    done
    if ! command -v cargo-zigbuild >/dev/null || ! python3 -m ziglang version >/dev/null 2>&1; then
        python3 -m pip install --quiet --disable-pip-version-check \
            "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION"
    fi
    if ! cargo deb --version >/dev/null 2>&1; then
        cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
    fi
    echo "zig $(python3 -m ziglang version), $(cargo-zigbuild --version), $(cargo deb --version)"
}

# Fails unless the ELF file has no program interpreter (PT_INTERP): a
# static executable, which the dynamic loader never touches.
check_static() {
    python3 - "$1" <<'PY'
import struct, sys
path = sys.argv[1]
with open(path, "rb") as f:
    data = f.read(1 << 16)
assert data[:4] == b"\x7fELF" and data[4] == 2, f"{path}: not a 64-bit ELF file"
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
if 3 in types:
    sys.exit(f"{path}: not static (it names a program interpreter)")
print(f"{path}: static ({'static-pie' if 2 in types else 'non-PIE'})")
PY
}

build() {
    for target in "${TARGETS[@]}"; do
        echo "== cargo zigbuild --profile $PROFILE --target $target"
        local start=$SECONDS
        cargo zigbuild --locked --profile "$PROFILE" --target "$target"
        echo "built in $((SECONDS - start)) s"
        check_static "$(binary_of "$target")"
    done
}

size() { stat -c %s "$1"; }
# PATH, its size in bytes and in MiB.
report_size() {
    awk -v path="$1" -v bytes="$(size "$1")" \
        'BEGIN { printf "%-62s %10d bytes %6.1f MiB\n", path, bytes, bytes / 1048576 }'
}

pack() {
    mkdir -p "$DIST"
    rm -f "$DIST"/tokentally-*.tar.gz "$DIST"/tokentally_*.deb "$DIST/SHA256SUMS"
    local stage
    stage=$(mktemp -d)
    # The unit of a manual install (/usr/local/bin), as `systemd-unit`
    # prints it; made by the x86_64 binary, which runs here.
    "$(binary_of x86_64-unknown-linux-musl)" systemd-unit >"$stage/tokentally.service"
    for target in "${TARGETS[@]}"; do
        local name="tokentally-$VERSION-$target"
        mkdir -p "$stage/$name"
        cp "$(binary_of "$target")" LICENSE README.md "$stage/tokentally.service" "$stage/$name/"
        tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' \
            -C "$stage" -czf "$DIST/$name.tar.gz" "$name"
        cargo deb --target "$target" --profile "$PROFILE" --no-build --no-strip \
            --output "$DIST/"
    done
    rm -rf "$stage"
    (cd "$DIST" && sha256sum tokentally-*.tar.gz tokentally_*.deb >SHA256SUMS)
    echo "== artifacts"
    for target in "${TARGETS[@]}"; do
        report_size "$(binary_of "$target")"
    done
    for artifact in "$DIST"/tokentally-*.tar.gz "$DIST"/tokentally_*.deb; do
        report_size "$artifact"
    done
    cat "$DIST/SHA256SUMS"
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(tools build pack)
for step in "${steps[@]}"; do
    case "$step" in
        tools | build | pack) "$step" ;;
        *) echo "unknown step $step (tools, build, pack)" >&2; exit 2 ;;
    esac
done
