//! One run of `fgbackup upload`: scan, a pool of workers that each carry one
//! file through the steps of [`super::step`], and a single writer (the
//! calling thread) that records every outcome and performs the deletes.
//!
//! Rows are committed in batches (one transaction per [`BATCH_ROWS`] files
//! or [`BATCH_AGE`], whichever comes first): one fsync per batch instead of
//! one per file. Deletes happen here, after the file's row is committed, and only for files
//! whose copy was proven, whose gzip stream is complete and which are still
//! the very version that was read. A crash at any point therefore leaves
//! either the file, or a verified remote copy plus a row saying so.
//!
//! The writer never waits forever: after a stop signal it gives the workers
//! [`DRAIN_GRACE`] to finish, then records the files still in flight as
//! interrupted and returns, leaving any request still blocked on the network
//! to die with the process. Nothing is deleted by a worker, so abandoning one
//! cannot lose a file.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::listing::Listing;
use super::retry::Breaker;
use super::step::{self, Ctx, Outcome};
use crate::config::{Destination, Transfer, UploadConfig};
use crate::error::{Error, Result};
use crate::fsafe::{self, Refusal};
use crate::inventory::status::{RunStatus, Status};
use crate::inventory::{BackupRow, Inventory, ManifestRow, RunTotals};
use crate::progress::{Job, Progress};
use crate::scan::{self, Candidate};
use crate::signal;
use crate::store::Store;
use crate::store::local::LocalStore;
use crate::store::s3::{S3Options, S3Store};
use crate::units::human_bytes;

/// How long the writer waits for in-flight files after a stop signal
/// (longer than notifications' [`signal::STOP_GRACE`]: a part in flight
/// that finishes can still be aborted cleanly).
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// No limit of its own: S3 requests time out by themselves, and migrating a
/// large directory store takes as long as it takes. A stop signal still ends
/// the wait.
const CHECK_TIMEOUT: Duration = Duration::MAX;
/// How often the writer looks at the stop flag while waiting for outcomes.
const TICK: Duration = Duration::from_millis(200);
/// Rows per transaction at most...
const BATCH_ROWS: usize = 100;
/// ...and the longest a row waits for its commit (a file to delete waits
/// for it too, so this bounds how late a delete comes).
const BATCH_AGE: Duration = Duration::from_millis(250);
/// One failed file of a run.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: Status,
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    /// `status key: reason`, the form notifications list.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_str(), self.key, self.reason)
    }
}

/// Final figures of a run, also used for the exit status.
#[derive(Debug, Default)]
pub struct Summary {
    pub counts: BTreeMap<&'static str, u64>,
    pub files: u64,
    pub failed: u64,
    pub deleted: u64,
    pub delete_failures: u64,
    pub bytes_sent: u64,
    pub duration: Duration,
    pub too_young: usize,
    /// Files another process held open for writing, left for a later run.
    pub busy: usize,
    /// Files of `--dir` whose name matches no `--include` pattern.
    pub excluded: usize,
    pub scan_warnings: usize,
    pub interrupted: bool,
    /// Set when the run stopped early because the endpoint is unreachable.
    pub aborted: Option<String>,
    /// Files found but never tried (stop signal or unreachable endpoint).
    pub not_attempted: usize,
    /// Failed files, at most [`crate::notify::MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Failed files beyond those in `problems`.
    pub problems_omitted: u64,
    /// With `--manifest-key`: the chain's newest manifest after the run
    /// (written by it or not), the witness an auditor keeps elsewhere.
    pub manifest: Option<ManifestRow>,
    /// With `--manifest-key`: what is wrong with the chain (a manifest gone
    /// or replaced), or why no manifest could be written.
    pub manifest_problems: Vec<String>,
}

impl Summary {
    /// 0 when everything succeeded, 1 when anything failed.
    pub fn exit_code(&self) -> i32 {
        let bad = self.failed > 0
            || self.delete_failures > 0
            || self.scan_warnings > 0
            || self.interrupted
            || self.aborted.is_some()
            || !self.manifest_problems.is_empty();
        i32::from(bad)
    }

