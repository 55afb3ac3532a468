//! One run of `fgbackup upload`: scan, a pool of workers that each carry one
//! file through hash → HEAD → PUT → verify, and a single writer (this thread)
//! that records every outcome and performs the deletes.
//!
//! Deletes happen here, after the file's row is committed, and only for files
//! whose copy was verified, whose gzip stream is complete and which have not
//! changed since they were hashed. A crash at any point therefore leaves
//! either the file, or a verified remote copy plus a row saying so.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::budget::MemoryBudget;
use crate::config::{Destination, UploadConfig};
use crate::db::{BackupRow, Inventory, RunTotals};
use crate::digest::{self, FileDigest};
use crate::error::{Error, Result};
use crate::scan::{self, Candidate};
use crate::signal;
use crate::store::local::LocalStore;
use crate::store::s3::S3Store;
use crate::store::{Body, Store, StoreError, StoreErrorKind};

/// The status column values, compatible with the suite's
/// `uploaded | skipped_exists | failed_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Stored and verified by HEAD (size and sha256 metadata).
    Uploaded,
    /// Already stored with the same sha256 and size: nothing sent.
    SkippedExists,
    /// Dry run: would be uploaded.
    WouldUpload,
    /// The local file could not be opened or read.
    FailedRead,
    /// The file changed (size, mtime or content) while being archived.
    FailedChanged,
    /// An object with other content already has this key; never overwritten.
    FailedConflict,
    /// The stored object has no sha256 metadata, so it cannot be proven.
    FailedNometa,
    /// After upload the stored size or sha256 differs from the local file.
    FailedVerify,
    /// The upload itself failed (network, server error, permissions).
    FailedUpload,
    /// Archived and verified, but the file is not a complete gzip stream; kept.
    FailedGzip,
    /// A stop signal arrived before the file was finished.
    FailedInterrupted,
}

impl Status {
    /// The text stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Uploaded => "uploaded",
            Status::SkippedExists => "skipped_exists",
            Status::WouldUpload => "would_upload",
            Status::FailedRead => "failed_read",
            Status::FailedChanged => "failed_changed",
            Status::FailedConflict => "failed_conflict",
            Status::FailedNometa => "failed_nometa",
            Status::FailedVerify => "failed_verify",
            Status::FailedUpload => "failed_upload",
            Status::FailedGzip => "failed_gzip",
            Status::FailedInterrupted => "failed_interrupted",
        }
    }

    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Status::Uploaded | Status::SkippedExists | Status::WouldUpload
        )
    }
}

/// What happened to one file.
#[derive(Debug)]
pub struct Outcome {
    pub candidate: Candidate,
    pub key: String,
    pub status: Status,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub size: u64,
    /// Size and mtime at hashing time; a delete requires the file to still match.
    pub mtime: SystemTime,
    pub bytes_sent: u64,
    pub duration: Duration,
    pub error: Option<String>,
    /// True when the remote copy is verified and the file may be deleted.
    pub deletable: bool,
}

/// Shared, read-only state of the workers.
struct Worker<'a> {
    store: &'a dyn Store,
    budget: Arc<MemoryBudget>,
    cfg: &'a UploadConfig,
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
    pub scan_warnings: usize,
    pub interrupted: bool,
    /// `status key: error` of failed files, at most [`crate::notify::MAX_PROBLEMS`].
    pub problems: Vec<String>,
    /// Failed files beyond those in `problems`.
    pub problems_omitted: u64,
}

impl Summary {
    /// 0 when everything succeeded, 1 when anything failed.
    pub fn exit_code(&self) -> i32 {
        if self.failed > 0 || self.delete_failures > 0 || self.scan_warnings > 0 || self.interrupted
        {
            1
        } else {
            0
        }
    }

