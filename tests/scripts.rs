//! The shipped benchmark scripts still run: each in its smoke mode
//! (`BENCH_SMOKE=1`: a tiny data set through every stage, a few seconds)
//! with the binary under test (`FGBACKUP_BIN`), and each must print its
//! result lines. A script that rots fails here, not in a user's hands.

use std::process::Command;

/// The scripts this file runs; a new `scripts/bench*.sh` must join them.
const SCRIPTS: [&str; 6] = [
    "bench-api.sh",
    "bench-events.sh",
    "bench-push.sh",
    "bench-scale.sh",
    "bench-search.sh",
    "bench.sh",
];

/// Runs `scripts/NAME` in smoke mode; its stdout once it exited 0.
fn smoke(name: &str) -> String {
    let out = Command::new("bash")
        .arg(format!("scripts/{name}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BENCH_SMOKE", "1")
        .env("FGBACKUP_BIN", env!("CARGO_BIN_EXE_fgbackup"))
        // The scripts' own knobs, in case the caller's shell has them.
        .env_remove("ONLY")
        .env_remove("REPEAT")
        .env_remove("WORKERS")
        .env_remove("ROWS")
        .env_remove("FILES")
        .env_remove("SIZE")
        .env_remove("ARCHIVES")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The one line of `out` that starts (after spaces) with `start`.
fn line<'a>(out: &'a str, start: &str) -> &'a str {
    let found: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with(start))
        .collect();
    assert_eq!(found.len(), 1, "one line starting '{start}' in:\n{out}");
    found[0]
}

#[test]
fn every_bench_script_has_a_smoke_run_here() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("bench") && n.ends_with(".sh"))
        .collect();
    found.sort();
    assert_eq!(
        found, SCRIPTS,
        "give the new script a smoke mode and a test"
    );
}

#[test]
fn bench_sh_runs_every_mode() {
    let out = smoke("bench.sh");
    for (scheme, action, verb) in [
        ("http", "copy", "copy"),
        ("http", "delete", "move"),
        ("https", "copy", "copy"),
        ("https", "delete", "move"),
        ("http", "verify", "check"),
        ("https", "verify", "check"),
    ] {
        let ours = line(&out, &format!("fgbackup {scheme} {action} "));
        assert!(
            ours.contains("peak_rss=") && ours.ends_with("exit=0"),
            "{ours}"
        );
        // rclone is compared with where it is installed.
        let theirs = match out.contains(&format!("rclone {verb} {scheme}: skipped")) {
            true => line(&out, &format!("rclone {verb} {scheme}:")),
            false => line(&out, &format!("rclone {verb} {scheme} ")),
        };
        assert!(
            theirs.ends_with("exit=0") || theirs.ends_with("skipped (no rclone)"),
            "{theirs}"
        );
    }
    line(&out, "targets:");
}

#[test]
fn bench_api_sh_loads_both_endpoints() {
    let out = smoke("bench-api.sh");
    line(&out, "rows: 1001");
    for path in ["/backups/last", "/backups?limit=100"] {
        let head = out
            .lines()
            .position(|l| {
                l.starts_with("== ") && (l.ends_with(path) || l.contains(&format!("{path} ")))
            })
            .unwrap_or_else(|| panic!("no run against {path}:\n{out}"));
        let next: Vec<&str> = out.lines().skip(head + 1).take(2).collect();
        assert!(
            next.iter().any(|l| l.trim_start().starts_with("req/s:"))
                || next.iter().any(|l| l.trim() == "status: 200"),
            "no result for {path}:\n{out}"
        );
    }
    line(&out, "== with 20 idle connections and 2 event streams open");
    line(&out, "streams open: 2");
    line(&out, "server peak RSS:");
}

#[test]
fn bench_events_sh_compares_a_stalled_subscriber() {
    let out = smoke("bench-events.sh");
    line(&out, "stalled / none:");
    let latency = line(&out, "{\"ms\"");
    assert!(latency.contains("\"events\": 50"), "{latency}");
}

#[test]
fn bench_scale_sh_measures_every_command() {
    let out = smoke("bench-scale.sh");
    for label in [
        "upload 8 files, manifest key ",
        "ls (whole inventory) ",
        "verify --sample 1 ",
        "verify --manifests --sample 1 ",
        "/stats (serve) ",
    ] {
        let l = line(&out, label);
        assert!(l.contains("peak_rss=") && l.ends_with("exit=0"), "{l}");
    }
    assert!(
        line(&out, "upload 8 files, manifest key:").contains("uploaded=8;"),
        "{out}"
    );
    for label in ["verify --sample 1:", "verify --manifests --sample 1:"] {
        let l = line(&out, label);
        assert!(
            l.contains("0 missing, 0 altered, 0 size_mismatch, 0 extra, 0 error"),
            "{l}"
        );
    }
    line(
        &out,
        "bench-scale.sh: every command stayed within 64 MiB at 500 rows",
    );
}

#[test]
fn bench_search_sh_measures_index_grep_and_search() {
    let out = smoke("bench-search.sh");
    for label in [
        "copy-index-never ",
        "copy-index-always ",
        "delete-index-never ",
        "delete-index-auto ",
        "zcat | grep -F ",
        "fgbackup grep -F, 1 worker ",
        "fgbackup grep -F --device ",
    ] {
        let l = line(&out, label);
        assert!(l.contains("peak_rss=") && l.ends_with("exit=0"), "{l}");
    }
    assert!(line(&out, "index:").contains("MB per GB of log"), "{out}");
    assert!(
        line(&out, "grep:").contains("left out by the content index"),
        "{out}"
    );
    assert!(
        line(&out, "search device+action+day:").contains("--coverage over a year:"),
        "{out}"
    );
}

#[test]
fn bench_push_sh_compares_a_push_with_an_upload() {
    let out = smoke("bench-push.sh");
    for start in [
        "push throughput vs upload:",
        "client peak RSS:",
        "server peak RSS:",
    ] {
        line(&out, start);
    }
}
