//! Walking the chains for `verify --manifests`: every host's chain under
//! the prefix from its newest manifest back, each signature and link, the
//! sequence numbers and each manifest's own key (a rollback or a replay
//! shows), and the manifests this inventory recorded (one missing, or with
//! other bytes, is a rollback the chain alone cannot show). What the chain
//! records goes into a scratch database, not memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use super::{Doc, HEARTBEAT, check_signature, fetch, older_than_heartbeat, sha256_hex};
use crate::error::{Error, Result};
use crate::inventory::{Expected, Inventory, Scratch};
use crate::scan::{MANIFEST_DIR, PUBLIC_KEY_FILE};
use crate::sign;
use crate::store::Store;
use crate::timefmt;

/// What walking the chains found.
pub struct Walk {
    /// Every object the chains record as archived and not pruned since,
    /// and every key any manifest names.
    pub expected: Scratch,
    /// One line per broken signature, link, sequence or missing manifest.
    pub problems: Vec<String>,
    /// Each host's newest manifest: what an auditor compares with the copy
    /// of the run notifications kept elsewhere.
    pub heads: Vec<ChainHead>,
    /// What this walk could not check (no record of a chain in the
    /// inventory), said but no failure.
    pub notes: Vec<String>,
}

/// The newest manifest of one host's chain.
#[derive(Debug, Clone)]
pub struct ChainHead {
    pub host: String,
    pub key: String,
    pub sha256: String,
    pub sequence: Option<i64>,
    pub created_at: String,
}

/// One host's manifest objects, with their listed sizes, in key order.
type HostObjects = Vec<(String, u64)>;

/// Walks every host's chain under `PREFIX_manifests/`, newest first.
pub fn walk_chains(
    store: &dyn Store,
    prefix: &str,
    pinned: Option<&str>,
    inv: &Inventory,
) -> Result<Walk> {
    let root = format!("{prefix}{MANIFEST_DIR}");
    let mut by_host: BTreeMap<String, HostObjects> = BTreeMap::new();
    store
        .list_all(&root, &mut |l| {
            if let Some((host, _)) = l.key[root.len()..].split_once('/') {
                by_host
                    .entry(host.to_string())
                    .or_default()
                    .push((l.key, l.size));
            }
        })
        .map_err(|e| Error::runtime(e.message))?;
    let mut walk = Walk {
        expected: Scratch::new()?,
        problems: Vec::new(),
        heads: Vec::new(),
        notes: Vec::new(),
    };
    if by_host.is_empty() {
        walk.problems
            .push(chain_line(&root, "no manifests under this prefix"));
    }
    chains_gone(inv, &root, &by_host, &mut walk.problems)?;
    for (host, objects) in &by_host {
        let mut chain = Chain {
            store,
            dir: format!("{root}{host}/"),
            host,
            sizes: objects.iter().cloned().collect(),
            read: HashMap::new(),
            walk: &mut walk,
        };
        chain.check(objects, pinned, inv)?;
    }
    walk.expected.commit()?;
    Ok(walk)
}

/// One host's chain being walked.
struct Chain<'a> {
    store: &'a dyn Store,
    dir: String,
    host: &'a str,
    /// Listed size of every object in the host's directory.
    sizes: HashMap<String, u64>,
    /// SHA-256 of every manifest read so far.
    read: HashMap<String, String>,
    walk: &'a mut Walk,
}

/// A manifest to read next: its key, the SHA-256 its successor recorded
/// for it (none for the newest), and the sequence it must have.
struct Next {
    key: String,
    sha256: Option<String>,
    sequence: Option<i64>,
}

