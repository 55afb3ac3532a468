//! `fgbackup push`: the client of `PUT /upload/NAME` (the seed's
//! `uploader.sh`, in Rust). Per file: hash it, ask what the server holds
//! of it (`HEAD`), send the rest (`PUT`, or `PATCH` from `Upload-Offset`
//! after a cut), retry with backoff when the server or the network says
//! "later", and delete the file (with `--delete`) only after a 201 or 200
//! whose sha256 and size are the file's own, read once more just before.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::wire;
use crate::error::{Error, Result};

/// Tries per file, and the first and longest waits between them.
const TRIES: u32 = 8;
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// The body's send timeout is this plus the time the bytes take at
/// [`FLOOR_RATE`]: a link slower than that is not worth waiting for.
const SEND_BASE: Duration = Duration::from_secs(60);
const FLOOR_RATE: u64 = 64 * 1024;
/// How long the server may take to archive a whole body after it arrived
/// (read back, gzip proof, S3 upload and verify of up to `--push-max-file`).
const ARCHIVE_WAIT: Duration = Duration::from_secs(30 * 60);

/// A file read and hashed.
pub struct Local {
    pub sha256: String,
    pub size: u64,
    id: (u64, u64, i64, i64),
}

/// What became of one file.
#[derive(Debug)]
pub struct Pushed {
    /// HTTP status of the last answer (0: none came).
    pub http: u16,
    /// `archived` (201), `exists` (200) or `failed`.
    pub status: &'static str,
    pub key: Option<String>,
    pub sha256: Option<String>,
    pub size: u64,
    pub deleted: bool,
    pub error: Option<String>,
    /// Bytes handed to the network in bodies, every try included.
    pub sent: u64,
    /// Where the last try's body started: above 0 when it resumed from
    /// what the server held.
    pub resumed_from: u64,
}

/// A connection to one server with one token.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

/// What one request got: the answer, why none came (worth another try),
/// or why none can (a request the client cannot make, a TLS refusal).
enum Reply {
    Answer(u16, Value, Option<u64>, Option<String>),
    NoAnswer(String),
    Never(String),
}

