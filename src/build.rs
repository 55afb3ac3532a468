//! The build step: from validated settings to the objects a command runs
//! with. This is where the I/O of setting up happens (the CA file, the
//! store and its pooled client, the run lock), so settings stay pure values
//! and `doctor` builds exactly what `upload` builds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::settings::{Destination, Target, Transfer, UploadConfig};
use crate::store::Store;
use crate::store::local::LocalStore;
use crate::store::s3::{S3Options, S3Store};

/// The I/O checks of a command's target: its `--ca-file` can be read.
/// Settings only parse; this is where the files they name are opened.
pub fn target(target: Target) -> Result<Target> {
    check_ca_file(target.ca_file.as_deref())?;
    Ok(target)
}

/// The I/O checks of an upload's settings: the target's, and the manifest
/// key loads (a bad key fails before the run, not after it).
pub fn upload(cfg: UploadConfig) -> Result<UploadConfig> {
    check_ca_file(cfg.ca_file.as_deref())?;
    manifest_key(cfg.manifest_key.as_deref())?;
    Ok(cfg)
}

/// Loads `--manifest-key` once, to refuse a bad one at start.
pub fn manifest_key(path: Option<&Path>) -> Result<()> {
    if let Some(k) = path {
        crate::sign::Signer::load(k)?;
    }
    Ok(())
}

fn check_ca_file(ca: Option<&Path>) -> Result<()> {
    if let Some(ca) = ca
        && let Err(e) = std::fs::read(ca)
    {
        return Err(Error::usage(format!(
            "--ca-file {} cannot be read ({e}): give the PEM file of the CA that signed the server's certificate",
            ca.display()
        )));
    }
    Ok(())
}

/// Builds the store the configuration names.
pub fn open_store(cfg: &UploadConfig) -> Result<Box<dyn Store>> {
    open_destination(&cfg.destination, &cfg.transfer, cfg.workers, cfg.dry_run)
}

/// The store a reading command (`verify`, `restore`, `grep`, `reindex
/// --content`) shares between its `--workers` threads: opened read-only.
pub fn open_reader(target: &Target) -> Result<Arc<dyn Store>> {
    open_destination(&target.destination, &target.transfer, target.workers, true).map(Arc::from)
}

/// Builds the store at `destination`; `read_only` for runs that must not
/// write (a dry run, `verify`).
pub fn open_destination(
    destination: &Destination,
    transfer: &Transfer,
    workers: usize,
    read_only: bool,
) -> Result<Box<dyn Store>> {
    Ok(match destination {
        Destination::S3 {
            bucket, settings, ..
        } => Box::new(S3Store::new(
            bucket,
            settings,
            s3_options(destination, transfer, workers)?,
        )?),
        Destination::Local { root } if read_only => Box::new(LocalStore::read_only(root.clone())),
        Destination::Local { root } => Box::new(LocalStore::new(root.clone())),
    })
}

/// How the S3 client connects and what it sends with every object.
pub fn s3_options(
    destination: &Destination,
    transfer: &Transfer,
    workers: usize,
) -> Result<S3Options> {
    let t = transfer;
    let extra_roots = match destination {
        Destination::S3 {
            ca_file: Some(path),
            ..
        } => crate::tls::load_ca_file(path)?,
        _ => Vec::new(),
    };
    Ok(S3Options {
        pool: workers,
        extra_roots,
        throttle: t
            .bwlimit
            .clone()
            .map(|l| Arc::new(crate::engine::throttle::Throttle::new(l))),
        storage_class: t.storage_class.clone(),
        sse: t.sse.clone(),
        sse_kms_key_id: t.sse_kms_key_id.clone(),
        object_lock: t.object_lock.clone(),
    })
}

/// Holds the per-database run lock for as long as it lives.
pub struct RunLock {
    _file: std::fs::File,
}

/// The lock file of the database at `db_path`: `<real path>.lock`, where the
/// real path has every symlink resolved, so two spellings of one database
/// (a symlink, `..`) share one lock.
pub fn lock_path(db_path: &Path) -> Result<PathBuf> {
    let real = crate::paths::resolve(db_path).map_err(|e| {
        Error::runtime(format!(
            "cannot resolve the database path {} ({e}): fix --db/DB_PATH",
            db_path.display()
        ))
    })?;
    let mut lock = real.into_os_string();
    lock.push(".lock");
    Ok(PathBuf::from(lock))
}

/// Takes the run lock so only one upload runs per database at a time.
pub fn lock_database(db_path: &Path) -> Result<RunLock> {
    use std::os::unix::fs::MetadataExt;
    // Two names of one database file would get two locks, and SQLite keeps
    // a WAL per name: the database would be corrupted.
    if let Ok(m) = std::fs::metadata(db_path)
        && m.nlink() > 1
    {
        return Err(Error::runtime(format!(
            "--db/DB_PATH {} has {} hard links: SQLite cannot share one database between names; keep one name (remove the other links)",
            db_path.display(),
            m.nlink()
        )));
    }
    let lock_path = lock_path(db_path)?;
    crate::inventory::create_default_dir(db_path)?;
    // A link planted at the lock's name is refused, never followed (it
    // would create or lock whatever it points at).
    let file = crate::dirfd::open_own_file(&lock_path, 0o644).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ELOOP) => "it is a symbolic link; remove it".to_string(),
            _ => format!("{e}; check permissions"),
        };
        Error::runtime(format!(
            "cannot open the lock file {} of --db/DB_PATH {}: {why}",
            lock_path.display(),
            db_path.display()
        ))
    })?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::runtime(format!(
            "another fgbackup upload is already running on --db/DB_PATH {} (lock {} is held): wait for it to finish",
            db_path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::runtime(format!(
            "cannot lock {} for --db/DB_PATH {} ({e})",
            lock_path.display(),
            db_path.display()
        ))),
    }
}

/// Device and inode of a directory store's root, which the scan never
/// enters (a bind mount of it below `--dir` is not caught by the paths).
pub fn store_root_identity(cfg: &UploadConfig) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    match &cfg.destination {
        Destination::Local { root } => std::fs::metadata(root).ok().map(|m| (m.dev(), m.ino())),
        Destination::S3 { .. } => None,
    }
}

/// fgbackup's own files, never archived even when they live in `--dir`
/// and match `--include`: the database and its companions, the run lock,
/// the flag file and the metrics textfile.
pub fn own_files(cfg: &UploadConfig) -> Vec<PathBuf> {
    let mut own: Vec<PathBuf> = ["", "-wal", "-shm", "-journal", ".lock"]
        .iter()
        .map(|suffix| {
            let mut p = cfg.db_path.as_os_str().to_os_string();
            p.push(suffix);
            PathBuf::from(p)
        })
        .collect();
    own.extend(cfg.notify.flag_file.iter().cloned());
    own.extend(cfg.notify.metrics_textfile.iter().cloned());
    own.iter()
        .filter_map(|p| crate::paths::resolve(p).ok())
        .collect()
}
