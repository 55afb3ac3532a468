//! `fgbackup doctor`: checks a deployment end to end and prints one line per
//! check, with the fix for each failure. It reads the same flags and
//! environment as `upload`, so `doctor` with the unit's arguments tests
//! exactly what the timer will run.
//!
//! It writes nothing but one probe object (written, read back and deleted)
//! and a probe file in the log directory when `--delete` is set.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{self, Destination, UploadConfig};
use crate::digest::hex;
use crate::error::Result;
use crate::notify::email;
use crate::ops::archive as upload;
use crate::store::s3::{LockConfig, S3Store};
use crate::store::{Body, PutReceipt, RemoteObject, Store, StoreError, StoreErrorKind, Upload};

/// Env files of the Python suite, checked when they exist.
const DEFAULT_ENV_FILES: &[&str] = &["/etc/default/backup_fg", "/etc/default/backup_api"];
/// Variables whose presence makes an env file secret.
const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GMAIL_APP_PASSWORD",
    "SMTP_PASSWORD",
    "APP_TOKENS",
    "TELEGRAM_BOT_TOKEN",
    "SLACK_WEBHOOK_URL",
    "DISCORD_WEBHOOK_URL",
    "WEBHOOK_URL",
];
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The fix for a failed probe-object step without advice of its own.
const PROBE_FIX: &str = "the credentials need PutObject, GetObject and DeleteObject on the bucket (or write access to the directory)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    failed: usize,
    warned: usize,
    /// `--json`: checks are collected and printed as one object at the end.
    json: Option<Vec<serde_json::Value>>,
}

impl Report {
    fn line(&mut self, level: Level, what: &str, detail: &str, fix: &str) {
        if let Some(checks) = &mut self.json {
            let name = match level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Fail => "fail",
            };
            checks.push(
                serde_json::json!({"level": name, "check": what, "detail": detail,
                                           "fix": (!fix.is_empty()).then_some(fix)}),
            );
        }
        let tag = match level {
            Level::Ok => "[ OK ]",
            Level::Warn => {
                self.warned += 1;
                "[WARN]"
            }
            Level::Fail => {
                self.failed += 1;
                "[FAIL]"
            }
        };
        if self.json.is_some() {
            return;
        }
        if level == Level::Ok || fix.is_empty() {
            println!("{tag} {what}: {detail}");
        } else {
            println!("{tag} {what}: {detail} -> fix: {fix}");
        }
    }
}

/// Runs every check; returns the exit status (1 when anything failed).
pub fn run(args: &crate::cli::Args, env: crate::cli::Env) -> Result<i32> {
    let mut report = Report {
        failed: 0,
        warned: 0,
        json: args.flag("--json").then(Vec::new),
    };
    let mut env_files: Vec<PathBuf> = args
        .values("--env-file")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if env_files.is_empty() {
        env_files = DEFAULT_ENV_FILES
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect();
    }
    for f in &env_files {
        check_env_file(&mut report, f);
    }

    let cfg = match config::parse_upload(args, env) {
        Ok(c) => c,
        Err(e) => {
            report.line(
                Level::Fail,
                "configuration",
                &e.to_string(),
                "see 'fgbackup upload --help'",
            );
            return Ok(summary(&report));
        }
    };
    report.line(
        Level::Ok,
        "configuration",
        "flags and environment are valid",
        "",
    );
    check_log_dir(&mut report, &cfg);
    check_database(&mut report, &cfg.db_path);
    check_destination(&mut report, &cfg);
    if let Some(mail) = &cfg.notify.email {
        check_smtp(&mut report, mail);
    }
    Ok(summary(&report))
}

fn summary(r: &Report) -> i32 {
    let code = i32::from(r.failed > 0);
    match &r.json {
        Some(checks) => println!(
            "{}",
            serde_json::json!({"command": "doctor", "ok": code == 0, "exit_code": code,
                               "failed": r.failed, "warned": r.warned, "checks": checks})
        ),
        None => println!("doctor: {} failure(s), {} warning(s)", r.failed, r.warned),
    }
    code
}