impl Client {
    pub fn new(url: &str, token: &str, tls: ureq::tls::TlsConfig) -> Client {
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(ARCHIVE_WAIT))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            // A redirect is answered as it is: the token goes to this URL only.
            .max_redirects(0)
            .build()
            .into();
        Client {
            agent,
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// Pushes one file (already hashed as `local`) under `name`.
    pub fn push(&self, path: &Path, name: &str, local: &Local, delete: bool) -> Pushed {
        let url = format!("{}/upload/{}", self.url, encode(name));
        let mut out = Pushed {
            http: 0,
            status: "failed",
            key: None,
            sha256: None,
            size: local.size,
            deleted: false,
            error: None,
            sent: 0,
            resumed_from: 0,
        };
        let mut wait = FIRST_WAIT;
        for attempt in 1..=TRIES {
            let (reply, sent, offset) = self.attempt(&url, path, local);
            out.sent += sent;
            out.resumed_from = offset;
            let retry_after = match reply {
                Reply::Never(why) => {
                    out.error = Some(why);
                    break;
                }
                Reply::NoAnswer(why) => {
                    out.error = Some(why);
                    None
                }
                Reply::Answer(code, body, after, _) => {
                    out.http = code;
                    match settle(code, &body, local, &mut out) {
                        Settled::Done => break,
                        Settled::Retry => after,
                    }
                }
            };
            if attempt == TRIES || crate::signal::stop_requested() {
                break;
            }
            let pause = retry_after
                .map_or(wait, Duration::from_secs)
                .min(LONGEST_WAIT);
            log::info!(
                "{name}: try {attempt} of {TRIES} did not archive it ({}); again in {} s",
                out.error.as_deref().unwrap_or("no answer"),
                pause.as_secs()
            );
            crate::signal::sleep_unless_stopped(pause);
            wait = (wait * 2).min(LONGEST_WAIT);
        }
        if delete && out.status != "failed" {
            out.deleted = self.delete(path, local, &mut out);
        }
        out
    }

    /// HEAD, then PUT or PATCH; the bytes of body sent, and the offset
    /// they started from.
    fn attempt(&self, url: &str, path: &Path, local: &Local) -> (Reply, u64, u64) {
        let offset = match self.request("HEAD", url, &[]) {
            Reply::Answer(200, _, Some(offset), Some(sha))
                if sha == local.sha256 && offset > 0 && offset < local.size =>
            {
                offset
            }
            // A refusal of the HEAD (which has no body to say why) is
            // refused again, with its reason, by the PUT.
            _ => 0,
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("cannot open {}: {e}", path.display());
                return (Reply::NoAnswer(why), 0, offset);
            }
        };
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            let why = format!("cannot read {}: {e}", path.display());
            return (Reply::NoAnswer(why), 0, offset);
        }
        let length = local.size - offset;
        let mut body = Metered {
            inner: file.take(length),
            sent: 0,
        };
        let reply = self.send(url, offset, length, local, &mut body);
        (reply, body.sent, offset)
    }

    fn send(
        &self,
        url: &str,
        offset: u64,
        length: u64,
        local: &Local,
        body: &mut Metered<std::io::Take<File>>,
    ) -> Reply {
        let timeout = SEND_BASE + Duration::from_secs(length / FLOOR_RATE);
        let method = if offset > 0 { "PATCH" } else { "PUT" };
        let mut req = http::Request::builder()
            .method(method)
            .uri(url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header(wire::SHA256, &local.sha256)
            .header("Content-Length", length.to_string())
            .header("Content-Type", "application/octet-stream")
            .header("Expect", "100-continue");
        if offset > 0 {
            req = req.header(wire::UPLOAD_OFFSET, offset.to_string());
        }
        let req = match req.body(ureq::SendBody::from_reader(body)) {
            Ok(r) => r,
            Err(e) => return Reply::NoAnswer(format!("bad request for {url}: {e}")),
        };
        let configured = self
            .agent
            .configure_request(req)
            .timeout_send_body(Some(timeout))
            .build();
        reply(self.agent.run(configured))
    }

    fn request(&self, method: &str, url: &str, headers: &[(&str, String)]) -> Reply {
        let mut req = http::Request::builder()
            .method(method)
            .uri(url)
            .header("Authorization", format!("Bearer {}", self.token));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        match req.body(()) {
            Ok(r) => reply(self.agent.run(r)),
            Err(e) => Reply::NoAnswer(format!("bad request for {url}: {e}")),
        }
    }

    /// Deletes the file if it is still, byte for byte, what the server
    /// confirmed.
    fn delete(&self, path: &Path, local: &Local, out: &mut Pushed) -> bool {
        let again = match hash(path) {
            Ok(l) => l,
            Err(e) => {
                out.error = Some(format!("kept: {e}"));
                return false;
            }
        };
        if again.id != local.id || again.sha256 != local.sha256 {
            out.error = Some("kept: the file changed after it was sent".into());
            return false;
        }
        match std::fs::remove_file(path) {
            Ok(()) => true,
            Err(e) => {
                out.error = Some(format!("kept: cannot delete {}: {e}", path.display()));
                false
            }
        }
    }
}

/// How an answer ends a try.
enum Settled {
    Done,
    Retry,
}

