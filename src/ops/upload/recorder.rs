//! The database side of a run: one writer records every outcome in
//! batched transactions and performs the deletes once a row is committed.

use super::step::Outcome;
use crate::error::Result;
use crate::fsafe::{self, Refusal};
use crate::inventory::status::{RunStatus, Status};
use crate::inventory::{BackupRow, Inventory, RunTotals};
use crate::progress::Progress;
use crate::scan::Candidate;
use crate::settings::UploadConfig;
use crate::signal;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use super::*;

/// The database side of a run (absent in a dry run).
pub(super) struct Recorder<'a> {
    pub(super) cfg: &'a UploadConfig,
    pub(super) inventory: Option<&'a Inventory>,
    pub(super) run_id: i64,
    pub(super) batch: RefCell<Batch>,
    /// The terminal display (hidden unless `cfg.output` has it on).
    pub(super) progress: RefCell<Progress>,
}

/// The open transaction, and the files waiting for it to commit before
/// they may be deleted.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) open_since: Option<Instant>,
    pub(super) rows: usize,
    pub(super) deletes: Vec<(i64, Outcome)>,
}

impl Recorder<'_> {
    /// Starts the workers, records their outcomes, and fills in how the
    /// run ended (stop signal, unreachable endpoint, files left).
    pub(super) fn run_pool(&self, shared: &Arc<Shared>, summary: &mut Summary) -> Result<()> {
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
    pub(super) fn collect(
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
    pub(super) fn record(
        &self,
        outcome: Outcome,
        shared: &Shared,
        summary: &mut Summary,
    ) -> Result<()> {
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
        record_index(inv, id, &outcome)?;
        let mut batch = self.batch.borrow_mut();
        batch.rows += 1;
        if self.cfg.delete && outcome.deletable.is_some() {
            batch.deletes.push((id, outcome));
        }
        drop(batch);
        self.flush_if_due(&shared.root, summary)
    }

    /// Opens a transaction unless one is open.
    pub(super) fn open_batch(&self, inv: &Inventory) -> Result<()> {
        let mut batch = self.batch.borrow_mut();
        if batch.open_since.is_none() {
            inv.begin()?;
            batch.open_since = Some(Instant::now());
        }
        Ok(())
    }

    pub(super) fn flush_if_due(&self, root: &fsafe::Root, summary: &mut Summary) -> Result<()> {
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
    pub(super) fn flush(&self, root: &fsafe::Root, summary: &mut Summary) -> Result<()> {
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
    pub(super) fn delete(
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
                log::error!("{} {}: {note}", Status::FailedChanged.as_str(), outcome.key);
                inv.set_status(id, Status::FailedChanged, &note)?;
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
    pub(super) fn finish(
        &self,
        s: &Summary,
        took: Duration,
        status: Option<RunStatus>,
    ) -> Result<()> {
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

pub(super) fn note_failure(summary: &mut Summary, status: Status, key: &str, why: Option<&str>) {
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

pub(crate) fn log_outcome(o: &Outcome) {
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

pub(crate) fn row_of(o: &Outcome) -> BackupRow {
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

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The content index of an archived file, in its row's transaction: a
/// crash leaves both or neither.
pub(crate) fn record_index(inv: &Inventory, id: i64, outcome: &Outcome) -> Result<()> {
    match (&outcome.index, &outcome.sha256) {
        (Some(ix), Some(sha))
            if matches!(outcome.status, Status::Uploaded | Status::SkippedExists) =>
        {
            inv.record_content(Some(id), &outcome.key, sha, ix)
        }
        _ => Ok(()),
    }
}
