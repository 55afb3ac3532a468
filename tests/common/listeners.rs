//! Real servers on loopback for notification tests: an SMTP server
//! (aiosmtpd, in Python) and an HTTP listener that records webhook posts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running aiosmtpd; messages land in `outdir` as JSON files.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub outdir: tempfile::TempDir,
}

impl SmtpServer {
    /// `mode`: starttls | smtps | plain. TLS modes use `pki`'s server cert and
    /// accept only `user`/`password`.
    pub fn start(mode: &str, pki: Option<&Path>, user: &str, password: &str) -> SmtpServer {
        let outdir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(mode).arg(outdir.path());
        if let Some(pki) = pki {
            cmd.arg(pki.join("server.pem"))
                .arg(pki.join("server.key"))
                .arg(user)
                .arg(password);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd is needed (scripts/test.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtp server did not start: {line:?}"));
        SmtpServer {
            child,
            port,
            outdir,
        }
    }

    /// Received messages, oldest first.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.outdir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One recorded HTTP request.
#[derive(Debug, Clone)]
pub struct Posted {
    pub method: String,
    pub path: String,
    pub body: serde_json::Value,
}

/// Records every request; answers 500 to the first `fail_first` of them.
pub struct HookListener {
    pub port: u16,
    pub posts: Arc<Mutex<Vec<Posted>>>,
}

impl HookListener {
    pub fn start(fail_first: usize) -> HookListener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        {
            let posts = posts.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(mut conn) = conn else { continue };
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        continue;
                    }
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let mut parts = request_line.split_whitespace();
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let status = if n < fail_first {
                        "500 Internal Server Error"
                    } else {
                        "200 OK"
                    };
                    posts.lock().unwrap().push(Posted {
                        method: parts.next().unwrap_or("").to_string(),
                        path: parts.next().unwrap_or("").to_string(),
                        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                    });
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                }
            });
        }
        HookListener { port, posts }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn posts(&self) -> Vec<Posted> {
        self.posts.lock().unwrap().clone()
    }
}

/// Waits (bounded) until `f` is true.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
