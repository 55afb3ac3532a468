//! `fgbackup restore`: fetches archived objects into a directory, proving
//! each against the inventory before it appears under its name.
//!
//! Each object streams into a new file in its directory below `--to` while it
//! is hashed (`--workers` at once); only when size and SHA-256 equal the
//! inventory's is that very file given its name, with a link that never
//! replaces an existing file (`crate::outdir`: no link below `--to` is ever
//! followed, no temporary name can be swapped). A file already at the name
//! is left alone (reported as `exists`, or `present` when it already holds
//! the archived bytes). A stop signal, or an endpoint found unreachable,
//! ends the run within seconds, downloads in progress included. The rows
//! are read from the inventory a page at a time as the workers take them:
//! a restore of a year of archives holds a page, not the selection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::pool;
use super::retry::{self, Breaker};
use super::verify::compare::ReadBackSink;
use crate::error::{Error, Result};
use crate::fsafe::OpenError;
use crate::inventory::status::Status;
use crate::inventory::{Archived, Expected, Selection};
use crate::ops::archived::Pages;
use crate::outdir::{Existing, OutDir, OutRoot, Temp};
use crate::progress::{Job, Output, Progress};
use crate::settings::Target;
use crate::store::{ReadBack, Store, StoreError};

/// `restore`'s own flags.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub to: PathBuf,
    /// Exact keys (`--key`, repeatable); empty: everything selected.
    pub keys: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// FortiGate device name: a path segment, or the start of the file name.
    pub device: Option<String>,
    pub dry_run: bool,
    /// The live display (on a terminal) and how much is said.
    pub output: Output,
}

/// What happened to one object.
#[derive(Debug, PartialEq, Eq)]
enum Restored {
    /// Written, proven and published.
    Done(u64),
    /// The name already holds the archived bytes.
    Present,
    /// The name holds other bytes: kept, not replaced.
    Exists,
}

/// Runs `fgbackup restore`; returns the exit status. Long because it
/// reads as the command's steps in order (inventory, selection, output
/// root, pool, summary line), each one call.
pub fn restore(target: &Target, opts: &RestoreOptions) -> Result<i32> {
    crate::signal::install();
    let inv = super::verify::open_inventory(target)?;
    let source = Archived {
        inv: &inv,
        statuses: Status::archived_names(),
        selection: Selection {
            key_prefix: target.prefix.clone(),
            since: opts.since.clone(),
            until: opts.until.clone(),
        },
    };
    for k in &opts.keys {
        if inv
            .archived_key(&source.statuses, &source.selection, k)?
            .is_none()
        {
            return Err(Error::usage(format!(
                "--key {k} is not an archived file in the inventory (within --prefix/--since/--until): check the key with 'fgbackup inventory', or run 'fgbackup reindex' first"
            )));
        }
    }
    // A first pass counts what is chosen (the display's totals, the empty
    // case); the second streams it. Neither holds the selection.
    let (count, refused, bytes) = Picks::new(&source, target, opts, true).count_bytes()?;
    if count + refused == 0 {
        println!("restore: nothing in the inventory matches; nothing restored");
        return Ok(1);
    }
    let mut picks = Picks::new(&source, target, opts, false);
    if opts.dry_run {
        return print_plan(&mut picks, &opts.to);
    }
    let store = crate::build::open_reader(target)?;
    let root = OutRoot::open(&opts.to)
        .map_err(|e| Error::usage(format!("--to {}: {e}", opts.to.display())))?;
    let mut progress = Progress::start(opts.output, Job::Restore, count, bytes);
    let (mut tally, cut) = fetch_all(store, root, target, opts, &mut picks, &mut progress);
    progress.finish();
    if let Some(e) = picks.error.take() {
        return Err(e);
    }
    tally.failed += picks.refused;
    if let Some(why) = cut {
        println!("restore: {why}; {} restored before it", tally.done);
        return Ok(1);
    }
    if opts.output.quiet() && tally.failed == 0 {
        return Ok(0);
    }
    println!(
        "restore: {} restored ({} bytes), {} already present, {} failed, into {}",
        tally.done,
        tally.bytes,
        tally.present,
        tally.failed,
        opts.to.display()
    );
    Ok(if tally.failed == 0 { 0 } else { 1 })
}

