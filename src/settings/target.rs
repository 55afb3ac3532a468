//! The archive a command works on: destination, prefix, inventory, workers, retries.

use std::path::{Path, PathBuf};

use crate::aws::{self, S3Flags, S3Settings};
use crate::cli::flags;
use crate::cli::{Args, Env, Source};
use crate::error::{Error, Result};

use super::*;

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
    /// `--ca-file`: checked readable by [`crate::build::target`].
    pub ca_file: Option<PathBuf>,
}

/// Reads the [`Target`] flags and their environment names.
pub fn parse_target(args: &Args, env: Env) -> Result<Target> {
    let ca_file = args.get(&flags::CA_FILE, env);
    let transfer = parse_transfer(args, env)?;
    let notify = crate::settings::parse_notify(args, env, ca_file.clone().map(PathBuf::from))?;
    let workers = args.number_or_default(&flags::WORKERS, env, 1..=64)?;
    let retries = args.number_or_default(&flags::RETRIES, env, 0..=20)?;
    let prefix = normalize_prefix(&args.get(&flags::PREFIX, env).unwrap_or_default())?;
    let destination = destination(args, ca_file.clone(), env)?;
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
        ca_file: ca_file.map(PathBuf::from),
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
pub(super) fn destination(args: &Args, ca_file: Option<String>, env: Env) -> Result<Destination> {
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
pub(super) fn s3_flags(args: &Args) -> S3Flags {
    S3Flags {
        profile: args.value(&flags::PROFILE),
        region: args.value(&flags::REGION),
        endpoint: args.value(&flags::ENDPOINT),
    }
}

pub(super) fn s3_destination(
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
pub(super) fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Turns `logs`, `/logs/`, `site-a/fw` into `logs/`, `site-a/fw/`; rejects `..`.
pub(super) fn normalize_prefix(raw: &str) -> Result<String> {
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
