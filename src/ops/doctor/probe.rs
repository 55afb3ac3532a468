//! Checks of the destination: a probe object written, read back and
//! deleted, Object Lock, conditional writes and checksums.

use crate::digest::hex;
use crate::settings::{Destination, UploadConfig};
use crate::store::s3::{LockConfig, S3Store};
use crate::store::{Body, PutReceipt, RemoteObject, Store, StoreError, StoreErrorKind, Upload};
use sha2::{Digest, Sha256};

use super::*;

pub(super) fn check_destination(r: &mut Report, cfg: &UploadConfig) {
    if let Destination::S3 { settings, .. } = &cfg.destination {
        let (host, port) = match &settings.endpoint {
            Some(url) => host_port(url),
            None => (format!("s3.{}.amazonaws.com", settings.region), 443),
        };
        if !check_tcp(
            r,
            "S3 endpoint",
            &host,
            port,
            "check --endpoint/AWS_ENDPOINT_URL, DNS and the firewall",
        ) {
            return;
        }
    }
    // The probe object never carries --object-lock: a COMPLIANCE lock
    // would keep it, undeletable, for --object-lock-days. The bucket's
    // Object Lock is reported on a line of its own instead.
    let mut unlocked = cfg.clone();
    unlocked.transfer.object_lock = None;
    let store = match crate::build::open_store(&unlocked) {
        Ok(s) => s,
        Err(e) => {
            return r.line(
                Level::Fail,
                "destination",
                &e.to_string(),
                "correct the setting the message names (see 'fgbackup upload --help')",
            );
        }
    };
    let what = format!("destination {}", store.describe());
    if let Err(e) = store.check() {
        let (problem, fix) = problem_and_fix(&e, check_fix(&e, &cfg.destination));
        return r.line(Level::Fail, &what, problem, fix);
    }
    r.line(Level::Ok, &what, "exists, credentials and TLS accepted", "");
    let s3 = matches!(cfg.destination, Destination::S3 { .. });
    r.line(Level::Ok, "upload options", &cfg.transfer.describe(s3), "");
    if s3 {
        check_object_lock(r, &what, cfg);
    }
    probe(r, store.as_ref(), &what, cfg);
}

/// A failed store request as the problem and its fix: the store's advice
/// when it has one (a wrong endpoint, TLS, bucket or credentials), else the
/// whole message and `fallback`.
pub(super) fn problem_and_fix<'a>(e: &'a StoreError, fallback: &'a str) -> (&'a str, &'a str) {
    match &e.advice {
        Some(a) => (&a.problem, &a.fix),
        None => (&e.message, fallback),
    }
}

/// The fix for a destination check that failed without advice.
pub(super) fn check_fix(e: &StoreError, destination: &Destination) -> &'static str {
    match (destination, &e.kind) {
        (Destination::Local { .. }, _) => {
            "check --dest, and that the service user may create files there"
        }
        (_, StoreErrorKind::Transient) => {
            "the server did not answer in time or reported an error of its own: check its health and logs, then rerun doctor"
        }
        _ => "check --endpoint, --bucket/BUCKET and the credentials",
    }
}

/// The S3 store of `cfg`, for the checks only an S3 server can answer.
pub(super) fn s3_store(cfg: &UploadConfig) -> crate::error::Result<S3Store> {
    let Destination::S3 {
        bucket, settings, ..
    } = &cfg.destination
    else {
        return Err(crate::error::Error::runtime("not an S3 destination"));
    };
    crate::build::s3_options(&cfg.destination, &cfg.transfer, cfg.workers)
        .and_then(|o| S3Store::new(bucket, settings, o))
}

/// Why a check only the S3 server can answer was not answered: the store
/// could not be set up, or the server's error (status and S3 code kept).
#[derive(Debug)]
pub(super) enum Unanswered {
    Setup(crate::error::Error),
    Server(StoreError),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unanswered::Setup(e) => write!(f, "{e}"),
            Unanswered::Server(e) => f.write_str(&e.message),
        }
    }
}

