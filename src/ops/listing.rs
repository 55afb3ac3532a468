//! Which keys of a run are free at the destination, learnt from listings
//! instead of a HEAD per file.
//!
//! A key a listing did not show goes straight to the PUT, whose
//! `If-None-Match: *` keeps it from replacing an object that appeared
//! since. A server that ignores that header (Garage 2.x) would replace such
//! an object, so a listing is trusted only for [`FRESH`]: after that the
//! keys still queued are listed again (or probed with a HEAD each when the
//! listing fails), which keeps the window in which another writer's new
//! object could be missed to seconds, as a HEAD before each PUT would not
//! close entirely either.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::signal;
use crate::store::Store;

/// How long a listing's "absent" stays true.
pub const FRESH: Duration = Duration::from_secs(10);
/// Below this many keys a HEAD each costs less than a listing.
const MIN_KEYS: usize = 4;
/// The opening listing waits on the server like the bucket check does: no
/// limit of its own, but a stop signal ends the wait.
const NO_LIMIT: Duration = Duration::MAX;

/// The keys known to be absent, and when the listing that said so began.
pub struct Listing {
    state: Mutex<(HashSet<String>, Option<Instant>)>,
}

impl Listing {
    /// Lists the destination for `keys` (the run's object keys) on a helper
    /// thread that a stop signal abandons. Few keys: no listing, a HEAD each.
    pub fn start(store: &Arc<dyn Store>, keys: Vec<String>) -> Listing {
        let listing = Listing {
            state: Mutex::new((HashSet::new(), None)),
        };
        if keys.len() < MIN_KEYS {
            return listing;
        }
        let store = Arc::clone(store);
        let began = Instant::now();
        if let Ok(absent) = signal::run_bounded("listing", NO_LIMIT, move || {
            absent_keys(store.as_ref(), keys)
        }) {
            *listing.lock() = (absent, Some(began));
        }
        listing
    }

    /// Whether `key` is known to be free. When the last listing is older
    /// than [`FRESH`], the keys `pending()` names are listed again first.
    pub fn is_absent(
        &self,
        key: &str,
        store: &dyn Store,
        pending: impl FnOnce() -> Vec<String>,
    ) -> bool {
        let mut state = self.lock();
        let Some(at) = state.1 else {
            return false; // no listing in this run: a HEAD each
        };
        if at.elapsed() >= FRESH {
            let began = Instant::now();
            let mut keys = pending();
            keys.push(key.to_string());
            *state = if keys.len() < MIN_KEYS {
                (HashSet::new(), None)
            } else {
                (absent_keys(store, keys), Some(began))
            };
        }
        state.0.contains(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashSet<String>, Option<Instant>)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The subset of `keys` one listing of the destination proves absent;
/// empty when the listing is incomplete, not supported or failed.
fn absent_keys(store: &dyn Store, mut keys: Vec<String>) -> HashSet<String> {
    keys.sort();
    keys.dedup();
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return HashSet::new();
    };
    let common = common_prefix(first, last).to_string();
    let last = last.clone();
    let mut absent: HashSet<String> = keys.into_iter().collect();
    // A listing page costs what a HEAD does: give up once it costs more
    // than a quarter of the HEADs it saves.
    let max_pages = (absent.len() / 4).max(1);
    match store.list(&common, &last, max_pages, &mut |k| {
        absent.remove(k);
    }) {
        Ok(true) => {
            log::debug!("listing: {} key(s) absent", absent.len());
            absent
        }
        Ok(false) => HashSet::new(),
        Err(e) => {
            log::warn!(
                "listing {} failed ({e}); probing each file instead",
                store.describe()
            );
            HashSet::new()
        }
    }
}

/// The longest common prefix of two keys, cut at a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    &a[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix("site/a-01.gz", "site/a-09.gz"), "site/a-0");
        assert_eq!(common_prefix("abc", "abcd"), "abc");
        assert_eq!(common_prefix("é1", "é2"), "é");
        assert_eq!(common_prefix("x", "y"), "");
    }
}
