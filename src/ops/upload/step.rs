//! One file's way into the archive, as a chain of typed steps:
//!
//! open → digest → place (probe the key) → put → verify → settle
//!
//! Each step takes the previous state and returns the next one or a
//! [`Failed`] carrying the status to record and why. Each safety rule lives
//! in exactly one step:
//!
//! - [`open`]: the file is reached without following links and is the
//!   regular file the scan saw; every later byte comes from this descriptor.
//! - [`digest`]: one read, hashed; the file must not change while read.
//! - [`place`]: an existing object is skipped only if it is ours; a foreign
//!   one is never replaced (or, with `--on-conflict suffix`, the file goes to
//!   a key carrying its hash).
//! - [`prove`]: before a delete relies on an object that was already there,
//!   its bytes are read back and hashed.
//! - [`put`] never replaces an object; [`verify`] checks that the stored
//!   object is the very one we wrote and holds our bytes.
//! - [`settle`]: the file is still, byte for byte, what was read.
//!
//! Deleting is not a step here: the writer does it after the row is
//! committed, and only through [`fsafe::Opened::unlink_if`].

use std::time::{Duration, Instant};

use crate::content::{Indexed, Indexer, sidecar};
use crate::digest::{self, FileDigest, Inflating, Reading};
use crate::fsafe::{self, OpenError};
use crate::inventory::status::Status;
use crate::ops::retry::{Breaker, with_retries};
use crate::scan::{Candidate, sidecar_key};
use crate::settings::{OnConflict, UploadConfig};
use crate::signal;
use crate::store::{Body, PutReceipt, RemoteObject, Store, StoreErrorKind, Upload};

use super::lock::{already_locked, check_lock};

/// Parts in one multipart upload at most (S3's limit).
const MAX_PARTS: u64 = 10_000;

/// From this size a `.gz` is inflated on a thread of its own beside its
/// upload ([`Inflating`]). That costs a second read and SHA-256 of the file
/// (about 7% more CPU, measured), which buys nothing for small files: the
/// other workers' files already overlap with theirs. For a big one the
/// upload no longer waits for its inflate (bench.sh, uploads capped at
/// 100 MiB/s: 1.18x rclone move's wall time before, 1.03x after;
/// docs/PERFORMANCE.md).
const INFLATE_BESIDE_FROM: u64 = 1024 * 1024;

/// What every step of every file shares.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub root: &'a fsafe::Root,
    pub cfg: &'a UploadConfig,
    pub breaker: &'a Breaker,
    /// Keys a listing of the destination proved absent: for them the
    /// probe HEAD is skipped (the PUT's `If-None-Match` still guards them).
    pub absent: &'a dyn Fn(&str) -> bool,
    /// The SHA-256 the file must have (a pushed body's declared one): any
    /// other content stops at the digest, before anything is stored.
    pub expect: Option<&'a str>,
}

/// A step that did not succeed: the status to record and the reason.
#[derive(Debug)]
pub struct Failed {
    pub status: Status,
    pub why: String,
}

pub(super) fn fail(status: Status, why: impl Into<String>) -> Failed {
    Failed {
        status,
        why: why.into(),
    }
}

/// The end of one file's way: what the writer records (and may delete).
#[derive(Debug)]
pub struct Outcome {
    pub candidate: Candidate,
    /// The key the file is (or would be) stored under.
    pub key: String,
    pub status: Status,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub size: u64,
    pub bytes_sent: u64,
    /// What the progress display already counted while the file was sent
    /// ([`crate::in_flight`]); the writer swaps it for `size`.
    pub metered: u64,
    pub duration: Duration,
    /// Why it failed, or a note on a success (e.g. archived under another key).
    pub error: Option<String>,
    /// Set only when the remote copy is proven and the file unchanged: the
    /// open file, through which alone it may be deleted.
    pub deletable: Option<fsafe::Opened>,
    /// What the file holds, when the read indexed it (`--index`).
    pub index: Option<Indexed>,
}

/// The file, opened.
pub struct Opened {
    pub file: fsafe::Opened,
}

/// The file, read and hashed.
pub struct Hashed {
    pub opened: Opened,
    pub digest: FileDigest,
    /// The inflate (gzip proof, index) still running beside the upload;
    /// [`settle`] waits for it and moves its findings into `digest`.
    pub inflating: Option<Inflating>,
}

impl Hashed {
    fn size(&self) -> u64 {
        self.digest.bytes
    }
}

