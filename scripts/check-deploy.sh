#!/usr/bin/env bash
# Deployment checks run by CI after the test suite:
#  1. static musl binaries for x86_64 and aarch64 (scripts/build-static.sh);
#  2. the smoke test with each: x86_64 natively, aarch64 under qemu-aarch64-static;
#  3. scripts/install.sh into a scratch root: twice (idempotent, env files kept),
#     then --uninstall;
#  4. systemd-analyze verify on the installed units, failing on any complaint.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"

bash scripts/build-static.sh
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
X86=dist/fgbackup-$VERSION-x86_64-unknown-linux-musl
ARM=dist/fgbackup-$VERSION-aarch64-unknown-linux-musl
bash scripts/smoke-static.sh "$X86"
bash scripts/smoke-static.sh "$ARM" qemu-aarch64-static

echo "== install.sh into a scratch root"
ROOT=$(mktemp -d /tmp/fgroot.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/var/log/fortinet"
bash scripts/install.sh --root "$ROOT" --binary "$X86"
echo "EDITED=1" >> "$ROOT/etc/default/backup_fg"
bash scripts/install.sh --root "$ROOT" --binary "$X86"
grep -q '^EDITED=1' "$ROOT/etc/default/backup_fg" || { echo "install.sh overwrote an env file" >&2; exit 1; }
[ "$(grep -c '^fgbackup:' "$ROOT/etc/passwd")" = 1 ] || { echo "install.sh added the user twice" >&2; exit 1; }
[ "$(stat -c %a "$ROOT/etc/default/backup_fg")" = 600 ] || { echo "env file mode is not 0600" >&2; exit 1; }
[ "$(stat -c %a "$ROOT/var/lib/backup_fg")" = 750 ] || { echo "database directory mode is not 0750" >&2; exit 1; }
"$ROOT/usr/local/bin/fgbackup" --version | grep -q x86_64-unknown-linux-musl

echo "== systemd-analyze verify"
if ! command -v systemd-analyze >/dev/null; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
UNITS=$(mktemp -d /tmp/fgunits.XXXXXX)
for u in backup_fg.service backup_fg.timer backup_api.service; do
  # Point the unit at the scratch root's binary and env files (verify checks they exist).
  sed -e "s|/usr/local/bin/fgbackup|$ROOT/usr/local/bin/fgbackup|" \
      -e "s|EnvironmentFile=/etc/default|EnvironmentFile=$ROOT/etc/default|" \
      "$ROOT/etc/systemd/system/$u" > "$UNITS/$u"
done
complaints=$(cd "$UNITS" && systemd-analyze verify ./backup_fg.service ./backup_fg.timer ./backup_api.service 2>&1 || true)
rm -rf "$UNITS"
if [ -n "$complaints" ]; then
  echo "systemd-analyze verify complained:" >&2
  echo "$complaints" >&2
  exit 1
fi
echo "   units verify cleanly"

bash scripts/install.sh --root "$ROOT" --uninstall
[ ! -e "$ROOT/usr/local/bin/fgbackup" ] && [ ! -e "$ROOT/etc/systemd/system/backup_fg.service" ] \
  && [ -e "$ROOT/etc/default/backup_fg" ] || { echo "--uninstall removed the wrong things" >&2; exit 1; }
echo "deploy checks: OK"
