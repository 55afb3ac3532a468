//! `fgbackup upload` against a real S3-compatible server (s3s-fs).

use crate::common;

use common::*;

#[test]
fn uploads_verifies_records_and_rerun_skips() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let a = ws.write_gz("FGT-A/a-2026-11-22.log.gz", 2000, 1);
    let b = ws.write_gz("FGT-B/b-2026-11-22.log.gz", 3000, 2);
    ws.write_raw("FGT-A/notes.txt", b"not matched by *.gz");

    let out = ws.upload(&server, &["--prefix", "site-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("uploaded=2"), "{}", stdout(&out));

    let rows = ws.rows();
    assert_eq!(rows.len(), 2);
    for (path, key) in [
        (&a, "site-1/FGT-A/a-2026-11-22.log.gz"),
        (&b, "site-1/FGT-B/b-2026-11-22.log.gz"),
    ] {
        let row = row_for(&rows, key);
        let local_sha = sha256_file(path);
        assert_eq!(row.status(), "uploaded");
        assert_eq!(row.sha256.as_deref(), Some(local_sha.as_str()));
        assert_eq!(row.filename, path.file_name().unwrap().to_str().unwrap());
        assert_eq!(row.deleted_local, Some(0));
        assert_eq!(
            row.s3_url.as_deref(),
            Some(format!("{}/{}/{}", server.endpoint(), BUCKET, key).as_str()),
            "base URL only, no presign query"
        );
        assert!(row.uploaded_at.as_deref().unwrap().ends_with('Z'));
        assert_eq!(row.backup_date.as_deref().unwrap().len(), 10);
        // The server holds the same bytes and the sha256 metadata.
        assert_eq!(
            std::fs::read(server.object_path(BUCKET, key)).unwrap(),
            std::fs::read(path).unwrap()
        );
        assert_eq!(server.head_sha256(key).as_deref(), Some(local_sha.as_str()));
        assert!(path.exists(), "no --delete: local file kept");
    }
    assert!(
        !server
            .object_path(BUCKET, "site-1/FGT-A/notes.txt")
            .exists()
    );

    // A second run finds both archived and sends nothing.
    let out = ws.upload(&server, &["--prefix", "site-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = ws.rows();
    assert_eq!(rows.len(), 4);
    assert!(
        rows[2..].iter().all(|r| r.status() == "skipped_exists"),
        "{rows:#?}"
    );
    let text = stdout(&out);
    assert!(text.contains("nothing sent"), "{text}");
    assert!(!text.contains("/s)"), "{text}");
    assert_eq!(
        ws.runs(),
        vec![("ok".to_string(), Some(0)), ("ok".to_string(), Some(0))]
    );
}

// docs/SAFETY.md S6
#[test]
fn delete_removes_only_verified_files() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let good = ws.write_gz("good.log.gz", 1000, 3);
    let good_bytes = std::fs::read(&good).unwrap();
    let out = ws.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!good.exists(), "verified file deleted");
    let rows = ws.rows();
    assert_eq!(rows[0].status(), "uploaded");
    assert_eq!(rows[0].deleted_local, Some(1));
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, "good.log.gz")).unwrap(),
        good_bytes
    );

    // DELETE_AFTER from the suite's env file works the same way.
    let again = ws.write_gz("again.log.gz", 500, 4);
    let logs = ws.logs();
    let db = ws.db();
    let endpoint = server.endpoint();
    let out = ws.run(
        &["upload", "--endpoint", &endpoint, "--min-age", "0"],
        &[
            ("DIR", logs.to_str().unwrap()),
            ("BUCKET", BUCKET),
            ("DB_PATH", db.to_str().unwrap()),
            ("DELETE_AFTER", "true"),
            ("WORKERS", "2"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!again.exists());
    assert_eq!(row_for(&ws.rows(), "again.log.gz").deleted_local, Some(1));
}

// docs/SAFETY.md S2
#[test]
fn existing_different_object_is_a_conflict_and_never_overwritten() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let local = ws.write_gz("fw.log.gz", 800, 5);
    let client = server.client(BUCKET);
    // Someone else's object, with other content and its own sha256.
    let other = b"other content".to_vec();
    let r = client
        .put_object_builder("fw.log.gz", &other)
        .with_metadata("sha256", "00".repeat(32))
        .unwrap()
        .execute()
        .unwrap();
    assert_eq!(r.status_code(), 200);
    // And an object without metadata at another key.
    let nometa = ws.write_gz("nometa.log.gz", 100, 6);
    client.put_object("nometa.log.gz", b"x").unwrap();

    let out = ws.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(1), "any failure exits 1");
    let rows = ws.rows();
    let conflict = row_for(&rows, "fw.log.gz");
    assert_eq!(conflict.status(), "failed_conflict");
    assert!(
        conflict
            .error
            .as_deref()
            .unwrap()
            .contains("not overwritten")
    );
    assert_eq!(row_for(&rows, "nometa.log.gz").status(), "failed_nometa");
    assert!(local.exists() && nometa.exists(), "files kept");
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, "fw.log.gz")).unwrap(),
        other
    );
    assert!(
        stderr(&out).contains("failed_conflict fw.log.gz"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.runs(), vec![("failed".to_string(), Some(1))]);
}

