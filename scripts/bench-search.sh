#!/usr/bin/env bash
# Content index, search and grep benchmark (issue 21), four parts:
#
#   1. Index cost: upload --delete of the same logs to a directory store with
#      --index never, then --index auto (the gzip proof inflates either way;
#      the index adds the scan): CPU seconds per GB of log (inflated) and of
#      .gz, peak RSS, and the index's bytes per GB of log (the inventory's
#      growth). Also copy mode with --index never and --index always.
#   2. grep -F throughput per core: `zcat | grep -F` against `fgbackup grep
#      -F --workers 1` over every archive (CPU seconds; MB of log per CPU-s).
#   3. grep where the index chooses a tenth of the archives (one device of
#      ten): wall time against `zcat | grep -F` over all of them.
#   4. search on a synthetic inventory of 100,000 archives (40 devices, a
#      year, 20 facets each): device+action+day, and --coverage over a year
#      for one device; median of 7 runs.
#
#   scripts/bench-search.sh            (release build; ~5 minutes on 2 cores)
#   FILES=14 SIZE=2M ARCHIVES=100000 (the defaults: 280 MB of .gz) override the data sizes (FILES per device,
#   10 devices; SIZE compressed per file).
#   FGBACKUP_BIN=path runs that binary (default target/release/fgbackup).
#   BENCH_SMOKE=1: tiny sizes, every part in seconds: the check
#   (tests/scripts.rs) that this script still runs; no figure means anything.
#
# Needs python3, GNU time, gzip and grep.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BENCH_SMOKE:-}" ]; then
  FILES=${FILES:-2} SIZE=${SIZE:-64K} ARCHIVES=${ARCHIVES:-400}
else
  FILES=${FILES:-14} SIZE=${SIZE:-2M} ARCHIVES=${ARCHIVES:-100000}
