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
//! connection thread, and [`limits`] bound how many connections, how large a
//! request head and how slow a client may be. Every
//! answer is JSON (or Prometheus text), every error `{"error": "..."}` with
//! the fitting status, including the ones tiny_http gives on its own.

mod auth;
mod query;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

pub use auth::Tokens;

use crate::error::{Error, Result};
use crate::inventory::status::{Status, StatusFilter};
use crate::inventory::{Filters, Reader};
use crate::metrics::{self, Metrics};
use crate::signal;

/// Largest `limit` of `GET /backups`.
pub const MAX_LIMIT: u32 = 1000;
/// Longest request target accepted (path and query): 414 beyond. The request
/// head as a whole is capped lower down, by [`MAX_HEAD_BYTES`].
const MAX_URL: usize = 4096;
/// Most connections served at once (each has a thread and two descriptors in
/// tiny_http); further ones get 503 and are closed. Lowered to fit the
/// process's descriptor limit, see [`connection_cap`].
pub const MAX_CONNECTIONS: usize = 256;
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
}

/// Presigned GET links, off unless `--presign` is given.
pub struct Presign {
    pub store: crate::store::s3::S3Store,
    /// Upper bound of `expires`, in seconds.
    pub max_expires: u32,
}

type Answer = Response<Cursor<Vec<u8>>>;

/// A bound, running server; dropping it does not stop it, [`ApiServer::join`] does
/// after a stop signal.
pub struct ApiServer {
    server: Arc<Server>,
    workers: Vec<std::thread::JoinHandle<()>>,
    cfg: Arc<ServeConfig>,
}

/// Binds the listening socket and starts the worker threads.
pub fn start(cfg: ServeConfig, metrics: Arc<Metrics>) -> Result<ApiServer> {
    if cfg.tokens.is_empty() {
        return Err(Error::usage(
            "no API tokens: set APP_TOKENS (comma-separated) or APP_TOKENS_FILE (one token per line)",
        ));
    }
    cfg.tokens
        .load_file()
        .map_err(|e| Error::usage(e.to_string()))?;
    let listener = std::net::TcpListener::bind(&cfg.listen).map_err(|e| {
        Error::runtime(format!(
            "cannot listen on {} ({e}): choose another --listen address or stop what uses it",
            cfg.listen
        ))
    })?;
    tune_listener(&listener);
    let limits = limits(cfg.threads);
    let max_connections = limits.max_connections.unwrap_or(MAX_CONNECTIONS);
    let server = Server::from_listener_with_limits(listener, None, limits)
        .map_err(|e| Error::runtime(format!("cannot start the API server: {e}")))?;
    let addr = server.server_addr().to_string();
    let server = Arc::new(server);
    let cfg = Arc::new(cfg);
    let (queries, queue) = std::sync::mpsc::sync_channel(cfg.threads * QUEUED_PER_WORKER);
    let queue = Arc::new(std::sync::Mutex::new(queue));
    let mut workers = Vec::new();
    for n in 0..cfg.threads {
        let (srv, c, m) = (Arc::clone(&server), Arc::clone(&cfg), Arc::clone(&metrics));
        let queries = queries.clone();
        let front = std::thread::Builder::new()
            .name(format!("api-{n}"))
            .spawn(move || front_worker(&srv, &c, &m, &queries))
            .map_err(|e| Error::runtime(format!("cannot start API worker thread: {e}")))?;
        workers.push(front);
        let (q, c, m) = (Arc::clone(&queue), Arc::clone(&cfg), Arc::clone(&metrics));
        let back = std::thread::Builder::new()
            .name(format!("api-query-{n}"))
            .spawn(move || query_worker(&q, &c, &m))
            .map_err(|e| Error::runtime(format!("cannot start API worker thread: {e}")))?;
        workers.push(back);
    }
    drop(queries);
    log::info!(
        "API listening on http://{addr} ({} worker threads, at most {max_connections} connections, database {})",
        cfg.threads,
        cfg.db_path.display()
    );
    Ok(ApiServer {
        server,
        workers,
        cfg,
    })
}