fn check_env_file(r: &mut Report, path: &Path) {
    let what = format!("env file {}", path.display());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return r.line(
                Level::Fail,
                &what,
                &format!("cannot read: {e}"),
                "create it from etc/backup_fg.env.example",
            );
        }
    };
    // Read with systemd's EnvironmentFile= rules, so `export X=...` and
    // `X = ...` count; a variable set to nothing holds no secret. Values are
    // never shown. A file this user cannot read is judged by its mode alone.
    let (assignments, unreadable) = match std::fs::read(path) {
        Ok(bytes) => (
            crate::envfile::parse(&String::from_utf8_lossy(&bytes)),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    let secrets: Vec<&str> = SECRET_VARS
        .iter()
        .copied()
        .filter(|v| {
            assignments
                .iter()
                .any(|a| a.key == *v && !a.value.is_empty())
        })
        .collect();
    let mode = meta.permissions().mode() & 0o777;
    if !secrets.is_empty() && mode & 0o077 != 0 {
        r.line(
            Level::Warn,
            &what,
            &format!(
                "holds {} but its mode is {mode:04o} (readable by others)",
                secrets.join(", ")
            ),
            &format!("chmod 600 {}", path.display()),
        );
    } else if let Some(e) = unreadable {
        let detail = format!("mode {mode:04o} (contents not readable by this user: {e})");
        r.line(Level::Ok, &what, &detail, "");
    } else {
        r.line(Level::Ok, &what, &format!("mode {mode:04o}"), "");
    }
}

fn check_log_dir(r: &mut Report, cfg: &UploadConfig) {
    let what = format!("log directory {}", cfg.dir.display());
    match std::fs::read_dir(&cfg.dir) {
        Ok(_) => {
            let found = crate::scan::scan(
                &cfg.dir,
                &cfg.include,
                cfg.min_age,
                std::time::SystemTime::now(),
                &upload::own_files(cfg),
                upload::store_root_identity(cfg),
            );
            r.line(
                Level::Ok,
                &what,
                &format!(
                    "readable; {} file(s) ready to archive, {} newer than --min-age",
                    found.candidates.len(),
                    found.too_young
                ),
                "",
            );
            for w in found.warnings {
                r.line(Level::Fail, &what, &w, "give the service user read access");
            }
        }
        Err(e) => {
            return r.line(
                Level::Fail,
                &what,
                &format!("cannot list: {e}"),
                "give the service user read access (and ReadWritePaths= in the unit)",
            );
        }
    }
    if cfg.delete {
        match write_probe(&cfg.dir) {
            Ok(()) => r.line(Level::Ok, &what, "writable: --delete can remove archived files", ""),
            Err(e) => r.line(Level::Fail, &what, &format!("--delete is set but files cannot be removed here ({e})"), "give the service user write access to the directory, or drop --delete/DELETE_AFTER"),
        }
    }
}

/// Creates, writes and removes a probe file in `dir`: whether the service
/// user may create and delete files there. The probe's name is fresh and
/// created with `O_EXCL | O_NOFOLLOW`, so a link planted in a directory
/// others can write is never written through.
fn write_probe(dir: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let d = crate::dirfd::Dir::open(dir)?;
    let (name, mut f) = d.create_unique(".fgbackup-doctor-", 0o600)?;
    let written = f.write_all(b"probe");
    let removed = d.unlink(&name);
    written.and(removed)
}

fn check_database(r: &mut Report, db: &Path) {
    let what = format!("database {}", db.display());
    if !db.exists() {
        let parent = db.parent().unwrap_or(Path::new("."));
        // Nothing is created here: the nearest existing directory must let
        // the first upload create what is missing.
        let dir = parent
            .ancestors()
            .find(|a| a.is_dir())
            .unwrap_or(Path::new("."));
        let detail = if dir == parent {
            "does not exist yet; its directory is writable, the first upload creates it".to_string()
        } else {
            format!(
                "does not exist yet; {} is writable, the first upload creates {} and the database",
                dir.display(),
                parent.display()
            )
        };
        return match write_probe(dir) {
            Ok(()) => r.line(Level::Ok, &what, &detail, ""),
            Err(e) => r.line(
                Level::Fail,
                &what,
                &format!("does not exist and {} is not writable ({e})", dir.display()),
                "create the directory for the service user, or set --db/DB_PATH",
            ),
        };
    }
    let conn = match rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    ) {
        Ok(c) => c,
        Err(e) => {
            return r.line(
                Level::Fail,
                &what,
                &format!("cannot open for writing: {e}"),
                "give the service user write access to the file and its directory",
            );
        }
    };
    let version: rusqlite::Result<i64> =
        conn.query_row("PRAGMA user_version", [], |row| row.get(0));
    let writable = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;");
    match (version, writable) {
        (Ok(v), Ok(())) => {
            let note = if v < crate::inventory::SCHEMA_VERSION {
                format!(
                    "writable, schema version {v} (the next upload migrates it to {})",
                    crate::inventory::SCHEMA_VERSION
                )
            } else {
                format!("writable, schema version {v}")
            };
            r.line(Level::Ok, &what, &note, "");
        }
        (Err(e), _) | (_, Err(e)) => r.line(
            Level::Fail,
            &what,
            &format!("not usable: {e}"),
            "check the file is a SQLite database and writable by the service user",
        ),
    }
}

