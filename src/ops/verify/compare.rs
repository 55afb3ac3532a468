//! The comparison under `fgbackup verify` (and restore's proof): proves the
//! archive holds what the inventory (or the manifest chain) says was
//! archived, by listing it and reading it back.
//!
//! The listing of the prefix and the expectations (both in key order) are
//! merged as they stream: one pass answers "is it there, with the right
//! size" for every object and finds objects nobody recorded, and every
//! object chosen for read-back (all of them, or a random `--sample`) goes
//! through SHA-256 on `--workers` threads. Nothing holds the listing or the
//! expectations whole: memory is one listing page, one page of expected
//! rows and one chunk per thread, whatever the size of the archive.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use crate::error::{Error, Result};
use crate::inventory::{Expectations, Expected};
use crate::ops::pool;
use crate::ops::retry::{self, Breaker};
use crate::signal;
use crate::store::{Listed, ReadBack, Store, StoreError};

use crate::scan::{MANIFEST_DIR, is_manifest_object, is_sidecar_object};

use super::tally::Sampler;
pub use super::tally::Tally;

/// What verify found for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    Ok,
    Missing,
    Altered,
    SizeMismatch,
    Extra,
    Error,
}

impl Finding {
    pub const ALL: [Finding; 6] = [
        Finding::Ok,
        Finding::Missing,
        Finding::Altered,
        Finding::SizeMismatch,
        Finding::Extra,
        Finding::Error,
    ];

    /// The `result` column and the word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Ok => "ok",
            Finding::Missing => "missing",
            Finding::Altered => "altered",
            Finding::SizeMismatch => "size_mismatch",
            Finding::Extra => "extra",
            Finding::Error => "error",
        }
    }
}

/// What to check and how hard.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The store prefix that is listed (the `--prefix` the objects live under).
    pub prefix: String,
    /// Percentage of objects read back; the rest are checked by listing only.
    pub sample: f64,
    /// Report listed objects the inventory does not know (off when a date
    /// range makes "not expected here" meaningless).
    pub extras: bool,
    pub workers: usize,
    pub retries: u32,
}

/// One object's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub key: String,
    pub finding: Finding,
    pub detail: String,
    /// The size the records give it (0 for an extra): what the progress
    /// display counts for it.
    pub size: u64,
    /// Bytes read back (0 when checked by listing only).
    pub bytes_read: u64,
    pub read_back: bool,
    /// What the progress display already counted while it was read
    /// ([`crate::in_flight`]).
    pub metered: u64,
}

/// Why the checking stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    Interrupted,
    Aborted(String),
}

/// Expected rows fetched per query.
const PAGE: usize = 1000;
/// Listed objects buffered between the listing thread and the merge.
const LISTED_AHEAD: usize = 2000;

/// Checks what `source` expects (and, with `plan.extras`, looks for extras)
/// against `store`, calling `each` with every verdict as it is reached.
/// Returns how the checking ended: `None` when every object got a verdict.
pub fn check(
    store: &Arc<dyn Store>,
    plan: &Plan,
    source: &dyn Expectations,
    each: &mut dyn FnMut(Verdict),
) -> Result<Option<Cut>> {
    let breaker = Arc::new(Breaker::default());
    let (count, _) = source.totals()?;
    let listed = list_in_background(store, plan, &breaker);
    let mut merge = Merge {
        source,
        plan,
        listed,
        next_listed: None,
        listing_done: false,
        listing_error: None,
        source_error: None,
        expected: VecDeque::new(),
        after: String::new(),
        expected_done: false,
        sampler: Sampler::new(count, plan.sample),
    };
    let cut = read_all(store, plan, &breaker, &mut merge, each);
    if let Some(e) = merge.source_error.take() {
        return Err(e);
    }
    if let Some(e) = merge.listing_error.take() {
        return Err(Error::runtime(e.message));
    }
    Ok(cut)
}

