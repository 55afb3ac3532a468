//! `fgbackup grep`: the matching lines of archived logs, read from the
//! store, never from a local copy.
//!
//! 1. The inventory's archived objects are walked in key order, a page at
//!    a time. An object whose content index was built whole from the very
//!    bytes archived is read only when its facets and IP filter say it may
//!    hold a matching line; any other (not indexed, indexed in part or from
//!    other bytes) is always read: the index only narrows, never hides.
//! 2. `--workers` threads read the chosen objects, each streamed through
//!    SHA-256 and inflated on the way ([`matcher`]); a line matches when it
//!    holds the pattern and its own fields pass the filters.
//! 3. An archive's lines are printed only once its bytes are proven to be
//!    the inventory's (size and SHA-256): an altered archive is an error
//!    line and none of its lines. Lines of one archive stay together, in
//!    order; archives come in the order they finish.
//!
//! A reader that goes away (`| head`) or a stop signal ends the run early.

pub mod matcher;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::inventory::{Coverage, Expected, Inventory};
use crate::ops::archived::Pages;
use crate::ops::pool;
use crate::ops::retry::{self, Breaker};
use crate::ops::stdout::Out;
use crate::ops::verify::compare::{Finding, ReadBackSink, judge};
use crate::progress::{Job, Output, Progress};
use crate::settings::Target;
use crate::signal;
use crate::store::{Store, StoreError};

use matcher::{Format, Found, Spec};

/// `grep`'s own settings.
pub struct GrepOptions {
    pub spec: Spec,
    pub output: Output,
}

/// What became of one archive read.
enum Read {
    /// Its bytes are the inventory's: its matches may be printed.
    Proven {
        found: Found,
        /// The gzip stream broke here (the lines before it are printed).
        broken: Option<String>,
    },
    /// Not printed, and why (altered, missing, unreadable).
    Refused(String),
    /// Cut short by a stop signal or a reader that went away.
    Stopped,
}

/// Counts for the last line.
#[derive(Default)]
struct Tally {
    read: u64,
    matched_archives: u64,
    lines: u64,
    errors: u64,
}

/// Runs `fgbackup grep`; 0 when a line matched and every archive read was
/// proven, 1 otherwise. Reads as the command's steps in order.
pub fn grep(target: &Target, opts: GrepOptions) -> Result<i32> {
    signal::install();
    exit_when_stuck();
    let inv = super::verify::open_inventory(target)?;
    let spec = Arc::new(opts.spec);
    let mut candidates = Candidates::new(&inv, target, Arc::clone(&spec));
    let (count, bytes) = if opts.output.progress {
        Candidates::new(&inv, target, Arc::clone(&spec)).totals()?
    } else {
        (0, 0)
    };
    let store = crate::build::open_reader(target)?;
    // One line for a store that cannot be reached, not one per archive.
    store.check().map_err(|e| Error::runtime(e.message))?;
    let mut progress = Progress::start(opts.output, Job::Grep, count, bytes);
    let gone = Arc::new(AtomicBool::new(false));
    let mut out = Out::new(false);
    let mut tally = Tally::default();
    let breaker = Arc::new(Breaker::default());
    let work = {
        let (store, b, spec, gone, retries) = (
            Arc::clone(&store),
            Arc::clone(&breaker),
            Arc::clone(&spec),
            Arc::clone(&gone),
            target.retries,
        );
        Arc::new(move |e: Expected| {
            let r = read_one(store.as_ref(), retries, &b, &spec, &e, &gone);
            (e, r, crate::in_flight::take_file())
        })
    };
    let (b, g) = (Arc::clone(&breaker), Arc::clone(&gone));
    let stop: pool::Stop = Arc::new(move || {
        signal::stop_requested() || b.tripped().is_some() || g.load(Ordering::Relaxed)
    });
    pool::run(target.workers, &mut candidates, stop, work, &mut |(
        e,
        r,
        metered,
    )| {
        let failed = matches!(r, Read::Refused(_));
        print(&e, r, spec.format, &mut out, &mut tally);
        if out.gone {
            gone.store(true, Ordering::Relaxed);
        }
        progress.file_done(e.size.unwrap_or(0), metered, failed);
    });
    progress.finish();
    if let Some(e) = candidates.error.take() {
        return Err(e);
    }
    let gone = out.gone;
    out.finish("the matching lines")?;
    summarize(&tally, &candidates, &breaker, gone, opts.output.quiet())
}

