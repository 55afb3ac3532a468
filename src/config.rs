//! Settings of `fgbackup upload`: flags first, then the Python suite's
//! environment names (`DIR`, `BUCKET`, `DELETE_AFTER`, `WORKERS`, `DB_PATH`),
//! then defaults. Every problem becomes one line naming the flag or variable
//! and the fix.

use crate::cli::flags;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::aws::{self, S3Flags, S3Settings};
use crate::cli::table::Flag;
use crate::cli::{Args, Env, Source};
use crate::error::{Error, Result};
use crate::store::s3::ObjectLock;
use crate::units::{parse_duration, parse_size};

pub use crate::cli::flags::DEFAULT_DB_PATH;

/// Smallest part S3 accepts in a multipart upload (all but the last part).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part S3 accepts.
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Longest `--object-lock-days` (100 years, S3's limit).
const MAX_LOCK_DAYS: u32 = 36_500;
/// Files up to this size go in one PUT: one request, one checksum the
/// server verifies whole. FortiGate logs rotate far below it.
pub const DEFAULT_MULTIPART_CUTOFF: u64 = 256 * 1024 * 1024;
/// Parts of larger files. Parts stream from disk, so their size costs no
/// memory; larger parts mean fewer requests.
pub const DEFAULT_PART_SIZE: u64 = 64 * 1024 * 1024;

/// What to do when the key of a file holds an object with other content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Keep the file and report `failed_conflict` (the default).
    Keep,
    /// Archive the file beside the other object, under a key carrying the
    /// first 16 hex digits of its SHA-256, so both versions exist.
    Suffix,
}

/// Where archived files go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// An S3 bucket (AWS or any S3-compatible endpoint).
    S3 {
        bucket: String,
        settings: S3Settings,
        ca_file: Option<PathBuf>,
    },
    /// A directory (local disk, NFS, USB): `--dest file:///mnt/archive`.
    Local { root: PathBuf },
}

/// Fully validated settings for one upload run.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub dir: PathBuf,
    pub destination: Destination,
    /// Prepended to every object key (no leading slash, ends with `/` when set).
    pub prefix: String,
    pub include: Vec<String>,
    pub min_age: Duration,
    pub delete: bool,
    pub workers: usize,
    pub dry_run: bool,
    pub db_path: PathBuf,
    pub retries: u32,
    /// Multipart cutoff and part size, `--gzip-check`, `--bwlimit`, bucket options.
    pub transfer: Transfer,
    /// Who hears about the run (email, webhooks, flag file, textfile).
    pub notify: crate::notify::NotifyConfig,
    /// Inflate every `.gz` to prove it complete before it may be deleted
    /// (`--gzip-check`, resolved: `auto` is on exactly when deleting).
    pub gzip_check: bool,
    /// `--on-conflict`.
    pub on_conflict: OnConflict,
    /// `--manifest-key`/`MANIFEST_KEY`: sign a manifest after each run.
    pub manifest_key: Option<PathBuf>,
    /// `--json`: the summary as one JSON object on stdout.
    pub json: bool,
    /// `-v`, `-q`, `-P`, `--no-progress`, resolved.
    pub output: crate::progress::Output,
}

/// Reads the upload settings from `args` (the flags of `upload`, `daemon`
/// or `doctor`) and `env`.
pub fn parse_upload(args: &Args, env: Env) -> Result<UploadConfig> {
    let target = parse_target(args, env)?;
    let dir = source_dir(args, env)?;
    let delete = if args.flag(&flags::NO_DELETE) {
        if args.flag(&flags::DELETE) {
            return Err(Error::usage(
                "--delete and --no-delete contradict each other: pass one",
            ));
        }
        false
    } else {
        args.switch_or_env(&flags::DELETE, env)?.unwrap_or(false)
    };
    let min_age = args
        .parse_with(
            &flags::MIN_AGE,
            env,
            parse_duration,
            "is not a duration: use seconds or a unit, e.g. 300, 90s, 5m, 1h",
        )?
        .unwrap_or_default();
    let include: Vec<String> = args
        .get(&flags::INCLUDE, env)
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if include.is_empty() {
        return Err(Error::usage(
            "--include is empty: give a pattern such as '*.gz'",
        ));
    }
    let on_conflict = args
        .parse_with(
            &flags::ON_CONFLICT,
            env,
            |v| match v {
                "keep" => Some(OnConflict::Keep),
                "suffix" => Some(OnConflict::Suffix),
                _ => None,
            },
            "is not understood: use keep or suffix",
        )?
        .unwrap_or(OnConflict::Keep);
    if let Destination::Local { root } = &target.destination {
        refuse_overlap(&dir, root)?;
    }
    let manifest_key = manifest_key(args, env)?;
    Ok(UploadConfig {
        dir,
        destination: target.destination,
        prefix: target.prefix,
        include,
        min_age,
        delete,
        workers: target.workers,
        dry_run: args.flag(&flags::DRY_RUN),
        db_path: target.db_path,
        retries: target.retries,
        gzip_check: target.transfer.gzip.enabled(delete),
        transfer: target.transfer,
        notify: target.notify,
        on_conflict,
        manifest_key,
        json: args.flag(&flags::JSON),
        output: crate::progress::parse_output(args)?,
    })
}

