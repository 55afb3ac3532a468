//! A directory as archive destination: the embedded default of the demo, and
//! a real use for NFS mounts and USB disks.
//!
//! Layout: `ROOT/KEY` holds the bytes. Everything the store keeps for itself
//! lives under `ROOT/.fgbackup/`, a name no key may start with, so no source
//! file can ever collide with store metadata:
//!
//! - `meta/KEY.sha256`: the object's SHA-256 as a `sha256sum` line naming
//!   `KEY`, so `cd ROOT && cat .fgbackup/meta/... | sha256sum -c` checks by hand;
//! - `tmp/`: files being written. Each is `flock`ed by its writer for as long
//!   as it lives, so a later run removes exactly those whose writer is gone;
//! - `legacy/`: sidecars and temporary files of the old layout (`KEY.sha256`
//!   next to the object), moved aside once, never deleted.
//!
//! A write goes to a temporary file, is synced, read back and hashed, and is
//! then published with `link(2)` (or `renameat2(RENAME_NOREPLACE)` where hard
//! links are not supported), which fails if anything holds the key: an object
//! is never replaced, not even by a second writer racing for the same key.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{
    Body, CopyError, Listed, PutReceipt, ReadBack, RemoteObject, Store, StoreError, Upload,
    stream_hashed,
};
use crate::digest::{self, hex};

const COPY_CHUNK: usize = 256 * 1024;
/// The store's own directory under the root; no key may start with it.
pub const STORE_DIR: &str = ".fgbackup";
/// Written once the old sidecar layout has been migrated.
const LAYOUT_MARKER: &str = "migrated";
/// Proves `.fgbackup/` was made by this store (see `claim_store_dir`).
const STAMP: &str = "STORE";
const STAMP_TEXT: &str =
    "fgbackup directory store, layout 2: objects are ROOT/KEY; this directory is the store's own\n";
/// A temporary file younger than this is never cleaned up, even if unlocked:
/// its writer may be between creating and locking it.
const TMP_GRACE: Duration = Duration::from_secs(60);

