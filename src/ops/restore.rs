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
//! ends the run within seconds, downloads in progress included.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::pool;
use super::retry::{self, Breaker};
use super::verify::ReadBackSink;
use crate::config::Target;
use crate::db::{Expected, Selection};
use crate::error::{Error, Result};
use crate::fsafe::OpenError;
use crate::outdir::{Existing, OutDir, OutRoot, Temp};
use crate::progress::{Job, Output, Progress};
use crate::status::Status;
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

/// Runs `fgbackup restore`; returns the exit status.
pub fn restore(target: &Target, opts: &RestoreOptions) -> Result<i32> {
    crate::signal::install();
    let inv = super::audit::open_inventory(target)?;
    let sel = Selection {
        key_prefix: target.prefix.clone(),
        since: opts.since.clone(),
        until: opts.until.clone(),
    };
    let chosen = choose(inv.archived(&Status::archived_names(), &sel)?, opts)?;
    if chosen.is_empty() {
        println!("restore: nothing in the inventory matches; nothing restored");
        return Ok(1);
    }
    // A key that cannot be a path below --to (absolute, `..`) is refused
    // alone: one planted object must not keep every other file from coming back.
    let mut refused = 0u64;
    let (chosen, rels): (Vec<Expected>, Vec<String>) = chosen
        .into_iter()
        .filter_map(|e| match relative_path(target, opts, &e.key) {
            Ok(rel) => Some((e, rel)),
            Err(why) => {
                crate::logging::say(format_args!("refused {}: {why}", e.key));
                refused += 1;
                None
            }
        })
        .unzip();
    if opts.dry_run {
        return Ok(print_plan(&chosen, &rels, &opts.to).max(i32::from(refused > 0)));
    }
    let store: Arc<dyn Store> = Arc::from(super::archive::open_destination(
        &target.destination,
        &target.transfer,
        target.workers,
        true,
    )?);
    let root = OutRoot::open(&opts.to)
        .map_err(|e| Error::usage(format!("--to {}: {e}", opts.to.display())))?;
    let (mut tally, cut) = fetch_all(store, root, target, opts, chosen, rels);
    tally.failed += refused;
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

/// Restores every chosen object on `--workers` threads, printing problems
/// as they come; returns the tally and why the run was cut short, if it was.
fn fetch_all(
    store: Arc<dyn Store>,
    root: OutRoot,
    target: &Target,
    opts: &RestoreOptions,
    chosen: Vec<Expected>,
    rels: Vec<String>,
) -> (Tally, Option<String>) {
    let breaker = Arc::new(Breaker::default());
    let (chosen, rels, root) = (Arc::new(chosen), Arc::new(rels), Arc::new(root));
    let b = Arc::clone(&breaker);
    let stop: pool::Stop =
        Arc::new(move || crate::signal::stop_requested() || b.tripped().is_some());
    // Items are indices into `chosen` and `rels`.
    let fetch_one = {
        let (chosen, rels, b, retries) = (
            Arc::clone(&chosen),
            Arc::clone(&rels),
            Arc::clone(&breaker),
            target.retries,
        );
        Arc::new(move |i: usize| {
            let r = restore_one(store.as_ref(), retries, &b, &chosen[i], &root, &rels[i]);
            (i, r, crate::meter::take_file())
        })
    };
    let mut tally = Tally::default();
    let bytes = chosen.iter().filter_map(|e| e.size).sum();
    let mut progress = Progress::start(opts.output, Job::Restore, chosen.len() as u64, bytes);
    pool::run(
        target.workers,
        &mut (0..chosen.len()),
        stop,
        fetch_one,
        &mut |(i, r, metered)| {
            let failed = r.is_err() || matches!(r, Ok(Restored::Exists));
            let size = chosen[i].size.unwrap_or(0);
            tally.add(&chosen[i], &opts.to.join(&rels[i]), r);
            progress.file_done(size, metered, failed);
        },
    );
    progress.finish();
    let cut = match breaker.tripped() {
        Some(why) => Some(why),
        None if crate::signal::stop_requested() => Some("stopped by a signal".to_string()),
        None => None,
    };
    (tally, cut)
}

/// `--dry-run`: what would be restored where; exit status 0.
fn print_plan(chosen: &[Expected], rels: &[String], to: &Path) -> i32 {
    for (e, rel) in chosen.iter().zip(rels) {
        crate::logging::say(format_args!(
            "would restore {} -> {}",
            e.key,
            to.join(rel).display()
        ));
    }
    let bytes: u64 = chosen.iter().filter_map(|e| e.size).sum();
    println!("restore (dry run): {} file(s), {bytes} bytes", chosen.len());
    0
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
    fn add(&mut self, e: &Expected, path: &Path, result: std::result::Result<Restored, String>) {
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

/// Narrows the inventory's rows to `--key` and `--device`; a `--key` the
/// inventory does not know is an error (nothing to prove it against).
fn choose(rows: Vec<Expected>, opts: &RestoreOptions) -> Result<Vec<Expected>> {
    for k in &opts.keys {
        if !rows.iter().any(|e| &e.key == k) {
            return Err(Error::usage(format!(
                "--key {k} is not an archived file in the inventory (within --prefix/--since/--until): check the key with 'fgbackup inventory', or run 'fgbackup reindex' first"
            )));
        }
    }
    Ok(rows
        .into_iter()
        .filter(|e| opts.keys.is_empty() || opts.keys.contains(&e.key))
        .filter(|e| opts.device.as_deref().is_none_or(|d| of_device(&e.key, d)))
        .collect())
}

/// Whether `key` belongs to device `d`: a directory named `d`, or a file
/// name starting with `d-` (`FGT60F-SITE01-2026-11-01T10.log.gz`).
pub fn of_device(key: &str, d: &str) -> bool {
    let mut segments = key.split('/').rev();
    let name = segments.next().unwrap_or("");
    name.strip_prefix(d)
        .is_some_and(|rest| rest.starts_with('-'))
        || segments.any(|s| s == d)
}

/// The key without the store prefix: the path below `--to`, refusing keys
/// that would leave it (`..`, absolute, empty segments).
fn relative_path(
    target: &Target,
    opts: &RestoreOptions,
    key: &str,
) -> std::result::Result<String, String> {
    let rel = key.strip_prefix(&target.prefix).unwrap_or(key);
    if rel.is_empty()
        || rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!(
            "not a plain relative path (absolute, '..' or an empty segment); it cannot be restored under {}",
            opts.to.display()
        ));
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
) -> std::result::Result<Restored, String> {
    let parts: Vec<&str> = rel.split('/').collect();
    let Some((name, dirs)) = parts.split_last() else {
        return Err("empty path".into());
    };
    let dir = root.make_dirs(dirs).map_err(|e| match e {
        OpenError::NotRegular(why) => why,
        OpenError::Io(e) => format!("cannot create the directory of {rel}: {e}"),
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
        Err(err) => Err(format!("cannot create {rel}: {err}")),
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
) -> std::result::Result<Option<String>, String> {
    match dir.existing(name) {
        Ok(Existing::Nothing) => Ok(None),
        Ok(Existing::Other) => Err(format!(
            "{rel} is a link or not a regular file; not replaced"
        )),
        Ok(Existing::File(f)) if f.metadata().ok().map(|m| m.len()) != size && size.is_some() => {
            Ok(Some(String::new()))
        }
        Ok(Existing::File(f)) => crate::digest::digest_reader(f, false)
            .map(|d| Some(d.sha256))
            .map_err(|e| format!("cannot read {rel}: {e}")),
        Err(e) => Err(format!("cannot open {rel}: {e}")),
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
) -> std::result::Result<(Temp<'d>, ReadBack), String> {
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
        Ok(Some(rb)) => kept.map(|t| (t, rb)).ok_or_else(|| "internal error".into()),
        Ok(None) => Err("the object is missing from the archive (run 'fgbackup verify')".into()),
        Err(_) if crate::signal::stop_requested() => Err("interrupted by a stop signal".into()),
        Err(e) => Err(e.message),
    }
}

/// The bytes written must be the bytes archived.
fn prove(e: &Expected, rb: &ReadBack) -> std::result::Result<(), String> {
    let v = super::verify::judge(e, rb);
    if v.finding == super::verify::Finding::Ok && e.sha256.is_some() {
        Ok(())
    } else if e.sha256.is_none() {
        Err("the inventory has no sha256 for it, so the copy cannot be proven; not restored".into())
    } else {
        Err(format!(
            "{}: {}; not restored",
            v.finding.as_str(),
            v.detail
        ))
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
    }
}