/// `--manifest-key`/`MANIFEST_KEY`, loaded at start so a bad key fails
/// before the run, not after it.
pub fn manifest_key(args: &Args, env: Env) -> Result<Option<PathBuf>> {
    let key = args
        .get(&flags::MANIFEST_KEY, env)
        .filter(|k| !k.is_empty())
        .map(PathBuf::from);
    if let Some(k) = &key {
        crate::sign::Signer::load(k)?;
    }
    Ok(key)
}

/// `--dir`/`DIR`: must name a readable directory.
fn source_dir(args: &Args, env: Env) -> Result<PathBuf> {
    let dir = args
        .get(&flags::DIR, env)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            Error::usage("no source directory: pass --dir /var/log/fortinet or set DIR")
        })?;
    let dir = PathBuf::from(dir);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(Error::usage(format!(
            "--dir {} is not a directory: point it at the folder holding the .gz logs",
            dir.display()
        ))),
        Err(e) => Err(Error::usage(format!(
            "--dir {} cannot be read ({e}): check the path and permissions",
            dir.display()
        ))),
    }
}

/// The archive a command works on and how it talks to it: what `upload`,
/// `verify`, `restore`, `reindex` and `prune` share (destination, prefix,
/// inventory, workers, retries, data-path flags, notifications).
#[derive(Debug, Clone)]
pub struct Target {
    pub destination: Destination,
    pub prefix: String,
    pub db_path: PathBuf,
    pub workers: usize,
    pub retries: u32,
    pub transfer: Transfer,
    pub notify: crate::notify::NotifyConfig,
}

/// Reads the [`Target`] flags and their environment names.
pub fn parse_target(args: &Args, env: Env) -> Result<Target> {
    let ca_file = args.get(&flags::CA_FILE, env);
    if let Some(ca) = &ca_file
        && let Err(e) = std::fs::read(ca)
    {
        return Err(Error::usage(format!(
            "--ca-file {ca} cannot be read ({e}): give the PEM file of the CA that signed the server's certificate"
        )));
    }
    let transfer = parse_transfer(args, env)?;
    let notify = crate::notify::parse(args, env, ca_file.clone().map(PathBuf::from))?;
    let workers = args.number(&flags::WORKERS, env, 1..=64)?.unwrap_or(1);
    let retries = args.number(&flags::RETRIES, env, 0..=20)?.unwrap_or(0);
    let prefix = normalize_prefix(&args.get(&flags::PREFIX, env).unwrap_or_default())?;
    let destination = destination(args, ca_file, env)?;
    if let Destination::Local { .. } = &destination {
        if let Some(flag) = transfer.s3_only_flag() {
            return Err(Error::usage(format!(
                "{flag} applies to S3 buckets only, not to --dest file://: remove it"
            )));
        }
        if prefix.split('/').next() == Some(crate::store::local::STORE_DIR) {
            return Err(Error::usage(format!(
                "--prefix '{prefix}' starts with '{}', which the directory store reserves for its own data: choose another prefix",
                crate::store::local::STORE_DIR
            )));
        }
    }
    Ok(Target {
        destination,
        prefix,
        db_path: db_path(args, env)?,
        workers,
        retries,
        transfer,
        notify,
    })
}

