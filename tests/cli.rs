//! The command line as a user meets it: the Python suite's database and env
//! names, the directory store, the run lock, the demo, and bad input.

use crate::common;

use common::*;

/// The schema and a few rows exactly as `backup_fg.py` wrote them.
fn python_suite_db(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS backups (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           filename TEXT NOT NULL,
           s3_url TEXT,
           sha256 TEXT,
           uploaded_at TEXT,
           backup_date TEXT,
           deleted_local INTEGER DEFAULT 0,
           status TEXT
         );
         CREATE INDEX IF NOT EXISTS idx_backups_uploaded_at ON backups(uploaded_at);
         INSERT INTO backups (filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status) VALUES
           ('old1.log.gz', 'https://backup-logs-conf.s3.amazonaws.com/old1.log.gz', 'aa', '2025-01-01T01:00:00.123456Z', '2025-01-01', 1, 'uploaded'),
           ('old2.log.gz', 'https://backup-logs-conf.s3.amazonaws.com/old2.log.gz', 'bb', '2025-01-02T01:00:00.000001Z', '2025-01-02', 0, 'skipped_exists'),
           ('old3.log.gz', NULL, NULL, '2025-01-03T01:00:00Z', '2025-01-03', 0, 'failed_upload');",
    )
    .unwrap();
}

#[test]
fn python_suite_database_is_migrated_and_keeps_its_rows() {
    let server = S3Server::start();
    let ws = Workspace::new();
    python_suite_db(&ws.db());
    ws.write_gz("new.log.gz", 200, 1);
    let out = ws.upload(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = ws.rows();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].filename, "old1.log.gz");
    assert_eq!(
        rows[0].uploaded_at.as_deref(),
        Some("2025-01-01T01:00:00.123456Z")
    );
    assert_eq!(rows[0].deleted_local, Some(1));
    assert_eq!(rows[1].status(), "skipped_exists");
    assert_eq!(rows[2].status(), "failed_upload");
    assert_eq!(rows[3].id, 4);
    assert_eq!(rows[3].status(), "uploaded");
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let proof_tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
             AND name IN ('verifications', 'verification_findings', 'manifests', 'prunes', 'push_tokens')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        proof_tables, 5,
        "the suite's database gains the proof tables and the upload tokens'"
    );
    // Its archived files were never indexed: search says it cannot see
    // into them (old1, old2 and the new upload, which copy mode does not index).
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM content_pending", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 3);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // The suite's index is still there.
    let idx: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'idx_backups_uploaded_at'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 1);
}

#[test]
fn directory_store_archives_verifies_and_deletes() {
    let ws = Workspace::new();
    let f = ws.write_gz("FGT-1/a.log.gz", 500, 2);
    let bytes = std::fs::read(&f).unwrap();
    let sha = sha256_file(&f);
    let archive = ws.archive();
    std::fs::create_dir_all(&archive).unwrap();
    let dest = format!("file://{}", archive.display());
    let logs = ws.logs();
    let db = ws.db();
    let args = [
        "upload",
        "--dir",
        logs.to_str().unwrap(),
        "--dest",
        &dest,
        "--db",
        db.to_str().unwrap(),
        "--min-age",
        "0",
    ];
    let out = ws.run(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(archive.join("FGT-1/a.log.gz")).unwrap(),
        bytes
    );
    // Store metadata lives where no key can land, in sha256sum format.
    let meta = std::fs::read_to_string(meta_path(&archive, "FGT-1/a.log.gz")).unwrap();
    assert_eq!(meta, format!("{sha}  FGT-1/a.log.gz\n"));
    assert!(!archive.join("FGT-1/a.log.gz.sha256").exists());
    // Second run with --delete: already archived, verified, so deleted.
    let mut args2 = args.to_vec();
    args2.push("--delete");
    let out = ws.run(&args2, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!f.exists());
    let rows = ws.rows();
    assert_eq!(rows[1].status(), "skipped_exists");
    assert_eq!(rows[1].deleted_local, Some(1));

    // A different file under the same key is a conflict, never overwritten.
    let g = ws.write_gz("FGT-1/a.log.gz", 10, 3);
    let out = ws.run(&args2, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ws.rows()[2].status(), "failed_conflict");
    assert!(g.exists());
    assert_eq!(
        std::fs::read(archive.join("FGT-1/a.log.gz")).unwrap(),
        bytes
    );
}