/// Distinguishes the temporary files of one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A destination directory.
pub struct LocalStore {
    root: PathBuf,
    /// A dry run: look, never write (no directories, no migration, no
    /// cleaning, no metadata repair).
    read_only: bool,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore {
            root,
            read_only: false,
        }
    }

    /// A store that only reads, for `--dry-run`.
    pub fn read_only(root: PathBuf) -> LocalStore {
        LocalStore {
            root,
            read_only: true,
        }
    }

    /// Collects the regular files under `dir` (key prefix `rel`), skipping
    /// the store's own directory; links and special files are no objects.
    fn walk(&self, dir: &Path, rel: &str, found: &mut Vec<Listed>) -> Result<(), StoreError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && rel.is_empty() => return Ok(()),
            Err(e) => return Err(io_err("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list", dir, e))?;
            let Some(name) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            if rel.is_empty() && name == STORE_DIR {
                continue;
            }
            let key = format!("{rel}{name}");
            let meta = entry
                .metadata()
                .map_err(|e| io_err("stat", &entry.path(), e))?;
            if meta.is_dir() {
                self.walk(&entry.path(), &format!("{key}/"), found)?;
            } else if meta.is_file() {
                found.push(Listed {
                    key,
                    size: meta.len(),
                    modified: Some(meta.mtime()),
                });
            }
        }
        Ok(())
    }

    fn store_dir(&self, sub: &str) -> PathBuf {
        self.root.join(STORE_DIR).join(sub)
    }

    /// `ROOT/KEY`, after checking that `KEY` is a plain relative path outside
    /// the store's own directory.
    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let parts: Vec<&str> = key.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(StoreError::permanent(format!(
                "key '{key}' is not a plain relative path"
            )));
        }
        if parts[0] == STORE_DIR {
            return Err(StoreError::permanent(format!(
                "key '{key}' starts with '{STORE_DIR}/', which the directory store reserves for its own metadata: rename the source directory or set --prefix"
            )));
        }
        Ok(self.root.join(key))
    }

    /// `meta/ab/<sha256 of KEY>.sha256`: fixed-length names, so a key of any
    /// legal length has one, and no key's record can sit where another
    /// key's directory of records would (`fw.gz` vs `fw.gz.sha256/x.gz`).
    fn meta_of(&self, key: &str) -> PathBuf {
        let h = hex(&Sha256::digest(key.as_bytes()));
        self.store_dir("meta")
            .join(&h[..2])
            .join(format!("{h}.sha256"))
    }

    /// The recorded SHA-256 of `key`, if its metadata file is there and sound.
    fn read_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let path = self.meta_of(key);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(parse_sum_line(&text, key)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path, e)),
        }
    }

    /// Records `sha256` for `key` (replacing a stale record: metadata is the
    /// store's cache of the content, only objects are never replaced).
    fn write_meta(&self, key: &str, sha256: &str) -> Result<(), StoreError> {
        let path = self.meta_of(key);
        let parent = path.parent().unwrap_or(&self.root);
        make_dirs(parent)?;
        let (tmp_path, mut tmp) = self.create_tmp()?;
        let result = tmp
            .write_all(format!("{sha256}  {key}\n").as_bytes())
            .and_then(|()| tmp.sync_all())
            .and_then(|()| fs::rename(&tmp_path, &path));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp_path);
            return Err(io_err("write", &path, e));
        }
        sync_dir(parent);
        Ok(())
    }

    /// A new, locked temporary file under `.fgbackup/tmp/`.
    fn create_tmp(&self) -> Result<(PathBuf, File), StoreError> {
        let dir = self.store_dir("tmp");
        make_dirs(&dir)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}.tmp", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err("create", &path, e))?;
        if !try_lock(&file) {
            return Err(StoreError::permanent(format!(
                "cannot lock the new temporary file {}",
                path.display()
            )));
        }
        Ok((path, file))
    }

    /// Removes temporary files whose writer is gone (their lock is free) and
    /// which are older than [`TMP_GRACE`]. Returns how many were removed.
    fn clean_tmp(&self) -> usize {
        let dir = self.store_dir("tmp");
        let Ok(entries) = fs::read_dir(&dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            // Only names this store gives its temporary files.
            if !entry.file_name().to_str().is_some_and(is_tmp_name) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok());
            if !meta.is_file() || age.is_none_or(|a| a < TMP_GRACE) {
                continue;
            }
            // Holding the lock while unlinking: no writer can be using it.
            if let Ok(f) = File::open(&path)
                && try_lock(&f)
                && fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// Publishes the written temporary file as `final_path`, never replacing
    /// anything there.
    fn publish(&self, tmp: &Path, final_path: &Path, key: &str) -> Result<(), StoreError> {
        let exists = || {
            StoreError::exists(format!(
                "an object appeared at {} while this file was being written; it was not replaced",
                final_path.display()
            ))
        };
        match fs::hard_link(tmp, final_path) {
            Ok(()) => {
                let _ = fs::remove_file(tmp);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EMLINK)
                ) => {}
            Err(e) => return Err(io_err("publish", final_path, e)),
        }
        // No hard links here (FAT, some FUSE file systems): rename without replace.
        match rename_noreplace(tmp, final_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                Err(StoreError::permanent(format!(
                    "cannot store {key}: the file system of {} supports neither hard links nor RENAME_NOREPLACE, so an object could not be published without risking to replace another; use another file system for --dest",
                    self.root.display()
                )))
            }
            Err(e) => Err(io_err("publish", final_path, e)),
        }
    }

    /// Makes `ROOT/.fgbackup/` ours: created whole (with its stamp) by one
    /// rename, so a `.fgbackup/` without the stamp is not ours (an archived
    /// directory of that name from before it was reserved) and is refused,
    /// never cleaned or written into.
    fn claim_store_dir(&self) -> Result<(), StoreError> {
        let dir = self.root.join(STORE_DIR);
        if dir.join(STAMP).is_file() {
            return Ok(());
        }
        if fs::symlink_metadata(&dir).is_ok() {
            return Err(StoreError::permanent(format!(
                "{} exists but was not created by fgbackup (no {STAMP} in it; an archived directory of that name?): move it out of the archive, or archive to another --dest",
                dir.display()
            )));
        }
        let staging = self
            .root
            .join(format!(".fgbackup-new-{}", std::process::id()));
        let result = fs::create_dir(&staging)
            .and_then(|()| fs::write(staging.join(STAMP), STAMP_TEXT))
            .and_then(|()| rename_noreplace(&staging, &dir));
        match result {
            Ok(()) => {
                sync_dir(&self.root);
                Ok(())
            }
            // Another run claimed it first: fine if it stamped it.
            Err(_) if dir.join(STAMP).is_file() => {
                let _ = fs::remove_dir_all(&staging);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                Err(io_err("create", &dir, e))
            }
        }
    }

    /// Moves the old layout's sidecars (`KEY.sha256` next to `KEY`) and
    /// temporary files aside, recording the sidecars' hashes as metadata.
    /// Runs once per archive (a marker file says it is done), under a lock.
    fn migrate_legacy(&self) -> Result<(), StoreError> {
        let marker = self.root.join(STORE_DIR).join(LAYOUT_MARKER);
        if marker.exists() {
            return Ok(());
        }
        let lock_path = self.root.join(STORE_DIR).join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err("open", &lock_path, e))?;
        lock.lock().map_err(|e| io_err("lock", &lock_path, e))?;
        if marker.exists() {
            return Ok(());
        }
        let mut moved = 0usize;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = fs::read_dir(&dir).map_err(|e| io_err("list", &dir, e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    if path != self.root.join(STORE_DIR) {
                        stack.push(path);
                    }
                } else if ft.is_file() && self.migrate_one(&path)? {
                    moved += 1;
                }
            }
        }
        fs::write(&marker, b"2\n").map_err(|e| io_err("write", &marker, e))?;
        if moved > 0 {
            log::warn!(
                "{}: moved {moved} file(s) of the old layout (KEY.sha256 sidecars, temporary files) to {}",
                self.root.display(),
                self.store_dir("legacy").display()
            );
        }
        Ok(())
    }

    /// Migrates one file if it is an old sidecar or an old, dead temporary
    /// file; returns whether it was moved.
    fn migrate_one(&self, path: &Path) -> Result<bool, StoreError> {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Ok(false);
        };
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Ok(false);
        };
        let rel = rel.to_string_lossy().to_string();
        let legacy_tmp = name.starts_with('.')
            && name.ends_with(".tmp")
            && name
                .rsplit_once(".fgbackup-")
                .and_then(|(_, pid)| pid.strip_suffix(".tmp")?.parse::<i32>().ok())
                .is_some_and(|pid| !process_alive(pid));
        if !legacy_tmp {
            let Some(stem) = rel.strip_suffix(".sha256") else {
                return Ok(false);
            };
            let object = self.root.join(stem);
            let plausible = fs::symlink_metadata(&object).is_ok_and(|m| m.is_file())
                && fs::metadata(path).is_ok_and(|m| m.len() < 1024);
            let sidecar_hash = plausible
                .then(|| fs::read_to_string(path).ok())
                .flatten()
                .and_then(|t| parse_sum_line(&t, Path::new(stem).file_name()?.to_str()?));
            let Some(sha) = sidecar_hash else {
                return Ok(false);
            };
            if self.read_meta(stem)?.is_none() {
                self.write_meta(stem, &sha)?;
            }
        }
        move_aside(path, &self.store_dir("legacy").join(&rel))?;
        Ok(true)
    }
}

