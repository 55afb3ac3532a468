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
use crate::error::{Error, Result};
use crate::inventory::status::Status;
use crate::inventory::{Expected, Inventory, Selection};
use crate::settings::Target;
use crate::store::{RemoteObject, Store, StoreError};
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
    /// The content now at the key was archived less than `--older-than`
    /// days ago (the key was pruned and archived again): left in place.
    Recent,
    /// The object cannot be tied to an archived row old enough (other
    /// content than the inventory's, or nothing to compare): left in place
    /// and reported, since deleting it could delete the only copy of
    /// something the inventory never recorded.
    Untied,
    /// Its HEAD or its delete failed.
    Failed,
}

/// The run's figures, for the summary and the exit status.
#[derive(Default)]
struct Totals {
    pruned: u64,
    bytes: u64,
    kept: u64,
    recent: u64,
    untied: u64,
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
            Fate::Recent => self.recent += 1,
            Fate::Untied => self.untied += 1,
            Fate::Failed => self.failed += 1,
        }
    }
}

/// How the object at a key relates to the inventory's rows.
enum Tie {
    /// Its content was first archived (since the key's last prune) at this
    /// time, before the cutoff.
    Old(String),
    /// Its content was archived at this time, after the cutoff.
    Recent(String),
    /// It cannot be tied to a row: why.
    Untied(String),
}

/// Runs `fgbackup prune`; returns the exit status.
pub fn prune(target: &Target, opts: &PruneOptions) -> Result<i32> {
    crate::signal::install();
    let _lock = crate::build::lock_database(&target.db_path)?;
    let inv = super::verify::open_inventory(target)?;
    let old = older_than(&inv, target, opts)?;
    let store =
        crate::build::open_destination(&target.destination, &target.transfer, 1, !opts.yes)?;
    store.check().map_err(|e| Error::runtime(e.message))?;
    let breaker = Breaker::default();
    let mut t = Totals::default();
    let cutoff = cutoff(opts);
    for e in &old {
        if crate::signal::stop_requested() {
            break;
        }
        let fate = prune_one(store.as_ref(), &inv, target, opts, &breaker, e, &cutoff)?;
        t.add(fate);
    }
    summary(target, opts, &t);
    record_in_manifest(store.as_ref(), &inv, target, opts, t.pruned)?;
    Ok(if t.failed == 0 && t.untied == 0 { 0 } else { 1 })
}

/// `--older-than` days before now, as an ISO 8601 time.
fn cutoff(opts: &PruneOptions) -> String {
    SystemTime::now()
        .checked_sub(Duration::from_secs(opts.older_than_days * 86_400))
        .map(timefmt::iso8601)
        .unwrap_or_default()
}