impl Chain<'_> {
    fn problem(&mut self, key: &str, why: String) {
        self.walk.problems.push(chain_line(key, &why));
    }

    /// The chain from its newest manifest, the manifests it does not
    /// reach, and the inventory's record of it.
    fn check(
        &mut self,
        objects: &HostObjects,
        pinned: Option<&str>,
        inv: &Inventory,
    ) -> Result<()> {
        let Some(public) = self.public_key(pinned) else {
            return Ok(());
        };
        let manifests: Vec<&String> = objects
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.ends_with(".json"))
            .collect();
        let Some(newest) = manifests.last() else {
            let dir = self.dir.clone();
            self.problem(&dir, "no manifests".into());
            return Ok(());
        };
        let seen = self.follow(newest, &public)?;
        for k in manifests.iter().filter(|k| !seen.contains(k.as_str())) {
            self.problem(
                k,
                "not linked from the newest manifest (removed link, or a forged manifest)".into(),
            );
        }
        self.against_inventory(inv)
    }

    /// The key to check signatures with: the pinned one, else the copy the
    /// archive holds (a problem line when there is none).
    fn public_key(&mut self, pinned: Option<&str>) -> Option<String> {
        if let Some(p) = pinned {
            return Some(p.to_string());
        }
        let key = format!("{}{PUBLIC_KEY_FILE}", self.dir);
        let found = fetch(self.store, &key, self.sizes.get(&key).copied())
            .ok()
            .and_then(|b| sign::parse_public_key(&String::from_utf8_lossy(&b)));
        if found.is_none() {
            self.problem(
                &key,
                "no public key to check signatures with (pass --public-key)".into(),
            );
        }
        found
    }

    /// Follows `previous` links from `newest` until the chain ends, loops
    /// or breaks; returns every manifest reached. Only manifests whose
    /// signature verifies add to the expectations.
    fn follow(&mut self, newest: &str, public: &str) -> Result<HashSet<String>> {
        let mut seen = HashSet::new();
        let mut next = Some(Next {
            key: newest.to_string(),
            sha256: None,
            sequence: None,
        });
        while let Some(link) = next.take() {
            if !seen.insert(link.key.clone()) {
                self.problem(&link.key, "the chain loops back to this manifest".into());
                break;
            }
            let Some(bytes) = self.read_link(&link) else {
                break;
            };
            let signed = check_signature(&bytes, public);
            if let Some(why) = &signed.untrusted {
                self.problem(&link.key, why.clone());
            }
            let trusted = signed.untrusted.is_none();
            let Some(doc) = signed.doc else {
                break;
            };
            self.check_place(&link, &doc);
            if seen.len() == 1 {
                self.head(&link.key, &bytes, &doc);
            }
            if trusted {
                self.collect(&doc)?;
            }
            next = self.previous(&link, &doc);
        }
        Ok(seen)
    }

    /// Reads one manifest of the chain. Its bytes must hash to what its
    /// successor recorded (a problem line if not; the walk goes on). One
    /// that cannot be read ends the walk: `None`.
    fn read_link(&mut self, link: &Next) -> Option<Vec<u8>> {
        let size = self.sizes.get(&link.key).copied();
        let bytes = match fetch(self.store, &link.key, size) {
            Ok(b) => b,
            Err(why) => {
                let what = match link.sha256 {
                    Some(_) => "named as previous but",
                    None => "the newest manifest",
                };
                self.problem(&link.key, format!("{what} {why}"));
                return None;
            }
        };
        let sha = sha256_hex(&bytes);
        self.read.insert(link.key.clone(), sha.clone());
        if let Some(want) = link.sha256.as_ref().filter(|w| **w != sha) {
            self.problem(
                &link.key,
                format!("sha256 {sha} differs from the {want} its successor recorded (edited or replaced)"),
            );
        }
        Some(bytes)
    }

    /// Format 2: a manifest must sit at the key it was written for (one
    /// copied over another's key is a replay) and carry the sequence number
    /// its successor implies (a gap is a removed manifest).
    fn check_place(&mut self, link: &Next, doc: &Doc) {
        if let Some(own) = doc.key.as_deref().filter(|k| *k != link.key) {
            self.problem(
                &link.key,
                format!("holds the manifest written as {own}: moved or replayed (a rollback)"),
            );
        }
        if let (Some(want), Some(got)) = (link.sequence, doc.sequence)
            && want != got
        {
            self.problem(
                &link.key,
                format!("has sequence {got} where its successor implies {want}: manifests were removed or replayed"),
            );
        }
        if doc.previous.is_none()
            && let Some(s) = doc.sequence.filter(|s| *s != 1)
        {
            self.problem(
                &link.key,
                format!("starts the chain at sequence {s}: the manifests before it were removed"),
            );
        }
    }

    /// Records the chain's head, and says when it ends in a gap: older than
    /// two heartbeats, the collector stopped or newer manifests (and the
    /// objects they list) were removed.
    fn head(&mut self, key: &str, bytes: &[u8], doc: &Doc) {
        self.walk.heads.push(super::ChainHead {
            host: self.host.to_string(),
            key: key.to_string(),
            sha256: sha256_hex(bytes),
            sequence: doc.sequence,
            created_at: doc.created_at.clone(),
        });
        if let Some(why) = stale(&doc.created_at) {
            self.problem(key, why);
        }
    }

    /// Adds a manifest's files (unless a newer manifest pruned or recorded
    /// them again) to the expectations. Within one manifest a key can be
    /// both pruned and archived (pruned, then archived again before the
    /// next manifest): the file counts unless it was pruned after it was
    /// archived. Its prunes then hide the key's records in older manifests.
    fn collect(&mut self, doc: &Doc) -> Result<()> {
        let s = &self.walk.expected;
        let pruned_at: HashMap<&str, &str> = doc
            .pruned
            .iter()
            .map(|p| (p.key.as_str(), p.pruned_at.as_deref().unwrap_or("")))
            .collect();
        for f in &doc.files {
            let uploaded = f.uploaded_at.as_deref().unwrap_or("");
            if pruned_at.get(f.key.as_str()).is_some_and(|p| *p > uploaded) {
                continue;
            }
            s.expect(&Expected {
                key: f.key.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                uploaded_at: f.uploaded_at.clone(),
                first_uploaded_at: None,
                row_id: None,
            })?;
        }
        for p in &doc.pruned {
            s.mask(&p.key)?;
        }
        Ok(())
    }

    /// The manifest `doc` names as its previous one; `None` at the start.
    fn previous(&self, link: &Next, doc: &Doc) -> Option<Next> {
        let p = doc.previous.as_ref()?;
        Some(Next {
            key: p.key.clone(),
            sha256: Some(p.sha256.clone()),
            sequence: doc.sequence.or(link.sequence).map(|s| s - 1),
        })
    }

    /// What this inventory recorded of the chain: each manifest it wrote
    /// must still be there with the same bytes (a newest one gone, or an
    /// older one copied over it, is a rollback). An inventory with no
    /// record (rebuilt by reindex) cannot tell; that is said.
    fn against_inventory(&mut self, inv: &Inventory) -> Result<()> {
        let rows = inv.manifests_under(&self.dir)?;
        if rows.is_empty() {
            self.walk.notes.push(format!(
                "{}: this inventory has no record of these manifests (rebuilt by reindex, or another collector's): a rollback of the newest ones cannot be seen here; compare the chain head with the one in the run notifications",
                self.dir
            ));
            return Ok(());
        }
        for m in rows {
            let sha = match self.read.get(&m.key) {
                Some(s) => Some(s.clone()),
                None if self.sizes.contains_key(&m.key) => {
                    fetch(self.store, &m.key, self.sizes.get(&m.key).copied())
                        .ok()
                        .map(|b| sha256_hex(&b))
                }
                None => None,
            };
            match sha {
                None => self.problem(
                    &m.key,
                    format!(
                        "a manifest this inventory wrote (sequence {}) is gone from the archive: removed or rolled back",
                        m.sequence.map_or("?".into(), |s| s.to_string())
                    ),
                ),
                Some(s) if s != m.sha256 => self.problem(
                    &m.key,
                    format!(
                        "holds other bytes (sha256 {s}) than the manifest this inventory wrote there ({}): replaced or rolled back",
                        m.sha256
                    ),
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The chains this inventory wrote under `root` of which the archive has
/// nothing left: a whole host directory removed (the walk, which starts
/// from what is listed, would not see it).
fn chains_gone(
    inv: &Inventory,
    root: &str,
    listed: &BTreeMap<String, HostObjects>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let mut by_host: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for m in inv.manifests_under(root)? {
        if let Some((host, _)) = m.key[root.len()..].split_once('/') {
            let e = by_host.entry(host.to_string()).or_default();
            e.0 += 1;
            e.1 = m.key;
        }
    }
    for (host, (n, newest)) in by_host {
        if !listed.contains_key(&host) {
            problems.push(chain_line(
                &format!("{root}{host}/"),
                &format!(
                    "the {n} manifest(s) this inventory wrote for this host (the newest {newest}) are all gone from the archive: removed"
                ),
            ));
        }
    }
    Ok(())
}

/// `chain         KEY: WHY`, a chain problem as verify prints it.
fn chain_line(key: &str, why: &str) -> String {
    format!("chain         {key}: {why}")
}

/// Why a chain whose newest manifest was written at `created_at` ends in
/// a gap, if it does.
fn stale(created_at: &str) -> Option<String> {
    let created = timefmt::parse_iso8601(created_at)?;
    let age = timefmt::unix_seconds(SystemTime::now()) - created;
    let limit = 2 * HEARTBEAT.as_secs() as i64;
    (age > limit && older_than_heartbeat(created_at)).then(|| {
        format!(
            "the newest manifest is {} h old, but one is written at least daily: the collector stopped uploading, or newer manifests were removed",
            age / 3600
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_older_than_two_heartbeats_is_a_problem() {
        let fresh = timefmt::iso8601(SystemTime::now());
        assert_eq!(stale(&fresh), None);
        let why = stale("2026-01-01T00:00:00Z").unwrap();
        assert!(why.starts_with("the newest manifest is"), "{why}");
    }
}