/// How long writing an answer may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits tiny_http enforces on every connection, with answers in this
/// API's JSON error format.
fn limits(threads: usize) -> tiny_http::Limits {
    tiny_http::Limits {
        max_connections: Some(connection_cap(threads)),
        max_head_bytes: Some(MAX_HEAD_BYTES),
        head_timeout: Some(HEAD_TIMEOUT),
        rejection,
    }
}

/// [`MAX_CONNECTIONS`], lowered so that API connections can never take the
/// descriptors the rest of the process needs (`LimitNOFILE=1024` is common;
/// the daemon's uploader shares the limit).
fn connection_cap(threads: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return MAX_CONNECTIONS;
    }
    let reserved = FDS_RESERVED + FDS_PER_WORKER * threads as u64;
    let fit = limit.rlim_cur.saturating_sub(reserved) / FDS_PER_CONNECTION;
    let cap = usize::try_from(fit).unwrap_or(usize::MAX);
    cap.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The answers tiny_http gives on its own (400, 408, 414, 417, 431, 503, 505),
/// as `{"error": "..."}` like every other error of this API.
fn rejection(status: tiny_http::StatusCode, reason: &'static str) -> Answer {
    let answer = error(status.0, reason);
    if status.0 == 503 {
        answer.with_header(header("Retry-After", "1"))
    } else {
        answer
    }
}

/// Socket options for every accepted connection, set on the listener because
/// tiny_http accepts connections itself and Linux copies them to each one:
///
/// - TCP_NODELAY: tiny_http writes answers through a 1 KiB buffer; with
///   Nagle's algorithm a multi-kilobyte answer stalled on the client's delayed
///   ACK (40 ms).
/// - SO_SNDTIMEO: a client that never reads its answer releases the worker
///   after [`WRITE_TIMEOUT`] instead of holding it forever. (A receive
///   timeout cannot be set this way: it would also make `accept` time out.)
fn tune_listener(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let fd = listener.as_raw_fd();
    let on: libc::c_int = 1;
    let timeout = libc::timeval {
        // time_t is 32 or 64 bits depending on the libc; 10 fits either.
        tv_sec: WRITE_TIMEOUT.as_secs() as _,
        tv_usec: 0,
    };
    // SAFETY: a valid socket fd, and pointers to values of the sizes passed.
    let results = unsafe {
        [
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ),
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            ),
        ]
    };
    if results.iter().any(|rc| *rc != 0) {
        log::warn!(
            "cannot set socket options on the listener: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl ApiServer {
    /// Waits until a stop signal arrived and every worker finished its
    /// request; each SIGHUP meanwhile reloads the token file at once
    /// (`systemctl reload`), and says so.
    pub fn join(self) {
        while !signal::stop_requested() {
            self.reload_if_asked();
            std::thread::sleep(Duration::from_millis(200));
        }
        self.join_workers();
    }

    /// After a SIGHUP: the token file is read again now (it also is within
    /// 250 ms of any change); every other setting is read at start.
    pub fn reload_if_asked(&self) {
        if !signal::take_reload() {
            return;
        }
        match self.cfg.tokens.load_file() {
            Ok(()) => log::info!(
                "SIGHUP: API tokens read again; other settings are read at start only: restart the service to change them"
            ),
            Err(e) => log::error!(
                "SIGHUP: the token file cannot be read ({e}); its tokens are revoked until it can"
            ),
        }
    }

    fn join_workers(self) {
        for w in self.workers {
            let _ = w.join();
        }
        self.server.unblock();
    }
}

/// The front lane: takes every request, answers `/health` itself and
/// hands the others to the query lane; when that queue is full, 503 at once.
fn front_worker(
    server: &Server,
    cfg: &ServeConfig,
    metrics: &Metrics,
    queries: &std::sync::mpsc::SyncSender<(Request, Instant)>,
) {
    let mut reader: Option<Reader> = None;
    while !signal::stop_requested() {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                // tiny_http retries with backoff and reports this at most once a minute.
                log::warn!(
                    "API: accepting connections fails ({e}), retrying: if this is 'Too many open files', raise the descriptor limit (LimitNOFILE)"
                );
                continue;
            }
        };
        let started = Instant::now();
        let path = request.url().split('?').next().unwrap_or("");
        if route_name(path) == "health" {
            // Closed after the answer: a client pipelining probes without
            // reading gets one answer per connection, and this lane never
            // waits on a full socket buffer.
            let (route, answer) = handle(&request, cfg, metrics, &mut reader);
            respond(
                request,
                started,
                route,
                answer.with_connection_close(),
                metrics,
            );
            continue;
        }
        match queries.try_send((request, started)) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full((request, started))) => {
                let busy = error(503, "busy: every query worker is taken; retry in a second")
                    .with_header(header("Retry-After", "1"))
                    .with_connection_close();
                respond(request, started, "busy", busy, metrics);
            }
            Err(std::sync::mpsc::TrySendError::Disconnected((request, started))) => {
                answer(request, started, cfg, metrics, &mut reader);
            }
        }
    }
}

