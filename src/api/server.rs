//! The server: binds the socket, runs the two lanes of worker threads
//! (front and query), and sends and counts every answer. What a request
//! is answered with is decided in `routes`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tiny_http::{Request, Server};

use super::events::{self, Hub};
use super::routes::{Route, Worker, handle};
use super::{
    Answer, FDS_PER_CONNECTION, FDS_PER_WORKER, FDS_RESERVED, HEAD_TIMEOUT, MAX_CONNECTIONS,
    MAX_HEAD_BYTES, MIN_CONNECTIONS, QUEUED_PER_WORKER, ServeConfig, error, header,
};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::signal;

/// A bound, running server; dropping it does not stop it, [`ApiServer::join`] does
/// after a stop signal.
pub struct ApiServer {
    /// The address bound, `IP:PORT` (the port chosen when 0 was asked).
    pub addr: String,
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
    let hub = Hub::new(cfg.events_max);
    events::watch(Arc::clone(&hub), cfg.db_path.clone())
        .map_err(|e| Error::runtime(format!("cannot start the events thread: {e}")))?;
    let cfg = Arc::new(cfg);
    let (queries, queue) = std::sync::mpsc::sync_channel(cfg.threads * QUEUED_PER_WORKER);
    let queue = Arc::new(std::sync::Mutex::new(queue));
    let mut workers = Vec::new();
    for n in 0..cfg.threads {
        let (srv, c, m) = (Arc::clone(&server), Arc::clone(&cfg), Arc::clone(&metrics));
        let (queries, h) = (queries.clone(), Arc::clone(&hub));
        let front = std::thread::Builder::new()
            .name(format!("api-{n}"))
            .spawn(move || front_worker(&srv, &c, &m, &queries, &h))
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
        addr,
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

/// The front lane: takes every request, answers `/health` itself, gives
/// `/events` a stream thread of its own and hands the others to the query
/// lane; when that queue is full, 503 at once.
fn front_worker(
    server: &Server,
    cfg: &ServeConfig,
    metrics: &Arc<Metrics>,
    queries: &std::sync::mpsc::SyncSender<(Request, Instant)>,
    hub: &Arc<Hub>,
) {
    let mut worker = Worker::default();
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
        if Route::parse(path) == Route::Health {
            // Closed after the answer: a client pipelining probes without
            // reading gets one answer per connection, and this lane never
            // waits on a full socket buffer.
            let (route, answer) = handle(&request, cfg, metrics, &mut worker);
            respond(
                request,
                started,
                route,
                answer.with_connection_close(),
                metrics,
            );
            continue;
        }
        if Route::parse(path) == Route::Events {
            open_stream(request, started, cfg, metrics, hub);
            continue;
        }
        if path.starts_with(super::upload::PATH) {
            super::upload::open(request, &cfg.push, metrics);
            continue;
        }
        match queries.try_send((request, started)) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full((request, started))) => {
                let busy = error(503, "busy: every query worker is taken; retry in a second")
                    .with_header(header("Retry-After", "1"))
                    .with_connection_close();
                // Counted under `other`: the query was never looked at.
                respond(request, started, Route::Other, busy, metrics);
            }
            Err(std::sync::mpsc::TrySendError::Disconnected((request, started))) => {
                answer(request, started, cfg, metrics, &mut worker);
            }
        }
    }
}

/// `/events`: the gate every request passes, then a stream (or 503).
fn open_stream(
    request: Request,
    started: Instant,
    cfg: &ServeConfig,
    metrics: &Metrics,
    hub: &Arc<Hub>,
) {
    let refused = match super::gate::admit(&request, cfg) {
        Err((_, answer)) => Some(answer),
        Ok((_, _, params)) => super::routes::only_params(&params, &[])
            .err()
            .map(super::routes::Failure::into_answer),
    };
    if let Some(answer) = refused {
        return respond(request, started, Route::Events, answer, metrics);
    }
    if *request.method() == tiny_http::Method::Head {
        // The head alone: no stream, no place taken.
        return respond(
            request,
            started,
            Route::Events,
            events::head_answer(),
            metrics,
        );
    }
    match events::open(request, hub) {
        Ok(()) => metrics.record(Route::Events.name(), 200, started.elapsed()),
        Err(refused) => {
            let (request, answer) = *refused;
            respond(request, started, Route::Events, answer, metrics)
        }
    }
}

/// The query lane: answers what the front lane handed over.
fn query_worker(
    queue: &std::sync::Mutex<std::sync::mpsc::Receiver<(Request, Instant)>>,
    cfg: &ServeConfig,
    metrics: &Metrics,
) {
    let mut worker = Worker::default();
    while !signal::stop_requested() {
        let next = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv_timeout(Duration::from_millis(200));
        match next {
            Ok((request, started)) => answer(request, started, cfg, metrics, &mut worker),
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
    worker: &mut Worker,
) {
    let (route, answer) = handle(&request, cfg, metrics, worker);
    respond(request, started, route, answer, metrics);
}

/// Sends `answer`, counts it, and logs the path (never the query string:
/// it could carry something secret).
fn respond(request: Request, started: Instant, route: Route, answer: Answer, metrics: &Metrics) {
    let status = answer.status_code().0;
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().to_string();
    if let Err(e) = request.respond(answer) {
        log::debug!("client went away before the answer to {method} {path}: {e}");
    }
    metrics.record(route.name(), status, started.elapsed());
    log::debug!("{method} {path} -> {status} in {:?}", started.elapsed());
}
