//! The fault suite: each test is an attack on one promise of docs/SAFETY.md
//! (the comment above it names the number), run against the real binary and
//! a real S3 server (s3s-fs) or a real directory store. A proxy in front of
//! the server holds a chosen request at a gate, so the attack happens at
//! exactly the moment it must (between hashing and deleting, between PUT and
//! verification...), with no sleeps deciding the order.

use crate::common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::held::*;
use common::listeners::{HookListener, eventually};
use common::proxy::{FaultProxy, Options};
use common::*;

fn same_size_other_bytes(path: &Path) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    b
}

fn put_with_meta(server: &S3Server, key: &str, body: &[u8], sha256_meta: &str) {
    let r = server
        .client(BUCKET)
        .put_object_builder(key, body)
        .with_metadata("sha256", sha256_meta)
        .unwrap()
        .execute()
        .unwrap();
    assert_eq!(r.status_code(), 200);
}

/// Item 1: an archive inside the log directory (or around it) would
/// archive its own objects and, with --delete, delete them.
// docs/SAFETY.md S1
#[test]
fn destination_overlapping_the_source_is_refused() {
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 100, 1);
    let logs = ws.logs();
    std::fs::create_dir(logs.join("sub")).unwrap();
    let alias = ws.tmp.path().join("alias");
    symlink(&logs, &alias).unwrap();
    let cases: Vec<PathBuf> = vec![
        logs.clone(),
        logs.join("archive"),
        ws.tmp.path().to_path_buf(),
        alias.join("archive"),
        logs.join("sub/../archive"),
    ];
    let db = ws.db();
    for dest in cases {
        let dest_url = format!("file://{}", dest.display());
        let args = [
            "upload",
            "--dir",
            logs.to_str().unwrap(),
            "--dest",
            &dest_url,
            "--db",
            db.to_str().unwrap(),
            "--min-age",
            "0",
            "--delete",
        ];
        let out = ws.run(&args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{dest:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("overlap"), "{err}");
        assert!(err.contains(&dest.display().to_string()), "{err}");
        assert!(err.contains(&logs.display().to_string()), "{err}");
        assert!(f.exists());
        assert!(!ws.db().exists(), "nothing started");
    }
}

/// Item 2, S3: a second writer stores and verifies its copy (and deletes
/// its file) while our PUT of the same key is in flight: ours must not
/// replace it.
// docs/SAFETY.md S2
#[test]
fn second_writer_never_replaces_a_verified_copy_on_s3() {
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/fw.log.gz", 0);
    let (a, b) = (Workspace::new(), Workspace::new());
    let fa = a.write_gz("fw.log.gz", 500, 1);
    let fb = b.write_gz("fw.log.gz", 700, 2);
    let b_bytes = std::fs::read(&fb).unwrap();
    let child = start_held(&a, &proxy, &["--delete"]);

    let out = b.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!fb.exists(), "B's copy verified, B's file deleted");

    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = a.rows()[0].clone();
    assert_eq!(row.status(), "failed_conflict", "{row:?}");
    assert!(fa.exists(), "A's file kept");
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, "fw.log.gz")).unwrap(),
        b_bytes,
        "B's verified copy is intact"
    );
}

/// Item 2, directory store: the same race, with the second writer
/// publishing while the first is between its probe and its publish.
// docs/SAFETY.md S2
#[test]
fn second_writer_never_replaces_a_verified_copy_in_a_directory() {
    let (a, b) = (Workspace::new(), Workspace::new());
    let archive = a.tmp.path().join("shared-archive");
    std::fs::create_dir(&archive).unwrap();
    // Large enough that writing and reading back its temporary copy takes a
    // while, so the run can be stopped in the middle of it.
    let fa = a.write_noise_gz("fw.log.gz", 24);
    let fb = b.write_gz("fw.log.gz", 700, 2);
    let b_bytes = std::fs::read(&fb).unwrap();
    let args = |ws: &Workspace| -> Vec<String> {
        vec![
            "upload".into(),
            "--dir".into(),
            ws.logs().display().to_string(),
            "--dest".into(),
            format!("file://{}", archive.display()),
            "--db".into(),
            ws.db().display().to_string(),
            "--min-age".into(),
            "0".into(),
            "--delete".into(),
            "--no-gzip-check".into(),
        ]
    };
    let mut child = spawn(&a, &args(&a), &[]);
    // Stop A as soon as its temporary copy exists: it has probed the key
    // (found it free) and not yet published.
    eventually("A to start writing its temporary copy", || {
        assert!(child.try_wait().unwrap().is_none(), "A finished too early");
        find_tmp(&archive).is_some()
    });
    signal(&child, libc::SIGSTOP);
    assert!(
        !archive.join("fw.log.gz").exists(),
        "A has not published yet"
    );

    let out = b.run(&args(&b), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!fb.exists(), "B's copy verified, B's file deleted");

    signal(&child, libc::SIGCONT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(a.rows()[0].status(), "failed_conflict");
    assert!(fa.exists(), "A's file kept");
    assert_eq!(std::fs::read(archive.join("fw.log.gz")).unwrap(), b_bytes);
}

/// Any temporary file anywhere under `dir`.
fn find_tmp(dir: &Path) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".tmp") {
                return Some(p);
            }
        }
    }
    None
}

