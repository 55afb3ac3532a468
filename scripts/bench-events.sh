#!/usr/bin/env bash
# Does a client that opens /events and never reads slow the uploader?
# A daemon (directory store) archives 1,000 files in one run, with no
# subscriber and with one stalled subscriber (it connects, asks for the
# stream and never reads), in turn; the run's own duration (runs.duration_ms)
# is compared. Also the latency of file_archived events to a reading
# subscriber: from the row's commit (polled) to the event's arrival.
#
#   scripts/bench-events.sh [FILES] [ROUNDS]     defaults: 1000 files, 9 rounds
#   FGBACKUP_BIN=path runs that binary instead of a release build.
#   BENCH_SMOKE=1: 50 files, 1 round (tests/scripts.rs: the script still runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BENCH_SMOKE:-}" ]; then
  FILES=${1:-50} ROUNDS=${2:-1}
else
  FILES=${1:-1000} ROUNDS=${2:-9}
fi
if [ -n "${FGBACKUP_BIN:-}" ]; then
  BIN=$(realpath "$FGBACKUP_BIN")
else
  cargo build --release --quiet
  BIN=$PWD/target/release/fgbackup
fi
WORK=$(mktemp -d /tmp/fgevbench.XXXXXX)
DAEMON=
trap '[ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null; rm -rf "$WORK"' EXIT

DEVICES=10
$BIN gen-logs --out "$WORK/src" --devices $DEVICES --files $(( (FILES + DEVICES - 1) / DEVICES )) --size 4K >/dev/null
echo "== $(find "$WORK/src" -name '*.gz' | wc -l) files of 4 KiB of log, $ROUNDS rounds"

# one_run MODE: a fresh daemon; MODE none|stalled|reading; prints the run's ms
one_run() {
  local mode=$1 dir="$WORK/run"
  rm -rf "$dir"; mkdir -p "$dir/empty" "$dir/archive"
  # --dir is a symlink swapped at once to the files: one run sees them all.
  cp -r "$WORK/src" "$dir/full"; ln -s empty "$dir/logs"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  APP_TOKENS=bench RUST_LOG=warn $BIN daemon --dir "$dir/logs" --dest "file://$dir/archive" \
    --db "$dir/inv.db" --min-age 0 --interval 2s --listen "127.0.0.1:$port" &
  DAEMON=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  python3 - "$port" "$mode" "$dir" "$WORK/src" <<'PY'
import json, os, shutil, socket, sqlite3, sys, threading, time
port, mode, d, src = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def subscribe(rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench\r\n\r\n")
    return s
arrivals = {}
def read(s):
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if b"event: file_archived" in ev:
                data = json.loads(ev.split(b"data: ", 1)[1])
                arrivals[data["id"]] = time.time()
sub = None
if mode == "stalled":
    sub = subscribe(rcvbuf=4096)
elif mode == "reading":
    sub = subscribe()
    threading.Thread(target=read, args=(sub,), daemon=True).start()
time.sleep(0.3)  # the stream is open (its head is written at once)
# The first run (empty) ends; then the files appear at once.
db = os.path.join(d, "inv.db")
def query(sql, *args):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            return c.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
while not query("SELECT 1 FROM runs WHERE finished_at IS NOT NULL"):
    time.sleep(0.02)
os.symlink("full", os.path.join(d, "new"))
os.replace(os.path.join(d, "new"), os.path.join(d, "logs"))
total = sum(len(f) for _, _, f in os.walk(src))
seen, last = {}, 0
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
while True:
    for (rid,) in conn.execute("SELECT id FROM backups WHERE id > ?", (last,)):
        seen[rid] = time.time()
        last = max(last, rid)
    row = conn.execute("SELECT duration_ms FROM runs WHERE files_seen >= ? AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1", (total,)).fetchone()
    if row:
        break
    time.sleep(0.002)
time.sleep(0.3)
out = {"ms": row[0]}
if mode == "reading":
    lat = sorted(arrivals[i] - seen[i] for i in arrivals if i in seen)
    if lat:
        out["latency_ms_p50"] = round(lat[len(lat) // 2] * 1000, 1)
        out["latency_ms_p99"] = round(lat[int(len(lat) * 0.99)] * 1000, 1)
        out["events"] = len(lat)
print(json.dumps(out))
PY
  kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; DAEMON=
}

# A first run warms the page cache and the filesystem; it is not counted.
one_run none >/dev/null
for r in $(seq "$ROUNDS"); do
  for mode in none stalled; do
    echo "$mode $(one_run $mode)" >>"$WORK/results"
  done
done
python3 - "$WORK/results" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, doc = line.split(" ", 1)
    runs.setdefault(mode, []).append(json.loads(doc)["ms"])
med = {m: statistics.median(v) for m, v in runs.items()}
for m, v in runs.items():
    print(f"   {m:8} run: median {med[m]:.0f} ms  {sorted(v)}")
print(f"   stalled / none: {med['stalled'] / med['none']:.3f}")
PY
echo "== event latency to a reading subscriber (row seen in the inventory -> event received)"
one_run reading | sed 's/^/   /'
