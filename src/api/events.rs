//! `GET /events`: the live stream (Server-Sent Events).
//!
//! One watcher thread reads what changed in the inventory
//! ([`crate::inventory::Reader::changes`]) at once after a write of this
//! process (`crate::changes`) and otherwise once a second, and publishes
//! each change to the [`Hub`]: a ring of the last [`RING`] events. Each
//! stream keeps its place in the ring (the id it sent last) and copies out
//! what came after it; publishing never waits for a stream. A stream whose
//! place falls out of the ring (its client stopped reading while more than
//! [`RING`] events came) is ended; its client reconnects and is told to
//! reload (`reset`). A burst (a look publishes up to [`BATCH`] rows) never
//! overflows a client that reads: its backlog is the ring, not a smaller
//! queue of its own.
//!
//! Each stream has a thread of its own, outside both worker lanes, so no
//! number of streams can starve `/health` or `/backups`; their number is
//! capped (`--events-max`, 503 beyond). The thread writes the answer head
//! itself and flushes every batch of events (tiny_http's own chunked
//! encoder would hold them in an 8 KiB buffer), sends a comment every
//! [`KEEPALIVE`], ends the stream after [`MAX_LIFE`] (the client
//! reconnects), and asks the kernel every [`CHECK`] whether the client is
//! still connected, so a killed client frees its thread at once. An ended
//! stream shuts its socket down, so the client sees the end at once.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tiny_http::Request;

use super::{Answer, error, header};
use crate::inventory::Reader;
use crate::{changes, signal};

/// Recent events: every stream's backlog, and what a client that
/// reconnects with `Last-Event-ID` is replayed.
const RING: usize = 1024;
/// A comment this often keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this and the client reconnects: no connection is
/// held forever, and a client's token is checked again.
pub const MAX_LIFE: Duration = Duration::from_secs(30 * 60);
/// How long a client waits before reconnecting (the `retry:` field), ms.
const RETRY_MS: u64 = 3000;
/// The watcher looks at the inventory at least this often (another
/// process's writes).
const POLL: Duration = Duration::from_secs(1);
/// How often an idle stream asks whether its client is still there.
const CHECK: Duration = Duration::from_millis(250);
/// Least time between two looks, however often this process writes.
const MIN_GAP: Duration = Duration::from_millis(50);
/// File rows read per look (more are read at once after).
const BATCH: u32 = 500;

/// One event as it is written on every stream.
struct Sent {
    id: u64,
    text: String,
}

/// The events, and how many streams read them.
pub struct Hub {
    inner: Mutex<Inner>,
    /// Signalled on every event.
    published: Condvar,
    /// Most streams open at once.
    cap: usize,
    /// Streams open now (threads), counted by [`Slot`].
    open: AtomicUsize,
}

/// The ring holds events with consecutive ids, the newest `next_id - 1`.
struct Inner {
    next_id: u64,
    ring: VecDeque<Arc<Sent>>,
}

/// An open stream's place: freed when its thread ends.
struct Slot(Arc<Hub>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A new stream: where it starts reading, and the reset it is sent first
/// when the client's `Last-Event-ID` cannot be served.
struct Subscription {
    /// The last id the client has: the stream sends what follows.
    after: u64,
    reset: bool,
    _slot: Slot,
}

/// What a stream finds in the ring.
enum Next {
    Events(Vec<Arc<Sent>>),
    /// Nothing new within the wait.
    Nothing,
    /// Its place fell out of the ring: the client stopped reading.
    Behind,
}

impl Hub {
    /// A hub for at most `cap` streams. Ids start at this moment in
    /// microseconds: they grow across restarts, so an id a client kept from
    /// an earlier server is older than this one's ring and gets a reset,
    /// never another server's events under the same numbers.
    pub fn new(cap: usize) -> Arc<Hub> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Arc::new(Hub {
            inner: Mutex::new(Inner {
                next_id: now,
                ring: VecDeque::with_capacity(RING),
            }),
            published: Condvar::new(),
            cap,
            open: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the event the next id and keeps it in the ring (dropping the
    /// oldest); wakes the streams. Never waits on one.
    pub fn publish(&self, name: &str, data: &Value) {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        if inner.ring.len() == RING {
            inner.ring.pop_front();
        }
        inner.ring.push_back(Arc::new(Sent {
            id,
            text: format!("id: {id}\nevent: {name}\ndata: {data}\n\n"),
        }));
        drop(inner);
        self.published.notify_all();
    }

    /// A new stream after the client's `last` id: replayed from the ring
    /// when it is still there, else a reset and the events from now on.
    /// `None` when [`Hub::cap`] streams are open.
    fn subscribe(self: &Arc<Hub>, last: Option<Last>) -> Option<Subscription> {
        let taken = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.cap).then_some(n + 1)
            });
        if taken.is_err() {
            return None;
        }
        let slot = Slot(Arc::clone(self));
        let inner = self.lock();
        let newest = inner.next_id - 1;
        let oldest = inner.ring.front().map_or(inner.next_id, |e| e.id);
        let (after, reset) = match last {
            None => (newest, false),
            Some(Last::Id(l)) if l <= newest && l + 1 >= oldest => (l, false),
            Some(_) => (newest, true),
        };
        Some(Subscription {
            after,
            reset,
            _slot: slot,
        })
    }

    /// The events after `after` (moved to the last one), waiting up to
    /// `wait` for one.
    fn next(&self, after: &mut u64, wait: Duration) -> Next {
        let inner = self.lock();
        let (inner, _) = self
            .published
            .wait_timeout_while(inner, wait, |i| i.next_id - 1 == *after)
            .unwrap_or_else(PoisonError::into_inner);
        if inner.next_id - 1 == *after {
            return Next::Nothing;
        }
        let oldest = inner.ring.front().map_or(inner.next_id, |e| e.id);
        if *after + 1 < oldest {
            return Next::Behind;
        }
        let from = (*after + 1 - oldest) as usize;
        let events: Vec<Arc<Sent>> = inner.ring.range(from..).cloned().collect();
        *after = inner.next_id - 1;
        Next::Events(events)
    }
}

/// The client's `Last-Event-ID`: an id, or something no server of ours sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    Id(u64),
    Unknown,
}

