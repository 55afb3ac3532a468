//! HTTPS to an S3 endpoint signed by a private CA (the air-gapped MinIO case):
//! trusted with `--ca-file`, refused with a clear hint without it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

struct TlsProxy {
    child: Child,
    port: u16,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for the TLS tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a server certificate for 127.0.0.1 signed by it.
fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=fgbackup test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn start_proxy(dir: &Path, upstream: u16) -> TlsProxy {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_proxy.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(dir.join("server.pem"))
        .arg(dir.join("server.key"))
        .arg(upstream.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the TLS tests");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("proxy port");
    TlsProxy { child, port }
}

#[test]
fn private_ca_is_trusted_only_with_ca_file() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let pki = ws.tmp.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    make_pki(&pki);
    let proxy = start_proxy(&pki, server.port);
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