/// Asks the S3 server of `cfg` one question.
fn ask_s3<T>(
    cfg: &UploadConfig,
    ask: impl FnOnce(&S3Store) -> std::result::Result<T, StoreError>,
) -> std::result::Result<T, Unanswered> {
    let store = s3_store(cfg).map_err(Unanswered::Setup)?;
    ask(&store).map_err(Unanswered::Server)
}

/// One line on the bucket's Object Lock: informative, unless
/// `--object-lock` is set and the bucket cannot keep locks.
pub(super) fn check_object_lock(r: &mut Report, what: &str, cfg: &UploadConfig) {
    let found = ask_s3(cfg, |s| s.object_lock_config());
    let Some(lock) = &cfg.transfer.object_lock else {
        let detail = match found {
            Ok(c) => format!("Object Lock: {}", c.describe()),
            Err(e) => format!("Object Lock: cannot be read ({e})"),
        };
        return r.line(Level::Ok, what, &detail, "");
    };
    let asked = format!(
        "--object-lock {} --object-lock-days {}",
        lock.mode, lock.days
    );
    match found {
        Ok(c @ LockConfig::Enabled { .. }) => r.line(
            Level::Ok,
            what,
            &format!(
                "Object Lock: {}; new objects locked by {asked}",
                c.describe()
            ),
            "",
        ),
        Ok(c @ LockConfig::Absent(_)) => r.line(
            Level::Fail,
            what,
            &format!("Object Lock: {}, but {asked} is set", c.describe()),
            "use a bucket created with Object Lock enabled, or drop --object-lock/OBJECT_LOCK_MODE",
        ),
        Err(e) => r.line(
            Level::Fail,
            what,
            &format!("Object Lock: cannot be read ({e}), but {asked} is set"),
            "grant s3:GetBucketObjectLockConfiguration, or drop --object-lock/OBJECT_LOCK_MODE",
        ),
    }
}

/// Writes, verifies, reads back and deletes a small object.
pub(super) fn probe(r: &mut Report, store: &dyn Store, what: &str, cfg: &UploadConfig) {
    let key = format!(
        "{}.fgbackup-doctor/{}-{}.probe",
        cfg.prefix,
        crate::host::hostname(),
        std::process::id()
    );
    let body = format!("fgbackup doctor probe from {}\n", crate::host::hostname()).into_bytes();
    let sha = hex(&Sha256::digest(&body));
    let step = |r: &mut Report, name: &str, result: std::result::Result<(), StoreError>| -> bool {
        match result {
            Ok(()) => true,
            Err(e) => {
                let (problem, fix) = problem_and_fix(&e, PROBE_FIX);
                let detail = format!("probe object {key}: {name} failed: {problem}");
                r.line(Level::Fail, what, &detail, fix);
                false
            }
        }
    };
    if !step(
        r,
        "write",
        store.put(&probe_upload(&key, &body, &sha)).map(drop),
    ) {
        return;
    }
    let head = store.head(&key);
    let verified = probe_stored(&head, &body, &sha);
    if verified.is_ok() {
        let again = store.put(&probe_upload(&key, &body, &sha));
        check_no_replace(r, what, again);
        if let (Ok(Some(o)), Destination::S3 { .. }) = (&head, &cfg.destination) {
            report_server_checksum(r, what, o.checksum_sha256.as_deref(), &sha);
        }
    }
    let read = store.get(&key).and_then(|data| {
        if data == body {
            Ok(())
        } else {
            Err(StoreError::permanent(format!(
                "read back {} different bytes",
                data.len()
            )))
        }
    });
    let deleted = store.delete(&key);
    check_checksum_enforced(r, what, cfg, &format!("{key}.checksum"));
    if step(r, "verify", verified) & step(r, "read back", read) & step(r, "delete", deleted) {
        r.line(
            Level::Ok,
            what,
            "probe object written, verified (size and sha256), read back and deleted",
            "",
        );
    }
}

