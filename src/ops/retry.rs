//! Retrying store requests, in one place: which errors are worth another
//! try, how long to wait, and when to stop trying altogether.
//!
//! The [`Breaker`] is shared by all workers. When the endpoint stops
//! answering (connections refused, no route), every file would otherwise
//! spend all its retries and the run would crawl through the whole queue
//! (minutes for a few hundred files) to the same conclusion. After
//! [`UNREACHABLE_LIMIT`] consecutive "cannot reach" failures, any answer from
//! the server resetting the count, the breaker trips: no more retries, no new
//! files, and the run ends with one clear error.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::signal;
use crate::store::{StoreError, StoreErrorKind};

/// Consecutive unreachable-endpoint failures that end a run.
pub const UNREACHABLE_LIMIT: u32 = 5;
/// Consecutive refusals of the credentials that end a run (expired
/// session tokens: every later request fails alike).
pub const CREDENTIALS_LIMIT: u32 = 3;
/// First backoff; doubled per retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Trips when the endpoint is unreachable, or refuses the credentials,
/// for the whole run.
#[derive(Debug, Default)]
pub struct Breaker {
    consecutive: AtomicU32,
    refused: AtomicU32,
    tripped: Mutex<Option<String>>,
}

impl Breaker {
    /// The reason the run must stop, once tripped.
    pub fn tripped(&self) -> Option<String> {
        self.tripped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counts one request's result.
    pub fn record<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Err(e) if e.kind == StoreErrorKind::Unreachable => {
                let n = self.consecutive.fetch_add(1, Ordering::SeqCst) + 1;
                // The limit, not `n`: with several workers another failure
                // may count between the two lines.
                if n >= UNREACHABLE_LIMIT {
                    self.trip(format!(
                        "endpoint unreachable ({UNREACHABLE_LIMIT} connection failures in a row): {}",
                        e.message
                    ));
                }
            }
            Err(e) if e.kind == StoreErrorKind::Credentials => {
                self.consecutive.store(0, Ordering::SeqCst);
                let n = self.refused.fetch_add(1, Ordering::SeqCst) + 1;
                if n >= CREDENTIALS_LIMIT {
                    self.trip(format!(
                        "the server refuses the credentials ({CREDENTIALS_LIMIT} requests in a row): {}",
                        e.message
                    ));
                }
            }
            // Any answer, even an error status, shows the endpoint is there.
            Err(_) => self.consecutive.store(0, Ordering::SeqCst),
            Ok(_) => {
                self.consecutive.store(0, Ordering::SeqCst);
                self.refused.store(0, Ordering::SeqCst);
            }
        }
    }

    fn trip(&self, why: String) {
        let mut t = self.tripped.lock().unwrap_or_else(PoisonError::into_inner);
        if t.is_none() {
            *t = Some(why);
        }
    }

    /// Whether waiting and trying again is pointless now.
    fn should_give_up(&self) -> bool {
        signal::stop_requested() || self.tripped().is_some()
    }
}

/// Runs `op`, repeating it on retryable failures with exponential backoff,
/// up to `retries` times, unless a stop signal arrives or the breaker trips.
pub fn with_retries<T>(
    retries: u32,
    breaker: &Breaker,
    mut op: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut attempt = 0u32;
    loop {
        let result = op();
        breaker.record(&result);
        match result {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < retries && !breaker.should_give_up() => {
                attempt += 1;
                let delay = FIRST_BACKOFF
                    .saturating_mul(1 << (attempt - 1).min(5))
                    .min(MAX_BACKOFF);
                log::warn!(
                    "{}; retry {attempt}/{retries} in {:.1} s",
                    e.message,
                    delay.as_secs_f64()
                );
                pause(delay, breaker);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sleeps `delay`, waking early on a stop signal or a tripped breaker.
fn pause(delay: Duration, breaker: &Breaker) {
    let until = Instant::now() + delay;
    while !breaker.should_give_up() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_consecutive_unreachable_and_resets_on_any_answer() {
        let b = Breaker::default();
        for _ in 0..UNREACHABLE_LIMIT - 1 {
            b.record::<()>(&Err(StoreError::unreachable("refused")));
        }
        b.record::<()>(&Err(StoreError::transient("HTTP 503")));
        b.record::<()>(&Err(StoreError::unreachable("refused")));
        assert_eq!(b.tripped(), None, "a 503 is an answer: count restarted");
        for _ in 0..UNREACHABLE_LIMIT {
            b.record::<()>(&Err(StoreError::unreachable("refused")));
        }
        assert!(
            b.tripped()
                .unwrap()
                .contains("endpoint unreachable (5 connection failures in a row): refused")
        );
    }

    #[test]
    fn refused_credentials_trip_it_and_a_success_resets_the_count() {
        let b = Breaker::default();
        let refused = || StoreError::credentials("ExpiredToken");
        b.record::<()>(&Err(refused()));
        b.record::<()>(&Err(refused()));
        b.record(&Ok(()));
        b.record::<()>(&Err(StoreError::transient("HTTP 503")));
        b.record::<()>(&Err(refused()));
        assert_eq!(b.tripped(), None);
        b.record::<()>(&Err(refused()));
        b.record::<()>(&Err(refused()));
        assert!(
            b.tripped()
                .unwrap()
                .contains("refuses the credentials (3 requests in a row)")
        );
    }

    #[test]
    fn no_retries_once_tripped() {
        let b = Breaker::default();
        for _ in 0..UNREACHABLE_LIMIT - 1 {
            b.record::<()>(&Err(StoreError::unreachable("refused")));
        }
        let mut calls = 0;
        let r: Result<(), _> = with_retries(20, &b, || {
            calls += 1;
            Err(StoreError::unreachable("refused"))
        });
        assert!(r.is_err());
        assert_eq!(
            calls, 1,
            "the failure that trips the breaker is not retried"
        );
    }
}
