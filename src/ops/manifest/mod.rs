//! Signed, hash-chained manifests: after each upload run (and at least once
//! a day, even when nothing was archived, so a silent gap shows), one JSON
//! object under `PREFIX_manifests/HOST/YYYY/MM/DD/` lists the files
//! archived (and objects pruned) since the previous manifest, names the
//! previous manifest's key and SHA-256, and carries an Ed25519 signature
//! over its canonical bytes. CloudTrail's log-file integrity digests, for
//! syslog archives: removing, editing or reordering any manifest breaks a
//! link or a signature, and every object stays tied to its recorded hash.
//!
//! Format 2 adds what a rollback would otherwise hide: each manifest's own
//! key and its sequence number in the chain (a manifest copied over a newer
//! one's key says where it was written; a gap in the sequence shows), and
//! the inventory records the SHA-256 of every manifest it wrote. A run that
//! archives more than [`PART`] files writes several manifests in a row, so
//! no manifest outgrows what a reader accepts ([`MAX_BYTES`]) and memory
//! stays bounded at any inventory size.
//!
//! Canonical bytes: the manifest without its `signature` field, serialized
//! by serde_json (keys sorted, no spaces). The stored object is the same
//! document with `signature` added: as the last key in sorted order, the
//! canonical bytes are the stored ones with that member cut out, so a
//! reader checks the signature without re-serializing the document.

mod walk;
mod write;

pub use walk::{ChainHead, walk_chains};
pub use write::write_chain;

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::inventory::status::Status;
use crate::scan::MANIFEST_DIR;
use crate::store::{Store, StoreError};
use crate::timefmt;

/// The `format` field of every manifest this build writes.
const FORMAT: &str = "fgbackup-manifest-2";
/// The format of earlier builds, still read (no key, no sequence).
const FORMAT_1: &str = "fgbackup-manifest-1";
/// A manifest is written at least this often, files or not.
pub const HEARTBEAT: Duration = Duration::from_secs(24 * 3600);
/// Files (and, separately, pruned objects) listed in one manifest at most:
/// about 1 MB of JSON, far below [`MAX_BYTES`].
const PART: usize = 5000;
/// The largest object read as a manifest: anything bigger (a planted
/// gigabyte under `_manifests/`) is reported, never read whole. Format 1
/// manifests of runs with more than about 80,000 files exceed it.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
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

/// `PREFIX_manifests/HOST/`: one chain per prefix and host.
fn host_dir(prefix: &str, host: &str) -> String {
    format!("{prefix}{MANIFEST_DIR}{host}/")
}

/// `DIR/YYYY/MM/DD/YYYYMMDDTHHMMSS.mmmZ-SEQUENCE.json`: sorts in time
/// order, and the parts of one run (same millisecond) by sequence.
fn manifest_key(dir: &str, now: SystemTime, sequence: i64) -> String {
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
        "{dir}{}/{}/{}/{compact}.{millis:03}Z-{sequence:08}.json",
        &iso[0..4],
        &iso[5..7],
        &iso[8..10]
    )
}

/// A manifest as read: the fields any check needs. Unknown fields are
/// ignored; a duplicated field makes it no manifest.
#[derive(Debug, Deserialize)]
struct Doc {
    format: String,
    #[serde(default)]
    created_at: String,
    /// Format 2: the key it was written at.
    key: Option<String>,
    /// Format 2: its place in the chain, from 1.
    sequence: Option<i64>,
    /// Format 2: the last inventory row it lists (for adoption).
    last_row: Option<i64>,
    previous: Option<Link>,
    #[serde(default)]
    files: Vec<Record>,
    #[serde(default)]
    pruned: Vec<Record>,
}

/// The `previous` member: the manifest before this one.
#[derive(Debug, Deserialize)]
struct Link {
    key: String,
    sha256: String,
}

/// One file (or pruned object) a manifest lists.
#[derive(Debug, Deserialize)]
struct Record {
    key: String,
    size: Option<u64>,
    sha256: Option<String>,
    uploaded_at: Option<String>,
    /// For a pruned object: when it was removed.
    pruned_at: Option<String>,
}

/// The stored bytes split into the signed (canonical) bytes and the
/// signature, or `None` when they do not end in a `signature` member.
fn split_signature(bytes: &[u8]) -> Option<(Vec<u8>, String)> {
    const MEMBER: &[u8] = b",\"signature\":\"";
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let body = body.strip_suffix(b"\"}")?;
    let at = body.windows(MEMBER.len()).rposition(|w| w == MEMBER)?;
    let sig = &body[at + MEMBER.len()..];
    if sig.is_empty()
        || !sig
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return None;
    }
    let mut canonical = body[..at].to_vec();
    canonical.push(b'}');
    Some((canonical, String::from_utf8_lossy(sig).into_owned()))
}

