//! Object Lock on the copy that holds a key: it must carry the asked
//! mode (or COMPLIANCE) with a retain-until date still ahead.

use crate::inventory::status::Status;
use crate::store::RemoteObject;
use crate::store::s3::ObjectLock;
use crate::timefmt;
use std::time::SystemTime;

use super::step::{Ctx, Failed, fail};

/// With `--object-lock`, the object we just wrote must carry the lock we
/// asked for: a server that silently ignores the headers leaves a copy
/// anyone allowed to delete may delete, which is no WORM copy.
pub(super) fn check_lock(
    stored: &RemoteObject,
    lock: &ObjectLock,
    key: &str,
) -> Result<(), Failed> {
    let now = timefmt::unix_seconds(SystemTime::now());
    let until = stored
        .lock_until
        .as_deref()
        .and_then(timefmt::parse_iso8601);
    let why = match (stored.lock_mode.as_deref(), until) {
        (Some(m), Some(u)) if m == lock.mode && u > now => return Ok(()),
        (None, _) => format!(
            "server ignored Object Lock headers: the object at {key} came back without a lock (asked: {} for {} days)",
            lock.mode, lock.days
        ),
        (Some(m), _) => format!(
            "the object at {key} came back locked {m} until {}, not {} for {} days as asked",
            stored.lock_until.as_deref().unwrap_or("(no date)"),
            lock.mode,
            lock.days
        ),
    };
    Err(fail(
        Status::FailedVerify,
        format!(
            "{why}; the file is kept. Use a server that keeps Object Lock (some ignore it on multipart uploads: raise --multipart-cutoff), or drop --object-lock"
        ),
    ))
}

/// With `--object-lock` and `--delete`, a copy that was already there
/// justifies a delete only if it is locked as well, by the rule a new
/// upload is held to: the mode asked (or COMPLIANCE) and a retention that
/// has not ended. One stored before `--object-lock`, by a server that
/// ignored the lock, or whose retention expired, is no WORM copy.
pub(super) fn already_locked(ctx: &Ctx<'_>, obj: &RemoteObject, key: &str) -> Result<(), Failed> {
    let Some(lock) = &ctx.cfg.transfer.object_lock else {
        return Ok(());
    };
    let now = timefmt::unix_seconds(SystemTime::now());
    let until = obj.lock_until.as_deref().and_then(timefmt::parse_iso8601);
    let why = match obj.lock_mode.as_deref() {
        Some(m) if m != lock.mode && m != "COMPLIANCE" => {
            format!("is locked {m}, not {}", lock.mode)
        }
        Some(m) => match until {
            Some(u) if u > now => return Ok(()),
            Some(_) => format!(
                "was locked {m} only until {}, which has passed: it can be deleted now",
                obj.lock_until.as_deref().unwrap_or_default()
            ),
            None => format!("is locked {m} without a retain-until date"),
        },
        None => format!(
            "is not locked {} (it was stored before --object-lock, or by a server that ignored the lock)",
            lock.mode
        ),
    };
    Err(fail(
        Status::FailedVerify,
        format!(
            "the copy already at {key} {why}; the file is kept. Remove that copy so the next run stores it locked, or drop --object-lock"
        ),
    ))
}