/// The objects a restore picks, each with its path below `--to`: the
/// `--key`s given, else the selection's archived rows read a page at a time
/// and narrowed to `--device`. A key that cannot be a path below `--to`
/// (absolute, `..`) is refused alone, with a line: one planted object must
/// not keep every other file from coming back.
struct Picks<'a> {
    source: &'a Archived<'a>,
    target: &'a Target,
    opts: &'a RestoreOptions,
    /// Counting only: no lines.
    quiet: bool,
    keys: std::vec::IntoIter<String>,
    /// The selection's rows, when no `--key` names them.
    pages: Pages<'a>,
    refused: u64,
    error: Option<Error>,
}

impl<'a> Picks<'a> {
    fn new(
        source: &'a Archived<'a>,
        target: &'a Target,
        opts: &'a RestoreOptions,
        quiet: bool,
    ) -> Picks<'a> {
        Picks {
            source,
            target,
            opts,
            quiet,
            keys: opts.keys.clone().into_iter(),
            pages: Pages::of(source.clone()),
            refused: 0,
            error: None,
        }
    }

    /// How many objects are picked and refused, and the picked ones' bytes.
    fn count_bytes(mut self) -> Result<(u64, u64, u64)> {
        let (mut n, mut bytes) = (0, 0);
        for (e, _) in self.by_ref() {
            n += 1;
            bytes += e.size.unwrap_or(0);
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok((n, self.refused, bytes)),
        }
    }

    /// The next row of the selection (or the next `--key`'s), unfiltered.
    fn next_row(&mut self) -> Option<Expected> {
        let (s, sel) = (self.source, &self.source.selection);
        if !self.opts.keys.is_empty() {
            let key = self.keys.next()?;
            return match s.inv.archived_key(&s.statuses, sel, &key) {
                Ok(e) => e,
                Err(e) => {
                    self.error = Some(e);
                    None
                }
            };
        }
        let row = self.pages.next();
        if row.is_none() {
            self.error = self.error.take().or(self.pages.error.take());
        }
        row
    }
}

impl Iterator for Picks<'_> {
    type Item = (Expected, String);

    fn next(&mut self) -> Option<(Expected, String)> {
        loop {
            let e = self.next_row()?;
            if !self
                .opts
                .device
                .as_deref()
                .is_none_or(|d| of_device(&e.key, d))
            {
                continue;
            }
            match relative_path(self.target, self.opts, &e.key) {
                Ok(rel) => return Some((e, rel)),
                Err(why) => {
                    if !self.quiet {
                        crate::logging::say(format_args!("refused {}: {why}", e.key));
                    }
                    self.refused += 1;
                }
            }
        }
    }
}

/// Restores every picked object on `--workers` threads, printing problems
/// as they come; returns the tally and why the run was cut short, if it was.
fn fetch_all(
    store: Arc<dyn Store>,
    root: OutRoot,
    target: &Target,
    opts: &RestoreOptions,
    picks: &mut Picks<'_>,
    progress: &mut Progress,
) -> (Tally, Option<String>) {
    let breaker = Arc::new(Breaker::default());
    let root = Arc::new(root);
    let b = Arc::clone(&breaker);
    let stop: pool::Stop =
        Arc::new(move || crate::signal::stop_requested() || b.tripped().is_some());
    let fetch_one = {
        let (b, retries) = (Arc::clone(&breaker), target.retries);
        Arc::new(move |(e, rel): (Expected, String)| {
            let r = restore_one(store.as_ref(), retries, &b, &e, &root, &rel);
            (e, rel, r, crate::in_flight::take_file())
        })
    };
    let mut tally = Tally::default();
    pool::run(target.workers, picks, stop, fetch_one, &mut |(
        e,
        rel,
        r,
        metered,
    )| {
        let failed = r.is_err() || matches!(r, Ok(Restored::Exists));
        let size = e.size.unwrap_or(0);
        tally.add(&e, &opts.to.join(&rel), r);
        progress.file_done(size, metered, failed);
    });
    let cut = match breaker.tripped() {
        Some(why) => Some(why),
        None if crate::signal::stop_requested() => Some("stopped by a signal".to_string()),
        None => None,
    };
    (tally, cut)
}

/// `--dry-run`: what would be restored where; exit status 0 (1 when a key
/// was refused).
fn print_plan(picks: &mut Picks<'_>, to: &Path) -> Result<i32> {
    let (mut n, mut bytes) = (0u64, 0u64);
    for (e, rel) in picks.by_ref() {
        crate::logging::say(format_args!(
            "would restore {} -> {}",
            e.key,
            to.join(rel).display()
        ));
        n += 1;
        bytes += e.size.unwrap_or(0);
    }
    if let Some(e) = picks.error.take() {
        return Err(e);
    }
    println!("restore (dry run): {n} file(s), {bytes} bytes");
    Ok(i32::from(picks.refused > 0))
}