/// Lists `plan.prefix` on a helper thread into a bounded channel, so the
/// listing streams into the merge without being held whole. A listing that
/// breaks off is started again and the keys already passed on are skipped
/// (it is in key order); the last failure is sent at the end.
fn list_in_background(
    store: &Arc<dyn Store>,
    plan: &Plan,
    breaker: &Arc<Breaker>,
) -> Receiver<std::result::Result<Listed, StoreError>> {
    let (tx, rx) = sync_channel(LISTED_AHEAD);
    let (store, breaker) = (Arc::clone(store), Arc::clone(breaker));
    let (prefix, retries) = (plan.prefix.clone(), plan.retries);
    let spawned = std::thread::Builder::new()
        .name("listing".into())
        .spawn(move || {
            let mut last: Option<String> = None;
            let (mut pass, mut broken) = (0, false);
            let result = retry::with_retries(retries, &breaker, || {
                pass += 1;
                store.list_all(&prefix, &mut |l| {
                    if broken {
                        // Said once; the rest of the listing is ignored.
                    } else if last.as_ref().is_none_or(|k| l.key > *k) {
                        last = Some(l.key.clone());
                        let _ = tx.send(Ok(l));
                    } else if pass == 1 {
                        // The merge needs S3's key order: keys out of order
                        // would turn into "missing" and "extra". (A listing
                        // started again repeats keys on purpose.)
                        broken = true;
                        let _ = tx.send(Err(StoreError::permanent(format!(
                            "the server lists keys out of order (or twice): {} came after {}; verify needs S3's key order",
                            l.key,
                            last.as_deref().unwrap_or_default()
                        ))));
                    }
                })
            });
            if let (Err(e), false) = (result, broken) {
                let _ = tx.send(Err(e));
            }
        });
    if let Err(e) = spawned {
        let (tx, rx) = sync_channel(1);
        let _ = tx.send(Err(StoreError::permanent(format!(
            "cannot start the listing thread: {e}"
        ))));
        return rx;
    }
    rx
}

/// One step of the merge: a verdict reached without reading, or an object
/// to read back.
pub enum Item {
    Verdict(Verdict),
    Read(Expected),
}

/// The listing and the expectations, merged in key order.
struct Merge<'a> {
    source: &'a dyn Expectations,
    plan: &'a Plan,
    listed: Receiver<std::result::Result<Listed, StoreError>>,
    next_listed: Option<Listed>,
    listing_done: bool,
    listing_error: Option<StoreError>,
    source_error: Option<Error>,
    expected: VecDeque<Expected>,
    after: String,
    expected_done: bool,
    sampler: Sampler,
}

impl Merge<'_> {
    /// The next listed object, without taking it.
    fn peek_listed(&mut self) -> Option<&Listed> {
        if self.next_listed.is_none() && !self.listing_done {
            match self.listed.recv() {
                Ok(Ok(l)) => self.next_listed = Some(l),
                Ok(Err(e)) => {
                    self.listing_error = Some(e);
                    self.listing_done = true;
                }
                Err(_) => self.listing_done = true,
            }
        }
        self.next_listed.as_ref()
    }

    /// The next expected object, without taking it.
    fn peek_expected(&mut self) -> Option<&Expected> {
        while self.expected.is_empty() && !self.expected_done {
            match self.source.page(&self.after, PAGE) {
                Ok((page, next)) => {
                    match next {
                        Some(k) => self.after = k,
                        None => self.expected_done = true,
                    }
                    self.expected.extend(page);
                }
                Err(e) => {
                    self.source_error = Some(e);
                    self.expected_done = true;
                }
            }
        }
        self.expected.front()
    }

    /// A listed object nobody expects: an extra, unless some record names
    /// it or it is one of the manifest chain's own objects.
    fn unexpected(&mut self, l: Listed) -> Option<Item> {
        if !self.plan.extras {
            return None;
        }
        let rest = l
            .key
            .strip_prefix(self.plan.prefix.as_str())
            .unwrap_or(&l.key);
        // The content index's sidecars: `reindex --content` checks each
        // against the archive it names.
        if is_sidecar_object(rest) {
            return None;
        }
        let detail = match rest.strip_prefix(MANIFEST_DIR) {
            // The chain's own objects: `verify --manifests` checks them.
            Some(rest) if is_manifest_object(rest) => return None,
            Some(_) => format!(
                "{} bytes in {MANIFEST_DIR}, not an object fgbackup writes",
                l.size
            ),
            None => match self.source.is_known(&l.key) {
                Ok(true) => return None,
                Ok(false) => format!("{} bytes, not in the inventory", l.size),
                Err(e) => {
                    self.source_error = Some(e);
                    return None;
                }
            },
        };
        Some(Item::Verdict(verdict(&l.key, Finding::Extra, detail, 0)))
    }

    /// An expected object, with what the listing says of it (`None`: absent).
    fn judge_listed(&mut self, e: Expected, listed: Option<u64>) -> Item {
        let chosen = self.sampler.take();
        let size = e.size.unwrap_or(0);
        match (listed, e.size) {
            (None, _) => Item::Verdict(verdict(&e.key, Finding::Missing, expectation(&e), size)),
            (Some(got), Some(want)) if got != want => Item::Verdict(verdict(
                &e.key,
                Finding::SizeMismatch,
                format!("{got} bytes stored, {want} archived"),
                size,
            )),
            _ if chosen => Item::Read(e),
            _ => Item::Verdict(verdict(
                &e.key,
                Finding::Ok,
                "listed with the archived size".into(),
                size,
            )),
        }
    }
}