/// Where the file goes.
enum Placement {
    /// Nothing at `key`: upload there.
    Free { key: String, note: Option<String> },
    /// Our content is already at `key`, as `obj`.
    Existing {
        key: String,
        note: Option<String>,
        obj: RemoteObject,
    },
}

/// Carries one file through every step; never panics on bad input.
pub fn process(ctx: &Ctx<'_>, candidate: Candidate) -> Outcome {
    let clock = Instant::now();
    let key = format!("{}{}", ctx.cfg.prefix, candidate.relative);
    let mut out = Outcome {
        url: Some(ctx.store.url(&key)),
        key,
        status: Status::FailedRead,
        sha256: None,
        size: candidate.size,
        bytes_sent: 0,
        metered: 0,
        duration: Duration::ZERO,
        error: None,
        deletable: None,
        index: None,
        candidate,
    };
    let result = open(ctx, &out.candidate)
        .and_then(|opened| digest(ctx, opened, &out.key))
        .and_then(|hashed| expected(ctx, hashed))
        .and_then(|hashed| {
            out.sha256 = Some(hashed.digest.sha256.clone());
            out.size = hashed.size();
            archive(ctx, hashed, &mut out)
        });
    match result {
        Ok(status) => {
            out.status = status;
            put_sidecar(ctx, &out);
        }
        Err(f) => {
            out.status = f.status;
            out.error = Some(f.why);
            out.deletable = None;
        }
    }
    out.duration = clock.elapsed();
    out
}

/// Puts the whole index of an archived file beside it in the store
/// ([`sidecar`]), so that a machine with only the bucket can search it
/// after `reindex --content`. Indexing never fails an upload: a sidecar
/// that cannot be written is a warning, and that archive is read back
/// instead. One try, outside the run's breaker: a policy that refuses
/// writes under `_index/` must not stop the archiving (nor retries delay
/// it). One already there (a retried run's) is never replaced.
fn put_sidecar(ctx: &Ctx<'_>, out: &Outcome) {
    let (Some(ix), Some(sha)) = (&out.index, &out.sha256) else {
        return;
    };
    let archived = matches!(out.status, Status::Uploaded | Status::SkippedExists);
    if !archived || ix.incomplete.is_some() || ctx.cfg.dry_run {
        return;
    }
    let Some(key) = sidecar_key(&ctx.cfg.prefix, &out.key) else {
        return;
    };
    let bytes = sidecar::encode(&out.key, sha, out.size, &ix.index);
    let Ok(d) = digest::digest_reader(&bytes[..], false) else {
        return;
    };
    let upload = Upload {
        key: &key,
        body: Body::Memory(&bytes),
        size: d.bytes,
        sha256: &d.sha256,
        parts: None,
    };
    match ctx.store.put(&upload) {
        Ok(_) => {}
        Err(e) if e.kind == StoreErrorKind::Exists => {
            log::debug!("{key}: a sidecar is already there, left as it is");
        }
        Err(e) => log::warn!(
            "{}: archived, but its index sidecar {key} was not written ({}): reindex --content elsewhere reads the archive itself instead",
            out.key,
            e.message
        ),
    }
}

/// place → (put → verify | prove) → settle, recording the key used.
fn archive(ctx: &Ctx<'_>, hashed: Hashed, out: &mut Outcome) -> Result<Status, Failed> {
    let (key, note, status) = match place(ctx, &out.key, &hashed)? {
        Placement::Existing { key, note, obj } => {
            if ctx.cfg.delete && !ctx.cfg.dry_run {
                already_locked(ctx, &obj, &key)?;
                prove(ctx, &key, &hashed)?;
            }
            (key, note, Status::SkippedExists)
        }
        Placement::Free { key, note } => {
            if ctx.cfg.dry_run {
                out.url = Some(ctx.store.url(&key));
                out.key = key;
                return Ok(Status::WouldUpload);
            }
            match put(ctx, &key, &hashed)? {
                Put::Stored(receipt) => {
                    out.bytes_sent = hashed.size();
                    verify(ctx, &key, &hashed, &receipt)?;
                    (key, note, Status::Uploaded)
                }
                // Our own first attempt (its answer lost), or an identical
                // copy from another writer: already there, proven like one.
                Put::AlreadyThere(obj) => {
                    if ctx.cfg.delete {
                        already_locked(ctx, &obj, &key)?;
                        prove(ctx, &key, &hashed)?;
                    }
                    (key, note, Status::SkippedExists)
                }
            }
        }
    };
    if let Some(n) = &note {
        log::warn!("{n}");
    }
    out.url = Some(ctx.store.url(&key));
    out.key = key;
    out.error = note;
    let (file, index) = settle(hashed, ctx.cfg.delete)?;
    out.deletable = Some(file);
    out.index = index;
    Ok(status)
}