    /// The one-paragraph report printed at the end of a run.
    pub fn render(&self, dry_run: bool) -> String {
        let secs = self.duration.as_secs_f64();
        let per_status: Vec<String> = self
            .counts
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        // No "0.0 MB sent (0.0 MB/s)" on a run that sent nothing.
        let sent = if self.bytes_sent == 0 {
            format!("nothing sent, {secs:.2} s")
        } else {
            let rate = (self.bytes_sent as f64 / secs.max(1e-3)) as u64;
            format!(
                "{} sent in {secs:.2} s ({}/s)",
                human_bytes(self.bytes_sent),
                human_bytes(rate)
            )
        };
        let mut text = format!(
            "{}{} files: {}; {} deleted; {sent}",
            if dry_run { "dry run: " } else { "" },
            self.files,
            if per_status.is_empty() {
                "nothing to do".to_string()
            } else {
                per_status.join(", ")
            },
            self.deleted,
        );
        text.push_str(&self.notes());
        if let Some(m) = &self.manifest {
            text.push_str(&format!("; {}", manifest_witness(m)));
        }
        if !self.manifest_problems.is_empty() {
            text.push_str(&format!(
                "; {} manifest chain problem(s) (see log)",
                self.manifest_problems.len()
            ));
        }
        text
    }

    /// `; 3 newer than --min-age left for a later run; ...`: what the run
    /// left, skipped or could not do, each only when it happened.
    fn notes(&self) -> String {
        let notes = [
            (self.too_young, "newer than --min-age left for a later run"),
            (
                self.busy,
                "still open for writing by another process left for a later run",
            ),
            (self.excluded, "not matching --include skipped"),
            (self.scan_warnings, "scan problems (see log)"),
            (self.delete_failures as usize, "local deletes failed"),
            (
                self.not_attempted,
                "not attempted (left in place for the next run)",
            ),
        ];
        let mut text: String = notes
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("; {n} {what}"))
            .collect();
        if self.interrupted {
            text.push_str("; interrupted by a stop signal");
        }
        if let Some(why) = &self.aborted {
            text.push_str(&format!("; stopped early: {why}"));
        }
        text
    }
}

impl Summary {
    /// `--json`: the run as one object, for cron wrappers and configuration
    /// management (the same figures as [`Summary::render`]).
    pub fn to_json(&self, dry_run: bool) -> serde_json::Value {
        let failures: Vec<serde_json::Value> = self
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({"status": p.status.as_str(), "key": p.key, "reason": p.reason})
            })
            .collect();
        serde_json::json!({
            "command": "upload",
            "ok": self.exit_code() == 0,
            "exit_code": self.exit_code(),
            "dry_run": dry_run,
            "files": self.files,
            "counts": self.counts,
            "failed": self.failed,
            "deleted": self.deleted,
            "delete_failures": self.delete_failures,
            "bytes_sent": self.bytes_sent,
            "duration_secs": self.duration.as_secs_f64(),
            "too_young": self.too_young,
            "open_for_writing": self.busy,
            "excluded": self.excluded,
            "scan_warnings": self.scan_warnings,
            "not_attempted": self.not_attempted,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "failures": failures,
            "failures_omitted": self.problems_omitted,
            "manifest": self.manifest.as_ref().map(|m| serde_json::json!({
                "key": m.key, "sequence": m.sequence, "sha256": m.sha256, "created_at": m.created_at,
            })),
            "manifest_problems": self.manifest_problems,
        })
    }
}

/// Builds the store the configuration names.
pub fn open_store(cfg: &UploadConfig) -> Result<Box<dyn Store>> {
    open_destination(&cfg.destination, &cfg.transfer, cfg.workers, cfg.dry_run)
}

