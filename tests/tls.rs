//! HTTPS to an S3 endpoint signed by a private CA (the air-gapped MinIO case):
//! trusted with `--ca-file`, refused with a clear hint without it.

use crate::common;

use common::pki::{make_pki, start_tls_proxy};
use common::*;

#[test]
fn private_ca_is_trusted_only_with_ca_file() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let pki = ws.tmp.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    make_pki(&pki);
    let proxy = start_tls_proxy(&pki, server.port);
    let f = ws.write_gz("tls.log.gz", 300, 1);
    let endpoint = format!("https://127.0.0.1:{}", proxy.port);
    let logs = ws.logs();
    let db = ws.db();
    let ca = pki.join("ca.pem");
    let base = [
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
        "--retries",
        "0",
    ];

    let out = ws.run(&base, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("--ca-file"), "the error names the fix: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let mut with_ca = base.to_vec();
    with_ca.extend(["--ca-file", ca.to_str().unwrap(), "--delete"]);
    let out = ws.run(&with_ca, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ws.rows().last().unwrap().status(), "uploaded");
    assert!(!f.exists());
    assert!(server.object_path(BUCKET, "tls.log.gz").exists());
}
