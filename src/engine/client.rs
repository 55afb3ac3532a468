//! One HTTP(S) client for every S3 request of the process.
//!
//! rust-s3's blocking client closes the connection after each request and
//! builds its TLS settings anew each time, so over HTTPS every HEAD and PUT
//! paid a full handshake. Here one ureq agent keeps a pool of idle
//! connections (about one per worker) and one TLS configuration; bodies
//! stream from the file with `pread`, so a retry needs no copy and a worker
//! holds no more than ureq's buffers.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use s3::signing::uri_encode;
use sha2::{Digest, Sha256};
use url::Url;

use super::error::{EngineError, transport};
use super::sigv4::{EMPTY_SHA256, Signer};
use super::throttle::Throttle;
use crate::digest::hex;

/// Longest wait for a TCP (and TLS) connection, or a DNS answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while sending: a stalled peer, not a slow one.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the answer once the body is sent (the server may hash
/// and store a large object first), and longest silence while receiving.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer body read into memory (error documents, listings).
const MAX_TEXT: u64 = 8 * 1024 * 1024;

/// How the client reaches the bucket.
pub struct Settings {
    /// The bucket's base URL: `http://host:9000/bucket` (path style) or
    /// `https://bucket.s3.eu-west-1.amazonaws.com`.
    pub bucket_url: String,
    pub signer: Signer,
    /// Idle connections kept for reuse: about one per worker.
    pub pool: usize,
    /// Certificates trusted besides the bundled Mozilla roots (`--ca-file`).
    pub extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// `--bwlimit`: shared by every request body of the process.
    pub throttle: Option<Arc<Throttle>>,
}

/// A signed-request sender for one bucket.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    host: HeaderValue,
    signer: Signer,
    throttle: Option<Arc<Throttle>>,
}

