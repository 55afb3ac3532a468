//! Bytes of file content on their way, counted where they pass (the S3
//! request body and the directory store's copy loop of `upload`, the
//! read-back of `verify`), so the progress display moves while one large
//! file is sent or read instead of jumping when it is done.
//!
//! A leaf: the workers only add, the display only reads. Each worker thread
//! handles one file at a time, so a thread-local count tells what the current
//! file has moved; the worker hands that count to the writer with the file's
//! outcome, and the writer swaps it for the file's size ([`settle`]) when it
//! counts the file as done. A retried body counts again until then, so a
//! reader caps what it shows at its total.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes moved for files not yet counted done, over all threads.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Bytes this thread has moved for the file it works on.
    static THIS_FILE: Cell<u64> = const { Cell::new(0) };
}

/// `n` more bytes of the current file passed this thread.
pub fn moved(n: u64) {
    IN_FLIGHT.fetch_add(n, Ordering::Relaxed);
    THIS_FILE.with(|c| c.set(c.get().saturating_add(n)));
}

/// Ends this thread's current file: what it moved, to be [`settle`]d by
/// whoever counts the file done.
pub fn take_file() -> u64 {
    THIS_FILE.with(|c| c.replace(0))
}

/// A file that had moved `n` bytes is counted done by its size elsewhere.
pub fn settle(n: u64) {
    // Never below zero, even if a count is settled twice.
    let _ = IN_FLIGHT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

/// Bytes moved for files not yet counted done.
pub fn in_flight() -> u64 {
    IN_FLIGHT.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_bytes_are_in_flight_until_settled() {
        // Other tests in this process may send too: compare differences.
        let before = in_flight();
        std::thread::spawn(|| {
            moved(300);
            moved(200);
            let n = take_file();
            assert_eq!(n, 500);
            assert_eq!(take_file(), 0, "taken once");
            n
        })
        .join()
        .map(|n| {
            assert!(in_flight() >= before + 500);
            settle(n);
        })
        .unwrap();
    }
}
