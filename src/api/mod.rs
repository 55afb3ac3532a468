//! The read-only inventory API (`fgbackup serve`, and the API half of
//! `fgbackup daemon`): the Python suite's `backup_api.py` endpoints plus its
//! roadmap (filters, pagination, `/backups/last`, stats, Prometheus metrics,
//! optional presigned links).
//!
//! tiny_http (patched, see vendor/tiny_http/PATCHES.md) parses requests on its
//! own connection threads; two fixed pools of worker threads, each with its
//! own read-only SQLite connection, answer them. The front lane takes every
//! request, answers `/health` (and every refusal) itself and hands the
//! queries to the query lane through a bounded queue (full: 503 at once), so
//! a probe never waits behind heavy queries (`/stats` over 500k rows) or
//! clients slow to read their answers. Slow clients tie up only their
//! connection thread, and the limits below bound how many connections, how
//! large a request head and how slow a client may be. Every answer is JSON
//! (or Prometheus text), every error `{"error": "..."}` with the fitting
//! status, including the ones tiny_http gives on its own.
//!
//! `server` runs the lanes, `gate` checks what every request must pass,
//! `routes` names the endpoints and answers them, `prometheus` renders
//! `/metrics`; the SQL is the inventory's ([`crate::inventory::Reader`]).

mod auth;
mod events;
mod gate;
mod memo;
mod overview;
mod prometheus;
mod query;
mod routes;
mod search;
mod server;
mod ui;
mod upload;

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::{Header, Response};

pub use auth::Tokens;
pub use server::start;
pub use upload::PushServer;

/// Largest `limit` of `GET /backups` and `GET /search`.
pub const MAX_LIMIT: u32 = 1000;
/// Longest request target accepted (path and query): 414 beyond. The request
/// head as a whole is capped lower down, by [`MAX_HEAD_BYTES`].
const MAX_URL: usize = 4096;
/// Most connections served at once (each has a thread, about 16 KiB of
/// memory, and two descriptors in tiny_http); further ones get 503 and are
/// closed. 2048: 1,000 idle clients (a dashboard per desk, keep-alives)
/// must not lock out the rest (bench-api.sh: 28 MiB with 1,000 open).
/// Lowered to fit the process's descriptor limit, see [`connection_cap`].
pub const MAX_CONNECTIONS: usize = 2048;
/// Longest request head (request line and headers): 414 or 431 beyond, so
/// one client cannot make the server buffer without bound. 16 KiB is four
/// times a maximal URL plus room for any real client's headers.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time a connection has to send a complete request head, counted from accept
/// or from the previous request: an idle keep-alive connection is closed after
/// it, a half-sent request gets 408, so neither holds a connection slot longer.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors left for everything but API connections: stdio, the listener,
/// logs and, in daemon mode, the uploader's files, S3 connections and
/// database. Each worker's SQLite connection adds [`FDS_PER_WORKER`].
const FDS_RESERVED: u64 = 64;
/// Descriptors of one worker's read-only SQLite connection (database, WAL,
/// shared memory) plus one spare; each of `--threads` has two workers (one
/// per lane).
const FDS_PER_WORKER: u64 = 8;
/// Queries waiting for the query lane, per query worker: past that, 503.
const QUEUED_PER_WORKER: usize = 4;
/// Descriptors of one API connection: tiny_http duplicates each socket into a
/// read and a write half.
const FDS_PER_CONNECTION: u64 = 2;
/// Fewest connections allowed even under a tiny descriptor limit (accept
/// errors are then retried with backoff rather than prevented).
const MIN_CONNECTIONS: usize = 4;

/// Settings of the API server.
pub struct ServeConfig {
    pub listen: String,
    pub db_path: PathBuf,
    pub tokens: Tokens,
    pub threads: usize,
    /// Serve `/metrics` without a token (scrapers often cannot send one).
    pub metrics_public: bool,
    pub presign: Option<Presign>,
    /// True in `fgbackup daemon`: `/metrics` includes this process's upload runs.
    pub daemon_mode: bool,
    /// Most `/events` streams open at once.
    pub events_max: usize,
    /// Serve the dashboard page at `/ui/`.
    pub ui: bool,
    /// Receive pushes (`--accept-uploads`).
    pub push: Option<std::sync::Arc<PushServer>>,
}

/// Presigned GET links, off unless `--presign` is given.
pub struct Presign {
    pub store: crate::store::s3::S3Store,
    /// Upper bound of `expires`, in seconds.
    pub max_expires: u32,
}

type Answer = Response<Cursor<Vec<u8>>>;

fn json_answer(status: u16, body: &Value) -> Answer {
    json_text(status, body.to_string())
}

fn json_text(status: u16, body: String) -> Answer {
    Response::from_data(body.into_bytes())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

fn error(status: u16, message: impl Into<String>) -> Answer {
    json_answer(status, &json!({ "error": message.into() }))
}

fn header(name: &str, value: &str) -> Header {
    // Both parts are ASCII constants or values we built; a failure would be a bug.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|()| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("static header is valid")
    })
}