/// The query lane: answers what the front lane handed over.
fn query_worker(
    queue: &std::sync::Mutex<std::sync::mpsc::Receiver<(Request, Instant)>>,
    cfg: &ServeConfig,
    metrics: &Metrics,
) {
    let mut reader: Option<Reader> = None;
    while !signal::stop_requested() {
        let next = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv_timeout(Duration::from_millis(200));
        match next {
            Ok((request, started)) => answer(request, started, cfg, metrics, &mut reader),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// Answers one request on this worker's database connection.
fn answer(
    request: Request,
    started: Instant,
    cfg: &ServeConfig,
    metrics: &Metrics,
    reader: &mut Option<Reader>,
) {
    let (route, answer) = handle(&request, cfg, metrics, reader);
    respond(request, started, route, answer, metrics);
}

/// Sends `answer`, counts it, and logs the path (never the query string:
/// it could carry something secret).
fn respond(
    request: Request,
    started: Instant,
    route: &'static str,
    answer: Answer,
    metrics: &Metrics,
) {
    let status = answer.status_code().0;
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().to_string();
    if let Err(e) = request.respond(answer) {
        log::debug!("client went away before the answer to {method} {path}: {e}");
    }
    metrics.record(route, status, started.elapsed());
    log::debug!("{method} {path} -> {status} in {:?}", started.elapsed());
}

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

/// Answers one request: the checks any request must pass, then its route
/// on this worker's database connection (opened again after a failure).
fn handle(
    request: &Request,
    cfg: &ServeConfig,
    metrics: &Metrics,
    reader: &mut Option<Reader>,
) -> (&'static str, Answer) {
    let (route, path, params) = match admit(request, cfg) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let db = match connect(reader, &cfg.db_path, route) {
        Ok(db) => db,
        Err(answer) => return (route, answer),
    };
    let answer = match dispatch(route, path, &params, cfg, metrics, db) {
        Ok(a) => a,
        Err(Failure::Client(status, msg)) => error(status, msg),
        Err(Failure::Db(e)) => {
            log::error!("database query failed: {e}");
            // Reopen on the next request: the file may have been replaced.
            *reader = None;
            if route == "health" {
                json_answer(503, &json!({"status": "error", "database": e.to_string()}))
            } else {
                error(500, "database query failed (see the server log)")
            }
        }
    };
    (route, answer)
}

/// A request's route, path and query, or the answer refusing it: target
/// too long, a body, a method that writes, a bad query, no valid token.
type Admitted<'r> = (&'static str, &'r str, Vec<(String, String)>);

fn admit<'r>(
    request: &'r Request,
    cfg: &ServeConfig,
) -> std::result::Result<Admitted<'r>, (&'static str, Answer)> {
    let url = request.url();
    if url.len() > MAX_URL {
        let msg = format!("request target longer than {MAX_URL} bytes");
        return Err(("other", error(414, msg)));
    }
    // A chunked body has no body_length. Left unread, either kind makes
    // tiny_http close the connection after this answer.
    let chunked = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Transfer-Encoding"));
    if chunked || request.body_length().is_some_and(|n| n > 0) {
        return Err(("other", error(413, "this API takes no request body")));
    }
    let (path, raw_query) = url.split_once('?').unwrap_or((url, ""));
    let route = route_name(path);
    if !matches!(request.method(), Method::Get | Method::Head) {
        let msg = format!(
            "method {} not allowed: this API is read-only, use GET",
            request.method()
        );
        let answer = error(405, msg).with_header(header("Allow", "GET, HEAD"));
        return Err((route, answer));
    }
    let params = query_params(raw_query).map_err(|a| (route, a))?;
    authorize(request, cfg, route).map_err(|a| (route, a))?;
    Ok((route, path, params))
}

/// The decoded query; a token in it is refused, since query strings end up
/// in proxy logs and browser history.
fn query_params(raw: &str) -> std::result::Result<Vec<(String, String)>, Answer> {
    let params = query::parse(raw).map_err(|e| error(400, e))?;
    let secret = params.iter().find(|(k, _)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "token" | "access_token" | "api_key" | "apikey" | "auth"
        )
    });
    match secret {
        Some((k, _)) => Err(error(
            400,
            format!(
                "'{k}' in the query string is refused: send the token as 'Authorization: Bearer <token>'"
            ),
        )),
        None => Ok(params),
    }
}