/// A manifest as parsed, and why it cannot be trusted, if it cannot.
struct Signed {
    /// The document, when the bytes parse as one (an untrusted one's links
    /// are still followed, to check the rest of the chain).
    doc: Option<Doc>,
    /// Why it is not trusted: not a manifest, unsigned, a bad signature.
    untrusted: Option<String>,
}

impl Signed {
    /// The document, only when its signature verified.
    fn trusted(self) -> Option<Doc> {
        self.doc.filter(|_| self.untrusted.is_none())
    }
}

/// Parses a manifest and checks its signature over the canonical bytes.
fn check_signature(bytes: &[u8], public: &str) -> Signed {
    let doc = match serde_json::from_slice::<Doc>(bytes) {
        Ok(d) => d,
        Err(e) => {
            return Signed {
                doc: None,
                untrusted: Some(format!("not a manifest ({e})")),
            };
        }
    };
    let untrusted = if doc.format != FORMAT && doc.format != FORMAT_1 {
        Some(format!(
            "unknown manifest format (expected {FORMAT} or {FORMAT_1})"
        ))
    } else {
        match split_signature(bytes) {
            None => Some("unsigned manifest".into()),
            Some((canonical, sig)) if !crate::sign::verify(public, &canonical, &sig) => Some(
                "signature does not verify with the public key (edited, or signed by another key)"
                    .into(),
            ),
            Some(_) => None,
        }
    };
    Signed {
        doc: Some(doc),
        untrusted,
    }
}

/// Reads the manifest at `key` whole, at most [`MAX_BYTES`] (its listed
/// size, when known, is checked first): the bytes, or why they are not a
/// manifest's.
fn fetch(
    store: &dyn Store,
    key: &str,
    listed_size: Option<u64>,
) -> std::result::Result<Vec<u8>, Unreadable> {
    if let Some(n) = listed_size.filter(|n| *n > MAX_BYTES) {
        return Err(Unreadable::TooBig(n));
    }
    let mut sink = Capped {
        data: Vec::new(),
        over: false,
    };
    match store.read_object(key, &mut sink) {
        Ok(Some(_)) => Ok(sink.data),
        Ok(None) => Err(Unreadable::NotFound),
        Err(_) if sink.over => Err(Unreadable::TooBig(MAX_BYTES + 1)),
        Err(e) => Err(Unreadable::Store(e)),
    }
}

/// Why a manifest's bytes were not read; the line names the key before it.
#[derive(Debug)]
pub enum Unreadable {
    /// Over [`MAX_BYTES`] (listed, or found while reading): never read whole.
    TooBig(u64),
    NotFound,
    /// The store's error (HTTP status, S3 code kept).
    Store(StoreError),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::TooBig(n) => write!(
                f,
                "{n} bytes: larger than a manifest may be ({MAX_BYTES} bytes); not read"
            ),
            Unreadable::NotFound => f.write_str("cannot be read (not found)"),
            Unreadable::Store(e) => write!(f, "cannot be read ({})", e.message),
        }
    }
}

/// Keeps the bytes of a read up to [`MAX_BYTES`], then refuses more.
struct Capped {
    data: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.data.len() + buf.len()) as u64 > MAX_BYTES {
            self.over = true;
            return Err(std::io::Error::other("larger than a manifest may be"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Whether a manifest written at `created_at` is older than the heartbeat.
fn older_than_heartbeat(created_at: &str) -> bool {
    let now = timefmt::unix_seconds(SystemTime::now());
    timefmt::parse_iso8601(created_at).is_none_or(|t| now - t >= HEARTBEAT.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_written_have_the_shape_verify_leaves_to_the_chain() {
        let dir = host_dir("site-a/", &host_segment());
        let rest = |key: &str| key[format!("site-a/{MANIFEST_DIR}").len()..].to_string();
        let manifest = manifest_key(&dir, SystemTime::now(), 7);
        assert!(
            crate::scan::is_manifest_object(&rest(&manifest)),
            "{manifest}"
        );
        let public = format!("{dir}{}", crate::scan::PUBLIC_KEY_FILE);
        assert!(crate::scan::is_manifest_object(&rest(&public)), "{public}");
    }

    #[test]
    fn the_signed_bytes_are_the_stored_ones_without_the_signature() {
        let doc = serde_json::json!({"a": 1, "format": FORMAT, "sequence": 2});
        let canonical = serde_json::to_vec(&doc).unwrap();
        let mut signed = doc.clone();
        signed["signature"] = serde_json::Value::from("c2ln+/=");
        let mut stored = serde_json::to_vec(&signed).unwrap();
        stored.push(b'\n');
        let (c, sig) = split_signature(&stored).unwrap();
        assert_eq!(c, canonical);
        assert_eq!(sig, "c2ln+/=");
        assert!(split_signature(b"{\"a\":1}\n").is_none());
        assert!(split_signature(b"{\"signature\":\"x\",\"z\":\"y\"}").is_none());
    }
}
