//! Signed, hash-chained manifests: after each upload run (and at least once
//! a day, even when nothing was archived, so a silent gap shows), one JSON
//! object under `PREFIX_manifests/HOST/YYYY/MM/DD/` lists the files
//! archived (and objects pruned) since the previous manifest, names the
//! previous manifest's key and SHA-256, and carries an Ed25519 signature
//! over its canonical bytes. CloudTrail's log-file integrity digests, for
//! syslog archives: removing, editing or reordering any manifest breaks a
//! link or a signature, and every object stays tied to its recorded hash.
//!
//! Canonical bytes: the manifest without its `signature` field, serialized
//! by serde_json (keys sorted, no spaces). The stored object is the same
//! document with `signature` added.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::db::{Entry, Expected, Inventory, ManifestRow};
use crate::digest::hex;
use crate::error::{Error, Result};
use crate::scan::{MANIFEST_DIR, PUBLIC_KEY_FILE};
use crate::sign::{self, Signer};
use crate::status::Status;
use crate::store::{Body, Store, StoreErrorKind, Upload};
use crate::timefmt;

/// The `format` field of every manifest this build writes.
const FORMAT: &str = "fgbackup-manifest-1";
/// A manifest is written at least this often, files or not.
pub const HEARTBEAT: Duration = Duration::from_secs(24 * 3600);
/// Statuses whose rows a manifest lists: objects this collector wrote or
/// proved. (`skipped_exists` repeats an object listed when it was written.)
const LISTED: &[Status] = &[Status::Uploaded, Status::FailedGzip, Status::Reindexed];

