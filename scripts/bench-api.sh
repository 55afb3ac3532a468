#!/usr/bin/env bash
# API benchmark: a 1,000,000-row inventory served by `fgbackup serve --ui`
# (release build), loaded by wrk with 16 connections; reports req/s, p99
# latency and the server's peak RSS. Then the same load on /backups?limit=100
# again while 1,000 idle connections (scripts/hold-connections.py) and 8
# event streams (`curl -N /events`) are open.
#
#   scripts/bench-api.sh [ROWS] [SECONDS]     defaults: 1000000 rows, 10 s per endpoint
#   FGBACKUP_BIN=path runs that binary instead of a release build.
#   BENCH_KEEP=1 keeps the work directory (and its inventory); BENCH_DB=path
#   serves that inventory instead of building one.
#   BENCH_SMOKE=1: 1,000 rows, 1 s per endpoint, and where wrk is missing
#   one request per endpoint with curl instead: the check (tests/scripts.rs)
#   that this script still runs; no figure means anything.
#
# Needs wrk (apt-get install wrk). Targets on the 2-core machine:
# /backups/last p99 <= 2 ms; /backups?limit=100 >= 10,000 req/s with p99
# <= 5 ms, also with the idle connections and streams; RSS <= 32 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=${BENCH_SMOKE:-}
if [ -n "$SMOKE" ]; then
  ROWS=${1:-1000} SECS=${2:-1}
else
  ROWS=${1:-1000000} SECS=${2:-10}
fi
WRK=1
if ! command -v wrk >/dev/null; then
  [ -n "$SMOKE" ] || { echo "bench-api: wrk missing: apt-get install wrk" >&2; exit 2; }
  echo "bench-api: smoke: wrk missing: one curl request per endpoint instead of the load" >&2
  WRK=
fi
if [ -n "${FGBACKUP_BIN:-}" ]; then
  BIN=$(realpath "$FGBACKUP_BIN")
else
  cargo build --release --quiet
  BIN=$PWD/target/release/fgbackup
fi
WORK=$(mktemp -d /tmp/fgapibench.XXXXXX)
[ -n "${BENCH_KEEP:-}" ] && echo "   work dir kept: $WORK" >&2
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$WORK"' EXIT

if [ -n "${BENCH_DB:-}" ]; then  # an inventory from an earlier run (BENCH_KEEP=1)
  ln -s "$(realpath "$BENCH_DB")" "$WORK/inv.db"
else
echo "== building a $ROWS-row inventory"
# A real run creates the schema; then rows are bulk-inserted in its shape.
$BIN gen-logs --out "$WORK/logs" --devices 1 --files 1 --size 10K >/dev/null
# The directory store never creates its root (an unmounted disk must not
# become an empty archive): the bench owns this one.
mkdir -p "$WORK/archive"
$BIN upload --dir "$WORK/logs" --dest "file://$WORK/archive" --db "$WORK/inv.db" --min-age 0 >/dev/null 2>&1
python3 - "$WORK/inv.db" "$ROWS" <<'PY'
import hashlib, sqlite3, sys
db, rows = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(db)
statuses = ["uploaded"] * 17 + ["skipped_exists"] * 2 + ["failed_upload"]
def gen():
    for i in range(rows):
        day = 1 + (i // 3000) % 28
        month = 1 + (i // 84000) % 12
        name = f"FGT60F-SITE{i % 40:02d}-2025-{month:02d}-{day:02d}T{i % 24:02d}00.log.gz"
        key = f"FGT60F-SITE{i % 40:02d}/{name}"
        sha = hashlib.sha256(str(i).encode()).hexdigest()
        yield (name, f"https://backup-logs-conf.s3.amazonaws.com/{key}", sha,
               f"2025-{month:02d}-{day:02d}T{i % 24:02d}:00:00Z", f"2025-{month:02d}-{day:02d}",
               i % 2, statuses[i % len(statuses)], key, f"/var/log/fortinet/{key}", 100000 + i % 5000, 40, None, 1)
conn.executemany("INSERT INTO backups (filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status,"
                 " object_key, source_path, size_bytes, duration_ms, error, run_id)"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", gen())
conn.commit()
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print("   rows:", conn.execute("SELECT count(*) FROM backups").fetchone()[0])
PY
fi
ls -lL "$WORK/inv.db" | awk '{printf "   database: %.0f MiB\n", $5/1048576}'

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Descriptors for 1,000 idle connections (two each) and the rest.
ulimit -n 8192 2>/dev/null || true
APP_TOKENS=bench-token RUST_LOG=warn $BIN serve --db "$WORK/inv.db" --listen "127.0.0.1:$PORT" --ui &
SERVER_PID=$!
HOLDER= STREAMS=()
trap '[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null; for p in "${STREAMS[@]}"; do kill "$p" 2>/dev/null; done
      [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$WORK"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
(echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || { echo "bench-api: serve never listened on $PORT" >&2; exit 1; }

load() {  # load PATH: wrk on PATH (one curl in the smoke run without wrk)
  local path=$1
  if [ -z "$WRK" ]; then
    echo "== curl $path (wrk skipped)"
    curl -sf -o /dev/null -w '   status: %{http_code}\n' -H "Authorization: Bearer bench-token" "http://127.0.0.1:$PORT$path"
    return
  fi
  echo "== wrk -t2 -c16 -d${SECS}s $path"
  wrk -t2 -c16 -d"${SECS}s" --latency -H "Authorization: Bearer bench-token" "http://127.0.0.1:$PORT$path" \
    >"$WORK/wrk.out"
  awk '/Requests\/sec/ {print "   req/s: " $2} / 99%/ {print "   p99:   " $2} /Non-2xx|Socket errors/ {print "   " $0}' "$WORK/wrk.out"
  # Answers that are errors measure nothing.
  ! grep -q "Non-2xx\|Socket errors: connect [1-9]" "$WORK/wrk.out" ||
    { echo "bench-api: FAILED: requests to $path failed" >&2; exit 1; }
}

load "/backups/last"
load "/backups?limit=100"
IDLE=1000 SUBS=8
[ -n "$SMOKE" ] && IDLE=20 SUBS=2
echo "== with $IDLE idle connections and $SUBS event streams open"
python3 scripts/hold-connections.py 127.0.0.1 "$PORT" "$IDLE" >"$WORK/holder.out" &
HOLDER=$!
for _ in $(seq 300); do grep -q holding "$WORK/holder.out" 2>/dev/null && break; sleep 0.1; done
grep -q holding "$WORK/holder.out" || { echo "bench-api: the idle connections were not all accepted" >&2; exit 1; }
for _ in $(seq "$SUBS"); do
  curl -sN -o /dev/null -H "Authorization: Bearer bench-token" "http://127.0.0.1:$PORT/events" &
  STREAMS+=($!)
done
for _ in $(seq 100); do
  [ "$(grep -lx api-events /proc/$SERVER_PID/task/*/comm 2>/dev/null | wc -l)" -ge "$SUBS" ] && break
  sleep 0.1
done
echo "   streams open: $(grep -lx api-events /proc/$SERVER_PID/task/*/comm 2>/dev/null | wc -l), server threads: $(ls /proc/$SERVER_PID/task | wc -l)"
load "/backups?limit=100"
echo "   server peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$SERVER_PID/status)"