/// Builds the store at `destination`; `read_only` for runs that must not
/// write (a dry run, `verify`).
pub fn open_destination(
    destination: &Destination,
    transfer: &Transfer,
    workers: usize,
    read_only: bool,
) -> Result<Box<dyn Store>> {
    Ok(match destination {
        Destination::S3 {
            bucket, settings, ..
        } => Box::new(S3Store::new(
            bucket,
            settings,
            s3_options(destination, transfer, workers)?,
        )?),
        Destination::Local { root } if read_only => Box::new(LocalStore::read_only(root.clone())),
        Destination::Local { root } => Box::new(LocalStore::new(root.clone())),
    })
}

/// How the S3 client connects and what it sends with every object.
pub fn s3_options(
    destination: &Destination,
    transfer: &Transfer,
    workers: usize,
) -> Result<S3Options> {
    let t = transfer;
    let extra_roots = match destination {
        Destination::S3 {
            ca_file: Some(path),
            ..
        } => crate::tls::load_ca_file(path).map_err(Error::usage)?,
        _ => Vec::new(),
    };
    Ok(S3Options {
        pool: workers,
        extra_roots,
        throttle: t
            .bwlimit
            .clone()
            .map(|l| Arc::new(crate::engine::throttle::Throttle::new(l))),
        storage_class: t.storage_class.clone(),
        sse: t.sse.clone(),
        sse_kms_key_id: t.sse_kms_key_id.clone(),
        object_lock: t.object_lock.clone(),
    })
}

/// Holds the per-database run lock for as long as it lives.
pub struct RunLock {
    _file: std::fs::File,
}

/// The lock file of the database at `db_path`: `<real path>.lock`, where the
/// real path has every symlink resolved, so two spellings of one database
/// (a symlink, `..`) share one lock.
pub fn lock_path(db_path: &Path) -> Result<PathBuf> {
    let real = crate::paths::resolve(db_path).map_err(|e| {
        Error::runtime(format!(
            "cannot resolve the database path {} ({e}): fix --db/DB_PATH",
            db_path.display()
        ))
    })?;
    let mut lock = real.into_os_string();
    lock.push(".lock");
    Ok(PathBuf::from(lock))
}

/// Takes the run lock so only one upload runs per database at a time.
pub fn lock_database(db_path: &Path) -> Result<RunLock> {
    use std::os::unix::fs::MetadataExt;
    // Two names of one database file would get two locks, and SQLite keeps
    // a WAL per name: the database would be corrupted.
    if let Ok(m) = std::fs::metadata(db_path)
        && m.nlink() > 1
    {
        return Err(Error::runtime(format!(
            "--db/DB_PATH {} has {} hard links: SQLite cannot share one database between names; keep one name (remove the other links)",
            db_path.display(),
            m.nlink()
        )));
    }
    let lock_path = lock_path(db_path)?;
    crate::inventory::create_default_dir(db_path)?;
    // A link planted at the lock's name is refused, never followed (it
    // would create or lock whatever it points at).
    let file = crate::dirfd::open_own_file(&lock_path, 0o644).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ELOOP) => "it is a symbolic link; remove it".to_string(),
            _ => format!("{e}; check permissions"),
        };
        Error::runtime(format!(
            "cannot open the lock file {} of --db/DB_PATH {}: {why}",
            lock_path.display(),
            db_path.display()
        ))
    })?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::runtime(format!(
            "another fgbackup upload is already running on --db/DB_PATH {} (lock {} is held): wait for it to finish",
            db_path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::runtime(format!(
            "cannot lock {} for --db/DB_PATH {} ({e})",
            lock_path.display(),
            db_path.display()
        ))),
    }
}

/// What the workers share; owned, so the writer can leave a stuck worker behind.
struct Shared {
    store: Arc<dyn Store>,
    root: fsafe::Root,
    cfg: UploadConfig,
    /// Which keys are free, from listings.
    listing: Listing,
    breaker: Breaker,
    queue: Mutex<VecDeque<Candidate>>,
    /// The file each busy worker holds, by worker number.
    in_flight: Mutex<BTreeMap<usize, Candidate>>,
}

