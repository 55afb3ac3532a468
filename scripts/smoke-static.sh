#!/usr/bin/env bash
# Smoke test of a release binary as a user would run it: sample logs uploaded
# over HTTPS (private CA via --ca-file) to a loopback S3 server, deleted once
# verified, searched and grepped back, then the API queried.
#
#   scripts/smoke-static.sh BINARY [RUNNER]
#   e.g. scripts/smoke-static.sh dist/fgbackup-0.1.0-aarch64-unknown-linux-musl qemu-aarch64-static
#
# Needs s3s-fs, openssl and python3 (as the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:?usage: smoke-static.sh BINARY [RUNNER]}")
RUNNER=${2:-}
export PATH="$HOME/.cargo/bin:$PATH"
W=$(mktemp -d /tmp/fgsmoke.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
run() { $RUNNER "$BIN" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; fail "nothing listens on port $1"; }
unset AWS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR

version=$(run --version)
echo "smoke: $version"
case "$version" in *"target "*) ;; *) fail "--version lacks the target: $version" ;; esac

# A private CA and a certificate for 127.0.0.1.
(cd "$W" && {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=smoke CA"
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf
} >/dev/null 2>&1) || fail "openssl could not make the test CA"

S3_PORT=$(free_port)
mkdir -p "$W/s3/fg-smoke"
s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key smokekey --secret-key smokesecret "$W/s3" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$S3_PORT"
python3 tests/support/tls_proxy.py "$W/server.pem" "$W/server.key" "$S3_PORT" > "$W/proxy.port" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/proxy.port" ] && break; sleep 0.05; done
TLS_PORT=$(cat "$W/proxy.port")

run gen-logs --out "$W/logs" --devices 2 --files 2 --size 20K >/dev/null
AWS_ACCESS_KEY_ID=smokekey AWS_SECRET_ACCESS_KEY=smokesecret run upload --dir "$W/logs" --bucket fg-smoke \
  --endpoint "https://127.0.0.1:$TLS_PORT" --ca-file "$W/ca.pem" --db "$W/inv.db" --min-age 0 --delete \
  || fail "upload failed"
left=$(find "$W/logs" -name '*.gz' | wc -l)
[ "$left" = 0 ] || fail "$left files left after a verified upload with --delete"
stored=$(find "$W/s3/fg-smoke" -name '*.gz' | wc -l)
[ "$stored" = 4 ] || fail "expected 4 objects in the bucket, found $stored"

# The content index built during that upload, and grep reading the archive
# back over HTTPS: the same count of a device's lines as zcat over the bucket.
DEV=FGT60F-SITE01
matched=$(run search --db "$W/inv.db" --device "$DEV" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])') \
  || fail "search failed"
[ "$matched" = 2 ] || fail "search --device $DEV found $matched archives, expected 2"
want=$(find "$W/s3/fg-smoke" -name '*.gz' -exec zcat {} + | grep -c "devname=\"$DEV\"")
got=$(AWS_ACCESS_KEY_ID=smokekey AWS_SECRET_ACCESS_KEY=smokesecret run grep -c -F "devname=\"$DEV\"" \
  --device "$DEV" --bucket fg-smoke --endpoint "https://127.0.0.1:$TLS_PORT" --ca-file "$W/ca.pem" \
  --db "$W/inv.db" -q | awk -F: '{s += $NF} END {print s + 0}') || fail "grep failed"
[ "$got" = "$want" ] || fail "grep counted $got lines of $DEV, zcat $want"
echo "smoke: search and grep agree with zcat ($want lines of $DEV)"

API_PORT=$(free_port)
# exec: $! must be the server itself (or qemu running it), not a subshell.
(export APP_TOKENS=smoke-token; exec $RUNNER "$BIN" serve --db "$W/inv.db" --listen "127.0.0.1:$API_PORT" 2>"$W/serve.log") &
API_PID=$!
PIDS+=($API_PID)
wait_port "$API_PORT"
python3 - "$API_PORT" <<'PY' || fail "API answers are wrong"
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
health = json.load(urllib.request.urlopen(base + "/health"))
assert health["status"] == "ok", health
req = urllib.request.Request(base + "/backups?limit=10", headers={"Authorization": "Bearer smoke-token"})
rows = json.load(urllib.request.urlopen(req))
assert len(rows) == 4 and all(r["status"] == "uploaded" and r["deleted_local"] == 1 for r in rows), rows
print("smoke: API lists", len(rows), "verified, deleted rows")
PY
kill -TERM "$API_PID"
wait "$API_PID" || fail "serve did not exit 0 on SIGTERM"
echo "smoke: OK ($BIN${RUNNER:+ under $RUNNER})"
