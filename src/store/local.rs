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
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
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
use crate::dirfd::{Dir, Kind, is_link_error};

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
/// Mode of the directories and files the store creates (before the umask),
/// as `mkdir` and `cp` would give them.
const DIR_MODE: u32 = 0o777;
const FILE_MODE: u32 = 0o666;
/// A metadata record is one `sha256sum` line: anything longer is not one.
const META_MAX: u64 = 64 * 1024;

/// Distinguishes the temporary files of one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A destination directory.
pub struct LocalStore {
    root: PathBuf,
    /// A dry run: look, never write (no directories, no migration, no
    /// cleaning, no metadata repair).
    read_only: bool,
}

/// A new temporary file under `.fgbackup/tmp/`, locked by its writer.
struct Tmp {
    dir: Dir,
    name: String,
    file: File,
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

    /// The root, opened (it may itself be a link: that is configuration).
    /// Everything below it is reached from this descriptor without
    /// following any link.
    fn open_root(&self) -> Result<Dir, StoreError> {
        Dir::open(&self.root).map_err(|e| io_err("open", &self.root, e))
    }

    /// The directories and the name of `KEY`, after checking that it is a
    /// plain relative path outside the store's own directory.
    fn split(key: &str) -> Result<(Vec<&str>, &str), StoreError> {
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
        let (name, dirs) = parts.split_last().unwrap_or((&"", &[]));
        Ok((dirs.to_vec(), name))
    }

