#!/usr/bin/env bash
# Scale benchmark: a site with 40 FortiGates keeps ~350,000 archives a year.
# Builds what such a site has after a year and a half, then prints the wall
# time and peak RSS of the commands that touch all of it:
#
#   - an inventory of 500,000 rows (100,000 archived objects, each with an
#     upload row and four later runs' skipped_exists rows);
#   - a bucket of 100,000 objects (s3s-fs on loopback) holding exactly them;
#   - a --dir of 20,000 new files (fgbackup gen-logs, 40 devices).
#
# Measured: upload of the 20,000 files with --manifest-key (its manifests
# list every archived row: 120,000 entries), ls of the whole inventory,
# verify --sample 1, verify --manifests --sample 1, and /stats of serve.
# Goal: peak RSS at most 64 MiB each, whatever the row count. The wall time
# of a listing is mostly s3s-fs's (it walks and sorts the whole bucket for
# every page of 1,000 keys); fgbackup's own share is its CPU time.
#
#   scripts/bench-scale.sh            (release build; about 10 minutes on 2 cores)
#   ROWS=100000 scripts/bench-scale.sh    (a smaller inventory: 20,000 objects)
#   FGBACKUP_BIN=path runs that binary (default target/release/fgbackup,
#   built when missing).
#   BENCH_SMOKE=1: 500 rows and 8 files, every stage in a second or two:
#   the check (tests/scripts.rs) that this script still runs.
#
# Needs s3s-fs (scripts/test.sh installs it), python3, GNU time and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
unset AWS_CA_BUNDLE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE
if [ -n "${BENCH_SMOKE:-}" ]; then
  ROWS=${ROWS:-500} FILES=${FILES:-8}
else
  ROWS=${ROWS:-500000} FILES=${FILES:-20000}
fi
OBJECTS=$((ROWS / 5))
BIN=${FGBACKUP_BIN:-${FGBACKUP:-target/release/fgbackup}}
[ -x "$BIN" ] || cargo build --release --locked
BIN=$(realpath "$BIN")
for tool in s3s-fs python3 curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench-scale.sh: $tool missing" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/fgbackup-scale.XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=scale AWS_SECRET_ACCESS_KEY=scale-secret-0123 RUST_LOG=warn
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EP="http://127.0.0.1:$port"
DB="$WORK/db/backup_records.db"
mkdir -p "$WORK/s3/fg-logs" "$WORK/db" "$WORK/empty" "$WORK/empty-archive"

