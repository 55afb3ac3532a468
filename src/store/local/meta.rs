//! The metadata records under `.fgbackup/meta/`: one `sha256sum` line per
//! object, so an operator can check the archive by hand.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{LocalStore, STORE_DIR, io_err};
use crate::digest::hex;
use crate::store::StoreError;

/// A metadata record is one `sha256sum` line: anything longer is not one.
const META_MAX: u64 = 64 * 1024;

impl LocalStore {
    /// `meta/ab/<sha256 of KEY>.sha256`: fixed-length names, so a key of any
    /// legal length has one, and no key's record can sit where another
    /// key's directory of records would (`fw.gz` vs `fw.gz.sha256/x.gz`).
    /// Returns the sub-directory and the file name.
    pub(super) fn meta_of(key: &str) -> (String, String) {
        let h = hex(&Sha256::digest(key.as_bytes()));
        (h[..2].to_string(), format!("{h}.sha256"))
    }

    /// `ROOT/.fgbackup/meta/SUB/NAME`, for messages (records are reached by
    /// descriptor, never by this path).
    fn meta_path(&self, sub: &str, name: &str) -> PathBuf {
        self.root.join(STORE_DIR).join("meta").join(sub).join(name)
    }

    /// The recorded SHA-256 of `key`, if its metadata file is there and sound.
    pub(super) fn read_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
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
    pub(super) fn write_meta(&self, key: &str, sha256: &str) -> Result<(), StoreError> {
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
}

/// `HASH  NAME` (sha256sum's format) naming `name`: the lowercase hash.
pub(super) fn parse_sum_line(text: &str, name: &str) -> Option<String> {
    let line = text.strip_suffix('\n')?;
    let (hash, rest) = line.split_once("  ")?;
    (rest == name && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
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
}