    /// The one-paragraph report printed at the end of a run.
    pub fn render(&self, dry_run: bool) -> String {
        let secs = self.duration.as_secs_f64();
        let mb = self.bytes_sent as f64 / 1e6;
        let rate = if secs > 0.0 { mb / secs } else { 0.0 };
        let per_status: Vec<String> = self
            .counts
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        let mut text = format!(
            "{}{} files: {}; {} deleted; {:.1} MB sent in {:.2} s ({:.1} MB/s)",
            if dry_run { "dry run: " } else { "" },
            self.files,
            if per_status.is_empty() {
                "nothing to do".to_string()
            } else {
                per_status.join(", ")
            },
            self.deleted,
            mb,
            secs,
            rate
        );
        if self.too_young > 0 {
            text.push_str(&format!(
                "; {} newer than --min-age left for a later run",
                self.too_young
            ));
        }
        if self.scan_warnings > 0 {
            text.push_str(&format!("; {} scan problems (see log)", self.scan_warnings));
        }
        if self.delete_failures > 0 {
            text.push_str(&format!("; {} local deletes failed", self.delete_failures));
        }
        if self.interrupted {
            text.push_str("; interrupted by a stop signal");
        }
        text
    }
}

/// Builds the store the configuration names.
pub fn open_store(cfg: &UploadConfig) -> Result<Box<dyn Store>> {
    Ok(match &cfg.destination {
        Destination::S3 {
            bucket, settings, ..
        } => Box::new(S3Store::new(bucket, settings, cfg.part_size)?),
        Destination::Local { root } => Box::new(LocalStore::new(root.clone())),
    })
}

/// Holds the per-database run lock for as long as it lives.
pub struct RunLock {
    _file: File,
}

/// Takes `<db>.lock` so only one upload runs per database at a time.
pub fn lock_database(db_path: &Path) -> Result<RunLock> {
    let mut lock_path = db_path.as_os_str().to_os_string();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    if let Some(parent) = lock_path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::runtime(format!(
                "cannot create {} ({e}): create it or pass --db/DB_PATH elsewhere",
                parent.display()
            ))
        })?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("open lock file", &lock_path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::runtime(format!(
            "another fgbackup upload is already running on {} (lock {} is held): wait for it to finish",
            db_path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &lock_path, e)),
    }
}