/// The SMTP server answers: for plain and STARTTLS it must send its `220`
/// greeting within [`email::SMTP_STEP_TIMEOUT`], which catches a server
/// (or a wrong port) that accepts connections and never speaks, the case
/// that would make every email time out. Bounded as a whole, name lookup
/// included, like the email itself.
fn check_smtp(r: &mut Report, mail: &email::EmailConfig) {
    let label = format!("SMTP server {}:{}", mail.host, mail.port);
    let fix = "check --smtp-host/SMTP_HOST, --smtp-port/SMTP_PORT and --email-method/EMAIL_METHOD, and the firewall";
    let (host, port, method) = (mail.host.clone(), mail.port, mail.method);
    let probe = crate::signal::run_bounded("doctor-smtp", email::EMAIL_TIMEOUT, move || {
        smtp_greeting(&host, port, method)
    });
    match probe {
        Ok(Ok(detail)) => r.line(Level::Ok, &label, &detail, ""),
        Ok(Err(why)) => r.line(Level::Fail, &label, &why, fix),
        Err(why) => r.line(Level::Fail, &label, &why.to_string(), fix),
    }
}

/// Connects to the first address of `host` that accepts, then reads the
/// greeting line (not for SMTPS, whose first bytes are TLS).
fn smtp_greeting(
    host: &str,
    port: u16,
    method: email::Method,
) -> std::result::Result<String, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("name does not resolve ({e})"))?;
    let mut last = String::from("no address");
    let mut conn = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let conn = conn.ok_or_else(|| format!("not reachable ({last})"))?;
    if method == email::Method::Smtps {
        return Ok("reachable (smtps: TLS from the first byte, tried by the first email)".into());
    }
    conn.set_read_timeout(Some(email::SMTP_STEP_TIMEOUT))
        .map_err(|e| format!("cannot set a read timeout: {e}"))?;
    let mut line = String::new();
    let read = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(std::io::Read::take(conn, 512)),
        &mut line,
    );
    let shown: String = line
        .trim_end()
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    match read {
        Ok(_) if line.starts_with("220") => Ok(format!("reachable, greets: {shown}")),
        Ok(0) => Err("closes the connection without a greeting".into()),
        Ok(_) => Err(format!("answers '{shown}' instead of a 220 greeting")),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!(
                "accepts connections but sends no greeting within {} s (an SMTPS port with EMAIL_METHOD={}?)",
                email::SMTP_STEP_TIMEOUT.as_secs(),
                method.as_str()
            ))
        }
        Err(e) => Err(format!("greeting not readable ({e})")),
    }
}