/// Opens the file below `--dir` without following links; it must be the
/// regular file the scan saw.
pub fn open(ctx: &Ctx<'_>, c: &Candidate) -> Result<Opened, Failed> {
    let file = ctx.root.open_file(&c.relative).map_err(|e| match e {
        OpenError::NotRegular(why) => fail(
            Status::FailedChanged,
            format!("{} was not opened: {why}", c.path.display()),
        ),
        OpenError::Io(e) => fail(
            Status::FailedRead,
            format!("cannot open {}: {e}", c.path.display()),
        ),
    })?;
    if (file.id.dev, file.id.ino) != (c.dev, c.ino) {
        return Err(fail(
            Status::FailedChanged,
            format!(
                "{} was replaced by another file after the scan; it is left for the next run",
                c.path.display()
            ),
        ));
    }
    // A big run opens some files long after the scan: a writer may have
    // come back to one meanwhile. Judge its age again, as the scan did.
    let mtime =
        std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(file.id.mtime.0).unwrap_or(0));
    let age = std::time::SystemTime::now()
        .duration_since(mtime)
        .unwrap_or(Duration::ZERO);
    if age < ctx.cfg.min_age {
        return Err(fail(
            Status::Deferred,
            "written to since the scan (younger than --min-age); left for a later run",
        ));
    }
    match fsafe::writers(&file.file, &file.id) {
        fsafe::Writers::None => {}
        fsafe::Writers::Busy(who) => {
            return Err(fail(
                Status::Busy,
                format!("{who}; left for a later run (archived once its writer closes it)"),
            ));
        }
        fsafe::Writers::Unknown(why) => unknown_writers(&why),
    }
    Ok(Opened { file })
}

/// Says once per process that open writers cannot be seen here: a file a
/// writer still holds could then be archived and deleted, as before this
/// check existed; only `--min-age` guards it.
fn unknown_writers(why: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        log::warn!(
            "cannot tell whether another process still writes to files in --dir ({why}): only --min-age keeps a file its writer still holds open from being deleted; run fgbackup as the files' owner, or as root with CAP_LEASE (in a container: --cap-add LEASE) (see docs/SAFETY.md S5, open writers)"
        );
    });
}

/// Reads the file once: its SHA-256, each part's SHA-256 when it will go
/// in parts, (when asked) proof that a `.gz` is complete and the index of
/// what it holds. A big `.gz` is inflated by a second read on its own
/// thread instead ([`INFLATE_BESIDE_FROM`]), so that its upload does not
/// wait for the inflate; [`settle`] checks that both reads saw the same
/// bytes. The upload later streams from the same descriptor; the server
/// checks those bytes against this hash.
pub fn digest(ctx: &Ctx<'_>, opened: Opened, key: &str) -> Result<Hashed, Failed> {
    let size = opened.file.id.size;
    let gz = key.to_ascii_lowercase().ends_with(".gz");
    let check_gzip = ctx.cfg.gzip_check && gz;
    // A dry run writes nothing, the index included.
    let indexed = gz && !ctx.cfg.dry_run && ctx.cfg.transfer.index.wanted(check_gzip);
    let t = &ctx.cfg.transfer;
    let parts = (size > t.multipart_cutoff).then_some(t.part_size);
    if parts.is_some() && size.div_ceil(t.part_size) > MAX_PARTS {
        return Err(fail(
            Status::FailedUpload,
            format!(
                "{size} bytes need more than {MAX_PARTS} parts of --part-size {} MiB, the S3 limit: raise --part-size",
                t.part_size / (1024 * 1024)
            ),
        ));
    }
    let read_failed = |e: std::io::Error| fail(Status::FailedRead, format!("cannot read: {e}"));
    fsafe::advise_sequential(&opened.file.file);
    let inflating = ((check_gzip || indexed) && size >= INFLATE_BESIDE_FROM)
        .then(|| opened.file.file.try_clone())
        .and_then(Result::ok)
        .and_then(|dup| {
            Inflating::start(
                dup,
                check_gzip,
                indexed.then_some(size),
                signal::stop_requested,
            )
            .ok()
        });
    let reading = match inflating {
        Some(_) => Reading {
            part_size: parts,
            ..Reading::default()
        },
        None => Reading {
            check_gzip,
            index: indexed.then(|| Indexer::for_archive(size)),
            part_size: parts,
        },
    };
    let digest = digest::digest_with(&opened.file.file, reading).map_err(read_failed)?;
    let now = opened.file.current().map_err(read_failed)?;
    if let Some(why) = opened.file.id.change_to(&now).or_else(|| {
        (digest.bytes != size).then(|| format!("{} bytes read, {size} expected", digest.bytes))
    }) {
        return Err(fail(
            Status::FailedChanged,
            format!("the file changed while it was read ({why}; still being written?)"),
        ));
    }
    Ok(Hashed {
        opened,
        digest,
        inflating,
    })
}

