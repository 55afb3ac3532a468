//! moto in server mode: a second, lenient S3 implementation. It does not
//! check signatures, so a proxy may rewrite requests on the way (e.g. drop
//! `If-None-Match` to play a server without conditional writes, as Garage).
//! Unlike s3s-fs it implements Object Lock (`start_with_object_lock`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use super::{BUCKET, free_port, wait_for_port};

/// An `Authorization` header moto accepts (it checks no signature, but
/// treats some requests without one as anonymous).
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=fgtestaccess/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// A running `moto_server` with the bucket [`BUCKET`], killed on drop.
pub struct MotoServer {
    child: Child,
    pub port: u16,
}

impl MotoServer {
    /// moto with [`BUCKET`] created plainly (no Object Lock).
    pub fn start() -> MotoServer {
        MotoServer::launch(&[])
    }

    /// moto with [`BUCKET`] created with Object Lock enabled (which also
    /// turns on versioning), no default retention.
    pub fn start_with_object_lock() -> MotoServer {
        MotoServer::launch(&[("x-amz-bucket-object-lock-enabled", "true")])
    }

    fn launch(bucket_headers: &[(&str, &str)]) -> MotoServer {
        let port = free_port();
        let mut child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto[server] is needed (scripts/test.sh installs it)");
        wait_for_port(port, &mut child);
        let moto = MotoServer { child, port };
        let answer = moto.request("PUT", &format!("/{BUCKET}"), bucket_headers, b"");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One raw request (`target` is the path and query, e.g.
    /// `/fg-logs/a.gz?versionId=x`), with an Authorization header moto
    /// accepts; the whole answer as text, status line first.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> String {
        String::from_utf8_lossy(&self.request_raw(method, target, headers, body)).into_owned()
    }

    /// [`MotoServer::request`], the answer as bytes.
    pub fn request_raw(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: {AUTH}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        answer
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