/// The host name as it appears in keys: anything but `[A-Za-z0-9._-]` is `_`.
pub fn host_segment() -> String {
    crate::host::hostname()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `PREFIX_manifests/HOST/`.
fn host_dir(prefix: &str, host: &str) -> String {
    format!("{prefix}{MANIFEST_DIR}{host}/")
}

/// Writes the next manifest if files were archived or pruned since the
/// last one, or the last one is older than [`HEARTBEAT`]. Returns its key.
pub fn write_next(
    store: &dyn Store,
    inv: &Inventory,
    prefix: &str,
    key_path: &std::path::Path,
) -> Result<Option<String>> {
    let signer = Signer::load(key_path)?;
    let host = host_segment();
    let dir = host_dir(prefix, &host);
    publish_public_key(store, &dir, &signer)?;
    let previous = match inv.last_manifest()? {
        Some(m) => Some(m),
        None => newest_in_store(store, &dir)?,
    };
    let after = previous.as_ref().map_or(0, |m| m.last_backup_id);
    let statuses: Vec<&str> = LISTED.iter().map(|s| s.as_str()).collect();
    let files = inv.archived_since(after, &statuses)?;
    let pruned = inv.unrecorded_prunes()?;
    let now = SystemTime::now();
    let stale = previous.as_ref().is_none_or(|m| {
        timefmt::parse_iso8601(&m.created_at)
            .is_none_or(|t| timefmt::unix_seconds(now) - t >= HEARTBEAT.as_secs() as i64)
    });
    if files.is_empty() && pruned.is_empty() && !stale {
        return Ok(None);
    }
    let created_at = timefmt::iso8601(now);
    let key = manifest_key(&dir, now);
    let bytes = document(
        &signer,
        &host,
        prefix,
        &created_at,
        previous.as_ref(),
        &files,
        &pruned,
    );
    let sha256 = hex(&Sha256::digest(&bytes));
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
    let last_backup_id = files.iter().map(|f| f.id).max().unwrap_or(after);
    let row = ManifestRow {
        key: key.clone(),
        sha256,
        created_at,
        last_backup_id,
    };
    let prune_ids: Vec<i64> = pruned.iter().map(|p| p.id).collect();
    inv.record_manifest(&row, files.len(), &prune_ids)?;
    Ok(Some(key))
}

/// `DIR/YYYY/MM/DD/YYYYMMDDTHHMMSS.mmmZ.json`: sorts in time order.
fn manifest_key(dir: &str, now: SystemTime) -> String {
    let iso = timefmt::iso8601(now);
    let millis = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    let compact: String = iso
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!(
        "{dir}{}/{}/{}/{compact}.{millis:03}Z.json",
        &iso[0..4],
        &iso[5..7],
        &iso[8..10]
    )
}

/// The signed document's bytes.
fn document(
    signer: &Signer,
    host: &str,
    prefix: &str,
    created_at: &str,
    previous: Option<&ManifestRow>,
    files: &[Entry],
    pruned: &[Entry],
) -> Vec<u8> {
    let entry =
        |e: &Entry, at: &str| json!({ "key": e.key, "size": e.size, "sha256": e.sha256, at: e.at });
    let mut doc = json!({
        "format": FORMAT,
        "host": host,
        "prefix": prefix,
        "created_at": created_at,
        "previous": previous.map(|p| json!({ "key": p.key, "sha256": p.sha256 })),
        "files": files.iter().map(|e| entry(e, "uploaded_at")).collect::<Vec<_>>(),
        "pruned": pruned.iter().map(|e| entry(e, "pruned_at")).collect::<Vec<_>>(),
        "public_key": signer.public_key(),
    });
    let canonical = serde_json::to_vec(&doc).unwrap_or_default();
    if let Value::Object(m) = &mut doc {
        m.insert("signature".into(), Value::from(signer.sign(&canonical)));
    }
    let mut bytes = serde_json::to_vec(&doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes `DIR/ed25519.pub` once; a different key already there is an
/// error: two keys signing one host's chain would make it unverifiable.
fn publish_public_key(store: &dyn Store, dir: &str, signer: &Signer) -> Result<()> {
    let key = format!("{dir}{PUBLIC_KEY_FILE}");
    let line = sign::public_key_line(&signer.public_key());
    let sha = hex(&Sha256::digest(line.as_bytes()));
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
            let there = store
                .get(&key)
                .map_err(|e| Error::runtime(format!("cannot read {key}: {}", e.message)))?;
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

/// The newest manifest of this host in the store, for a chain whose local
/// record was lost with the database.
fn newest_in_store(store: &dyn Store, dir: &str) -> Result<Option<ManifestRow>> {
    let mut newest = None;
    store
        .list_all(dir, &mut |l| {
            if l.key.ends_with(".json") {
                newest = Some(l.key);
            }
        })
        .map_err(|e| Error::runtime(e.message))?;
    let Some(key) = newest else { return Ok(None) };
    let bytes = store.get(&key).map_err(|e| Error::runtime(e.message))?;
    let created_at = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("created_at")?.as_str().map(String::from))
        .unwrap_or_default();
    Ok(Some(ManifestRow {
        key,
        sha256: hex(&Sha256::digest(&bytes)),
        created_at,
        last_backup_id: 0,
    }))
}

/// What walking the chains found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every object the chains record as archived and not pruned since.
    pub expected: Vec<Expected>,
    /// Every key any manifest names.
    pub known: HashSet<String>,
    /// One line per broken signature, link or missing manifest.
    pub problems: Vec<String>,
}

/// Walks every host's chain under `PREFIX_manifests/`, newest first.
pub fn walk_chains(
    store: &dyn Store,
    prefix: &str,
    pinned: Option<&str>,
    inv: &Inventory,
) -> Result<Walk> {
    let root = format!("{prefix}{MANIFEST_DIR}");
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    store
        .list_all(&root, &mut |l| {
            if let Some((host, _)) = l.key[root.len()..].split_once('/') {
                by_host.entry(host.to_string()).or_default().push(l.key);
            }
        })
        .map_err(|e| Error::runtime(e.message))?;
    let mut walk = Walk::default();
    let mut records: BTreeMap<String, (String, Expected)> = BTreeMap::new();
    if by_host.is_empty() {
        walk.problems.push(format!(
            "chain         {root}: no manifests under this prefix"
        ));
    }
    for (host, keys) in &by_host {
        walk_host(store, &root, host, keys, pinned, &mut walk, &mut records);
    }
    if let Some(m) = inv.last_manifest()?
        && !by_host.values().flatten().any(|k| *k == m.key)
    {
        walk.problems.push(format!(
            "chain         {}: the newest manifest this inventory wrote is gone from the archive",
            m.key
        ));
    }
    walk.expected = records.into_values().map(|(_, e)| e).collect();
    Ok(walk)
}

/// One host's chain: from its newest manifest back along `previous`, then
/// every manifest the walk did not reach.
fn walk_host(
    store: &dyn Store,
    root: &str,
    host: &str,
    keys: &[String],
    pinned: Option<&str>,
    walk: &mut Walk,
    records: &mut BTreeMap<String, (String, Expected)>,
) {
    let mut problem =
        |key: &str, why: String| walk.problems.push(format!("chain         {key}: {why}"));
    let Some(public) = host_public_key(store, root, host, pinned, &mut problem) else {
        return;
    };
    let manifests: Vec<&String> = keys.iter().filter(|k| k.ends_with(".json")).collect();
    let Some(newest) = manifests.last() else {
        problem(&format!("{root}{host}/"), "no manifests".into());
        return;
    };
    let seen = follow_chain(
        store,
        newest,
        &public,
        &mut walk.known,
        records,
        &mut problem,
    );
    unlinked(&manifests, &seen, &mut problem);
}

/// A manifest to read next: its key, and the SHA-256 its successor
/// recorded for it (none for the newest, which nothing names).
type Link = (String, Option<String>);

/// Follows `previous` links from `newest` until the chain ends, loops or
/// breaks; returns every manifest reached. Only manifests whose signature
/// verifies add to the expectations.
fn follow_chain(
    store: &dyn Store,
    newest: &str,
    public: &str,
    known: &mut HashSet<String>,
    records: &mut BTreeMap<String, (String, Expected)>,
    problem: &mut dyn FnMut(&str, String),
) -> HashSet<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut next: Option<Link> = Some((newest.to_string(), None));
    // Newest first: a key's first record is its latest, pruning included.
    let mut pruned: HashSet<String> = HashSet::new();
    while let Some((key, want_sha)) = next.take() {
        if !seen.insert(key.clone()) {
            problem(&key, "the chain loops back to this manifest".into());
            break;
        }
        let Some(bytes) = read_link(store, &key, want_sha, problem) else {
            break;
        };
        let (doc, trusted) = match check_signature(&bytes, public) {
            Ok(d) => (d, true),
            Err((d, why)) => {
                problem(&key, why);
                (d, false)
            }
        };
        // An unverified manifest's links are still followed, to check the
        // rest of the chain; its records are not trusted as expectations.
        if seen.len() == 1 {
            stale_check(&doc, &key, problem);
        }
        if trusted {
            collect(&doc, &key, known, records, &mut pruned);
        }
        next = previous_link(&doc, &key, problem);
    }
    seen
}

/// Reads one manifest of the chain. Its bytes must hash to what its
/// successor recorded (a problem line if not; the walk goes on). One that
/// cannot be read ends the walk: `None`.
fn read_link(
    store: &dyn Store,
    key: &str,
    want_sha: Option<String>,
    problem: &mut dyn FnMut(&str, String),
) -> Option<Vec<u8>> {
    let bytes = match store.get(key) {
        Ok(b) => b,
        Err(e) => {
            problem(
                key,
                format!("named as previous but cannot be read ({})", e.message),
            );
            return None;
        }
    };
    let sha = hex(&Sha256::digest(&bytes));
    if want_sha.as_ref().is_some_and(|w| *w != sha) {
        problem(
            key,
            format!(
                "sha256 {sha} differs from the {} its successor recorded (edited or replaced)",
                want_sha.unwrap_or_default()
            ),
        );
    }
    Some(bytes)
}

/// The manifest `doc` names as its previous one; `None` at the chain's
/// start, or (with a problem line) when the link is malformed.
fn previous_link(doc: &Doc, key: &str, problem: &mut dyn FnMut(&str, String)) -> Option<Link> {
    let next = doc.get("previous").and_then(|p| {
        Some((
            p.get("key")?.as_str()?.to_string(),
            p.get("sha256")?.as_str().map(String::from),
        ))
    });
    if next.is_none() && doc.get("previous").is_some_and(|p| !p.is_null()) {
        problem(key, "its previous link is malformed".into());
    }
    next
}

/// Every manifest of the host the walk from the newest did not reach: a
/// link was removed, or the manifest is forged.
fn unlinked(manifests: &[&String], seen: &HashSet<String>, problem: &mut dyn FnMut(&str, String)) {
    for k in manifests {
        if !seen.contains(k.as_str()) {
            problem(
                k,
                "not linked from the newest manifest (removed link, or a forged manifest)".into(),
            );
        }
    }
}

/// The key to check a host's signatures with: the pinned one, else the
/// copy the archive holds (a problem line when there is none).
fn host_public_key(
    store: &dyn Store,
    root: &str,
    host: &str,
    pinned: Option<&str>,
    problem: &mut dyn FnMut(&str, String),
) -> Option<String> {
    if let Some(p) = pinned {
        return Some(p.to_string());
    }
    let pub_key = format!("{root}{host}/{PUBLIC_KEY_FILE}");
    let found = store
        .get(&pub_key)
        .ok()
        .and_then(|b| sign::parse_public_key(&String::from_utf8_lossy(&b)));
    if found.is_none() {
        problem(
            &pub_key,
            "no public key to check signatures with (pass --public-key)".into(),
        );
    }
    found
}

/// A chain whose newest manifest is older than two heartbeats ends in a
/// gap: the collector stopped, or its newest manifests (and the objects
/// they list) were removed. Either way an auditor must hear of it.
fn stale_check(newest: &Doc, key: &str, problem: &mut dyn FnMut(&str, String)) {
    let created = newest
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(timefmt::parse_iso8601);
    let age = created.map(|t| timefmt::unix_seconds(SystemTime::now()) - t);
    let limit = 2 * HEARTBEAT.as_secs() as i64;
    if let Some(age) = age.filter(|a| *a > limit) {
        problem(
            key,
            format!(
                "the newest manifest is {} h old, but one is written at least daily: the collector stopped uploading, or newer manifests were removed",
                age / 3600
            ),
        );
    }
}

/// Parses a manifest and checks its signature over the canonical bytes;
/// on failure the parsed document (possibly empty) comes with the reason.
type Doc = Map<String, Value>;
fn check_signature(bytes: &[u8], public: &str) -> std::result::Result<Doc, (Doc, String)> {
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(bytes) else {
        return Err((Map::new(), "not a manifest (not a JSON object)".into()));
    };
    let Some(sig) = doc
        .remove("signature")
        .and_then(|s| s.as_str().map(String::from))
    else {
        return Err((doc, "unsigned manifest".into()));
    };
    let canonical = serde_json::to_vec(&Value::Object(doc.clone())).unwrap_or_default();
    if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err((doc, format!("unknown manifest format (expected {FORMAT})")));
    }
    if !sign::verify(public, &canonical, &sig) {
        return Err((
            doc,
            "signature does not verify with the public key (edited, or signed by another key)"
                .into(),
        ));
    }
    Ok(doc)
}