// docs/SAFETY.md S13
#[test]
fn second_concurrent_run_is_refused() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 4);
    std::fs::create_dir_all(ws.db().parent().unwrap()).unwrap();
    let lock_path = format!("{}.lock", ws.db().display());
    let held = std::fs::File::create(&lock_path).unwrap();
    held.try_lock().unwrap();
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    drop(held);
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// docs/SAFETY.md S4
#[test]
fn young_files_wait_for_a_later_run() {
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 10, 5);
    // Just written: younger than the default --min-age of 5 minutes.
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    std::fs::create_dir_all(ws.archive()).unwrap();
    let dest = format!("file://{}", ws.archive().display());
    let logs = ws.logs();
    let db = ws.db();
    let out = ws.run(
        &[
            "upload",
            "--dir",
            logs.to_str().unwrap(),
            "--dest",
            &dest,
            "--db",
            db.to_str().unwrap(),
            "--delete",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 newer than --min-age"),
        "{}",
        stdout(&out)
    );
    assert!(f.exists());
    assert!(ws.rows().is_empty());
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_2() {
    let ws = Workspace::new();
    let logs = ws.logs();
    let l = logs.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["upload", "--dir", l], "no destination"),
        (vec!["upload", "--bucket", "b-logs"], "no source directory"),
        (
            vec!["upload", "--dir", "/nonexistent/dir", "--bucket", "b-logs"],
            "--dir /nonexistent/dir cannot be read",
        ),
        (
            vec!["upload", "--dir", l, "--bucket", "b-logs", "--workers", "0"],
            "--workers",
        ),
        (
            vec![
                "upload",
                "--dir",
                l,
                "--bucket",
                "b-logs",
                "--min-age",
                "soon",
            ],
            "--min-age",
        ),
        (
            vec!["upload", "--dir", l, "--bucket", "Bad_Bucket"],
            "bucket name 'Bad_Bucket' is invalid",
        ),
        (
            vec![
                "upload",
                "--dir",
                l,
                "--bucket",
                "b-logs",
                "--endpoint",
                "minio:9000",
            ],
            "must start with http://",
        ),
        (
            vec![
                "upload",
                "--dir",
                l,
                "--bucket",
                "b-logs",
                "--part-size",
                "1M",
            ],
            "--part-size",
        ),
        (
            vec![
                "upload",
                "--dir",
                l,
                "--bucket",
                "b-logs",
                "--ca-file",
                "/nonexistent.pem",
            ],
            "--ca-file",
        ),
        (
            vec!["upload", "--dir", l, "--bucket", "b-logs", "--bogus"],
            "unknown option '--bogus' for 'upload'",
        ),
        (vec!["upload", "--dir"], "--dir needs a value"),
        (vec!["frobnicate"], "unknown command 'frobnicate'"),
    ];
    for (args, expect) in cases {
        let out = ws.run(&args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(expect),
            "{args:?}: expected '{expect}' in: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
        assert!(!err.contains(SECRET_KEY));
    }
    // Missing credentials name the variables to set.
    let out = ws
        .command(&["upload", "--dir", l, "--bucket", "b-logs"], &[])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no S3 credentials found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_settings_but_never_secret_values() {
    let ws = Workspace::new();
    for args in [
        vec!["--help"],
        vec!["upload", "--help"],
        vec!["inventory", "--help"],
    ] {
        let out = ws.run(&args, &[("GMAIL_APP_PASSWORD", "hunter2-app-pass")]);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(text.contains("USAGE"), "{text}");
        assert!(
            !text.contains(SECRET_KEY) && !text.contains(ACCESS_KEY) && !text.contains("hunter2")
        );
    }
    let out = ws.run(&["upload", "--help"], &[]);
    for flag in [
        "--dir",
        "--bucket",
        "--delete",
        "--workers",
        "--dry-run",
        "--db",
        "--endpoint",
        "--ca-file",
        "--dest",
        "--min-age",
        "--retries",
    ] {
        assert!(stdout(&out).contains(flag), "upload --help lacks {flag}");
    }
}

/// The files settings name are opened before anything runs: an unreadable
/// `--ca-file` or a manifest key that does not load is one line and exit 2,
/// for every command that takes them, and nothing is archived.
#[test]
fn files_the_settings_name_are_checked_before_the_run() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    std::fs::create_dir_all(ws.archive()).unwrap();
    let missing = ws.tmp.path().join("no-such-ca.pem");
    let ca = missing.to_str().unwrap();
    let logs = ws.logs();
    let l = logs.to_str().unwrap();
    for (cmd, extra) in [
        ("upload", vec!["--dir", l]),
        ("verify", vec![]),
        ("restore", vec!["--to", l]),
        ("prune", vec!["--older-than", "400"]),
    ] {
        let out = ws.on_archive(cmd, &[extra, vec!["--ca-file", ca]].concat());
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("--ca-file {ca} cannot be read")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let key = ws.tmp.path().join("not-a-key");
    std::fs::write(&key, "not a key").unwrap();
    let k = key.to_str().unwrap();
    let out = ws.on_archive(
        "upload",
        &["--dir", l, "--min-age", "0", "--manifest-key", k],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(k), "{}", stderr(&out));
    assert!(
        !ws.db().exists() || ws.rows().is_empty(),
        "nothing may be archived"
    );
    let out = ws.on_archive("doctor", &["--dir", l, "--ca-file", ca]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("[FAIL] configuration: --ca-file"),
        "{}",
        stdout(&out)
    );
}

/// Commands that only read the archive show, and take, only what they read:
/// no upload-only transfer options (issue 20: `verify --help` listed
/// `--gzip-check`, `--multipart-cutoff`...), and no `--workers` where the
/// work is one object at a time.
#[test]
fn read_only_commands_offer_only_the_options_they_read() {
    let ws = Workspace::new();
    let upload_only = [
        "--gzip-check",
        "--no-gzip-check",
        "--multipart-cutoff",
        "--part-size",
        "--storage-class",
        "--sse",
        "--object-lock",
        "--max-memory",
    ];
    for cmd in ["verify", "restore", "reindex", "prune"] {
        let help = stdout(&ws.run(&[cmd, "--help"], &[]));
        assert!(help.contains("--bwlimit RATE"), "{cmd}: {help}");
        for flag in upload_only {
            assert!(
                !help.contains(&format!("{flag} ")),
                "{cmd} --help lists {flag}"
            );
        }
        let out = ws.run(&[cmd, "--storage-class", "GLACIER"], &[]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).contains("--storage-class"), "{}", stderr(&out));
    }
    // prune works one object at a time; reindex reads in parallel only
    // for --content (the content index of objects read back).
    let help = stdout(&ws.run(&["prune", "--help"], &[]));
    assert!(!help.contains("--workers"), "prune --help lists --workers");
    let help = stdout(&ws.run(&["reindex", "--help"], &[]));
    assert!(
        help.contains("--workers") && help.contains("--content"),
        "{help}"
    );
    let help = stdout(&ws.run(&["upload", "--help"], &[]));
    for flag in upload_only {
        assert!(help.contains(flag), "upload --help lacks {flag}");
    }
}