#[test]
fn truncated_gzip_is_archived_but_never_deleted() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let full = ws.write_gz("cut.log.gz", 3000, 7);
    let data = std::fs::read(&full).unwrap();
    let cut = &data[..data.len() / 2];
    std::fs::write(&full, cut).unwrap();
    set_old_mtime(&full);

    let out = ws.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(1));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_gzip");
    assert_eq!(row.deleted_local, Some(0));
    assert!(
        row.error.as_deref().unwrap().contains("ends early"),
        "{row:?}"
    );
    assert!(full.exists(), "truncated file kept");
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, "cut.log.gz")).unwrap(),
        cut,
        "archived byte for byte"
    );
}

#[test]
fn large_file_goes_multipart_with_metadata() {
    let server = S3Server::start();
    let ws = Workspace::new();
    // 12 MiB of incompressible data: three 5 MiB parts.
    let big = ws.write_noise_gz("big.log.gz", 12);

    let out = ws.upload(
        &server,
        &[
            "--delete",
            "--workers",
            "2",
            "--multipart-cutoff",
            "5MiB",
            "--part-size",
            "5MiB",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "uploaded");
    assert_eq!(row.deleted_local, Some(1));
    assert!(!big.exists());
    let stored = server.object_path(BUCKET, "big.log.gz");
    assert_eq!(sha256_file(&stored), row.sha256.clone().unwrap());
    assert_eq!(server.head_sha256("big.log.gz"), row.sha256);
    assert_eq!(server.open_multipart_uploads(), Vec::<String>::new());
}

#[test]
fn dry_run_writes_nothing() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let f = ws.write_gz("x/one.log.gz", 100, 8);
    let out = ws.upload(&server, &["--dry-run", "--delete"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("would_upload") && text.contains("x/one.log.gz"),
        "{text}"
    );
    assert!(f.exists());
    assert!(!ws.db().exists(), "no database written by a dry run");
    assert!(!server.object_path(BUCKET, "x/one.log.gz").exists());
}

#[test]
fn server_down_leaves_files_and_a_truthful_run() {
    let mut server = S3Server::start();
    let ws = Workspace::new();
    let f = ws.write_gz("kept.log.gz", 100, 9);
    server.stop();
    let out = ws.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot reach"), "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("fgbackup: error"))
            .count(),
        1,
        "{err}"
    );
    assert!(f.exists());
    assert!(ws.rows().is_empty());
    assert_eq!(ws.runs(), vec![("failed".to_string(), Some(1))]);
}

#[test]
fn missing_bucket_and_bad_credentials_are_clear_errors() {
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 10);
    let logs = ws.logs();
    let db = ws.db();
    let endpoint = server.endpoint();
    let base = [
        "upload",
        "--dir",
        logs.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--db",
        db.to_str().unwrap(),
        "--min-age",
        "0",
    ];

    let mut args = base.to_vec();
    args.extend(["--bucket", "no-such-bucket"]);
    let out = ws.run(&args, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bucket 'no-such-bucket' does not exist"),
        "{}",
        stderr(&out)
    );

    let mut args = base.to_vec();
    args.extend(["--bucket", BUCKET]);
    let wrong_secret = "WRONG-secret-value-xyz";
    let out = ws.run(&args, &[("AWS_SECRET_ACCESS_KEY", wrong_secret)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(
        !err.contains(wrong_secret) && !stdout(&out).contains(wrong_secret),
        "secret leaked"
    );
}

/// A writer appends to the file for as long as the upload runs, opening
/// and closing it for each write (like `echo >> file`): whichever moment
/// the run looks, the file is kept. Caught as open for writing (left for a
/// later run, no row) or as changed while read (`failed_changed`, kept).
// docs/SAFETY.md S4
#[test]
fn file_growing_during_the_run_is_kept() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let growing = ws.write_gz("growing.log.gz", 20_000, 11);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let writer = {
        let stop = stop.clone();
        let path = growing.clone();
        std::thread::spawn(move || {
            let mut first = true;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                std::io::Write::write_all(&mut f, b"more").unwrap();
                drop(f);
                if first {
                    started_tx.send(()).unwrap();
                    first = false;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    started_rx.recv().unwrap();
    let out = ws.upload(&server, &["--delete"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    assert!(growing.exists(), "{}", stderr(&out));
    match ws.rows().first() {
        Some(row) => {
            assert_eq!(row.status(), "failed_changed", "{row:?}");
            assert_eq!(row.deleted_local, Some(0));
            assert_exit(&out, 1);
        }
        None => assert!(
            stdout(&out).contains("still open for writing"),
            "{}",
            stdout(&out)
        ),
    }
}

#[test]
fn unreadable_file_fails_alone() {
    use std::os::unix::fs::PermissionsExt;
    let server = S3Server::start();
    let ws = Workspace::new();
    let ok = ws.write_gz("ok.log.gz", 100, 12);
    let locked = ws.write_gz("locked.log.gz", 100, 13);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything, so run as an unprivileged user when we are root.
    let mut cmd = ws.command(&ws.s3_upload_args(&server.endpoint(), &[]), &[]);
    let logs = ws.logs();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::process::CommandExt;
        let db_dir = ws.db().parent().unwrap().to_path_buf();
        for dir in [ws.tmp.path().to_path_buf(), logs.clone(), db_dir] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = ws.rows();
    assert_eq!(row_for(&rows, "ok.log.gz").status(), "uploaded");
    let bad = row_for(&rows, "locked.log.gz");
    assert_eq!(bad.status(), "failed_read");
    assert!(
        bad.error.as_deref().unwrap().contains("Permission denied"),
        "{bad:?}"
    );
    assert!(ok.exists() && locked.exists());
}
