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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::signal::STOP_GRACE;

/// How often the calling thread looks at `stop()` while it waits.
const POLL: Duration = Duration::from_millis(100);

/// How a [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Items never started.
    pub left: usize,
    /// Items still being worked on when the calling thread stopped waiting.
    pub abandoned: usize,
}

/// A thread-safe predicate: "stop taking items".
pub type Stop = Arc<dyn Fn() -> bool + Send + Sync>;

/// Runs `work` on every item on up to `workers` threads until the queue is
/// empty or `stop()` says to end; `each` gets every result on the calling
/// thread, so it needs no locking. If no thread can be started (a process
/// or memory limit), the calling thread does the work itself: slower, never
/// a crash.
pub fn run<T, R>(
    workers: usize,
    items: VecDeque<T>,
    stop: Stop,
    work: Arc<dyn Fn(T) -> R + Send + Sync>,
    each: &mut dyn FnMut(R),
) -> Ended
where
    T: Send + 'static,
    R: Send + 'static,
{
    let queue = Arc::new(Mutex::new(items));
    let busy = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<R>();
    let mut started = 0;
    for n in 0..workers.max(1) {
        let (queue, busy, stop, work, tx) = (
            Arc::clone(&queue),
            Arc::clone(&busy),
            Arc::clone(&stop),
            Arc::clone(&work),
            tx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{n}"))
            .spawn(move || {
                while !stop() {
                    let Some(item) = take(&queue, &busy) else {
                        break;
                    };
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
        while !stop() {
            let Some(item) = take(&queue, &busy) else {
                break;
            };
            each(work(item));
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let abandoned = collect(&rx, stop.as_ref(), &busy, each);
    let left = queue.lock().unwrap_or_else(PoisonError::into_inner).len();
    Ended { left, abandoned }
}

/// The next item, counted busy until its result is sent.
fn take<T>(queue: &Mutex<VecDeque<T>>, busy: &AtomicUsize) -> Option<T> {
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    let item = q.pop_front()?;
    busy.fetch_add(1, Ordering::SeqCst);
    Some(item)
}

/// Hands results to `each` until every worker is done, or until
/// [`STOP_GRACE`] after `stop()` first said so; returns how many items were
/// still busy then.
fn collect<R>(
    rx: &mpsc::Receiver<R>,
    stop: &(dyn Fn() -> bool + Send + Sync),
    busy: &AtomicUsize,
    each: &mut dyn FnMut(R),
) -> usize {
    let mut stop_seen: Option<Instant> = None;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(r) => each(r),
            Err(RecvTimeoutError::Disconnected) => return 0,
            Err(RecvTimeoutError::Timeout) => {
                if !stop() {
                    continue;
                }
                if stop_seen.get_or_insert_with(Instant::now).elapsed() >= STOP_GRACE {
                    // A result that arrived at the deadline still counts.
                    while let Ok(r) = rx.try_recv() {
                        each(r);
                    }
                    return busy.load(Ordering::SeqCst);
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
        let ended = run(3, (0..100).collect(), never, double, &mut |r| got.push(r));
        got.sort_unstable();
        assert_eq!(
            ended,
            Ended {
                left: 0,
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
        let ended = run(1, (0..100).collect(), stop, work, &mut |_| n += 1);
        assert_eq!((n, ended.left, ended.abandoned), (5, 95, 0));
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
        let ended = run(1, (0..10).collect(), stop, work, &mut |_| {});
        assert!(t0.elapsed() < STOP_GRACE + Duration::from_secs(2));
        assert_eq!(
            ended,
            Ended {
                left: 9,
                abandoned: 1
            }
        );
    }
}
