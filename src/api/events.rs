//! `GET /events`: the live stream (Server-Sent Events).
//!
//! One watcher thread reads what changed in the inventory
//! ([`crate::inventory::Reader::changes`]) at once after a write of this
//! process (`crate::changes`) and otherwise once a second, and publishes
//! each change to the [`Hub`]: a ring of recent events (for `Last-Event-ID`)
//! and a bounded queue per subscriber. Publishing never waits: a subscriber
//! whose queue is full has fallen behind and is dropped (its client
//! reconnects and is replayed what it missed, or told to reload).
//!
//! Each stream has a thread of its own, outside both worker lanes, so no
//! number of streams can starve `/health` or `/backups`; their number is
//! capped (`--events-max`, 503 beyond). The thread writes the answer head
//! itself and flushes every event (tiny_http's own chunked encoder would
//! hold them in an 8 KiB buffer), sends a comment every
//! [`KEEPALIVE`], ends the stream after [`MAX_LIFE`] (the client
//! reconnects), and asks the kernel each second whether the client is
//! still connected, so a killed client frees its thread within seconds.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tiny_http::Request;

use super::{Answer, error, header};
use crate::inventory::Reader;
use crate::{changes, signal};

/// Recent events kept for clients that reconnect with `Last-Event-ID`.
const RING: usize = 1024;
/// Events waiting for one subscriber's thread; past that it is dropped.
const QUEUE: usize = 256;
/// A comment this often keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this and the client reconnects: no connection is
/// held forever, and a client's token is checked again.
pub const MAX_LIFE: Duration = Duration::from_secs(30 * 60);
/// How long a client waits before reconnecting (the `retry:` field), ms.
const RETRY_MS: u64 = 3000;
/// The watcher looks at the inventory at least this often (another
/// process's writes), and a stream thread checks its client as often.
const POLL: Duration = Duration::from_secs(1);
/// Least time between two looks, however often this process writes.
const MIN_GAP: Duration = Duration::from_millis(50);
/// File rows read per look (more are read at once after).
const BATCH: u32 = 500;

/// One event as it is written on every stream.
struct Sent {
    id: u64,
    text: String,
}

/// The events and their subscribers.
pub struct Hub {
    inner: Mutex<Inner>,
    /// Most streams open at once.
    cap: usize,
    /// Streams open now (threads), counted by [`Slot`].
    open: AtomicUsize,
}

struct Inner {
    next_id: u64,
    ring: VecDeque<Arc<Sent>>,
    subscribers: Vec<SyncSender<Arc<Sent>>>,
}

/// What a new stream is sent first.
enum Start {
    /// The events after the client's `Last-Event-ID` (none for a new one).
    Replay(Vec<Arc<Sent>>),
    /// The id is older than the ring or not this server's: reload.
    Reset { id: u64 },
}