/// The database side of a run (absent in a dry run).
struct Recorder<'a> {
    cfg: &'a UploadConfig,
    inventory: Option<&'a Inventory>,
    run_id: i64,
    batch: RefCell<Batch>,
    /// The terminal display (hidden unless `cfg.output` has it on).
    progress: RefCell<Progress>,
}

/// The open transaction, and the files waiting for it to commit before
/// they may be deleted.
#[derive(Default)]
struct Batch {
    open_since: Option<Instant>,
    rows: usize,
    deletes: Vec<(i64, Outcome)>,
}

/// Runs one upload (or dry run) and returns its summary.
pub fn run(cfg: &UploadConfig) -> Result<Summary> {
    let clock = Instant::now();
    let store: Arc<dyn Store> = Arc::from(open_store(cfg)?);
    // The lock is bound first so it is released last, after the database.
    let (_lock, inventory, run_id) = begin(cfg, store.as_ref())?;
    let rec = Recorder {
        cfg,
        inventory: inventory.as_ref(),
        run_id,
        batch: RefCell::default(),
        progress: RefCell::default(),
    };
    let (root, found) = match prepare(cfg, &store) {
        Ok(ready) => ready,
        Err(e) => {
            rec.finish(
                &Summary::default(),
                clock.elapsed(),
                Some(RunStatus::Failed),
            )?;
            return Err(e);
        }
    };
    for w in &found.warnings {
        log::error!("{w}");
    }
    log::info!(
        "{} file(s) to archive from {} to {}{}",
        found.candidates.len(),
        cfg.dir.display(),
        store.describe(),
        if cfg.dry_run { " (dry run)" } else { "" }
    );
    let mut summary = Summary {
        too_young: found.too_young,
        excluded: found.excluded,
        scan_warnings: found.warnings.len(),
        ..Summary::default()
    };
    rec.progress.replace(display(cfg, &found.candidates));
    let keys = found
        .candidates
        .iter()
        .map(|c| format!("{}{}", cfg.prefix, c.relative))
        .collect();
    let listing = Listing::start(&store, keys);
    let shared = Arc::new(Shared {
        store,
        root,
        listing,
        cfg: cfg.clone(),
        breaker: Breaker::default(),
        queue: Mutex::new(found.candidates.into_iter().collect()),
        in_flight: Mutex::new(BTreeMap::new()),
    });
    let pooled = rec.run_pool(&shared, &mut summary);
    // Whatever happened, the rows recorded so far are made durable.
    let flushed = rec.flush(&shared.root, &mut summary);
    rec.progress.take().finish();
    flushed?;
    pooled?;
    if let Some(inv) = &inventory {
        manifests(cfg, shared.store.as_ref(), inv, &mut summary);
    }
    summary.duration = clock.elapsed();
    rec.finish(&summary, summary.duration, None)?;
    Ok(summary)
}

/// With `--manifest-key`: the run's last step, under its lock (two runs
/// never link to one predecessor), writes the manifests due. A run cut
/// short writes none: the next run lists its files. Never fails the run's
/// rows; a problem makes the exit status 1 and reaches the notifications.
fn manifests(cfg: &UploadConfig, store: &dyn Store, inv: &Inventory, summary: &mut Summary) {
    let Some(key_path) = &cfg.manifest_key else {
        return;
    };
    if summary.interrupted || summary.aborted.is_some() {
        log::warn!(
            "no manifest written: the run was cut short; the next run's manifest lists its files"
        );
        return;
    }
    match super::manifest::write_chain(store, inv, &cfg.prefix, key_path) {
        Ok(w) => {
            summary.manifest = w.head;
            summary.manifest_problems = w.problems;
            if w.written == 0 {
                log::debug!("no manifest needed: nothing archived since the last one");
            }
        }
        Err(e) => {
            log::error!("manifest not written: {e}");
            summary
                .manifest_problems
                .push(format!("manifest not written: {e}"));
        }
    }
}

