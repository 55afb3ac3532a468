#!/usr/bin/env bash
# Longer-than-CI torture of fgbackup's safety promises, with the real binary
# and real servers. Each round attacks one promise many times and checks the
# one figure that matters: files lost (a log whose exact bytes are neither
# still on disk nor in the archive) must be 0.
#
#   scripts/torture.sh [ROUNDS]        (default 20 per kind; about 4 minutes on 2 cores)
#   ONLY="kill local" scripts/torture.sh 5    (just those kinds)
#
# Kinds of round:
#   kill     upload --delete to S3 (s3s-fs), SIGKILL at a random moment
#   restart  the S3 server killed and restarted at a random moment mid-run
#   local    upload --delete to a directory store, SIGKILL at a random moment
#   writers  two collectors (two databases) with the same keys and different
#            content upload --delete concurrently to one archive, random kills
#            (directory store; and S3, where s3s-fs's non-atomic conditional
#            writes are a server limit that is reported, not counted)
#   flood    the API under LimitNOFILE=1024 with more idle connections than
#            descriptors; it must answer /health afterwards and never exit
#   chain    upload --delete --manifest-key to S3, SIGKILL at a random moment
#            (the manifest step included), three times, then a clean run:
#            nothing lost, and verify --manifests finds no broken chain
#   prune    upload (with a manifest key) and prune --yes at the same moment,
#            then prune again: nothing lost, the chain never forks
#   reuse    a key archived, pruned, archived again with new content and its
#            file deleted, pruned again: the new content is never pruned
#
# Needs s3s-fs (scripts/test.sh installs it) and python3. Uses the release
# binary (built when missing) unless FGBACKUP points elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
unset AWS_CA_BUNDLE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE
ROUNDS=${1:-20}
BIN=${FGBACKUP:-target/release/fgbackup}
[ -x "$BIN" ] || cargo build --release --locked
command -v s3s-fs >/dev/null || { echo "torture.sh: s3s-fs missing (run scripts/test.sh once)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/fgbackup-torture.XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=torture AWS_SECRET_ACCESS_KEY=torture-secret-0123 RUST_LOG=warn
S3_PID=

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_s3() { # ROOT PORT
  s3s-fs --host 127.0.0.1 --port "$2" --access-key torture --secret-key torture-secret-0123 "$1" >/dev/null 2>&1 &
  S3_PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return; sleep 0.05; done
  echo "s3s-fs did not start" >&2; exit 1
}
stop_s3() { [ -n "$S3_PID" ] && kill -9 "$S3_PID" 2>/dev/null; wait "$S3_PID" 2>/dev/null || true; S3_PID=; }
rand_ms() { python3 -c "import random; print(random.randint($1,$2)/1000)"; }

# sha256 of every file under DIR, as "relative-path sha256" lines.
manifest() { (cd "$1" && find . -type f -printf '%P\0' | sort -z | xargs -0r sha256sum | awk '{print $2" "$1}'); }

# Files lost: originals (manifest MANIFEST of source SRC) whose bytes are
# neither at SRC/path nor in the archive ARCHIVE/[PREFIX]path, nor (with
# --on-conflict suffix) under the suffixed key.
lost() { # MANIFEST SRC ARCHIVE
  python3 - "$1" "$2" "$3" <<'EOF'
import hashlib, os, sys, glob
manifest, src, archive = sys.argv[1:4]
def sha(p):
    try:
        with open(p, 'rb') as f: return hashlib.sha256(f.read()).hexdigest()
    except OSError: return None
lost = 0
for line in open(manifest):
    rel, want = line.split()
    here = [os.path.join(src, rel), os.path.join(archive, rel)]
    stem, ext = os.path.splitext(rel)
    here.append(os.path.join(archive, f"{stem}.{want[:16]}{ext}"))
    if not any(sha(p) == want for p in here):
        lost += 1
        print(f"LOST {rel} {want} (source {src})", file=sys.stderr)
print(lost)
EOF
}

upload_s3() { # SRC DB PORT [extra...]
  local src=$1 db=$2 port=$3; shift 3
  "$BIN" upload --dir "$src" --bucket fg-logs --endpoint "http://127.0.0.1:$port" --db "$db" \
    --min-age 0 --retries 1 --delete "$@" >/dev/null 2>&1
}

total_lost=0; report=()
record() { report+=("$1: $2 rounds, files lost $3"); total_lost=$((total_lost + $3)); }

round_kill() {
  local d="$WORK/kill" lost_sum=0
  for r in $(seq "$ROUNDS"); do
    rm -rf "$d"; mkdir -p "$d/s3/fg-logs"; "$BIN" gen-logs --out "$d/logs" --devices 3 --files 8 --size 200K --seed "$r" >/dev/null
    manifest "$d/logs" > "$d/manifest"
    local port; port=$(free_port); start_s3 "$d/s3" "$port"
    for _ in 1 2 3; do
      upload_s3 "$d/logs" "$d/db" "$port" & local pid=$!
      sleep "$(rand_ms 20 600)"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    done
    upload_s3 "$d/logs" "$d/db" "$port" || true
    stop_s3
    lost_sum=$((lost_sum + $(lost "$d/manifest" "$d/logs" "$d/s3/fg-logs")))
  done
  record "kill -9 mid-upload (S3)" "$ROUNDS" "$lost_sum"
}

round_restart() {
  local d="$WORK/restart" lost_sum=0
  for r in $(seq "$ROUNDS"); do
    rm -rf "$d"; mkdir -p "$d/s3/fg-logs"; "$BIN" gen-logs --out "$d/logs" --devices 3 --files 8 --size 200K --seed "$((r + 100))" >/dev/null
    manifest "$d/logs" > "$d/manifest"
    local port; port=$(free_port); start_s3 "$d/s3" "$port"
    upload_s3 "$d/logs" "$d/db" "$port" & local pid=$!
    sleep "$(rand_ms 20 500)"; stop_s3; sleep "$(rand_ms 0 300)"; start_s3 "$d/s3" "$port"
    wait "$pid" 2>/dev/null || true
    upload_s3 "$d/logs" "$d/db" "$port" || true
    stop_s3
    lost_sum=$((lost_sum + $(lost "$d/manifest" "$d/logs" "$d/s3/fg-logs")))
  done
  record "S3 server restarted mid-run" "$ROUNDS" "$lost_sum"
}

round_local() {
  local d="$WORK/local" lost_sum=0
  for r in $(seq "$ROUNDS"); do
    rm -rf "$d"; "$BIN" gen-logs --out "$d/logs" --devices 2 --files 6 --size 2M --seed "$((r + 200))" >/dev/null
    manifest "$d/logs" > "$d/manifest"
    for _ in 1 2 3; do
      "$BIN" upload --dir "$d/logs" --dest "file://$d/archive" --db "$d/db" --min-age 0 --delete >/dev/null 2>&1 & local pid=$!
      sleep "$(rand_ms 20 400)"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    done
    # Age the dead runs' temporary files past the grace so this run may clean them.
    find "$d/archive/.fgbackup/tmp" -type f -exec touch -d '2 minutes ago' {} + 2>/dev/null || true
    "$BIN" upload --dir "$d/logs" --dest "file://$d/archive" --db "$d/db" --min-age 0 --delete >/dev/null 2>&1 || true
    lost_sum=$((lost_sum + $(lost "$d/manifest" "$d/logs" "$d/archive")))
    if [ -n "$(ls -A "$d/archive/.fgbackup/tmp" 2>/dev/null)" ]; then
      echo "temporary files left behind in round $r" >&2; lost_sum=$((lost_sum + 1))
    fi
  done
  record "kill -9 mid-write (directory store)" "$ROUNDS" "$lost_sum"
}

# Two collectors (two databases) with the same keys and different content,
# both with --delete, concurrently, one of them killed at a random moment,
# then both again with --on-conflict suffix. TARGET: dir or s3.
round_writers() {
  local target=$1 d="$WORK/writers-$1" lost_sum=0
  for r in $(seq "$ROUNDS"); do
    rm -rf "$d"; mkdir -p "$d/s3/fg-logs"
    # Same device names and hours, different seeds: same keys, other bytes.
    "$BIN" gen-logs --out "$d/a" --devices 2 --files 8 --size 100K --seed "$((r + 300))" >/dev/null
    "$BIN" gen-logs --out "$d/b" --devices 2 --files 8 --size 100K --seed "$((r + 400))" >/dev/null
    manifest "$d/a" > "$d/ma"; manifest "$d/b" > "$d/mb"
    local port archive
    if [ "$target" = s3 ]; then
      port=$(free_port); start_s3 "$d/s3" "$port"; archive="$d/s3/fg-logs"
      up() { upload_s3 "$d/$1" "$d/db$1" "$port" "${@:2}"; }
    else
      archive="$d/archive"
      up() { "$BIN" upload --dir "$d/$1" --dest "file://$archive" --db "$d/db$1" --min-age 0 --delete "${@:2}" >/dev/null 2>&1; }
    fi
    up a & local pa=$!
    up b & local pb=$!
    sleep "$(rand_ms 0 300)"; kill -9 "$pa" 2>/dev/null || true
    wait "$pa" "$pb" 2>/dev/null || true
    up a --on-conflict suffix & pa=$!
    up b --on-conflict suffix & pb=$!
    wait "$pa" "$pb" 2>/dev/null || true
    if [ "$target" = s3 ]; then stop_s3; fi
    lost_sum=$((lost_sum + $(lost "$d/ma" "$d/a" "$archive") + $(lost "$d/mb" "$d/b" "$archive")))
  done
  if [ "$target" = s3 ]; then
    # s3s-fs checks If-None-Match before it receives the body and renames the
    # object into place after: two PUTs of one key at the same instant can
    # both pass. A server limit (see docs/SAFETY.md S2), reported, not
    # counted; AWS S3 and MinIO make the check and the write one step.
    report+=("two writers, same keys, s3s-fs (non-atomic If-None-Match): $ROUNDS rounds, files lost $lost_sum (server limit, not counted)")
  else
    record "two writers, same keys (directory store)" "$ROUNDS" "$lost_sum"
  fi
}

round_flood() {
  local d="$WORK/flood" failures=0
  mkdir -p "$d/archive"; "$BIN" gen-logs --out "$d/logs" --devices 1 --files 2 --size 10K >/dev/null
  "$BIN" upload --dir "$d/logs" --dest "file://$d/archive" --db "$d/db" --min-age 0 >/dev/null 2>&1
  local port; port=$(free_port)
  APP_TOKENS=torture-token prlimit --nofile=1024 "$BIN" serve --db "$d/db" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
  local api=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  for r in $(seq "$ROUNDS"); do
    python3 - "$port" <<'EOF' || failures=$((failures + 1))
import socket, sys, time
port = int(sys.argv[1])
idle = []
for _ in range(1500):  # more than LimitNOFILE=1024
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2); idle.append(s)
    except OSError:
        break
for s in idle: s.close()
deadline = time.time() + 30
while time.time() < deadline:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if s.recv(64).startswith(b"HTTP/1.1 200"): sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
EOF
    kill -0 "$api" 2>/dev/null || { failures=$((failures + ROUNDS)); break; }
  done
  kill "$api" 2>/dev/null || true; wait "$api" 2>/dev/null || true
  report+=("API flood (1500 idle connections, nofile 1024): $ROUNDS rounds, rounds failed $failures")
  total_lost=$((total_lost + failures))
}