/// A file whose content was declared beforehand (a push) must be exactly
/// that content, or nothing of it is stored.
fn expected(ctx: &Ctx<'_>, hashed: Hashed) -> Result<Hashed, Failed> {
    match ctx.expect {
        Some(want) if want != hashed.digest.sha256 => Err(fail(
            Status::FailedChanged,
            format!(
                "its content ({} bytes, sha256 {}) is not the declared one (sha256 {want}): nothing was stored",
                hashed.size(),
                hashed.digest.sha256
            ),
        )),
        _ => Ok(hashed),
    }
}

/// How an existing object compares with the local file.
enum Match {
    Same,
    /// Its metadata names our content but the server's own checksum does not.
    Corrupt(String),
    /// Other content, or content we cannot identify.
    Other(Failed),
}

fn compare(obj: &RemoteObject, h: &Hashed, key: &str) -> Match {
    let ours = &h.digest.sha256;
    let Some(theirs) = &obj.sha256 else {
        return Match::Other(fail(
            Status::FailedNometa,
            format!(
                "an object already exists at {key} without sha256 metadata ({} bytes); it was not overwritten and the file is kept",
                obj.size
            ),
        ));
    };
    if theirs != ours || obj.size != h.size() {
        return Match::Other(fail(
            Status::FailedConflict,
            format!(
                "an object with different content already exists at {key} (sha256 {theirs}, {} bytes; local {ours}, {} bytes); it was not overwritten and the file is kept",
                obj.size,
                h.size()
            ),
        ));
    }
    match &obj.checksum_sha256 {
        Some(c) if c != ours => Match::Corrupt(format!(
            "the archived copy at {key} claims sha256 {ours} but the server's own checksum of its bytes is {c}: the copy is damaged or was replaced; the local file is kept"
        )),
        _ => Match::Same,
    }
}

/// Probes `key` and decides where the file goes: free key, our content
/// already there, or (with `--on-conflict suffix`) a key carrying its hash.
fn place(ctx: &Ctx<'_>, key: &str, h: &Hashed) -> Result<Placement, Failed> {
    let existing = if (ctx.absent)(key) {
        None
    } else {
        head(ctx, key)?
    };
    let Some(obj) = existing else {
        return Ok(Placement::Free {
            key: key.to_string(),
            note: None,
        });
    };
    let failed = match compare(&obj, h, key) {
        Match::Same => {
            return Ok(Placement::Existing {
                key: key.to_string(),
                note: None,
                obj,
            });
        }
        Match::Corrupt(why) => return Err(fail(Status::FailedRemoteCorrupt, why)),
        Match::Other(f) => f,
    };
    if ctx.cfg.on_conflict == OnConflict::Keep {
        return Err(failed);
    }
    let alt = suffixed_key(key, &h.digest.sha256);
    let note = Some(format!(
        "{key} holds other content; this file is archived beside it as {alt} (--on-conflict suffix)"
    ));
    match head(ctx, &alt)? {
        None => Ok(Placement::Free { key: alt, note }),
        Some(obj) => match compare(&obj, h, &alt) {
            Match::Same => Ok(Placement::Existing {
                key: alt,
                note,
                obj,
            }),
            Match::Corrupt(why) => Err(fail(Status::FailedRemoteCorrupt, why)),
            Match::Other(f) => Err(f),
        },
    }
}

/// `dir/a.log.gz` → `dir/a.log.<first 16 hex of sha256>.gz`: beside the
/// original, still matching `*.gz`, and the same for the same content.
pub fn suffixed_key(key: &str, sha256: &str) -> String {
    let tag = sha256.get(..16).unwrap_or(sha256);
    let (dir, name) = match key.rsplit_once('/') {
        Some((d, n)) => (format!("{d}/"), n),
        None => (String::new(), key),
    };
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{dir}{}.{tag}{}", &name[..i], &name[i..]),
        _ => format!("{dir}{name}.{tag}"),
    }
}

