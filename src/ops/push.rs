//! Archiving a pushed body: the same steps as a local file
//! ([`crate::ops::upload::step::process`]: open, digest, place, put,
//! verify, settle), the same row, the same delete rule. The spooled body
//! is the "local file"; it is deleted only when that pipeline would delete
//! a local file under `--delete` (the copy proven, the body unchanged),
//! and its row's source is `push:<token id>/<name>`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::fsafe::{self, Refusal};
use crate::inventory::status::{RunStatus, Status};
use crate::inventory::{Inventory, RunTotals, Selection};
use crate::ops::retry::Breaker;
use crate::ops::upload::step::{self, Ctx, Outcome};
use crate::push::spool::{Entry, Meta};
use crate::scan::Candidate;
use crate::settings::UploadConfig;
use crate::store::Store;

/// What became of a pushed body.
#[derive(Debug)]
pub enum Archived {
    /// Stored now and proven (201).
    Stored(Receipt),
    /// Our bytes were already at the key (200).
    Exists(Receipt),
    /// Other bytes are at the key (409); the body is discarded: the client
    /// still has its file, and the server will never store it there.
    Conflict(String),
    /// Archiving did not end in a proven copy (the store unreachable, a
    /// failed verify, an incomplete gzip stream): the row says why; the
    /// body stays in the spool for another try (503), except an incomplete
    /// gzip stream (422) or a body that is not the declared one.
    Kept { status: Status, why: String },
}

/// What the client is told of an archived file.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub key: String,
    pub sha256: String,
    pub size: u64,
    pub url: String,
}

/// What archiving pushes needs: the store and the upload settings the
/// server was started with (destination, transfer, retries, gzip proof).
pub struct Archiver {
    pub store: Arc<dyn Store>,
    pub cfg: UploadConfig,
}

/// Statuses whose row says the key holds the row's bytes: a push of other
/// bytes is refused (409) from them before its body comes; a push of the
/// same bytes (a retry) is still received and proven by the pipeline,
/// since the row cannot say the object is still there.
pub const PROVEN: &[Status] = &[Status::Uploaded, Status::SkippedExists];

impl Archiver {
    /// The settings of a push: always deleting (the spool is not an
    /// archive), no age rule (the body is whole and closed), never a dry run.
    pub fn new(store: Arc<dyn Store>, mut cfg: UploadConfig) -> Archiver {
        cfg.delete = true;
        cfg.dry_run = false;
        cfg.min_age = Duration::ZERO;
        cfg.gzip_check = cfg.transfer.gzip.enabled(true);
        // Other bytes at the key are the pusher's business: 409, never a
        // key of the server's choosing.
        cfg.on_conflict = crate::settings::OnConflict::Keep;
        Archiver { store, cfg }
    }

    /// The key `name` pushed with a token of `prefix` is stored under.
    pub fn key(prefix: &str, name: &str) -> String {
        format!("{prefix}{name}")
    }

    /// The newest proven row of `key`, as (sha256, size).
    pub fn proven(inv: &Inventory, key: &str) -> Result<Option<(String, u64)>> {
        let names: Vec<&str> = PROVEN.iter().map(|s| s.as_str()).collect();
        let row = inv.archived_key(&names, &Selection::default(), key)?;
        Ok(row.and_then(|e| Some((e.sha256?, e.size?))))
    }

    /// Archives the whole body of `entry` (declared by `meta`) pushed with
    /// token `token_id` under `prefix`, records its row and the token's use,
    /// and deletes the body when the pipeline proved the copy.
    pub fn archive(
        &self,
        inv: &Inventory,
        token_id: &str,
        prefix: &str,
        entry: &Entry,
        meta: &Meta,
    ) -> Result<Archived> {
        let run_id = inv.start_run(
            SystemTime::now(),
            &format!("push:{token_id}"),
            &self.store.describe(),
        )?;
        let (outcome, root) = self.process(prefix, entry, meta);
        let result = self.record(inv, run_id, token_id, (entry, meta), outcome, root);
        if result.is_err() {
            let _ = inv.finish_run(run_id, SystemTime::now(), &totals(None, RunStatus::Failed));
        }
        result
    }