/// `manifest chain head: sequence 12, sha256 0123456789abcdef…`.
pub fn manifest_witness(m: &ManifestRow) -> String {
    format!(
        "manifest chain head: sequence {}, sha256 {}",
        m.sequence.map_or("-".into(), |s| s.to_string()),
        m.sha256
    )
}

/// The terminal display of the files found (hidden unless `cfg.output` has it on).
fn display(cfg: &UploadConfig, found: &[Candidate]) -> Progress {
    let bytes = found.iter().map(|c| c.size).sum();
    Progress::start(cfg.output, Job::Upload, found.len() as u64, bytes)
}

/// Takes the lock, opens the inventory and records the run's start; a dry
/// run writes nothing, so it takes none of them.
fn begin(
    cfg: &UploadConfig,
    store: &dyn Store,
) -> Result<(Option<RunLock>, Option<Inventory>, i64)> {
    if cfg.dry_run {
        return Ok((None, None, 0));
    }
    let lock = lock_database(&cfg.db_path)?;
    let inv = Inventory::open(&cfg.db_path)?;
    let stale = inv.close_stale_runs()?;
    if stale > 0 {
        log::warn!(
            "{stale} earlier run(s) ended without finishing (crash or kill); marked interrupted"
        );
    }
    let run_id = inv.start_run(
        SystemTime::now(),
        &cfg.dir.display().to_string(),
        &store.describe(),
    )?;
    Ok((Some(lock), Some(inv), run_id))
}

/// Checks the destination once, opens the source directory and scans it.
/// Each may wait on a server or a file system that does not answer (a LIST,
/// a hard NFS mount gone away), so each runs where a stop signal ends it.
fn prepare(cfg: &UploadConfig, store: &Arc<dyn Store>) -> Result<(fsafe::Root, scan::ScanOutcome)> {
    let checking = Arc::clone(store);
    signal::run_bounded("store-check", CHECK_TIMEOUT, move || checking.check())
        .map_err(|why| Error::runtime(format!("checking {}: {why}", store.describe())))?
        .map_err(|e| Error::runtime(e.message))?;
    let (dir, include, min_age) = (cfg.dir.clone(), cfg.include.clone(), cfg.min_age);
    let skip = own_files(cfg);
    let store_root = store_root_identity(cfg);
    let opened = signal::run_bounded("scan", CHECK_TIMEOUT, move || {
        let root = fsafe::Root::open(&dir)?;
        let found = scan::scan(
            &dir,
            &include,
            min_age,
            SystemTime::now(),
            &skip,
            store_root,
        );
        Ok::<_, std::io::Error>((root, found))
    })
    .map_err(|why| Error::runtime(format!("scanning --dir {}: {why}", cfg.dir.display())))?;
    opened.map_err(|e| {
        Error::runtime(format!(
            "cannot open --dir {} ({e}): check the path and permissions",
            cfg.dir.display()
        ))
    })
}

/// Device and inode of a directory store's root, which the scan never
/// enters (a bind mount of it below `--dir` is not caught by the paths).
pub fn store_root_identity(cfg: &UploadConfig) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    match &cfg.destination {
        Destination::Local { root } => std::fs::metadata(root).ok().map(|m| (m.dev(), m.ino())),
        Destination::S3 { .. } => None,
    }
}

