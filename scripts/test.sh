#!/usr/bin/env bash
# Runs the whole test suite: unit tests plus integration tests against real
# servers: S3 (s3s-fs, moto), SMTP (aiosmtpd) and a browser (Debian's chromium driven by
# Playwright), and the system tools the
# tests run, installed here when missing; python3 comes with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v s3s-fs >/dev/null; then
  echo "test.sh: installing s3s-fs (the S3 server the tests start), about 2-4 minutes" >&2
  cargo install s3s-fs@0.14.1 --features binary --locked
fi
# The email tests talk to a real SMTP server: aiosmtpd, from PyPI.
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "test.sh: installing aiosmtpd (the SMTP server the email tests start)" >&2
  python3 -m pip install --quiet aiosmtpd
fi
# The dashboard's test (tests/ui.rs) drives Debian's chromium with
# Playwright for Python, launched by path: no browser is downloaded.
if ! command -v chromium >/dev/null; then
  echo "test.sh: installing chromium (the browser the dashboard test drives)" >&2
  apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
if ! python3 -c 'import playwright.sync_api' 2>/dev/null; then
  echo "test.sh: installing playwright (drives chromium in the dashboard test)" >&2
  python3 -m pip install --quiet playwright
fi
# Some tests need a second, lenient S3 server: moto in server mode, from PyPI.
if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "test.sh: installing moto[server] (the second S3 server some tests start)" >&2
  python3 -m pip install --quiet 'moto[server]'
fi
# System tools the tests run: strace (fault tests time an attack with a
# delayed system call), script (progress tests use a pseudo-terminal),
# openssl (throwaway CAs), unshare/mount (a private tmpfs for disk-full),
# GNU time (the peak memory of a command at scale), setpriv and hostname
# (a container without CAP_LEASE, a second host name, in namespaces),
# bindfs (a FUSE mount without O_TMPFILE, where restore names its
# temporary files), haproxy and wrk (the benchmark scripts' smoke runs,
# tests/scripts.rs: TLS in front of s3s-fs, load on the API).
for need in strace:strace script:bsdutils openssl:openssl unshare:util-linux setpriv:util-linux mount:mount hostname:hostname /usr/bin/time:time bindfs:bindfs haproxy:haproxy wrk:wrk; do
  tool=${need%%:*} pkg=${need#*:}
  if ! command -v "$tool" >/dev/null; then
    echo "test.sh: installing $pkg (for $tool, which some tests run)" >&2
    apt-get install -y -qq "$pkg" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq "$pkg" >/dev/null; }
  fi
done
cargo test --locked "$@"
