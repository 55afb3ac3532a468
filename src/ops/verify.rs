//! `fgbackup verify`: proves the archive holds what the inventory (or the
//! manifest chain) says was archived, by listing it and reading it back.
//!
//! One listing of the prefix answers "is it there, with the right size" for
//! every object and finds objects nobody recorded; then every object chosen
//! for read-back (all of them, or a random `--sample`) is streamed through
//! SHA-256 by `--workers` threads, memory bounded by one chunk per thread.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool;
use super::retry::{self, Breaker};
use crate::db::Expected;
use crate::signal;
use crate::store::{ReadBack, Store, StoreError};

use crate::scan::{MANIFEST_DIR, is_manifest_object};

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
    /// Bytes read back (0 when checked by listing only).
    pub bytes_read: u64,
    pub read_back: bool,
    /// What the progress display already counted while it was read
    /// ([`crate::meter`]).
    pub metered: u64,
}

/// Why the checking stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    Interrupted,
    Aborted(String),
}

/// Checks `expected` (and, with `known`, looks for extras) against `store`,
/// calling `each` with every verdict as it is reached. Returns how the
/// checking ended: `None` when every object got a verdict.
pub fn check(
    store: &Arc<dyn Store>,
    plan: &Plan,
    expected: Vec<Expected>,
    known: &HashSet<String>,
    each: &mut dyn FnMut(Verdict),
) -> Result<Option<Cut>, StoreError> {
    let breaker = Arc::new(Breaker::default());
    let listed = retry::with_retries(plan.retries, &breaker, || {
        let mut m = BTreeMap::new();
        store.list_all(&plan.prefix, &mut |l| {
            m.insert(l.key, l.size);
        })?;
        Ok(m)
    })?;
    if plan.extras {
        for (key, size) in &listed {
            let reserved = key
                .strip_prefix(plan.prefix.as_str())
                .unwrap_or(key)
                .strip_prefix(MANIFEST_DIR);
            let detail = match reserved {
                // The chain's own objects: `verify --manifests` checks them.
                Some(rest) if is_manifest_object(rest) => continue,
                Some(_) => format!("{size} bytes in {MANIFEST_DIR}, not an object fgbackup writes"),
                None if known.contains(key) => continue,
                None => format!("{size} bytes, not in the inventory"),
            };
            each(verdict(key, Finding::Extra, detail));
        }
    }
    let chosen = sample(expected.len(), plan.sample);
    let mut queue = VecDeque::new();
    for (i, e) in expected.into_iter().enumerate() {
        match (listed.get(&e.key), e.size) {
            (None, _) => each(verdict(&e.key, Finding::Missing, expectation(&e))),
            (Some(&got), Some(want)) if got != want => each(verdict(
                &e.key,
                Finding::SizeMismatch,
                format!("{got} bytes stored, {want} archived"),
            )),
            _ if chosen.contains(&i) => queue.push_back(e),
            _ => each(verdict(
                &e.key,
                Finding::Ok,
                "listed with the archived size".into(),
            )),
        }
    }
    Ok(read_all(store, plan, &breaker, queue, each))
}

fn verdict(key: &str, finding: Finding, detail: String) -> Verdict {
    Verdict {
        key: key.to_string(),
        finding,
        detail,
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

/// Reads every queued object back on `plan.workers` threads; verdicts flow
/// to the caller's thread so `each` needs no locking.
fn read_all(
    store: &Arc<dyn Store>,
    plan: &Plan,
    breaker: &Arc<Breaker>,
    queue: VecDeque<Expected>,
    each: &mut dyn FnMut(Verdict),
) -> Option<Cut> {
    let b = Arc::clone(breaker);
    let stop: pool::Stop = Arc::new(move || signal::stop_requested() || b.tripped().is_some());
    let (store, b, retries) = (Arc::clone(store), Arc::clone(breaker), plan.retries);
    let read = Arc::new(move |e: Expected| read_one(store.as_ref(), retries, &b, &e));
    // A read cut short by a stop signal is no finding: it was not checked.
    let mut cut_reads = 0;
    let mut pass = |v: Option<Verdict>| match v {
        Some(v) => each(v),
        None => cut_reads += 1,
    };
    let ended = pool::run(plan.workers, queue, stop, read, &mut pass);
    let whole = ended.left == 0 && ended.abandoned == 0 && cut_reads == 0;
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
    let mut v = match result {
        Ok(Some(rb)) => judge(e, &rb),
        Ok(None) => verdict(&e.key, Finding::Missing, "gone when read back".into()),
        Err(_) if signal::stop_requested() => {
            crate::meter::settle(crate::meter::take_file());
            return None;
        }
        Err(err) => verdict(&e.key, Finding::Error, err.message),
    };
    v.read_back = true;
    v.metered = crate::meter::take_file();
    Some(v)
}

/// Compares what was read with what was archived and what the store claims.
pub fn judge(e: &Expected, rb: &ReadBack) -> Verdict {
    let mut v = verdict(&e.key, Finding::Ok, String::new());
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
        crate::meter::moved(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The indices of `percent`% of `n` objects, chosen at random (at least
/// one when `n > 0` and `percent > 0`), like restic's `--read-data-subset`.
fn sample(n: usize, percent: f64) -> HashSet<usize> {
    if percent >= 100.0 {
        return (0..n).collect();
    }
    let want = ((n as f64 * percent / 100.0).ceil() as usize).min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = seed();
    // Fisher-Yates, first `want` places only.
    for i in 0..want {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let j = i + (rng % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(want);
    idx.into_iter().collect()
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

/// Totals of a verify, as they are printed, recorded and notified.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub counts: BTreeMap<Finding, u64>,
    pub read_back: u64,
    pub bytes_read: u64,
    pub started: Option<Instant>,
}

impl Tally {
    pub fn add(&mut self, v: &Verdict) {
        *self.counts.entry(v.finding).or_default() += 1;
        self.read_back += u64::from(v.read_back);
        self.bytes_read += v.bytes_read;
    }

    pub fn count(&self, f: Finding) -> u64 {
        self.counts.get(&f).copied().unwrap_or(0)
    }

    /// Objects with a verdict other than `extra` (those were not expected).
    pub fn checked(&self) -> u64 {
        Finding::ALL
            .iter()
            .filter(|f| **f != Finding::Extra)
            .map(|f| self.count(*f))
            .sum()
    }

    pub fn problems(&self) -> u64 {
        Finding::ALL
            .iter()
            .filter(|f| **f != Finding::Ok)
            .map(|f| self.count(*f))
            .sum()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }

    /// `204 objects checked (204 read back, 276.1 MiB in 1.9 s): 204 ok, 0 missing, ...`
    pub fn render(&self) -> String {
        let counts = Finding::ALL
            .iter()
            .map(|f| format!("{} {}", self.count(*f), f.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{} objects checked ({} read back, {:.1} MiB in {:.1} s): {counts}",
            self.checked(),
            self.read_back,
            self.bytes_read as f64 / (1024.0 * 1024.0),
            self.elapsed().as_secs_f64()
        )
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
    fn samples_the_asked_share_without_repeats() {
        assert_eq!(sample(10, 100.0).len(), 10);
        assert_eq!(sample(10, 10.0).len(), 1);
        assert_eq!(sample(10, 0.1).len(), 1);
        assert_eq!(sample(200, 25.0).len(), 50);
        assert!(sample(200, 25.0).iter().all(|i| *i < 200));
        assert!(sample(0, 50.0).is_empty());
    }
}