/// Reads an answer into `out`: done (archived, exists, or refused for
/// good) or worth another try.
fn settle(code: u16, body: &Value, local: &Local, out: &mut Pushed) -> Settled {
    let reason = body["error"].as_str().unwrap_or("").to_string();
    match code {
        200 | 201 => {
            let sha = body["sha256"].as_str().unwrap_or("");
            let size = body["size"].as_u64();
            out.key = body["key"].as_str().map(str::to_string);
            out.sha256 = Some(sha.to_string());
            if sha == local.sha256 && size == Some(local.size) {
                out.status = if code == 201 { "archived" } else { "exists" };
                out.error = None;
            } else {
                out.error = Some(format!(
                    "the server confirmed sha256 {sha} ({size:?} bytes), not this file's {} ({} bytes): kept",
                    local.sha256, local.size
                ));
            }
            Settled::Done
        }
        // The spool is full: the admin must make room; the file is kept
        // for the next run.
        507 => {
            out.error = Some(format!("{code}: {reason}"));
            Settled::Done
        }
        // Later: the server is busy, a body cut or too slow, an archive
        // that failed, or another offset than we thought.
        408 | 500..=599 => {
            out.error = Some(format!("{code}: {reason}"));
            Settled::Retry
        }
        409 if body["error"]
            .as_str()
            .is_some_and(|e| e.contains("in progress") || e.contains("continue from there")) =>
        {
            out.error = Some(format!("{code}: {reason}"));
            Settled::Retry
        }
        300..=399 => {
            out.error = Some(format!(
                "{code}: the server redirects; give the address it names as --url"
            ));
            Settled::Done
        }
        _ => {
            out.error = Some(format!("{code}: {reason}"));
            Settled::Done
        }
    }
}

fn reply(result: std::result::Result<http::Response<ureq::Body>, ureq::Error>) -> Reply {
    match result {
        // The network, or a server that went away or is not there yet.
        Err(
            e @ (ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled
            | ureq::Error::Protocol(_)),
        ) => Reply::NoAnswer(e.to_string()),
        Err(e) => Reply::Never(e.to_string()),
        Ok(resp) => {
            let code = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let offset = header(wire::UPLOAD_OFFSET)
                .as_deref()
                .and_then(wire::number);
            let after = header("Retry-After").as_deref().and_then(wire::number);
            let sha = header(wire::SHA256);
            let mut body = resp.into_body();
            let text = body
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            let value = serde_json::from_str(&text).unwrap_or(Value::Null);
            // HEAD answers carry the offset; others the Retry-After.
            Reply::Answer(code, value, offset.or(after), sha)
        }
    }
}

/// Reads `path` once: SHA-256, size, and identity (to tell a change).
pub fn hash(path: &Path) -> Result<Local> {
    use std::os::unix::fs::MetadataExt;
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let before = f.metadata().map_err(|e| Error::io("read", path, e))?;
    if !before.is_file() {
        return Err(Error::usage(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    let after = f.metadata().map_err(|e| Error::io("read", path, e))?;
    let id = (after.dev(), after.ino(), after.mtime(), after.mtime_nsec());
    if size != after.len() || (before.mtime(), before.mtime_nsec()) != (id.2, id.3) {
        return Err(Error::runtime(format!(
            "{} changed while it was read (still being written?)",
            path.display()
        )));
    }
    Ok(Local {
        sha256: super::token::hex(&h.finalize()),
        size,
        id,
    })
}

/// The name percent-encoded for the URL: everything but unreserved
/// characters and `/`.
pub fn encode(name: &str) -> String {
    use std::fmt::Write;
    name.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

/// The body's reader, counting what was sent (for resumes and the display).
struct Metered<R> {
    inner: R,
    sent: u64,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        crate::in_flight::moved(n as u64);
        Ok(n)
    }
}

/// One line of `--json`.
pub fn json_line(path: &Path, name: &str, p: &Pushed) -> Value {
    json!({
        "file": path.display().to_string(),
        "name": name,
        "status": p.status,
        "http": p.http,
        "key": p.key,
        "sha256": p.sha256,
        "size": p.size,
        "sent": p.sent,
        "resumed_from": p.resumed_from,
        "deleted": p.deleted,
        "error": p.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_the_url() {
        assert_eq!(encode("a b%.gz"), "a%20b%25.gz");
        assert_eq!(encode("FGT-A/x_1~.gz"), "FGT-A/x_1~.gz");
        assert_eq!(encode("é.gz"), "%C3%A9.gz");
    }
}
