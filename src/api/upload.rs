//! `PUT /upload/NAME` (and `HEAD`, `PATCH`): files pushed with an upload
//! token, received into the spool and archived by the upload pipeline
//! (`ops::push`). Off unless the server runs with `--accept-uploads`.
//!
//! Each push runs on a thread of its own, outside both worker lanes, and
//! at most `--push-max` at once (503 beyond), so pushes never hold up
//! `/health` or the read API. Every check that can refuse a push runs
//! before its body is read (curl's `Expect: 100-continue` then sends no
//! body at all), and nothing of a refused body stays on disk. A body that
//! stops arriving (a cut, a client that drips) keeps what arrived for a
//! resume: `HEAD` says how much, `PATCH` (or `PUT` with `Content-Range`)
//! sends the rest. docs/PUSH.md is the protocol.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use sha2::{Digest, Sha256};
use tiny_http::{Method, Request};

use super::{Answer, error, header, json_answer};
use crate::inventory::{Inventory, TokenRow};
use crate::metrics::Metrics;
use crate::ops::push::{Archived, Archiver, Receipt};
use crate::push::spool::{Entry, Meta, Spool};
use crate::push::token::{Claims, Key};
use crate::push::{name, wire};
use crate::settings::PushServerSettings;
use crate::timefmt;

/// The path every push goes to.
pub const PATH: &str = "/upload/";

/// A body must keep arriving: at least [`MIN_PROGRESS`] bytes in every
/// [`WINDOW`] (2 KiB/s), or the push ends with 408 and keeps what arrived.
const WINDOW: Duration = Duration::from_secs(30);
const MIN_PROGRESS: u64 = 64 * 1024;
/// How often a long push looks at the spool's free space again (other
/// pushes fill it too).
const FREE_CHECK_EVERY: u64 = 64 * 1024 * 1024;
/// Read size.
const CHUNK: usize = 256 * 1024;