/// `--db`/`DB_PATH`. Only the default location's directory is created when
/// missing; a path the admin typed must be in an existing
/// directory, so a typo fails instead of starting a second, empty inventory.
pub fn db_path(args: &Args, env: Env) -> Result<PathBuf> {
    let (path, source) = args
        .lookup(&flags::DB, env)
        .unwrap_or_else(|| (DEFAULT_DB_PATH.to_string(), Source::Default));
    let name = match source {
        Source::Env(var) => var.to_string(),
        _ => "--db".to_string(),
    };
    if path.trim().is_empty() {
        return Err(Error::usage(format!(
            "{name} is empty: give the database file, e.g. {DEFAULT_DB_PATH}"
        )));
    }
    let path = PathBuf::from(path);
    if path.is_dir() {
        return Err(Error::usage(format!(
            "{name} {} is a directory: give the database file in it, e.g. {}",
            path.display(),
            path.join("backup_records.db").display()
        )));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    // The default location counts as the default however it was given (the
    // suite's env file spells it out as DB_PATH).
    if source != Source::Default
        && path != Path::new(DEFAULT_DB_PATH)
        && let Some(parent) = parent
        && !parent.is_dir()
    {
        return Err(Error::usage(format!(
            "{name} {}: directory {} does not exist: correct the path or create the directory first (only the default {DEFAULT_DB_PATH} is created for you)",
            path.display(),
            parent.display()
        )));
    }
    Ok(path)
}

/// `--bucket`/`BUCKET` or `--dest`, exactly one.
fn destination(args: &Args, ca_file: Option<String>, env: Env) -> Result<Destination> {
    let s3_flags = &s3_flags(args);
    match (
        args.get(&flags::BUCKET, env).filter(|b| !b.is_empty()),
        args.value(&flags::DEST),
    ) {
        (Some(_), Some(_)) => Err(Error::usage(
            "both a bucket (--bucket/BUCKET) and --dest are set: choose one destination",
        )),
        (None, None) => Err(Error::usage(
            "no destination: pass --bucket NAME (or set BUCKET) for S3, or --dest file:///DIR for a directory",
        )),
        (Some(bucket), None) => s3_destination(bucket, s3_flags, ca_file, env),
        (None, Some(dest)) => {
            if let Some(path) = dest.strip_prefix("file://") {
                if !path.starts_with('/') {
                    return Err(Error::usage(format!(
                        "--dest '{dest}' needs an absolute path: file:///mnt/archive"
                    )));
                }
                Ok(Destination::Local {
                    root: PathBuf::from(path),
                })
            } else if let Some(bucket) = dest.strip_prefix("s3://") {
                s3_destination(
                    bucket.trim_end_matches('/').to_string(),
                    s3_flags,
                    ca_file,
                    env,
                )
            } else {
                Err(Error::usage(format!(
                    "--dest '{dest}' is not understood: use file:///DIR or s3://BUCKET"
                )))
            }
        }
    }
}

/// `--profile`, `--region`, `--endpoint`: their environment names are
/// resolved with the profile's by [`aws::resolve`].
fn s3_flags(args: &Args) -> S3Flags {
    S3Flags {
        profile: args.value(&flags::PROFILE),
        region: args.value(&flags::REGION),
        endpoint: args.value(&flags::ENDPOINT),
    }
}

/// `--gzip-check`: when to inflate `.gz` files to prove them complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipCheck {
    /// Only when the file will be deleted: that is what the proof protects.
    Auto,
    Always,
    Never,
}

impl GzipCheck {
    /// Whether a run with `delete` inflates `.gz` files.
    pub fn enabled(self, delete: bool) -> bool {
        match self {
            GzipCheck::Auto => delete,
            GzipCheck::Always => true,
            GzipCheck::Never => false,
        }
    }
}

/// How the bytes travel: the data-path flags of `upload`, `daemon` and `doctor`.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Files larger than this go in parts (`--multipart-cutoff`).
    pub multipart_cutoff: u64,
    /// `--part-size`, for those files.
    pub part_size: u64,
    pub gzip: GzipCheck,
    /// `--bwlimit`, `None` when off.
    pub bwlimit: Option<crate::engine::throttle::BwLimit>,
    /// `--storage-class`, `--sse`, `--sse-kms-key-id` (S3 only).
    pub storage_class: Option<String>,
    pub sse: Option<String>,
    pub sse_kms_key_id: Option<String>,
    /// `--object-lock MODE --object-lock-days N` (S3 only).
    pub object_lock: Option<ObjectLock>,
}

