//! Writing the chain: the last step of an upload run (and of a real
//! prune), under the run's lock, so two runs never link to the same
//! predecessor.
//!
//! A new manifest links to the newest manifest *in the store*, once that is
//! proven: the one this inventory recorded last (same SHA-256), or a newer
//! one this collector wrote and signed and whose record was lost (killed
//! between its PUT and its row), which is adopted rather than orphaned.
//! What cannot be proven is said, and the chain links to what the inventory
//! recorded, so `verify --manifests` shows the break where it is.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::{
    Doc, LISTED, PART, check_signature, fetch, host_dir, host_segment, manifest_key,
    older_than_heartbeat, sha256_hex,
};
use crate::error::{Error, Result};
use crate::inventory::{Entry, Inventory, ManifestRow};
use crate::scan::PUBLIC_KEY_FILE;
use crate::sign::{self, Signer};
use crate::store::{Body, Listed, Store, StoreErrorKind, Upload};
use crate::timefmt;

/// What a [`write_chain`] did: the chain's head afterwards (whether or not
/// a manifest was due), and what could not be proven on the way.
#[derive(Debug, Default)]
pub struct Written {
    /// The newest manifest of this host's chain under the prefix: what an
    /// auditor compares with a copy kept elsewhere (the run's summary,
    /// email and webhooks carry it).
    pub head: Option<ManifestRow>,
    /// Manifests written by this call.
    pub written: usize,
    /// Problems with the chain found before writing (a manifest gone,
    /// replaced, or not this collector's): each also logged as an error.
    pub problems: Vec<String>,
}

/// Writes the manifests due for `prefix`: everything archived or pruned
/// since the chain's head, [`PART`] entries per manifest, or one heartbeat
/// manifest when the head is older than a day.
pub fn write_chain(
    store: &dyn Store,
    inv: &Inventory,
    prefix: &str,
    key_path: &std::path::Path,
) -> Result<Written> {
    let signer = Signer::load(key_path)?;
    let host = host_segment();
    let dir = host_dir(prefix, &host);
    publish_public_key(store, &dir, &signer)?;
    let mut out = Written::default();
    let mut head = chain_head(store, inv, &dir, &signer, &mut out.problems)?;
    for p in &out.problems {
        log::error!("manifest chain {dir}: {p}");
    }
    let statuses: Vec<&str> = LISTED.iter().map(|s| s.as_str()).collect();
    let mut due = head
        .as_ref()
        .is_none_or(|h| older_than_heartbeat(&h.created_at));
    loop {
        let after = head.as_ref().map_or(0, |h| h.last_backup_id);
        let files = inv.archived_since(after, &statuses, prefix, PART)?;
        let pruned = inv.unrecorded_prunes(prefix, PART)?;
        if files.is_empty() && pruned.is_empty() && !due {
            break;
        }
        let sequence = next_sequence(inv, &dir, head.as_ref())?;
        let part = Part {
            signer: &signer,
            host: &host,
            prefix,
            dir: &dir,
            sequence,
            previous: head.as_ref(),
            after,
        };
        head = Some(part.write(store, inv, &files, &pruned)?);
        out.written += 1;
        due = false;
        if files.len() < PART && pruned.len() < PART {
            break;
        }
    }
    out.head = head;
    Ok(out)
}

/// The sequence number after `head`: one more than its own; after a
/// format-1 manifest (which had none), its place among the manifests this
/// inventory recorded for the chain.
fn next_sequence(inv: &Inventory, dir: &str, head: Option<&ManifestRow>) -> Result<i64> {
    Ok(match head {
        None => 1,
        Some(ManifestRow {
            sequence: Some(s), ..
        }) => s + 1,
        Some(_) => inv.manifests_under(dir)?.len() as i64 + 1,
    })
}

/// One manifest to write.
struct Part<'a> {
    signer: &'a Signer,
    host: &'a str,
    prefix: &'a str,
    dir: &'a str,
    sequence: i64,
    previous: Option<&'a ManifestRow>,
    /// The inventory row the previous manifest listed last.
    after: i64,
}

