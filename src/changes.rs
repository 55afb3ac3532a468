//! "The inventory changed" within this process: a counter bumped after each
//! write that commits, and a condition variable. The API's event watcher
//! (`api::events`) waits on it, so in `daemon` a file's row reaches the
//! live stream within milliseconds instead of at the next poll; another
//! process's writes are still found by that poll. Announcing costs a lock
//! and a wake-up: it never waits on the watcher.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

static GENERATION: Mutex<u64> = Mutex::new(0);
static CHANGED: Condvar = Condvar::new();

/// Says that rows were committed.
pub fn announce() {
    let mut g = GENERATION.lock().unwrap_or_else(PoisonError::into_inner);
    *g = g.wrapping_add(1);
    CHANGED.notify_all();
}

/// The current count of announcements.
pub fn current() -> u64 {
    *GENERATION.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits until the count differs from `seen` or `timeout` passed; returns
/// the count then.
pub fn wait_past(seen: u64, timeout: Duration) -> u64 {
    let g = GENERATION.lock().unwrap_or_else(PoisonError::into_inner);
    let (g, _) = CHANGED
        .wait_timeout_while(g, timeout, |g| *g == seen)
        .unwrap_or_else(PoisonError::into_inner);
    *g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_wakes_on_an_announcement_and_not_before() {
        let seen = current();
        assert_eq!(wait_past(seen, Duration::from_millis(10)), seen);
        let t = std::thread::spawn(move || wait_past(seen, Duration::from_secs(30)));
        announce();
        assert_ne!(t.join().unwrap(), seen);
    }
}
