//! The content index of one archive: what its lines hold, gathered while
//! the file is read (issue 21). [`Indexer`] takes the inflated bytes in any
//! chunks, cuts them into lines and scans each ([`scan`]); [`Indexer::finish`]
//! gives the archive's summary and its facets: one row per distinct UTC day
//! × devid × devname × vd × type × subtype × action, with its line count and
//! first and last time. A line it cannot read is counted, never an error.
//!
//! Memory is bounded whatever the file holds: a line longer than
//! [`MAX_LINE`] is scanned on its first [`MAX_LINE`] bytes, and a file with
//! more than [`MAX_FACETS`] distinct combinations keeps counting them under
//! one overflow row instead of growing.

pub mod inflate;
pub mod ips;
pub mod query;
pub mod scan;
pub mod sidecar;
pub mod when;

use std::collections::BTreeMap;

use ips::IpFilter;
use scan::{Fields, Format};
use when::Unit;

/// Longest line scanned whole; FortiGate lines are about 1 KB. `grep`
/// reads lines up to the same length, so the index and grep see the same
/// fields; an archive with a longer line is indexed only in part.
pub const MAX_LINE: usize = 1024 * 1024;

/// Most distinct facet rows one archive keeps.
pub const MAX_FACETS: usize = 10_000;

/// Device overflow rows past [`MAX_FACETS`] (then one row per day).
pub const MAX_DEVICE_OVERFLOWS: usize = 2_000;

/// The action of an overflow facet (past [`MAX_FACETS`]): its type,
/// subtype, vd and action are empty and it stands for any; its device is
/// the lines' (or empty: any device).
pub const OVERFLOW: &str = "(more)";

/// A facet's key: the dimensions a search narrows by, as text ("" when
/// the line did not say).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FacetKey {
    /// `YYYY-MM-DD`, UTC; "" for lines without a time.
    pub day: String,
    pub devid: String,
    pub devname: String,
    pub vd: String,
    pub log_type: String,
    pub subtype: String,
    pub action: String,
}

impl FacetKey {
    /// Whether this is an overflow row, which matches any type, subtype,
    /// vd and action (and, without a device, any device).
    pub fn is_overflow(&self) -> bool {
        self.action == OVERFLOW
            && self.vd.is_empty()
            && self.log_type.is_empty()
            && self.subtype.is_empty()
    }
}

/// How many lines share a [`FacetKey`], and when the first and last were.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FacetCount {
    pub lines: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// What one archive holds, in sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The layout most of its lines were written in (`None`: no line read).
    pub format: Option<Format>,
    /// The unit most of its `eventtime`s were written in.
    pub unit: Option<Unit>,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub lines: u64,
    /// Bytes of log (inflated), line ends included.
    pub bytes: u64,
    /// Lines without one `key=value` pair (garbage, a cut line, blanks).
    pub unparsed: u64,
    /// Lines read whose time could not be told.
    pub without_time: u64,
    /// Lines over [`MAX_LINE`], scanned on their first [`MAX_LINE`] bytes.
    pub overlong: u64,
}

/// The index of one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub summary: Summary,
    pub facets: BTreeMap<FacetKey, FacetCount>,
    /// Every `srcip` and `dstip` of its lines ([`ips`]).
    pub ips: IpFilter,
}

/// An archive's index as one read of it left it: whole, or stopped where
/// the gzip stream broke (what was read before is still indexed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    pub index: Index,
    /// Why the index does not cover the whole archive; `None` when it does.
    pub incomplete: Option<String>,
}

impl Indexed {
    /// The index one read left, incomplete when the gzip stream `broke`
    /// or a line was longer than [`MAX_LINE`] (the index would not see
    /// what grep sees in it).
    pub fn new(index: Index, broke: Option<&impl std::fmt::Display>) -> Indexed {
        let incomplete = match (broke, index.summary.overlong) {
            (Some(why), _) => Some(why.to_string()),
            (None, 0) => None,
            (None, n) => Some(format!(
                "{n} line(s) over {} MiB were indexed on their first {} MiB",
                MAX_LINE >> 20,
                MAX_LINE >> 20
            )),
        };
        Indexed { index, incomplete }
    }
}

impl Default for Index {
    fn default() -> Index {
        Index {
            summary: Summary::default(),
            facets: BTreeMap::new(),
            ips: IpFilter::for_archive(0),
        }
    }
}

/// Builds an [`Index`] from the inflated bytes of an archive, fed in chunks
/// of any size.
#[derive(Debug, Default)]
pub struct Indexer {
    index: Index,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// The partial line is over [`MAX_LINE`]: the rest of it is only counted.
    overlong: bool,
    formats: BTreeMap<Format, u64>,
    units: BTreeMap<Unit, u64>,
    /// The facets of the last lines, counted here before they go to the
    /// map: lines of a few facets alternate, and comparing a line's fields
    /// with these keys costs less than building a key and looking it up
    /// (profiled: a key built and a map searched per line was a fifth of
    /// the scan).
    recent: Vec<(FacetKey, FacetCount)>,
    /// The UTC day number and text of the last time seen.
    day: Option<(i64, std::rc::Rc<str>)>,
}

