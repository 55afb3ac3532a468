//! A private CA with a server certificate for 127.0.0.1 (openssl), wrong
//! certificates for the same key (another name, expired), and a
//! TLS-terminating proxy (Python) to put HTTPS in front of a plain server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct TlsProxy {
    child: Child,
    pub port: u16,
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
pub fn make_pki(dir: &Path) {
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
    sign_leaf(dir, "server.pem", "IP:127.0.0.1");
}

/// The extensions of a server certificate for `san` (`IP:127.0.0.1`,
/// `DNS:localhost`), written to `dir/<name>`.
fn write_ext(dir: &Path, name: &str, san: &str) {
    let text = format!(
        "subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    );
    std::fs::write(dir.join(name), text).unwrap();
}

/// `dir/<out>`: a certificate for `server.key` valid for `san`, signed by
/// the CA of [`make_pki`], valid from now for 2 days.
pub fn sign_leaf(dir: &Path, out: &str, san: &str) {
    let ext = format!("{out}.ext");
    write_ext(dir, &ext, san);
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
            out,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

/// `dir/<out>`: like the certificate of [`make_pki`] (same CA, key and
/// name) but valid only on 2020-01-01: expired. OpenSSL 3.0's `x509` cannot
/// set past dates; `openssl ca` can.
pub fn sign_expired_leaf(dir: &Path, out: &str) {
    write_ext(dir, "expired.ext", "IP:127.0.0.1");
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test_ca\n[test_ca]\ndatabase = index.txt\nnew_certs_dir = .\ncertificate = ca.pem\nprivate_key = ca.key\nserial = ca.serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("ca.serial"), "1000\n").unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-in",
            "server.csr",
            "-out",
            out,
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-extfile",
            "expired.ext",
        ],
    );
}

/// `dir/<out>`: a self-signed certificate for `server.key` as `openssl req
/// -x509` makes it (a CA certificate, CA:TRUE), for 127.0.0.1.
pub fn self_signed_ca_as_server(dir: &Path, out: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-key",
            "server.key",
            "-out",
            out,
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
}

pub fn start_tls_proxy(dir: &Path, upstream: u16) -> TlsProxy {
    start_tls_proxy_with(dir, "server.pem", upstream)
}

/// A TLS proxy to `upstream` that presents `dir/<cert>` (for `server.key`).
pub fn start_tls_proxy_with(dir: &Path, cert: &str, upstream: u16) -> TlsProxy {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_proxy.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(dir.join(cert))
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