/// Moves `from` to `to` (or `to.1`, `to.2`...), never replacing anything.
fn move_aside(from: &Path, to: &Path) -> Result<(), StoreError> {
    if let Some(parent) = to.parent() {
        make_dirs(parent)?;
    }
    for n in 0..1000 {
        let dest = if n == 0 {
            to.to_path_buf()
        } else {
            let mut p = to.as_os_str().to_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let moved = rename_noreplace(from, &dest).or_else(|e| {
            // No RENAME_NOREPLACE here: a hard link does not replace either.
            if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
                fs::hard_link(from, &dest).and_then(|()| fs::remove_file(from))
            } else {
                Err(e)
            }
        });
        match moved {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("move aside", from, e)),
        }
    }
    Err(StoreError::permanent(format!(
        "cannot move {} aside: too many files of that name in {}",
        from.display(),
        to.display()
    )))
}

/// `<pid>-<n>.tmp`, the names of [`LocalStore::create_tmp`].
fn is_tmp_name(name: &str) -> bool {
    name.strip_suffix(".tmp")
        .and_then(|s| s.split_once('-'))
        .is_some_and(|(a, b)| {
            [a, b]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        })
}

/// Creates `dir` and its missing ancestors, syncing each parent after a
/// child was created in it, so a new object's whole path survives a power
/// cut (FAT and ext4 alike need the directory entries on disk).
fn make_dirs(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent() {
                sync_dir(parent);
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_err("create directory", dir, e)),
    }
}

