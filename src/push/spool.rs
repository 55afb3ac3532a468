//! Where pushed bodies wait until they are archived.
//!
//! ```text
//! SPOOL/<token id>/<h>.meta        {"name", "size", "sha256"}: what the push declared
//! SPOOL/<token id>/<h>/<name>      the body, as far as it arrived
//! ```
//!
//! `<h>` is the first 32 hex digits of the SHA-256 of the name, so every
//! (token, name) has one place; below it the body has the name itself,
//! directories included (checked by [`crate::push::name`]), so that the
//! archive pipeline opens it below `<h>/` and keys it exactly as a file
//! found at that path below `--dir`. A body is only ever archived once it
//! has the declared size *and* the declared SHA-256 (checked as it arrived
//! and again by the pipeline's own read), so a half file left by a crash
//! is resumed or discarded, never archived as whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a push declared when it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    pub root: PathBuf,
}

/// One (token, name)'s place in the spool.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `SPOOL/<token id>/<h>/`: the archive pipeline's root for this body.
    pub dir: PathBuf,
    /// The pushed name: the body's path below `dir`.
    pub name: String,
    meta: PathBuf,
}

impl Spool {
    /// Creates the spool directory (mode 0700) when missing.
    pub fn open(root: &Path) -> io::Result<Spool> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        Ok(Spool {
            root: root.to_path_buf(),
        })
    }

    /// The place of `name` pushed with token `id` (both already checked).
    pub fn entry(&self, token_id: &str, name: &str) -> Entry {
        let h = crate::push::token::hex(&Sha256::digest(name.as_bytes()));
        let h = &h[..32];
        let token_dir = self.root.join(token_id);
        Entry {
            dir: token_dir.join(h),
            name: name.to_string(),
            meta: token_dir.join(format!("{h}.meta")),
        }
    }

    /// Bytes free for an unprivileged writer on the spool's file system.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let path = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the spool path"))?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C string and a struct of the right type to fill.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        #[allow(clippy::unnecessary_cast)]
        Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }

    /// What the token's entries declared (one directory read: a token has
    /// a few entries at most, bounded by its limits).
    pub fn token_entries(&self, token_id: &str) -> Vec<Meta> {
        let Ok(metas) = fs::read_dir(self.root.join(token_id)) else {
            return Vec::new();
        };
        metas
            .flatten()
            .filter_map(|m| read_meta(&m.path()))
            .collect()
    }

    /// Every entry with its token id, what was declared, and the bytes
    /// held (the declared size: whole, to be archived again after a
    /// restart or a failed archive; less: a push that may resume). Entries
    /// are few (one per push not yet archived), so they are gathered.
    pub fn entries(&self) -> Vec<(String, Entry, Meta, u64)> {
        let mut found = Vec::new();
        let Ok(tokens) = fs::read_dir(&self.root) else {
            return found;
        };
        for token in tokens.flatten() {
            let token_id = token.file_name().to_string_lossy().into_owned();
            let Ok(metas) = fs::read_dir(token.path()) else {
                continue;
            };
            for m in metas.flatten() {
                let Some(meta) = read_meta(&m.path()) else {
                    continue;
                };
                let entry = self.entry(&token_id, &meta.name);
                if entry.meta != m.path() {
                    continue;
                }
                let held = entry.held();
                found.push((token_id.clone(), entry, meta, held));
            }
        }
        found
    }
}

