//! Writing an object: a temporary file under `.fgbackup/tmp/`, locked by
//! its writer, synced, read back and hashed, then published under its key
//! without replacing anything; and cleaning up after writers that died.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{FILE_MODE, LocalStore, STORE_DIR, io_err, version_of};
use crate::digest::{self, hex};
use crate::dirfd::{Dir, Kind};
use crate::store::{Body, StoreError};

const COPY_CHUNK: usize = 256 * 1024;
/// A temporary file younger than this is never cleaned up, even if unlocked:
/// its writer may be between creating and locking it.
const TMP_GRACE: Duration = Duration::from_secs(60);

/// Distinguishes the temporary files of one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new temporary file under `.fgbackup/tmp/`, locked by its writer.
pub(super) struct Tmp {
    pub(super) dir: Dir,
    pub(super) name: String,
    pub(super) file: File,
}

impl LocalStore {
    /// A new, locked temporary file under `.fgbackup/tmp/`.
    pub(super) fn create_tmp(&self) -> Result<Tmp, StoreError> {
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
    pub(super) fn clean_tmp(&self) -> usize {
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
    pub(super) fn publish(
        &self,
        tmp: &Tmp,
        parent: &Dir,
        name: &str,
        key: &str,
    ) -> Result<(), StoreError> {
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

fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a valid descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Copies `body` into the locked temporary file, syncs it, then reads it
/// back and checks that both what was written and what is now on disk hash
/// to `expected`. Returns the file's version (see [`version_of`]).
pub(super) fn write_verified(
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
        crate::in_flight::moved(n as u64);
        left -= n as u64;
    }
    Ok(hex(&hasher.finalize()))
}
