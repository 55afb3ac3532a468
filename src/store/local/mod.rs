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

mod meta;
mod migrate;
mod tmp;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{
    CopyError, Listed, PutReceipt, ReadBack, RemoteObject, Store, StoreError, Upload, stream_hashed,
};
use crate::dirfd::{Dir, Kind, is_link_error};
use tmp::write_verified;

/// The store's own directory under the root; no key may start with it.
pub const STORE_DIR: &str = ".fgbackup";
/// Proves `.fgbackup/` was made by this store (see `claim_store_dir`).
const STAMP: &str = "STORE";
const STAMP_TEXT: &str =
    "fgbackup directory store, layout 2: objects are ROOT/KEY; this directory is the store's own\n";
/// Mode of the directories and files the store creates (before the umask),
/// as `mkdir` and `cp` would give them.
const DIR_MODE: u32 = 0o777;
const FILE_MODE: u32 = 0o666;

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

/// Creates `dir` and its missing ancestors (the legacy migration's
/// `legacy/` tree, below the store's own directory).
fn make_dirs(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))
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

#[cfg(test)]
mod tests {
    use super::*;

    // docs/SAFETY.md S8
    #[test]
    fn reserved_and_odd_keys_are_refused() {
        assert!(LocalStore::split(".fgbackup/meta/x.gz").is_err());
        assert!(LocalStore::split("a/../b").is_err());
        assert!(LocalStore::split("/abs").is_err());
        assert!(LocalStore::split("site/.fgbackup/x.gz").is_ok());
    }
}
