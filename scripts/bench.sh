#!/usr/bin/env bash
# Upload and verify benchmark: fgbackup against rclone on the same data and
# the same loopback S3 server (s3s-fs) in one run, over HTTP and over HTTPS
# (haproxy terminating TLS in front of s3s-fs, with a throwaway CA), in copy
# mode (fgbackup upload vs rclone copy), delete mode (fgbackup upload --delete,
# which also inflates every .gz to prove it complete, vs rclone move) and
# verify mode (fgbackup verify --all vs rclone check --download, both reading
# back every object of one bucket fgbackup uploaded once, before the first
# verify round; rclone also reads the local copy it compares with).
# Prints wall time, client CPU seconds per GB and peak RSS of each run; a
# verify or check that does not report every object intact fails the bench.
#
#   scripts/bench.sh [SMALL_FILES] [BIG_FILES] [BIG_SIZE]
#   defaults: 200 files of ~100 KB and 4 files of 64 MiB (compressed sizes)
#   REPEAT=3 runs every pair three times; WORKERS sets parallelism (default 4);
#   ONLY="http-copy https-verify" picks modes (default: all six).
#   The binary is built in $CARGO_TARGET_DIR when set, else in target/;
#   FGBACKUP_BIN=path runs that binary instead (no build).
#   FG_ARGS="--index never" adds arguments to every fgbackup upload measured.
#   BWLIMIT=100M caps fgbackup's and rclone's uploads alike (--bwlimit), as
#   the uplink to a remote bucket does: the link, not the two cores shared
#   with the loopback server, is then the limit, and what delete mode gains
#   by inflating beside the send shows.
#   BENCH_SMOKE=1: every stage on a tiny data set (4 small files, one of
#   64 KiB, 2 workers), rclone's runs skipped where it is missing: the
#   check (tests/scripts.rs) that this script still runs; no figure means
#   anything.
#
# Needs: s3s-fs (cargo install s3s-fs@0.14.1 --features binary --locked),
# rclone, haproxy, openssl and GNU time (apt-get install rclone haproxy openssl time).
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=${BENCH_SMOKE:-}
if [ -n "$SMOKE" ]; then
  SMALL=${1:-4} BIG=${2:-1} BIG_SIZE=${3:-64K} WORKERS=${WORKERS:-2}
else
  SMALL=${1:-200} BIG=${2:-4} BIG_SIZE=${3:-64M} WORKERS=${WORKERS:-4}
fi
REPEAT=${REPEAT:-1}
ONLY=${ONLY:-"http-copy http-delete https-copy https-delete http-verify https-verify"}
S3S_FS=${S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}
RCLONE=1
for tool in rclone haproxy openssl; do
  command -v $tool >/dev/null && continue
  if [ -n "$SMOKE" ] && [ $tool = rclone ]; then
    echo "bench: smoke: rclone missing: its runs are skipped" >&2
    RCLONE=
    continue
  fi
  echo "bench: $tool missing: apt-get install $tool" >&2; exit 2
done
[ -x /usr/bin/time ] || { echo "bench: GNU time missing: apt-get install time" >&2; exit 2; }
[ -x "$S3S_FS" ] || { echo "bench: s3s-fs missing: cargo install s3s-fs@0.14.1 --features binary --locked" >&2; exit 2; }

if [ -n "${FGBACKUP_BIN:-}" ]; then
  BIN=$(realpath "$FGBACKUP_BIN")
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/fgbackup
fi
WORK=$(mktemp -d /tmp/fgbench.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "bench: port $1 never opened" >&2; exit 1; }

