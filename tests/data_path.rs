//! The upload engine's promises, each tried against the real binary and a
//! real S3 server (s3s-fs; moto where a header needs an S3 that keeps it):
//! one listing instead of a HEAD per file, a body damaged in flight refused
//! and not retried in a loop, the gzip proof where it protects a delete,
//! bucket options on every object, `--bwlimit`, rows committed in batches.

use crate::common;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::listeners::eventually;
use common::moto::MotoServer;
use common::proxy::{FaultProxy, Hold, Options};
use common::*;

/// `METHOD target` of the requests a proxy saw.
fn seen(proxy: &FaultProxy) -> Vec<String> {
    proxy.seen.lock().unwrap().clone()
}

// docs/SAFETY.md S3
#[test]
fn one_listing_replaces_the_probe_head_of_each_file() {
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(server.port, Options::default());
    let ws = Workspace::new();
    for i in 0..12 {
        ws.write_gz(&format!("FGT-A/{i:02}.log.gz"), 50, i);
    }
    let out = ws.upload_to(&proxy.endpoint(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = seen(&proxy);
    let lists = requests
        .iter()
        .filter(|r| r.contains("list-type=2"))
        .count();
    let heads = requests.iter().filter(|r| r.starts_with("HEAD ")).count();
    let puts = requests.iter().filter(|r| r.starts_with("PUT ")).count();
    assert_eq!(puts, 12, "{requests:?}");
    // One listing for the bucket check, one for the keys; then per file a
    // PUT and the HEAD that verifies it, and no HEAD to look for it first.
    assert_eq!(lists, 2, "{requests:?}");
    assert_eq!(heads, 12, "{requests:?}");

    // A second run finds every key in the listing: one HEAD each, to
    // compare the existing object with the file, and no PUT.
    let proxy2 = FaultProxy::start_with(server.port, Options::default());
    let out = ws.upload_to(&proxy2.endpoint(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = seen(&proxy2);
    assert!(
        !requests.iter().any(|r| r.starts_with("PUT ")),
        "{requests:?}"
    );
    assert_eq!(
        requests.iter().filter(|r| r.starts_with("HEAD ")).count(),
        12
    );
    assert!(
        ws.rows()[12..]
            .iter()
            .all(|r| r.status() == "skipped_exists")
    );
}

// docs/SAFETY.md S6
#[test]
fn a_refused_digest_is_permanent_not_a_retry_loop() {
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            reject_digest: Some(("PUT", "/fg-logs/a.log.gz")),
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 400, 3);
    let out = ws.upload_to(&proxy.endpoint(), &["--delete", "--retries", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = ws.rows()[0].clone();
    assert_eq!(row.status(), "failed_changed", "{row:?}");
    let why = row.error.clone().unwrap_or_default();
    assert!(
        why.contains("BadDigest") && why.contains("damaged in flight"),
        "{why}"
    );
    assert!(f.exists(), "the file is kept");
    assert_eq!(
        proxy.injected.load(Ordering::SeqCst),
        1,
        "the same bytes are not sent again and again"
    );
}

/// s3s-fs answers a body that does not hash to its signed SHA-256 with a
/// bare `500 InternalError`: not recognisable as a digest failure, so it is
/// retried like any 5xx, within `--retries`, and never taken for an archive.
// docs/SAFETY.md S6
#[test]
fn a_body_damaged_in_flight_is_never_archived() {
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            corrupt_body: Some(("PUT", "/fg-logs/a.log.gz")),
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 400, 3);
    let out = ws.upload_to(&proxy.endpoint(), &["--delete", "--retries", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ws.rows()[0].status(), "failed_upload");
    assert!(f.exists(), "the file is kept");
    assert_eq!(
        proxy.injected.load(Ordering::SeqCst),
        3,
        "one try, two retries"
    );
    // Whatever the server kept of the refused body is no archive: the next
    // run over a sound network stores and proves the real bytes.
    let out = ws.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!f.exists());
    assert_eq!(
        server.head_sha256("a.log.gz"),
        ws.rows().last().unwrap().sha256
    );
}

#[test]
fn gzip_proof_runs_where_it_guards_a_delete() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let good = std::fs::read(ws.write_gz("whole.log.gz", 300, 1)).unwrap();
    let cut = ws.write_raw("cut.log.gz", &good[..good.len() - 40]);

    // Copy mode (auto): nothing is deleted, so nothing is inflated; the
    // truncated file is archived byte for byte like any other.
    let out = ws.upload(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(row_for(&ws.rows(), "cut.log.gz").status(), "uploaded");

    // --gzip-check always: the same file is reported, and kept.
    let ws2 = Workspace::new();
    ws2.write_raw("cut.log.gz", &std::fs::read(&cut).unwrap());
    let out = ws2.upload(&server, &["--gzip-check", "always"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ws2.rows()[0].status(), "failed_gzip");

    // --delete (auto turns the proof on): the archived copy is proven but
    // the incomplete file is not deleted.
    let out = ws.upload(&server, &["--delete"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        row_for(&ws.rows()[2..], "cut.log.gz").status(),
        "failed_gzip"
    );
    assert!(cut.exists(), "an incomplete .gz is never deleted");
    assert!(!ws.logs().join("whole.log.gz").exists());
}

/// The headers of a raw HEAD (moto wants an Authorization header but
/// checks no signature).
fn moto_head(port: u16, key: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "HEAD /{BUCKET}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.to_ascii_lowercase()
}

#[test]
fn storage_class_and_encryption_reach_every_object() {
    let moto = MotoServer::start();
    let ws = Workspace::new();
    ws.write_gz("small.log.gz", 200, 1);
    ws.write_noise_gz("big.log.gz", 6);
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let out = ws.upload_to(
        &endpoint,
        &[
            "--storage-class",
            "STANDARD_IA",
            "--sse",
            "AES256",
            "--multipart-cutoff",
            "5MiB",
            "--part-size",
            "5MiB",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for key in ["small.log.gz", "big.log.gz"] {
        let head = moto_head(moto.port, key);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains("x-amz-storage-class: standard_ia"),
            "{key}: {head}"
        );
        assert!(
            head.contains("x-amz-server-side-encryption: aes256"),
            "{key}: {head}"
        );
    }
}

#[test]
fn bwlimit_paces_the_whole_run() {
    let server = S3Server::start();
    let ws = Workspace::new();
    // Two files of 768 KiB sent by two workers: 1.5 MiB at 512 KiB/s for
    // the whole process takes at least 2.5 s (the budget starts empty).
    ws.write_noise_gz("a.log.gz", 1);
    ws.write_noise_gz("b.log.gz", 1);
    let started = Instant::now();
    let out = ws.upload(&server, &["--bwlimit", "768k", "--workers", "2"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(took >= Duration::from_millis(2500), "took only {took:?}");
    assert!(ws.rows().iter().all(|r| r.status() == "uploaded"));
}

// docs/SAFETY.md S13
#[test]
fn rows_are_committed_in_batches_not_one_fsync_per_file() {
    assert!(
        Command::new("strace").arg("-V").output().is_ok(),
        "this test needs strace (scripts/test.sh installs it)"
    );
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..40 {
        ws.write_gz(&format!("{i:02}.log.gz"), 20, i);
    }
    let log = ws.tmp.path().join("strace.log");
    let mut args: Vec<String> = ["-f", "-y", "-e", "trace=fsync,fdatasync", "-o"]
        .map(String::from)
        .to_vec();
    args.push(log.display().to_string());
    args.push(env!("CARGO_BIN_EXE_fgbackup").to_string());
    args.extend(ws.s3_upload_args(&server.endpoint(), &["--delete"]));
    let out = Command::new("strace")
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("HOME", ws.home())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ws.rows().len(), 40);
    assert!(ws.rows().iter().all(|r| r.deleted_local == Some(1)));
    let trace = std::fs::read_to_string(&log).unwrap();
    let db = ws.db().display().to_string();
    let syncs = trace.lines().filter(|l| l.contains(&db)).count();
    assert!(
        syncs < 20,
        "{syncs} syncs of the database for 40 files (one commit per file?)"
    );
}

#[test]
fn bad_data_path_flags_are_one_clear_line() {
    let ws = Workspace::new();
    let logs = ws.logs().display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--gzip-check", "sometimes"], "--gzip-check 'sometimes'"),
        (&["--gzip-check", "never", "--no-gzip-check"], "contradict"),
        (&["--bwlimit", "fast"], "--bwlimit 'fast'"),
        (&["--bwlimit", "25:00,1M"], "time of day"),
        (&["--sse", "AES"], "--sse 'AES'"),
        (&["--sse-kms-key-id", "k1"], "needs --sse aws:kms"),
        (&["--storage-class", "cold storage"], "--storage-class"),
        (&["--multipart-cutoff", "1M"], "--multipart-cutoff '1M'"),
    ];
    for (extra, expect) in cases {
        let mut args = vec![
            "upload",
            "--dir",
            &logs,
            "--bucket",
            BUCKET,
            "--endpoint",
            "http://127.0.0.1:9",
        ];
        args.extend_from_slice(extra);
        let out = ws.run(&args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(expect), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
    }
    let archive = ws.archive();
    std::fs::create_dir_all(&archive).unwrap();
    let dest = format!("file://{}", archive.display());
    let out = ws.run(
        &[
            "upload",
            "--dir",
            &logs,
            "--dest",
            &dest,
            "--storage-class",
            "STANDARD_IA",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("S3 buckets only"), "{}", stderr(&out));
}

// docs/SAFETY.md S3
#[test]
fn the_listing_pages_through_other_objects_under_the_prefix() {
    let server = S3Server::start();
    let ws = Workspace::new();
    // Two files archived by an earlier run...
    ws.write_gz("FGT-A/k-00.log.gz", 30, 1);
    ws.write_gz("FGT-A/k-99.log.gz", 30, 2);
    let out = ws.upload(&server, &["--prefix", "site1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // ...1100 other objects sorting between them (s3s-fs lists its
    // directory, so they can be made as files)...
    let junk_dir = server.object_path(BUCKET, "site1/FGT-A");
    for i in 0..1100 {
        std::fs::write(junk_dir.join(format!("k-05-other-{i:04}")), b"x").unwrap();
    }
    // ...and nine new files, some before and some after the others.
    for i in [1, 2, 3, 4, 6, 7, 8, 9, 10] {
        ws.write_gz(&format!("FGT-A/k-{i:02}.log.gz"), 30, 10 + i);
    }
    let proxy = FaultProxy::start_with(server.port, Options::default());
    let out = ws.upload_to(&proxy.endpoint(), &["--prefix", "site1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = seen(&proxy);
    let count = |m: &str| requests.iter().filter(|r| r.starts_with(m)).count();
    // Two pages of listing; a probe HEAD only for the two keys it found,
    // plus one verifying HEAD per new upload.
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.contains("continuation-token"))
            .count(),
        1,
        "{requests:?}"
    );
    assert_eq!(count("PUT "), 9, "{requests:?}");
    assert_eq!(count("HEAD "), 2 + 9, "{requests:?}");
    let rows = ws.rows();
    assert_eq!(
        row_for(&rows[2..], "site1/FGT-A/k-99.log.gz").status(),
        "skipped_exists"
    );
    assert_eq!(
        row_for(&rows[2..], "site1/FGT-A/k-10.log.gz").status(),
        "uploaded"
    );
}

/// A server that keeps no checksum of its own and checks nothing it is sent
/// (moto): a body damaged on the way is stored as it arrived, with the
/// metadata we sent. Size, metadata and ETag are ours, so only the bytes
/// can tell: with `--delete` they are read back before the file goes.
// docs/SAFETY.md S6
#[test]
fn without_a_server_checksum_a_delete_waits_for_the_read_back() {
    let moto = MotoServer::start();
    let proxy = FaultProxy::start_with(
        moto.port,
        Options {
            corrupt_body: Some(("PUT", "/fg-logs/a.log.gz")),
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 300, 5);
    let good = ws.write_gz("b.log.gz", 300, 6);
    let out = ws.upload_to(&proxy.endpoint(), &["--delete"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(proxy.injected.load(Ordering::SeqCst), 1);
    let rows = ws.rows();
    assert_eq!(row_for(&rows, "a.log.gz").status(), "failed_verify");
    assert!(f.exists(), "a damaged copy never lets the file go");
    assert_eq!(row_for(&rows, "b.log.gz").status(), "uploaded");
    assert!(!good.exists(), "an intact copy, read back, does");
    let gets = seen(&proxy)
        .iter()
        .filter(|r| r.starts_with("GET /fg-logs/") && !r.contains("list-type"))
        .count();
    assert_eq!(gets, 2, "one read-back per upload");
}

/// Spawns `upload` with `extra`, through `proxy`, output captured.
fn spawn_upload(ws: &Workspace, proxy: &FaultProxy, extra: &[&str]) -> std::process::Child {
    ws.command(&ws.s3_upload_args(&proxy.endpoint(), extra), &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and waits for the exit (at most `within`).
fn terminate(child: &mut std::process::Child, within: Duration) -> std::process::Output {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running {within:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let child = std::mem::replace(child, Command::new("true").spawn().unwrap());
    child.wait_with_output().unwrap()
}

/// A stop signal while a big `.gz` is still being inflated for its gzip
/// proof (beside its upload, after the object is stored) ends the run at
/// once: the inflate stops at its next read, the file is kept, and its
/// row says the run was interrupted (the next run proves and deletes it).
// docs/SAFETY.md S16
#[test]
fn sigterm_stops_a_long_gzip_proof() {
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(server.port, Options::default());
    let ws = Workspace::new();
    // 2 GiB of log in about 2 MB: one member of 4 MiB of zeros, 512 times.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&vec![0u8; 4 << 20]).unwrap();
    let big = ws.write_raw("big.log.gz", &e.finish().unwrap().repeat(512));
    let mut child = spawn_upload(&ws, &proxy, &["--delete"]);
    // Once the object is stored, the proof is what is left to do.
    let stored = server.object_path(BUCKET, "big.log.gz");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stored.exists() {
        assert!(Instant::now() < deadline, "the object never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = terminate(&mut child, Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(big.exists(), "a file whose proof did not end is kept");
    assert_eq!(
        ws.rows()[0].status(),
        "failed_interrupted",
        "{}",
        stderr(&out)
    );
}

// docs/SAFETY.md S16
#[test]
fn sigterm_ends_a_run_waiting_on_its_opening_listing() {
    let server = S3Server::start();
    // The first listing is the bucket check; the second, the keys', hangs.
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            hold: Some(Hold {
                method: "GET",
                target_contains: "list-type=2",
                skip: 1,
            }),
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    for i in 0..6 {
        ws.write_gz(&format!("{i}.log.gz"), 20, i);
    }
    let mut child = spawn_upload(&ws, &proxy, &[]);
    eventually("the listing to hang at the proxy", || {
        proxy.held.load(Ordering::SeqCst) == 1
    });
    let out = terminate(&mut child, Duration::from_secs(10));
    proxy.gate.open();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ws.runs(), vec![("interrupted".to_string(), Some(1))]);
    assert_eq!(std::fs::read_dir(ws.logs()).unwrap().count(), 6);
}

// docs/SAFETY.md S16
#[test]
fn sigterm_mid_part_at_a_low_bwlimit_still_aborts_the_multipart_upload() {
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(server.port, Options::default());
    let ws = Workspace::new();
    let big = ws.write_noise_gz("big.log.gz", 11);
    // 5 MiB parts at 512 KiB/s: a part takes 10 s, longer than the grace.
    let mut child = spawn_upload(
        &ws,
        &proxy,
        &[
            "--delete",
            "--bwlimit",
            "512k",
            "--multipart-cutoff",
            "5MiB",
            "--part-size",
            "5MiB",
        ],
    );
    eventually("part 1 to be on its way", || {
        seen(&proxy).iter().any(|r| r.contains("partNumber=1"))
            || server.open_multipart_uploads().len() == 1
    });
    let out = terminate(&mut child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(big.exists());
    assert_eq!(ws.rows()[0].status(), "failed_interrupted");
    assert_eq!(
        server.open_multipart_uploads(),
        Vec::<String>::new(),
        "parts left behind"
    );
}