/// Item 2: an overwrite that lands between our PUT and our verification,
/// even one that copies our size and sha256 metadata, is caught.
// docs/SAFETY.md S2
#[test]
fn overwrite_between_upload_and_verification_is_caught() {
    let server = S3Server::start();
    // HEADs of the key: the probe, then the verification.
    let proxy = holding(&server, "HEAD", "/fg-logs/fw.log.gz", 1);
    let ws = Workspace::new();
    let f = ws.write_gz("fw.log.gz", 500, 3);
    let sha = sha256_file(&f);
    let child = start_held(&ws, &proxy, &["--delete"]);
    put_with_meta(&server, "fw.log.gz", &same_size_other_bytes(&f), &sha);
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_conflict", "{row:?}");
    assert!(
        row.error.as_deref().unwrap().contains("replaced"),
        "{row:?}"
    );
    assert!(f.exists(), "file kept: the archive does not hold its bytes");
}

/// Item 3: a file replaced (`mv`, same size, `touch -r`) after it was read
/// is not deleted: its new content was never archived.
// docs/SAFETY.md S4
#[test]
fn file_replaced_after_it_was_read_is_kept() {
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 500, 4);
    let old = std::fs::read(&f).unwrap();
    let child = start_held(&ws, &proxy, &["--delete"]);

    let new = same_size_other_bytes(&f);
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    let tmp = ws.tmp.path().join("replacement");
    std::fs::write(&tmp, &new).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&tmp, &f).unwrap();

    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_changed", "{row:?}");
    assert_eq!(row.deleted_local, Some(0));
    assert_eq!(
        std::fs::read(&f).unwrap(),
        new,
        "the new content is still here"
    );
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, "a.log.gz")).unwrap(),
        old
    );
}

/// Item 3: rewritten in place with the mtime put back: ctime tells.
// docs/SAFETY.md S4
#[test]
fn file_rewritten_in_place_after_it_was_read_is_kept() {
    use std::io::Write;
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 500, 5);
    let child = start_held(&ws, &proxy, &["--delete"]);

    let new = same_size_other_bytes(&f);
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    let mut w = std::fs::File::options().write(true).open(&f).unwrap();
    w.write_all(&new).unwrap();
    w.set_modified(mtime).unwrap();
    drop(w);

    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ws.rows()[0].status(), "failed_changed");
    assert_eq!(std::fs::read(&f).unwrap(), new);
}

