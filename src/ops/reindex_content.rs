//! `fgbackup reindex --content`: the content index of archived objects the
//! inventory has no whole index of (uploaded before the index existed, with
//! `--index never`, or indexed in part), built by reading each one back
//! from the store, proven against the inventory's SHA-256 as `verify`
//! proves it: an object that is not the one archived gets no index.
//!
//! Objects are read on `--workers` threads; their indexes are written on
//! the calling thread, a batch per transaction.

use std::sync::Arc;

use crate::content::inflate::Inflate;
use crate::content::{Indexed, Indexer};
use crate::error::Result;
use crate::inventory::{Coverage, Expected, Inventory};
use crate::ops::archived::Pages;
use crate::ops::pool;
use crate::ops::retry::{self, Breaker};
use crate::ops::verify::compare::{Finding, ReadBackSink, judge};
use crate::settings::Target;
use crate::signal;
use crate::store::{Store, StoreError};

/// Indexes written per transaction.
const BATCH: u64 = 200;

/// What the pass did.
#[derive(Debug, Default)]
pub struct Counts {
    pub indexed: u64,
    pub failed: u64,
}

/// Indexes every archived object below `target.prefix` that lacks a whole
/// index of its bytes; a line per object that could not be, and the counts.
pub fn run(target: &Target, inv: &Inventory) -> Result<Counts> {
    let store: Arc<dyn Store> = Arc::from(crate::build::open_destination(
        &target.destination,
        &target.transfer,
        target.workers,
        true,
    )?);
    let mut wanting = Wanting::new(inv, target);
    let breaker = Arc::new(Breaker::default());
    let work = {
        let (store, b, retries) = (Arc::clone(&store), Arc::clone(&breaker), target.retries);
        Arc::new(move |e: Expected| {
            let r = read_one(store.as_ref(), retries, &b, &e);
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
            Ok(ix) => {
                if let Err(err) = record(inv, &e, &ix, counts.indexed) {
                    failure = Some(err);
                    return;
                }
                counts.indexed += 1;
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
