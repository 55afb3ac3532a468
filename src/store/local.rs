//! A directory as archive destination: the embedded default of the demo, and
//! a real use for NFS mounts and USB disks.
//!
//! Layout: `ROOT/KEY` holds the bytes and `ROOT/KEY.sha256` the metadata, in
//! `sha256sum` format so `sha256sum -c` can check an archive by hand. Writes go
//! to a temporary name, are synced, read back and hashed, and only then
//! renamed into place: a crash never leaves a half file under the real name.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Body, RemoteObject, Store, StoreError};
use crate::budget::MemoryBudget;
use crate::digest::{self, hex};

const COPY_CHUNK: usize = 256 * 1024;

/// A destination directory.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn sidecar_of(path: &Path) -> PathBuf {
        let mut s = path.as_os_str().to_os_string();
        s.push(".sha256");
        PathBuf::from(s)
    }
}

fn io_err(action: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::permanent(format!("failed to {action} {}: {e}", path.display()))
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn url(&self, key: &str) -> String {
        format!("file://{}", self.path_of(key).display())
    }

    fn check(&self) -> Result<(), StoreError> {
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(StoreError::permanent(format!(
                "destination {} is not a directory: fix --dest",
                self.root.display()
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(&self.root)
                .map_err(|e| {
                    StoreError::permanent(format!(
                        "cannot create destination directory {} ({e}): create it or fix --dest",
                        self.root.display()
                    ))
                }),
            Err(e) => Err(io_err("access destination", &self.root, e)),
        }
    }

    fn head(&self, key: &str) -> Result<Option<RemoteObject>, StoreError> {
        let path = self.path_of(key);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("stat", &path, e)),
        };
        let sidecar = Self::sidecar_of(&path);
        let sha256 = match fs::read_to_string(&sidecar) {
            Ok(text) => text.split_whitespace().next().map(str::to_string),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("read", &sidecar, e)),
        };
        Ok(Some(RemoteObject {
            size: meta.len(),
            sha256,
        }))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(key);
        fs::read(&path).map_err(|e| io_err("read", &path, e))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key);
        fs::remove_file(&path).map_err(|e| io_err("delete", &path, e))?;
        let sidecar = Self::sidecar_of(&path);
        match fs::remove_file(&sidecar) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("delete", &sidecar, e)),
            _ => Ok(()),
        }
    }

    fn put(
        &self,
        key: &str,
        body: Body<'_>,
        sha256: &str,
        _budget: &Arc<MemoryBudget>,
    ) -> Result<(), StoreError> {
        let path = self.path_of(key);
        let parent = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(parent).map_err(|e| io_err("create directory", parent, e))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{file_name}.fgbackup-{}.tmp", std::process::id()));
        let result = write_verified(&tmp, body, sha256);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // Metadata first: an object without its sidecar would read as
        // "exists without sha256", which blocks later runs from skipping it.
        let sidecar = Self::sidecar_of(&path);
        let sidecar_tmp = parent.join(format!(
            ".{file_name}.sha256.fgbackup-{}.tmp",
            std::process::id()
        ));
        let line = format!("{sha256}  {file_name}\n");
        fs::write(&sidecar_tmp, line)
            .and_then(|()| File::open(&sidecar_tmp)?.sync_all())
            .map_err(|e| io_err("write", &sidecar_tmp, e))?;
        fs::rename(&sidecar_tmp, &sidecar).map_err(|e| io_err("rename into", &sidecar, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("rename into", &path, e))?;
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Copies `body` to `tmp`, syncs it, then reads it back and checks that both
/// what was written and what is now on disk hash to `expected`.
fn write_verified(tmp: &Path, body: Body<'_>, expected: &str) -> Result<(), StoreError> {
    let mut out = File::create(tmp).map_err(|e| io_err("create", tmp, e))?;
    let sent = match body {
        Body::Memory(data) => {
            out.write_all(data).map_err(|e| io_err("write", tmp, e))?;
            hex(&Sha256::digest(data))
        }
        Body::File { file, size } => {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| StoreError::permanent(format!("cannot rewind source file: {e}")))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; COPY_CHUNK];
            let mut left = size;
            while left > 0 {
                let want = usize::try_from(left.min(COPY_CHUNK as u64)).unwrap_or(COPY_CHUNK);
                let n = file
                    .read(&mut buf[..want])
                    .map_err(|e| StoreError::permanent(format!("cannot read source file: {e}")))?;
                if n == 0 {
                    return Err(StoreError::changed(
                        "the source file became shorter while it was being copied",
                    ));
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| io_err("write", tmp, e))?;
                left -= n as u64;
            }
            hex(&hasher.finalize())
        }
    };
    if sent != expected {
        return Err(StoreError::changed(
            "the source file changed between hashing and copying",
        ));
    }
    out.sync_all().map_err(|e| io_err("sync", tmp, e))?;
    drop(out);
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
    Ok(())
}