impl Indexer {
    /// An indexer for an archive of `archive_bytes` compressed bytes: its
    /// IP filter gets 2% of that.
    pub fn for_archive(archive_bytes: u64) -> Indexer {
        let mut ix = Indexer::default();
        ix.index.ips = IpFilter::for_archive(archive_bytes);
        ix
    }

    /// Takes the next bytes of the log.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.index.summary.bytes += data.len() as u64;
        while let Some(n) = memchr::memchr(b'\n', data) {
            let (head, rest) = (&data[..n], &data[n + 1..]);
            if self.partial.is_empty() && !self.overlong {
                self.overlong = head.len() > MAX_LINE;
                self.line(&head[..head.len().min(MAX_LINE)]);
                self.overlong = false;
            } else {
                self.take_partial(head);
                let line = std::mem::take(&mut self.partial);
                self.line(&line);
                self.partial = line;
                self.partial.clear();
                self.overlong = false;
            }
            data = rest;
        }
        self.take_partial(data);
    }

    /// The index, once every byte was fed; a last line without a line end
    /// counts like the others.
    pub fn finish(mut self) -> Index {
        if !self.partial.is_empty() || self.overlong {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        for (k, c) in std::mem::take(&mut self.recent) {
            self.count(&k, c);
        }
        self.index.summary.format = most(&self.formats);
        self.index.summary.unit = most(&self.units);
        self.index.ips.compact();
        self.index
    }

    /// Keeps up to [`MAX_LINE`] bytes of an unfinished line.
    fn take_partial(&mut self, data: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        if data.len() > room {
            self.overlong = true;
        }
        self.partial
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let s = &mut self.index.summary;
        s.lines += 1;
        s.overlong += u64::from(self.overlong);
        let Some((format, fields)) = scan::line(line) else {
            s.unparsed += 1;
            return;
        };
        *self.formats.entry(format).or_default() += 1;
        for ip in [fields.srcip, fields.dstip].into_iter().flatten() {
            self.index.ips.insert_text(ip);
        }
        let at = self.time_of(&fields);
        let s = &mut self.index.summary;
        match at {
            Some(t) => {
                s.first = Some(s.first.map_or(t, |f| f.min(t)));
                s.last = Some(s.last.map_or(t, |l| l.max(t)));
            }
            None => s.without_time += 1,
        }
        let day = self.day_of(at);
        match self
            .recent
            .iter_mut()
            .find(|(k, _)| same_facet(k, &day, &fields))
        {
            Some((_, c)) => add(c, at),
            None => {
                if self.recent.len() == RECENT {
                    let (k, c) = self.recent.remove(0);
                    self.count(&k, c);
                }
                let mut c = FacetCount::default();
                add(&mut c, at);
                self.recent.push((facet_key(&fields, day.to_string()), c));
            }
        }
    }

    /// `YYYY-MM-DD` of `at` ("" without a time), formatted once per day.
    fn day_of(&mut self, at: Option<i64>) -> std::rc::Rc<str> {
        let Some(t) = at else {
            return std::rc::Rc::from("");
        };
        let n = t.div_euclid(86_400);
        match &self.day {
            Some((d, text)) if *d == n => std::rc::Rc::clone(text),
            _ => {
                let text: std::rc::Rc<str> = std::rc::Rc::from(day(t));
                self.day = Some((n, std::rc::Rc::clone(&text)));
                text
            }
        }
    }

    /// The line's time ([`line_time`]), counting its eventtime's unit.
    fn time_of(&mut self, f: &Fields<'_>) -> Option<i64> {
        let (t, unit) = line_time(f)?;
        if let Some(unit) = unit {
            *self.units.entry(unit).or_default() += 1;
        }
        Some(t)
    }

    /// `n` more lines for `key`'s facet, cloned only when it is new. Past
    /// [`MAX_FACETS`], new combinations count under their device's overflow
    /// row (device kept, type, subtype, vd and action not); past
    /// [`MAX_DEVICE_OVERFLOWS`] more, under the day's overflow row.
    fn count(&mut self, key: &FacetKey, n: FacetCount) {
        let facets = &mut self.index.facets;
        if let Some(c) = facets.get_mut(key) {
            return merge(c, n);
        }
        if facets.len() < MAX_FACETS {
            return merge(facets.entry(key.clone()).or_default(), n);
        }
        let by_device = FacetKey {
            day: key.day.clone(),
            devid: key.devid.clone(),
            devname: key.devname.clone(),
            action: OVERFLOW.into(),
            ..FacetKey::default()
        };
        let row = if facets.contains_key(&by_device)
            || facets.len() < MAX_FACETS + MAX_DEVICE_OVERFLOWS
        {
            by_device
        } else {
            FacetKey {
                day: key.day.clone(),
                action: OVERFLOW.into(),
                ..FacetKey::default()
            }
        };
        merge(facets.entry(row).or_default(), n);
    }
}