/// Runs one upload (or dry run) and returns its summary.
pub fn run(cfg: &UploadConfig) -> Result<Summary> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let store = open_store(cfg)?;

    // Dry runs write nothing: no lock, no database, no remote writes.
    let (_lock, inventory, run_id) = if cfg.dry_run {
        (None, None, 0)
    } else {
        let lock = lock_database(&cfg.db_path)?;
        let inv = Inventory::open(&cfg.db_path)?;
        let stale = inv.close_stale_runs()?;
        if stale > 0 {
            log::warn!(
                "{stale} earlier run(s) ended without finishing (crash or kill); marked interrupted"
            );
        }
        let run_id = inv.start_run(started, &cfg.dir.display().to_string(), &store.describe())?;
        (Some(lock), Some(inv), run_id)
    };

    if let Err(e) = store.check() {
        if let Some(inv) = &inventory {
            let totals = RunTotals {
                status: "failed",
                exit_code: 1,
                duration_ms: millis(clock.elapsed()),
                ..RunTotals::default()
            };
            inv.finish_run(run_id, SystemTime::now(), &totals)?;
        }
        return Err(Error::runtime(e.message));
    }

    let found = scan::scan(&cfg.dir, &cfg.include, cfg.min_age, SystemTime::now());
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
        scan_warnings: found.warnings.len(),
        ..Summary::default()
    };
    let queue = Mutex::new(found.candidates.into_iter().collect::<VecDeque<_>>());
    let worker = Worker {
        store: store.as_ref(),
        budget: MemoryBudget::new(cfg.memory_budget),
        cfg,
    };
    let (tx, rx) = mpsc::channel::<Outcome>();

    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..cfg.workers {
            let tx = tx.clone();
            let queue = &queue;
            let worker = &worker;
            scope.spawn(move || {
                loop {
                    if signal::stop_requested() {
                        break;
                    }
                    let next = queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some(candidate) = next else { break };
                    if tx.send(worker.process(candidate)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for outcome in rx {
            record(cfg, inventory.as_ref(), run_id, outcome, &mut summary)?;
        }
        Ok(())
    })?;

    summary.interrupted = signal::stop_requested();
    summary.duration = clock.elapsed();
    if let Some(inv) = &inventory {
        let count = |s: Status| summary.counts.get(s.as_str()).copied().unwrap_or(0);
        let totals = RunTotals {
            files_seen: summary.files,
            uploaded: count(Status::Uploaded),
            skipped: count(Status::SkippedExists),
            failed: summary.failed,
            deleted: summary.deleted,
            bytes_uploaded: summary.bytes_sent,
            duration_ms: millis(summary.duration),
            exit_code: summary.exit_code(),
            status: if summary.interrupted {
                "interrupted"
            } else if summary.exit_code() == 0 {
                "ok"
            } else {
                "failed"
            },
        };
        inv.finish_run(run_id, SystemTime::now(), &totals)?;
    }
    Ok(summary)
}

/// The writer's part for one file: log, row, delete, totals.
fn record(
    cfg: &UploadConfig,
    inventory: Option<&Inventory>,
    run_id: i64,
    outcome: Outcome,
    summary: &mut Summary,
) -> Result<()> {
    summary.files += 1;
    *summary.counts.entry(outcome.status.as_str()).or_insert(0) += 1;
    summary.bytes_sent += outcome.bytes_sent;
    if outcome.status.is_failure() {
        summary.failed += 1;
        if summary.problems.len() < crate::notify::MAX_PROBLEMS {
            summary.problems.push(format!(
                "{} {}: {}",
                outcome.status.as_str(),
                outcome.key,
                outcome.error.as_deref().unwrap_or("")
            ));
        } else {
            summary.problems_omitted += 1;
        }
    }
    let ms = millis(outcome.duration);
    match (&outcome.error, outcome.status.is_failure()) {
        (Some(err), true) => log::error!("{} {}: {err}", outcome.status.as_str(), outcome.key),
        (Some(err), false) => log::warn!("{} {}: {err}", outcome.status.as_str(), outcome.key),
        (None, _) => log::info!(
            "{} {} ({} bytes, {ms} ms)",
            outcome.status.as_str(),
            outcome.key,
            outcome.size
        ),
    }
    let Some(inv) = inventory else {
        // Dry run: the plan goes to stdout, one line per file.
        println!(
            "{:<15} {} -> {}",
            outcome.status.as_str(),
            outcome.candidate.path.display(),
            outcome.url.as_deref().unwrap_or(&outcome.key)
        );
        return Ok(());
    };
    let row = BackupRow {
        filename: outcome
            .candidate
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| outcome.key.clone()),
        s3_url: outcome.url.clone(),
        sha256: outcome.sha256.clone(),
        uploaded_at: SystemTime::now(),
        status: outcome.status.as_str().to_string(),
        object_key: outcome.key.clone(),
        source_path: outcome.candidate.path.display().to_string(),
        size_bytes: outcome.size,
        duration_ms: ms,
        error: outcome.error.clone(),
    };
    let id = inv.insert_backup(run_id, &row)?;
    if cfg.delete && outcome.deletable {
        match delete_if_unchanged(&outcome) {
            Ok(()) => {
                inv.mark_deleted(id)?;
                summary.deleted += 1;
                log::info!(
                    "deleted {} (verified copy at {})",
                    outcome.candidate.path.display(),
                    row.s3_url.as_deref().unwrap_or("")
                );
            }
            Err(why) => {
                summary.delete_failures += 1;
                log::error!("kept {}: {why}", outcome.candidate.path.display());
                inv.append_error(id, &format!("local delete failed: {why}"))?;
            }
        }
    }
    Ok(())
}

/// Deletes the local file only if it is still the regular file that was hashed.
fn delete_if_unchanged(outcome: &Outcome) -> std::result::Result<(), String> {
    let path = &outcome.candidate.path;
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| format!("cannot stat before delete: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("it is no longer a regular file".to_string());
    }
    if meta.len() != outcome.size || meta.modified().ok() != Some(outcome.mtime) {
        return Err("it changed after its copy was verified".to_string());
    }
    std::fs::remove_file(path).map_err(|e| format!("cannot delete: {e}"))
}

impl Worker<'_> {
    /// Carries one file through the pipeline; never panics on bad input.
    fn process(&self, candidate: Candidate) -> Outcome {
        let clock = Instant::now();
        let key = format!("{}{}", self.cfg.prefix, candidate.relative);
        let mut out = Outcome {
            key: key.clone(),
            status: Status::FailedRead,
            url: None,
            sha256: None,
            size: candidate.size,
            mtime: candidate.mtime,
            bytes_sent: 0,
            duration: Duration::ZERO,
            error: None,
            deletable: false,
            candidate,
        };
        let result = self.pipeline(&key, &mut out);
        match result {
            Ok(status) => out.status = status,
            Err((status, message)) => {
                out.status = status;
                out.error = Some(message);
                out.deletable = false;
            }
        }
        out.duration = clock.elapsed();
        out
    }

    fn pipeline(
        &self,
        key: &str,
        out: &mut Outcome,
    ) -> std::result::Result<Status, (Status, String)> {
        let path = out.candidate.path.clone();
        let read_failed = |what: &str, e: std::io::Error| {
            (
                Status::FailedRead,
                format!("cannot {what} {}: {e}", path.display()),
            )
        };
        let mut file = File::open(&path).map_err(|e| read_failed("open", e))?;
        let meta = file.metadata().map_err(|e| read_failed("stat", e))?;
        out.size = meta.len();
        out.mtime = meta.modified().map_err(|e| read_failed("stat", e))?;
        let check_gzip = self.cfg.gzip_check && key.ends_with(".gz");

        // Small files are read once into a budgeted buffer; those very bytes are
        // hashed and sent. Large files are hashed in a streaming pass and sent
        // in parts that are hashed again on the way out.
        let small = out.size <= self.cfg.part_size;
        let mut whole = None;
        let digest: FileDigest = if small {
            let len = usize::try_from(out.size).map_err(|_| {
                (
                    Status::FailedRead,
                    "file too large for this platform".to_string(),
                )
            })?;
            let mut buffer = self.budget.buffer(len);
            file.read_exact(&mut buffer.data).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    (
                        Status::FailedChanged,
                        "the file became shorter while it was read".to_string(),
                    )
                } else {
                    read_failed("read", e)
                }
            })?;
            let mut probe = [0u8; 1];
            if file.read(&mut probe).map_err(|e| read_failed("read", e))? != 0 {
                return Err((
                    Status::FailedChanged,
                    "the file grew while it was read (still being written?)".to_string(),
                ));
            }
            let d = digest::digest_bytes(&buffer.data, check_gzip)
                .map_err(|e| read_failed("read", e))?;
            whole = Some(buffer);
            d
        } else {
            let d =
                digest::digest_reader(&mut file, check_gzip).map_err(|e| read_failed("read", e))?;
            if d.bytes != out.size {
                return Err((
                    Status::FailedChanged,
                    format!(
                        "the file changed size while it was hashed ({} then {} bytes; still being written?)",
                        out.size, d.bytes
                    ),
                ));
            }
            d
        };
        out.sha256 = Some(digest.sha256.clone());
        out.url = Some(self.store.url(key));

        let existing = self
            .with_retries(|| self.store.head(key))
            .map_err(|e| (Status::FailedUpload, e.message))?;
        match existing {
            Some(obj)
                if obj.sha256.as_deref() == Some(digest.sha256.as_str())
                    && obj.size == out.size =>
            {
                // Already archived and provably identical: the suite's skipped_exists.
                drop(whole);
                return self.finish(out, &digest, Status::SkippedExists);
            }
            Some(obj) if obj.sha256.is_none() => {
                return Err((
                    Status::FailedNometa,
                    format!(
                        "an object already exists at this key without sha256 metadata ({} bytes); it was not overwritten and the file is kept",
                        obj.size
                    ),
                ));
            }
            Some(obj) => {
                return Err((
                    Status::FailedConflict,
                    format!(
                        "an object with different content already exists at this key (sha256 {}, {} bytes; local {}, {} bytes); it was not overwritten and the file is kept",
                        obj.sha256.unwrap_or_default(),
                        obj.size,
                        digest.sha256,
                        out.size
                    ),
                ));
            }
            None => {}
        }
        if self.cfg.dry_run {
            return Ok(Status::WouldUpload);
        }
        if signal::stop_requested() {
            return Err((
                Status::FailedInterrupted,
                "stopped by a signal before upload; the file is kept".to_string(),
            ));
        }

        let put = self.with_retries(|| {
            let body = match &whole {
                Some(buffer) => Body::Memory(&buffer.data),
                None => Body::File {
                    file: &mut file,
                    size: out.size,
                },
            };
            self.store.put(key, body, &digest.sha256, &self.budget)
        });
        drop(whole);
        if let Err(e) = put {
            let status = match e.kind {
                StoreErrorKind::Changed => Status::FailedChanged,
                _ if signal::stop_requested() => Status::FailedInterrupted,
                _ => Status::FailedUpload,
            };
            return Err((status, format!("{}; the file is kept", e.message)));
        }
        out.bytes_sent = out.size;

        let stored = self.with_retries(|| self.store.head(key)).map_err(|e| {
            (
                Status::FailedVerify,
                format!("verification HEAD failed: {}; the file is kept", e.message),
            )
        })?;
        match stored {
            None => Err((Status::FailedVerify, "the object is missing right after upload; the file is kept".to_string())),
            Some(obj) if obj.sha256.is_none() => Err((Status::FailedNometa,
                "the stored object has no sha256 metadata (a proxy or gateway may strip x-amz-meta headers); the file is kept".to_string())),
            Some(obj) if obj.sha256.as_deref() != Some(digest.sha256.as_str()) || obj.size != out.size => Err((Status::FailedVerify, format!(
                "the stored object does not match (sha256 {}, {} bytes; expected {}, {} bytes); the file is kept",
                obj.sha256.unwrap_or_default(), obj.size, digest.sha256, out.size
            ))),
            Some(_) => self.finish(out, &digest, Status::Uploaded),
        }
    }

    /// Common end for files whose remote copy is verified: the file must not
    /// have changed since it was hashed, and `.gz` files must be complete.
    fn finish(
        &self,
        out: &mut Outcome,
        digest: &FileDigest,
        status: Status,
    ) -> std::result::Result<Status, (Status, String)> {
        let path = &out.candidate.path;
        let now = std::fs::symlink_metadata(path).map_err(|e| {
            (
                Status::FailedChanged,
                format!("the file vanished or cannot be stat'ed after archiving: {e}"),
            )
        })?;
        if now.len() != out.size || now.modified().ok() != Some(out.mtime) {
            return Err((
                Status::FailedChanged,
                format!(
                    "the file changed while it was archived ({} bytes now, {} hashed); the stored copy is of the earlier content and the file is kept",
                    now.len(),
                    out.size
                ),
            ));
        }
        if let Some(Err(why)) = &digest.gzip {
            return Err((
                Status::FailedGzip,
                format!("{why}; the copy is archived byte-for-byte but the file is kept locally"),
            ));
        }
        out.deletable = true;
        Ok(status)
    }

    /// Repeats `op` on transient failures with exponential backoff.
    fn with_retries<T>(
        &self,
        mut op: impl FnMut() -> std::result::Result<T, StoreError>,
    ) -> std::result::Result<T, StoreError> {
        let mut attempt = 0u32;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.kind == StoreErrorKind::Transient
                        && attempt < self.cfg.retries
                        && !signal::stop_requested() =>
                {
                    attempt += 1;
                    let delay =
                        Duration::from_millis(500u64.saturating_mul(1 << (attempt - 1).min(5)))
                            .min(Duration::from_secs(10));
                    log::warn!(
                        "{}; retry {attempt}/{} in {:.1} s",
                        e.message,
                        self.cfg.retries,
                        delay.as_secs_f64()
                    );
                    std::thread::sleep(delay);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
