//! Object Lock (WORM): `--object-lock MODE --object-lock-days N`, through
//! the real binary, against moto (which implements Object Lock) and s3s-fs
//! (which does not).
//!
//! What moto does, as found and asserted here: a bucket created with
//! `x-amz-bucket-object-lock-enabled: true` answers `GET ?object-lock` with
//! `ObjectLockEnabled=Enabled` (and has versioning on); a bucket without it
//! answers 404 `ObjectLockConfigurationNotFoundError`. A PUT carrying a lock
//! (or into a bucket with a default retention) needs `Content-MD5` or
//! `x-amz-sdk-checksum-algorithm`, else 400
//! `MissingUploadObjectWithObjectLockHeaders`; AWS takes the
//! `x-amz-checksum-sha256` fgbackup sends ("Content-MD5 OR x-amz-checksum-
//! HTTP header is required"), so a proxy adds the header moto wants
//! ([`aws_like`]). fgbackup does not send it itself: with it, moto echoes the
//! checksum it was told as its own without checking it, and the read-back
//! that catches a body damaged in flight would be skipped
//! (`tests/data_path.rs`). `DELETE ?versionId=` of a locked version is 403
//! `AccessDenied`; a plain DELETE only adds a delete marker (204) and the
//! locked version stays readable. Lock headers on a multipart upload are
//! ignored. s3s-fs answers `GET ?object-lock` with 501 `NotImplemented`.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::moto::MotoServer;
use common::proxy::{FaultProxy, Options};
use common::*;

const LOCK: [&str; 4] = ["--object-lock", "GOVERNANCE", "--object-lock-days", "1"];

/// moto behind a proxy that adds the one header moto demands of a PUT
/// under a lock and AWS does not (see the module comment).
fn aws_like(moto: &MotoServer) -> FaultProxy {
    FaultProxy::start_with(
        moto.port,
        Options {
            add_request_headers: vec![("x-amz-sdk-checksum-algorithm", "SHA256")],
            ..Options::default()
        },
    )
}