/// Every route but `/health` (and `/metrics` when made public) needs a
/// valid bearer token.
fn authorize(request: &Request, cfg: &ServeConfig, route: &str) -> std::result::Result<(), Answer> {
    let public = route == "health" || (route == "metrics" && cfg.metrics_public);
    if public {
        return Ok(());
    }
    let auth = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str());
    if cfg.tokens.accepts(auth) {
        return Ok(());
    }
    let msg = if auth.is_some() {
        "invalid token"
    } else {
        "missing 'Authorization: Bearer <token>' header"
    };
    Err(error(401, msg).with_header(header("WWW-Authenticate", "Bearer realm=\"fgbackup\"")))
}

/// This worker's read-only connection, opened on first use (the database
/// may appear after the server starts); 503 while it cannot be opened.
fn connect<'a>(
    reader: &'a mut Option<Reader>,
    db_path: &Path,
    route: &str,
) -> std::result::Result<&'a Reader, Answer> {
    if reader.is_none() {
        match Reader::open(db_path) {
            Ok(r) => *reader = Some(r),
            Err(e) => {
                log::warn!("{e}");
                return Err(if route == "health" {
                    json_answer(503, &json!({"status": "error", "database": e.to_string()}))
                } else {
                    error(503, format!("database unavailable: {e}"))
                });
            }
        }
    }
    reader.as_ref().ok_or_else(|| error(500, "internal error"))
}

fn route_name(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "health"] => "health",
        ["", "metrics"] => "metrics",
        ["", "stats"] => "stats",
        ["", "backups"] => "backups",
        ["", "backups", "last"] => "backups_last",
        ["", "backups", _] => "backup",
        ["", "backups", _, "presign"] => "presign",
        ["", "verifications", "last"] => "verifications_last",
        _ => "other",
    }
}

enum Failure {
    Client(u16, String),
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure::Db(e)
    }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::Client(400, msg.into())
}