manifest_key() { # DIR: a signing key for the chain rounds
  [ -f "$1/m.key" ] || "$BIN" keygen --key "$1/m.key" >/dev/null
  echo "$1/m.key"
}

# Ages every row of the inventory DB by two years (prune candidates).
age_rows() {
  python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE backups SET uploaded_at = ?, backup_date = ?", ("2024-01-01T00:00:00Z", "2024-01-01"))
c.commit()' "$1"
}

verify_chain() { # DB PORT KEY: 0 when verify --manifests finds the chain whole
  "$BIN" verify --manifests --public-key "$3.pub" --bucket fg-logs \
    --endpoint "http://127.0.0.1:$2" --db "$1" --sample 1 >/dev/null 2>&1
}

round_chain() {
  local d="$WORK/chain" lost_sum=0 alarms=0
  for r in $(seq "$ROUNDS"); do
    rm -rf "$d"; mkdir -p "$d/s3/fg-logs"
    local key; key=$(manifest_key "$WORK")
    local port; port=$(free_port); start_s3 "$d/s3" "$port"
    for batch in 1 2 3; do
      "$BIN" gen-logs --out "$d/logs/b$batch" --devices 2 --files 6 --size 100K --seed "$((r * 10 + batch + 500))" >/dev/null
      manifest "$d/logs" >> "$d/manifest.all"
      upload_s3 "$d/logs" "$d/db" "$port" --manifest-key "$key" & local pid=$!
      sleep "$(rand_ms 20 700)"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    done
    upload_s3 "$d/logs" "$d/db" "$port" --manifest-key "$key" || true
    verify_chain "$d/db" "$port" "$key" || { alarms=$((alarms + 1)); echo "chain alarm in round $r" >&2; }
    stop_s3
    sort -u "$d/manifest.all" > "$d/manifest"
    lost_sum=$((lost_sum + $(lost "$d/manifest" "$d/logs" "$d/s3/fg-logs")))
  done
  record "kill -9 around the manifest step (S3), then verify --manifests" "$ROUNDS" "$((lost_sum + alarms))"
}