/// fgbackup's own files, never archived even when they live in `--dir`
/// and match `--include`: the database and its companions, the run lock,
/// the flag file and the metrics textfile.
pub fn own_files(cfg: &UploadConfig) -> Vec<PathBuf> {
    let mut own: Vec<PathBuf> = ["", "-wal", "-shm", "-journal", ".lock"]
        .iter()
        .map(|suffix| {
            let mut p = cfg.db_path.as_os_str().to_os_string();
            p.push(suffix);
            PathBuf::from(p)
        })
        .collect();
    own.extend(cfg.notify.flag_file.iter().cloned());
    own.extend(cfg.notify.metrics_textfile.iter().cloned());
    own.iter()
        .filter_map(|p| crate::paths::resolve(p).ok())
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Workers = Vec<std::thread::JoinHandle<()>>;

/// Starts `--workers` threads feeding outcomes into a bounded channel (each
/// outcome may hold an open file, so the channel bounds descriptors too).
fn start_workers(shared: &Arc<Shared>) -> Result<(Receiver<Outcome>, Workers)> {
    let (tx, rx) = mpsc::sync_channel(shared.cfg.workers * 2);
    let mut handles = Vec::new();
    for n in 0..shared.cfg.workers {
        let shared = Arc::clone(shared);
        let tx = tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("upload-{n}"))
            .spawn(move || work(&shared, n, &tx))
            .map_err(|e| Error::runtime(format!("cannot start an upload worker thread: {e}")))?;
        handles.push(handle);
    }
    Ok((rx, handles))
}

/// One worker: files from the queue until it is empty, a stop signal
/// arrives or the endpoint is found unreachable.
fn work(shared: &Shared, n: usize, tx: &SyncSender<Outcome>) {
    let is_absent = |key: &str| shared.listing.is_absent(key);
    let ctx = Ctx {
        store: shared.store.as_ref(),
        root: &shared.root,
        cfg: &shared.cfg,
        breaker: &shared.breaker,
        absent: &is_absent,
    };
    while !signal::stop_requested() && shared.breaker.tripped().is_none() {
        let Some(candidate) = lock(&shared.queue).pop_front() else {
            break;
        };
        lock(&shared.in_flight).insert(n, candidate.clone());
        let mut outcome = step::process(&ctx, candidate);
        outcome.metered = crate::meter::take_file();
        lock(&shared.in_flight).remove(&n);
        if tx.send(outcome).is_err() {
            break;
        }
    }
}