/// Item 4, S3: an existing object whose metadata claims our hash but whose
/// bytes differ (damaged, or written by something that lied) never
/// justifies deleting the local file, and the failure is reported.
// docs/SAFETY.md S7
#[test]
fn damaged_remote_copy_is_never_trusted_for_a_delete_on_s3() {
    let server = S3Server::start();
    let hook = HookListener::start(0);
    let ws = Workspace::new();
    let f = ws.write_gz("fw.log.gz", 500, 6);
    put_with_meta(
        &server,
        "fw.log.gz",
        &same_size_other_bytes(&f),
        &sha256_file(&f),
    );
    let url = hook.url("/hook");
    let out = ws.run(
        &ws.s3_upload_args(&server.endpoint(), &["--delete"]),
        &[("WEBHOOK_URL", url.as_str())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_remote_corrupt", "{row:?}");
    assert!(f.exists(), "the intact local file is kept");
    let posts = hook.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["status"], "failed");
    assert!(
        posts[0].body["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("failed_remote_corrupt fw.log.gz"),
        "{:?}",
        posts[0].body
    );
}

/// Item 4: where the server keeps its own checksum of the bytes, a copy
/// whose metadata lies is caught without a read-back, delete or not: the
/// HEAD answer alone tells, no GET of the object goes out, and the file
/// is kept.
// docs/SAFETY.md S7
#[test]
fn server_checksum_contradicting_metadata_is_reported() {
    use base64::Engine as _;
    use sha2::Digest;
    let server = S3Server::start();
    let ws = Workspace::new();
    let f = ws.write_gz("fw.log.gz", 500, 7);
    let other = same_size_other_bytes(&f);
    let checksum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&other));
    let r = server
        .client(BUCKET)
        .put_object_builder("fw.log.gz", &other)
        .with_metadata("sha256", sha256_file(&f))
        .and_then(|r| r.with_header("x-amz-checksum-sha256", &checksum))
        .unwrap()
        .execute()
        .unwrap();
    assert_eq!(r.status_code(), 200);
    // Every request of the runs passes through (and is seen by) a proxy.
    let proxy = FaultProxy::start_with(server.port, Options::default());
    for extra in [&[][..], &["--delete"][..]] {
        let before = proxy.seen.lock().unwrap().len();
        let out = ws.upload_to(&proxy.endpoint(), extra);
        let seen = proxy.seen.lock().unwrap()[before..].to_vec();
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", stderr(&out));
        let row = ws.rows().pop().unwrap();
        assert_eq!(row.status(), "failed_remote_corrupt", "{extra:?}: {row:?}");
        assert!(
            row.error
                .as_deref()
                .is_some_and(|e| e.contains("the server's own checksum of its bytes")),
            "{extra:?}: not caught by the server's checksum: {row:?}"
        );
        assert!(
            seen.iter()
                .any(|l| l.starts_with("HEAD ") && l.contains("/fw.log.gz")),
            "{extra:?}: no HEAD of the object seen: {seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|l| l.starts_with("GET ") && l.contains("/fw.log.gz")),
            "{extra:?}: the object was read back: {seen:?}"
        );
        assert!(f.exists(), "{extra:?}: the local file is kept");
    }
}

/// Item 4, directory store: a flipped byte in the archived copy.
// docs/SAFETY.md S7
#[test]
fn damaged_copy_in_a_directory_store_is_never_trusted_for_a_delete() {
    let ws = Workspace::new();
    let f = ws.write_gz("fw.log.gz", 500, 8);
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored = ws.archive().join("fw.log.gz");
    std::fs::write(&stored, same_size_other_bytes(&f)).unwrap();
    let out = ws.upload_local(&["--delete"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ws.rows()[1].status(), "failed_remote_corrupt");
    assert!(f.exists());
}

/// Item 5: a source file named like a sidecar (`x.gz.sha256`) is archived
/// like any other; store metadata lives where no key can land.
// docs/SAFETY.md S8
#[test]
fn store_metadata_never_collides_with_a_source_file() {
    let ws = Workspace::new();
    ws.write_gz("x.gz", 100, 9);
    let fake = ws.write_raw("x.gz.sha256", b"not what fgbackup wrote\n");
    let out = ws.upload_local(&["--include", "*.gz,*.sha256"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(ws.archive().join("x.gz.sha256")).unwrap(),
        std::fs::read(&fake).unwrap()
    );
    let out = ws.upload_local(&["--include", "*.gz,*.sha256", "--delete"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = ws.rows();
    assert!(
        rows[2..].iter().all(|r| r.status() == "skipped_exists"),
        "{rows:#?}"
    );
    assert!(!fake.exists(), "proven and deleted");
}

/// Item 5: an archive in the old layout (sidecars next to objects, a
/// temporary file of a dead run) is migrated once, nothing deleted.
// docs/SAFETY.md S8
#[test]
fn old_sidecar_layout_is_migrated_and_kept_aside() {
    let ws = Workspace::new();
    let f = ws.write_gz("FGT/a.log.gz", 200, 10);
    let sha = sha256_file(&f);
    let old = ws.archive().join("FGT");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(&f, old.join("a.log.gz")).unwrap();
    std::fs::write(old.join("a.log.gz.sha256"), format!("{sha}  a.log.gz\n")).unwrap();
    std::fs::write(old.join(".b.log.gz.fgbackup-2147483646.tmp"), b"half").unwrap();

    let out = ws.upload_local(&["--delete"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ws.rows()[0].status(), "skipped_exists");
    assert!(!f.exists(), "proven by reading it back, then deleted");
    let legacy = ws.archive().join(".fgbackup/legacy/FGT");
    assert!(!old.join("a.log.gz.sha256").exists());
    assert_eq!(
        std::fs::read_to_string(legacy.join("a.log.gz.sha256")).unwrap(),
        format!("{sha}  a.log.gz\n")
    );
    assert!(legacy.join(".b.log.gz.fgbackup-2147483646.tmp").exists());
    assert_eq!(
        std::fs::read_to_string(meta_path(&ws.archive(), "FGT/a.log.gz")).unwrap(),
        format!("{sha}  FGT/a.log.gz\n")
    );
}

/// Item 6: a symlink (to a file, or as a directory) swapped in after the
/// scan is never followed: nothing outside --dir is read, let alone deleted.
// docs/SAFETY.md S9
#[test]
fn symlink_swapped_in_after_the_scan_is_never_followed() {
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 100, 11);
    let b = ws.write_gz("b.log.gz", 100, 12);
    ws.write_gz("sub/c.log.gz", 100, 13);
    let outside = ws.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.gz"), b"SECRET").unwrap();
    std::fs::write(outside.join("c.log.gz"), b"SECRET TOO").unwrap();

    let child = start_held(&ws, &proxy, &["--delete", "--workers", "1"]);
    std::fs::remove_file(&b).unwrap();
    symlink(outside.join("secret.gz"), &b).unwrap();
    std::fs::rename(ws.logs().join("sub"), ws.tmp.path().join("sub.moved")).unwrap();
    symlink(&outside, ws.logs().join("sub")).unwrap();
    proxy.gate.open();

    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = ws.rows();
    assert_eq!(row_for(&rows, "a.log.gz").status(), "uploaded");
    assert_eq!(row_for(&rows, "b.log.gz").status(), "failed_changed");
    assert_eq!(row_for(&rows, "sub/c.log.gz").status(), "failed_changed");
    assert!(!server.object_path(BUCKET, "b.log.gz").exists());
    assert!(!server.object_path(BUCKET, "sub/c.log.gz").exists());
    assert!(outside.join("secret.gz").exists() && outside.join("c.log.gz").exists());
}

/// Item 7: a conflict has a way out that keeps both versions.
// docs/SAFETY.md S10
#[test]
fn on_conflict_suffix_archives_both_versions() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let f = ws.write_gz("FGT/fw.log.gz", 500, 14);
    let bytes = std::fs::read(&f).unwrap();
    let sha = sha256_file(&f);
    put_with_meta(&server, "FGT/fw.log.gz", b"first version", &"0".repeat(64));

    let out = ws.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ws.rows()[0].status(), "failed_conflict");
    assert!(f.exists());

    let out = ws.upload(&server, &["--delete", "--on-conflict", "suffix"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let row = ws.rows()[1].clone();
    let alt = format!("FGT/fw.log.{}.gz", &sha[..16]);
    assert_eq!(row.status(), "uploaded");
    assert_eq!(row.object_key.as_deref(), Some(alt.as_str()));
    assert!(
        row.error
            .as_deref()
            .unwrap()
            .contains("--on-conflict suffix")
    );
    assert!(
        !f.exists(),
        "archived beside the other version, then deleted"
    );
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, &alt)).unwrap(),
        bytes
    );
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, "FGT/fw.log.gz")).unwrap(),
        b"first version"
    );
}