round_prune() {
  local d="$WORK/prune" lost_sum=0 alarms=0
  for r in $(seq "$ROUNDS"); do
    rm -rf "$d"; mkdir -p "$d/s3/fg-logs"
    local key; key=$(manifest_key "$WORK")
    local port; port=$(free_port); start_s3 "$d/s3" "$port"
    local ep="http://127.0.0.1:$port"
    "$BIN" gen-logs --out "$d/old" --devices 1 --files 4 --size 50K --seed "$((r + 600))" >/dev/null
    upload_s3 "$d/old" "$d/db" "$port" --manifest-key "$key" || true
    age_rows "$d/db"
    "$BIN" gen-logs --out "$d/new" --devices 2 --files 6 --size 100K --seed "$((r + 700))" >/dev/null
    manifest "$d/new" > "$d/manifest"
    upload_s3 "$d/new" "$d/db" "$port" --manifest-key "$key" & local pu=$!
    sleep "$(rand_ms 0 300)"
    "$BIN" prune --older-than 400 --yes --manifest-key "$key" --bucket fg-logs --endpoint "$ep" --db "$d/db" >/dev/null 2>&1 || true
    wait "$pu" 2>/dev/null || true
    # Whichever was refused the lock now runs after the other.
    "$BIN" prune --older-than 400 --yes --manifest-key "$key" --bucket fg-logs --endpoint "$ep" --db "$d/db" >/dev/null 2>&1 || true
    upload_s3 "$d/new" "$d/db" "$port" --manifest-key "$key" || true
    verify_chain "$d/db" "$port" "$key" || { alarms=$((alarms + 1)); echo "chain alarm in round $r" >&2; }
    stop_s3
    lost_sum=$((lost_sum + $(lost "$d/manifest" "$d/new" "$d/s3/fg-logs")))
  done
  record "upload and prune at once with a manifest key (S3), then verify --manifests" "$ROUNDS" "$((lost_sum + alarms))"
}

