//! An endpoint set up wrong is one line that names the fix, the same in
//! `upload` (its one error, exit 1) and in `doctor` (a `[FAIL]` line with
//! `-> fix:`, exit 1): `https://` to a plain-HTTP server, a web server that
//! is not an S3 API, and a certificate from an unknown CA, for another name,
//! or expired. Each runs the real binary against s3s-fs, behind the Python
//! TLS proxy for the certificate cases.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use common::pki::{
    make_pki, self_signed_ca_as_server, sign_expired_leaf, sign_leaf, start_tls_proxy_with,
};
use common::*;

/// `upload` of one file to `endpoint`: (exit status, stderr).
fn upload(ws: &Workspace, endpoint: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = ws.upload_to(endpoint, &[&["--retries", "0"], extra].concat());
    (out.status.code(), stderr(&out))
}

/// `doctor` against `endpoint`: (exit status, stdout).
fn doctor(ws: &Workspace, endpoint: &str, extra: &[&str]) -> (Option<i32>, String) {
    let (logs, db) = (ws.logs(), ws.db());
    let mut args = vec![
        "doctor",
        "--dir",
        logs.to_str().unwrap(),
        "--bucket",
        BUCKET,
        "--endpoint",
        endpoint,
        "--db",
        db.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = ws.run(&args, &[]);
    (out.status.code(), stdout(&out))
}

/// Runs `upload` and `doctor` against `endpoint` and checks that both show
/// `problem` and `fix` on one line, exit 1, and keep the file.
fn both_say(endpoint: &str, extra: &[&str], problem: &str, fix: &str) {
    let ws = Workspace::new();
    let file = ws.write_gz("a.log.gz", 20, 1);

    let (code, err) = upload(&ws, endpoint, extra);
    assert_eq!(code, Some(1), "{err}");
    let line = format!("fgbackup: error: {problem}: {fix}");
    assert!(err.lines().any(|l| l == line), "want\n{line}\nin:\n{err}");
    assert!(file.exists());

    let (code, out) = doctor(&ws, endpoint, extra);
    assert_eq!(code, Some(1), "{out}");
    let line = format!("[FAIL] destination s3://{BUCKET} at {endpoint}: {problem} -> fix: {fix}");
    assert!(out.lines().any(|l| l == line), "want\n{line}\nin:\n{out}");
    every_failure_has_a_fix(&out);
}

fn every_failure_has_a_fix(doctor_out: &str) {
    for l in doctor_out.lines().filter(|l| l.starts_with("[FAIL]")) {
        assert!(l.contains(" -> fix: "), "a failure without a fix: {l}");
    }
}

#[test]
fn https_to_a_plain_http_server() {
    let server = S3Server::start();
    let endpoint = format!("https://127.0.0.1:{}", server.port);
    both_say(
        &endpoint,
        &[],
        &format!("the endpoint {endpoint} answered in plain HTTP, not TLS"),
        "use http:// in --endpoint (or enable TLS on the server)",
    );
}

/// A web server that answers every request `404 Not Found` with an HTML
/// page, as a console port or a reverse proxy's default site does.
fn not_s3_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            // The request head, up to its empty line.
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let page = "<html><body><h1>404 Not Found</h1></body></html>";
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

#[test]
fn an_endpoint_that_is_not_an_s3_api() {
    let endpoint = format!("http://127.0.0.1:{}", not_s3_server());
    both_say(
        &endpoint,
        &[],
        &format!("the endpoint {endpoint} is not an S3 API (HTTP 404 without an S3 error)"),
        "check --endpoint (MinIO's API port is usually 9000, its console 9001)",
    );
}

/// A real S3 404 keeps its meaning: a missing bucket is named as such.
#[test]
fn a_missing_bucket_is_still_a_missing_bucket() {
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 20, 1);
    let mut args = ws.s3_upload_args(&server.endpoint(), &[]);
    let at = args.iter().position(|a| a == BUCKET).unwrap();
    args[at] = "no-such-bucket".into();
    let out = ws.run(&args, &[]);
    assert_exit(&out, 1);
    let line = format!(
        "fgbackup: error: bucket 'no-such-bucket' does not exist at {}: create it or fix --bucket/BUCKET",
        server.endpoint()
    );
    assert!(stderr(&out).lines().any(|l| l == line), "{}", stderr(&out));
}