/// Ends the process [`signal::STOP_GRACE`] after a stop signal if the run
/// has not ended by then: the main thread may sit in a write to a reader
/// that stopped reading (`| less`, a stalled ssh), which no flag can wake.
/// Safe because grep writes nothing but its output (the spool files have
/// no name and go with the process).
fn exit_when_stuck() {
    let watch = std::thread::Builder::new()
        .name("grep-stop".into())
        .spawn(|| {
            while !signal::stop_requested() {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            std::thread::sleep(signal::STOP_GRACE);
            crate::logging::say_err(format_args!(
                "grep: stopped by a signal while its output was not being read"
            ));
            std::process::exit(1);
        });
    if let Err(e) = watch {
        log::warn!(
            "cannot watch for a stop signal while writing ({e}); a stop may wait for the reader"
        );
    }
}

/// Prints one archive's outcome: its lines (or count) once proven, an
/// error line otherwise.
fn print(e: &Expected, r: Read, format: Format, out: &mut Out, tally: &mut Tally) {
    match r {
        Read::Proven { found, broken } => {
            tally.read += 1;
            if let Some(why) = broken {
                log::warn!(
                    "{}: the gzip stream breaks ({why}); lines before the break were searched",
                    e.key
                );
            }
            if found.overlong > 0 {
                log::warn!(
                    "{}: {} line(s) over 1 MiB were searched on their first 1 MiB only",
                    e.key,
                    found.overlong
                );
            }
            if let Some(err) = &found.spool_error {
                tally.errors += 1;
                log::error!(
                    "{}: cannot keep its matches in a temporary file: {err}",
                    e.key
                );
                return;
            }
            if found.lines == 0 {
                return;
            }
            tally.matched_archives += 1;
            tally.lines += found.lines;
            if format == Format::Count {
                out.write(&format!("{}:{}\n", e.key, found.lines));
                return;
            }
            let drained = found.spool.drain(&mut |b| {
                out.write_bytes(b);
                !out.gone
            });
            if let Err(err) = drained {
                tally.errors += 1;
                log::error!("{}: cannot read its matches back: {err}", e.key);
            }
        }
        Read::Refused(why) => {
            tally.errors += 1;
            log::error!("{}: {why}; none of its lines are printed", e.key);
        }
        Read::Stopped => {}
    }
}

/// The last line (on stderr) and the exit status.
fn summarize(
    t: &Tally,
    c: &Candidates<'_>,
    breaker: &Breaker,
    gone: bool,
    quiet: bool,
) -> Result<i32> {
    let cut = match breaker.tripped() {
        Some(why) => Some(why),
        None if signal::stop_requested() => Some("stopped by a signal".to_string()),
        None => None,
    };
    if !quiet && !gone {
        crate::logging::say_err(format_args!(
            "grep: {} matching line(s) in {} archive(s); read {} of {} archived ({} left out by the content index, {} without a usable index), {} error(s){}",
            t.lines,
            t.matched_archives,
            t.read,
            c.seen,
            c.skipped,
            c.unindexed,
            t.errors,
            cut.as_deref().map(|w| format!("; {w}")).unwrap_or_default()
        ));
    }
    if cut.is_some() {
        return Ok(1);
    }
    Ok(if t.lines > 0 && t.errors == 0 { 0 } else { 1 })
}

/// Reads one archive through SHA-256 and the matcher, with retries; a
/// retry starts from a fresh matcher, so nothing of a cut read is kept.
fn read_one(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    spec: &Spec,
    e: &Expected,
    gone: &AtomicBool,
) -> Read {
    let mut kept = None;
    let attempt = || -> std::result::Result<_, StoreError> {
        let mut sink = Stoppable {
            inner: ReadBackSink(matcher::inflate(spec, &e.key)),
            gone,
        };
        let rb = store.read_object(&e.key, &mut sink)?;
        kept = Some(matcher::found(sink.inner.0));
        Ok(rb)
    };
    match retry::with_retries(retries, breaker, attempt) {
        Ok(Some(rb)) => {
            let v = judge(e, &rb);
            match (v.finding, kept, e.sha256.is_some()) {
                (Finding::Ok, Some((found, broken)), true) => Read::Proven { found, broken },
                (Finding::Ok, _, false) => Read::Refused(
                    "the inventory has no sha256 for it, so what was read cannot be proven".into(),
                ),
                (Finding::Ok, None, _) => Read::Refused("internal error: nothing kept".into()),
                (_, _, _) => Read::Refused(format!("{}: {}", v.finding.as_str(), v.detail)),
            }
        }
        Ok(None) => Read::Refused("missing from the store".into()),
        Err(_) if signal::stop_requested() || gone.load(Ordering::Relaxed) => Read::Stopped,
        Err(err) => Read::Refused(format!("cannot read it: {}", err.message)),
    }
}

/// A sink that gives up once the reader of our output went away.
struct Stoppable<'a, W> {
    inner: W,
    gone: &'a AtomicBool,
}

impl<W: std::io::Write> std::io::Write for Stoppable<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.gone.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the output was closed"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The archived objects that must be read, in key order.
struct Candidates<'a> {
    inv: &'a Inventory,
    pages: Pages<'a>,
    spec: Arc<Spec>,
    /// Archived objects looked at, left out by the index, read for want of one.
    seen: u64,
    skipped: u64,
    unindexed: u64,
    error: Option<Error>,
}

impl<'a> Candidates<'a> {
    fn new(inv: &'a Inventory, target: &Target, spec: Arc<Spec>) -> Candidates<'a> {
        Candidates {
            inv,
            pages: Pages::new(inv, &target.prefix),
            spec,
            seen: 0,
            skipped: 0,
            unindexed: 0,
            error: None,
        }
    }

    /// How many objects will be read, and their bytes (for the display).
    fn totals(mut self) -> Result<(u64, u64)> {
        let (mut n, mut bytes) = (0, 0);
        for e in self.by_ref() {
            n += 1;
            bytes += e.size.unwrap_or(0);
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok((n, bytes)),
        }
    }

    /// Whether `e` must be read.
    fn wanted(&mut self, e: &Expected) -> Result<bool> {
        match self.inv.content_coverage(&e.key, e.sha256.as_deref())? {
            Coverage::Unknown | Coverage::Partial => {
                self.unindexed += 1;
                Ok(true)
            }
            Coverage::Whole { id } => {
                let may = self.inv.content_may_match(id, &self.spec.query)?;
                self.skipped += u64::from(!may);
                Ok(may)
            }
        }
    }
}

impl Iterator for Candidates<'_> {
    type Item = Expected;

    fn next(&mut self) -> Option<Expected> {
        while let Some(e) = self.pages.next() {
            self.seen += 1;
            match self.wanted(&e) {
                Ok(true) => return Some(e),
                Ok(false) => {}
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