/// Item 8: temporary files of a killed run are removed by a later run once
/// their writer is gone, never while it lives.
// docs/SAFETY.md S12
#[test]
fn leftovers_of_a_killed_run_are_cleaned_but_not_a_live_writers() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 100, 15);
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tmp = ws.archive().join(".fgbackup/tmp");
    let dead = tmp.join("4242-0.tmp");
    let live = tmp.join("4243-0.tmp");
    std::fs::write(&dead, b"half a file").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    for p in [&dead, &live] {
        set_old_mtime(p);
    }
    let writer = std::fs::File::open(&live).unwrap();
    writer.lock().unwrap();

    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!dead.exists(), "the dead writer's file is removed");
    assert!(live.exists(), "a locked file is someone's work in progress");
}

/// Item 8: every database error names the database and the setting.
// docs/SAFETY.md S13
#[test]
fn database_errors_name_the_database() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 100, 16);
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute_batch("DROP TABLE runs").unwrap();
    drop(conn);
    let out = ws.upload_local(&[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&ws.db().display().to_string()), "{err}");
    assert!(err.contains("--db/DB_PATH"), "{err}");
}

/// Item 10: when the endpoint starts refusing connections mid-run, the run
/// stops after a few failures instead of retrying every file.
// docs/SAFETY.md S18
#[test]
fn unreachable_endpoint_stops_the_run_early() {
    let server = S3Server::start();
    // One connection per request: the bucket check, then HEAD + PUT + HEAD
    // per file; after 10 connections the endpoint refuses everything.
    let opts = Options {
        close_after: Some(10),
        ..Options::default()
    };
    let proxy = FaultProxy::start_with(server.port, opts);
    let ws = Workspace::new();
    let files: Vec<PathBuf> = (0..60)
        .map(|i| ws.write_gz(&format!("f{i:02}.log.gz"), 50, i))
        .collect();
    let out = ws.upload_to(
        &proxy.endpoint(),
        &["--delete", "--retries", "3", "--workers", "2"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // One line: the count, what failed, and what to check.
    assert!(
        err.lines().any(|l| l.starts_with("fgbackup: error: endpoint unreachable (5 connection failures in a row): ")
            && l.contains("cannot reach ")
            && l.contains(": check the host and port in --endpoint, that the server is running, and the firewall")),
        "{err}"
    );
    let rows = ws.rows();
    assert!(
        rows.len() < 10,
        "stopped early, not one failure per file: {}",
        rows.len()
    );
    for r in &rows {
        assert!(
            matches!(r.status(), "uploaded" | "failed_upload" | "failed_verify"),
            "{r:?}"
        );
    }
    let deleted = rows.iter().filter(|r| r.deleted_local == Some(1)).count();
    let present = files.iter().filter(|f| f.exists()).count();
    assert_eq!(present + deleted, files.len(), "no file lost");
    assert!(stdout(&out).contains("not attempted"), "{}", stdout(&out));
    assert_eq!(ws.runs(), vec![("failed".to_string(), Some(1))]);
}

/// Item 9 (S3 side): a stop signal ends a run within seconds even when a
/// request never gets an answer.
// docs/SAFETY.md S16
#[test]
fn sigterm_ends_a_run_stuck_on_the_network_within_seconds() {
    let server = S3Server::start();
    let proxy = holding(&server, "HEAD", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 100, 17);
    let child = start_held(&ws, &proxy, &["--delete"]);
    signal(&child, libc::SIGTERM);
    let out = exits_within(child, Duration::from_secs(15));
    proxy.gate.open();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(f.exists());
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_interrupted", "{row:?}");
    assert_eq!(ws.runs(), vec![("interrupted".to_string(), Some(1))]);
}

/// Item 15: a symlink alias of the database is the same database.
// docs/SAFETY.md S13
#[test]
fn symlinked_database_path_shares_the_run_lock() {
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 100, 18);
    let child = start_held(&ws, &proxy, &[]);

    let alias = ws.tmp.path().join("alias.db");
    symlink(ws.db(), &alias).unwrap();
    let mut args = ws.s3_upload_args(&server.endpoint(), &[]);
    let i = args.iter().position(|a| a == "--db").unwrap();
    args[i + 1] = alias.display().to_string();
    let out = ws.run(&args, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("already running"), "{err}");

    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Item 9 (S3 side): an endpoint that accepts connections and never answers
/// holds neither the bucket check nor the run after a stop signal.
// docs/SAFETY.md S16
#[test]
fn sigterm_ends_a_run_whose_endpoint_never_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.push(conn); // never read, never answered
            }
        });
    }
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 100, 19);
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut child = spawn(&ws, &ws.s3_upload_args(&endpoint, &["--delete"]), &[]);
    eventually("the bucket check to connect", || {
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        accepted.load(Ordering::SeqCst) >= 1
    });
    signal(&child, libc::SIGTERM);
    let out = exits_within(child, Duration::from_secs(15));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stop signal"), "{err}");
    assert!(f.exists());
    assert_eq!(ws.runs(), vec![("failed".to_string(), Some(1))]);
}

/// `--dry-run` writes nothing anywhere: not even the directory store's own
/// bookkeeping (migration, cleaning, metadata repair).
#[test]
fn dry_run_leaves_a_directory_store_untouched() {
    let ws = Workspace::new();
    let f = ws.write_gz("FGT/a.log.gz", 200, 20);
    ws.write_gz("FGT/b.log.gz", 200, 21);
    let old = ws.archive().join("FGT");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(&f, old.join("a.log.gz")).unwrap();
    let sidecar = format!("{}  a.log.gz\n", sha256_file(&f));
    std::fs::write(old.join("a.log.gz.sha256"), &sidecar).unwrap();
    let listing = |dir: &Path| {
        let mut all = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                all.push(p);
            }
        }
        all.sort();
        all
    };
    let before = listing(&ws.archive());
    let out = ws.upload_local(&["--dry-run", "--delete"], &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains("skipped_exists") && text.contains("would_upload"),
        "{text}"
    );
    assert_eq!(
        listing(&ws.archive()),
        before,
        "nothing written to the archive"
    );
    assert_eq!(
        std::fs::read_to_string(old.join("a.log.gz.sha256")).unwrap(),
        sidecar
    );
    assert!(f.exists() && !ws.db().exists());
}