/// Everything a push needs, shared by the push threads.
pub struct PushServer {
    pub settings: PushServerSettings,
    pub key: Key,
    pub spool: Spool,
    pub archiver: Archiver,
    pub db_path: std::path::PathBuf,
    at_once: AtomicUsize,
    /// Object keys being received or archived now: one push per key, even
    /// from two tokens of one prefix (a store whose conditional PUT is not
    /// atomic would otherwise let both "win").
    busy: Mutex<HashSet<String>>,
    /// Per token: files and bytes of its pushes in flight, counted against
    /// its limits with what it has archived already.
    reserved: Mutex<HashMap<String, (u64, u64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A refusal: status, reason, and the outcome it is counted under.
struct Refusal {
    status: u16,
    why: String,
    outcome: &'static str,
    headers: Vec<(&'static str, String)>,
}

fn refuse(status: u16, outcome: &'static str, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        why: why.into(),
        outcome,
        headers: Vec::new(),
    }
}

impl Refusal {
    fn answer(self) -> (Answer, &'static str) {
        let mut a = error(self.status, self.why);
        for (k, v) in &self.headers {
            a = a.with_header(header(k, v));
        }
        if self.status == 401 {
            a = a.with_header(header(
                "WWW-Authenticate",
                "Bearer realm=\"fgbackup-upload\"",
            ));
        }
        (a, self.outcome)
    }
}

type Step<T> = std::result::Result<T, Refusal>;

impl PushServer {
    pub fn new(
        settings: PushServerSettings,
        archiver: Archiver,
        db_path: std::path::PathBuf,
    ) -> crate::error::Result<PushServer> {
        let key = Key::load(&settings.key)?;
        let spool = Spool::open(&settings.spool).map_err(|e| {
            crate::error::Error::usage(format!(
                "cannot create the spool {} ({e}): pass --spool DIR on a writable file system",
                settings.spool.display()
            ))
        })?;
        Ok(PushServer {
            settings,
            key,
            spool,
            archiver,
            db_path,
            at_once: AtomicUsize::new(0),
            busy: Mutex::default(),
            reserved: Mutex::default(),
        })
    }

    /// Free bytes of the spool's file system, for `/health`.
    pub fn spool_free(&self) -> Option<u64> {
        self.spool.free_bytes().ok()
    }

    /// Looks after the spool now and every [`SWEEP_EVERY`], on a thread of
    /// its own: archives the bodies left whole (by a restart, or an archive
    /// that failed), and discards the parts of pushes that cannot resume
    /// (their token revoked or expired) or were abandoned ([`PARTIAL_LIFE`]
    /// untouched). A part is only ever a copy: its pusher got no 201.
    pub fn sweep(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("api-push-sweep".into())
            .spawn(move || {
                while !crate::signal::stop_requested() {
                    for (token_id, entry, meta, _) in me.spool.entries() {
                        me.look_after(&token_id, &entry, &meta);
                    }
                    crate::signal::sleep_unless_stopped(SWEEP_EVERY);
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the spool sweep ({e}): whole bodies wait for their next push");
        }
    }

    /// One spool entry: archive it, discard it, or leave it. The entry is
    /// read again once its key is claimed: the list it came from may be
    /// stale (a push archived or replaced it meanwhile).
    fn look_after(&self, token_id: &str, entry: &Entry, meta: &Meta) {
        let done = Inventory::open(&self.db_path).and_then(|inv| {
            let Some(row) = inv.token(token_id)? else {
                log::warn!(
                    "spool: {} of unknown token {token_id} left in place",
                    meta.name
                );
                return Ok(());
            };
            // A look takes no share; archiving a whole body takes one below.
            let Ok(mut claim) = self.claim(&Want::left(&row, &meta.name, meta.size, true)) else {
                return Ok(()); // a push of it is being received now
            };
            if entry.meta().as_ref() != Some(meta) {
                return Ok(());
            }
            let held = entry.held();
            self.settle_left(&inv, &row, (entry, meta, held), &mut claim)
        });
        if let Err(e) = done {
            log::error!("spool: {} of token {token_id}: {e}", meta.name);
        }
    }

    /// A whole body is archived if its token may still archive it (live,
    /// within its limits, counting its pushes in flight and its other
    /// bodies in the spool); a part is discarded once it cannot resume.
    fn settle_left(
        &self,
        inv: &Inventory,
        row: &TokenRow,
        (entry, meta, held): (&Entry, &Meta, u64),
        claim: &mut Claim<'_>,
    ) -> crate::error::Result<()> {
        let now = timefmt::unix_seconds(SystemTime::now());
        let dead = row.revoked_at.is_some() || row.expires_unix <= now;
        let why = if dead {
            "its token was revoked or expired"
        } else if held == meta.size {
            match self.take_share(row, meta, claim) {
                Ok(()) => {
                    let a = self
                        .archiver
                        .archive(inv, &row.id, &row.prefix, entry, meta)?;
                    log::info!(
                        "spool: {} of token {}, left whole, archived: {a:?}",
                        meta.name,
                        row.id
                    );
                    return Ok(());
                }
                Err(_) => "its token's limits are used up",
            }
        } else if entry.idle().is_some_and(|d| d > PARTIAL_LIFE) {
            "abandoned"
        } else {
            return Ok(());
        };
        log::info!(
            "spool: {held} of {} bytes of {} (token {}) discarded: {why}; its pusher got no 201 and keeps the file",
            meta.size,
            meta.name,
            row.id
        );
        entry.discard();
        Ok(())
    }

    /// Takes the token's share for archiving this body, as a claim takes
    /// one for a push (the caller holds the key): refused over its limits,
    /// counting its pushes in flight and its other bodies in the spool.
    fn take_share(&self, row: &TokenRow, meta: &Meta, claim: &mut Claim<'_>) -> Step<()> {
        let w = Want::left(row, &meta.name, meta.size, false);
        let busy = lock(&self.busy);
        let mut reserved = lock(&self.reserved);
        let in_flight = reserved.get(&row.id).copied().unwrap_or((0, 0));
        let spooled = self.spooled(&w, &busy);
        token_room(&w, (in_flight.0 + spooled.0, in_flight.1 + spooled.1))?;
        let r = reserved.entry(row.id.clone()).or_insert((0, 0));
        r.0 += 1;
        r.1 += meta.size;
        claim.counted = true;
        claim.bytes = meta.size;
        Ok(())
    }
}

/// How often the spool is looked after.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// How long a part may wait for its resume.
const PARTIAL_LIFE: Duration = Duration::from_secs(7 * 86_400);

/// Takes a push request: on its own thread if a place is free, else 503.
pub(super) fn open(request: Request, push: &Option<Arc<PushServer>>, metrics: &Arc<Metrics>) {
    let started = Instant::now();
    let Some(push) = push else {
        let a = error(
            404,
            "this server does not accept uploads (start it with --accept-uploads)",
        );
        return respond(request, started, a, "disabled", metrics);
    };
    let max = push.settings.max_at_once;
    if push.at_once.fetch_add(1, Ordering::AcqRel) >= max {
        push.at_once.fetch_sub(1, Ordering::AcqRel);
        let a = error(
            503,
            format!("{max} pushes are being received already; retry in a few seconds"),
        )
        .with_header(header("Retry-After", "5"));
        return respond(request, started, a, "busy", metrics);
    }
    let (p, m) = (Arc::clone(push), Arc::clone(metrics));
    let spawned = std::thread::Builder::new()
        .name("api-push".into())
        .spawn(move || {
            let mut request = request;
            let (answer, outcome) = p.handle(&mut request);
            // The place is free once the work is done, before the answer
            // is written: a client that retries on seeing it gets in.
            p.at_once.fetch_sub(1, Ordering::AcqRel);
            respond(request, started, answer, outcome, &m);
        });
    if let Err(e) = spawned {
        push.at_once.fetch_sub(1, Ordering::AcqRel);
        log::warn!("cannot start a push thread: {e}");
    }
}

fn respond(request: Request, started: Instant, answer: Answer, outcome: &'static str, m: &Metrics) {
    let status = answer.status_code().0;
    let method = request.method().to_string();
    if let Err(e) = request.respond(answer) {
        log::debug!("push client went away before its answer: {e}");
    }
    m.record("upload", status, started.elapsed());
    m.record_push(outcome);
    log::debug!(
        "{method} /upload/... -> {status} ({outcome}) in {:?}",
        started.elapsed()
    );
}

/// What every push request has passed: a valid, live token and a good name.
struct Admitted {
    claims: Claims,
    row: TokenRow,
    name: String,
    key: String,
    inv: Inventory,
}

impl PushServer {
    fn handle(&self, request: &mut Request) -> (Answer, &'static str) {
        let result = self.admit(request).and_then(|a| match request.method() {
            Method::Head => self.head(&a),
            _ => self.receive(request, a),
        });
        match result {
            Ok(done) => done,
            Err(r) => r.answer(),
        }
    }

    /// Method, target, token (signature, row, revocation, expiry,
    /// attempts) and name, in that order; a PUT or PATCH counts as an
    /// attempt once its token is known.
    fn admit(&self, request: &Request) -> Step<Admitted> {
        let method = request.method().clone();
        if !matches!(method, Method::Put | Method::Patch | Method::Head) {
            let mut r = refuse(
                405,
                "bad_request",
                format!("method {method} not allowed here: PUT, PATCH or HEAD"),
            );
            r.headers.push(("Allow", "PUT, PATCH, HEAD".into()));
            return Err(r);
        }
        let url = request.url();
        let raw = url.strip_prefix(PATH).unwrap_or("");
        if raw.contains('?') || url.len() > super::MAX_URL {
            return Err(refuse(
                400,
                "bad_request",
                "a push takes no query string and a name of at most 512 bytes",
            ));
        }
        let claims = self.verify_token(request)?;
        let inv = Inventory::open(&self.db_path).map_err(|e| {
            refuse(
                503,
                "unavailable",
                format!("the inventory cannot be opened: {e}"),
            )
        })?;
        let row = self.live_row(&inv, &claims, method != Method::Head)?;
        let name = name::check(raw, claims.any_name)
            .map_err(|b| refuse(b.status(), "bad_name", b.reason().to_string()))?;
        let key = Archiver::key(&claims.prefix, &name);
        Ok(Admitted {
            claims,
            row,
            name,
            key,
            inv,
        })
    }

    fn verify_token(&self, request: &Request) -> Step<Claims> {
        let auth = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().to_string());
        let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) else {
            return Err(refuse(
                401,
                "unauthorized",
                "missing 'Authorization: Bearer <upload token>' header",
            ));
        };
        self.key
            .verify(token.trim())
            .map_err(|_| refuse(401, "unauthorized", "unknown or tampered upload token"))
    }

    /// The token's row, counting this request as an attempt when `attempt`.
    fn live_row(&self, inv: &Inventory, claims: &Claims, attempt: bool) -> Step<TokenRow> {
        let now = SystemTime::now();
        let looked = if attempt {
            inv.note_token_attempt(&claims.id, now)
        } else {
            inv.token(&claims.id)
        };
        let row = looked
            .map_err(|e| {
                refuse(
                    503,
                    "unavailable",
                    format!("the inventory cannot be read: {e}"),
                )
            })?
            .ok_or_else(|| {
                refuse(
                    401,
                    "unauthorized",
                    "unknown upload token (not issued by this server's inventory)",
                )
            })?;
        if row.revoked_at.is_some() {
            return Err(refuse(403, "forbidden", "this upload token was revoked"));
        }
        if claims.exp <= timefmt::unix_seconds(now) {
            return Err(refuse(403, "forbidden", "this upload token has expired"));
        }
        if let Some(max) = claims.max_attempts
            && row.attempts > max
        {
            return Err(refuse(
                429,
                "used_up",
                format!("this upload token's {max} attempts are used up"),
            ));
        }
        Ok(row)
    }

    /// `HEAD`: what the server holds of the name (tus's offset).
    fn head(&self, a: &Admitted) -> Step<(Answer, &'static str)> {
        let entry = self.spool.entry(&a.claims.id, &a.name);
        let (offset, length, sha) = match entry.meta() {
            Some(m) => (entry.held().min(m.size), m.size, m.sha256),
            None => match Archiver::proven(&a.inv, &a.key) {
                Ok(Some((sha, size))) => (size, size, sha),
                Ok(None) => {
                    return Err(refuse(
                        404,
                        "absent",
                        "nothing of this name is held: PUT it",
                    ));
                }
                Err(e) => return Err(refuse(503, "unavailable", e.to_string())),
            },
        };
        let answer = json_answer(
            200,
            &json!({"key": a.key, "offset": offset, "length": length, "sha256": sha}),
        )
        .with_header(header(wire::UPLOAD_OFFSET, &offset.to_string()))
        .with_header(header(wire::UPLOAD_LENGTH, &length.to_string()))
        .with_header(header(wire::SHA256, &sha))
        .with_header(header("Cache-Control", "no-store"));
        Ok((answer, "head"))
    }
}

/// What a PUT or PATCH declares: the whole file's SHA-256 and size, and
/// where this body starts in it.
struct Declared {
    sha256: String,
    total: u64,
    offset: u64,
    length: u64,
}

fn header_value<'r>(request: &'r Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// Reads the framing and digest headers of a PUT or PATCH.
fn declared(request: &Request, held: Option<&Meta>) -> Step<Declared> {
    let bad = |why: String| refuse(400, "bad_request", why);
    let length = request.body_length().map(|n| n as u64).ok_or_else(|| {
        refuse(
            411,
            "bad_request",
            "Content-Length is required (no chunked bodies)",
        )
    })?;
    let sha256 = wire::digest(
        header_value(request, wire::SHA256),
        header_value(request, wire::REPR_DIGEST),
    )
    .map_err(bad)?;
    if *request.method() == Method::Patch {
        let offset = header_value(request, wire::UPLOAD_OFFSET)
            .and_then(wire::number)
            .ok_or_else(|| {
                bad(format!(
                    "PATCH needs {}: the bytes the server holds (HEAD)",
                    wire::UPLOAD_OFFSET
                ))
            })?;
        let meta =
            held.ok_or_else(|| refuse(404, "absent", "no push of this name to continue: PUT it"))?;
        if offset.checked_add(length) != Some(meta.size) {
            return Err(bad(format!(
                "{} + Content-Length must be the file's size {} (declared by the first PUT)",
                wire::UPLOAD_OFFSET,
                meta.size
            )));
        }
        return Ok(Declared {
            sha256,
            total: meta.size,
            offset,
            length,
        });
    }
    match header_value(request, wire::CONTENT_RANGE) {
        Some(range) => {
            let (offset, total) = wire::content_range(range, length).map_err(bad)?;
            if offset + length != total {
                // A middle piece would be hashed as the whole file and fail.
                return Err(bad(format!(
                    "{} must run to the file's end (bytes N-{}/{total}): send the rest at once",
                    wire::CONTENT_RANGE,
                    total.saturating_sub(1)
                )));
            }
            Ok(Declared {
                sha256,
                total,
                offset,
                length,
            })
        }
        None => Ok(Declared {
            sha256,
            total: length,
            offset: 0,
            length,
        }),
    }
}

/// The token's bytes and files, with `(files, bytes)` of its pushes in
/// flight: 413 over its bytes, 429 when its files are used up.
fn token_room(w: &Want<'_>, (files, bytes): (u64, u64)) -> Step<()> {
    if let Some(max) = w.max_bytes
        && w.used.1.saturating_add(bytes).saturating_add(w.total) > max
    {
        return Err(refuse(
            413,
            "too_large",
            format!(
                "{} bytes would take this token over its {max} bytes ({} archived, {bytes} being received or left in the spool)",
                w.total, w.used.1
            ),
        ));
    }
    if let Some(max) = w.max_files
        && w.used.0.saturating_add(files) >= max
    {
        return Err(refuse(
            429,
            "used_up",
            format!("this upload token's {max} files are used up"),
        ));
    }
    Ok(())
}

/// What a claim asks for: a key, and the share of the token's limits.
struct Want<'a> {
    token: &'a str,
    prefix: &'a str,
    name: &'a str,
    total: u64,
    max_bytes: Option<u64>,
    max_files: Option<u64>,
    /// Files and bytes the token has archived.
    used: (u64, u64),
    /// A retry of archived bytes, or a look that archives nothing: no share.
    retry: bool,
}

impl<'a> Want<'a> {
    fn of(a: &'a Admitted, total: u64, retry: bool) -> Want<'a> {
        Want {
            token: &a.claims.id,
            prefix: &a.claims.prefix,
            name: &a.name,
            total,
            max_bytes: a.claims.max_bytes,
            max_files: a.claims.max_files,
            used: (a.row.files, a.row.bytes),
            retry,
        }
    }

    fn left(row: &'a TokenRow, name: &'a str, total: u64, retry: bool) -> Want<'a> {
        Want {
            token: &row.id,
            prefix: &row.prefix,
            name,
            total,
            max_bytes: row.max_bytes,
            max_files: row.max_files,
            used: (row.files, row.bytes),
            retry,
        }
    }
}

/// Releases a push's place in `busy` and its reservation when dropped.
struct Claim<'a> {
    server: &'a PushServer,
    token: String,
    key: String,
    bytes: u64,
    /// It took a file of the token's share.
    counted: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        lock(&self.server.busy).remove(&self.key);
        let mut reserved = lock(&self.server.reserved);
        if let Some(r) = reserved.get_mut(&self.token) {
            r.0 = r.0.saturating_sub(u64::from(self.counted));
            r.1 = r.1.saturating_sub(self.bytes);
            if *r == (0, 0) {
                reserved.remove(&self.token);
            }
        }
    }
}