impl Iterator for Merge<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if self.source_error.is_some() || self.listing_error.is_some() {
                // Half a listing must not turn the rest into "missing".
                return None;
            }
            let listed = self.peek_listed().map(|l| l.key.clone());
            let expected = self.peek_expected().map(|e| e.key.clone());
            if self.listing_error.is_some() || self.source_error.is_some() {
                return None;
            }
            match (listed, expected) {
                (None, None) => return None,
                (Some(l), e) if e.as_ref().is_none_or(|e| l < *e) => {
                    let l = self.next_listed.take()?;
                    if let Some(item) = self.unexpected(l) {
                        return Some(item);
                    }
                }
                (l, Some(e)) => {
                    let exp = self.expected.pop_front()?;
                    let size = match l {
                        Some(l) if l == e => self.next_listed.take().map(|x| x.size),
                        _ => None,
                    };
                    return Some(self.judge_listed(exp, size));
                }
                (Some(_), None) => unreachable!("handled by the arm above"),
            }
        }
    }
}

fn verdict(key: &str, finding: Finding, detail: String, size: u64) -> Verdict {
    Verdict {
        key: key.to_string(),
        finding,
        detail,
        size,
        bytes_read: 0,
        read_back: false,
        metered: 0,
    }
}

/// `2048 bytes, sha256 ab12…, archived 2026-11-01T…`, for a missing object.
fn expectation(e: &Expected) -> String {
    let mut parts = vec!["not in the listing".to_string()];
    if let Some(s) = e.size {
        parts.push(format!("{s} bytes"));
    }
    if let Some(h) = &e.sha256 {
        parts.push(format!("sha256 {h}"));
    }
    if let Some(t) = &e.uploaded_at {
        parts.push(format!("archived {t}"));
    }
    parts.join(", ")
}

/// Reads every object the merge asks for on `plan.workers` threads; the
/// other verdicts pass through. Verdicts flow to the caller's thread so
/// `each` needs no locking.
fn read_all(
    store: &Arc<dyn Store>,
    plan: &Plan,
    breaker: &Arc<Breaker>,
    items: &mut dyn Iterator<Item = Item>,
    each: &mut dyn FnMut(Verdict),
) -> Option<Cut> {
    let b = Arc::clone(breaker);
    let stop: pool::Stop = Arc::new(move || signal::stop_requested() || b.tripped().is_some());
    let (store, b, retries) = (Arc::clone(store), Arc::clone(breaker), plan.retries);
    let work = Arc::new(move |item: Item| match item {
        Item::Verdict(v) => Some(v),
        Item::Read(e) => read_one(store.as_ref(), retries, &b, &e),
    });
    // A read cut short by a stop signal is no finding: it was not checked.
    let mut cut_reads = 0;
    let mut pass = |v: Option<Verdict>| match v {
        Some(v) => each(v),
        None => cut_reads += 1,
    };
    let ended = pool::run(plan.workers, items, stop, work, &mut pass);
    let whole = ended.complete && ended.abandoned == 0 && cut_reads == 0;
    if let Some(why) = breaker.tripped() {
        Some(Cut::Aborted(why))
    } else if whole && !signal::stop_requested() {
        None
    } else {
        Some(Cut::Interrupted)
    }
}

/// Streams one object through SHA-256 and judges it; `None` when a stop
/// signal cut the read short.
fn read_one(store: &dyn Store, retries: u32, breaker: &Breaker, e: &Expected) -> Option<Verdict> {
    let result = retry::with_retries(retries, breaker, || {
        store.read_object(&e.key, &mut ReadBackSink(io::sink()))
    });
    let size = e.size.unwrap_or(0);
    let mut v = match result {
        Ok(Some(rb)) => judge(e, &rb),
        Ok(None) => verdict(&e.key, Finding::Missing, "gone when read back".into(), size),
        Err(_) if signal::stop_requested() => {
            crate::in_flight::settle(crate::in_flight::take_file());
            return None;
        }
        Err(err) => verdict(&e.key, Finding::Error, err.message, size),
    };
    v.read_back = true;
    v.metered = crate::in_flight::take_file();
    Some(v)
}