/// A line's time in UTC seconds: eventtime (with the unit it was written
/// in), else FortiAnalyzer's timestamp, else the local date and time; a
/// time outside years 1 to 9999 is none (its day would not sort as text).
/// The index and `grep` both place a line in time by this alone.
pub fn line_time(f: &Fields<'_>) -> Option<(i64, Option<Unit>)> {
    use query::{FIRST_SECOND as FIRST, LAST_SECOND as LAST};
    let (t, unit) = if let Some((t, unit)) = f.eventtime.and_then(when::eventtime) {
        (t, Some(unit))
    } else if let Some(t) = f.timestamp.and_then(when::timestamp) {
        (t, None)
    } else {
        (when::local(f.date?, f.time?, f.tz)?, None)
    };
    (FIRST..=LAST).contains(&t).then_some((t, unit))
}

/// Facets counted apart before they meet in the map.
const RECENT: usize = 8;

/// `n`'s lines added to `c`'s.
fn merge(c: &mut FacetCount, n: FacetCount) {
    c.lines += n.lines;
    c.first = c.first.min(n.first).or(c.first).or(n.first);
    c.last = c.last.max(n.last);
}

/// One more line, at `at`, for a facet's count.
fn add(c: &mut FacetCount, at: Option<i64>) {
    c.lines += 1;
    if let Some(t) = at {
        c.first = Some(c.first.map_or(t, |f| f.min(t)));
        c.last = Some(c.last.map_or(t, |l| l.max(t)));
    }
}

/// The key counted most often (the first of a tie, in key order).
fn most<K: Copy + Ord>(counts: &BTreeMap<K, u64>) -> Option<K> {
    let top = counts.values().copied().max()?;
    counts.iter().find(|(_, n)| **n == top).map(|(k, _)| *k)
}

/// Whether a line's fields name the facet `k` (on day `day`).
fn same_facet(k: &FacetKey, day: &str, f: &Fields<'_>) -> bool {
    // Bytes against bytes: a value that is not UTF-8 is never equal to a
    // key's text, so the key is built again (as `facet_key` would).
    let eq = |s: &str, v: Option<&[u8]>| match v {
        Some(b) => s.as_bytes() == b,
        None => s.is_empty(),
    };
    k.day == day
        && eq(&k.devid, f.devid)
        && eq(&k.devname, f.devname)
        && eq(&k.vd, f.vd)
        && eq(&k.log_type, f.log_type)
        && eq(&k.subtype, f.subtype)
        && eq(&k.action, f.action)
}

/// The facet a line counts under.
fn facet_key(f: &Fields<'_>, day: String) -> FacetKey {
    let text = |v: Option<&[u8]>| {
        v.and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_string)
            .unwrap_or_default()
    };
    FacetKey {
        day,
        devid: text(f.devid),
        devname: text(f.devname),
        vd: text(f.vd),
        log_type: text(f.log_type),
        subtype: text(f.subtype),
        action: text(f.action),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of UTC seconds, also before 1970 (a line's time
/// may be, and must not show as 1970).
pub fn instant(secs: i64) -> String {
    let rem = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        day(secs),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYY-MM-DD` of UTC seconds.
pub fn day(secs: i64) -> String {
    let (y, m, d) = crate::timefmt::civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests;

/// Scanner throughput on a real log: `FGBACKUP_SCAN_BENCH=FILE cargo test
/// --release --bin fgbackup scan_throughput -- --ignored --nocapture`
/// (FILE: inflated log, e.g. `zcat` of `fgbackup gen-logs` output).
#[cfg(test)]
#[test]
#[ignore]
fn scan_throughput() {
    let Ok(path) = std::env::var("FGBACKUP_SCAN_BENCH") else {
        return;
    };
    let data = std::fs::read(path).expect("readable");
    let cpu = || {
        // SAFETY: getrusage fills the struct we own.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        u.ru_utime.tv_sec as f64 + u.ru_utime.tv_usec as f64 / 1e6
    };
    let (t0, w0) = (cpu(), std::time::Instant::now());
    // gzip -6 gives about 13x on these logs: the archive would be that big.
    let mut ix = Indexer::for_archive(data.len() as u64 / 13);
    for chunk in data.chunks(64 * 1024) {
        ix.feed(chunk);
    }
    let ix = ix.finish();
    let (secs, wall) = (cpu() - t0, w0.elapsed().as_secs_f64());
    let gb = data.len() as f64 / 1e9;
    println!(
        "{} lines, {:.0} MB, {} facets, IP filter {} KiB {:.0}% set: {:.2} CPU-s/GB, {:.2} wall-s/GB",
        ix.summary.lines,
        data.len() as f64 / 1e6,
        ix.facets.len(),
        ix.ips.bytes() / 1024,
        ix.ips.fill() * 100.0,
        secs / gb,
        wall / gb
    );
}