/// The inventory's archived objects under the prefix whose key was first
/// archived more than `--older-than` days ago: the candidates, before the
/// object at each key is tied to its rows and any lock is seen.
fn older_than(inv: &Inventory, target: &Target, opts: &PruneOptions) -> Result<Vec<Expected>> {
    let cutoff = cutoff(opts);
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

/// One candidate: a locked object is kept, so is one that cannot be tied
/// to an archived row older than the cutoff; a dry run only says what would
/// go, and a real delete is recorded in `prunes` so the next manifest lists
/// it. Only a failure to record is an error; the rest is a line.
fn prune_one(
    store: &dyn Store,
    inv: &Inventory,
    target: &Target,
    opts: &PruneOptions,
    breaker: &Breaker,
    e: &Expected,
    cutoff: &str,
) -> Result<Fate> {
    let head = match retry::with_retries(target.retries, breaker, || store.head(&e.key)) {
        Ok(h) => h,
        Err(err) => {
            crate::logging::say(format_args!("failed    {}: {}", e.key, err.message));
            return Ok(Fate::Failed);
        }
    };
    if let Some(why) = head.as_ref().and_then(locked) {
        crate::logging::say(format_args!("locked    {}: {why}; kept", e.key));
        return Ok(Fate::Kept);
    }
    let size = head.as_ref().map_or(0, |h| h.size);
    let archived = match &head {
        None => e.first_uploaded_at.clone().unwrap_or_else(|| "?".into()),
        Some(h) => match tie(inv, e, h, cutoff)? {
            Tie::Old(at) => at,
            Tie::Recent(at) => {
                crate::logging::say(format_args!(
                    "recent    {}: its content was archived on {at}, less than {} days ago (the key was pruned and archived again); kept",
                    e.key, opts.older_than_days
                ));
                return Ok(Fate::Recent);
            }
            Tie::Untied(why) => {
                crate::logging::say(format_args!("untied    {}: {why}; kept", e.key));
                return Ok(Fate::Untied);
            }
        },
    };
    if !opts.yes {
        crate::logging::say(format_args!(
            "would prune {} (archived {archived}, {size} bytes)",
            e.key
        ));
        return Ok(Fate::Pruned(size));
    }
    match remove(store, target.retries, breaker, e, head.is_some()) {
        Ok(()) => {
            remove_sidecar(store, &target.prefix, &e.key);
            inv.record_prune(e, head.as_ref().map(|h| h.size))?;
            crate::logging::say(format_args!("pruned    {}", e.key));
            Ok(Fate::Pruned(size))
        }
        Err(why) => {
            crate::logging::say(format_args!("failed    {}: {}", e.key, why.message));
            Ok(Fate::Failed)
        }
    }
}

/// Ties the object the store holds at `e.key` to the inventory: its
/// content (the server's checksum, else its `sha256` metadata) and size
/// must be those of the key's newest archived row, and its age is when
/// that content was first archived there since the key's last prune. An
/// object with no hash to compare is judged by its own Last-Modified.
fn tie(inv: &Inventory, e: &Expected, h: &RemoteObject, cutoff: &str) -> Result<Tie> {
    let stored = h.checksum_sha256.as_deref().or(h.sha256.as_deref());
    let Some(stored) = stored else {
        return Ok(match h.modified.map(|m| timefmt::iso8601(timefmt::from_unix(m))) {
            Some(m) if m.as_str() < cutoff => Tie::Old(m),
            Some(m) => Tie::Untied(format!(
                "the object carries no sha256 to tie it to a row, and it was written on {m}"
            )),
            None => Tie::Untied(
                "the object carries neither a sha256 nor a modification time to tie it to a row"
                    .into(),
            ),
        });
    };
    // The Python suite's rows have no size: the hash alone then ties.
    let ours = (e.sha256.as_deref(), e.size);
    if ours.0 != Some(stored) || ours.1.is_some_and(|s| s != h.size) {
        return Ok(Tie::Untied(format!(
            "the object holds other content (sha256 {stored}, {} bytes) than the inventory's newest archived row ({}, {} bytes): it was not archived by this inventory",
            h.size,
            ours.0.unwrap_or("no sha256"),
            ours.1.map_or("?".into(), |s| s.to_string())
        )));
    }
    let statuses = Status::archived_names();
    Ok(match inv.first_archived(&e.key, stored, &statuses)? {
        Some(at) if at.as_str() < cutoff => Tie::Old(at),
        Some(at) => Tie::Recent(at),
        None => Tie::Untied("no archived row of the inventory holds its content".into()),
    })
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
    {
        let written = super::manifest::write_chain(store, inv, &target.prefix, k)?;
        for p in &written.problems {
            crate::logging::say(format_args!("prune: manifest chain: {p}"));
        }
        if let Some(head) = written.head.filter(|_| written.written > 0) {
            crate::logging::say(format_args!("prune: recorded in manifest {}", head.key));
        }
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
) -> std::result::Result<(), StoreError> {
    if !present {
        return Ok(());
    }
    retry::with_retries(retries, breaker, || store.delete(&e.key))
}

/// A pruned archive's index sidecar goes with it. Best effort: one left
/// behind names bytes no longer archived, which no reader takes.
fn remove_sidecar(store: &dyn Store, prefix: &str, key: &str) {
    if let Some(side) = crate::scan::sidecar_key(prefix, key)
        && let Err(e) = store.delete(&side)
    {
        log::info!(
            "{key}: its index sidecar {side} was not removed: {}",
            e.message
        );
    }
}

/// The last lines: totals, and the lifecycle rule doing the same in S3.
fn summary(target: &Target, opts: &PruneOptions, t: &Totals) {
    let verb = if opts.yes { "pruned" } else { "would prune" };
    let mut line = format!(
        "prune: {verb} {} object(s) ({} bytes) archived more than {} days ago; {} locked and kept; {} failed",
        t.pruned, t.bytes, opts.older_than_days, t.kept, t.failed
    );
    if t.recent > 0 {
        line.push_str(&format!("; {} archived again recently and kept", t.recent));
    }
    if t.untied > 0 {
        line.push_str(&format!(
            "; {} not tied to the inventory's rows and kept (see the 'untied' lines)",
            t.untied
        ));
    }
    println!("{line}");
    if !opts.yes {
        println!("prune: dry run, nothing deleted: pass --yes to delete");
    }
    if let crate::settings::Destination::S3 { bucket, .. } = &target.destination {
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