echo "== generating data in $WORK/logs"
$BIN gen-logs --out "$WORK/logs/small" --devices 4 --files $((SMALL / 4)) --size 100K --seed 1 >/dev/null
$BIN gen-logs --out "$WORK/logs/big" --devices "$BIG" --files 1 --size "$BIG_SIZE" --seed 2 >/dev/null
find "$WORK/logs" -type f -exec touch -d '1 hour ago' {} +
BYTES=$(find "$WORK/logs" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
FILES=$(find "$WORK/logs" -type f | wc -l)
echo "   $FILES files, $((BYTES / 1024 / 1024)) MiB, $WORKERS workers, $(nproc) CPUs"

S3_PORT=$(free_port)
mkdir -p "$WORK/s3"
"$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" --access-key benchkey --secret-key benchsecret "$WORK/s3" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$S3_PORT"

# A throwaway CA and a certificate for 127.0.0.1; haproxy terminates TLS.
TLS_PORT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$WORK/srv.key" -out "$WORK/srv.csr" 2>/dev/null
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial -days 1 \
  -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') -out "$WORK/srv.pem" 2>/dev/null
cat "$WORK/srv.pem" "$WORK/srv.key" > "$WORK/haproxy.pem"
cat > "$WORK/haproxy.cfg" <<EOF
global
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend tls
  bind 127.0.0.1:$TLS_PORT ssl crt $WORK/haproxy.pem
  default_backend s3
backend s3
  server s3s 127.0.0.1:$S3_PORT
EOF
haproxy -f "$WORK/haproxy.cfg" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$TLS_PORT"

# Tools in this environment may inherit CA variables that break the endpoints.
unset AWS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
N=0
rc_remote() { echo ":s3,provider=Other,endpoint='$1',access_key_id=benchkey,secret_access_key=benchsecret,region=us-east-1:$2"; }

# The bucket both verifiers read: uploaded once by fgbackup (keys are the
# paths relative to --dir, so rclone check can compare it with the same
# tree), with the inventory verify reads. Done on the first verify round.
VERIFY_READY=
prepare_verify() {
  [ -n "$VERIFY_READY" ] && return
  mkdir -p "$WORK/s3/fg-verify"
  cp -a "$WORK/logs" "$WORK/src-verify"
  $BIN upload --dir "$WORK/src-verify" --bucket fg-verify --endpoint "http://127.0.0.1:$S3_PORT" \
    --db "$WORK/fg-verify.db" --min-age 0 --workers "$WORKERS" --retries 0 >"$WORK/upload-verify.log" 2>&1 ||
    { echo "bench: FAILED: fgbackup upload of the verify data set:" >&2; tail -20 "$WORK/upload-verify.log" >&2; exit 1; }
  sync
  VERIFY_READY=1
}

# verify SCHEME ENDPOINT: fgbackup verify --all and rclone check --download of
# the same bucket; each must find all $FILES objects intact.
verify() {
  local scheme=$1 endpoint=$2 tls_fg=() tls_rc=() log
  [ "$scheme" = https ] && { tls_fg=(--ca-file "$WORK/ca.pem"); tls_rc=(--ca-cert "$WORK/ca.pem"); }
  prepare_verify
  N=$((N + 1))
  log="$WORK/verify-$N.log"
  python3 scripts/measure.py "fgbackup $scheme verify" "$BYTES" --log "$log" -- \
    $BIN verify --all --bucket fg-verify --endpoint "$endpoint" "${tls_fg[@]}" \
    --db "$WORK/fg-verify.db" --workers "$WORKERS" --retries 0 ||
    { echo "bench: FAILED: fgbackup verify --all over $scheme did not exit 0 (its output is above)" >&2; exit 1; }
  grep -q "^verify: $FILES objects checked ($FILES read back.*: $FILES ok, 0 missing, 0 altered, 0 size_mismatch, 0 extra, 0 error" "$log" ||
    { echo "bench: FAILED: fgbackup verify over $scheme did not read back all $FILES objects intact:" >&2; cat "$log" >&2; exit 1; }
  [ -n "$RCLONE" ] || { echo "   rclone check $scheme: skipped (no rclone)"; return; }
  log="$WORK/check-$N.log"
  python3 scripts/measure.py "rclone check $scheme" "$BYTES" --log "$log" -- \
    rclone check --download "$WORK/src-verify" "$(rc_remote "$endpoint" fg-verify)" \
    --checkers "$WORKERS" --config /dev/null "${tls_rc[@]}" ||
    { echo "bench: FAILED: rclone check --download over $scheme did not exit 0 (its output is above)" >&2; exit 1; }
  grep -q ": 0 differences found" "$log" && grep -q ": $FILES matching files" "$log" ||
    { echo "bench: FAILED: rclone check over $scheme did not match all $FILES files:" >&2; cat "$log" >&2; exit 1; }
}

# run MODE ROUND: one fgbackup run and one rclone run on fresh buckets (and,
# in delete mode, on fresh copies of the data).
run() {
  local scheme=${1%-*} action=${1#*-} round=$2 endpoint tls_fg=() tls_rc=() fg_extra=() verb=copy
  if [ "$scheme" = https ]; then
    endpoint="https://127.0.0.1:$TLS_PORT"; tls_fg=(--ca-file "$WORK/ca.pem"); tls_rc=(--ca-cert "$WORK/ca.pem")
  else
    endpoint="http://127.0.0.1:$S3_PORT"
  fi
  [ "$action" = verify ] && { verify "$scheme" "$endpoint"; return; }
  [ "$action" = delete ] && { fg_extra=(--delete); verb=move; }
  N=$((N + 1))
  mkdir -p "$WORK/s3/fg-$N" "$WORK/s3/rc-$N"
  rm -rf "$WORK/src-fg" "$WORK/src-rc"
  cp -a "$WORK/logs" "$WORK/src-fg"; cp -a "$WORK/logs" "$WORK/src-rc"
  sync
  python3 scripts/measure.py "fgbackup $scheme $action" "$BYTES" -- \
    $BIN upload --dir "$WORK/src-fg" --bucket "fg-$N" --endpoint "$endpoint" "${tls_fg[@]}" \
    --db "$WORK/fg-$N.db" --min-age 0 --workers "$WORKERS" --retries 0 "${fg_extra[@]}" ${FG_ARGS:-} \
    ${BWLIMIT:+--bwlimit "$BWLIMIT"}
  if [ -n "$RCLONE" ]; then
    python3 scripts/measure.py "rclone $verb $scheme" "$BYTES" -- \
      rclone $verb "$WORK/src-rc" "$(rc_remote "$endpoint" "rc-$N")" \
      --transfers "$WORKERS" --checkers "$WORKERS" --config /dev/null "${tls_rc[@]}" \
      ${BWLIMIT:+--bwlimit "$BWLIMIT"}
  else
    echo "   rclone $verb $scheme: skipped (no rclone)"
  fi
  if [ "$action" = delete ]; then
    left=$(find "$WORK/src-fg" -type f | wc -l)
    [ "$left" = 0 ] || { echo "bench: fgbackup --delete left $left files" >&2; exit 1; }
  fi
}

for mode in $ONLY; do
  echo "== $mode ($REPEAT round(s))"
  for round in $(seq "$REPEAT"); do run "$mode" "$round"; done
done
echo "   targets: copy wall <= rclone, cpu_per_GB <= 2.0, peak_rss <= 16 MiB;"
echo "            delete wall <= rclone move, cpu_per_GB <= 6.0;"
echo "            verify wall <= rclone check --download, peak_rss <= 16 MiB; https within 15% of http"
