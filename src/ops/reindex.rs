//! `fgbackup reindex`: rebuilds (or fills in) the inventory from the archive
//! itself, after the database was lost or to see other collectors' prefixes.
//!
//! Every object under the prefix that has no archived row gets one. Its
//! SHA-256 comes from the server's own stored checksum when it keeps one,
//! else from reading the object back (`--read`, and always for a directory
//! store, where reading is cheap); a row whose SHA-256 is only what the
//! object's metadata claims, or unknown, is marked `reindexed_unproven`.
//! Running it again adds nothing: it is idempotent.

use std::time::SystemTime;

use super::retry::{self, Breaker};
use crate::error::{Error, Result};
use crate::inventory::status::Status;
use crate::inventory::{BackupRow, Inventory};
use crate::scan::{MANIFEST_DIR, is_sidecar_object};
use crate::settings::Target;
use crate::store::{Listed, Store, StoreError};
use crate::timefmt;

/// How one object's row was proven.
#[derive(Debug, Default)]
struct Counts {
    listed: u64,
    known: u64,
    by_checksum: u64,
    by_reading: u64,
    unproven: u64,
    failed: u64,
}

impl Counts {
    /// One row added, counted by what proved it.
    fn added(&mut self, how: Proof) {
        match how {
            Proof::Checksum => self.by_checksum += 1,
            Proof::Reading => self.by_reading += 1,
            Proof::None => self.unproven += 1,
        }
    }

    /// The closing lines: what was added and how it was proven.
    fn report(&self, read: bool) {
        println!(
            "reindex: {} objects listed, {} added ({} proven by the stored checksum, {} read back, {} unproven), {} already in the inventory, {} failed",
            self.listed,
            self.by_checksum + self.by_reading + self.unproven,
            self.by_checksum,
            self.by_reading,
            self.unproven,
            self.known,
            self.failed
        );
        if self.unproven > 0 && !read {
            println!("reindex: rerun with --read to read the unproven objects back and prove them");
        }
    }
}

/// Runs `fgbackup reindex`; returns the exit status.
pub fn reindex(target: &Target, read: bool, content: bool, read_objects: bool) -> Result<i32> {
    crate::signal::install();
    let _lock = crate::build::lock_database(&target.db_path)?;
    let inv = Inventory::open(&target.db_path)?;
    let store = crate::build::open_destination(&target.destination, &target.transfer, 1, true)?;
    store.check().map_err(|e| Error::runtime(e.message))?;
    let read = read || store.read_back_is_cheap();
    // With --read, rows nothing proved are done again, this time proven.
    let statuses: Vec<&str> = Status::archived_names()
        .into_iter()
        .filter(|s| !read || *s != Status::ReindexedUnproven.as_str())
        .collect();
    let run = Run {
        inv: &inv,
        store: store.as_ref(),
        target,
        breaker: Breaker::default(),
        statuses: &statuses,
        read,
    };
    let c = run.record()?;
    c.report(read);
    let mut failed = c.failed;
    if content && !crate::signal::stop_requested() {
        let n = super::reindex_content::run(target, &inv, read_objects)?;
        println!(
            "reindex --content: {} archived object(s) indexed ({} from their sidecars), {} not (see above)",
            n.indexed, n.from_sidecars, n.failed
        );
        failed += n.failed;
    }
    Ok(if failed == 0 && !crate::signal::stop_requested() {
        0
    } else {
        1
    })
}

/// One reindex: what every listed object is looked at with.
struct Run<'a> {
    inv: &'a Inventory,
    store: &'a dyn Store,
    target: &'a Target,
    breaker: Breaker,
    /// The statuses of rows that leave an object alone.
    statuses: &'a [&'a str],
    /// Prove each SHA-256 by reading the object back.
    read: bool,
}