fn last_event_id(request: &Request) -> Option<Last> {
    let value = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Last-Event-ID"))
        .map(|h| h.value.as_str().trim())?;
    if value.is_empty() {
        return None;
    }
    Some(value.parse().map_or(Last::Unknown, Last::Id))
}

/// Starts the watcher thread: it runs until a stop signal.
pub fn watch(hub: Arc<Hub>, db_path: std::path::PathBuf) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("api-events-watch".into())
        .spawn(move || watch_loop(&hub, &db_path))
        .map(drop)
}

/// Opens the inventory (again after an error, once a second) and publishes
/// what changed, looking at once after this process wrote. The marks (what
/// was published) outlive a reopened connection, so an error or a
/// migration neither repeats nor skips an event; a file replaced at the
/// path gets a `reset` and is followed from its newest row.
fn watch_loop(hub: &Hub, db_path: &std::path::Path) {
    use crate::inventory::{Freshness, Marks};
    let mut seen = changes::current();
    let started = crate::timefmt::iso8601(std::time::SystemTime::now());
    // None: the first look starts from the newest rows (exact); the start
    // time when the database could not be opened at first.
    let mut since: Option<String> = None;
    let mut reader: Option<Reader> = None;
    let mut marks: Option<Marks> = None;
    let mut last_look = Instant::now();
    while !signal::stop_requested() {
        match reader.as_ref().map(Reader::freshness) {
            Some(Freshness::Current) => {}
            Some(stale) => {
                if stale == Freshness::Replaced {
                    // Another file's rows: where the old one's left off
                    // cannot be told from the times (to the second: rows
                    // were repeated or skipped in review), so the clients
                    // are told to reload, and the new file is followed
                    // from its newest row.
                    log::info!(
                        "events: {} was replaced: following the new file",
                        db_path.display()
                    );
                    hub.publish(
                        "reset",
                        &json!({"reason": "the inventory file was replaced: reload"}),
                    );
                    since = None;
                    marks = None;
                }
                reader = None;
            }
            None => {}
        }
        if reader.is_none() {
            reader = Reader::open(db_path)
                .map_err(|e| log::debug!("events: {e}"))
                .ok();
            if reader.is_none() && marks.is_none() && since.is_none() {
                since = Some(started.clone());
            }
        }
        let mut full = false;
        if let Some(r) = &reader {
            match look(r, &mut marks, since.as_deref(), hub) {
                Ok(f) => full = f,
                Err(e) => {
                    log::warn!("events: cannot read the inventory ({e}); opening it again");
                    reader = None;
                }
            }
        }
        last_look = pace(last_look);
        if !full {
            seen = changes::wait_past(seen, POLL);
            last_look = pace(last_look);
        }
    }
}