fn head(ctx: &Ctx<'_>, key: &str) -> Result<Option<RemoteObject>, Failed> {
    with_retries(ctx.cfg.retries, ctx.breaker, || ctx.store.head(key))
        .map_err(|e| fail(Status::FailedUpload, e.message))
}

/// Reads an existing object back and checks it holds our bytes: a delete
/// must never rest on metadata alone (anyone can write metadata, and a
/// damaged copy keeps it).
fn prove(ctx: &Ctx<'_>, key: &str, h: &Hashed) -> Result<(), Failed> {
    let read =
        with_retries(ctx.cfg.retries, ctx.breaker, || ctx.store.hash_object(key)).map_err(|e| {
            fail(
                Status::FailedUpload,
                format!(
                    "cannot read back the existing copy to prove it: {}; the file is kept",
                    e.message
                ),
            )
        })?;
    let source = &h.opened.file.id;
    if read
        .as_ref()
        .and_then(|rb| rb.identity.as_ref())
        .is_some_and(|id| id.same_file(source))
    {
        return Err(fail(
            Status::FailedVerify,
            format!(
                "the copy at {key} is the very file being archived (a hard link or a mount of --dir inside the destination): reading it back proves nothing; the file is kept"
            ),
        ));
    }
    match read.map(|rb| (rb.size, rb.sha256)) {
        Some((size, sha)) if size == h.size() && sha == h.digest.sha256 => Ok(()),
        // Fewer bytes than the object has: the transfer was cut, which
        // proves nothing either way.
        Some((size, _))
            if size < h.size() && head(ctx, key)?.is_some_and(|o| o.size == h.size()) =>
        {
            Err(fail(
                Status::FailedUpload,
                format!(
                    "reading back the existing copy at {key} ended after {size} of {} bytes (connection cut?); nothing was proven and the file is kept",
                    h.size()
                ),
            ))
        }
        Some((size, sha)) => Err(fail(
            Status::FailedRemoteCorrupt,
            format!(
                "the archived copy at {key} does not hold the bytes its metadata claims (read back {size} bytes with sha256 {sha}; expected {}, {} bytes): it is damaged or was replaced; the local file is kept",
                h.digest.sha256,
                h.size()
            ),
        )),
        None => Err(fail(
            Status::FailedVerify,
            format!("the object at {key} vanished while it was read back; the file is kept"),
        )),
    }
}

/// What a PUT that did not fail did.
enum Put {
    Stored(PutReceipt),
    /// The key was taken when we wrote, by an object with our content.
    AlreadyThere(RemoteObject),
}

/// Stores the file at `key` without ever replacing an object there. When
/// the key turns out taken, it is probed again: our content there (a retry
/// whose first attempt landed) is not a conflict.
fn put(ctx: &Ctx<'_>, key: &str, h: &Hashed) -> Result<Put, Failed> {
    if signal::stop_requested() {
        return Err(fail(
            Status::FailedInterrupted,
            "stopped by a signal before upload; the file is kept",
        ));
    }
    let upload = Upload {
        key,
        body: Body::File(&h.opened.file.file),
        size: h.size(),
        sha256: &h.digest.sha256,
        parts: h.digest.parts.as_ref(),
    };
    let result = with_retries(ctx.cfg.retries, ctx.breaker, || ctx.store.put(&upload));
    match result {
        Ok(receipt) => return Ok(Put::Stored(receipt)),
        Err(e) if e.kind == StoreErrorKind::Exists => {
            if let Some(obj) = head(ctx, key)?
                && matches!(compare(&obj, h, key), Match::Same)
            {
                return Ok(Put::AlreadyThere(obj));
            }
            return Err(fail(
                Status::FailedConflict,
                format!("{}; the file is kept", e.message),
            ));
        }
        Err(_) => {}
    }
    result.map(Put::Stored).map_err(|e| {
        let status = match e.kind {
            StoreErrorKind::Changed => Status::FailedChanged,
            StoreErrorKind::Exists => Status::FailedConflict,
            _ if signal::stop_requested() => Status::FailedInterrupted,
            _ => Status::FailedUpload,
        };
        fail(status, format!("{}; the file is kept", e.message))
    })
}