fn only_params(params: &[(String, String)], allowed: &[&str]) -> std::result::Result<(), Failure> {
    for (k, _) in params {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(if allowed.is_empty() {
                format!("unknown parameter '{k}': this endpoint takes none")
            } else {
                format!("unknown parameter '{k}' (allowed: {})", allowed.join(", "))
            }));
        }
    }
    Ok(())
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn date_param(
    params: &[(String, String)],
    name: &str,
) -> std::result::Result<Option<String>, Failure> {
    match param(params, name) {
        None => Ok(None),
        Some(v) if crate::timefmt::is_day(v) => Ok(Some(v.to_string())),
        Some(v) => Err(bad(format!(
            "{name} '{v}' is not a date: use a real day as YYYY-MM-DD, e.g. 2026-11-01"
        ))),
    }
}

/// `status=` of `/backups`: a status name from [`Status`], or `failed` for
/// every failure; anything else is refused with the list of valid values.
fn status_param(params: &[(String, String)]) -> std::result::Result<Option<StatusFilter>, Failure> {
    match param(params, "status").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => StatusFilter::parse(v)
            .map(Some)
            .map_err(|e| bad(e.to_string())),
    }
}

/// `/health`: no token needed, so only verdicts and times.
fn health(
    params: &[(String, String)],
    cfg: &ServeConfig,
    metrics: &Metrics,
    db: &Reader,
) -> std::result::Result<Answer, Failure> {
    only_params(params, &[])?;
    let last = db.last_success()?;
    // /health needs no token: the verdict and its time only.
    let verify = db
        .last_verification()?
        .map(|v| json!({"status": v.json["status"], "finished_at": v.json["finished_at"]}));
    // The chain head is no secret: its sequence and SHA-256 are what an
    // auditor's monitoring records elsewhere, to catch a rollback.
    let manifest = db.last_manifest()?;
    let mut body = json!({"status": "ok", "database": "ok", "last_success": last,
                          "last_verify": verify, "manifest": manifest});
    let mut status = 200;
    if cfg.daemon_mode
        && let Some(upload) = metrics.upload_health()
    {
        if upload.stalled {
            status = 503;
            body["status"] = json!("degraded");
        }
        body["upload"] = upload_json(&upload);
    }
    Ok(json_answer(status, &body))
}

fn dispatch(
    route: &str,
    path: &str,
    params: &[(String, String)],
    cfg: &ServeConfig,
    metrics: &Metrics,
    db: &Reader,
) -> std::result::Result<Answer, Failure> {
    match route {
        "health" => health(params, cfg, metrics, db),
        "backups" => list(params, db),
        "backups_last" => {
            only_params(params, &[])?;
            match db.last()? {
                Some(row) => Ok(json_text(200, row)),
                None => Err(Failure::Client(404, "the inventory is empty".into())),
            }
        }
        "backup" => {
            only_params(params, &[])?;
            let id = id_segment(path, 2)?;
            match db.by_id(id)? {
                Some(row) => Ok(json_text(200, row)),
                None => Err(Failure::Client(404, format!("no backup with id {id}"))),
            }
        }
        "presign" => presign(path, params, cfg, db),
        "verifications_last" => {
            only_params(params, &[])?;
            match db.last_verification()? {
                Some(v) => Ok(json_answer(200, &v.json)),
                None => Err(Failure::Client(
                    404,
                    "no verify has finished yet: run 'fgbackup verify'".into(),
                )),
            }
        }
        "stats" => {
            only_params(params, &["date_from", "date_to"])?;
            let from = date_param(params, "date_from")?;
            let to = date_param(params, "date_to")?;
            Ok(json_answer(
                200,
                &Value::Array(db.stats(from.as_deref(), to.as_deref())?),
            ))
        }
        "metrics" => {
            only_params(params, &[])?;
            let mut out = String::with_capacity(4096);
            render_db_metrics(&mut out, cfg, db)?;
            metrics.render(&mut out, cfg.daemon_mode);
            Ok(Response::from_data(out.into_bytes())
                .with_header(header("Content-Type", "text/plain; version=0.0.4")))
        }
        _ => Err(Failure::Client(
            404,
            format!(
                "no such endpoint {path}: try /health, /backups, /backups/last, /backups/{{id}}, /stats, /verifications/last, /metrics"
            ),
        )),
    }
}