/// Adds a manifest's files (unless a newer manifest pruned or re-recorded
/// them) to the expectations.
fn collect(
    doc: &Map<String, Value>,
    manifest: &str,
    known: &mut HashSet<String>,
    records: &mut BTreeMap<String, (String, Expected)>,
    pruned: &mut HashSet<String>,
) {
    let list = |name: &str| {
        doc.get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for p in list("pruned") {
        if let Some(k) = p.get("key").and_then(Value::as_str) {
            known.insert(k.to_string());
            pruned.insert(k.to_string());
        }
    }
    for f in list("files") {
        let Some(key) = f.get("key").and_then(Value::as_str) else {
            continue;
        };
        known.insert(key.to_string());
        if pruned.contains(key) || records.contains_key(key) {
            continue;
        }
        let e = Expected {
            key: key.to_string(),
            size: f.get("size").and_then(Value::as_u64),
            sha256: f.get("sha256").and_then(Value::as_str).map(String::from),
            uploaded_at: f
                .get("uploaded_at")
                .and_then(Value::as_str)
                .map(String::from),
            first_uploaded_at: None,
            row_id: None,
        };
        records.insert(key.to_string(), (manifest.to_string(), e));
    }
}

/// After an upload run: writes the next manifest when `--manifest-key` is
/// set. A failure is logged as an error and never changes the run's rows.
pub fn after_run(cfg: &crate::config::UploadConfig) {
    let Some(key_path) = &cfg.manifest_key else {
        return;
    };
    if cfg.dry_run {
        return;
    }
    let result = super::archive::open_store(cfg).and_then(|store| {
        let inv = Inventory::open(&cfg.db_path)?;
        write_next(store.as_ref(), &inv, &cfg.prefix, key_path)
    });
    match result {
        Ok(Some(key)) => log::info!("manifest {key} written"),
        Ok(None) => log::debug!("no manifest needed: nothing archived since the last one"),
        Err(e) => log::error!("manifest not written: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(created_at: &str) -> Doc {
        let mut m = Map::new();
        m.insert("created_at".into(), Value::from(created_at));
        m
    }

    #[test]
    fn the_keys_written_have_the_shape_verify_leaves_to_the_chain() {
        let dir = host_dir("site-a/", &host_segment());
        let rest = |key: &str| key[format!("site-a/{MANIFEST_DIR}").len()..].to_string();
        let manifest = manifest_key(&dir, SystemTime::now());
        assert!(
            crate::scan::is_manifest_object(&rest(&manifest)),
            "{manifest}"
        );
        let public = format!("{dir}{PUBLIC_KEY_FILE}");
        assert!(crate::scan::is_manifest_object(&rest(&public)), "{public}");
    }

    #[test]
    fn a_chain_older_than_two_heartbeats_is_a_problem() {
        let fresh = timefmt::iso8601(SystemTime::now());
        let mut problems = Vec::new();
        let mut note = |k: &str, why: String| problems.push(format!("{k}: {why}"));
        stale_check(&doc(&fresh), "new.json", &mut note);
        stale_check(&doc("2026-01-01T00:00:00Z"), "old.json", &mut note);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("old.json: the newest manifest is"),
            "{problems:?}"
        );
    }
}