/// `LOCK` plus `extra`.
fn lock_and(extra: &[&'static str]) -> Vec<&'static str> {
    LOCK.iter().chain(extra).copied().collect()
}

/// The value of header `name` (any case) in a raw answer.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The text between the first `open` and the next `close`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .unwrap_or_else(|| panic!("no {open}: {text}"))
        + open.len();
    let end = text[start..].find(close).expect(close) + start;
    &text[start..end]
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS...` (UTC).
fn epoch(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap_or_else(|_| panic!("{s}"));
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The body of a raw answer, as bytes.
fn body(raw: &[u8]) -> &[u8] {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    &raw[at + 4..]
}

/// The rows of `key`, oldest first.
fn rows_of(ws: &Workspace, key: &str) -> Vec<Row> {
    ws.rows()
        .into_iter()
        .filter(|r| r.object_key.as_deref() == Some(key))
        .collect()
}

// docs/SAFETY.md S11
#[test]
fn a_locked_upload_cannot_be_deleted() {
    let moto = MotoServer::start_with_object_lock();
    let ws = Workspace::new();
    let file = ws.write_gz("fw/a.log.gz", 200, 1);
    let bytes = std::fs::read(&file).unwrap();
    // moto itself wants a header AWS does not: a clear per-file failure.
    let out = ws.upload_to(&moto.endpoint(), &lock_and(&["--delete"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = row_for(&ws.rows(), "fw/a.log.gz").clone();
    assert_eq!(row.status(), "failed_upload");
    let why = row.error.unwrap_or_default();
    assert!(
        why.contains("MissingUploadObjectWithObjectLockHeaders"),
        "{why}"
    );
    assert!(file.exists());

    let proxy = aws_like(&moto);
    let out = ws.upload_to(&proxy.endpoint(), &lock_and(&["--delete"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = rows_of(&ws, "fw/a.log.gz");
    assert_eq!(rows.last().unwrap().status(), "uploaded");
    assert!(!file.exists(), "archived under lock, then deleted locally");

    let head = moto.request("HEAD", &format!("/{BUCKET}/fw/a.log.gz"), &[], b"");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "x-amz-object-lock-mode"), Some("GOVERNANCE"));
    let until = header(&head, "x-amz-object-lock-retain-until-date").expect("a date");
    let ahead = epoch(until) - now();
    assert!((86_400 - 300..=86_400).contains(&ahead), "{until}");

    // Object Lock implies versioning: a version is what is protected.
    let list = moto.request("GET", &format!("/{BUCKET}?versions&prefix=fw/"), &[], b"");
    let version = between(&list, "<VersionId>", "</VersionId>").to_string();
    let locked = format!("/{BUCKET}/fw/a.log.gz?versionId={version}");
    let delete = moto.request("DELETE", &locked, &[], b"");
    assert!(delete.starts_with("HTTP/1.1 403"), "{delete}");
    assert!(delete.contains("<Code>AccessDenied</Code>"), "{delete}");
    let get = moto.request_raw("GET", &locked, &[], b"");
    assert!(get.starts_with(b"HTTP/1.1 200"));
    assert_eq!(body(&get), &bytes[..], "the locked version is intact");

    // A DELETE without a version only hides the object behind a delete
    // marker; the locked version stays, whole.
    let hide = moto.request("DELETE", &format!("/{BUCKET}/fw/a.log.gz"), &[], b"");
    assert!(hide.starts_with("HTTP/1.1 204"), "{hide}");
    assert_eq!(header(&hide, "x-amz-delete-marker"), Some("true"));
    let get = moto.request_raw("GET", &locked, &[], b"");
    assert_eq!(body(&get), &bytes[..]);
}

/// A server that takes the lock headers and stores the object unlocked
/// (here a proxy drops them on the way to moto) does not make a WORM copy:
/// the file is `failed_verify` and kept, on that run and the next.
// docs/SAFETY.md S11
#[test]
fn a_lock_the_server_ignores_is_caught_and_the_file_kept() {
    let moto = MotoServer::start_with_object_lock();
    let ignoring = FaultProxy::start_with(
        moto.port,
        Options {
            strip_request_headers: vec![
                "x-amz-object-lock-mode",
                "x-amz-object-lock-retain-until-date",
            ],
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let file = ws.write_gz("a.log.gz", 200, 2);
    let out = ws.upload_to(&ignoring.endpoint(), &lock_and(&["--delete"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = row_for(&ws.rows(), "a.log.gz").clone();
    assert_eq!(row.status(), "failed_verify");
    let why = row.error.unwrap_or_default();
    assert!(why.contains("server ignored Object Lock headers"), "{why}");
    assert!(file.exists());
    let head = moto.request("HEAD", &format!("/{BUCKET}/a.log.gz"), &[], b"");
    assert_eq!(header(&head, "x-amz-object-lock-mode"), None, "{head}");

    // The unlocked copy it left is ours, but no reason to delete the file.
    let out = ws.upload_to(&moto.endpoint(), &lock_and(&["--delete"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = rows_of(&ws, "a.log.gz");
    let last = rows.last().unwrap();
    assert_eq!(last.status(), "failed_verify");
    let why = last.error.clone().unwrap_or_default();
    assert!(why.contains("is not locked GOVERNANCE"), "{why}");
    assert!(file.exists());
}

/// moto ignores lock headers on a multipart upload: the verification sees
/// an unlocked object and keeps the file.
// docs/SAFETY.md S11
#[test]
fn moto_ignores_the_lock_of_a_multipart_upload_and_the_file_is_kept() {
    let moto = MotoServer::start_with_object_lock();
    let ws = Workspace::new();
    let big = ws.write_noise_gz("big.log.gz", 6);
    let extra = lock_and(&[
        "--delete",
        "--multipart-cutoff",
        "5MiB",
        "--part-size",
        "5MiB",
    ]);
    let out = ws.upload_to(&moto.endpoint(), &extra);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = row_for(&ws.rows(), "big.log.gz").clone();
    assert_eq!(row.status(), "failed_verify");
    let why = row.error.unwrap_or_default();
    assert!(why.contains("server ignored Object Lock headers"), "{why}");
    assert!(why.contains("--multipart-cutoff"), "{why}");
    assert!(big.exists());
}

/// `--object-lock` on a bucket that cannot keep locks: one line, exit 1,
/// before any file is read or written.
fn refused_before_any_file(endpoint: &str, code: &str) -> Workspace {
    let ws = Workspace::new();
    let file = ws.write_gz("a.log.gz", 50, 3);
    let sha = sha256_file(&file);
    let out = ws.upload_to(endpoint, &lock_and(&["--delete"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Object Lock is not enabled"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(&format!("({code})")), "{err}");
    assert!(lines[0].contains("drop --object-lock"), "{err}");
    assert!(
        lines[0].contains(&format!("bucket '{BUCKET}' at {endpoint}")),
        "{err}"
    );
    assert_eq!(sha256_file(&file), sha, "the file is untouched");
    assert!(ws.rows().is_empty(), "no file was tried");
    ws
}

// docs/SAFETY.md S11
#[test]
fn a_bucket_without_object_lock_is_refused_before_any_file() {
    let moto = MotoServer::start();
    refused_before_any_file(&moto.endpoint(), "ObjectLockConfigurationNotFoundError");
    let head = moto.request("HEAD", &format!("/{BUCKET}/a.log.gz"), &[], b"");
    assert!(
        head.starts_with("HTTP/1.1 404"),
        "no object written: {head}"
    );

    let server = S3Server::start();
    refused_before_any_file(&server.endpoint(), "NotImplemented");
    assert!(!server.object_path(BUCKET, "a.log.gz").exists());
}

/// Upload flags, environment, and what the error must say.
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn object_lock_usage_errors_are_one_line() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 4);
    let nowhere = "http://127.0.0.1:9";
    let cases: [Case; 7] = [
        (&["--object-lock", "GOVERNANCE"], &[], "--object-lock-days"),
        (
            &["--object-lock-days", "5"],
            &[],
            "--object-lock/OBJECT_LOCK_MODE",
        ),
        (
            &[],
            &[("OBJECT_LOCK_MODE", "COMPLIANCE")],
            "--object-lock-days",
        ),
        (
            &["--object-lock", "WORM", "--object-lock-days", "5"],
            &[],
            "GOVERNANCE",
        ),
        (
            &["--object-lock", "GOVERNANCE", "--object-lock-days", "0"],
            &[],
            "from 1 to 36500",
        ),
        (
            &["--object-lock", "governance", "--object-lock-days", "36501"],
            &[],
            "from 1 to 36500",
        ),
        (
            &["--object-lock", "GOVERNANCE", "--object-lock-days", "ten"],
            &[],
            "from 1 to 36500",
        ),
    ];
    for (extra, env, says) in cases {
        let out = ws.run(&ws.s3_upload_args(nowhere, extra), env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    let out = ws.upload_local(&LOCK, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--object-lock"), "{err}");
    assert!(err.contains("S3 buckets only"), "{err}");
    assert!(ws.logs().join("a.log.gz").exists());
}

fn doctor(ws: &Workspace, endpoint: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "doctor".to_string(),
        "--dir".into(),
        ws.logs().display().to_string(),
        "--bucket".into(),
        BUCKET.into(),
        "--endpoint".into(),
        endpoint.into(),
        "--db".into(),
        ws.db().display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = ws.run(&args, &[]);
    assert!(!stderr(&out).contains("panicked"));
    (out.status.code().unwrap(), stdout(&out))
}

/// The one doctor line about Object Lock, with its level tag.
fn lock_line(text: &str) -> &str {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Object Lock:"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    lines[0]
}

/// A bucket with a default retention: doctor names it.
#[test]
fn doctor_reports_the_default_retention() {
    let moto = MotoServer::start_with_object_lock();
    let config = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>30</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
    let put = moto.request(
        "PUT",
        &format!("/{BUCKET}?object-lock"),
        &[("Content-Type", "application/xml")],
        config.as_bytes(),
    );
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    let ws = Workspace::new();
    // Its probe object gets the default retention: a PUT moto checks.
    let proxy = aws_like(&moto);
    let (code, text) = doctor(&ws, &proxy.endpoint(), &[]);
    assert_eq!(code, 0, "{text}");
    let line = lock_line(&text);
    assert!(line.starts_with("[ OK ]"), "{text}");
    assert!(
        line.contains("Object Lock: enabled, default retention GOVERNANCE 30 days"),
        "{text}"
    );
    let (code, text) = doctor(&ws, &proxy.endpoint(), &LOCK);
    assert_eq!(code, 0, "{text}");
    assert!(
        lock_line(&text)
            .contains("new objects locked by --object-lock GOVERNANCE --object-lock-days 1"),
        "{text}"
    );
}

#[test]
fn doctor_reports_a_bucket_without_object_lock() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let (code, text) = doctor(&ws, &server.endpoint(), &[]);
    assert_eq!(code, 0, "{text}");
    let line = lock_line(&text);
    assert!(line.starts_with("[ OK ]"), "{text}");
    assert!(
        line.contains("Object Lock: not enabled (NotImplemented)"),
        "{text}"
    );

    let (code, text) = doctor(&ws, &server.endpoint(), &LOCK);
    assert_eq!(code, 1, "{text}");
    let line = lock_line(&text);
    assert!(line.starts_with("[FAIL]"), "{text}");
    assert!(line.contains("not enabled"), "{text}");
    assert!(line.contains("-> fix:"), "{text}");

    let moto = MotoServer::start_with_object_lock();
    let (code, text) = doctor(&ws, &moto.endpoint(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        lock_line(&text).contains("Object Lock: enabled, no default retention"),
        "{text}"
    );
}

/// `prune --yes` leaves a locked object in place, however old its row says
/// it is, and removes an unlocked one beside it.
// docs/SAFETY.md S28
#[test]
fn prune_never_deletes_a_locked_object() {
    let moto = MotoServer::start_with_object_lock();
    let proxy = aws_like(&moto);
    let ws = Workspace::new();
    ws.write_gz("fw/locked.log.gz", 100, 1);
    let out = ws.upload_to(&proxy.endpoint(), &LOCK);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    ws.write_gz("fw/free.log.gz", 100, 2);
    let out = ws.upload_to(&proxy.endpoint(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Two years old, as far as the inventory knows.
    rusqlite::Connection::open(ws.db())
        .unwrap()
        .execute(
            "UPDATE backups SET uploaded_at = '2024-01-01T00:00:00Z'",
            [],
        )
        .unwrap();
    let out = ws.on_bucket(
        "prune",
        &proxy.endpoint(),
        &["--older-than", "400", "--yes"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("locked    fw/locked.log.gz: Object Lock GOVERNANCE until"),
        "{text}"
    );
    assert!(text.contains("pruned    fw/free.log.gz"), "{text}");
    let head = |k: &str| moto.request("HEAD", &format!("/{BUCKET}/{k}"), &[], b"");
    assert!(head("fw/locked.log.gz").starts_with("HTTP/1.1 200"));
    assert!(head("fw/free.log.gz").starts_with("HTTP/1.1 404"));
}

/// Second review, item 5: the object was already there, locked GOVERNANCE
/// until a date that has passed. Only the lock's mode was checked, so
/// `upload --delete --object-lock GOVERNANCE` took it for a WORM copy and
/// deleted the file, though anyone may now delete that copy. The rule of a
/// new upload applies: a retention that ended is no lock; the file is kept.
// docs/SAFETY.md S11
#[test]
fn item_05_an_expired_lock_on_an_existing_copy_is_no_worm_copy() {
    let moto = MotoServer::start_with_object_lock();
    let proxy = aws_like(&moto);
    let ws = Workspace::new();
    let file = ws.write_gz("fw/old.log.gz", 100, 9);
    let bytes = std::fs::read(&file).unwrap();
    let sha = sha256_file(&file);
    let put = moto.request(
        "PUT",
        &format!("/{BUCKET}/fw/old.log.gz"),
        &[
            ("x-amz-meta-sha256", &sha),
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            (
                "x-amz-object-lock-retain-until-date",
                "2020-01-01T00:00:00Z",
            ),
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
        ],
        &bytes,
    );
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    let head = moto.request("HEAD", &format!("/{BUCKET}/fw/old.log.gz"), &[], b"");
    assert_eq!(
        header(&head, "x-amz-object-lock-retain-until-date"),
        Some("2020-01-01T00:00:00Z"),
        "moto keeps the expired retention: {head}"
    );
    let out = ws.upload_to(&proxy.endpoint(), &lock_and(&["--delete"]));
    assert_exit(&out, 1);
    assert!(
        file.exists(),
        "deleted on an expired lock: {}",
        stderr(&out)
    );
    let row = row_for(&ws.rows(), "fw/old.log.gz").clone();
    assert_eq!(row.status(), "failed_verify");
    let why = row.error.unwrap_or_default();
    assert!(why.contains("which has passed"), "{why}");
}
