#!/usr/bin/env bash
# Upload benchmark: fgbackup vs rclone copy, same data, same loopback S3
# server (s3s-fs), same run. Reports wall time, CPU seconds per GB and peak RSS.
#
#   scripts/bench.sh [SMALL_FILES] [BIG_FILES] [BIG_SIZE]
#   defaults: 400 files of ~100 KB and 3 files of 64 MiB (compressed sizes)
#
# Needs: s3s-fs (cargo install s3s-fs@0.14.1 --features binary --locked),
# rclone and GNU time (apt-get install rclone time). WORKERS sets parallelism (default 4).
#
# Measured on the 2-core development machine (2026-11-23, 403 files, 233 MiB):
#   fgbackup                  wall 3.2 s  CPU 15.1 s/GB  peak RSS 18.2 MiB
#   fgbackup --no-gzip-check  wall 2.3 s  CPU  7.0 s/GB  peak RSS 18.1 MiB
#   rclone copy               wall 1.2 s  CPU  5.2 s/GB  peak RSS 124 MiB
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${1:-400}
BIG=${2:-3}
BIG_SIZE=${3:-64M}
WORKERS=${WORKERS:-4}
S3S_FS=${S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}
command -v rclone >/dev/null || { echo "bench: rclone missing: apt-get install rclone" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: GNU time missing: apt-get install time" >&2; exit 2; }
[ -x "$S3S_FS" ] || { echo "bench: s3s-fs missing: cargo install s3s-fs@0.14.1 --features binary --locked" >&2; exit 2; }

cargo build --release --quiet
BIN=target/release/fgbackup
WORK=$(mktemp -d /tmp/fgbench.XXXXXX)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "== generating data in $WORK/logs"
$BIN gen-logs --out "$WORK/logs/small" --devices 4 --files $((SMALL / 4)) --size 100K --seed 1 >/dev/null
$BIN gen-logs --out "$WORK/logs/big" --devices "$BIG" --files 1 --size "$BIG_SIZE" --seed 2 >/dev/null
BYTES=$(find "$WORK/logs" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
FILES=$(find "$WORK/logs" -type f | wc -l)
echo "   $FILES files, $((BYTES / 1024 / 1024)) MiB"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/s3/fg-bench" "$WORK/s3/fg-nocheck" "$WORK/s3/rclone-bench"
"$S3S_FS" --host 127.0.0.1 --port "$PORT" --access-key benchkey --secret-key benchsecret "$WORK/s3" >/dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

# Tools in this environment may inherit CA variables that break plain-http endpoints.
unset AWS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
sync

echo "== upload of the same $FILES files with $WORKERS parallel transfers"
python3 scripts/measure.py fgbackup "$BYTES" -- \
  $BIN upload --dir "$WORK/logs" --bucket fg-bench --endpoint "http://127.0.0.1:$PORT" \
  --db "$WORK/fg.db" --min-age 0 --workers "$WORKERS" --retries 0
python3 scripts/measure.py "fgbackup --no-gzip-check" "$BYTES" -- \
  $BIN upload --dir "$WORK/logs" --bucket fg-nocheck --endpoint "http://127.0.0.1:$PORT" \
  --db "$WORK/fg2.db" --min-age 0 --workers "$WORKERS" --retries 0 --no-gzip-check
python3 scripts/measure.py rclone "$BYTES" -- \
  rclone copy "$WORK/logs" ":s3,provider=Other,endpoint='http://127.0.0.1:$PORT',access_key_id=benchkey,secret_access_key=benchsecret,region=us-east-1:rclone-bench" \
  --transfers "$WORKERS" --checkers "$WORKERS" --config /dev/null
echo "   targets: fgbackup wall <= rclone wall, cpu_per_GB <= 2 s, peak_rss <= 24 MiB (4 workers)"
