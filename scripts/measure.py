#!/usr/bin/env python3
"""Run a command under GNU time and report wall time, CPU and peak RSS.

Usage: measure.py LABEL BYTES [--log FILE] -- COMMAND [ARGS...]
Prints one line: LABEL wall cpu cpu-per-GB peak-RSS exit-code.
With --log, the command's stdout and stderr go to FILE (so a caller can check
what it reported); otherwise stdout is discarded and stderr shown on failure.

GNU time (a small C program) forks the command, so the peak RSS is the
command's own; a child of this Python process would inherit Python's
high-water mark through fork/vfork and report that instead.
"""
import os
import subprocess
import sys
import tempfile


def main():
    label, nbytes = sys.argv[1], int(sys.argv[2])
    sep = sys.argv.index("--")
    opts, cmd = sys.argv[3:sep], sys.argv[sep + 1:]
    log = opts[opts.index("--log") + 1] if "--log" in opts else None
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        timed = ["/usr/bin/time", "-o", report.name, "-f", "%e %U %S %M"] + cmd
        if log:
            with open(log, "wb") as out:
                proc = subprocess.run(timed, stdout=out, stderr=subprocess.STDOUT)
            with open(log, "rb") as out:
                proc.stderr = out.read()
        else:
            proc = subprocess.run(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        fields = report.read().split()[-4:]
    wall, user, system, rss_kb = float(fields[0]), float(fields[1]), float(fields[2]), int(fields[3])
    cpu = user + system
    gb = nbytes / 1e9
    print(f"{label:<28} wall={wall:6.2f}s cpu={cpu:6.2f}s cpu_per_GB={cpu / gb:6.2f}s "
          f"peak_rss={rss_kb / 1024.0:6.1f}MiB exit={proc.returncode}")
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
