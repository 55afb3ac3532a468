//! `fgbackup prune`: removes archived objects older than a retention period,
//! for stores the tool owns (a directory; a bucket without lifecycle rules).
//!
//! A dry run unless `--yes`; refuses a period under 365 days (PCI DSS 10.5
//! keeps a year of logs) unless `--force`; never deletes an object under
//! Object Lock retention or legal hold; records each removal in the
//! inventory (`prunes`) so the next manifest lists it: pruning is then
//! part of the signed record, not tampering. Prints the equivalent S3
//! lifecycle rule for admins who would rather let the bucket do it.

use std::time::{Duration, SystemTime};

use super::retry::{self, Breaker};
use crate::config::Target;
use crate::db::{Expected, Inventory, Selection};
use crate::error::{Error, Result};
use crate::status::Status;
use crate::store::{RemoteObject, Store};
use crate::timefmt;

/// The shortest retention `prune` accepts without `--force`.
pub const MIN_DAYS: u64 = 365;

/// `prune`'s own flags.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub older_than_days: u64,
    /// Delete for real (`--yes`); otherwise only say what would go.
    pub yes: bool,
    /// Write the next manifest right after (`--manifest-key`).
    pub manifest_key: Option<std::path::PathBuf>,
}

/// What became of one old object.
enum Fate {
    /// Deleted (or, in a dry run, would be): its size in bytes.
    Pruned(u64),
    /// Locked (retention or legal hold): left in place.
    Kept,
    /// Its HEAD or its delete failed.
    Failed,
}

/// The run's figures, for the summary and the exit status.
#[derive(Default)]
struct Totals {
    pruned: u64,
    bytes: u64,
    kept: u64,
    failed: u64,
}

impl Totals {
    fn add(&mut self, fate: Fate) {
        match fate {
            Fate::Pruned(size) => {
                self.pruned += 1;
                self.bytes += size;
            }
            Fate::Kept => self.kept += 1,
            Fate::Failed => self.failed += 1,
        }
    }
}

/// Runs `fgbackup prune`; returns the exit status.
pub fn prune(target: &Target, opts: &PruneOptions) -> Result<i32> {
    crate::signal::install();
    let _lock = super::archive::lock_database(&target.db_path)?;
    let inv = super::audit::open_inventory(target)?;
    let old = older_than(&inv, target, opts)?;
    let store =
        super::archive::open_destination(&target.destination, &target.transfer, 1, !opts.yes)?;
    store.check().map_err(|e| Error::runtime(e.message))?;
    let breaker = Breaker::default();
    let mut t = Totals::default();
    for e in &old {
        if crate::signal::stop_requested() {
            break;
        }
        t.add(prune_one(store.as_ref(), &inv, target, opts, &breaker, e)?);
    }
    summary(target, opts, t.pruned, t.bytes, t.kept, t.failed);
    record_in_manifest(store.as_ref(), &inv, target, opts, t.pruned)?;
    Ok(if t.failed == 0 { 0 } else { 1 })
}

/// The inventory's archived objects under the prefix first uploaded more
/// than `--older-than` days ago: the candidates, before any lock is seen.
fn older_than(inv: &Inventory, target: &Target, opts: &PruneOptions) -> Result<Vec<Expected>> {
    let cutoff = SystemTime::now()
        .checked_sub(Duration::from_secs(opts.older_than_days * 86_400))
        .map(timefmt::iso8601)
        .unwrap_or_default();
    let sel = Selection {
        key_prefix: target.prefix.clone(),
        ..Selection::default()
    };
    Ok(inv
        .archived(&Status::archived_names(), &sel)?
        .into_iter()
        .filter(|e| {
            e.first_uploaded_at
                .as_deref()
                .is_some_and(|t| t < cutoff.as_str())
        })
        .collect())
}