/// `HASH  NAME` (sha256sum's format) naming `name`: the lowercase hash.
fn parse_sum_line(text: &str, name: &str) -> Option<String> {
    let line = text.strip_suffix('\n')?;
    let (hash, rest) = line.split_once("  ")?;
    (rest == name && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}

fn io_err(action: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::permanent(format!("failed to {action} {}: {e}", path.display()))
}

/// `dev:ino:size:mtime`: one file on this machine, as last written. Not
/// the ctime: publishing (`link`, then removing the temporary name) changes
/// it. An object rewritten in place keeps its inode but not its mtime; the
/// verification also reads the object back, which settles the rest.
fn version_of(meta: &fs::Metadata) -> String {
    format!(
        "{}:{}:{}:{}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a valid descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence; no signal is sent.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `renameat2(from, to, RENAME_NOREPLACE)`: fails with `EEXIST` instead of
/// replacing `to`. Called through `syscall` because older libcs lack a wrapper.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: valid NUL-terminated paths; integer flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn url(&self, key: &str) -> String {
        format!("file://{}", self.root.join(key).display())
    }

    fn check(&self) -> Result<(), StoreError> {
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(StoreError::permanent(format!(
                    "destination {} is not a directory: fix --dest",
                    self.root.display()
                )));
            }
            // Never created here: a USB disk or NFS share that is not mounted
            // would otherwise receive the archive on the root file system,
            // hidden again by the next mount.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::permanent(format!(
                    "destination directory {} does not exist: create it (mkdir -p {0}), or mount the disk or share it lives on",
                    self.root.display()
                )));
            }
            Err(e) => return Err(io_err("access destination", &self.root, e)),
        }
        if self.read_only {
            return Ok(());
        }
        self.claim_store_dir()?;
        for sub in ["meta", "tmp"] {
            make_dirs(&self.store_dir(sub))?;
        }
        self.migrate_legacy()?;
        let removed = self.clean_tmp();
        if removed > 0 {
            log::info!(
                "removed {removed} temporary file(s) left in {} by runs that were killed",
                self.store_dir("tmp").display()
            );
        }
        Ok(())
    }

    fn head(&self, key: &str) -> Result<Option<RemoteObject>, StoreError> {
        let path = self.path_of(key)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("stat", &path, e)),
        };
        if !meta.is_file() {
            return Err(StoreError::permanent(format!(
                "{} is not a regular file (a directory or a link holds this key); nothing was written there",
                path.display()
            )));
        }
        // Metadata is a cache of the content: missing (a run killed between
        // publishing and recording), it is rebuilt from the bytes themselves.
        let sha256 = match self.read_meta(key)? {
            Some(s) => Some(s),
            None => match self.hash_object(key)? {
                Some((_, sha)) => {
                    if !self.read_only {
                        self.write_meta(key, &sha)?;
                    }
                    Some(sha)
                }
                None => return Ok(None),
            },
        };
        Ok(Some(RemoteObject {
            size: meta.len(),
            sha256,
            checksum_sha256: None,
            version: Some(version_of(&meta)),
            ..RemoteObject::default()
        }))
    }

    fn read_back_is_cheap(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(key)?;
        fs::read(&path).map_err(|e| io_err("read", &path, e))
    }

    fn read_object(&self, key: &str, sink: &mut dyn Write) -> Result<Option<ReadBack>, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path_of(key)?;
        let mut file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path, e)),
        };
        crate::fsafe::advise_sequential(&file);
        let (size, sha256) = stream_hashed(&mut file, sink).map_err(|e| match e {
            CopyError::Read(e) => io_err("read", &path, e),
            CopyError::Write(e) => StoreError::permanent(format!("cannot write {key}: {e}")),
        })?;
        Ok(Some(ReadBack {
            size,
            sha256,
            meta_sha256: self.read_meta(key)?,
            checksum_sha256: None,
        }))
    }

    fn list_all(&self, prefix: &str, each: &mut dyn FnMut(Listed)) -> Result<(), StoreError> {
        let mut found = Vec::new();
        self.walk(&self.root, "", &mut found)?;
        found.sort_by(|a, b| a.key.cmp(&b.key));
        for l in found.into_iter().filter(|l| l.key.starts_with(prefix)) {
            each(l);
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        fs::remove_file(&path).map_err(|e| io_err("delete", &path, e))?;
        let meta = self.meta_of(key);
        match fs::remove_file(&meta) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("delete", &meta, e)),
            _ => Ok(()),
        }
    }

    fn put(&self, up: &Upload<'_>) -> Result<PutReceipt, StoreError> {
        let (key, sha256) = (up.key, up.sha256);
        let path = self.path_of(key)?;
        if fs::symlink_metadata(&path).is_ok() {
            return Err(StoreError::exists(format!(
                "{} already exists; it was not replaced",
                path.display()
            )));
        }
        let parent = path.parent().unwrap_or(&self.root);
        make_dirs(parent)?;
        // `file` keeps the temporary file locked until it is published or removed.
        let (tmp, mut file) = self.create_tmp()?;
        let result = write_verified(&tmp, &mut file, up.body, up.size, sha256)
            .and_then(|version| self.publish(&tmp, &path, key).map(|()| version));
        drop(file);
        let version = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        sync_dir(parent);
        self.write_meta(key, sha256)?;
        Ok(PutReceipt {
            version: Some(version),
        })
    }
}