/// The daemon's upload cycles in `/health`.
fn upload_json(u: &metrics::UploadHealth) -> Value {
    let mut v = json!({
        "state": if u.running_secs.is_some() { "running" } else { "idle" },
        "cycle_running_seconds": u.running_secs,
        "last_cycle_age_seconds": u.last_cycle_age_secs,
        "cycles_finished": u.cycles_finished,
        "stall_after_seconds": u.stall_after_secs,
    });
    if u.stalled {
        v["reason"] = json!(format!(
            "the upload cycle has been running for {} s, longer than {} s: the destination may hang",
            u.running_secs.unwrap_or(0),
            u.stall_after_secs
        ));
    }
    v
}

fn id_segment(path: &str, index: usize) -> std::result::Result<i64, Failure> {
    let seg = path.split('/').nth(index).unwrap_or("");
    seg.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(format!("backup id '{seg}' is not a positive whole number")))
}

fn list(params: &[(String, String)], db: &Reader) -> std::result::Result<Answer, Failure> {
    only_params(
        params,
        &[
            "status",
            "filename",
            "date_from",
            "date_to",
            "limit",
            "cursor",
        ],
    )?;
    let limit = match param(params, "limit") {
        None => 100,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "limit '{v}' must be a whole number from 1 to {MAX_LIMIT}"
                ))
            })?,
    };
    let before_id = match param(params, "cursor") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            bad(format!(
                "cursor '{v}' is not valid: use the value from the previous page's Link header"
            ))
        })?),
    };
    let filters = Filters {
        status: status_param(params)?,
        filename: param(params, "filename")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        date_from: date_param(params, "date_from")?,
        date_to: date_param(params, "date_to")?,
        before_id,
    };
    let (rows, last_id) = db.list(&filters, limit)?;
    let next = last_id.map(|last_id| {
        let mut link = format!("/backups?limit={limit}&cursor={last_id}");
        for (name, value) in [
            ("status", filters.status.map(StatusFilter::as_str)),
            ("filename", filters.filename.as_deref()),
            ("date_from", filters.date_from.as_deref()),
            ("date_to", filters.date_to.as_deref()),
        ] {
            if let Some(v) = value {
                link.push_str(&format!("&{name}={}", query::encode(v)));
            }
        }
        link
    });
    let mut answer = json_text(200, rows);
    if let Some(link) = next {
        answer = answer.with_header(header("Link", &format!("<{link}>; rel=\"next\"")));
    }
    Ok(answer)
}

fn presign(
    path: &str,
    params: &[(String, String)],
    cfg: &ServeConfig,
    db: &Reader,
) -> std::result::Result<Answer, Failure> {
    let Some(p) = &cfg.presign else {
        return Err(Failure::Client(
            404,
            "presigned links are disabled: start the server with --presign".into(),
        ));
    };
    only_params(params, &["expires"])?;
    let id = id_segment(path, 2)?;
    let expires = match param(params, "expires") {
        None => 900.min(p.max_expires),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=p.max_expires).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "expires '{v}' must be seconds from 1 to {}",
                    p.max_expires
                ))
            })?,
    };
    let Some((key, status)) = db.key_of(id)? else {
        return Err(Failure::Client(404, format!("no backup with id {id}")));
    };
    if !matches!(
        status.as_deref().and_then(Status::from_column),
        Some(Status::Uploaded | Status::SkippedExists | Status::FailedGzip)
    ) {
        return Err(Failure::Client(
            404,
            format!(
                "backup {id} has no stored object (status {})",
                status.unwrap_or_default()
            ),
        ));
    }
    let url = p
        .store
        .presign_get(&key, expires)
        .map_err(|e| Failure::Client(500, format!("cannot presign: {e}")))?;
    Ok(json_answer(
        200,
        &json!({"id": id, "url": url, "expires_in": expires}),
    ))
}

