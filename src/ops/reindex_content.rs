//! `fgbackup reindex --content`: the content index of archived objects the
//! inventory has no whole index of (uploaded before the index existed, with
//! `--index never`, or indexed in part), built by reading each one back
//! from the store, proven against the inventory's SHA-256 as `verify`
//! proves it: an object that is not the one archived gets no index.
//!
//! An archive whose sidecar (`content::sidecar`, written by the upload that
//! indexed it) describes the very bytes the inventory says are archived is
//! indexed from the sidecar instead, a few bytes per archive: how a central
//! box that only reads the bucket searches a fleet. `--read-objects`
//! ignores sidecars (anyone who can write the bucket can write one).
//!
//! Objects are read on `--workers` threads; their indexes are written on
//! the calling thread, a batch per transaction.

use std::sync::Arc;

use crate::content::inflate::Inflate;
use crate::content::{Indexed, Indexer, sidecar};
use crate::error::Result;
use crate::inventory::{Coverage, Expected, Inventory};
use crate::ops::archived::Pages;
use crate::ops::pool;
use crate::ops::retry::{self, Breaker};
use crate::ops::verify::compare::{Finding, ReadBackSink, judge};
use crate::scan::sidecar_key;
use crate::settings::Target;
use crate::signal;
use crate::store::{Store, StoreError};

/// Indexes written per transaction.
const BATCH: u64 = 200;

/// What the pass did.
#[derive(Debug, Default)]
pub struct Counts {
    pub indexed: u64,
    /// Of those indexed, how many from their sidecars.
    pub from_sidecars: u64,
    pub failed: u64,
}

/// Indexes every archived object below `target.prefix` that lacks a whole
/// index of its bytes (from its sidecar unless `read_objects`); a line per
/// object that could not be, and the counts.
pub fn run(target: &Target, inv: &Inventory, read_objects: bool) -> Result<Counts> {
    let store = crate::build::open_reader(target)?;
    let mut wanting = Wanting::new(inv, target);
    let breaker = Arc::new(Breaker::default());
    let work = {
        let (store, b, retries) = (Arc::clone(&store), Arc::clone(&breaker), target.retries);
        let prefix = target.prefix.clone();
        Arc::new(move |e: Expected| {
            let side = (!read_objects)
                .then(|| from_sidecar(store.as_ref(), &prefix, &e))
                .flatten();
            let r = match side {
                Some(ix) => Ok((ix, true)),
                None => read_one(store.as_ref(), retries, &b, &e).map(|ix| (ix, false)),
            };
            (e, r)
        })
    };
    let b = Arc::clone(&breaker);
    let stop: pool::Stop = Arc::new(move || signal::stop_requested() || b.tripped().is_some());
    let mut counts = Counts::default();
    let mut failure = None;
    pool::run(target.workers, &mut wanting, stop, work, &mut |(e, r)| {
        if failure.is_some() {
            return;
        }
        match r {
            Ok((ix, from_sidecar)) => {
                if let Err(err) = record(inv, &e, &ix, counts.indexed) {
                    failure = Some(err);
                    return;
                }
                counts.indexed += 1;
                counts.from_sidecars += u64::from(from_sidecar);
            }
            // A read cut by a stop signal is no failure: it was not done.
            Err(Refused(why)) if why == STOPPED => {}
            Err(Refused(why)) => {
                counts.failed += 1;
                log::error!("{}: not indexed: {why}", e.key);
            }
        }
    });
    if !counts.indexed.is_multiple_of(BATCH) || failure.is_some() {
        inv.commit()?;
    }
    if let Some(e) = failure.or(wanting.error) {
        return Err(e);
    }
    if let Some(why) = breaker.tripped() {
        log::error!("reindex --content cut short: {why}");
        counts.failed += 1;
    }
    Ok(counts)
}

/// Writes one index, opening a transaction every [`BATCH`] and committing it.
fn record(inv: &Inventory, e: &Expected, ix: &Indexed, done: u64) -> Result<()> {
    if done.is_multiple_of(BATCH) {
        inv.begin()?;
    }
    let sha = e.sha256.as_deref().unwrap_or_default();
    inv.record_content(e.row_id, &e.key, sha, ix)?;
    if (done + 1).is_multiple_of(BATCH) {
        inv.commit()?;
    }
    Ok(())
}