impl Recorder<'_> {
    /// Starts the workers, records their outcomes, and fills in how the
    /// run ended (stop signal, unreachable endpoint, files left).
    fn run_pool(&self, shared: &Arc<Shared>, summary: &mut Summary) -> Result<()> {
        let (rx, workers) = start_workers(shared)?;
        let abandoned = self.collect(&rx, shared, summary)?;
        if !abandoned {
            for w in workers {
                let _ = w.join();
            }
        }
        summary.not_attempted = lock(&shared.queue).len();
        summary.interrupted = signal::stop_requested();
        summary.aborted = shared.breaker.tripped();
        Ok(())
    }

    /// Records outcomes until every worker is done, or until [`DRAIN_GRACE`]
    /// after a stop signal; returns whether workers were left behind.
    fn collect(
        &self,
        rx: &Receiver<Outcome>,
        shared: &Shared,
        summary: &mut Summary,
    ) -> Result<bool> {
        let mut stop_seen: Option<Instant> = None;
        loop {
            match rx.recv_timeout(TICK) {
                Ok(outcome) => self.record(outcome, shared, summary)?,
                Err(RecvTimeoutError::Disconnected) => return Ok(false),
                Err(RecvTimeoutError::Timeout) => {
                    self.flush_if_due(&shared.root, summary)?;
                    if !signal::stop_requested()
                        || stop_seen.get_or_insert_with(Instant::now).elapsed() < DRAIN_GRACE
                    {
                        continue;
                    }
                    while let Ok(outcome) = rx.try_recv() {
                        self.record(outcome, shared, summary)?;
                    }
                    let stuck: Vec<Candidate> = lock(&shared.in_flight).values().cloned().collect();
                    for c in stuck {
                        self.record(interrupted(&shared.cfg, c), shared, summary)?;
                    }
                    return Ok(true);
                }
            }
        }
    }

    /// The writer's part for one file: log, row, delete, totals.
    fn record(&self, outcome: Outcome, shared: &Shared, summary: &mut Summary) -> Result<()> {
        self.progress.borrow_mut().file_done(
            outcome.size,
            outcome.metered,
            outcome.status.is_failure(),
        );
        if matches!(outcome.status, Status::Deferred | Status::Busy) {
            match outcome.status {
                Status::Busy => summary.busy += 1,
                _ => summary.too_young += 1,
            }
            log::info!(
                "{}: {}",
                &outcome.key,
                outcome.error.as_deref().unwrap_or("")
            );
            return Ok(());
        }
        summary.files += 1;
        *summary.counts.entry(outcome.status.as_str()).or_insert(0) += 1;
        summary.bytes_sent += outcome.bytes_sent;
        if outcome.status.is_failure() {
            note_failure(
                summary,
                outcome.status,
                &outcome.key,
                outcome.error.as_deref(),
            );
        }
        log_outcome(&outcome);
        let Some(inv) = self.inventory else {
            // Dry run: the plan goes to stdout, one line per file (with
            // --json stdout holds only the summary, which counts them).
            if self.cfg.json {
                return Ok(());
            }
            let line = format!(
                "{:<15} {} -> {}",
                outcome.status.as_str(),
                outcome.candidate.path.display(),
                outcome.url.as_deref().unwrap_or(&outcome.key)
            );
            crate::progress::suspend(|| println!("{}", crate::logging::one_line(&line)));
            return Ok(());
        };
        self.open_batch(inv)?;
        let id = inv.insert_backup(Some(self.run_id), &row_of(&outcome))?;
        let mut batch = self.batch.borrow_mut();
        batch.rows += 1;
        if self.cfg.delete && outcome.deletable.is_some() {
            batch.deletes.push((id, outcome));
        }
        drop(batch);
        self.flush_if_due(&shared.root, summary)
    }

    /// Opens a transaction unless one is open.
    fn open_batch(&self, inv: &Inventory) -> Result<()> {
        let mut batch = self.batch.borrow_mut();
        if batch.open_since.is_none() {
            inv.begin()?;
            batch.open_since = Some(Instant::now());
        }
        Ok(())
    }

    fn flush_if_due(&self, root: &fsafe::Root, summary: &mut Summary) -> Result<()> {
        let due = {
            let b = self.batch.borrow();
            b.open_since.is_some_and(|t| t.elapsed() >= BATCH_AGE)
                || b.rows >= BATCH_ROWS
                || b.deletes.len() >= self.cfg.workers * 8
        };
        if due {
            self.flush(root, summary)
        } else {
            Ok(())
        }
    }

    /// Commits the open transaction, then deletes the files whose rows it
    /// made durable and commits what the deletes did (two fsyncs a batch).
    fn flush(&self, root: &fsafe::Root, summary: &mut Summary) -> Result<()> {
        let Some(inv) = self.inventory else {
            return Ok(());
        };
        let deletes = {
            let mut b = self.batch.borrow_mut();
            if b.open_since.take().is_none() {
                return Ok(());
            }
            b.rows = 0;
            std::mem::take(&mut b.deletes)
        };
        inv.commit()?;
        if deletes.is_empty() {
            return Ok(());
        }
        // What the deletes did is committed at once: a crash must not leave
        // a batch of deleted files whose rows still say they are here.
        inv.begin()?;
        for (id, outcome) in &deletes {
            if let Some(file) = &outcome.deletable {
                self.delete(inv, *id, file, root, outcome, summary)?;
            }
        }
        inv.commit()
    }

    /// Deletes the local file of a committed row, if it is still the
    /// archived version; otherwise the row says why it was kept.
    fn delete(
        &self,
        inv: &Inventory,
        id: i64,
        file: &fsafe::Opened,
        root: &fsafe::Root,
        outcome: &Outcome,
        summary: &mut Summary,
    ) -> Result<()> {
        let path = outcome.candidate.path.display();
        let sha = outcome.sha256.as_deref().unwrap_or_default();
        match file.unlink_if_unchanged(root, sha) {
            Ok(()) => {
                inv.mark_deleted(id)?;
                summary.deleted += 1;
                log::info!(
                    "deleted {path} (verified copy at {})",
                    outcome.url.as_deref().unwrap_or("")
                );
            }
            Err(Refusal::Changed(why)) => {
                let note = format!("kept {path}: {why}");
                log::error!("failed_changed {}: {note}", outcome.key);
                inv.set_status(id, Status::FailedChanged.as_str(), &note)?;
                if let Some(n) = summary.counts.get_mut(outcome.status.as_str()) {
                    *n = n.saturating_sub(1);
                }
                *summary
                    .counts
                    .entry(Status::FailedChanged.as_str())
                    .or_insert(0) += 1;
                note_failure(summary, Status::FailedChanged, &outcome.key, Some(&note));
                self.progress.borrow_mut().failure();
            }
            Err(Refusal::Failed(why)) => {
                summary.delete_failures += 1;
                self.progress.borrow_mut().failure();
                log::error!("kept {path}: {why}");
                inv.append_error(id, &format!("local delete failed: {why}"))?;
            }
        }
        Ok(())
    }

    /// Writes the run's totals (`status` overrides the computed one).
    fn finish(&self, s: &Summary, took: Duration, status: Option<RunStatus>) -> Result<()> {
        let Some(inv) = self.inventory else {
            return Ok(());
        };
        let count = |st: Status| s.counts.get(st.as_str()).copied().unwrap_or(0);
        let exit_code = if status.is_some() { 1 } else { s.exit_code() };
        let totals = RunTotals {
            files_seen: s.files,
            uploaded: count(Status::Uploaded),
            skipped: count(Status::SkippedExists),
            failed: s.failed,
            deleted: s.deleted,
            bytes_uploaded: s.bytes_sent,
            duration_ms: millis(took),
            exit_code,
            status: status.unwrap_or(if s.interrupted {
                RunStatus::Interrupted
            } else if exit_code == 0 {
                RunStatus::Ok
            } else {
                RunStatus::Failed
            }),
        };
        inv.finish_run(self.run_id, SystemTime::now(), &totals)
    }
}