/// Why one object was not restored, with its cause kept until the report
/// line: the store's typed error, or what was found below `--to`.
#[derive(Debug)]
enum NotRestored {
    /// The archive could not give the object (HTTP status, S3 code...).
    Store(StoreError),
    /// The archive does not hold it.
    Missing,
    /// A stop signal ended the download.
    Interrupted,
    /// The bytes read are not the bytes archived, or nothing proves them.
    Unproven(String),
    /// The key or the place for it below `--to` (a link, an unreadable file).
    Local(String),
}

impl std::fmt::Display for NotRestored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRestored::Store(e) => f.write_str(&e.message),
            NotRestored::Missing => {
                f.write_str("the object is missing from the archive (run 'fgbackup verify')")
            }
            NotRestored::Interrupted => f.write_str("interrupted by a stop signal"),
            NotRestored::Unproven(why) | NotRestored::Local(why) => f.write_str(why),
        }
    }
}

/// What a restore did so far, told one object at a time.
#[derive(Debug, Default)]
struct Tally {
    done: u64,
    bytes: u64,
    present: u64,
    failed: u64,
}

impl Tally {
    /// Counts one object's outcome and prints what the admin must see.
    fn add(
        &mut self,
        e: &Expected,
        path: &Path,
        result: std::result::Result<Restored, NotRestored>,
    ) {
        match result {
            Ok(Restored::Done(n)) => {
                log::info!("restored {} -> {}", e.key, path.display());
                self.done += 1;
                self.bytes += n;
            }
            Ok(Restored::Present) => self.present += 1,
            Ok(Restored::Exists) => {
                let line = format!(
                    "exists  {}: {} holds other bytes; not replaced",
                    e.key,
                    path.display()
                );
                crate::logging::say(format_args!("{line}"));
                self.failed += 1;
            }
            Err(why) => {
                crate::logging::say(format_args!("failed  {}: {why}", e.key));
                self.failed += 1;
            }
        }
    }
}

/// Whether `key` belongs to device `d`: a directory named `d`, or a file
/// named after it (`FGT60F-SITE01-2026-11-01T10.log.gz`): `d-` followed by
/// the date, or by anything when the name holds no date. (`FGT60F` is not
/// the device of `FGT60F-SITE01-2026-...`: device names hold dashes.)
pub fn of_device(key: &str, d: &str) -> bool {
    use crate::scan::starts_with_date;
    let mut segments = key.split('/').rev();
    let name = segments.next().unwrap_or("");
    let has_date = name
        .match_indices('-')
        .any(|(i, _)| starts_with_date(&name[i + 1..]));
    let named_after = name
        .strip_prefix(d)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|rest| starts_with_date(rest) || !has_date);
    named_after || segments.any(|s| s == d)
}

/// The key without the store prefix: the path below `--to`, refusing keys
/// that would leave it (`..`, absolute, empty segments).
fn relative_path(
    target: &Target,
    opts: &RestoreOptions,
    key: &str,
) -> std::result::Result<String, NotRestored> {
    let rel = key.strip_prefix(&target.prefix).unwrap_or(key);
    if rel.is_empty()
        || rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(NotRestored::Local(format!(
            "not a plain relative path (absolute, '..' or an empty segment); it cannot be restored under {}",
            opts.to.display()
        )));
    }
    Ok(rel.to_string())
}

/// Fetches one object into a new file in its directory below `--to`,
/// proves it, and gives it its name without replacing anything.
fn restore_one(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    e: &Expected,
    root: &OutRoot,
    rel: &str,
) -> std::result::Result<Restored, NotRestored> {
    let parts: Vec<&str> = rel.split('/').collect();
    let Some((name, dirs)) = parts.split_last() else {
        return Err(NotRestored::Local("empty path".into()));
    };
    let dir = root.make_dirs(dirs).map_err(|e| {
        NotRestored::Local(match e {
            OpenError::NotRegular(why) => why,
            OpenError::Io(e) => format!("cannot create the directory of {rel}: {e}"),
        })
    })?;
    if let Some(existing) = already_there(&dir, name, rel, e.size)? {
        return Ok(if Some(&existing) == e.sha256.as_ref() {
            Restored::Present
        } else {
            Restored::Exists
        });
    }
    let (temp, rb) = fetch(store, retries, breaker, &e.key, &dir)?;
    prove(e, &rb)?;
    match dir.publish(&temp, name, &rb.sha256) {
        Ok(true) => Ok(Restored::Done(rb.size)),
        Ok(false) => Ok(Restored::Exists),
        Err(err) => Err(NotRestored::Local(format!("cannot create {rel}: {err}"))),
    }
}

