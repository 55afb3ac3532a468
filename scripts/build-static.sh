#!/usr/bin/env bash
# Builds the static release binaries: dist/fgbackup-<version>-<target> for
# every target in cross/targets, plus dist/SHA256SUMS. One command, from a
# clean checkout: it installs the cross toolchain first (cross/setup.sh).
#
# Reproducible: paths are remapped out of the binaries and the commit comes
# from git, so the same commit and toolchain give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cross/setup.sh
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
export FGBACKUP_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
export RUSTFLAGS="--remap-path-prefix=$PWD=/fgbackup --remap-path-prefix=$HOME/.cargo=/cargo -C target-feature=+crt-static"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p dist
rm -f dist/SHA256SUMS
for target in $(grep -v '^#' cross/targets); do
  echo "== building $target" >&2
  cargo zigbuild --release --locked --target "$target" --quiet
  out="dist/fgbackup-$VERSION-$target"
  cp "$CARGO_TARGET_DIR/$target/release/fgbackup" "$out"
  # Static: no program interpreter, no shared libraries.
  if readelf -l "$out" | grep -q INTERP || readelf -d "$out" | grep -q NEEDED; then
    echo "build-static: $out is not statically linked" >&2
    exit 1
  fi
  size=$(stat -c %s "$out")
  if [ "$size" -gt $((10 * 1024 * 1024)) ]; then
    echo "build-static: $out is $size bytes, over the 10 MiB budget" >&2
    exit 1
  fi
  echo "   $out: $((size / 1024)) KiB, static" >&2
done
(cd dist && sha256sum fgbackup-"$VERSION"-* > SHA256SUMS)
cat dist/SHA256SUMS