/// Compares what was read with what was archived and what the store claims.
pub fn judge(e: &Expected, rb: &ReadBack) -> Verdict {
    let mut v = verdict(&e.key, Finding::Ok, String::new(), e.size.unwrap_or(0));
    v.bytes_read = rb.size;
    let (finding, detail) = if e.size.is_some_and(|s| s != rb.size) {
        (
            Finding::SizeMismatch,
            format!("{} bytes read, {} archived", rb.size, e.size.unwrap_or(0)),
        )
    } else if e.sha256.as_deref().is_some_and(|s| s != rb.sha256) {
        (
            Finding::Altered,
            format!(
                "content sha256 {} differs from the archived {}",
                rb.sha256,
                e.sha256.as_deref().unwrap_or("")
            ),
        )
    } else if let Some(c) = rb.checksum_sha256.as_deref().filter(|c| *c != rb.sha256) {
        (
            Finding::Altered,
            format!(
                "the server's stored checksum {c} differs from the bytes it returned ({})",
                rb.sha256
            ),
        )
    } else if let Some(m) = rb.meta_sha256.as_deref().filter(|m| *m != rb.sha256) {
        (
            Finding::Altered,
            format!(
                "the sha256 metadata {m} differs from the content ({})",
                rb.sha256
            ),
        )
    } else if e.sha256.is_none() {
        (
            Finding::Ok,
            "read back; the inventory has no sha256 to compare".into(),
        )
    } else {
        (Finding::Ok, "read back, sha256 matches".into())
    };
    v.finding = finding;
    v.detail = detail;
    v
}

/// Where a read-back's bytes go (verify: nowhere, they were hashed on the
/// way; restore: a file): counted for the progress display, and the read
/// ends at once when a stop signal arrives.
pub struct ReadBackSink<W>(pub W);

impl<W: Write> Write for ReadBackSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if signal::stop_requested() {
            // Not `Interrupted`: `write_all` retries that kind forever.
            return Err(io::Error::other("stopped by a signal"));
        }
        let n = self.0.write(buf)?;
        crate::in_flight::moved(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(size: u64, sha: &str) -> Expected {
        Expected {
            key: "k".into(),
            size: Some(size),
            sha256: Some(sha.into()),
            uploaded_at: None,
            first_uploaded_at: None,
            row_id: None,
        }
    }

    fn read(size: u64, sha: &str) -> ReadBack {
        ReadBack {
            size,
            sha256: sha.into(),
            meta_sha256: Some(sha.into()),
            checksum_sha256: None,
            identity: None,
        }
    }

    #[test]
    fn judges_size_content_and_claims() {
        assert_eq!(
            judge(&expected(3, "aa"), &read(3, "aa")).finding,
            Finding::Ok
        );
        assert_eq!(
            judge(&expected(3, "aa"), &read(2, "aa")).finding,
            Finding::SizeMismatch
        );
        assert_eq!(
            judge(&expected(3, "aa"), &read(3, "bb")).finding,
            Finding::Altered
        );
        let mut lying = read(3, "aa");
        lying.meta_sha256 = Some("cc".into());
        assert_eq!(judge(&expected(3, "aa"), &lying).finding, Finding::Altered);
        let mut bad_checksum = read(3, "aa");
        bad_checksum.checksum_sha256 = Some("dd".into());
        assert_eq!(
            judge(&expected(3, "aa"), &bad_checksum).finding,
            Finding::Altered
        );
    }

    #[test]
    fn samples_exactly_the_asked_share_as_objects_stream_past() {
        let chosen = |n: u64, p: f64| {
            let mut s = Sampler::new(n, p);
            (0..n).filter(|_| s.take()).count()
        };
        assert_eq!(chosen(10, 100.0), 10);
        assert_eq!(chosen(10, 10.0), 1);
        assert_eq!(chosen(10, 0.1), 1);
        assert_eq!(chosen(200, 25.0), 50);
        assert_eq!(chosen(0, 50.0), 0);
        assert_eq!(chosen(500_000, 1.0), 5000);
        assert_eq!(chosen(1000, 16.1), 161);
        assert_eq!(chosen(500, 32.2), 161);
        let mut s = Sampler::new(0, 50.0);
        assert!(s.take(), "rows added since the count are read back");
    }
}