impl Run<'_> {
    /// Adds a row for each listed object the inventory lacks (manifests are
    /// ours, not archived files), in one transaction, as the listing streams
    /// past: neither the listing nor the inventory's keys are held (a key is
    /// looked up along the key index). A listing cut short is started over;
    /// what it already added is then known. A stop signal ends it; an object
    /// that cannot be proven is a failure line, not an error.
    fn record(&self) -> Result<Counts> {
        let mut c = Counts::default();
        let mut db_error: Option<Error> = None;
        self.inv.begin()?;
        let listed = retry::with_retries(self.target.retries, &self.breaker, || {
            c = Counts::default();
            self.store.list_all(&self.target.prefix, &mut |l: Listed| {
                if db_error.is_some() || crate::signal::stop_requested() {
                    return;
                }
                if let Err(e) = self.one(&l, &mut c) {
                    db_error = Some(e);
                }
            })
        });
        if let Some(e) = db_error {
            return Err(e);
        }
        self.inv.commit()?;
        listed.map_err(|e| Error::runtime(e.message))?;
        Ok(c)
    }

    /// One listed object: counted, and given a row unless known.
    fn one(&self, l: &Listed, c: &mut Counts) -> Result<()> {
        let rest = l
            .key
            .strip_prefix(self.target.prefix.as_str())
            .unwrap_or(&l.key);
        let own = rest.starts_with(MANIFEST_DIR) || is_sidecar_object(rest);
        if own {
            return Ok(());
        }
        c.listed += 1;
        if self.inv.is_archived(&l.key, self.statuses)? {
            c.known += 1;
            return Ok(());
        }
        let retries = self.target.retries;
        match row_for(self.store, retries, &self.breaker, l, self.read) {
            Ok((row, how)) => {
                self.inv.insert_backup(None, &row)?;
                c.added(how);
            }
            Err(e) => {
                crate::logging::say(format_args!("failed  {}: {}", l.key, e.message));
                c.failed += 1;
            }
        }
        Ok(())
    }
}

enum Proof {
    Checksum,
    Reading,
    None,
}

/// The row for one listed object, and what proves its SHA-256.
fn row_for(
    store: &dyn Store,
    retries: u32,
    breaker: &Breaker,
    l: &Listed,
    read: bool,
) -> std::result::Result<(BackupRow, Proof), StoreError> {
    let head = retry::with_retries(retries, breaker, || store.head(&l.key))?
        .ok_or_else(|| StoreError::permanent("gone since the listing"))?;
    let (sha256, proof, note) = if let Some(c) = head.checksum_sha256.clone() {
        (Some(c), Proof::Checksum, None)
    } else if read {
        let rb = retry::with_retries(retries, breaker, || store.hash_object(&l.key))?
            .ok_or_else(|| StoreError::permanent("gone since the listing"))?;
        (Some(rb.sha256), Proof::Reading, None)
    } else {
        let why = match &head.sha256 {
            Some(_) => "sha256 from the object's metadata only (no stored checksum)",
            None => "no stored checksum and no sha256 metadata",
        };
        (head.sha256.clone(), Proof::None, Some(why.to_string()))
    };
    let note = match (&head.sha256, &sha256) {
        (Some(m), Some(s)) if m != s => Some(format!(
            "the sha256 metadata {m} differs from the content's {s}"
        )),
        _ => note,
    };
    let status = match proof {
        Proof::None => Status::ReindexedUnproven,
        _ => Status::Reindexed,
    };
    let row = BackupRow {
        filename: l.key.rsplit('/').next().unwrap_or(&l.key).to_string(),
        s3_url: Some(store.url(&l.key)),
        sha256,
        uploaded_at: l
            .modified
            .map(timefmt::from_unix)
            .unwrap_or_else(SystemTime::now),
        status: status.as_str().to_string(),
        object_key: l.key.clone(),
        source_path: String::new(),
        size_bytes: head.size,
        duration_ms: 0,
        error: note,
    };
    Ok((row, proof))
}