    /// The directory holding `key` and the key's name in it, reached from
    /// the root without following links. `Ok(None)` when a directory on the
    /// way is missing (and `create` is false).
    fn parent_of<'k>(
        &self,
        key: &'k str,
        create: bool,
    ) -> Result<Option<(Dir, &'k str)>, StoreError> {
        let (dirs, name) = Self::split(key)?;
        let mode = create.then_some(DIR_MODE);
        match self.open_root()?.walk(&dirs, mode) {
            Ok(d) => Ok(Some((d, name))),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok(None),
            Err(e) if is_link_error(&e) => Err(self.link_refused(key)),
            Err(e) => Err(io_err("open the directory of", &self.root.join(key), e)),
        }
    }

    /// A link (or a file) where a key's directory should be: a link inside
    /// the store could lead anywhere (back into `--dir`, where "reading the
    /// copy back" would read the very file about to be deleted), so it is
    /// never followed, and the key can be neither read nor written.
    fn link_refused(&self, key: &str) -> StoreError {
        StoreError::permanent(format!(
            "a link (or a file) stands where {} needs a directory: links inside the directory store are never followed, so nothing was read or written for this key; replace the link with a real directory",
            self.root.join(key).display()
        ))
    }

    /// `.fgbackup/SUB...`, reached without following links.
    fn store_dir(&self, sub: &[&str], create: bool) -> Result<Dir, StoreError> {
        let mut parts = vec![STORE_DIR];
        parts.extend_from_slice(sub);
        let path = parts.iter().fold(self.root.clone(), |p, s| p.join(s));
        self.open_root()?
            .walk(&parts, create.then_some(DIR_MODE))
            .map_err(|e| io_err("open", &path, e))
    }

    /// `meta/ab/<sha256 of KEY>.sha256`: fixed-length names, so a key of any
    /// legal length has one, and no key's record can sit where another
    /// key's directory of records would (`fw.gz` vs `fw.gz.sha256/x.gz`).
    /// Returns the sub-directory and the file name.
    fn meta_of(key: &str) -> (String, String) {
        let h = hex(&Sha256::digest(key.as_bytes()));
        (h[..2].to_string(), format!("{h}.sha256"))
    }

    /// `ROOT/.fgbackup/meta/SUB/NAME`, for messages (records are reached by
    /// descriptor, never by this path).
    fn meta_path(&self, sub: &str, name: &str) -> PathBuf {
        self.root.join(STORE_DIR).join("meta").join(sub).join(name)
    }

    /// The recorded SHA-256 of `key`, if its metadata file is there and sound.
    fn read_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let (sub, name) = Self::meta_of(key);
        let dir = match self.open_root()?.walk(&[STORE_DIR, "meta", &sub], None) {
            Ok(d) => d,
            // No record yet (or no store directory at all: a dry run).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(io_err("open", &self.meta_path(&sub, ""), e));
            }
        };
        let path = self.meta_path(&sub, &name);
        let file = match dir.open_file(&name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path, e)),
        };
        let mut text = String::new();
        match file.take(META_MAX).read_to_string(&mut text) {
            Ok(_) => Ok(parse_sum_line(&text, key)),
            // Not UTF-8: no record of ours.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
            Err(e) => Err(io_err("read", &path, e)),
        }
    }

    /// Records `sha256` for `key` (replacing a stale record: metadata is the
    /// store's cache of the content, only objects are never replaced).
    fn write_meta(&self, key: &str, sha256: &str) -> Result<(), StoreError> {
        let (sub, name) = Self::meta_of(key);
        let dir = self.store_dir(&["meta", &sub], true)?;
        let path = self.meta_path(&sub, &name);
        let mut tmp = self.create_tmp()?;
        let result = tmp
            .file
            .write_all(format!("{sha256}  {key}\n").as_bytes())
            .and_then(|()| tmp.file.sync_all())
            .and_then(|()| tmp.dir.rename(&tmp.name, &dir, &name));
        if let Err(e) = result {
            let _ = tmp.dir.unlink(&tmp.name);
            return Err(io_err("write", &path, e));
        }
        dir.sync();
        Ok(())
    }

    /// A new, locked temporary file under `.fgbackup/tmp/`.
    fn create_tmp(&self) -> Result<Tmp, StoreError> {
        let dir = self.store_dir(&["tmp"], true)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{n}.tmp", std::process::id());
        let path = self.root.join(STORE_DIR).join("tmp").join(&name);
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        let file = dir
            .open_file(&name, flags, FILE_MODE)
            .map_err(|e| io_err("create", &path, e))?;
        if !try_lock(&file) {
            let _ = dir.unlink(&name);
            return Err(StoreError::permanent(format!(
                "cannot lock the new temporary file {}",
                path.display()
            )));
        }
        Ok(Tmp { dir, name, file })
    }

    /// Removes temporary files whose writer is gone (their lock is free) and
    /// which are older than [`TMP_GRACE`]. Returns how many were removed.
    fn clean_tmp(&self) -> usize {
        let Ok(dir) = self.store_dir(&["tmp"], false) else {
            return 0;
        };
        let Ok(entries) = dir.entries(&self.root.join(STORE_DIR).join("tmp")) else {
            return 0;
        };
        let mut removed = 0;
        for (name, kind) in entries {
            // Only names this store gives its temporary files.
            let Some(name) = name.to_str().filter(|n| is_tmp_name(n)) else {
                continue;
            };
            let Ok(Some(meta)) = dir.stat(name) else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok());
            if kind != Kind::File || !meta.is_file() || age.is_none_or(|a| a < TMP_GRACE) {
                continue;
            }
            // Holding the lock while unlinking: no writer can be using it.
            if let Ok(f) = dir.open_file(name, libc::O_RDONLY | libc::O_NONBLOCK, 0)
                && try_lock(&f)
                && dir.unlink(name).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// Publishes the written temporary file as `name` in `parent`, never
    /// replacing anything there.
    fn publish(&self, tmp: &Tmp, parent: &Dir, name: &str, key: &str) -> Result<(), StoreError> {
        let final_path = self.root.join(key);
        let exists = || {
            StoreError::exists(format!(
                "an object appeared at {} while this file was being written; it was not replaced",
                final_path.display()
            ))
        };
        match tmp.dir.link(&tmp.name, parent, name) {
            Ok(()) => {
                let _ = tmp.dir.unlink(&tmp.name);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EMLINK)
                ) => {}
            Err(e) => return Err(io_err("publish", &final_path, e)),
        }
        // No hard links here (FAT, some FUSE file systems): rename without replace.
        match tmp.dir.rename_noreplace(&tmp.name, parent, name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                Err(StoreError::permanent(format!(
                    "cannot store {key}: the file system of {} supports neither hard links nor RENAME_NOREPLACE, so an object could not be published without risking to replace another; use another file system for --dest",
                    self.root.display()
                )))
            }
            Err(e) => Err(io_err("publish", &final_path, e)),
        }
    }

    /// Makes `ROOT/.fgbackup/` ours: created whole (with its stamp) by one
    /// rename, so a `.fgbackup/` without the stamp is not ours (an archived
    /// directory of that name from before it was reserved, or a link put
    /// there) and is refused, never cleaned or written into.
    fn claim_store_dir(&self, root: &Dir) -> Result<(), StoreError> {
        let dir = self.root.join(STORE_DIR);
        let not_ours = || {
            StoreError::permanent(format!(
                "{} exists but was not created by fgbackup (no {STAMP} in it; an archived directory of that name, or a link?): move it out of the archive, or archive to another --dest",
                dir.display()
            ))
        };
        let stamped = |d: &Dir| d.stat(STAMP).ok().flatten().is_some_and(|m| m.is_file());
        match root.sub(STORE_DIR) {
            Ok(d) if stamped(&d) => return Ok(()),
            Ok(_) => return Err(not_ours()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return Err(not_ours()),
        }
        let staging = format!(".fgbackup-new-{}", std::process::id());
        let result = root.mkdir(&staging, DIR_MODE).and_then(|()| {
            let s = root.sub(&staging)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
            s.open_file(STAMP, flags, FILE_MODE)?
                .write_all(STAMP_TEXT.as_bytes())?;
            root.rename_noreplace(&staging, root, STORE_DIR)
        });
        match result {
            Ok(()) => {
                root.sync();
                Ok(())
            }
            // Another run claimed it first: fine if it stamped it.
            Err(_) if root.sub(STORE_DIR).is_ok_and(|d| stamped(&d)) => {
                let _ = fs::remove_dir_all(self.root.join(&staging));
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(self.root.join(&staging));
                Err(io_err("create", &dir, e))
            }
        }
    }

    /// Moves the old layout's sidecars (`KEY.sha256` next to `KEY`) and
    /// temporary files aside, recording the sidecars' hashes as metadata.
    /// Runs once per archive (a marker file says it is done), under a lock.
    fn migrate_legacy(&self) -> Result<(), StoreError> {
        let store = self.store_dir(&[], false)?;
        let marker_path = self.root.join(STORE_DIR).join(LAYOUT_MARKER);
        if store.stat(LAYOUT_MARKER).ok().flatten().is_some() {
            return Ok(());
        }
        let lock_path = self.root.join(STORE_DIR).join("lock");
        let lock = store
            .open_file("lock", libc::O_WRONLY | libc::O_CREAT, FILE_MODE)
            .map_err(|e| io_err("open", &lock_path, e))?;
        lock.lock().map_err(|e| io_err("lock", &lock_path, e))?;
        if store.stat(LAYOUT_MARKER).ok().flatten().is_some() {
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
        store
            .open_file(LAYOUT_MARKER, libc::O_WRONLY | libc::O_CREAT, FILE_MODE)
            .and_then(|mut f| f.write_all(b"2\n"))
            .map_err(|e| io_err("write", &marker_path, e))?;
        if moved > 0 {
            log::warn!(
                "{}: moved {moved} file(s) of the old layout (KEY.sha256 sidecars, temporary files) to {}",
                self.root.display(),
                self.root.join(STORE_DIR).join("legacy").display()
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
        move_aside(path, &self.root.join(STORE_DIR).join("legacy").join(&rel))?;
        Ok(true)
    }

    /// Calls `each` for every regular file below `dir` (whose keys start
    /// with `rel`) whose key could start with `prefix`, in key order: the
    /// entries of one directory are sorted as their keys sort (`a.gz`
    /// before `a/x.gz`, since '.' < '/'), so only one directory's names
    /// are held at a time, never the whole listing. Links are no objects
    /// and are never followed.
    fn walk(
        &self,
        dir: &Dir,
        rel: &str,
        prefix: &str,
        each: &mut dyn FnMut(Listed),
    ) -> Result<(), StoreError> {
        let here = self.root.join(rel);
        if crate::signal::stop_requested() {
            return Err(StoreError::permanent(format!(
                "listing {}: stopped by a signal",
                here.display()
            )));
        }
        let mut entries: Vec<(String, Kind)> = dir
            .entries(&here)
            .map_err(|e| io_err("list", &here, e))?
            .into_iter()
            // A name that is not UTF-8 cannot be a key.
            .filter_map(|(n, k)| Some((n.into_string().ok()?, k)))
            .filter(|(n, k)| !(rel.is_empty() && n == STORE_DIR) && *k != Kind::Other)
            .collect();
        entries.sort_by_cached_key(|(n, k)| match k {
            Kind::Dir => format!("{n}/"),
            _ => n.clone(),
        });
        for (name, kind) in entries {
            let key = format!("{rel}{name}");
            if kind == Kind::Dir {
                let sub = format!("{key}/");
                if !(sub.starts_with(prefix) || prefix.starts_with(&sub)) {
                    continue;
                }
                match dir.sub(&name) {
                    Ok(d) => self.walk(&d, &sub, prefix, each)?,
                    // Replaced by a link or removed since it was listed.
                    Err(e) if is_link_error(&e) || e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("list", &self.root.join(&sub), e)),
                }
            } else if key.starts_with(prefix)
                && let Some(meta) = dir
                    .stat(&name)
                    .map_err(|e| io_err("stat", &self.root.join(&key), e))?
                    .filter(|m| m.is_file())
            {
                each(Listed {
                    key,
                    size: meta.len(),
                    modified: Some(meta.mtime()),
                });
            }
        }
        Ok(())
    }

    /// Opens the object `key` for reading, never through a link; `Ok(None)`
    /// when it is not there.
    fn open_object(&self, key: &str) -> Result<Option<File>, StoreError> {
        let Some((dir, name)) = self.parent_of(key, false)? else {
            return Ok(None);
        };
        let path = self.root.join(key);
        match dir.open_file(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => Ok(Some(f)),
            Ok(_) => Err(not_a_file(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(not_a_file(&path)),
            Err(e) => Err(io_err("open", &path, e)),
        }
    }
}

/// A key held by a link, a directory or a device: never read or written.
fn not_a_file(path: &Path) -> StoreError {
    StoreError::permanent(format!(
        "{} is not a regular file (a directory or a link holds this key); nothing was written there",
        path.display()
    ))
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
        let moved = rename_path_noreplace(from, &dest).or_else(|e| {
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

/// Creates `dir` and its missing ancestors (the legacy migration's
/// `legacy/` tree, below the store's own directory).
fn make_dirs(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))
}

/// [`Dir::rename_noreplace`] for two paths (the legacy migration, which
/// moves files by path inside the store).
fn rename_path_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let parent = |p: &Path| Dir::open(p.parent().unwrap_or(Path::new("/")));
    let name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(String::from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))
    };
    parent(from)?.rename_noreplace(&name(from)?, &parent(to)?, &name(to)?)
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
        self.claim_store_dir(&self.open_root()?)?;
        for sub in ["meta", "tmp"] {
            self.store_dir(&[sub], true)?;
        }
        self.migrate_legacy()?;
        let removed = self.clean_tmp();
        if removed > 0 {
            log::info!(
                "removed {removed} temporary file(s) left in {} by runs that were killed",
                self.root.join(STORE_DIR).join("tmp").display()
            );
        }
        Ok(())
    }

    fn head(&self, key: &str) -> Result<Option<RemoteObject>, StoreError> {
        let Some((dir, name)) = self.parent_of(key, false)? else {
            return Ok(None);
        };
        let path = self.root.join(key);
        let meta = match dir.stat(name) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => return Err(io_err("stat", &path, e)),
        };
        if !meta.is_file() {
            return Err(not_a_file(&path));
        }
        // Metadata is a cache of the content: missing (a run killed between
        // publishing and recording), it is rebuilt from the bytes themselves.
        let sha256 = match self.read_meta(key)? {
            Some(s) => Some(s),
            None => match self.hash_object(key)? {
                Some(rb) => {
                    if !self.read_only {
                        self.write_meta(key, &rb.sha256)?;
                    }
                    Some(rb.sha256)
                }
                None => return Ok(None),
            },
        };
        Ok(Some(RemoteObject {
            size: meta.len(),
            sha256,
            checksum_sha256: None,
            version: Some(version_of(&meta)),
            modified: Some(meta.mtime()),
            ..RemoteObject::default()
        }))
    }

    fn read_back_is_cheap(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.root.join(key);
        let mut file = self
            .open_object(key)?
            .ok_or_else(|| io_err("read", &path, io::ErrorKind::NotFound.into()))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| io_err("read", &path, e))?;
        Ok(data)
    }

    fn read_object(&self, key: &str, sink: &mut dyn Write) -> Result<Option<ReadBack>, StoreError> {
        let path = self.root.join(key);
        let Some(mut file) = self.open_object(key)? else {
            return Ok(None);
        };
        let meta = file.metadata().map_err(|e| io_err("stat", &path, e))?;
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
            identity: Some(crate::fsafe::FileId::of(&meta)),
        }))
    }

    fn list_all(&self, prefix: &str, each: &mut dyn FnMut(Listed)) -> Result<(), StoreError> {
        let root = match Dir::open(&self.root) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("list", &self.root, e)),
        };
        self.walk(&root, "", prefix, each)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.root.join(key);
        let Some((dir, name)) = self.parent_of(key, false)? else {
            return Err(io_err("delete", &path, io::ErrorKind::NotFound.into()));
        };
        match dir.stat(name) {
            Ok(Some(m)) if m.is_file() => {}
            Ok(Some(_)) => return Err(not_a_file(&path)),
            Ok(None) => return Err(io_err("delete", &path, io::ErrorKind::NotFound.into())),
            Err(e) => return Err(io_err("stat", &path, e)),
        }
        dir.unlink(name).map_err(|e| io_err("delete", &path, e))?;
        dir.sync();
        let (sub, meta_name) = Self::meta_of(key);
        let Ok(meta_dir) = self.store_dir(&["meta", &sub], false) else {
            return Ok(());
        };
        match meta_dir.unlink(&meta_name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(
                "delete",
                &self
                    .root
                    .join(STORE_DIR)
                    .join("meta")
                    .join(&sub)
                    .join(&meta_name),
                e,
            )),
            _ => Ok(()),
        }
    }

    fn put(&self, up: &Upload<'_>) -> Result<PutReceipt, StoreError> {
        let (key, sha256) = (up.key, up.sha256);
        let path = self.root.join(key);
        let Some((parent, name)) = self.parent_of(key, true)? else {
            return Err(io_err(
                "create the directory of",
                &path,
                io::ErrorKind::NotFound.into(),
            ));
        };
        if parent
            .stat(name)
            .map_err(|e| io_err("stat", &path, e))?
            .is_some()
        {
            return Err(StoreError::exists(format!(
                "{} already exists; it was not replaced",
                path.display()
            )));
        }
        // `tmp.file` keeps the temporary file locked until it is published or removed.
        let mut tmp = self.create_tmp()?;
        let result = write_verified(&mut tmp, up.body, up.size, sha256)
            .and_then(|version| self.publish(&tmp, &parent, name, key).map(|()| version));
        let version = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = tmp.dir.unlink(&tmp.name);
                return Err(e);
            }
        };
        drop(tmp);
        parent.sync();
        self.write_meta(key, sha256)?;
        Ok(PutReceipt {
            version: Some(version),
        })
    }
}

