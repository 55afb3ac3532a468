#!/usr/bin/env bash
# A push against a plain upload of the same file to the same store:
# `fgbackup push FILE` over loopback to `serve --accept-uploads` (which
# archives it with the upload pipeline, gzip proof included, and deletes its
# spooled copy) against `fgbackup upload --delete` of the same file (the same
# pipeline on a local file). Reports the wall time of each (the push's from
# the client's start to its exit: hash, send, archive, answer), their ratio
# as throughput (upload wall / push wall, goal >= 0.80), and the peak RSS of
# the client and of the server (GNU time; goal <= 16 MiB each).
#
#   scripts/bench-push.sh            a 1 GiB .gz of generated FortiGate log, 3 rounds
#   SIZE=256M ROUNDS=5 scripts/bench-push.sh
#   BENCH_STORE=dir: a directory store instead of s3s-fs (the default when
#   s3s-fs is installed: cargo install s3s-fs@0.14.1 --features binary --locked).
#   INDEX=never: both without the content index (--index never), whose IP
#   filter takes 2% of an archive's size while it is built (16 MiB for 1 GiB).
#   FGBACKUP_BIN=path runs that binary instead of a release build.
#   BENCH_SMOKE=1: 8 MiB, 1 round, directory store (tests/scripts.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BENCH_SMOKE:-}" ]; then
  SIZE=8M ROUNDS=1 STORE=dir
else
  SIZE=${SIZE:-1024M} ROUNDS=${ROUNDS:-3} STORE=${BENCH_STORE:-}
fi
INDEX=${INDEX:-auto}
if [ -n "${FGBACKUP_BIN:-}" ]; then
  BIN=$(realpath "$FGBACKUP_BIN")
else
  cargo build --release --quiet
  BIN=$PWD/target/release/fgbackup
fi
S3S_FS=${S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}
if [ -z "$STORE" ]; then
  if [ -x "$S3S_FS" ]; then STORE=s3; else STORE=dir; fi
fi
[ -x /usr/bin/time ] || { echo "bench-push: GNU time missing (apt-get install time)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/fgpushbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

$BIN gen-logs --out "$WORK/src" --devices 1 --files 1 --size "$SIZE" >/dev/null
FILE=$(find "$WORK/src" -name '*.gz' | head -1)
BYTES=$(stat -c %s "$FILE")
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
if [ "$STORE" = s3 ]; then
  mkdir -p "$WORK/s3/bench"
  S3_PORT=$(free_port)
  "$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" --access-key benchkey --secret-key benchsecret "$WORK/s3" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$S3_PORT"
  DEST=(--bucket bench --endpoint "http://127.0.0.1:$S3_PORT")
else
  mkdir -p "$WORK/archive"
  DEST=(--dest "file://$WORK/archive")
fi
echo "== one file of $BYTES bytes (.gz of generated log), store: $STORE, --index $INDEX, $ROUNDS round(s)"
$BIN token keygen --token-key "$WORK/push.key" >/dev/null

for r in $(seq "$ROUNDS"); do
  # upload --delete of a copy (the copy is made before the clock starts).
  rm -rf "$WORK/up"; mkdir -p "$WORK/up/dev"; cp "$FILE" "$WORK/up/dev/"
  python3 scripts/measure.py "upload" "$BYTES" -- \
    $BIN upload --dir "$WORK/up" "${DEST[@]}" --prefix "up$r/" --delete --min-age 0 \
    --db "$WORK/up.db" --index "$INDEX" --no-progress -q | tee -a "$WORK/results"
  # push to a server started for the round, measured over its whole life.
  token=$($BIN token issue --prefix "push$r/" --db "$WORK/push.db" --token-key "$WORK/push.key" 2>/dev/null)
  port=$(free_port)
  python3 scripts/measure.py "server" "$BYTES" --log "$WORK/server$r.log" -- \
    env APP_TOKENS=benchread RUST_LOG=warn $BIN serve --listen "127.0.0.1:$port" --db "$WORK/push.db" \
    --accept-uploads --token-key "$WORK/push.key" --spool "$WORK/spool" --spool-min-free 1M --index "$INDEX" \
    "${DEST[@]}" >"$WORK/server$r.line" &
  measured=$!
  wait_port "$port"
  FGBACKUP_PUSH_TOKEN=$token python3 scripts/measure.py "push" "$BYTES" -- \
    $BIN push "$FILE" --url "http://127.0.0.1:$port" --no-progress | tee -a "$WORK/results"
  pkill -TERM -f -- "^$BIN serve --listen 127.0.0.1:$port" || true
  wait "$measured" || true
  tee -a "$WORK/results" <"$WORK/server$r.line"
done

python3 - "$WORK/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label = line.split()[0]
    wall = float(re.search(r"wall=\s*([\d.]+)s", line).group(1))
    rss = float(re.search(r"peak_rss=\s*([\d.]+)MiB", line).group(1))
    exit_code = int(re.search(r"exit=(-?\d+)", line).group(1))
    rows.setdefault(label, []).append((wall, rss, exit_code))
for label in ("upload", "push"):
    bad = [e for _, _, e in rows.get(label, []) if e != 0]
    if bad or label not in rows:
        sys.exit(f"bench-push: {label} failed: {rows.get(label)}")
up = statistics.median(w for w, _, _ in rows["upload"])
push = statistics.median(w for w, _, _ in rows["push"])
client = max(r for _, r, _ in rows["push"])
server = max(r for _, r, _ in rows["server"])
print(f"upload --delete wall (median): {up:.2f} s")
print(f"push wall (median):            {push:.2f} s")
print(f"push throughput vs upload:     {up / push:.2f} (goal >= 0.80)")
print(f"client peak RSS:               {client:.1f} MiB (goal <= 16)")
print(f"server peak RSS:               {server:.1f} MiB (goal <= 16)")
PY