/// The SHA-256 of the regular file already at `name`, if one is there (an
/// empty string when its size already differs from `size`: a planted huge
/// file is never read); a link or anything else there is never followed
/// nor replaced: an error.
fn already_there(
    dir: &OutDir,
    name: &str,
    rel: &str,
    size: Option<u64>,
) -> std::result::Result<Option<String>, NotRestored> {
    match dir.existing(name) {
        Ok(Existing::Nothing) => Ok(None),
        Ok(Existing::Other) => Err(NotRestored::Local(format!(
            "{rel} is a link or not a regular file; not replaced"
        ))),
        Ok(Existing::File(f)) if f.metadata().ok().map(|m| m.len()) != size && size.is_some() => {
            Ok(Some(String::new()))
        }
        Ok(Existing::File(f)) => crate::digest::digest_reader(f, false)
            .map(|d| Some(d.sha256))
            .map_err(|e| NotRestored::Local(format!("cannot read {rel}: {e}"))),
        Err(e) => Err(NotRestored::Local(format!("cannot open {rel}: {e}"))),
    }
}

/// Streams the object into a new file in `dir` (each attempt starts over in
/// a new one) and syncs it. A stop signal ends the write at once.
fn fetch<'d>(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    key: &str,
    dir: &'d OutDir,
) -> std::result::Result<(Temp<'d>, ReadBack), NotRestored> {
    let mut kept = None;
    let attempt = || -> std::result::Result<Option<ReadBack>, StoreError> {
        kept = None; // an earlier attempt's file goes
        let mut temp = dir
            .temp()
            .map_err(|e| StoreError::permanent(format!("cannot create a file: {e}")))?;
        let rb = store.read_object(key, &mut ReadBackSink(&mut temp.file))?;
        temp.file
            .sync_all()
            .map_err(|e| StoreError::permanent(format!("cannot write: {e}")))?;
        kept = Some(temp);
        Ok(rb)
    };
    match retry::with_retries(retries, breaker, attempt) {
        Ok(Some(rb)) => kept
            .map(|t| (t, rb))
            .ok_or_else(|| NotRestored::Local("internal error: no file kept".into())),
        Ok(None) => Err(NotRestored::Missing),
        Err(_) if crate::signal::stop_requested() => Err(NotRestored::Interrupted),
        Err(e) => Err(NotRestored::Store(e)),
    }
}

/// The bytes written must be the bytes archived.
fn prove(e: &Expected, rb: &ReadBack) -> std::result::Result<(), NotRestored> {
    let v = super::verify::compare::judge(e, rb);
    if v.finding == super::verify::compare::Finding::Ok && e.sha256.is_some() {
        Ok(())
    } else if e.sha256.is_none() {
        Err(NotRestored::Unproven(
            "the inventory has no sha256 for it, so the copy cannot be proven; not restored".into(),
        ))
    } else {
        Err(NotRestored::Unproven(format!(
            "{}: {}; not restored",
            v.finding.as_str(),
            v.detail
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::of_device;

    #[test]
    fn devices_by_directory_or_file_name() {
        assert!(of_device("FGT60F-SITE01/x.log.gz", "FGT60F-SITE01"));
        assert!(of_device(
            "FGT60F-SITE01-2026-11-01T10.log.gz",
            "FGT60F-SITE01"
        ));
        assert!(!of_device("FGT60F-SITE011-2026.log.gz", "FGT60F-SITE01"));
        assert!(!of_device("other/FGT60F-SITE02-1.log.gz", "FGT60F-SITE01"));
        // A shorter name that only starts the device's is another device.
        assert!(!of_device(
            "FGT60F-SITE01/FGT60F-SITE01-2026-11-01T10.log.gz",
            "FGT60F"
        ));
        assert!(!of_device("fw-dmz-2026-11-01T10.log.gz", "fw"));
        assert!(of_device("fw-2026-11-01T10.log.gz", "fw"));
        assert!(
            of_device("fw-ä-notes.log.gz", "fw"),
            "no date: the prefix decides"
        );
    }
}
