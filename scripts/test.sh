#!/usr/bin/env bash
# Runs the whole test suite: unit tests plus integration tests against a real
# S3-compatible server (s3s-fs), which this script installs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v s3s-fs >/dev/null; then
  echo "test.sh: installing s3s-fs (the S3 server the tests start), about 2-4 minutes" >&2
  cargo install s3s-fs@0.14.1 --features binary --locked
fi
cargo test --locked "$@"