impl PushServer {
    /// PUT or PATCH: checks, then receive, then archive.
    fn receive(&self, request: &mut Request, a: Admitted) -> Step<(Answer, &'static str)> {
        let entry = self.spool.entry(&a.claims.id, &a.name);
        let held_meta = entry.meta();
        let d = declared(request, held_meta.as_ref())?;
        self.file_cap(&d)?;
        if d.total == 0 && a.name.to_ascii_lowercase().ends_with(".gz") {
            return Err(refuse(400, "bad_request", "an empty file is no gzip log"));
        }
        let retry = self.known(&a, &d)?;
        let _claim = self.claim(&Want::of(&a, d.total, retry))?;
        let meta = Meta {
            name: a.name.clone(),
            size: d.total,
            sha256: d.sha256.clone(),
        };
        let whole = held_meta.as_ref() == Some(&meta) && entry.held() == d.total;
        if !whole {
            self.place(&entry, held_meta.as_ref(), &meta, &d)?;
            self.body(request, &entry, &meta, &d)?;
        }
        self.archive(&a, &entry, &meta)
    }

    /// The per-file cap.
    fn file_cap(&self, d: &Declared) -> Step<()> {
        let max_file = self.settings.max_file;
        if d.total > max_file {
            return Err(refuse(
                413,
                "too_large",
                format!(
                    "{} bytes is over this server's per-file cap of {max_file}",
                    d.total
                ),
            ));
        }
        Ok(())
    }