/// Whether the HEAD of the probe object shows what was written.
pub(super) fn probe_stored(
    head: &std::result::Result<Option<RemoteObject>, StoreError>,
    body: &[u8],
    sha: &str,
) -> std::result::Result<(), StoreError> {
    match head {
        Ok(Some(o)) if o.size == body.len() as u64 && o.sha256.as_deref() == Some(sha) => Ok(()),
        Ok(Some(o)) => Err(StoreError::permanent(format!(
            "stored as {} bytes with sha256 {:?} (metadata stripped by a proxy?)",
            o.size, o.sha256
        ))),
        Ok(None) => Err(StoreError::permanent("missing right after writing")),
        Err(e) => Err(e.clone()),
    }
}

/// A second write to an existing key must be refused: that is what keeps
/// two writers of one key from replacing each other's verified copies.
pub(super) fn check_no_replace(
    r: &mut Report,
    what: &str,
    again: std::result::Result<PutReceipt, StoreError>,
) {
    match again {
        Err(e) if e.kind == StoreErrorKind::Exists => r.line(
            Level::Ok,
            what,
            "never replaces an object: a second write to the probe key was refused",
            "",
        ),
        Ok(_) => r.line(
            Level::Warn,
            what,
            "the server replaced the probe object although it was sent with If-None-Match: * (conditional writes not supported, e.g. Garage): two writers of one key can replace each other's copies, and fgbackup cannot prevent it",
            "give every collector its own --prefix, or use a server with conditional writes (AWS S3, MinIO, Ceph)",
        ),
        Err(e) => r.line(
            Level::Warn,
            what,
            &format!("could not test whether existing objects are protected: {}", e.message),
            "rerun doctor; check the permissions on the bucket",
        ),
    }
}

/// Whether the server keeps its own SHA-256 of each object: then damaged or
/// mislabelled copies are caught from a HEAD, else by reading them back.
pub(super) fn report_server_checksum(
    r: &mut Report,
    what: &str,
    checksum: Option<&str>,
    sha: &str,
) {
    match checksum {
        Some(c) if c == sha => r.line(
            Level::Ok,
            what,
            "the server keeps a SHA-256 of each object (x-amz-checksum-sha256) and it matches",
            "",
        ),
        Some(c) => r.line(
            Level::Fail,
            what,
            &format!("the server's SHA-256 of the probe object is {c}, not {sha}: it stores other bytes than it was sent"),
            "check the server and any proxy or gateway in front of it",
        ),
        None => r.line(
            Level::Ok,
            what,
            "the server keeps no SHA-256 of its own (checksum mode): with --delete every object is read back in full before its file is deleted (twice the traffic)",
            "",
        ),
    }
}

/// The probe object, as one small PUT.
pub(super) fn probe_upload<'a>(key: &'a str, body: &'a [u8], sha: &'a str) -> Upload<'a> {
    Upload {
        key,
        body: Body::Memory(body),
        size: body.len() as u64,
        sha256: sha,
        parts: None,
    }
}

/// Whether the server checks `x-amz-checksum-sha256` against the body.
pub(super) fn check_checksum_enforced(r: &mut Report, what: &str, cfg: &UploadConfig, key: &str) {
    if !matches!(cfg.destination, Destination::S3 { .. }) {
        return;
    }
    let result = ask_s3(cfg, |s| s.rejects_bad_checksum(key));
    match result {
        Ok(true) => r.line(
            Level::Ok,
            what,
            "the server refuses a body that does not match its x-amz-checksum-sha256",
            "",
        ),
        Ok(false) => r.line(
            Level::Warn,
            what,
            "the server accepted a PUT whose x-amz-checksum-sha256 was wrong: it does not verify checksums (fgbackup still verifies every copy after upload, and reads existing copies back before deleting)",
            "prefer a server that verifies checksums (AWS S3, MinIO, s3s)",
        ),
        Err(e) => r.line(
            Level::Warn,
            what,
            &format!("could not test checksum verification: {e}"),
            "rerun doctor",
        ),
    }
}