impl Default for Transfer {
    fn default() -> Transfer {
        Transfer {
            multipart_cutoff: DEFAULT_MULTIPART_CUTOFF,
            part_size: DEFAULT_PART_SIZE,
            gzip: GzipCheck::Auto,
            bwlimit: None,
            storage_class: None,
            sse: None,
            sse_kms_key_id: None,
            object_lock: None,
        }
    }
}

/// Reads the data-path flags; each error names its flag and a valid example.
fn parse_transfer(args: &Args, env: Env) -> Result<Transfer> {
    let size = |flag: &Flag| {
        args.parse_with(
            flag,
            env,
            |v| parse_size(v).filter(|n| (MIN_PART_SIZE..=MAX_PART_SIZE).contains(n)),
            "must be a size from 5MiB to 5GiB, e.g. 64MiB",
        )
    };
    if args.flag(&flags::MAX_MEMORY) {
        log::warn!(
            "--max-memory is no longer used and is ignored: uploads stream from disk, so memory does not grow with file size; remove the flag"
        );
    }
    let bwlimit = match args.get(&flags::BWLIMIT, env) {
        None => None,
        Some(v) => {
            let limit = crate::engine::throttle::BwLimit::parse(&v).map_err(|why| {
                Error::usage(format!(
                    "--bwlimit '{v}': {why}; e.g. 512k, 10M, or \"08:00,512k 19:00,off\""
                ))
            })?;
            (!limit.is_off()).then_some(limit)
        }
    };
    let storage_class = args.parse_with(
        &flags::STORAGE_CLASS,
        env,
        |c| {
            (!c.is_empty() && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
                .then(|| c.to_string())
        },
        "is not an S3 storage class such as STANDARD_IA or GLACIER_IR",
    )?;
    let (sse, sse_kms_key_id) = parse_sse(args, env)?;
    Ok(Transfer {
        multipart_cutoff: size(&flags::MULTIPART_CUTOFF)?.unwrap_or(DEFAULT_MULTIPART_CUTOFF),
        part_size: size(&flags::PART_SIZE)?.unwrap_or(DEFAULT_PART_SIZE),
        gzip: parse_gzip_check(args, env)?,
        bwlimit,
        storage_class,
        sse,
        sse_kms_key_id,
        object_lock: parse_object_lock(args, env)?,
    })
}

/// `--sse AES256|aws:kms` and `--sse-kms-key-id` (only with `aws:kms`).
fn parse_sse(args: &Args, env: Env) -> Result<(Option<String>, Option<String>)> {
    let sse = args.get(&flags::SSE, env);
    let key = args.get(&flags::SSE_KMS_KEY_ID, env);
    match (sse.as_deref(), &key) {
        (None | Some("AES256"), None) | (Some("aws:kms"), _) => Ok((sse, key)),
        (None | Some("AES256"), Some(_)) => {
            Err(Error::usage("--sse-kms-key-id needs --sse aws:kms"))
        }
        (Some(other), _) => Err(Error::usage(format!(
            "--sse '{other}' is not understood: use AES256 or aws:kms"
        ))),
    }
}

/// `--object-lock MODE` with `--object-lock-days N` (or `OBJECT_LOCK_MODE`
/// with `OBJECT_LOCK_DAYS`): both or neither. An empty value is unset, as
/// systemd passes an unset variable.
fn parse_object_lock(args: &Args, env: Env) -> Result<Option<ObjectLock>> {
    let read = |flag: &Flag| args.get(flag, env).filter(|v| !v.trim().is_empty());
    let (mode, days) = match (read(&flags::OBJECT_LOCK), read(&flags::OBJECT_LOCK_DAYS)) {
        (None, None) => return Ok(None),
        (Some(m), Some(d)) => (m, d),
        _ => {
            return Err(Error::usage(
                "--object-lock/OBJECT_LOCK_MODE and --object-lock-days/OBJECT_LOCK_DAYS go together: give both (e.g. --object-lock GOVERNANCE --object-lock-days 30) or neither",
            ));
        }
    };
    let upper = mode.trim().to_ascii_uppercase();
    if upper != "GOVERNANCE" && upper != "COMPLIANCE" {
        return Err(Error::usage(format!(
            "--object-lock/OBJECT_LOCK_MODE '{mode}' is not understood: use GOVERNANCE (deletable only with s3:BypassGovernanceRetention) or COMPLIANCE (by nobody until the date)"
        )));
    }
    let days = match days.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_LOCK_DAYS).contains(&n) => n,
        _ => {
            return Err(Error::usage(format!(
                "--object-lock-days/OBJECT_LOCK_DAYS '{days}' must be a whole number of days from 1 to {MAX_LOCK_DAYS}"
            )));
        }
    };
    Ok(Some(ObjectLock { mode: upper, days }))
}