fn read_meta(path: &Path) -> Option<Meta> {
    if path.extension().is_none_or(|e| e != "meta") {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Entry {
    pub fn body(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// What the push in progress declared, if one is.
    pub fn meta(&self) -> Option<Meta> {
        read_meta(&self.meta)
    }

    /// Bytes of the body on disk (0 without one).
    pub fn held(&self) -> u64 {
        fs::metadata(self.body()).map_or(0, |m| m.len())
    }

    /// How long since the body last grew (or was begun).
    pub fn idle(&self) -> Option<std::time::Duration> {
        let m = fs::metadata(self.body())
            .or_else(|_| fs::metadata(&self.meta))
            .ok()?;
        m.modified().ok()?.elapsed().ok()
    }

    /// Starts a push: the declaration on disk (durably, before any byte
    /// of the body), and an empty body.
    pub fn begin(&self, meta: &Meta) -> io::Result<()> {
        let builder = {
            let mut b = fs::DirBuilder::new();
            b.recursive(true).mode(0o700);
            b
        };
        let body = self.body();
        builder.create(body.parent().unwrap_or(&self.dir))?;
        self.no_links()?;
        let tmp = self.meta.with_extension("meta.tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        // Serializing a struct of strings and numbers cannot fail.
        f.write_all(&serde_json::to_vec(meta).unwrap_or_default())?;
        f.sync_all()?;
        fs::rename(&tmp, &self.meta)?;
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.body())?;
        Ok(())
    }

    /// Every directory from the spool's token directory down to the body's
    /// is a real directory: a link planted there would make the server
    /// write where it points.
    pub fn no_links(&self) -> io::Result<()> {
        let body = self.body();
        let token_dir = self.dir.parent().unwrap_or(&self.dir);
        for dir in body.ancestors().skip(1) {
            if fs::symlink_metadata(dir)?.file_type().is_symlink() {
                return Err(io::Error::other(format!(
                    "{} is a symbolic link in the spool",
                    dir.display()
                )));
            }
            if dir == token_dir {
                break;
            }
        }
        Ok(())
    }

    /// The body opened to append at `offset` (its length), and a hasher
    /// that has read the bytes before it.
    pub fn resume(&self, offset: u64) -> io::Result<(File, Sha256)> {
        let mut hasher = Sha256::new();
        self.no_links()?;
        let mut held = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.body())?;
        let mut left = offset;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = held.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the spooled body is shorter than its offset",
                ));
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.body())?;
        Ok((file, hasher))
    }

    /// Removes the body, its declaration and their directories (a refused
    /// or archived push): nothing of it stays.
    pub fn discard(&self) {
        let body = self.body();
        if let Err(e) = self.no_links()
            && e.kind() != io::ErrorKind::NotFound
        {
            log::error!("spool: {} left in place: {e}", body.display());
            return;
        }
        let _ = fs::remove_file(&body);
        let _ = fs::remove_file(&self.meta);
        // The name's directories, deepest first, up to and with `dir`.
        let mut at = body.parent();
        while let Some(d) = at.filter(|d| d.starts_with(&self.dir)) {
            let _ = fs::remove_dir(d);
            at = d.parent();
        }
        if let Some(token_dir) = self.dir.parent() {
            let _ = fs::remove_dir(token_dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/SAFETY.md S36
    #[test]
    fn a_body_resumes_with_its_hash_and_entries_say_what_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("spool")).unwrap();
        let e = spool.entry("t1", "FGT-A/a.log.gz");
        assert_eq!(e.body(), e.dir.join("FGT-A/a.log.gz"));
        let data = b"hello world";
        let meta = Meta {
            name: "FGT-A/a.log.gz".into(),
            size: data.len() as u64,
            sha256: crate::push::token::hex(&Sha256::digest(data)),
        };
        e.begin(&meta).unwrap();
        assert_eq!(e.meta(), Some(meta.clone()));
        let (mut f, _) = e.resume(0).unwrap();
        f.write_all(&data[..5]).unwrap();
        assert_eq!(e.held(), 5);
        assert_eq!(spool.entries()[0].3, 5, "a half body is held as such");
        let (mut f, mut h) = e.resume(5).unwrap();
        f.write_all(&data[5..]).unwrap();
        h.update(&data[5..]);
        assert_eq!(crate::push::token::hex(&h.finalize()), meta.sha256);
        let all = spool.entries();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].0.as_str(), &all[0].2, all[0].3),
            ("t1", &meta, meta.size)
        );
        e.discard();
        assert!(fs::read_dir(&spool.root).unwrap().next().is_none());
        assert!(spool.free_bytes().unwrap() > 0);
    }
}
