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
use super::status::Status;
use crate::config::Target;
use crate::db::{Expected, Selection};
use crate::error::{Error, Result};
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

/// Runs `fgbackup prune`; returns the exit status.
pub fn prune(target: &Target, opts: &PruneOptions) -> Result<i32> {
    crate::signal::install();
    let _lock = super::archive::lock_database(&target.db_path)?;
    let inv = super::audit::open_inventory(target)?;
    let cutoff = SystemTime::now()
        .checked_sub(Duration::from_secs(opts.older_than_days * 86_400))
        .map(timefmt::iso8601)
        .unwrap_or_default();
    let sel = Selection {
        key_prefix: target.prefix.clone(),
        ..Selection::default()
    };
    let old: Vec<Expected> = inv
        .archived(&Status::archived_names(), &sel)?
        .into_iter()
        .filter(|e| {
            e.first_uploaded_at
                .as_deref()
                .is_some_and(|t| t < cutoff.as_str())
        })
        .collect();
    let store =
        super::archive::open_destination(&target.destination, &target.transfer, 1, !opts.yes)?;
    store.check().map_err(|e| Error::runtime(e.message))?;
    let breaker = Breaker::default();
    let (mut pruned, mut bytes, mut kept, mut failed) = (0u64, 0u64, 0u64, 0u64);
    for e in &old {
        if crate::signal::stop_requested() {
            break;
        }
        let head = match retry::with_retries(target.retries, &breaker, || store.head(&e.key)) {
            Ok(h) => h,
            Err(err) => {
                println!("failed    {}: {}", e.key, err.message);
                failed += 1;
                continue;
            }
        };
        if let Some(why) = head.as_ref().and_then(locked) {
            println!("locked    {}: {why}; kept", e.key);
            kept += 1;
            continue;
        }
        let size = head.as_ref().map_or(0, |h| h.size);
        if !opts.yes {
            println!(
                "would prune {} (archived {}, {size} bytes)",
                e.key,
                e.first_uploaded_at.as_deref().unwrap_or("?")
            );
            pruned += 1;
            bytes += size;
            continue;
        }
        match remove(store.as_ref(), target.retries, &breaker, e, head.is_some()) {
            Ok(()) => {
                inv.record_prune(e, head.as_ref().map(|h| h.size))?;
                println!("pruned    {}", e.key);
                pruned += 1;
                bytes += size;
            }
            Err(why) => {
                println!("failed    {}: {why}", e.key);
                failed += 1;
            }
        }
    }
    summary(target, opts, pruned, bytes, kept, failed);
    if let Some(k) = opts
        .manifest_key
        .as_ref()
        .filter(|_| opts.yes && pruned > 0)
        && let Some(key) = super::manifest::write_next(store.as_ref(), &inv, &target.prefix, k)?
    {
        println!("prune: recorded in manifest {key}");
    }
    Ok(if failed == 0 { 0 } else { 1 })
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