round_reuse() {
  local d="$WORK/reuse" lost_sum=0
  for r in $(seq "$ROUNDS"); do
    rm -rf "$d"; mkdir -p "$d/archive"
    "$BIN" gen-logs --out "$d/logs" --devices 1 --files 3 --size 50K --seed "$((r + 800))" >/dev/null
    "$BIN" upload --dir "$d/logs" --dest "file://$d/archive" --db "$d/db" --min-age 0 --delete >/dev/null 2>&1 || true
    age_rows "$d/db"
    "$BIN" prune --older-than 400 --yes --dest "file://$d/archive" --db "$d/db" >/dev/null 2>&1 || true
    # The same names again, new content (another seed, same device and hours).
    "$BIN" gen-logs --out "$d/logs" --devices 1 --files 3 --size 50K --seed "$((r + 900))" >/dev/null
    manifest "$d/logs" > "$d/manifest"
    "$BIN" upload --dir "$d/logs" --dest "file://$d/archive" --db "$d/db" --min-age 0 --delete >/dev/null 2>&1 || true
    "$BIN" prune --older-than 400 --yes --dest "file://$d/archive" --db "$d/db" >/dev/null 2>&1 || true
    lost_sum=$((lost_sum + $(lost "$d/manifest" "$d/logs" "$d/archive")))
  done
  record "key archived, pruned, archived again, pruned again (directory store)" "$ROUNDS" "$lost_sum"
}

# ONLY="local writers" runs just those kinds.
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
if want kill; then round_kill; fi
if want restart; then round_restart; fi
if want local; then round_local; fi
if want writers; then round_writers dir; round_writers s3; fi
if want flood; then round_flood; fi
if want chain; then round_chain; fi
if want prune; then round_prune; fi
if want reuse; then round_reuse; fi
printf '%s\n' "${report[@]}"
if [ "$total_lost" -ne 0 ]; then echo "torture.sh: FAILED" >&2; exit 1; fi
echo "torture.sh: every round survived, 0 files lost"