/// The newest verify's figures, from the inventory.
fn render_verify_metrics(out: &mut String, db: &Reader) -> std::result::Result<(), Failure> {
    let Some(v) = db.last_verification()? else {
        return Ok(());
    };
    metrics::gauge(
        out,
        "fgbackup_verify_last_success",
        "1 if the newest finished verify found every object intact and nothing extra.",
        if v.ok { 1.0 } else { 0.0 },
        "gauge",
    );
    if let Some(t) = v.finished_unix {
        metrics::gauge(
            out,
            "fgbackup_verify_last_timestamp_seconds",
            "End of the newest finished verify.",
            t as f64,
            "gauge",
        );
    }
    out.push_str("# HELP fgbackup_verify_last_objects Objects of the newest finished verify, by result.\n# TYPE fgbackup_verify_last_objects gauge\n");
    for (result, n) in &v.counts {
        out.push_str(&format!(
            "fgbackup_verify_last_objects{{result=\"{result}\"}} {n}\n"
        ));
    }
    Ok(())
}

/// The newest finished upload run's figures, from the inventory.
fn render_run_metrics(out: &mut String, db: &Reader) -> std::result::Result<(), Failure> {
    let Some(run) = db.last_run()? else {
        return Ok(());
    };
    metrics::gauge(
        out,
        "fgbackup_last_run_success",
        "1 if the newest finished upload run had no failures.",
        if run.ok { 1.0 } else { 0.0 },
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_files",
        "Files handled by the newest finished run.",
        run.files as f64,
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_failed_files",
        "Files that failed in the newest finished run.",
        run.failed as f64,
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_bytes",
        "Bytes sent by the newest finished run.",
        run.bytes as f64,
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_duration_seconds",
        "Duration of the newest finished run.",
        run.duration_ms as f64 / 1000.0,
        "gauge",
    );
    if let Some(t) = run.finished_unix {
        metrics::gauge(
            out,
            "fgbackup_last_run_timestamp_seconds",
            "End of the newest finished run.",
            t as f64,
            "gauge",
        );
    }
    Ok(())
}

fn render_db_metrics(
    out: &mut String,
    cfg: &ServeConfig,
    db: &Reader,
) -> std::result::Result<(), Failure> {
    let mut size = std::fs::metadata(&cfg.db_path)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut wal = cfg.db_path.as_os_str().to_os_string();
    wal.push("-wal");
    size += std::fs::metadata(PathBuf::from(wal))
        .map(|m| m.len())
        .unwrap_or(0);
    metrics::gauge(
        out,
        "fgbackup_db_size_bytes",
        "Size of the inventory database and its WAL.",
        size as f64,
        "gauge",
    );
    out.push_str("# HELP fgbackup_db_rows Rows of the backups table by status.\n# TYPE fgbackup_db_rows gauge\n");
    for (status, n) in db.counts_by_status()? {
        let status = status.replace(['"', '\\', '\n'], "_");
        out.push_str(&format!("fgbackup_db_rows{{status=\"{status}\"}} {n}\n"));
    }
    render_verify_metrics(out, db)?;
    render_run_metrics(out, db)?;
    if let Some(Ok(t)) = db
        .last_success()?
        .map(|s| crate::timefmt::parse_iso8601(&s).ok_or(()))
    {
        metrics::gauge(
            out,
            "fgbackup_last_success_timestamp_seconds",
            "End of the newest run without failures.",
            t as f64,
            "gauge",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_dates() {
        assert_eq!(route_name("/backups"), "backups");
        assert_eq!(route_name("/backups/"), "backups");
        assert_eq!(route_name("/backups/last"), "backups_last");
        assert_eq!(route_name("/backups/12"), "backup");
        assert_eq!(route_name("/backups/12/presign"), "presign");
        assert_eq!(route_name("/nope"), "other");
        assert!(crate::timefmt::is_date("2026-11-22"));
        assert!(!crate::timefmt::is_date("2026-1-22"));
        assert!(!crate::timefmt::is_date("22/11/2026"));
    }
}