/// The body of a request, and the SHA-256 it is signed with.
pub enum Payload<'a> {
    Empty,
    /// A small body built in memory (an XML document); hashed here.
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`, whose SHA-256 the caller took
    /// while reading the file: the server checks the bytes against it.
    File {
        file: &'a File,
        offset: u64,
        len: u64,
        sha256: &'a str,
    },
}

/// One request: method, object key (empty for the bucket), query, headers.
pub struct Call<'a> {
    pub method: &'static str,
    pub key: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, String)],
    pub payload: Payload<'a>,
}

impl<'a> Call<'a> {
    /// A request without query, extra headers or body.
    pub fn new(method: &'static str, key: &'a str) -> Call<'a> {
        Call {
            method,
            key,
            query: &[],
            headers: &[],
            payload: Payload::Empty,
        }
    }
}

/// An HTTP answer whose body has not been read yet.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    body: ureq::Body,
}

impl Answer {
    /// A header's value, trimmed; `None` when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// The body as text (at most [`MAX_TEXT`] bytes).
    pub fn text(mut self) -> Result<String, EngineError> {
        self.body
            .with_config()
            .limit(MAX_TEXT)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(transport)
    }

    /// The body as bytes (at most [`MAX_TEXT`]).
    pub fn bytes(mut self) -> Result<Vec<u8>, EngineError> {
        self.body
            .with_config()
            .limit(MAX_TEXT)
            .read_to_vec()
            .map_err(transport)
    }

    /// The body as a stream (a GET of an object).
    pub fn reader(&mut self) -> impl Read + '_ {
        self.body.as_reader()
    }

    /// Reads and drops the body, so the connection can be reused.
    pub fn finish(self) -> Result<(), EngineError> {
        self.text().map(drop)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Client {
    /// Builds the client; no network traffic happens here.
    pub fn new(s: Settings) -> Result<Client, EngineError> {
        let url = Url::parse(&s.bucket_url).map_err(|e| {
            EngineError::Request(format!("endpoint URL '{}' is not valid: {e}", s.bucket_url))
        })?;
        let host = url[url::Position::BeforeHost..url::Position::AfterPort].to_string();
        let host = HeaderValue::from_str(&host)
            .map_err(|_| EngineError::Request(format!("endpoint host '{host}' is not valid")))?;
        let tls = crate::tls::ureq_config(s.extra_roots);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .max_idle_connections(s.pool.max(1) * 2)
            .max_idle_connections_per_host(s.pool.max(1) * 2)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_send_request(Some(IDLE_TIMEOUT))
            .timeout_per_write(Some(IDLE_TIMEOUT))
            .timeout_per_read(Some(ANSWER_TIMEOUT))
            .timeout_recv_response(Some(ANSWER_TIMEOUT))
            .user_agent(concat!("fgbackup/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: config.new_agent(),
            base: s.bucket_url.trim_end_matches('/').to_string(),
            host,
            signer: s.signer,
            throttle: s.throttle,
        })
    }

    /// The URL of `key` (no query), as recorded in the inventory.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{}", self.base, uri_encode(key, false))
    }

    /// Signs and sends `call`; any HTTP status is an `Ok` answer.
    pub fn send(&self, call: &Call<'_>) -> Result<Answer, EngineError> {
        let builder = self.signed(call)?;
        match &call.payload {
            Payload::Empty => self.run(builder.body(ureq::SendBody::none())),
            Payload::Bytes(b) => self.run(builder.body(ureq::SendBody::from_reader(&mut &b[..]))),
            Payload::File {
                file, offset, len, ..
            } => {
                let mut reader = Range {
                    file,
                    pos: *offset,
                    end: offset + len,
                    throttle: self.throttle.as_deref(),
                    failed: None,
                };
                let result = self.run(builder.body(ureq::SendBody::from_reader(&mut reader)));
                match reader.failed.take() {
                    Some(e) => Err(EngineError::Source(e)),
                    None => result,
                }
            }
        }
    }

    /// The request line and headers of `call`, signed.
    fn signed(&self, call: &Call<'_>) -> Result<http::request::Builder, EngineError> {
        let url = self.full_url(call)?;
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, self.host.clone());
        for (name, value) in call.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| EngineError::Request(format!("bad header name {name}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| EngineError::Request(format!("bad value for header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let (length, payload_sha) = match &call.payload {
            Payload::Empty => (0, EMPTY_SHA256.to_string()),
            Payload::Bytes(b) => (b.len() as u64, hex(&Sha256::digest(b))),
            Payload::File { len, sha256, .. } => (*len, sha256.to_string()),
        };
        if length > 0 || matches!(call.method, "PUT" | "POST") {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        self.signer
            .sign(call.method, &url, &mut headers, &payload_sha)?;
        let mut builder = http::Request::builder()
            .method(call.method)
            .uri(url.as_str());
        if let Some(h) = builder.headers_mut() {
            *h = headers;
        }
        Ok(builder)
    }

    /// Like [`Client::send`], but a non-2xx answer is an error carrying its
    /// status and S3 error code.
    pub fn expect(&self, call: &Call<'_>) -> Result<Answer, EngineError> {
        let answer = self.send(call)?;
        if answer.is_success() {
            return Ok(answer);
        }
        let status = answer.status;
        let body = answer.text().unwrap_or_default();
        Err(EngineError::from_answer(status, &body))
    }

    fn run<B: ureq::AsSendBody>(
        &self,
        request: Result<http::Request<B>, http::Error>,
    ) -> Result<Answer, EngineError> {
        let request = request.map_err(|e| EngineError::Request(format!("bad request: {e}")))?;
        let response = self.agent.run(request).map_err(transport)?;
        let (parts, body) = response.into_parts();
        Ok(Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    fn full_url(&self, call: &Call<'_>) -> Result<Url, EngineError> {
        let mut text = format!("{}/{}", self.base, uri_encode(call.key, false));
        for (i, (name, value)) in call.query.iter().enumerate() {
            text.push(if i == 0 { '?' } else { '&' });
            text.push_str(&uri_encode(name, true));
            if !value.is_empty() {
                text.push('=');
                text.push_str(&uri_encode(value, true));
            }
        }
        Url::parse(&text).map_err(|e| EngineError::Request(format!("bad URL {text}: {e}")))
    }
}

/// `len` bytes of a file from an offset, read with `pread` (the descriptor's
/// position is never moved, so retries and parts need no seek), paced by
/// `--bwlimit`. A short file is an error, never a short body.
struct Range<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    throttle: Option<&'a Throttle>,
    /// Why reading the file failed: told apart from network errors.
    failed: Option<std::io::Error>,
}

impl Range<'_> {
    /// Keeps `e` as the reason the body ended, and hands ureq an error that
    /// no reader retries (`Interrupted` would be).
    fn fail(&mut self, e: std::io::Error) -> std::io::Error {
        let handed = std::io::Error::other(e.to_string());
        self.failed = Some(e);
        handed
    }
}

impl Read for Range<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        // A stop signal ends a long body (a large part at a low --bwlimit)
        // now, so the multipart upload is still aborted within the grace.
        if crate::signal::stop_requested() {
            return Err(self.fail(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "stopped by a signal while sending",
            )));
        }
        let mut want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if let Some(t) = self.throttle {
            want = t.take(want);
        }
        match self.file.read_at(&mut buf[..want], self.pos) {
            Ok(0) => Err(self.fail(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was being uploaded",
            ))),
            Ok(n) => {
                self.pos += n as u64;
                crate::in_flight::moved(n as u64);
                Ok(n)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}
