#!/usr/bin/env bash
# Installs fgbackup on a collector: binary, system user, directories, env files
# (never overwriting existing ones), systemd units. Idempotent.
#
#   scripts/install.sh [--binary PATH] [--root DIR] [--log-dir DIR]
#   scripts/install.sh --uninstall [--root DIR]
#
# --binary    the fgbackup to install (default: dist/ for this machine's arch,
#             else target/release/fgbackup)
# --root      install under DIR instead of / (for packaging and tests: no
#             systemctl, the user is written to DIR/etc/passwd)
# --log-dir   the FortiGate log directory (default /var/log/fortinet); it gets
#             group fgbackup with group write, so verified files can be deleted
# --uninstall removes the binary and units; keeps the database and env files
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=/
BINARY=
LOG_DIR=/var/log/fortinet
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
    --log-dir) LOG_DIR=${2:?--log-dir needs a directory}; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
ROOT=${ROOT%/}
R() { printf '%s%s' "$ROOT" "$1"; }
say() { printf 'install.sh: %s\n' "$*"; }

BIN_DEST=$(R /usr/local/bin/fgbackup)
UNIT_DIR=$(R /etc/systemd/system)
UNITS="backup_fg.service backup_fg.timer backup_api.service"
live_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

if [ "$UNINSTALL" = 1 ]; then
  if live_systemd; then systemctl disable --now backup_fg.timer backup_api.service 2>/dev/null || true; fi
  for u in $UNITS; do rm -f "$UNIT_DIR/$u"; done
  rm -f "$BIN_DEST"
  if live_systemd; then systemctl daemon-reload; fi
  say "removed the binary and units; kept $(R /var/lib/backup_fg), $(R /etc/default/backup_fg), $(R /etc/default/backup_api) and the fgbackup user"
  exit 0
fi

if [ -z "$BINARY" ]; then
  arch=$(uname -m)
  BINARY=$(ls dist/fgbackup-*-"$arch"-unknown-linux-musl 2>/dev/null | sort | tail -1 || true)
  [ -n "$BINARY" ] || BINARY=target/release/fgbackup
fi
[ -x "$BINARY" ] || { echo "install.sh: no binary at $BINARY: run scripts/build-static.sh or pass --binary" >&2; exit 2; }

# System user and group.
if [ -z "$ROOT" ]; then
  getent group fgbackup >/dev/null || groupadd --system fgbackup
  getent passwd fgbackup >/dev/null || useradd --system --gid fgbackup --home-dir /var/lib/backup_fg \
    --shell /usr/sbin/nologin --comment "fgbackup log archiver" fgbackup
else
  mkdir -p "$(R /etc)"
  touch "$(R /etc/passwd)" "$(R /etc/group)"
  grep -q '^fgbackup:' "$(R /etc/group)" || echo "fgbackup:x:990:" >> "$(R /etc/group)"
  grep -q '^fgbackup:' "$(R /etc/passwd)" || \
    echo "fgbackup:x:990:990:fgbackup log archiver:/var/lib/backup_fg:/usr/sbin/nologin" >> "$(R /etc/passwd)"
fi
owner() { if [ -z "$ROOT" ]; then chown "$@"; fi; }

install -D -m 0755 "$BINARY" "$BIN_DEST"
install -d -m 0750 "$(R /var/lib/backup_fg)"
owner fgbackup:fgbackup "$(R /var/lib/backup_fg)"
if [ -d "$(R "$LOG_DIR")" ]; then
  owner :fgbackup "$(R "$LOG_DIR")"
  chmod g+rwx "$(R "$LOG_DIR")"
else
  say "log directory $LOG_DIR does not exist yet: create it, then give group fgbackup rwx on it"
fi
install -d -m 0755 "$(R /etc/default)"
for pair in backup_fg:etc/backup_fg.env.example backup_api:etc/backup_api.env.example; do
  name=${pair%%:*}; src=${pair#*:}
  dest=$(R "/etc/default/$name")
  if [ -e "$dest" ]; then
    say "kept existing $dest"
  else
    install -m 0600 "$src" "$dest"
    owner root:root "$dest"
    say "wrote $dest (mode 0600): edit it, it holds secrets"
  fi
done
install -d -m 0755 "$UNIT_DIR"
for u in $UNITS; do install -m 0644 "etc/systemd/$u" "$UNIT_DIR/$u"; done
if live_systemd; then
  systemctl daemon-reload
  say "enable with: systemctl enable --now backup_fg.timer backup_api.service"
fi
say "installed $("$BIN_DEST" --version 2>/dev/null || echo "$BIN_DEST")"
say "check the deployment with: set -a; . /etc/default/backup_fg; set +a; fgbackup doctor"