/// A CA directory with the CA, the server key and its request.
fn pki(ws: &Workspace) -> PathBuf {
    let dir = ws.tmp.path().join("pki");
    std::fs::create_dir(&dir).unwrap();
    make_pki(&dir);
    dir
}

fn ca_file(dir: &Path) -> String {
    dir.join("ca.pem").display().to_string()
}

#[test]
fn a_certificate_from_an_unknown_ca() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let dir = pki(&ws);
    let proxy = start_tls_proxy_with(&dir, "server.pem", server.port);
    let endpoint = format!("https://127.0.0.1:{}", proxy.port);
    both_say(
        &endpoint,
        &[],
        &format!(
            "the certificate of {endpoint} is signed by a CA this machine does not trust (no --ca-file given)"
        ),
        "pass --ca-file with the PEM of the CA that signed it",
    );
}

#[test]
fn a_self_signed_ca_certificate_as_the_server_certificate() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let dir = pki(&ws);
    self_signed_ca_as_server(&dir, "selfsigned.pem");
    let proxy = start_tls_proxy_with(&dir, "selfsigned.pem", server.port);
    let endpoint = format!("https://127.0.0.1:{}", proxy.port);
    let ca = dir.join("selfsigned.pem").display().to_string();
    both_say(
        &endpoint,
        &["--ca-file", &ca],
        &format!(
            "the server at {endpoint} presents a CA certificate as its own (a self-signed one made with openssl req -x509?)"
        ),
        "issue the server a certificate (basicConstraints CA:FALSE) signed by that CA, and pass the CA with --ca-file",
    );
}

#[test]
fn a_certificate_for_another_name() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let dir = pki(&ws);
    sign_leaf(&dir, "localhost.pem", "DNS:localhost");
    let proxy = start_tls_proxy_with(&dir, "localhost.pem", server.port);
    let endpoint = format!("https://127.0.0.1:{}", proxy.port);
    let ca = ca_file(&dir);
    let suggested = format!("https://localhost:{}", proxy.port);
    both_say(
        &endpoint,
        &["--ca-file", &ca],
        &format!("the certificate of {endpoint} is for localhost, not for 127.0.0.1"),
        &format!(
            "use the name the certificate is for in --endpoint ({suggested}), or reissue the certificate for 127.0.0.1"
        ),
    );
    // The fix works: the name the certificate is for.
    let ws = Workspace::new();
    ws.write_gz("b.log.gz", 20, 2);
    let out = ws.upload_to(&suggested, &["--ca-file", &ca]);
    assert_exit(&out, 0);
}

#[test]
fn an_expired_certificate() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let dir = pki(&ws);
    sign_expired_leaf(&dir, "expired.pem");
    let proxy = start_tls_proxy_with(&dir, "expired.pem", server.port);
    let endpoint = format!("https://127.0.0.1:{}", proxy.port);
    let ca = ca_file(&dir);
    let head = format!(
        "the certificate of {endpoint} expired on 2020-01-02T00:00:00Z (this machine's clock says "
    );
    let fix = "renew it, or check this machine's clock";
    let shaped = |l: &str, lead: &str, sep: &str| {
        l.strip_prefix(lead)
            .and_then(|rest| rest.strip_prefix(head.as_str()))
            .and_then(|rest| rest.strip_suffix(&format!("){sep}{fix}")))
            .is_some_and(|clock| clock.len() == "2026-11-22T01:00:00Z".len())
    };

    ws.write_gz("a.log.gz", 20, 1);
    let (code, err) = upload(&ws, &endpoint, &["--ca-file", &ca]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.lines().any(|l| shaped(l, "fgbackup: error: ", ": ")),
        "{err}"
    );

    let (code, out) = doctor(&ws, &endpoint, &["--ca-file", &ca]);
    assert_eq!(code, Some(1), "{out}");
    let lead = format!("[FAIL] destination s3://{BUCKET} at {endpoint}: ");
    assert!(out.lines().any(|l| shaped(l, &lead, " -> fix: ")), "{out}");
    every_failure_has_a_fix(&out);
}