    /// The pipeline's steps on the spooled body, and the spool directory
    /// it was opened below (the delete goes through it).
    fn process(&self, prefix: &str, entry: &Entry, meta: &Meta) -> (Outcome, Option<fsafe::Root>) {
        let mut cfg = self.cfg.clone();
        cfg.prefix = prefix.to_string();
        let body = entry.body();
        if let Err(e) = entry.no_links() {
            let why = format!("the spool holds a link where a directory should be: {e}");
            return (failed_outcome(&cfg, entry, meta, why), None);
        }
        let candidate = match std::fs::symlink_metadata(&body) {
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                Candidate {
                    path: body.clone(),
                    relative: entry.name.clone(),
                    size: m.len(),
                    dev: m.dev(),
                    ino: m.ino(),
                }
            }
            Err(e) => {
                let why = format!("the spooled body cannot be read: {e}");
                return (failed_outcome(&cfg, entry, meta, why), None);
            }
        };
        let root = match fsafe::Root::open(&entry.dir) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("the spool cannot be opened: {e}");
                return (failed_outcome(&cfg, entry, meta, why), None);
            }
        };
        let breaker = Breaker::default();
        let absent = |_: &str| false;
        let ctx = Ctx {
            store: self.store.as_ref(),
            root: &root,
            cfg: &cfg,
            breaker: &breaker,
            absent: &absent,
            // The pipeline's own read must be the declared body: one changed
            // in the spool (a crash, a hand), or a part, is never stored.
            expect: Some(&meta.sha256),
        };
        (step::process(&ctx, candidate), Some(root))
    }

    /// Row, token use and delete, in the order that makes deleting safe:
    /// the row is committed before the body goes.
    fn record(
        &self,
        inv: &Inventory,
        run_id: i64,
        token_id: &str,
        (entry, meta): (&Entry, &Meta),
        mut outcome: Outcome,
        root: Option<fsafe::Root>,
    ) -> Result<Archived> {
        let mut row = crate::ops::upload::row_of(&outcome);
        row.source_path = format!("push:{token_id}/{}", meta.name);
        row.filename = meta
            .name
            .rsplit('/')
            .next()
            .unwrap_or(&meta.name)
            .to_string();
        inv.begin()?;
        let id = inv.insert_backup(Some(run_id), &row)?;
        crate::ops::upload::record_index(inv, id, &outcome)?;
        if outcome.status == Status::Uploaded {
            inv.note_token_file(token_id, outcome.size)?;
        }
        inv.commit()?;
        crate::ops::upload::log_outcome(&outcome);
        let receipt = Receipt {
            key: outcome.key.clone(),
            sha256: meta.sha256.clone(),
            size: meta.size,
            url: outcome.url.clone().unwrap_or_default(),
        };
        let deleted = release(inv, id, entry, meta, &mut outcome, root)?;
        let archived = verdict(entry, &outcome, receipt);
        let run = match &archived {
            Archived::Stored(_) | Archived::Exists(_) => RunStatus::Ok,
            _ => RunStatus::Failed,
        };
        let mut t = totals(Some(&outcome), run);
        t.deleted = deleted;
        inv.finish_run(run_id, SystemTime::now(), &t)?;
        Ok(archived)
    }
}

/// Deletes the spooled body through the pipeline's proof (the file it
/// opened, still unchanged); 1 if it went.
fn release(
    inv: &Inventory,
    id: i64,
    entry: &Entry,
    meta: &Meta,
    outcome: &mut Outcome,
    root: Option<fsafe::Root>,
) -> Result<u64> {
    let (Some(file), Some(root)) = (outcome.deletable.take(), root) else {
        return Ok(0);
    };
    match file.unlink_if_unchanged(&root, &meta.sha256) {
        Ok(()) => {
            inv.mark_deleted(id)?;
            entry.discard();
            Ok(1)
        }
        Err(Refusal::Changed(why) | Refusal::Failed(why)) => {
            log::error!("{}: the spooled body is kept: {why}", outcome.key);
            inv.append_error(id, &format!("spooled body kept: {why}"))?;
            Ok(0)
        }
    }
}

/// What the pusher is told; a body the server will never archive (other
/// bytes at the key, or changed in the spool) is discarded.
fn verdict(entry: &Entry, outcome: &Outcome, receipt: Receipt) -> Archived {
    let why = || outcome.error.clone().unwrap_or_default();
    match outcome.status {
        Status::Uploaded => Archived::Stored(receipt),
        Status::SkippedExists => Archived::Exists(receipt),
        Status::FailedConflict | Status::FailedNometa | Status::FailedRemoteCorrupt => {
            entry.discard();
            Archived::Conflict(why())
        }
        status => {
            if status == Status::FailedChanged {
                entry.discard();
            }
            Archived::Kept { status, why: why() }
        }
    }
}

/// The totals of a one-file run.
fn totals(o: Option<&Outcome>, status: RunStatus) -> RunTotals {
    let is = |s: Status| o.is_some_and(|o| o.status == s);
    RunTotals {
        files_seen: u64::from(o.is_some()),
        uploaded: u64::from(is(Status::Uploaded)),
        skipped: u64::from(is(Status::SkippedExists)),
        failed: u64::from(o.is_some_and(|o| o.status.is_failure())),
        deleted: 0,
        bytes_uploaded: o.map_or(0, |o| o.bytes_sent),
        duration_ms: o.map_or(0, |o| {
            u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX)
        }),
        exit_code: i32::from(status != RunStatus::Ok),
        status,
    }
}

/// An outcome for a body the pipeline could not even start on.
fn failed_outcome(cfg: &UploadConfig, entry: &Entry, meta: &Meta, why: String) -> Outcome {
    let key = format!("{}{}", cfg.prefix, entry.name);
    Outcome {
        url: None,
        key,
        status: Status::FailedRead,
        sha256: None,
        size: meta.size,
        bytes_sent: 0,
        metered: 0,
        duration: Duration::ZERO,
        error: Some(why),
        deletable: None,
        index: None,
        candidate: Candidate {
            path: entry.body(),
            relative: entry.name.clone(),
            size: meta.size,
            dev: 0,
            ino: 0,
        },
    }
}