/// `--gzip-check auto|always|never`, or the older `--no-gzip-check`.
fn parse_gzip_check(args: &Args, env: Env) -> Result<GzipCheck> {
    if args.flag(&flags::NO_GZIP_CHECK) {
        if args.flag(&flags::GZIP_CHECK) {
            return Err(Error::usage(
                "--gzip-check and --no-gzip-check contradict each other: pass one",
            ));
        }
        return Ok(GzipCheck::Never);
    }
    Ok(args
        .parse_with(
            &flags::GZIP_CHECK,
            env,
            |v| match v {
                "auto" => Some(GzipCheck::Auto),
                "always" => Some(GzipCheck::Always),
                "never" => Some(GzipCheck::Never),
                _ => None,
            },
            "is not understood: use auto (check when --delete is set), always or never",
        )?
        .unwrap_or(GzipCheck::Auto))
}

impl Transfer {
    /// One line for `doctor`: how files will travel and what objects carry.
    pub fn describe(&self, s3: bool) -> String {
        let mib = |n: u64| n / (1024 * 1024);
        let mut parts = vec![
            format!(
                "one PUT per file up to {} MiB, {} MiB parts above",
                mib(self.multipart_cutoff),
                mib(self.part_size)
            ),
            format!(
                "gzip check {}",
                match self.gzip {
                    GzipCheck::Auto => "auto (on with --delete)",
                    GzipCheck::Always => "always",
                    GzipCheck::Never => "never",
                }
            ),
            match &self.bwlimit {
                None => "bandwidth unlimited".into(),
                Some(l) => format!("--bwlimit {}", l.describe()),
            },
        ];
        if s3 {
            parts.push(format!(
                "storage class {}",
                self.storage_class.as_deref().unwrap_or("(bucket default)")
            ));
            parts.push(match (&self.sse, &self.sse_kms_key_id) {
                (None, _) => "encryption: bucket default".into(),
                (Some(s), None) => format!("encryption {s}"),
                (Some(s), Some(k)) => format!("encryption {s} with key {k}"),
            });
            parts.push(match &self.object_lock {
                None => "Object Lock (bucket default)".into(),
                Some(l) => format!("Object Lock {} for {} days", l.mode, l.days),
            });
        }
        parts.join("; ")
    }

    /// The flags that only mean something for an S3 destination, if set.
    fn s3_only_flag(&self) -> Option<&'static str> {
        if self.storage_class.is_some() {
            Some("--storage-class")
        } else if self.sse.is_some() {
            Some("--sse")
        } else if self.object_lock.is_some() {
            Some("--object-lock/OBJECT_LOCK_MODE")
        } else {
            None
        }
    }
}

/// A directory store inside the log directory (or containing it) would
/// archive its own objects and, with `--delete`, delete the archive itself.
fn refuse_overlap(dir: &Path, root: &Path) -> Result<()> {
    let resolve = |p: &Path, what: &str| {
        crate::paths::resolve(p)
            .map_err(|e| Error::usage(format!("{what} {} cannot be resolved ({e})", p.display())))
    };
    let (d, r) = (resolve(dir, "--dir")?, resolve(root, "--dest")?);
    if crate::paths::overlap(&d, &r) {
        return Err(Error::usage(format!(
            "--dest file://{} and --dir {} overlap ({} and {}): the archive must be outside the log directory and must not contain it",
            root.display(),
            dir.display(),
            r.display(),
            d.display()
        )));
    }
    Ok(())
}