fn check_tcp(r: &mut Report, what: &str, host: &str, port: u16, fix: &str) -> bool {
    let label = format!("{what} {host}:{port}");
    let addrs = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            r.line(
                Level::Fail,
                &label,
                &format!("name does not resolve ({e})"),
                fix,
            );
            return false;
        }
    };
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(_) => {
                r.line(Level::Ok, &label, "reachable", "");
                return true;
            }
            Err(e) => last = e.to_string(),
        }
    }
    r.line(Level::Fail, &label, &format!("not reachable ({last})"), fix);
    false
}

fn check_destination(r: &mut Report, cfg: &UploadConfig) {
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
    let store = match upload::open_store(&unlocked) {
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
fn problem_and_fix<'a>(e: &'a StoreError, fallback: &'a str) -> (&'a str, &'a str) {
    match &e.advice {
        Some(a) => (&a.problem, &a.fix),
        None => (&e.message, fallback),
    }
}

/// The fix for a destination check that failed without advice.
fn check_fix(e: &StoreError, destination: &Destination) -> &'static str {
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
fn s3_store(cfg: &UploadConfig) -> std::result::Result<S3Store, String> {
    let Destination::S3 {
        bucket, settings, ..
    } = &cfg.destination
    else {
        return Err("not an S3 destination".into());
    };
    crate::ops::archive::s3_options(&cfg.destination, &cfg.transfer, cfg.workers)
        .and_then(|o| S3Store::new(bucket, settings, o))
        .map_err(|e| e.to_string())
}

/// One line on the bucket's Object Lock: informative, unless
/// `--object-lock` is set and the bucket cannot keep locks.
fn check_object_lock(r: &mut Report, what: &str, cfg: &UploadConfig) {
    let found = s3_store(cfg).and_then(|s| s.object_lock_config().map_err(|e| e.message));
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
fn probe(r: &mut Report, store: &dyn Store, what: &str, cfg: &UploadConfig) {
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
fn probe_stored(
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
fn check_no_replace(
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
fn report_server_checksum(r: &mut Report, what: &str, checksum: Option<&str>, sha: &str) {
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
fn probe_upload<'a>(key: &'a str, body: &'a [u8], sha: &'a str) -> Upload<'a> {
    Upload {
        key,
        body: Body::Memory(body),
        size: body.len() as u64,
        sha256: sha,
        parts: None,
    }
}

/// Whether the server checks `x-amz-checksum-sha256` against the body.
fn check_checksum_enforced(r: &mut Report, what: &str, cfg: &UploadConfig, key: &str) {
    if !matches!(cfg.destination, Destination::S3 { .. }) {
        return;
    }
    let result = s3_store(cfg).and_then(|s| s.rejects_bad_checksum(key).map_err(|e| e.message));
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

/// `https://minio.lan:9000/x` → (`minio.lan`, 9000).
fn host_port(url: &str) -> (String, u16) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let default = if scheme == "http" { 80 } else { 443 };
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse() {
            Ok(port) => (h.trim_matches(['[', ']']).to_string(), port),
            Err(_) => (authority.to_string(), default),
        },
        _ => (authority.trim_matches(['[', ']']).to_string(), default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_to_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:9000"),
            ("127.0.0.1".to_string(), 9000)
        );
        assert_eq!(
            host_port("https://minio.site.lan"),
            ("minio.site.lan".to_string(), 443)
        );
        assert_eq!(host_port("http://minio/"), ("minio".to_string(), 80));
        assert_eq!(host_port("https://[::1]:9443"), ("::1".to_string(), 9443));
    }
}
