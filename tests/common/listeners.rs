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

/// A server that hangs: it accepts TCP connections, answers the first lines
/// it receives from a fixed script (the first entry is sent on connect, as a
/// greeting) and then goes silent forever without closing. With an empty
/// script it never says a word: an SMTP server without a greeting, a TLS
/// server that never finishes the handshake, an HTTP server that never
/// answers. Connections stay open until the test process ends.
pub struct Stall {
    pub port: u16,
    accepted: Arc<(Mutex<usize>, std::sync::Condvar)>,
}

impl Stall {
    pub fn start(script: &'static [&'static str]) -> Stall {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                {
                    let (n, cv) = &*counter;
                    *n.lock().unwrap() += 1;
                    cv.notify_all();
                }
                std::thread::spawn(move || stall_conn(conn, script));
            }
        });
        Stall { port, accepted }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        *self.accepted.0.lock().unwrap()
    }

    /// Blocks until `n` connections were accepted; panics after `within`.
    pub fn wait_accepted(&self, n: usize, within: Duration) {
        let (count, cv) = &*self.accepted;
        let guard = count.lock().unwrap();
        let (guard, timeout) = cv.wait_timeout_while(guard, within, |c| *c < n).unwrap();
        assert!(
            !timeout.timed_out(),
            "only {} of {n} connection(s) accepted within {within:?}",
            *guard
        );
    }
}

/// Plays `script` on one connection, then holds it open and silent.
fn stall_conn(mut conn: std::net::TcpStream, script: &[&str]) {
    let mut lines = script.iter();
    if let Some(greeting) = lines.next() {
        let _ = write!(conn, "{greeting}\r\n");
    }
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for reply in lines {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let _ = write!(conn, "{reply}\r\n");
    }
    // Silent from here on; keep reading so the peer never sees a full
    // window, and hold the socket until the peer closes it.
    let mut sink = [0u8; 4096];
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}

/// A started `fgbackup` whose stdout and stderr are collected in the
/// background, so the test can wait on it with a deadline or signal it.
pub struct Running {
    pub pid: u32,
    started: Instant,
    done: std::sync::mpsc::Receiver<std::process::Output>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start fgbackup");
        let pid = child.id();
        let (tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(out) = child.wait_with_output() {
                let _ = tx.send(out);
            }
        });
        Running {
            pid,
            started: Instant::now(),
            done,
        }
    }

    /// Sends `sig` (libc::SIGTERM...) to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory preconditions; the pid is our child,
        // not yet reaped while `done` has not delivered its output.
        let rc = unsafe { libc::kill(self.pid as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid);
    }

    /// Waits for the exit; on `within` passing, kills the process and panics
    /// with what it printed so far. Returns the output and the time since start.
    pub fn finish_within(self, within: Duration) -> (std::process::Output, Duration) {
        match self.done.recv_timeout(within) {
            Ok(out) => (out, self.started.elapsed()),
            Err(_) => {
                self.signal(libc::SIGKILL);
                let out = self.done.recv_timeout(Duration::from_secs(10));
                panic!(
                    "fgbackup did not finish within {within:?}; it printed: {}",
                    out.map(|o| String::from_utf8_lossy(&o.stderr).to_string())
                        .unwrap_or_default()
                );
            }
        }
    }
}