fn s3_destination(
    bucket: String,
    flags: &S3Flags,
    ca_file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Destination> {
    if !valid_bucket_name(&bucket) {
        return Err(Error::usage(format!(
            "bucket name '{bucket}' is invalid: 3-63 lowercase letters, digits, dots or hyphens"
        )));
    }
    let ca_file = ca_file.map(PathBuf::from);
    Ok(Destination::S3 {
        bucket,
        settings: aws::resolve(flags, env)?,
        ca_file,
    })
}

/// S3's bucket naming rules, checked early so a typo is not a 400 from the server.
fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Turns `logs`, `/logs/`, `site-a/fw` into `logs/`, `site-a/fw/`; rejects `..`.
fn normalize_prefix(raw: &str) -> Result<String> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(Error::usage(format!(
            "--prefix '{raw}' has an empty, '.' or '..' segment: use a plain path like site-a/fw"
        )));
    }
    Ok(format!("{trimmed}/"))
}

/// API settings parsed from flags and environment, before the presign store
/// is built (that needs the S3 settings, which differ for `serve` and `daemon`).
pub struct ServeFlags {
    pub listen: String,
    pub db_path: PathBuf,
    pub tokens: crate::api::Tokens,
    pub threads: usize,
    pub metrics_public: bool,
    pub presign: bool,
    pub presign_max: u32,
}

/// Reads the API flags (`--listen`, `--threads`, `--metrics-no-auth`,
/// `--presign`, `--presign-max`, `--tokens-file`, `--db`) and `APP_TOKENS`.
pub fn parse_serve_flags(args: &Args, env: Env) -> Result<ServeFlags> {
    let listen = args.get(&flags::LISTEN, env).unwrap_or_default();
    if listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(Error::usage(format!(
            "--listen '{listen}' is not an address: use IP:PORT, e.g. 127.0.0.1:8080"
        )));
    }
    let presign_max = args.parse_with(
        &flags::PRESIGN_MAX,
        env,
        |v| v.parse::<u32>().ok().filter(|n| (1..=604_800).contains(n)),
        "must be seconds from 1 to 604800 (7 days, the S3 limit)",
    )?;
    let tokens_file = args
        .get(&flags::TOKENS_FILE, env)
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    Ok(ServeFlags {
        listen,
        db_path: db_path(args, env)?,
        tokens: crate::api::Tokens::new(env("APP_TOKENS").as_deref(), tokens_file),
        threads: args.number(&flags::THREADS, env, 1..=64)?.unwrap_or(1),
        metrics_public: args.flag(&flags::METRICS_NO_AUTH),
        presign: args.flag(&flags::PRESIGN),
        presign_max: presign_max.unwrap_or(1),
    })
}