    /// What the inventory knows of the key: other bytes proven there is a
    /// 409 at once (nothing is replaced, the body need not come); the same
    /// bytes is a retry (`true`), whose body is still received and archived
    /// by the pipeline, which proves the stored copy again before the 200:
    /// the inventory alone cannot say the object is still there.
    fn known(&self, a: &Admitted, d: &Declared) -> Step<bool> {
        let proven = Archiver::proven(&a.inv, &a.key)
            .map_err(|e| refuse(503, "unavailable", e.to_string()))?;
        match proven {
            None => Ok(false),
            Some((sha, size)) if sha == d.sha256 && size == d.total => Ok(true),
            Some((sha, size)) => Err(refuse(
                409,
                "conflict",
                format!(
                    "other bytes are archived at {} already (sha256 {sha}, {size} bytes); nothing was replaced",
                    a.key
                ),
            )),
        }
    }

    /// One push per key at a time, and its share of the token's limits: a
    /// retry of archived bytes takes none (it archives nothing new).
    fn claim(&self, w: &Want<'_>) -> Step<Claim<'_>> {
        let key = Archiver::key(w.prefix, w.name);
        let mut busy = lock(&self.busy);
        if !busy.insert(key.clone()) {
            return Err(refuse(
                409,
                "conflict",
                "a push to this key is in progress; retry once it ended",
            ));
        }
        // Checked and reserved under one lock: parallel pushes of a token
        // cannot overrun its limits together, nor can bodies it left in the
        // spool (parts, or whole ones not archived yet).
        let mut reserved = lock(&self.reserved);
        let in_flight = reserved.get(w.token).copied().unwrap_or((0, 0));
        let spooled = self.spooled(w, &busy);
        drop(busy);
        let bytes = if w.retry { 0 } else { w.total };
        if !w.retry {
            let used = (in_flight.0 + spooled.0, in_flight.1 + spooled.1);
            if let Err(r) = token_room(w, used) {
                drop(reserved);
                lock(&self.busy).remove(&key);
                return Err(r);
            }
        }
        let r = reserved.entry(w.token.to_string()).or_insert((0, 0));
        r.0 += u64::from(!w.retry);
        r.1 += bytes;
        Ok(Claim {
            server: self,
            token: w.token.to_string(),
            key,
            bytes,
            counted: !w.retry,
        })
    }

    /// Files and declared bytes of the token's other spool entries that no
    /// push holds now (those are counted as in flight).
    fn spooled(&self, w: &Want<'_>, busy: &HashSet<String>) -> (u64, u64) {
        self.spool
            .token_entries(w.token)
            .into_iter()
            .filter(|m| m.name != w.name && !busy.contains(&Archiver::key(w.prefix, &m.name)))
            .fold((0, 0), |(f, b), m| (f + 1, b + m.size))
    }

    /// Where this body goes: a fresh start, or the end of what is held.
    /// Refuses when the spool would go below its free-space floor.
    fn place(&self, entry: &Entry, held: Option<&Meta>, meta: &Meta, d: &Declared) -> Step<()> {
        let have = entry.held();
        let needed = d.total.saturating_sub(if d.offset > 0 { have } else { 0 });
        self.room_for(needed)?;
        if d.offset == 0 {
            return entry.begin(meta).map_err(|e| {
                entry.discard();
                spool_error(&e)
            });
        }
        if held.is_none() {
            let mut r = refuse(409, "offset", "nothing of this file is held: PUT it whole");
            r.headers.push((wire::UPLOAD_OFFSET, "0".into()));
            return Err(r);
        }
        if held != Some(meta) {
            return Err(refuse(
                409,
                "conflict",
                "a push of this name with another size or SHA-256 is held: PUT the whole file to start over",
            ));
        }
        if have != d.offset {
            let mut r = refuse(
                409,
                "offset",
                format!(
                    "the server holds {have} bytes of this file, not {}: continue from there",
                    d.offset
                ),
            );
            r.headers.push((wire::UPLOAD_OFFSET, have.to_string()));
            return Err(r);
        }
        Ok(())
    }

    fn room_for(&self, needed: u64) -> Step<()> {
        let free = self.spool.free_bytes().map_err(|e| {
            refuse(
                507,
                "no_space",
                format!("the spool's free space cannot be read: {e}"),
            )
        })?;
        let floor = self.settings.min_free;
        if free < needed.saturating_add(floor) {
            return Err(refuse(
                507,
                "no_space",
                format!(
                    "the spool has {free} bytes free; {needed} more would leave less than its floor of {floor} (--spool-min-free)"
                ),
            ));
        }
        Ok(())
    }

    /// Receives the body into the spool, hashing it; a mismatch discards
    /// everything, a cut keeps what arrived.
    fn body(&self, request: &mut Request, entry: &Entry, meta: &Meta, d: &Declared) -> Step<()> {
        let (mut file, mut hasher) = entry.resume(d.offset).map_err(|e| {
            refuse(
                500,
                "error",
                format!("the spooled body cannot be continued: {e}"),
            )
        })?;
        let got = self.copy(request, &mut file, &mut hasher, d.length);
        let got = match got {
            Ok(n) => n,
            Err(r) => {
                // A spool that could not take it (full, or broken) keeps
                // nothing; a cut or slow body keeps what arrived.
                if r.status >= 500 {
                    entry.discard();
                }
                return Err(r);
            }
        };
        if got != d.length {
            return Err(refuse(
                400,
                "cut",
                format!(
                    "the body ended after {got} of {} bytes; HEAD for what is held, then continue",
                    d.length
                ),
            ));
        }
        let sha = crate::push::token::hex(&hasher.finalize());
        if sha != meta.sha256 {
            entry.discard();
            return Err(refuse(
                400,
                "bad_digest",
                format!(
                    "the body's SHA-256 is {sha}, not the {} declared: nothing of it was kept",
                    meta.sha256
                ),
            ));
        }
        // Not synced: nothing rests on the spooled copy being durable. The
        // archive step reads it again and must get this very digest (a body
        // a crash left short or zeroed is discarded, and the client, which
        // got no 201, pushes again); only the proven remote copy lets the
        // spooled one go. Syncing a 1 GiB body cost seconds per push.
        drop(file);
        Ok(())
    }

    /// Copies up to `length` bytes of the body, under the least-rate
    /// deadline; returns how many arrived before the body ended.
    fn copy(
        &self,
        request: &mut Request,
        file: &mut std::fs::File,
        hasher: &mut Sha256,
        length: u64,
    ) -> Step<u64> {
        let mut buf = vec![0u8; CHUNK];
        let (mut got, mut mark, mut checked) = (0u64, 0u64, 0u64);
        request.set_body_deadline(Some(Instant::now() + WINDOW));
        while got < length {
            let want = usize::try_from((length - got).min(CHUNK as u64)).unwrap_or(CHUNK);
            let n = match request.as_reader().read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(refuse(
                        408,
                        "slow",
                        format!(
                            "the body came slower than {MIN_PROGRESS} bytes per {} s; {got} bytes are held, continue with PATCH",
                            WINDOW.as_secs()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(refuse(
                        400,
                        "cut",
                        format!("the body was cut after {got} bytes: {e}"),
                    ));
                }
            };
            file.write_all(&buf[..n]).map_err(|e| spool_error(&e))?;
            hasher.update(&buf[..n]);
            got += n as u64;
            if got - mark >= MIN_PROGRESS {
                mark = got;
                request.set_body_deadline(Some(Instant::now() + WINDOW));
            }
            if got - checked >= FREE_CHECK_EVERY {
                checked = got;
                self.room_for(0)?;
            }
        }
        Ok(got)
    }
}

impl PushServer {
    /// The whole body through the upload pipeline, and the answer.
    fn archive(&self, a: &Admitted, entry: &Entry, meta: &Meta) -> Step<(Answer, &'static str)> {
        let done = self
            .archiver
            .archive(&a.inv, &a.claims.id, &a.claims.prefix, entry, meta)
            .map_err(|e| {
                refuse(
                    503,
                    "unavailable",
                    format!("received, but not recorded: {e}; the body is kept, retry the push"),
                )
            })?;
        Ok(match done {
            Archived::Stored(r) => (receipt(201, &r), "archived"),
            Archived::Exists(r) => (receipt(200, &r), "exists"),
            Archived::Conflict(why) => return Err(refuse(409, "conflict", why)),
            Archived::Kept { status, why } => {
                let gzip = status == crate::inventory::status::Status::FailedGzip;
                if gzip {
                    // Never archivable as a log: the row says so, the pusher
                    // keeps its file (no 201); the spool does not keep it.
                    entry.discard();
                }
                let code = if gzip { 422 } else { 503 };
                let mut r = refuse(code, "not_archived", format!("{}: {why}", status.as_str()));
                if code == 503 {
                    r.headers.push(("Retry-After", "30".into()));
                }
                return Err(r);
            }
        })
    }
}

/// A spool write that failed: 507 when the file system is full, 500 else.
fn spool_error(e: &std::io::Error) -> Refusal {
    let full = matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
    let (status, outcome) = if full {
        (507, "no_space")
    } else {
        (500, "error")
    };
    refuse(
        status,
        outcome,
        format!("the spool cannot take the body: {e}"),
    )
}

/// 201 or 200 with what was archived: the client compares the sha256 with
/// its own before it deletes anything.
fn receipt(status: u16, r: &Receipt) -> Answer {
    json_answer(
        status,
        &json!({"key": r.key, "sha256": r.sha256, "size": r.size, "url": r.url}),
    )
}