/// The index in the archive's sidecar, when there is one that describes
/// the very bytes archived (key, size, SHA-256 of the inventory's row);
/// otherwise `None`, and the archive is read itself.
fn from_sidecar(store: &dyn Store, prefix: &str, e: &Expected) -> Option<Indexed> {
    let (sha, size) = (e.sha256.as_deref()?, e.size?);
    let key = sidecar_key(prefix, &e.key)?;
    let mut sink = Capped {
        bytes: Vec::new(),
        cap: sidecar::max_bytes(size),
    };
    match store.read_object(&key, &mut sink) {
        Ok(Some(_)) => {}
        Ok(None) => return None,
        Err(err) => {
            log::info!(
                "{}: sidecar {key} unread ({}): reading the archive",
                e.key,
                err.message
            );
            return None;
        }
    }
    match sidecar::decode(&sink.bytes, &e.key, sha, size) {
        Ok(index) => Some(Indexed::new(index, None::<&String>)),
        Err(why) => {
            log::warn!(
                "{}: sidecar {key} not taken: {why}; reading the archive",
                e.key
            );
            None
        }
    }
}

/// Keeps what is written up to `cap` bytes, and refuses more.
struct Capped {
    bytes: Vec<u8>,
    cap: u64,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.bytes.len() + buf.len()) as u64 > self.cap {
            return Err(std::io::Error::other(format!(
                "larger than {} bytes, more than a sidecar of this archive can be",
                self.cap
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The reason of a read a stop signal cut short.
const STOPPED: &str = "stopped by a signal";

/// Why an object got no index: what `verify` would say of it.
struct Refused(String);

impl From<&str> for Refused {
    fn from(why: &str) -> Refused {
        Refused(why.to_string())
    }
}

/// Reads one object through SHA-256 and the indexer, with retries (each
/// from a fresh indexer); its index only if it is the object archived.
fn read_one(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    e: &Expected,
) -> std::result::Result<Indexed, Refused> {
    let mut kept = None;
    let attempt = || -> std::result::Result<_, StoreError> {
        let indexer = Indexer::for_archive(e.size.unwrap_or(0));
        let mut sink = ReadBackSink(Inflate::new(indexer));
        let rb = store.read_object(&e.key, &mut sink)?;
        kept = Some(sink.0.finish());
        Ok(rb)
    };
    match retry::with_retries(retries, breaker, attempt) {
        Ok(Some(rb)) => {
            let v = judge(e, &rb);
            match (v.finding, kept, e.sha256.is_some()) {
                (Finding::Ok, Some((Some(ix), broken)), true) => {
                    Ok(Indexed::new(ix.finish(), broken.as_ref()))
                }
                (Finding::Ok, _, false) => Err(
                    "the inventory has no sha256 for it, so what was read cannot be proven".into(),
                ),
                (Finding::Ok, _, true) => Err("internal error: nothing kept".into()),
                _ => Err(Refused(format!("{}: {}", v.finding.as_str(), v.detail))),
            }
        }
        Ok(None) => Err("missing from the store".into()),
        Err(_) if signal::stop_requested() => Err(Refused(STOPPED.into())),
        Err(err) => Err(Refused(format!("cannot read it: {}", err.message))),
    }
}

/// The archived objects below the prefix the index cannot speak for, in
/// key order.
struct Wanting<'a> {
    inv: &'a Inventory,
    pages: Pages<'a>,
    error: Option<crate::error::Error>,
}

impl<'a> Wanting<'a> {
    fn new(inv: &'a Inventory, target: &Target) -> Wanting<'a> {
        Wanting {
            inv,
            pages: Pages::new(inv, &target.prefix),
            error: None,
        }
    }
}

impl Iterator for Wanting<'_> {
    type Item = Expected;

    fn next(&mut self) -> Option<Expected> {
        for e in self.pages.by_ref() {
            match self.inv.content_coverage(&e.key, e.sha256.as_deref()) {
                Ok(Coverage::Unknown) => return Some(e),
                Ok(Coverage::Whole { .. } | Coverage::Partial) => {}
                Err(err) => {
                    self.error = Some(err);
                    return None;
                }
            }
        }
        self.error = self.error.take().or(self.pages.error.take());
        None
    }
}