fi
BIN=${FGBACKUP_BIN:-target/release/fgbackup}
[ -x "$BIN" ] || cargo build --release --locked
BIN=$(realpath "$BIN")
for tool in python3 /usr/bin/time gzip grep; do
  command -v "$tool" >/dev/null || { echo "bench-search.sh: $tool missing" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/fgbackup-search.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export RUST_LOG=warn

"$BIN" gen-logs --out "$WORK/logs" --devices 10 --files "$FILES" --size "$SIZE" --seed 7 >/dev/null
find "$WORK/logs" -type f -exec touch -d '1 hour ago' {} +
GZ=$(find "$WORK/logs" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
RAW=$(find "$WORK/logs" -type f -name '*.gz' -exec zcat {} + | wc -c)
N=$(find "$WORK/logs" -type f | wc -l)
echo "== $N archives, $((GZ / 1000000)) MB of .gz, $((RAW / 1000000)) MB of log, $(nproc) CPUs"

# upload LABEL DB EXTRA...: one upload of a fresh copy of the logs.
upload() {
  local label=$1 db=$2; shift 2
  rm -rf "$WORK/src" "$WORK/store-$label"; cp -a "$WORK/logs" "$WORK/src"; mkdir -p "$WORK/store-$label"
  sync
  python3 scripts/measure.py "$label" "$RAW" -- "$BIN" upload --dir "$WORK/src" \
    --dest "file://$WORK/store-$label" --db "$db" --min-age 0 --workers 4 "$@" |
    sed 's/cpu_per_GB/cpu_per_GB_of_log/'
}
echo "== 1. index cost (CPU per GB of log; .gz is $((RAW / GZ))x smaller)"
upload copy-index-never "$WORK/copy-never.db" --index never
upload copy-index-always "$WORK/copy-always.db" --index always
upload delete-index-never "$WORK/never.db" --delete --index never
upload delete-index-auto "$WORK/auto.db" --delete
python3 - "$WORK/never.db" "$WORK/auto.db" "$RAW" <<'EOF'
import sqlite3, sys
size = lambda p: (lambda c: c.execute("PRAGMA page_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0])(sqlite3.connect(p))
never, auto, raw = size(sys.argv[1]), size(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(sys.argv[2])
ips, facets, rows = c.execute("SELECT sum(length(ip_filter)), (SELECT count(*) FROM content_facets), count(*) FROM content").fetchone()
print(f"   index: {(auto - never) / (raw / 1e9) / 1e6:.2f} MB per GB of log "
      f"(IP filters {ips / (raw / 1e9) / 1e6:.2f} MB/GB, {facets} facets for {rows} archives)")
EOF

echo "== 2. grep -F throughput per core (every archive read)"
NEEDLE='action="deny"'
STORE="$WORK/store-delete-index-auto"
python3 scripts/measure.py "zcat | grep -F" "$RAW" -- sh -c "find '$STORE' -name '*.gz' -exec zcat {} + | grep -F -c -- '$NEEDLE' >/dev/null; true"
python3 scripts/measure.py "fgbackup grep -F, 1 worker" "$RAW" -- "$BIN" grep -F "$NEEDLE" -c \
  --dest "file://$STORE" --db "$WORK/auto.db" --workers 1
python3 scripts/measure.py "fgbackup grep -F, 4 workers" "$RAW" -- "$BIN" grep -F "$NEEDLE" -c \
  --dest "file://$STORE" --db "$WORK/auto.db" --workers 4
echo "   (MB of log per CPU-s: $((RAW / 1000000)) MB / cpu above)"

echo "== 3. grep where the index chooses one device of ten"
DEV=$(ls "$WORK/logs" | head -1)
python3 scripts/measure.py "zcat | grep -F, all archives" "$RAW" -- sh -c "find '$STORE' -name '*.gz' -exec zcat {} + | grep -F -- '$NEEDLE' >/dev/null; true"
python3 scripts/measure.py "fgbackup grep -F --device" "$RAW" --log "$WORK/grep-dev.log" -- "$BIN" grep -F "$NEEDLE" \
  --device "$DEV" --dest "file://$STORE" --db "$WORK/auto.db"
tail -1 "$WORK/grep-dev.log" | sed 's/^/   /'

echo "== 4. search on a synthetic inventory of $ARCHIVES archives"
SDB="$WORK/synthetic.db"
mkdir -p "$WORK/empty" "$WORK/empty-store"
"$BIN" upload --dir "$WORK/empty" --dest "file://$WORK/empty-store" --db "$SDB" --min-age 0 >/dev/null
python3 - "$SDB" "$ARCHIVES" <<'EOF'
import random, sqlite3, sys
db, archives = sys.argv[1], int(sys.argv[2])
random.seed(3)
c = sqlite3.connect(db)
c.execute("PRAGMA synchronous = OFF")
devices = [f"FGT60F-SITE{d:02d}" for d in range(40)]
per_day = max(1, -(-archives // (40 * 365)))
kinds = [("traffic", "forward", a) for a in ("accept", "deny", "close", "timeout", "client-rst", "server-rst")] + \
        [("traffic", "local", a) for a in ("accept", "deny")] + \
        [("utm", s, a) for s in ("webfilter", "ips", "app-ctrl") for a in ("passthrough", "blocked", "pass")] + \
        [("event", s, a) for s in ("system", "vpn", "user") for a in ("login", "logout")]
kinds = kinds[:20]
t0 = 1767225600  # 2026-01-01
backups, content, facets = [], [], []
n = 0
for day in range(365):
    for d, dev in enumerate(devices):
        for k in range(per_day):
            if n >= archives:
                break
            n += 1
            key = f"{dev}/{dev}-{day:03d}-{k}.log.gz"
            sha = f"{n:064x}"
            start = t0 + day * 86400 + k * 86400 // per_day
            backups.append((key.split('/')[-1], sha, "2026-01-01T00:00:00Z", "2026-01-01", "uploaded", key, 1000000))
            content.append((n, key, sha, start, start + 86400 // per_day - 1, 100000))
            ymd = __import__("time").strftime("%Y-%m-%d", __import__("time").gmtime(start))
            for (t, s, a) in kinds:
                facets.append((n, ymd, f"FG100F{d:010d}", dev, "root", t, s, a, random.randint(10, 9000), start, start + 3000))
c.executemany("INSERT INTO backups (filename, sha256, uploaded_at, backup_date, status, object_key, size_bytes) VALUES (?,?,?,?,?,?,?)", backups)
c.executemany("INSERT INTO content (id, object_key, sha256, indexed_at, first_at, last_at, lines, log_bytes, unparsed, without_time, ip_filter) VALUES (?,?,?,'2026-01-01T00:00:00Z',?,?,?,0,0,0,zeroblob(4096))", content)
c.executemany("INSERT INTO content_facets (content_id, day, devid, devname, vd, log_type, subtype, action, overflow, lines, first_at, last_at) VALUES (?,?,?,?,?,?,?,?,0,?,?,?)", facets)
c.commit()
c.execute("ANALYZE")
print(f"   {n} archives, {len(facets)} facets")
EOF
python3 - "$BIN" "$SDB" <<'EOF'
import statistics, subprocess, sys, time
bin, db = sys.argv[1], sys.argv[2]
def median_ms(args):
    runs = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([bin] + args + ["--db", db], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs)
day = median_ms(["search", "--device", "FGT60F-SITE07", "--action", "deny", "--since", "2026-03-14", "--until", "2026-03-14"])
cov = median_ms(["search", "--device", "FGT60F-SITE07", "--coverage", "--since", "2026-01-01", "--until", "2026-12-31"])
print(f"   search device+action+day: {day:.1f} ms (goal < 50); --coverage over a year: {cov:.1f} ms (goal < 200)")
EOF
