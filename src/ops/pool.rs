//! A fixed number of threads taking items from one queue, each result
//! handed back to the calling thread as it is ready: the shape `verify`'s
//! read-back and `restore` share. (`upload` has its own pool: its results
//! hold open files, so its channel is bounded.)
//!
//! A stop signal must end these commands within seconds even while a
//! worker waits on a server that went silent (a read can wait up to the
//! client's 120 s answer timeout): the workers take no new item once
//! `stop()` says so, and [`STOP_GRACE`] after that the calling thread stops
//! waiting for the ones still busy. Those are left to finish, or to die with
//! the process, which ends soon after; their items count as abandoned.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::signal::STOP_GRACE;

/// How often waiting threads look at `stop()`.
const POLL: Duration = Duration::from_millis(100);
/// Items handed out ahead of the workers, per worker: enough to keep them
/// busy, few enough that memory does not grow with the number of items.
const AHEAD: usize = 2;

/// How a [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Every item was taken from the source and its result handed back.
    pub complete: bool,
    /// Items still being worked on when the calling thread stopped waiting.
    pub abandoned: usize,
}

/// A thread-safe predicate: "stop taking items".
pub type Stop = Arc<dyn Fn() -> bool + Send + Sync>;

/// Runs `work` on every item of `items` on up to `workers` threads until
/// the items run out or `stop()` says to end; `each` gets every result on
/// the calling thread, so it needs no locking. Items are pulled from
/// `items` by the calling thread only as workers are ready for them (a few
/// ahead), so the source may be a stream as long as the archive (a merge
/// of a listing and the inventory) without memory growing with it. If no
/// thread can be started (a process or memory limit), the calling thread
/// does the work itself: slower, never a crash.
pub fn run<T, R>(
    workers: usize,
    items: &mut dyn Iterator<Item = T>,
    stop: Stop,
    work: Arc<dyn Fn(T) -> R + Send + Sync>,
    each: &mut dyn FnMut(R),
) -> Ended
where
    T: Send + 'static,
    R: Send + 'static,
{
    let (work_tx, work_rx) = mpsc::sync_channel::<T>(workers.max(1) * AHEAD);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let busy = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<R>();
    let mut started = 0;
    for n in 0..workers.max(1) {
        let (work_rx, busy, stop, work, tx) = (
            Arc::clone(&work_rx),
            Arc::clone(&busy),
            Arc::clone(&stop),
            Arc::clone(&work),
            tx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{n}"))
            .spawn(move || {
                while !stop() {
                    let item = {
                        let rx = work_rx.lock().unwrap_or_else(PoisonError::into_inner);
                        match rx.recv_timeout(POLL) {
                            Ok(item) => item,
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    };
                    busy.fetch_add(1, Ordering::SeqCst);
                    let sent = tx.send(work(item));
                    busy.fetch_sub(1, Ordering::SeqCst);
                    if sent.is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => started += 1,
            Err(e) => {
                log::warn!("cannot start a worker thread ({e}); going on with {started}");
                break;
            }
        }
    }
    drop(tx);
    if started == 0 {
        drop(work_tx);
        for item in &mut *items {
            if stop() {
                return Ended {
                    complete: false,
                    abandoned: 0,
                };
            }
            each(work(item));
        }
        return Ended {
            complete: true,
            abandoned: 0,
        };
    }
    feed_and_collect(items, work_tx, &rx, stop.as_ref(), &busy, started, each)
}

/// The calling thread's loop: hands items to the workers as they take
/// them, passes results to `each`, and after a stop waits [`STOP_GRACE`]
/// for the items in work before leaving them behind. One loop on
/// purpose: feeding, collecting and the stop grace share its counters.
fn feed_and_collect<T, R>(
    items: &mut dyn Iterator<Item = T>,
    work_tx: SyncSender<T>,
    rx: &mpsc::Receiver<R>,
    stop: &(dyn Fn() -> bool + Send + Sync),
    busy: &AtomicUsize,
    workers: usize,
    each: &mut dyn FnMut(R),
) -> Ended {
    let ahead = workers * AHEAD;
    let mut work_tx = Some(work_tx);
    let (mut out, mut exhausted) = (0usize, false);
    let mut stop_seen: Option<Instant> = None;
    loop {
        while !exhausted && out < ahead && !stop() {
            match items.next() {
                Some(item) => {
                    if let Some(t) = &work_tx
                        && t.send(item).is_ok()
                    {
                        out += 1;
                    }
                }
                None => {
                    exhausted = true;
                    work_tx = None; // workers end once the channel is empty
                }
            }
        }
        if exhausted && out == 0 {
            return Ended {
                complete: true,
                abandoned: 0,
            };
        }
        match rx.recv_timeout(POLL) {
            Ok(r) => {
                out -= 1;
                each(r);
            }
            // Every worker ended: what was handed out and not returned was
            // never started (they stopped on the flag).
            Err(RecvTimeoutError::Disconnected) => {
                return Ended {
                    complete: false,
                    abandoned: 0,
                };
            }
            Err(RecvTimeoutError::Timeout) if !stop() => {}
            Err(RecvTimeoutError::Timeout) => {
                work_tx = None;
                if stop_seen.get_or_insert_with(Instant::now).elapsed() >= STOP_GRACE {
                    // A result that arrived at the deadline still counts.
                    while let Ok(r) = rx.try_recv() {
                        each(r);
                    }
                    return Ended {
                        complete: false,
                        abandoned: busy.load(Ordering::SeqCst),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn every_item_once_and_a_stop_leaves_the_rest() {
        let mut got = Vec::new();
        let never: Stop = Arc::new(|| false);
        let double = Arc::new(|i: u32| i * 2);
        let ended = run(3, &mut (0..100), never, double, &mut |r| got.push(r));
        got.sort_unstable();
        assert_eq!(
            ended,
            Ended {
                complete: true,
                abandoned: 0
            }
        );
        assert_eq!(got, (0..100).map(|i| i * 2).collect::<Vec<_>>());

        let done = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&done);
        let stop: Stop = Arc::new(move || d.load(Ordering::SeqCst) >= 5);
        let work = Arc::new(move |i: u32| {
            done.fetch_add(1, Ordering::SeqCst);
            i
        });
        let mut n = 0;
        let mut pulled = 0;
        let mut items = (0..100).inspect(|_| pulled += 1);
        let ended = run(1, &mut items, stop, work, &mut |_| n += 1);
        assert_eq!((n, ended.complete, ended.abandoned), (5, false, 0));
        assert!(
            pulled <= 5 + AHEAD,
            "pulled {pulled}: the source is read only as needed"
        );
    }

    #[test]
    fn a_worker_stuck_after_a_stop_is_abandoned_after_the_grace() {
        let stopped = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stopped);
        let stop: Stop = Arc::new(move || s.load(Ordering::SeqCst));
        let s = Arc::clone(&stopped);
        // The first item raises the stop and then hangs, as a read from a
        // silent server would.
        let work = Arc::new(move |i: u32| {
            if i == 0 {
                s.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(3600));
            }
            i
        });
        let t0 = Instant::now();
        let ended = run(1, &mut (0..10), stop, work, &mut |_| {});
        assert!(t0.elapsed() < STOP_GRACE + Duration::from_secs(2));
        assert_eq!(
            ended,
            Ended {
                complete: false,
                abandoned: 1
            }
        );
    }
}
