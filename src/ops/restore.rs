//! `fgbackup restore`: fetches archived objects into a directory, proving
//! each against the inventory before it appears under its name.
//!
//! Each object streams into a temporary file in the destination directory
//! while it is hashed; only when size and SHA-256 equal the inventory's is it
//! published with `link(2)`, which never replaces an existing file. A file
//! already at the name is left alone (reported as `exists`, or `present`
//! when it already holds the archived bytes).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::pool;
use super::retry::{self, Breaker};
use crate::config::Target;
use crate::db::{Expected, Selection};
use crate::error::{Error, Result};
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
    let paths = chosen
        .iter()
        .map(|e| local_path(target, opts, &e.key))
        .collect::<Result<Vec<_>>>()?;
    if opts.dry_run {
        return Ok(print_plan(&chosen, &paths));
    }
    let store = super::archive::open_destination(
        &target.destination,
        &target.transfer,
        target.workers,
        true,
    )?;
    let breaker = Breaker::default();
    let mut tally = Tally::default();
    // Items are indices into `chosen` and `paths`.
    let fetch_one = |i: usize| {
        let r = restore_one(
            store.as_ref(),
            target.retries,
            &breaker,
            &chosen[i],
            &opts.to,
            &paths[i],
        );
        (i, r)
    };
    let left = pool::run(
        target.workers,
        (0..chosen.len()).collect(),
        &crate::signal::stop_requested,
        &fetch_one,
        &mut |(i, r)| tally.add(&chosen[i], &paths[i], r),
    );
    if left > 0 {
        println!(
            "restore: stopped by a signal; {} restored before it",
            tally.done
        );
        return Ok(1);
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

/// `--dry-run`: what would be restored where; exit status 0.
fn print_plan(chosen: &[Expected], paths: &[PathBuf]) -> i32 {
    for (e, path) in chosen.iter().zip(paths) {
        println!("would restore {} -> {}", e.key, path.display());
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
                println!(
                    "exists  {}: {} holds other bytes; not replaced",
                    e.key,
                    path.display()
                );
                self.failed += 1;
            }
            Err(why) => {
                println!("failed  {}: {why}", e.key);
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

/// `--to` + the key without the store prefix, refusing keys that would
/// leave `--to` (`..`, absolute, empty segments).
fn local_path(target: &Target, opts: &RestoreOptions, key: &str) -> Result<PathBuf> {
    let rel = key.strip_prefix(&target.prefix).unwrap_or(key);
    if rel.is_empty()
        || rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(Error::runtime(format!(
            "key '{key}' is not a plain relative path; it cannot be restored under {}",
            opts.to.display()
        )));
    }
    Ok(opts.to.join(rel))
}

/// Fetches one object into a temporary file beside `path`, proves it, and
/// publishes it without replacing anything.
fn restore_one(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    e: &Expected,
    to: &Path,
    path: &Path,
) -> std::result::Result<Restored, String> {
    let dir = path.parent().ok_or("no parent directory")?;
    make_dirs(to, dir)?;
    if let Some(existing) = already_there(path)? {
        return Ok(if Some(&existing) == e.sha256.as_ref() {
            Restored::Present
        } else {
            Restored::Exists
        });
    }
    let result = fetch(store, retries, breaker, &e.key, dir).and_then(|(tmp, rb)| {
        let published = prove(e, &rb).and_then(|()| publish(&tmp, path));
        let _ = fs::remove_file(&tmp);
        published.map(|p| (p, rb.size))
    });
    match result {
        Ok((true, size)) => Ok(Restored::Done(size)),
        Ok((false, _)) => Ok(Restored::Exists),
        Err(why) => Err(why),
    }
}

/// The SHA-256 of what is already at `path`, if anything is.
fn already_there(path: &Path) -> std::result::Result<Option<String>, String> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot stat {}: {e}", path.display())),
        Ok(m) if !m.is_file() => Ok(Some(String::new())),
        Ok(_) => crate::digest::digest_reader(
            File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?,
            false,
        )
        .map(|d| Some(d.sha256))
        .map_err(|e| format!("cannot read {}: {e}", path.display())),
    }
}

/// Streams the object into a new temporary file in `dir` (each attempt
/// starts over in a new one) and syncs it; returns its path.
fn fetch(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    key: &str,
    dir: &Path,
) -> std::result::Result<(PathBuf, ReadBack), String> {
    let mut tmp = PathBuf::new();
    let attempt = || -> std::result::Result<Option<ReadBack>, StoreError> {
        let _ = fs::remove_file(&tmp);
        let (path, mut file) = create_tmp(dir).map_err(StoreError::permanent)?;
        tmp = path;
        let rb = store.read_object(key, &mut file)?;
        file.flush()
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::permanent(format!("cannot write {}: {e}", tmp.display())))?;
        Ok(rb)
    };
    let result = retry::with_retries(retries, breaker, attempt);
    match result {
        Ok(Some(rb)) => Ok((tmp, rb)),
        other => {
            let _ = fs::remove_file(&tmp);
            match other {
                Ok(_) => {
                    Err("the object is missing from the archive (run 'fgbackup verify')".into())
                }
                Err(e) => Err(e.message),
            }
        }
    }
}

/// A new file `.fgbackup-restore-PID-N-NANOS.tmp` in `dir`: `O_EXCL` and
/// `O_NOFOLLOW`, so a file or link planted at a guessed name is never
/// opened (it would redirect the bytes outside `--to`).
fn create_tmp(dir: &Path) -> std::result::Result<(PathBuf, File), String> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            ".fgbackup-restore-{}-{n}-{nanos}.tmp",
            std::process::id()
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    Err(format!(
        "cannot create a temporary file in {}: every name taken",
        dir.display()
    ))
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

/// `link(2)`: never replaces `path`. `Ok(false)` when something is there.
fn publish(tmp: &Path, path: &Path) -> std::result::Result<bool, String> {
    match fs::hard_link(tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        // Filesystems without hard links (FAT): rename that refuses to replace.
        Err(_) => match crate::store::local::rename_noreplace(tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        },
    }
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(true)
}

/// Creates `dir` below `to` one component at a time, refusing any
/// component that is a link or not a directory: nothing may lead the
/// restore outside `to`.
fn make_dirs(to: &Path, dir: &Path) -> std::result::Result<(), String> {
    let rel = dir
        .strip_prefix(to)
        .map_err(|_| format!("{} is outside {}", dir.display(), to.display()))?;
    let mut at = to.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} is a link or a file, not a directory: nothing is restored through it",
                    at.display()
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&at) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(format!("cannot create {}: {e}", at.display()));
                }
                _ => {}
            },
            Err(e) => return Err(format!("cannot stat {}: {e}", at.display())),
        }
    }
    Ok(())
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
