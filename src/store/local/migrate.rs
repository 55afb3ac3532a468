//! The old layout, moved aside once: sidecars `KEY.sha256` next to each
//! object and temporary files of earlier versions. Their hashes become the
//! store's metadata records; the files themselves go to
//! `.fgbackup/legacy/`, never deleted.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::meta::parse_sum_line;
use super::{FILE_MODE, LocalStore, STORE_DIR, io_err, make_dirs};
use crate::dirfd::Dir;
use crate::store::StoreError;

/// Written once the old sidecar layout has been migrated.
const LAYOUT_MARKER: &str = "migrated";

impl LocalStore {
    /// Moves the old layout's sidecars (`KEY.sha256` next to `KEY`) and
    /// temporary files aside, recording the sidecars' hashes as metadata.
    /// Runs once per archive (a marker file says it is done), under a lock.
    pub(super) fn migrate_legacy(&self) -> Result<(), StoreError> {
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

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence; no signal is sent.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}
