//! A running `fgbackup serve`/`daemon` for tests that talk to its API over
//! a real socket with a real HTTP client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Workspace;
use super::rawhttp;

pub const TOKEN: &str = "api-token-0123456789abcdef";

/// A running `fgbackup serve`/`daemon`, its base URL and its log.
pub struct Api {
    pub child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Api {
    /// Starts `fgbackup ARGS --listen 127.0.0.1:0` and waits for its "listening" line.
    pub fn start(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Api {
        Api::start_limited(ws, args, env, None)
    }

    /// `fgbackup daemon --interval INTERVAL` with the arguments of an upload
    /// (`upload_args`, e.g. [`Workspace::local_upload_args`]), serving the API.
    pub fn daemon(
        ws: &Workspace,
        upload_args: &[String],
        interval: &str,
        env: &[(&str, &str)],
    ) -> Api {
        let mut args: Vec<&str> = vec!["daemon", "--interval", interval];
        args.extend(upload_args.iter().skip(1).map(String::as_str));
        Api::start(ws, &args, env)
    }

    /// [`Api::start`] with the descriptor limit set to `nofile` (like
    /// `LimitNOFILE=` or `prlimit --nofile`) in the child before it runs.
    pub fn start_limited(
        ws: &Workspace,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Api {
        Api::start_on(ws, args, env, nofile, "127.0.0.1:0")
    }

    /// [`Api::start_limited`] on the address `listen` (a server restarted
    /// where its clients expect it).
    pub fn start_on(
        ws: &Workspace,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
        listen: &str,
    ) -> Api {
        use std::os::unix::process::CommandExt;
        let mut all = args.to_vec();
        all.extend(["--listen", listen]);
        let mut cmd = ws.command(&all, env);
        cmd.env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = nofile {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: setrlimit is async-signal-safe; `limit` is a copy owned by the closure.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("API listening on http://").nth(1) {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                    }
                    log.lock().unwrap().push(line);
                }
            })
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start: {:?}", log.lock().unwrap()));
        Api {
            child,
            base: format!("http://{addr}"),
            log,
            reader: Some(reader),
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, String, Vec<(String, String)>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut req = agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp.body_mut().read_to_string().unwrap();
        (status, body, headers)
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics if the server process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the server exited ({status}): {}",
                self.log.lock().unwrap().join("\n")
            );
        }
    }

    /// Log lines so far containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// `GET /health` over a fresh connection: its status, or `None` when the
    /// server does not answer within 5 s.
    pub fn health_status(&self) -> Option<u16> {
        use std::io::Write;
        let mut s = rawhttp::connect(self.addr()).ok()?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let (text, _) = rawhttp::read_until_close(&mut s, Instant::now() + Duration::from_secs(5));
        rawhttp::statuses(&text).first().copied()
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, body, _) = self.get(path, Some(TOKEN));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        // The pipe closed with the process: the reader has seen every line.
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status.code(), self.log.lock().unwrap().clone())
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
