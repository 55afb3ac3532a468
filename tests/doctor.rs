//! `fgbackup doctor` against a real S3 server, with good and bad settings.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn doctor(
    ws: &Workspace,
    server_endpoint: &str,
    bucket: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, String) {
    let logs = ws.logs();
    let db = ws.db();
    let mut args = vec![
        "doctor",
        "--dir",
        logs.to_str().unwrap(),
        "--bucket",
        bucket,
        "--endpoint",
        server_endpoint,
        "--db",
        db.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = ws.run(&args, env);
    assert!(!stderr(&out).contains("panicked"));
    (out.status.code().unwrap(), stdout(&out))
}

#[test]
fn healthy_deployment_passes_every_check_and_leaves_nothing_behind() {
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    let env_file = ws.tmp.path().join("backup_fg");
    std::fs::write(&env_file, "BUCKET=fg-logs\nAWS_SECRET_ACCESS_KEY=x\n").unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, text) = doctor(
        &ws,
        &server.endpoint(),
        BUCKET,
        &["--delete", "--env-file", env_file.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        !text.contains("[FAIL]") && !text.contains("[WARN]"),
        "{text}"
    );
    for what in [
        "env file",
        "configuration",
        "log directory",
        "1 file(s) ready",
        "writable: --delete",
        "database",
        "S3 endpoint",
        "probe object written, verified",
    ] {
        assert!(text.contains(what), "missing '{what}' in:\n{text}");
    }
    assert!(
        text.ends_with("doctor: 0 failure(s), 0 warning(s)\n"),
        "{text}"
    );
    // The probe object is gone and the log file untouched.
    let leftovers: Vec<_> = walk(&server.root.path().join(BUCKET))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(ws.logs().join("a.log.gz").exists());
}

/// Every `[FAIL]` line says what to do about it.
fn every_failure_has_a_fix(text: &str) {
    for l in text.lines().filter(|l| l.starts_with("[FAIL]")) {
        assert!(l.contains(" -> fix: "), "a failure without a fix: {l}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

// docs/SAFETY.md S30
#[test]
fn each_problem_is_a_failure_with_a_fix() {
    let mut server = S3Server::start();
    let ws = Workspace::new();
    // World-readable env file with a secret: a warning naming the fix.
    let env_file = ws.tmp.path().join("backup_fg");
    std::fs::write(
        &env_file,
        "GMAIL_APP_PASSWORD=secret\nAPP_TOKENS=secret\nAWS_SECRET_ACCESS_KEY=secret\n",
    )
    .unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, text) = doctor(
        &ws,
        &server.endpoint(),
        BUCKET,
        &["--env-file", env_file.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "a warning alone does not fail: {text}");
    assert!(
        text.contains("[WARN]") && text.contains(&format!("chmod 600 {}", env_file.display())),
        "{text}"
    );
    // Always in the same order, whatever the file's: credentials first.
    assert!(
        text.contains("holds AWS_SECRET_ACCESS_KEY, GMAIL_APP_PASSWORD, APP_TOKENS but"),
        "{text}"
    );
    assert!(
        !text.contains("secret\n") && !text.contains("=secret"),
        "{text}"
    );

    let (code, text) = doctor(&ws, &server.endpoint(), "no-such-bucket", &[], &[]);
    assert_eq!(code, 1);
    every_failure_has_a_fix(&text);
    assert!(
        text.contains("[FAIL]") && text.contains("does not exist"),
        "{text}"
    );

    let (code, text) = doctor(
        &ws,
        &server.endpoint(),
        BUCKET,
        &[],
        &[("AWS_SECRET_ACCESS_KEY", "wrong-secret")],
    );
    assert_eq!(code, 1);
    every_failure_has_a_fix(&text);
    assert!(
        text.contains("SignatureDoesNotMatch") || text.contains("InvalidAccessKeyId"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret"));

    let (code, text) = doctor(&ws, &server.endpoint(), BUCKET, &["--workers", "0"], &[]);
    assert_eq!(code, 1);
    every_failure_has_a_fix(&text);
    assert!(
        text.contains("[FAIL] configuration") && text.contains("--workers"),
        "{text}"
    );

    let endpoint = server.endpoint();
    server.stop();
    let (code, text) = doctor(&ws, &endpoint, BUCKET, &[], &[]);
    assert_eq!(code, 1);
    every_failure_has_a_fix(&text);
    assert!(
        text.contains("not reachable") && text.contains("fix:"),
        "{text}"
    );
}

/// A server that ignores `If-None-Match` (Garage does) and does not verify
/// checksums cannot keep two writers of one key apart: doctor says so.
// docs/SAFETY.md S2
#[test]
fn server_without_conditional_writes_or_checksum_checks_is_reported() {
    use common::moto::MotoServer;
    use common::proxy::{FaultProxy, Options};
    let moto = MotoServer::start();
    let garage_like = FaultProxy::start_with(
        moto.port,
        Options {
            strip_request_headers: vec!["if-none-match"],
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let (code, text) = doctor(&ws, &garage_like.endpoint(), BUCKET, &[], &[]);
    assert_eq!(code, 0, "warnings only: {text}");
    let warn = |what: &str| {
        text.lines()
            .any(|l| l.starts_with("[WARN]") && l.contains(what) && l.contains("-> fix:"))
    };
    assert!(warn("If-None-Match"), "{text}");
    assert!(warn("x-amz-checksum-sha256 was wrong"), "{text}");
    assert!(text.contains("probe object written, verified"), "{text}");
}