/// The stored object must be the one we wrote (same version) and hold our
/// bytes (size, sha256 metadata, and the server's checksum where it has one).
fn verify(ctx: &Ctx<'_>, key: &str, h: &Hashed, receipt: &PutReceipt) -> Result<(), Failed> {
    let stored = with_retries(ctx.cfg.retries, ctx.breaker, || ctx.store.head(key))
        .map_err(|e| {
            fail(
                Status::FailedVerify,
                format!("verification HEAD failed: {}; the file is kept", e.message),
            )
        })?
        .ok_or_else(|| {
            fail(
                Status::FailedVerify,
                "the object is missing right after upload; the file is kept",
            )
        })?;
    if let (Some(ours), Some(now)) = (&receipt.version, &stored.version)
        && ours != now
    {
        return Err(fail(
            Status::FailedConflict,
            format!(
                "the object at {key} was replaced by another writer right after our upload (version {now}, ours {ours}); the file is kept"
            ),
        ));
    }
    if let Some(lock) = &ctx.cfg.transfer.object_lock {
        check_lock(&stored, lock, key)?;
    }
    if stored.sha256.is_none() {
        return Err(fail(
            Status::FailedNometa,
            "the stored object has no sha256 metadata (a proxy or gateway may strip x-amz-meta headers); the file is kept",
        ));
    }
    match compare(&stored, h, key) {
        Match::Same => {}
        Match::Corrupt(why) => return Err(fail(Status::FailedVerify, why)),
        Match::Other(f) => {
            return Err(fail(
                Status::FailedVerify,
                format!("the stored object does not match: {}", f.why),
            ));
        }
    }
    // Where reading the object is cheap (a local directory), its bytes
    // settle what metadata and versions cannot (an in-place rewrite). A
    // delete needs the same proof from a server that keeps no checksum of
    // its own: size and metadata are what we sent, not what it stored.
    let unproven = ctx.cfg.delete && stored.checksum_sha256.is_none();
    if ctx.store.read_back_is_cheap() || unproven {
        prove(ctx, key, h).map_err(|f| fail(Status::FailedVerify, f.why))?;
    }
    Ok(())
}

/// The remote copy is proven: the file may go if it is still exactly what
/// was read (not rewritten, not replaced; when it is to be deleted, its bytes
/// are read again through the descriptor) and, for `.gz`, complete. Gives
/// the file and its index.
fn settle(mut h: Hashed, delete: bool) -> Result<(fsafe::Opened, Option<Indexed>), Failed> {
    inflated(&mut h)?;
    let file = h.opened.file;
    file.confirm(&h.digest.sha256, delete).map_err(|why| {
        fail(
            Status::FailedChanged,
            format!(
                "{why} while it was archived; the file is kept. The stored copy holds the bytes sent then (where the server does not check them against the hash, possibly a mix of old and new); --on-conflict suffix archives the new content beside it"
            ),
        )
    })?;
    if let Some(Err(why)) = &h.digest.gzip {
        return Err(fail(
            Status::FailedGzip,
            format!("{why}; the copy is archived byte-for-byte but the file is kept locally"),
        ));
    }
    Ok((file, h.digest.index))
}

/// Waits for the inflate that ran beside the upload. Its verdict and index
/// count only if it read the very bytes that were hashed and uploaded.
fn inflated(h: &mut Hashed) -> Result<(), Failed> {
    let Some(inflating) = h.inflating.take() else {
        return Ok(());
    };
    let kept = "the copy is archived byte-for-byte but the file is kept locally";
    let read = inflating
        .finish()
        .map_err(|e| match signal::stop_requested() {
            true => fail(
                Status::FailedInterrupted,
                format!("stopped by a signal before the gzip proof ended; {kept}"),
            ),
            false => fail(Status::FailedRead, format!("cannot read: {e}; {kept}")),
        })?;
    if (read.bytes, &read.sha256) != (h.digest.bytes, &h.digest.sha256) {
        return Err(fail(
            Status::FailedChanged,
            format!(
                "the file changed while it was read (a second read gave {} bytes with sha256 {}; still being written?); {kept}",
                read.bytes, read.sha256
            ),
        ));
    }
    h.digest.gzip = read.gzip;
    h.digest.index = read.index;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/SAFETY.md S10
    #[test]
    fn suffixed_keys_keep_the_extension() {
        let sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            suffixed_key("site/FGT-A/a.log.gz", sha),
            "site/FGT-A/a.log.0123456789abcdef.gz"
        );
        assert_eq!(suffixed_key("noext", sha), "noext.0123456789abcdef");
        assert_eq!(suffixed_key(".hidden", sha), ".hidden.0123456789abcdef");
    }
}
