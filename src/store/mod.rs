//! Where archived files go: an S3 bucket or a directory, behind one trait so
//! the upload pipeline (skip-existing, verify, delete) is the same for both.

pub mod local;
pub mod s3;

use std::fs::File;
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::engine::advice::Advice;

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
    /// Object Lock: `GOVERNANCE` or `COMPLIANCE` while the object has a
    /// retention (`x-amz-object-lock-mode`); `None` for an unlocked object
    /// and in the directory store.
    pub lock_mode: Option<String>,
    /// The retention's end as the server wrote it
    /// (`x-amz-object-lock-retain-until-date`, ISO 8601, UTC).
    pub lock_until: Option<String>,
    /// A legal hold is on (`x-amz-object-lock-legal-hold: ON`): no delete
    /// until it is lifted, whatever the retention says.
    pub legal_hold: bool,
    /// When the object was written (Unix seconds): `Last-Modified`, or the
    /// file's mtime in the directory store.
    pub modified: Option<i64>,
}

/// One object as a listing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// Last modification (Unix seconds): when the object was written.
    pub modified: Option<i64>,
}

/// What reading an object back found: the size and SHA-256 of the bytes
/// that arrived (the proof), and what the store claims about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack {
    pub size: u64,
    pub sha256: String,
    /// The `sha256` metadata written with the object.
    pub meta_sha256: Option<String>,
    /// The server's own full-object checksum, when it keeps one.
    pub checksum_sha256: Option<String>,
    /// The identity of the file that was read, for a store on this machine
    /// (the directory store): a proof must never read the very file it is
    /// about to justify deleting (a hard link, bind or overlay mount of the
    /// source inside the store).
    pub identity: Option<crate::fsafe::FileId>,
}

/// Why streaming an object failed: the source broke off (worth retrying) or
/// the sink could not take the bytes (a local disk problem, not the store's).
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Chunk of the read-back loop: bounded memory whatever the object's size.
const READ_CHUNK: usize = 256 * 1024;

/// Copies `reader` into `sink`, hashing on the way; returns size and SHA-256.
pub fn stream_hashed(
    reader: &mut dyn Read,
    sink: &mut dyn Write,
) -> Result<(u64, String), CopyError> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
    Ok((total, crate::digest::hex(&hasher.finalize())))
}

/// What a successful PUT tells us about the object it created.
#[derive(Debug, Clone, Default)]
pub struct PutReceipt {
    /// [`RemoteObject::version`] of the object we created, when the store says.
    pub version: Option<String>,
}

/// Where the bytes of an upload come from.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    /// A small body in memory (`doctor`'s probe object).
    Memory(&'a [u8]),
    /// The source file, read with `pread` from the very descriptor that was
    /// hashed: its position is never used, so a retry needs no rewind.
    File(&'a File),
}

/// Everything one PUT needs, built once by the pipeline: the store adds its
/// own fixed headers (storage class, encryption) and sends it.
pub struct Upload<'a> {
    pub key: &'a str,
    pub body: Body<'a>,
    pub size: u64,
    /// SHA-256 (hex) of the whole body, taken when it was read.
    pub sha256: &'a str,
    /// For a multipart upload: the part size and each part's SHA-256, taken
    /// in the same read. `None`: one PUT.
    pub parts: Option<&'a crate::digest::Parts>,
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
    /// local file changed under us, or (when the server says so: `BadDigest`,
    /// `XAmzContentSHA256Mismatch`...) the bytes were damaged in flight.
    /// Sending the same request again would send the same bytes.
    Changed,
    /// The server refuses the credentials (expired, unknown, not allowed):
    /// every request with them fails alike, so several in a row end the run.
    Credentials,
    /// Anything else (400, missing bucket, disk full at the destination).
    Permanent,
}

/// A failed store operation with a one-line explanation.
#[derive(Debug, Clone)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
    /// When the endpoint, bucket or credentials are set up wrong: the
    /// problem and its fix apart (`message` is both on one line), so
    /// `doctor` can print the fix after `-> fix:`.
    pub advice: Option<Advice>,
    /// The server's answer, when there was one: its HTTP status and S3
    /// error code, kept from the engine's error for whoever decides next
    /// (retry, breaker, report) instead of only its words in `message`.
    pub answer: Option<Answer>,
}

/// An HTTP status and the S3 error code of its body (empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub code: String,
}

impl StoreError {
    fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            advice: None,
            answer: None,
        }
    }

    /// The same error, with the server's answer it came from.
    pub fn with_answer(mut self, answer: Option<Answer>) -> StoreError {
        self.answer = answer;
        self
    }
    /// A failure explained by [`crate::engine::advice::advise`].
    pub fn advised(kind: StoreErrorKind, advice: Advice) -> StoreError {
        StoreError {
            kind,
            message: advice.to_string(),
            advice: Some(advice),
            answer: None,
        }
    }
    pub fn transient(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Transient, message)
    }
    pub fn permanent(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Permanent, message)
    }
    pub fn changed(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Changed, message)
    }
    /// (The S3 store's unreachable failures are [`StoreError::advised`].)
    #[cfg(test)]
    pub fn unreachable(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Unreachable, message)
    }
    pub fn exists(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Exists, message)
    }
    /// The server refused the credentials (expired, wrong, not allowed).
    pub fn credentials(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Credentials, message)
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

    /// Reads the object back, streamed, and returns what was read (size,
    /// SHA-256): the only proof of what a store holds now. `Ok(None)` when
    /// it is gone.
    fn hash_object(&self, key: &str) -> Result<Option<ReadBack>, StoreError> {
        self.read_object(key, &mut io::sink())
    }

    /// Streams the object into `sink`, hashing it on the way, with what the
    /// store says about it. `Ok(None)` when it is gone. A retry must start
    /// with a fresh sink: part of the bytes may have been written.
    fn read_object(&self, key: &str, sink: &mut dyn Write) -> Result<Option<ReadBack>, StoreError>;

    /// Calls `each` for every object under `prefix`, in key order, except
    /// the store's own bookkeeping. Fails rather than give a partial list.
    fn list_all(&self, prefix: &str, each: &mut dyn FnMut(Listed)) -> Result<(), StoreError>;

    /// Deletes an object; used only for `fgbackup doctor`'s probe object.
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Stores the upload with `sha256` metadata, letting the destination
    /// verify the content where it can. Never replaces an existing object: if
    /// one is (or appears) there, fails with [`StoreErrorKind::Exists`].
    fn put(&self, upload: &Upload<'_>) -> Result<PutReceipt, StoreError>;

    /// Lists the keys under `prefix` in order, up to the first key past
    /// `last` or `max_pages` pages, calling `seen` for each. Answers
    /// whether every key up to `last` was seen: only then may a key missing
    /// from the listing be taken as absent. Stores where a lookup per key is
    /// as cheap as a listing answer `Ok(false)` without looking.
    fn list(
        &self,
        _prefix: &str,
        _last: &str,
        _max_pages: usize,
        _seen: &mut dyn FnMut(&str),
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}