impl Part<'_> {
    /// Signs, stores and records one manifest; returns its row.
    fn write(
        &self,
        store: &dyn Store,
        inv: &Inventory,
        files: &[Entry],
        pruned: &[Entry],
    ) -> Result<ManifestRow> {
        let now = SystemTime::now();
        let created_at = timefmt::iso8601(now);
        let key = manifest_key(self.dir, now, self.sequence);
        let last_row = files.iter().map(|f| f.id).max().unwrap_or(self.after);
        let bytes = self.document(&key, &created_at, last_row, files, pruned);
        let sha256 = sha256_hex(&bytes);
        let upload = Upload {
            key: &key,
            body: Body::Memory(&bytes),
            size: bytes.len() as u64,
            sha256: &sha256,
            parts: None,
        };
        store
            .put(&upload)
            .map_err(|e| Error::runtime(format!("manifest {key} not written: {}", e.message)))?;
        let row = ManifestRow {
            key,
            sha256,
            created_at,
            last_backup_id: last_row,
            sequence: Some(self.sequence),
        };
        let prune_ids: Vec<i64> = pruned.iter().map(|p| p.id).collect();
        inv.record_manifest(&row, files.len(), &prune_ids)?;
        log::info!(
            "manifest {} written (sequence {}, {} file(s), {} pruned)",
            row.key,
            self.sequence,
            files.len(),
            pruned.len()
        );
        Ok(row)
    }

    /// The signed document's bytes.
    fn document(
        &self,
        key: &str,
        created_at: &str,
        last_row: i64,
        files: &[Entry],
        pruned: &[Entry],
    ) -> Vec<u8> {
        let entry = |e: &Entry, at: &str| json!({ "key": e.key, "size": e.size, "sha256": e.sha256, at: e.at });
        let mut doc = json!({
            "format": super::FORMAT,
            "host": self.host,
            "prefix": self.prefix,
            "key": key,
            "sequence": self.sequence,
            "created_at": created_at,
            "last_row": last_row,
            "previous": self.previous.map(|p| json!({ "key": p.key, "sha256": p.sha256 })),
            "files": files.iter().map(|e| entry(e, "uploaded_at")).collect::<Vec<_>>(),
            "pruned": pruned.iter().map(|e| entry(e, "pruned_at")).collect::<Vec<_>>(),
            "public_key": self.signer.public_key(),
        });
        let canonical = serde_json::to_vec(&doc).unwrap_or_default();
        if let Value::Object(m) = &mut doc {
            m.insert(
                "signature".into(),
                Value::from(self.signer.sign(&canonical)),
            );
        }
        let mut bytes = serde_json::to_vec(&doc).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Writes `DIR/ed25519.pub` once; a different key already there is an
/// error: two keys signing one host's chain would make it unverifiable.
fn publish_public_key(store: &dyn Store, dir: &str, signer: &Signer) -> Result<()> {
    let key = format!("{dir}{PUBLIC_KEY_FILE}");
    let line = sign::public_key_line(&signer.public_key());
    let sha = sha256_hex(line.as_bytes());
    let upload = Upload {
        key: &key,
        body: Body::Memory(line.as_bytes()),
        size: line.len() as u64,
        sha256: &sha,
        parts: None,
    };
    match store.put(&upload) {
        Ok(_) => Ok(()),
        Err(e) if e.kind == StoreErrorKind::Exists => {
            let there =
                fetch(store, &key, None).map_err(|why| Error::runtime(format!("{key} {why}")))?;
            if sign::parse_public_key(&String::from_utf8_lossy(&there)) == Some(signer.public_key())
            {
                Ok(())
            } else {
                Err(Error::runtime(format!(
                    "{key} holds another public key: this host's manifests are signed with a different key; use that key (--manifest-key) or another --prefix"
                )))
            }
        }
        Err(e) => Err(Error::runtime(format!("cannot write {key}: {}", e.message))),
    }
}

/// Unrecorded manifests read at most when looking for one to adopt: a run
/// killed between a manifest's PUT and its row leaves exactly one.
const ADOPT_CANDIDATES: usize = 4;

/// The newest manifest of the chain in `dir`, proven against the store
/// (see the module comment). Problems found are pushed to `problems`; the
/// head is then the inventory's record, so the break stays visible.
fn chain_head(
    store: &dyn Store,
    inv: &Inventory,
    dir: &str,
    signer: &Signer,
    problems: &mut Vec<String>,
) -> Result<Option<ManifestRow>> {
    let listed = manifests_in_store(store, dir)?;
    let recorded_rows = inv.manifests_under(dir)?;
    let recorded = recorded_rows.last().cloned();
    let known: std::collections::HashSet<&str> =
        recorded_rows.iter().map(|m| m.key.as_str()).collect();
    let unrecorded: Vec<&Listed> = listed
        .iter()
        .rev()
        .filter(|l| !known.contains(l.key.as_str()))
        .take(ADOPT_CANDIDATES)
        .collect();
    if let Some(m) = &recorded {
        match listed.iter().find(|l| l.key == m.key) {
            Some(l) => prove_recorded(store, m, l, problems),
            None => problems.push(format!(
                "{} (sequence {}), the newest manifest this inventory wrote, is gone from the store: removed or rolled back; the next manifest links to it anyway, so verify --manifests shows the break",
                m.key,
                m.sequence.map_or("?".into(), |s| s.to_string())
            )),
        }
    }
    for candidate in unrecorded {
        if let Some(row) = adoptable(store, signer, recorded.as_ref(), candidate, problems) {
            inv.record_manifest(&row, 0, &[])?;
            match &recorded {
                Some(_) => log::warn!(
                    "manifest {} was in the store but not in the inventory (a run ended between writing it and recording it): adopted",
                    row.key
                ),
                None => log::warn!(
                    "this inventory has no record of the chain in {dir} (rebuilt by reindex?): it goes on from the newest manifest in the store, {} (sequence {}, sha256 {}); a rollback before it cannot be seen from here: compare with the chain head of earlier notifications",
                    row.key,
                    row.sequence.map_or("-".into(), |s| s.to_string()),
                    row.sha256
                ),
            }
            return Ok(Some(row));
        }
    }
    Ok(recorded)
}

/// The recorded head must still hold its bytes in the store.
fn prove_recorded(store: &dyn Store, m: &ManifestRow, listed: &Listed, problems: &mut Vec<String>) {
    match fetch(store, &m.key, Some(listed.size)) {
        Ok(bytes) if sha256_hex(&bytes) == m.sha256 => {}
        Ok(bytes) => problems.push(format!(
            "{} holds other bytes (sha256 {}) than the manifest this inventory wrote there ({}): replaced or rolled back",
            m.key,
            sha256_hex(&bytes),
            m.sha256
        )),
        Err(why) => problems.push(format!("{} {why}", m.key)),
    }
}

/// A manifest in the store the inventory did not record, as a row to
/// adopt: signed with our key, written at its own key, and following the
/// recorded head (or, with no record at all: a rebuilt inventory, any
/// manifest of ours). A candidate that is none of these is left to
/// `verify --manifests` to report; one that is ours but does not follow
/// is a problem.
fn adoptable(
    store: &dyn Store,
    signer: &Signer,
    recorded: Option<&ManifestRow>,
    candidate: &Listed,
    problems: &mut Vec<String>,
) -> Option<ManifestRow> {
    let key = &candidate.key;
    let bytes = fetch(store, key, Some(candidate.size)).ok()?;
    let doc: Doc = check_signature(&bytes, &signer.public_key()).trusted()?;
    let follows = match (recorded, &doc.previous) {
        (None, _) => true,
        (Some(m), Some(p)) => p.key == m.key && p.sha256 == m.sha256,
        (Some(_), None) => false,
    };
    if !follows || doc.key.as_deref().is_some_and(|k| k != key) {
        problems.push(format!(
            "{key} is signed with this collector's key but is not the successor of {}: replayed, or written by another collector with this key",
            recorded.map_or("the chain's start", |m| m.key.as_str())
        ));
        return None;
    }
    // Its rows: this inventory's when it follows its record (a run killed
    // between the manifest's PUT and its row); a rebuilt inventory's ids
    // mean nothing to it, so everything is listed again after it.
    let last_backup_id = match recorded {
        Some(m) => doc.last_row.unwrap_or(m.last_backup_id),
        None => 0,
    };
    Some(ManifestRow {
        key: key.clone(),
        sha256: sha256_hex(&bytes),
        created_at: doc.created_at.clone(),
        last_backup_id,
        sequence: doc.sequence,
    })
}

/// The manifest objects of the chain in `dir`, in key order (as many as
/// runs: a few thousand, not the archive).
fn manifests_in_store(store: &dyn Store, dir: &str) -> Result<Vec<Listed>> {
    let mut found = Vec::new();
    store
        .list_all(dir, &mut |l| {
            if l.key.ends_with(".json") {
                found.push(l);
            }
        })
        .map_err(|e| Error::runtime(e.message))?;
    Ok(found)
}