/// An open stream's place: freed when its thread ends.
struct Slot(Arc<Hub>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Subscription {
    start: Start,
    events: Receiver<Arc<Sent>>,
    _slot: Slot,
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
                subscribers: Vec::new(),
            }),
            cap,
            open: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the event the next id, keeps it in the ring and queues it for
    /// every subscriber; one whose queue is full is dropped. Never waits.
    pub fn publish(&self, name: &str, data: &Value) {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let sent = Arc::new(Sent {
            id,
            text: format!("id: {id}\nevent: {name}\ndata: {data}\n\n"),
        });
        if inner.ring.len() == RING {
            inner.ring.pop_front();
        }
        inner.ring.push_back(Arc::clone(&sent));
        inner
            .subscribers
            .retain(|s| match s.try_send(Arc::clone(&sent)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    log::info!(
                        "events: a subscriber fell {QUEUE} events behind and was dropped; it reconnects and is replayed what it missed"
                    );
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }

    /// A new stream after the client's `last` id, registered in the same
    /// lock as its replay is taken: nothing is missed or sent twice.
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
        let mut inner = self.lock();
        let oldest = inner.ring.front().map_or(inner.next_id, |e| e.id);
        let start = match last {
            None => Start::Replay(Vec::new()),
            Some(Last::Id(l)) if l < inner.next_id && l + 1 >= oldest => {
                Start::Replay(inner.ring.iter().filter(|e| e.id > l).cloned().collect())
            }
            Some(_) => Start::Reset {
                id: inner.next_id - 1,
            },
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        inner.subscribers.push(tx);
        Some(Subscription {
            start,
            events: rx,
            _slot: slot,
        })
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
/// what changed, looking at once after this process wrote.
fn watch_loop(hub: &Hub, db_path: &std::path::Path) {
    let mut seen = changes::current();
    let since = crate::timefmt::iso8601(std::time::SystemTime::now());
    let mut watched: Option<(Reader, crate::inventory::Marks)> = None;
    let mut last_look = Instant::now();
    while !signal::stop_requested() {
        if watched.is_none() {
            watched = Reader::open(db_path)
                .map_err(|e| log::debug!("events: {e}"))
                .ok()
                .and_then(|r| match r.marks(&since) {
                    Ok(m) => Some((r, m)),
                    Err(e) => {
                        log::warn!("events: cannot read the inventory: {e}");
                        None
                    }
                });
        }
        let mut full = false;
        if let Some((reader, marks)) = watched.as_mut() {
            match reader.changes(marks, BATCH) {
                Ok(found) => {
                    full = found.iter().filter(|c| c.name.starts_with("file_")).count()
                        >= BATCH as usize;
                    for c in &found {
                        hub.publish(c.name, &c.data);
                    }
                }
                Err(e) => {
                    log::warn!("events: cannot read the inventory ({e}); opening it again");
                    watched = None;
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
    let spawned = std::thread::Builder::new()
        .name("api-events".into())
        .spawn(move || {
            if let Ok(request) = rx.recv() {
                stream(request, sub);
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

/// Writes one stream until the client goes, falls behind, the stream's
/// life ends or the server stops.
fn stream(request: Request, sub: Subscription) {
    let fd = request.socket_fd();
    give_up_on_silent_peers(fd);
    let version = if request.http_version() == &tiny_http::HTTPVersion(1, 0) {
        "1.0"
    } else {
        "1.1"
    };
    let mut out = request.into_writer();
    let mut head = format!(
        "HTTP/{version} 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
         Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n\r\nretry: {RETRY_MS}\n\n"
    );
    match sub.start {
        Start::Replay(events) => events.iter().for_each(|e| head.push_str(&e.text)),
        Start::Reset { id } => head.push_str(&reset_text(id)),
    }
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let (born, mut wrote) = (Instant::now(), Instant::now());
    while !signal::stop_requested() && born.elapsed() < MAX_LIFE {
        let written = match sub.events.recv_timeout(POLL) {
            Ok(first) => {
                let mut text = first.text.clone();
                while let Ok(more) = sub.events.try_recv() {
                    text.push_str(&more.text);
                }
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Err(RecvTimeoutError::Timeout) if !peer_connected(fd) => break,
            Err(RecvTimeoutError::Timeout) if wrote.elapsed() >= KEEPALIVE => {
                out.write_all(b": keepalive\n\n").and_then(|()| out.flush())
            }
            Err(RecvTimeoutError::Timeout) => continue,
            // Dropped by the hub: this client fell behind.
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if written.is_err() {
            break;
        }
        wrote = Instant::now();
    }
}

/// A client whose host vanished (no FIN, no RST) never makes a write fail
/// while the socket buffer has room; with `TCP_USER_TIMEOUT` the kernel
/// aborts the connection once sent data (a keepalive comment at the
/// latest) stays unacknowledged this long, and [`peer_connected`] sees it:
/// the thread is freed within [`KEEPALIVE`] + this + a second.
fn give_up_on_silent_peers(fd: Option<i32>) {
    const UNACKED_MS: libc::c_uint = 10_000;
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

    fn ids(start: &Start) -> Vec<u64> {
        match start {
            Start::Replay(e) => e.iter().map(|e| e.id).collect(),
            Start::Reset { .. } => vec![0],
        }
    }

    /// A reconnecting client is sent exactly what came after its id; an id
    /// older than the ring, from the future or not a number gets a reset.
    #[test]
    fn replay_and_reset() {
        let hub = Hub::new(4);
        let first = hub.lock().next_id;
        for n in 0..(RING as u64 + 10) {
            hub.publish("file_archived", &json!({ "n": n }));
        }
        let last = first + RING as u64 + 9;
        let sub = hub.subscribe(Some(Last::Id(last - 3))).unwrap();
        assert_eq!(ids(&sub.start), vec![last - 2, last - 1, last]);
        let sub2 = hub.subscribe(Some(Last::Id(last))).unwrap();
        assert!(ids(&sub2.start).is_empty());
        let oldest_kept = last + 1 - RING as u64;
        let sub3 = hub.subscribe(Some(Last::Id(oldest_kept - 1))).unwrap();
        assert_eq!(ids(&sub3.start).len(), RING);
        drop((sub, sub2, sub3));
        for bad in [Last::Id(oldest_kept - 2), Last::Id(last + 1), Last::Unknown] {
            let s = hub.subscribe(Some(bad)).unwrap();
            assert!(
                matches!(s.start, Start::Reset { id } if id == last),
                "{bad:?}"
            );
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

    /// A subscriber that does not take its events is dropped once its queue
    /// is full; publishing never blocks, and the others keep theirs.
    // docs/SAFETY.md S33
    #[test]
    fn a_subscriber_that_falls_behind_is_dropped() {
        let hub = Hub::new(2);
        let slow = hub.subscribe(None).unwrap();
        let quick = hub.subscribe(None).unwrap();
        let mut got = 0;
        for n in 0..QUEUE + 5 {
            hub.publish("file_archived", &json!({ "n": n }));
            while quick.events.try_recv().is_ok() {
                got += 1;
            }
        }
        assert_eq!(got, QUEUE + 5);
        assert_eq!(hub.lock().subscribers.len(), 1);
        assert_eq!(slow.events.try_iter().count(), QUEUE);
        assert!(matches!(
            slow.events.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Disconnected)
        ));
    }
}
