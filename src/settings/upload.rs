//! `fgbackup upload`'s settings (also read by `daemon` and `doctor`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::flags;
use crate::cli::{Args, Env};
use crate::error::{Error, Result};
use crate::units::parse_duration;

use super::*;

/// What to do when the key of a file holds an object with other content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Keep the file and report `failed_conflict` (the default).
    Keep,
    /// Archive the file beside the other object, under a key carrying the
    /// first 16 hex digits of its SHA-256, so both versions exist.
    Suffix,
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
    /// `--ca-file`, as the target read it.
    pub ca_file: Option<PathBuf>,
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
    let delete = delete_switch(args, env)?;
    let min_age = args.parse_or_default(
        &flags::MIN_AGE,
        env,
        parse_duration,
        "is not a duration: use seconds or a unit, e.g. 300, 90s, 5m, 1h",
    )?;
    let include = include_patterns(args, env)?;
    let on_conflict = args.parse_or_default(
        &flags::ON_CONFLICT,
        env,
        |v| match v {
            "keep" => Some(OnConflict::Keep),
            "suffix" => Some(OnConflict::Suffix),
            _ => None,
        },
        "is not understood: use keep or suffix",
    )?;
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
        ca_file: target.ca_file,
        json: args.flag(&flags::JSON),
        output: crate::settings::parse_output(args)?,
    })
}

/// The upload settings `serve --accept-uploads` archives pushes with: the
/// destination, archive and transfer flags as for `upload`, no `--dir`
/// (the spool is the source), deleting (the spool is no archive).
pub fn parse_push_upload(args: &Args, env: Env, spool: &std::path::Path) -> Result<UploadConfig> {
    let target = parse_target(args, env)?;
    Ok(UploadConfig {
        dir: spool.to_path_buf(),
        destination: target.destination,
        prefix: target.prefix,
        include: vec!["*".into()],
        min_age: Duration::ZERO,
        delete: true,
        workers: target.workers,
        dry_run: false,
        db_path: target.db_path,
        retries: target.retries,
        gzip_check: target.transfer.gzip.enabled(true),
        transfer: target.transfer,
        notify: target.notify,
        on_conflict: OnConflict::Keep,
        manifest_key: None,
        ca_file: target.ca_file,
        json: false,
        output: crate::settings::parse_output(args)?,
    })
}

/// `--delete` (or `DELETE_AFTER`), unless `--no-delete` overrides it.
fn delete_switch(args: &Args, env: Env) -> Result<bool> {
    if !args.flag(&flags::NO_DELETE) {
        return Ok(args.switch_or_env(&flags::DELETE, env)?.unwrap_or(false));
    }
    if args.flag(&flags::DELETE) {
        return Err(Error::usage(
            "--delete and --no-delete contradict each other: pass one",
        ));
    }
    Ok(false)
}

/// `--include`: comma-separated patterns, at least one.
fn include_patterns(args: &Args, env: Env) -> Result<Vec<String>> {
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
    Ok(include)
}

/// `--manifest-key`/`MANIFEST_KEY`; [`crate::build::manifest_key`] loads it
/// before the run, so a bad key fails at start, not after the run.
pub fn manifest_key(args: &Args, env: Env) -> Result<Option<PathBuf>> {
    Ok(args
        .get(&flags::MANIFEST_KEY, env)
        .filter(|k| !k.is_empty())
        .map(PathBuf::from))
}

/// `--dir`/`DIR`: must name a readable directory.
pub(super) fn source_dir(args: &Args, env: Env) -> Result<PathBuf> {
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

/// A directory store inside the log directory (or containing it) would
/// archive its own objects and, with `--delete`, delete the archive itself.
pub(super) fn refuse_overlap(dir: &Path, root: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::s3::ObjectLock;

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
