//! One run of `fgbackup upload`: scan, a pool of workers that each carry one
//! file through the steps of [`step`], and a single writer (the
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
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

mod listing;
mod lock;
mod recorder;
mod report;
pub mod step;
mod summary;

use recorder::Recorder;
pub(crate) use recorder::{log_outcome, record_index, row_of};
pub use report::notify_run;
pub use summary::{Newest, Problem, Summary};

use crate::build::{RunLock, lock_database, open_store, own_files, store_root_identity};
use crate::error::{Error, Result};
use crate::fsafe::{self};
use crate::inventory::Inventory;
use crate::inventory::status::{RunStatus, Status};
use crate::ops::retry::Breaker;
use crate::progress::{Job, Progress};
use crate::scan::{self, Candidate};
use crate::settings::UploadConfig;
use crate::signal;
use crate::store::Store;
use listing::Listing;
use step::{Ctx, Outcome};

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

/// Runs one upload (or dry run) and returns its summary.
///
/// Long on purpose: it is the table of contents of a run (lock, scan,
/// workers, flush, manifest, totals), each step one call, so the order that
/// makes deleting safe reads top to bottom in one place.
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
    summary.newest = inventory.as_ref().map(|inv| Newest {
        latest: inv.latest_fields().unwrap_or_default(),
        last_success_unix: inv.last_success_unix().unwrap_or_default(),
    });
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
    match crate::ops::manifest::write_chain(store, inv, &cfg.prefix, key_path) {
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
        expect: None,
    };
    while !signal::stop_requested() && shared.breaker.tripped().is_none() {
        let Some(candidate) = lock(&shared.queue).pop_front() else {
            break;
        };
        lock(&shared.in_flight).insert(n, candidate.clone());
        let mut outcome = step::process(&ctx, candidate);
        outcome.metered = crate::in_flight::take_file();
        lock(&shared.in_flight).remove(&n);
        if tx.send(outcome).is_err() {
            break;
        }
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
        index: None,
        candidate,
    }
}