/// `--bucket`/`BUCKET` and the S3 connection flags, for `serve --presign`.
pub fn parse_presign_bucket(args: &Args, env: Env) -> Result<(String, S3Settings)> {
    let bucket = args.get(&flags::BUCKET, env).ok_or_else(|| {
        Error::usage("--presign needs the bucket: pass --bucket NAME or set BUCKET")
    })?;
    match s3_destination(bucket, &s3_flags(args), None, env)? {
        Destination::S3 {
            bucket, settings, ..
        } => Ok((bucket, settings)),
        Destination::Local { .. } => Err(Error::usage("--presign needs an S3 bucket")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_buckets() {
        assert_eq!(normalize_prefix("/site-a/fw/").unwrap(), "site-a/fw/");
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert!(normalize_prefix("a/../b").is_err());
        assert!(valid_bucket_name("backup-logs-conf"));
        assert!(!valid_bucket_name("Backup_Logs"));
        assert!(!valid_bucket_name("ab"));
    }

    fn parse(words: &[&str], env: &[(&str, &str)]) -> Result<UploadConfig> {
        let args = Args::words(crate::cli::specs::spec("upload").expect("upload"), words)?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_upload(&args, &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_default_database_spelled_out_is_still_the_default() {
        // The suite's env files set DB_PATH to the default; on a fresh
        // machine its directory does not exist yet and is created later.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let c = parse(
            &["--dir", d, "--dest", "file:///srv/a"],
            &[("DB_PATH", DEFAULT_DB_PATH)],
        )
        .unwrap();
        assert_eq!(c.db_path, PathBuf::from(DEFAULT_DB_PATH));
        let e = parse(
            &["--dir", d, "--dest", "file:///srv/a"],
            &[("DB_PATH", "/nonexistent-fg-dir/x.db")],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("DB_PATH /nonexistent-fg-dir/x.db"),
            "{e}"
        );
    }

    #[test]
    fn flags_beat_environment() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let c = parse(
            &[
                "--dir",
                d,
                "--dest",
                "file:///srv/a",
                "--workers",
                "2",
                "--no-delete",
            ],
            &[
                ("WORKERS", "8"),
                ("DELETE_AFTER", "true"),
                ("DB_PATH", "/tmp/x.db"),
            ],
        )
        .unwrap();
        assert_eq!(c.workers, 2);
        assert!(!c.delete);
        assert_eq!(c.db_path, PathBuf::from("/tmp/x.db"));
        let c = parse(
            &["--dest", "file:///srv/a"],
            &[("DIR", d), ("DELETE_AFTER", "true")],
        )
        .unwrap();
        assert!(c.delete);
        assert_eq!(c.workers, 4);
    }

    #[test]
    fn errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let e = parse(&["--dir", d], &[]).unwrap_err();
        assert!(e.to_string().contains("--bucket"), "{e}");
        let e = parse(
            &["--dir", d, "--dest", "file:///x", "--workers", "zero"],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("--workers"), "{e}");
        let e = parse(&["--dir", d, "--dest", "file:///x", "--frobnicate"], &[]).unwrap_err();
        assert!(e.to_string().contains("--frobnicate"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = parse(
            &[
                "--dir",
                d,
                "--dest",
                "file:///x",
                "--on-conflict",
                "replace",
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("keep or suffix"), "{e}");
    }

    #[test]
    fn object_lock_modes_days_and_environment() {
        // Refusals are tested through the binary: tests/object_lock.rs.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        // Distinctive values: the secret is registered for redaction process-wide.
        let creds = [
            ("AWS_ACCESS_KEY_ID", "lock-test-key-id-4471"),
            ("AWS_SECRET_ACCESS_KEY", "lock-test-secret-9923"),
        ];
        let s3 = |extra: &[&str], env: &[(&str, &str)]| {
            let mut words = vec!["--dir", d, "--bucket", "fg-logs"];
            words.extend_from_slice(extra);
            let env: Vec<(&str, &str)> = creds.iter().chain(env).copied().collect();
            parse(&words, &env)
        };
        let lock = |mode: &str, days| {
            Some(ObjectLock {
                mode: mode.into(),
                days,
            })
        };
        let c = s3(
            &["--object-lock", "governance", "--object-lock-days", "30"],
            &[],
        )
        .unwrap();
        assert_eq!(c.transfer.object_lock, lock("GOVERNANCE", 30));
        assert!(
            c.transfer
                .describe(true)
                .contains("Object Lock GOVERNANCE for 30 days")
        );
        let c = s3(
            &[],
            &[
                ("OBJECT_LOCK_MODE", "Compliance"),
                ("OBJECT_LOCK_DAYS", "36500"),
            ],
        )
        .unwrap();
        assert_eq!(c.transfer.object_lock, lock("COMPLIANCE", 36_500));
        // A flag beats the environment; empty values are unset.
        let c = s3(
            &["--object-lock-days", "2"],
            &[
                ("OBJECT_LOCK_MODE", "GOVERNANCE"),
                ("OBJECT_LOCK_DAYS", "9"),
            ],
        )
        .unwrap();
        assert_eq!(c.transfer.object_lock, lock("GOVERNANCE", 2));
        let c = s3(&[], &[("OBJECT_LOCK_MODE", ""), ("OBJECT_LOCK_DAYS", "")]).unwrap();
        assert_eq!(c.transfer.object_lock, None);
    }

    #[test]
    fn on_conflict_and_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let c = parse(&["--dir", d, "--dest", "file:///srv/a"], &[]).unwrap();
        assert_eq!(c.on_conflict, OnConflict::Keep);
        let c = parse(
            &[
                "--dir",
                d,
                "--dest",
                "file:///srv/a",
                "--on-conflict",
                "suffix",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.on_conflict, OnConflict::Suffix);
        let inside = format!("file://{d}/archive");
        let e = parse(&["--dir", d, "--dest", &inside], &[]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("overlap"), "{e}");
    }
}
