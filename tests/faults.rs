//! Server-side failures injected by a proxy in front of a real S3 server:
//! transient 5xx are retried, persistent ones leave the file and a truthful
//! row, a failed multipart upload is aborted, stripped metadata is caught.

use crate::common;

use common::proxy::{FaultProxy, HeadMeta, Rule};
use common::*;

fn upload_via(ws: &Workspace, proxy: &FaultProxy, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--delete"];
    args.extend_from_slice(extra);
    ws.upload_to(&proxy.endpoint(), &args)
}

#[test]
fn one_503_on_put_is_retried() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(
        server.port,
        vec![Rule {
            method: "PUT",
            target_contains: "/fg-logs/a.log.gz",
            status: 503,
            times: 1,
        }],
        HeadMeta::Keep,
    );
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 500, 1);
    let out = upload_via(&ws, &proxy, &["--retries", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(proxy.injected.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(stderr(&out).contains("retry 1/2"), "{}", stderr(&out));
    assert_eq!(ws.rows()[0].status(), "uploaded");
    assert!(!f.exists());
}

#[test]
fn persistent_500_fails_the_file_and_keeps_it() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(
        server.port,
        vec![Rule {
            method: "PUT",
            target_contains: "/fg-logs/b.log.gz",
            status: 500,
            times: 100,
        }],
        HeadMeta::Keep,
    );
    let ws = Workspace::new();
    let bad = ws.write_gz("b.log.gz", 500, 2);
    let good = ws.write_gz("c.log.gz", 500, 3);
    let out = upload_via(&ws, &proxy, &["--retries", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let rows = ws.rows();
    let b = row_for(&rows, "b.log.gz");
    assert_eq!(b.status(), "failed_upload");
    assert!(b.error.as_deref().unwrap().contains("HTTP 500"), "{b:?}");
    assert_eq!(b.deleted_local, Some(0));
    assert!(bad.exists());
    assert_eq!(row_for(&rows, "c.log.gz").status(), "uploaded");
    assert!(!good.exists());
    assert_eq!(
        proxy.injected.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one try plus one retry"
    );
}

#[test]
fn failed_multipart_part_aborts_the_upload() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(
        server.port,
        vec![Rule {
            method: "PUT",
            target_contains: "partNumber=2",
            status: 500,
            times: 100,
        }],
        HeadMeta::Keep,
    );
    let ws = Workspace::new();
    let big = ws.write_noise_gz("big.log.gz", 11);
    let out = upload_via(
        &ws,
        &proxy,
        &[
            "--retries",
            "0",
            "--multipart-cutoff",
            "5MiB",
            "--part-size",
            "5MiB",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ws.rows()[0].status(), "failed_upload");
    assert!(big.exists());
    assert!(!server.object_path(BUCKET, "big.log.gz").exists());
    assert_eq!(
        server.open_multipart_uploads(),
        Vec::<String>::new(),
        "parts left behind"
    );
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("DELETE") && r.contains("uploadId=")),
        "{seen:?}"
    );
}

// docs/SAFETY.md S7
#[test]
fn stripped_metadata_is_failed_nometa_and_kept() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(server.port, vec![], HeadMeta::Strip);
    let ws = Workspace::new();
    let f = ws.write_gz("m.log.gz", 300, 4);
    let out = upload_via(&ws, &proxy, &[]);
    assert_eq!(out.status.code(), Some(1));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_nometa");
    assert!(f.exists());
    // The object itself did arrive intact.
    assert_eq!(server.head_sha256("m.log.gz"), Some(sha256_file(&f)));
}

// docs/SAFETY.md S16
#[test]
fn sigterm_mid_upload_aborts_cleanly_and_keeps_the_file() {
    let server = S3Server::start();
    let proxy =
        FaultProxy::start_holding(server.port, vec![], HeadMeta::Keep, Some("partNumber=1"));
    let ws = Workspace::new();
    let big = ws.write_noise_gz("big.log.gz", 11);
    let logs = ws.logs();
    let db = ws.db();
    let endpoint = proxy.endpoint();
    let child = ws
        .command(
            &[
                "upload",
                "--dir",
                logs.to_str().unwrap(),
                "--bucket",
                BUCKET,
                "--endpoint",
                &endpoint,
                "--db",
                db.to_str().unwrap(),
                "--min-age",
                "0",
                "--delete",
                "--multipart-cutoff",
                "5MiB",
                "--part-size",
                "5MiB",
            ],
            &[],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the first part is in flight and held by the proxy.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.contains("partNumber=1"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "upload never reached part 1"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(big.exists(), "file kept");
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_interrupted", "{row:?}");
    assert_eq!(row.deleted_local, Some(0));
    assert_eq!(ws.runs(), vec![("interrupted".to_string(), Some(1))]);
    assert_eq!(server.open_multipart_uploads(), Vec::<String>::new());
    assert!(!server.object_path(BUCKET, "big.log.gz").exists());
}

// docs/SAFETY.md S6
#[test]
fn stored_copy_that_does_not_match_is_failed_verify_and_kept() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(server.port, vec![], HeadMeta::Corrupt);
    let ws = Workspace::new();
    let f = ws.write_gz("v.log.gz", 300, 5);
    let out = upload_via(&ws, &proxy, &[]);
    assert_eq!(out.status.code(), Some(1));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_verify", "{row:?}");
    assert!(
        row.error.as_deref().unwrap().contains("does not match"),
        "{row:?}"
    );
    assert_eq!(row.deleted_local, Some(0));
    assert!(f.exists());
}

// docs/SAFETY.md S13
#[test]
fn crash_mid_upload_loses_nothing_and_the_next_run_finishes() {
    let server = S3Server::start();
    let proxy =
        FaultProxy::start_holding(server.port, vec![], HeadMeta::Keep, Some("partNumber=1"));
    let ws = Workspace::new();
    let big = ws.write_noise_gz("big.log.gz", 11);
    let small = ws.write_gz("small.log.gz", 100, 6);
    let logs = ws.logs();
    let db = ws.db();
    let endpoint = proxy.endpoint();
    let args = [
        "upload",
        "--dir",
        logs.to_str().unwrap(),
        "--bucket",
        BUCKET,
        "--endpoint",
        &endpoint,
        "--db",
        db.to_str().unwrap(),
        "--min-age",
        "0",
        "--delete",
        "--workers",
        "1",
        "--multipart-cutoff",
        "5MiB",
        "--part-size",
        "5MiB",
    ];
    let mut child = ws
        .command(&args, &[])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.contains("partNumber=1"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "upload never reached part 1"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    proxy.gate.open();
    assert!(big.exists() && small.exists(), "a crash deletes nothing");
    assert_eq!(ws.runs(), vec![("running".to_string(), None)]);

    let out = ws.run(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ended without finishing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        ws.runs(),
        vec![
            ("interrupted".to_string(), None),
            ("ok".to_string(), Some(0))
        ]
    );
    assert!(!big.exists() && !small.exists());
    assert_eq!(
        server.head_sha256("big.log.gz"),
        row_for(&ws.rows(), "big.log.gz").sha256
    );
}