/// Copies `body` into `out` (the locked temporary file at `tmp`), syncs it,
/// then reads it back and checks that both what was written and what is now
/// on disk hash to `expected`. Returns the file's version (see [`version_of`]).
fn write_verified(
    tmp: &Path,
    out: &mut File,
    body: Body<'_>,
    size: u64,
    expected: &str,
) -> Result<String, StoreError> {
    let sent = match body {
        Body::Memory(data) => {
            out.write_all(data).map_err(|e| io_err("write", tmp, e))?;
            hex(&Sha256::digest(data))
        }
        Body::File(file) => copy_hashed(file, size, out, tmp)?,
    };
    if sent != expected {
        return Err(StoreError::changed(
            "the source file changed between hashing and copying",
        ));
    }
    out.sync_all().map_err(|e| io_err("sync", tmp, e))?;
    // Drop the cached pages, so the read-back below reads the medium
    // rather than the memory the bytes were written from.
    // SAFETY: fadvise on a valid descriptor; only a hint.
    unsafe {
        libc::posix_fadvise(out.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    let meta = out.metadata().map_err(|e| io_err("stat", tmp, e))?;
    let stored = File::open(tmp)
        .and_then(|f| digest::digest_reader(f, false))
        .map_err(|e| io_err("read back", tmp, e))?;
    if stored.sha256 != expected {
        return Err(StoreError::permanent(format!(
            "the copy at {} does not match after writing (sha256 {}): check the destination disk",
            tmp.display(),
            stored.sha256
        )));
    }
    Ok(version_of(&meta))
}

/// Streams `size` bytes of `file` (from its start) into `out`; returns their hash.
fn copy_hashed(file: &File, size: u64, out: &mut File, tmp: &Path) -> Result<String, StoreError> {
    use std::os::unix::fs::FileExt;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left.min(COPY_CHUNK as u64)).unwrap_or(COPY_CHUNK);
        let n = file
            .read_at(&mut buf[..want], size - left)
            .map_err(|e| StoreError::permanent(format!("cannot read source file: {e}")))?;
        if n == 0 {
            return Err(StoreError::changed(
                "the source file became shorter while it was being copied",
            ));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| io_err("write", tmp, e))?;
        crate::meter::moved(n as u64);
        left -= n as u64;
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_lines() {
        let h = "ab".repeat(32);
        assert_eq!(
            parse_sum_line(&format!("{h}  a.gz\n"), "a.gz"),
            Some(h.clone())
        );
        assert_eq!(parse_sum_line(&format!("{h}  b.gz\n"), "a.gz"), None);
        assert_eq!(parse_sum_line(&format!("{h} a.gz\n"), "a.gz"), None);
        assert_eq!(parse_sum_line("zz  a.gz\n", "a.gz"), None);
    }

    #[test]
    fn reserved_and_odd_keys_are_refused() {
        let s = LocalStore::new(PathBuf::from("/nonexistent"));
        assert!(s.path_of(".fgbackup/meta/x.gz").is_err());
        assert!(s.path_of("a/../b").is_err());
        assert!(s.path_of("/abs").is_err());
        assert!(s.path_of("site/.fgbackup/x.gz").is_ok());
    }

    #[test]
    fn rename_noreplace_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, b"a").unwrap();
        fs::write(&b, b"b").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"b");
    }
}