echo "bench-scale: building $ROWS rows, $OBJECTS objects, $FILES files under $WORK" >&2
t0=$(date +%s)
# The inventory with fgbackup's own schema (an upload of nothing creates it).
"$BIN" upload --dir "$WORK/empty" --dest "file://$WORK/empty-archive" --db "$DB" --min-age 0 >/dev/null
python3 - "$DB" "$WORK/s3/fg-logs" "$OBJECTS" "$EP" <<'EOF'
import hashlib, os, sqlite3, sys
db, bucket, objects, ep = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(db)
c.execute("PRAGMA synchronous = OFF")
rows = []
for i in range(objects):
    dev = f"FGT{i % 40:02d}-SITE"
    day = 1 + (i // 40) % 365
    key = f"old/{dev}/{dev}-2025-{day:03d}-{i:07d}.log.gz"
    body = f"object {i}\n".encode()
    sha = hashlib.sha256(body).hexdigest()
    path = os.path.join(bucket, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    at = f"2025-01-01T00:00:00Z"
    date = "2025-06-01"
    url = f"{ep}/fg-logs/{key}"
    rows.append((key.rsplit("/", 1)[1], url, sha, at, date, 1, "uploaded", key, len(body)))
    for _ in range(4):
        rows.append((key.rsplit("/", 1)[1], url, sha, at, date, 0, "skipped_exists", key, len(body)))
    if len(rows) >= 50000:
        c.executemany("INSERT INTO backups (filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status, object_key, size_bytes) VALUES (?,?,?,?,?,?,?,?,?)", rows)
        rows = []
c.executemany("INSERT INTO backups (filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status, object_key, size_bytes) VALUES (?,?,?,?,?,?,?,?,?)", rows)
c.commit()
print(c.execute("SELECT count(*) FROM backups").fetchone()[0], "rows", file=sys.stderr)
EOF
devices=$((FILES < 40 ? FILES : 40))
"$BIN" gen-logs --out "$WORK/logs" --devices "$devices" --files "$((FILES / devices))" --size 2K --seed 7 >/dev/null
"$BIN" keygen --key "$WORK/m.key" >/dev/null
echo "bench-scale: built in $(($(date +%s) - t0)) s" >&2

# PORT: waits until something listens there (5 s at most).
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "bench-scale.sh: nothing listens on port $1" >&2; exit 1
}
s3s-fs --host 127.0.0.1 --port "$port" --access-key scale --secret-key scale-secret-0123 "$WORK/s3" >/dev/null 2>&1 &
wait_port "$port"

# LABEL COMMAND...: wall time and peak RSS (GNU time forks the command, so the
# figure is the command's own); the command's output goes to a log. A command that fails fails the bench.
declare -a over=() failed=()
measure() {
  local label=$1; shift
  local report="$WORK/time.$label"
  local rc=0
  /usr/bin/time -o "$report" -f "%e %U %S %M" "$@" >"$WORK/out.$label" 2>&1 || rc=$?
  local wall user sys rss
  read -r wall user sys rss < <(tail -1 "$report")
  awk -v l="$label" -v w="$wall" -v c="$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" -v k="$rss" -v rc="$rc" \
    'BEGIN { printf "%-34s wall=%7.2fs cpu=%7.2fs peak_rss=%6.1f MiB exit=%d\n", l, w, c, k / 1024, rc }'
  [ "$rss" -le $((64 * 1024)) ] || over+=("$label")
  [ "$rc" = 0 ] || failed+=("$label")
}

bucket=(--bucket fg-logs --endpoint "$EP" --db "$DB")
upload_label="upload $FILES files, manifest key"
measure "$upload_label" "$BIN" upload --dir "$WORK/logs" "${bucket[@]}" \
  --min-age 0 --retries 1 --manifest-key "$WORK/m.key" --no-progress
measure "ls (whole inventory)" "$BIN" ls --db "$DB"
measure "verify --sample 1" "$BIN" verify "${bucket[@]}" --sample 1 --no-progress
measure "verify --manifests --sample 1" "$BIN" verify "${bucket[@]}" --manifests \
  --public-key "$WORK/m.key.pub" --sample 1 --no-progress

# /stats of serve: the server's own peak after answering it.
api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APP_TOKENS=scale-token "$BIN" serve --db "$DB" --listen "127.0.0.1:$api_port" >/dev/null 2>&1 &
api=$!
wait_port "$api_port"
wall=$(curl -sf -H "Authorization: Bearer scale-token" -o "$WORK/stats.json" -w '%{time_total}' \
  "http://127.0.0.1:$api_port/stats")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$api/status")
kill "$api"; wait "$api" 2>/dev/null || true
awk -v w="$wall" -v k="$hwm" \
  'BEGIN { printf "%-34s wall=%7.2fs peak_rss=%6.1f MiB exit=0\n", "/stats (serve)", w, k / 1024 }'
[ "$hwm" -le $((64 * 1024)) ] || over+=("/stats")

for label in "$upload_label" "verify --sample 1" "verify --manifests --sample 1"; do
  tail -1 "$WORK/out.$label" | sed "s/^/  $label: /"
done
for label in "${failed[@]}"; do
  echo "bench-scale.sh: FAILED: $label exited non-zero:" >&2
  tail -20 "$WORK/out.$label" >&2
done
[ "${#failed[@]}" = 0 ] || exit 1
if [ "${#over[@]}" -gt 0 ]; then
  echo "bench-scale.sh: above 64 MiB: ${over[*]}" >&2
  exit 1
fi
echo "bench-scale.sh: every command stayed within 64 MiB at $ROWS rows"