/// One look: publishes the changes after `marks` (taken as of `since`, or
/// now, the first time); true when a full batch was read (more may wait).
fn look(
    reader: &Reader,
    marks: &mut Option<crate::inventory::Marks>,
    since: Option<&str>,
    hub: &Hub,
) -> rusqlite::Result<bool> {
    let m = match marks {
        Some(m) => m,
        None => marks.insert(reader.marks(since)?),
    };
    let found = reader.changes(m, BATCH)?;
    for c in &found {
        hub.publish(c.name, &c.data);
    }
    Ok(found.iter().filter(|c| c.name.starts_with("file_")).count() >= BATCH as usize)
}

/// Sleeps what is left of [`MIN_GAP`] since `last`; returns now.
fn pace(last: Instant) -> Instant {
    if let Some(left) = MIN_GAP.checked_sub(last.elapsed()) {
        std::thread::sleep(left);
    }
    Instant::now()
}

/// Answers `GET /events` (already admitted: token and parameters): 503
/// past the cap, else a thread of its own writes the stream.
pub(super) fn open(request: Request, hub: &Arc<Hub>) -> Result<(), Box<(Request, Answer)>> {
    let Some(sub) = hub.subscribe(last_event_id(&request)) else {
        let busy = error(
            503,
            format!(
                "{} event streams are open, the most this server allows (--events-max): retry later",
                hub.cap
            ),
        )
        .with_header(header("Retry-After", "5"));
        return Err(Box::new((request, busy)));
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Request>(1);
    let hub = Arc::clone(hub);
    let spawned = std::thread::Builder::new()
        .name("api-events".into())
        .spawn(move || {
            if let Ok(request) = rx.recv() {
                stream(request, &hub, sub);
            }
        });
    match spawned {
        Ok(_) => {
            // The thread waits for exactly this one request.
            let _ = tx.send(request);
            Ok(())
        }
        Err(e) => {
            let msg = format!("cannot start a stream thread ({e}): retry later");
            let answer = error(503, msg).with_header(header("Retry-After", "5"));
            Err(Box::new((request, answer)))
        }
    }
}

/// The answer head of a stream (`HEAD /events` gets it alone).
pub(super) fn head_answer() -> Answer {
    tiny_http::Response::from_data(Vec::new())
        .with_header(header("Content-Type", "text/event-stream; charset=utf-8"))
        .with_header(header("Cache-Control", "no-cache"))
        .with_header(header("X-Accel-Buffering", "no"))
}

/// Writes one stream until the client goes or falls behind, the stream's
/// life ends or the server stops; then shuts the socket down, so the
/// client sees the end at once (the connection's own thread would keep it
/// open until its head timeout).
fn stream(request: Request, hub: &Hub, sub: Subscription) {
    let fd = request.socket_fd();
    give_up_on_silent_peers(fd);
    let version = if request.http_version() == &tiny_http::HTTPVersion(1, 0) {
        "1.0"
    } else {
        "1.1"
    };
    let mut out = request.into_writer();
    let mut after = sub.after;
    let mut head = format!(
        "HTTP/{version} 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
         Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n\r\nretry: {RETRY_MS}\n\n"
    );
    if sub.reset {
        head.push_str(&reset_text(after));
    }
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
    {
        follow(&mut out, hub, &mut after, fd);
    }
    if let Some(fd) = fd {
        // SAFETY: `out` still holds the connection's write half, so the
        // descriptor is open and ours; shutdown does not close it.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
    drop(out);
}

/// Sends what the hub publishes after `after` until the stream ends.
fn follow(out: &mut impl Write, hub: &Hub, after: &mut u64, fd: Option<i32>) {
    let (born, mut wrote) = (Instant::now(), Instant::now());
    while !signal::stop_requested() && born.elapsed() < MAX_LIFE {
        let written = match hub.next(after, CHECK) {
            Next::Events(events) => {
                let text: String = events.iter().map(|e| e.text.as_str()).collect();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Next::Behind => {
                log::info!(
                    "events: a stream fell more than {RING} events behind (its client stopped reading) and was ended; it reconnects and is told to reload"
                );
                return;
            }
            Next::Nothing if !peer_connected(fd) => return,
            Next::Nothing if wrote.elapsed() >= KEEPALIVE => {
                out.write_all(b": keepalive\n\n").and_then(|()| out.flush())
            }
            Next::Nothing => continue,
        };
        if written.is_err() {
            return;
        }
        wrote = Instant::now();
    }
}

/// A client whose host vanished (no FIN, no RST) never makes a write fail
/// while the socket buffer has room; with `TCP_USER_TIMEOUT` the kernel
/// aborts the connection once sent data (a keepalive comment at the
/// latest) stays unacknowledged this long, and [`peer_connected`] sees it:
/// the thread is freed within [`KEEPALIVE`] + this + [`CHECK`].
fn give_up_on_silent_peers(fd: Option<i32>) {
    // Long enough that a client reading slowly (a full window for a
    // while: 10 s reset readers at 8-40 KB/s in review) is not cut.
    const UNACKED_MS: libc::c_uint = 30_000;
    let Some(fd) = fd else { return };
    // SAFETY: a socket descriptor and a pointer to a value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&UNACKED_MS as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::debug!(
            "events: cannot set TCP_USER_TIMEOUT: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn reset_text(id: u64) -> String {
    let data = json!({"reason": "the events after the id you sent are no longer kept: reload"});
    format!("id: {id}\nevent: reset\ndata: {data}\n\n")
}

/// Whether the client is still connected, by the socket's TCP state:
/// a peer that closed or reset its end leaves `ESTABLISHED`. Without a
/// descriptor (not plain TCP), assumed connected: the writes find out.
fn peer_connected(fd: Option<i32>) -> bool {
    let Some(fd) = fd else { return true };
    // struct tcp_info starts with the state byte; the buffer is larger than
    // any kernel's struct, which fills what it has.
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: a buffer of `len` bytes, and `len` passed by pointer as the
    // call requires; a stale descriptor only makes the call fail.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    const TCP_ESTABLISHED: u8 = 1;
    rc != 0 || len == 0 || info[0] == TCP_ESTABLISHED
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids a new stream is sent first (0 for a reset).
    fn start(hub: &Hub, sub: &Subscription) -> Vec<u64> {
        if sub.reset {
            return vec![0];
        }
        let mut after = sub.after;
        match hub.next(&mut after, Duration::ZERO) {
            Next::Events(e) => e.iter().map(|e| e.id).collect(),
            Next::Nothing => Vec::new(),
            Next::Behind => vec![1],
        }
    }

    /// A reconnecting client is sent exactly what came after its id; an id
    /// older than the ring, from the future or not a number gets a reset.
    #[test]
    fn replay_and_reset() {
        let hub = Hub::new(8);
        let first = hub.lock().next_id;
        for n in 0..(RING as u64 + 10) {
            hub.publish("file_archived", &json!({ "n": n }));
        }
        let last = first + RING as u64 + 9;
        let sub = hub.subscribe(Some(Last::Id(last - 3))).unwrap();
        assert_eq!(start(&hub, &sub), vec![last - 2, last - 1, last]);
        let sub2 = hub.subscribe(Some(Last::Id(last))).unwrap();
        assert!(start(&hub, &sub2).is_empty());
        let oldest_kept = last + 1 - RING as u64;
        let sub3 = hub.subscribe(Some(Last::Id(oldest_kept - 1))).unwrap();
        assert_eq!(start(&hub, &sub3).len(), RING);
        let new = hub.subscribe(None).unwrap();
        assert!(start(&hub, &new).is_empty(), "a new stream starts now");
        drop((sub, sub2, sub3, new));
        for bad in [Last::Id(oldest_kept - 2), Last::Id(last + 1), Last::Unknown] {
            let s = hub.subscribe(Some(bad)).unwrap();
            assert!(s.reset && s.after == last, "{bad:?}");
        }
    }

    /// Past the cap no stream is opened; a closed one frees its place.
    #[test]
    fn the_cap_counts_open_streams() {
        let hub = Hub::new(2);
        let a = hub.subscribe(None).unwrap();
        let _b = hub.subscribe(None).unwrap();
        assert!(hub.subscribe(None).is_none());
        drop(a);
        assert!(hub.subscribe(None).is_some());
    }

    /// A burst larger than any queue a stream could have reaches a reader
    /// whole (the review's tail lost 2,145 of 2,400 events to a 256-event
    /// queue); a stream that does not read while more than the ring comes
    /// is told it fell behind, and publishing never waits for it.
    // docs/SAFETY.md S33
    #[test]
    fn a_subscriber_that_falls_behind_is_dropped() {
        let hub = Hub::new(2);
        let slow = hub.subscribe(None).unwrap();
        let quick = hub.subscribe(None).unwrap();
        let (mut slow_at, mut quick_at) = (slow.after, quick.after);
        let mut got = 0;
        for round in 0..3 {
            for n in 0..RING - 1 {
                hub.publish("file_archived", &json!({ "round": round, "n": n }));
            }
            match hub.next(&mut quick_at, Duration::ZERO) {
                Next::Events(e) => got += e.len(),
                _ => panic!("the reader missed events"),
            }
        }
        assert_eq!(got, 3 * (RING - 1));
        assert!(matches!(
            hub.next(&mut slow_at, Duration::ZERO),
            Next::Behind
        ));
        assert!(matches!(
            hub.next(&mut quick_at, Duration::ZERO),
            Next::Nothing
        ));
    }
}