/// Copies `body` into the locked temporary file, syncs it, then reads it
/// back and checks that both what was written and what is now on disk hash
/// to `expected`. Returns the file's version (see [`version_of`]).
fn write_verified(
    tmp: &mut Tmp,
    body: Body<'_>,
    size: u64,
    expected: &str,
) -> Result<String, StoreError> {
    let path = PathBuf::from(&tmp.name);
    let sent = match body {
        Body::Memory(data) => {
            tmp.file
                .write_all(data)
                .map_err(|e| io_err("write", &path, e))?;
            hex(&Sha256::digest(data))
        }
        Body::File(file) => copy_hashed(file, size, &mut tmp.file, &path)?,
    };
    if sent != expected {
        return Err(StoreError::changed(
            "the source file changed between hashing and copying",
        ));
    }
    tmp.file.sync_all().map_err(|e| io_err("sync", &path, e))?;
    // Drop the cached pages, so the read-back below reads the medium
    // rather than the memory the bytes were written from.
    // SAFETY: fadvise on a valid descriptor; only a hint.
    unsafe {
        libc::posix_fadvise(tmp.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    let meta = tmp.file.metadata().map_err(|e| io_err("stat", &path, e))?;
    let stored = tmp
        .dir
        .open_file(&tmp.name, libc::O_RDONLY, 0)
        .and_then(|f| digest::digest_reader(f, false))
        .map_err(|e| io_err("read back", &path, e))?;
    if stored.sha256 != expected {
        return Err(StoreError::permanent(format!(
            "the copy at {} does not match after writing (sha256 {}): check the destination disk",
            tmp.name, stored.sha256
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

    // docs/SAFETY.md S8
    #[test]
    fn reserved_and_odd_keys_are_refused() {
        assert!(LocalStore::split(".fgbackup/meta/x.gz").is_err());
        assert!(LocalStore::split("a/../b").is_err());
        assert!(LocalStore::split("/abs").is_err());
        assert!(LocalStore::split("site/.fgbackup/x.gz").is_ok());
    }
}