fn note_failure(summary: &mut Summary, status: Status, key: &str, why: Option<&str>) {
    summary.failed += 1;
    if summary.problems.len() < crate::notify::MAX_PROBLEMS {
        summary.problems.push(Problem {
            status,
            key: key.to_string(),
            reason: why.unwrap_or("").to_string(),
        });
    } else {
        summary.problems_omitted += 1;
    }
}

fn log_outcome(o: &Outcome) {
    match (&o.error, o.status.is_failure()) {
        (Some(err), true) => log::error!("{} {}: {err}", o.status.as_str(), o.key),
        (Some(err), false) => log::warn!("{} {}: {err}", o.status.as_str(), o.key),
        (None, _) => log::info!(
            "{} {} ({} bytes, {} ms)",
            o.status.as_str(),
            o.key,
            o.size,
            millis(o.duration)
        ),
    }
}

fn row_of(o: &Outcome) -> BackupRow {
    BackupRow {
        filename: o
            .candidate
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| o.key.clone()),
        s3_url: o.url.clone(),
        sha256: o.sha256.clone(),
        uploaded_at: SystemTime::now(),
        status: o.status.as_str().to_string(),
        object_key: o.key.clone(),
        source_path: o.candidate.path.display().to_string(),
        size_bytes: o.size,
        duration_ms: millis(o.duration),
        error: o.error.clone(),
    }
}

/// The outcome of a file whose worker was left behind after a stop signal.
fn interrupted(cfg: &UploadConfig, candidate: Candidate) -> Outcome {
    let key = format!("{}{}", cfg.prefix, candidate.relative);
    Outcome {
        key,
        status: Status::FailedInterrupted,
        url: None,
        sha256: None,
        size: candidate.size,
        bytes_sent: 0,
        metered: 0,
        duration: Duration::ZERO,
        error: Some(format!(
            "stopped by a signal while a request for this file was still waiting on the network (given up after {} s); whether it reached the server is unknown, the file is kept",
            DRAIN_GRACE.as_secs()
        )),
        deletable: None,
        candidate,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
