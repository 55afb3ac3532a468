//! A fixed number of threads taking items from one queue, each result
//! handed back to the calling thread as it is ready: the shape `verify`'s
//! read-back and `restore` share. (`upload` has its own pool: its results
//! hold open files, so its channel is bounded.)

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};

/// Runs `work` on every item on up to `workers` threads until the queue is
/// empty or `stop()` says to end; `each` gets every result on the calling
/// thread, so it needs no locking. Returns how many items were never
/// started. If no thread can be started (a process or memory limit), the
/// calling thread does the work itself: slower, never a crash.
pub fn run<T: Send, R: Send>(
    workers: usize,
    items: VecDeque<T>,
    stop: &(dyn Fn() -> bool + Sync),
    work: &(dyn Fn(T) -> R + Sync),
    each: &mut dyn FnMut(R),
) -> usize {
    let queue = Mutex::new(items);
    let next = || {
        queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    };
    let (tx, rx) = mpsc::channel::<R>();
    std::thread::scope(|s| {
        let mut started = 0;
        for n in 0..workers.max(1) {
            let tx = tx.clone();
            let next = &next;
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn_scoped(s, move || {
                    while !stop() {
                        let Some(item) = next() else { break };
                        if tx.send(work(item)).is_err() {
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
                let Some(item) = next() else { break };
                each(work(item));
            }
        }
        for r in rx {
            each(r);
        }
    });
    queue
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_once_and_a_stop_leaves_the_rest() {
        let mut got = Vec::new();
        let left = run(
            3,
            (0..100).collect(),
            &|| false,
            &|i: u32| i * 2,
            &mut |r| got.push(r),
        );
        got.sort_unstable();
        assert_eq!(left, 0);
        assert_eq!(got, (0..100).map(|i| i * 2).collect::<Vec<_>>());

        let done = AtomicUsize::new(0);
        let stop = || done.load(Ordering::SeqCst) >= 5;
        let work = |i: u32| {
            done.fetch_add(1, Ordering::SeqCst);
            i
        };
        let mut n = 0;
        let left = run(1, (0..100).collect(), &stop, &work, &mut |_| n += 1);
        assert_eq!((n, left), (5, 95));
    }
}