/// One candidate: a locked object is kept, a dry run only says what would
/// go, and a real delete is recorded in `prunes` so the next manifest
/// lists it. Only a failure to record is an error; the rest is a line.
fn prune_one(
    store: &dyn Store,
    inv: &Inventory,
    target: &Target,
    opts: &PruneOptions,
    breaker: &Breaker,
    e: &Expected,
) -> Result<Fate> {
    let head = match retry::with_retries(target.retries, breaker, || store.head(&e.key)) {
        Ok(h) => h,
        Err(err) => {
            println!("failed    {}: {}", e.key, err.message);
            return Ok(Fate::Failed);
        }
    };
    if let Some(why) = head.as_ref().and_then(locked) {
        println!("locked    {}: {why}; kept", e.key);
        return Ok(Fate::Kept);
    }
    let size = head.as_ref().map_or(0, |h| h.size);
    if !opts.yes {
        println!(
            "would prune {} (archived {}, {size} bytes)",
            e.key,
            e.first_uploaded_at.as_deref().unwrap_or("?")
        );
        return Ok(Fate::Pruned(size));
    }
    match remove(store, target.retries, breaker, e, head.is_some()) {
        Ok(()) => {
            inv.record_prune(e, head.as_ref().map(|h| h.size))?;
            println!("pruned    {}", e.key);
            Ok(Fate::Pruned(size))
        }
        Err(why) => {
            println!("failed    {}: {why}", e.key);
            Ok(Fate::Failed)
        }
    }
}

/// With `--manifest-key`, a real prune that removed anything is written
/// into the signed chain at once.
fn record_in_manifest(
    store: &dyn Store,
    inv: &Inventory,
    target: &Target,
    opts: &PruneOptions,
    pruned: u64,
) -> Result<()> {
    if let Some(k) = opts
        .manifest_key
        .as_ref()
        .filter(|_| opts.yes && pruned > 0)
        && let Some(key) = super::manifest::write_next(store, inv, &target.prefix, k)?
    {
        println!("prune: recorded in manifest {key}");
    }
    Ok(())
}

/// Why an object must not be deleted yet, if it is locked.
fn locked(h: &RemoteObject) -> Option<String> {
    if h.legal_hold {
        return Some("under legal hold".into());
    }
    let until = h.lock_until.as_deref()?;
    let now = timefmt::unix_seconds(SystemTime::now());
    match timefmt::parse_iso8601(until) {
        Some(t) if t <= now => None,
        _ => Some(format!(
            "Object Lock {} until {until}",
            h.lock_mode.as_deref().unwrap_or("retention")
        )),
    }
}

/// Deletes one object (already gone counts as removed).
fn remove(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    e: &Expected,
    present: bool,
) -> std::result::Result<(), String> {
    if !present {
        return Ok(());
    }
    retry::with_retries(retries, breaker, || store.delete(&e.key)).map_err(|err| err.message)
}

/// The last lines: totals, and the lifecycle rule doing the same in S3.
fn summary(target: &Target, opts: &PruneOptions, pruned: u64, bytes: u64, kept: u64, failed: u64) {
    let verb = if opts.yes { "pruned" } else { "would prune" };
    println!(
        "prune: {verb} {pruned} object(s) ({bytes} bytes) archived more than {} days ago; {kept} locked and kept; {failed} failed",
        opts.older_than_days
    );
    if !opts.yes {
        println!("prune: dry run, nothing deleted: pass --yes to delete");
    }
    if let crate::config::Destination::S3 { bucket, .. } = &target.destination {
        let rule = serde_json::json!({
            "Rules": [{
                "ID": format!("fgbackup-retention-{}d", opts.older_than_days),
                "Status": "Enabled",
                "Filter": { "Prefix": target.prefix },
                "Expiration": { "Days": opts.older_than_days },
            }]
        });
        println!(
            "prune: the same as an S3 lifecycle rule (aws s3api put-bucket-lifecycle-configuration --bucket {bucket} --lifecycle-configuration file://rule.json):\n{rule}"
        );
    }
}
