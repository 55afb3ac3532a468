#!/usr/bin/env bash
# Installs what cross-compiling fgbackup to static musl binaries needs on a
# Debian machine with rustup: the two musl targets, zig (as the C compiler for
# the bundled SQLite and aws-lc) through cargo-zigbuild, and qemu-user-static
# to run the aarch64 binary in tests. Idempotent.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null
if ! command -v cargo-zigbuild >/dev/null || ! python3 -c 'import ziglang' 2>/dev/null; then
  python3 -m pip install --quiet ziglang cargo-zigbuild
fi
if ! command -v qemu-aarch64-static >/dev/null || ! command -v readelf >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq qemu-user-static binutils >/dev/null
fi
