//! Which keys of a run are free at the destination, learnt from one
//! listing instead of a HEAD per file.
//!
//! A key the listing did not show goes straight to the PUT, whose
//! `If-None-Match: *` keeps it from replacing an object that appeared
//! since. A server that ignores that header (Garage 2.x) would replace such
//! an object, so the listing is trusted only for [`FRESH`] after it began;
//! after that every remaining file gets a HEAD. The listing is taken once
//! per run: a slow one is never redone per file (a listing of 100,000
//! objects that takes longer than [`FRESH`] would otherwise be redone for
//! every file, under a lock all workers wait on).

use std::collections::HashSet;
use std::sync::Arc;
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
    absent: HashSet<String>,
    began: Option<Instant>,
}

impl Listing {
    /// Lists the destination for `keys` (the run's object keys) on a helper
    /// thread that a stop signal abandons. Few keys: no listing, a HEAD each.
    pub fn start(store: &Arc<dyn Store>, keys: Vec<String>) -> Listing {
        let mut listing = Listing {
            absent: HashSet::new(),
            began: None,
        };
        if keys.len() < MIN_KEYS {
            return listing;
        }
        let store = Arc::clone(store);
        let began = Instant::now();
        if let Ok(absent) = signal::run_bounded("listing", NO_LIMIT, move || {
            absent_keys(store.as_ref(), keys)
        }) {
            listing = Listing {
                absent,
                began: Some(began),
            };
        }
        if began.elapsed() >= FRESH {
            log::info!(
                "listing the destination took {:.0} s, longer than the {} s it is trusted: every file is probed with a HEAD instead",
                began.elapsed().as_secs_f64(),
                FRESH.as_secs()
            );
        }
        listing
    }

    /// Whether `key` is known to be free: the listing showed it absent and
    /// is younger than [`FRESH`]. No network call, no lock.
    pub fn is_absent(&self, key: &str) -> bool {
        self.began.is_some_and(|at| at.elapsed() < FRESH) && self.absent.contains(key)
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