#[test]
fn suite_unit_email_flags_work_even_with_empty_values() {
    // The suite's unit passes `--email-method ${EMAIL_METHOD}`...: systemd turns
    // an unset variable into an empty word. EMAIL_DRY_RUN keeps this offline.
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 6);
    let out = ws.upload_local(
        &[
            "--notify-email",
            "noc@example.org,sec@example.org",
            "--email-method",
            "",
            "--smtp-host",
            "",
            "--smtp-port",
            "",
        ],
        &[("EMAIL_DRY_RUN", "1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("To: <noc@example.org>, <sec@example.org>"),
        "{text}"
    );
    assert!(
        stderr(&out)
            .contains("EMAIL_DRY_RUN: email to noc@example.org, sec@example.org printed, not sent"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_runs_without_any_server_and_prints_the_inventory() {
    let ws = Workspace::new();
    let work = ws.tmp.path().join("demo");
    let out = ws.run(&["demo", "--workdir", work.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("12 files: uploaded=12"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" uploaded ")).count(),
        12,
        "{text}"
    );
    let out = ws.run(&["demo", "--workdir", work.to_str().unwrap()], &[]);
    assert!(
        stdout(&out).contains("skipped_exists=12"),
        "{}",
        stdout(&out)
    );
    let out = ws.run(
        &[
            "inventory",
            "--db",
            work.join("inventory.db").to_str().unwrap(),
            "--limit",
            "3",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.contains("skipped_exists"))
            .count(),
        3,
        "{}",
        stdout(&out)
    );
}

#[test]
fn full_destination_disk_fails_the_file_and_keeps_it() {
    let ws = Workspace::new();
    let archive = ws.tmp.path().join("small-disk");
    std::fs::create_dir(&archive).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&archive)
        .status()
        .expect("mount is needed for the disk-full test");
    assert!(
        mounted.success(),
        "mounting a 64 KiB tmpfs needs root (CI runs as root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(archive.clone());

    // ~200 KB of poorly compressible gzip: does not fit in 64 KiB.
    let big = ws.write_gz("big.log.gz", 4000, 7);
    assert!(std::fs::metadata(&big).unwrap().len() > 100_000);
    let small = ws.write_gz("small.log.gz", 20, 8);
    let dest = format!("file://{}", archive.display());
    let logs = ws.logs();
    let db = ws.db();
    let out = ws.run(
        &[
            "upload",
            "--dir",
            logs.to_str().unwrap(),
            "--dest",
            &dest,
            "--db",
            db.to_str().unwrap(),
            "--min-age",
            "0",
            "--delete",
            "--workers",
            "1",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = ws.rows();
    let failed = row_for(&rows, "big.log.gz");
    assert_eq!(failed.status(), "failed_upload");
    assert!(
        failed.error.as_deref().unwrap().contains("No space left"),
        "{failed:?}"
    );
    assert!(big.exists());
    assert_eq!(row_for(&rows, "small.log.gz").status(), "uploaded");
    assert!(!small.exists());
    // No partial file is left on the full disk.
    let leftovers: Vec<_> = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("big"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A command whose reader went away before it wrote (`| head` that has
/// read enough) ends quietly, never with a panic (it aborted with 134 and
/// "failed printing to stdout").
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::os::fd::FromRawFd;
    let ws = Workspace::new();
    let mut fds = [0; 2];
    // SAFETY: pipe fills the two descriptors it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both are ours; the read end is closed at once, as `head` does.
    let write_end = unsafe {
        libc::close(fds[0]);
        std::os::fd::OwnedFd::from_raw_fd(fds[1])
    };
    let out = ws
        .command(&["doctor"], &[])
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("failed printing"),
        "{err}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {err}",
        out.status
    );
}
