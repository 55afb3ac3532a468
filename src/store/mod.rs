//! Where archived files go: an S3 bucket or a directory, behind one trait so
//! the upload pipeline (skip-existing, verify, delete) is the same for both.

pub mod local;
pub mod s3;

use std::fs::File;
use std::sync::Arc;

use crate::budget::MemoryBudget;

/// What a HEAD request (or its local equivalent) says about a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteObject {
    pub size: u64,
    /// The `sha256` metadata written with the object, if any. Anyone who can
    /// write the object can also write this: it names the content, it does
    /// not prove it.
    pub sha256: Option<String>,
    /// The server's own full-object SHA-256 (hex), computed from the bytes it
    /// received, when it keeps one (`x-amz-checksum-sha256`, checksum mode).
    pub checksum_sha256: Option<String>,
    /// Names this very version of the object: the S3 ETag, or device and
    /// inode for the directory store. A writer that replaced the object
    /// after our PUT changes it.
    pub version: Option<String>,
}

/// What a successful PUT tells us about the object it created.
#[derive(Debug, Clone, Default)]
pub struct PutReceipt {
    /// [`RemoteObject::version`] of the object we created, when the store says.
    pub version: Option<String>,
}

/// The content to store.
pub enum Body<'a> {
    /// A small file already read whole (and hashed from these very bytes).
    Memory(&'a [u8]),
    /// A large file streamed from disk in parts; its bytes are hashed again on
    /// the way out and must match the expected digest.
    File { file: &'a mut File, size: u64 },
}

/// How a store operation failed; the pipeline's retry and status depend on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Network trouble, timeouts, 5xx, 429: worth retrying.
    Transient,
    /// The endpoint cannot be reached at all (connection refused, no route):
    /// worth retrying, and several in a row end the run early.
    Unreachable,
    /// The key was free when probed but an object appeared there before our
    /// write (S3 412 to `If-None-Match: *`, `EEXIST` from `link`): someone
    /// else's object, never replaced.
    Exists,
    /// The bytes read for upload do not match the digest taken earlier: the
    /// local file changed under us.
    Changed,
    /// Anything else (403, 400, missing bucket, disk full at the destination).
    Permanent,
}

/// A failed store operation with a one-line explanation.
#[derive(Debug, Clone)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn transient(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Transient,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Permanent,
            message: message.into(),
        }
    }
    pub fn changed(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Changed,
            message: message.into(),
        }
    }
    pub fn unreachable(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Unreachable,
            message: message.into(),
        }
    }
    pub fn exists(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Exists,
            message: message.into(),
        }
    }

    /// Whether repeating the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::Transient | StoreErrorKind::Unreachable
        )
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An archive destination. Implementations are shared by all workers.
pub trait Store: Send + Sync {
    /// Human-readable destination, e.g. `s3://logs at http://minio:9000`.
    fn describe(&self) -> String;

    /// The base URL (no presign) recorded in `s3_url` for `key`.
    fn url(&self, key: &str) -> String;

    /// Checks once per run that the destination exists and is reachable, so a
    /// missing bucket is one clear error instead of one failure per file.
    fn check(&self) -> Result<(), StoreError>;

    /// Looks up `key`; `Ok(None)` when it does not exist.
    fn head(&self, key: &str) -> Result<Option<RemoteObject>, StoreError>;

    /// Reads a whole (small) object back; used by `fgbackup doctor`'s probe.
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;

    /// Whether reading an object back costs about as much as writing it
    /// did (a local directory), so verification reads every upload back.
    fn read_back_is_cheap(&self) -> bool {
        false
    }

    /// Reads the object back, streamed, and returns its size and SHA-256:
    /// the only proof of what a store holds now. `Ok(None)` when it is gone.
    fn hash_object(&self, key: &str) -> Result<Option<(u64, String)>, StoreError>;

    /// Deletes an object; used only for `fgbackup doctor`'s probe object.
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Stores `body` at `key` with `sha256` metadata, letting the destination
    /// verify the content where it can. Never replaces an existing object: if
    /// one is (or appears) there, fails with [`StoreErrorKind::Exists`].
    /// Large bodies draw buffers from `budget`.
    fn put(
        &self,
        key: &str,
        body: Body<'_>,
        sha256: &str,
        budget: &Arc<MemoryBudget>,
    ) -> Result<PutReceipt, StoreError>;
}
