//! Finding the files one run should archive.
//!
//! A candidate is a regular file (never a symlink: following one could
//! archive, and later delete, something outside `--dir`) whose name matches
//! an `--include` pattern and which has not been modified for `--min-age`
//! (rsyslog or logrotate may still be writing younger files).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Keys under `PREFIX` + this belong to the signed manifest chain, never to
/// a log file: the scan skips a source directory of that name.
pub const MANIFEST_DIR: &str = "_manifests/";

/// Keys under `PREFIX` + this hold the content index's sidecars
/// (`content::sidecar`), never a log file: the scan skips a source
/// directory of that name.
pub const INDEX_DIR: &str = "_index/";

/// How a sidecar's key ends.
const SIDECAR_END: &str = ".fgix";

/// The key of the sidecar of the archive at `key`: `PREFIX_index/REST.fgix`
/// for `PREFIX` + `REST`; `None` for a key outside `prefix`.
pub fn sidecar_key(prefix: &str, key: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?;
    Some(format!("{prefix}{INDEX_DIR}{rest}{SIDECAR_END}"))
}

/// Whether `key` has the shape of a sidecar under any prefix
/// (`…_index/….fgix`): a box that lists a whole bucket, or a parent of the
/// sites' prefixes, must not take the sites' sidecars for archives.
pub fn is_sidecar_object(key: &str) -> bool {
    let under_index = key.starts_with(INDEX_DIR) || key.contains(&format!("/{INDEX_DIR}"));
    under_index && key.len() > INDEX_DIR.len() + SIDECAR_END.len() && key.ends_with(SIDECAR_END)
}

/// `YYYY-MM-DD` at the start of `s`.
pub fn starts_with_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// The device an archive's key names, as `restore --device` reads it
/// (`ops::restore::of_device`): the file name up to `-YYYY-MM-DD`
/// (`FGT60F-SITE01-2026-11-01T10.log.gz`), else its directory
/// (`FGT60F-SITE01/x.log.gz`), else the name without its extensions.
/// For the dashboard and the live stream, which show a row's device
/// without reading its content (a failed file has no index).
pub fn device_of(key: &str) -> String {
    let mut segments = key.rsplit('/');
    let name = segments.next().unwrap_or("");
    let dated = name
        .match_indices('-')
        .find(|(i, _)| starts_with_date(&name[i + 1..]))
        .map(|(i, _)| &name[..i]);
    match (dated, segments.next()) {
        (Some(d), _) if !d.is_empty() => d.to_string(),
        (_, Some(dir)) if !dir.is_empty() => dir.to_string(),
        _ => name.split('.').next().unwrap_or(name).to_string(),
    }
}

/// The name of a host's public key in its manifest directory.
pub const PUBLIC_KEY_FILE: &str = "ed25519.pub";

/// Whether `rest`, a key below [`MANIFEST_DIR`], has the shape of an object
/// fgbackup writes there (`ops::manifest`): `HOST/ed25519.pub`, or
/// `HOST/YYYY/MM/DD/NAME.json`. Anything else in the reserved directory was
/// put there by someone else, and `verify` reports it as extra.
/// `ops::manifest`'s tests check the keys it writes pass.
pub fn is_manifest_object(rest: &str) -> bool {
    // Only the shape: whether a manifest is genuine is for the chain check.
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [host, name] => !host.is_empty() && *name == PUBLIC_KEY_FILE,
        [host, y, m, d, name] => {
            !host.is_empty()
                && digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && name.len() > ".json".len()
                && name.ends_with(".json")
        }
        _ => false,
    }
}

/// One file to archive, as seen when the directory was scanned.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    /// Path relative to `--dir` with `/` separators: the object key without prefix.
    pub relative: String,
    pub size: u64,
    /// Device and inode seen by the scan: the file later opened must be this one.
    pub dev: u64,
    pub ino: u64,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Sorted by relative path, so runs are reproducible.
    pub candidates: Vec<Candidate>,
    /// Matching files left for a later run because they are younger than `--min-age`.
    pub too_young: usize,
    /// Regular files whose name matches no `--include` pattern.
    pub excluded: usize,
    /// Problems that did not stop the scan (unreadable sub-directory, odd name).
    pub warnings: Vec<String>,
}

/// Recursively scans `root` for files matching any of `patterns`, except
/// the (resolved) paths in `skip`: fgbackup's own files; and never into a
/// directory store (the destination's root, `store`'s device and inode, or
/// any directory holding a store's stamp): mounted below `--dir`, its
/// objects would be archived again and deleted from the archive.
pub fn scan(
    root: &Path,
    patterns: &[String],
    min_age: Duration,
    now: SystemTime,
    skip: &[PathBuf],
    store: Option<(u64, u64)>,
) -> ScanOutcome {
    let mut scan = Scan {
        root,
        // The scan follows no link below `root`, so a candidate's real path
        // is the real root joined with its relative path.
        real_root: crate::paths::resolve(root).unwrap_or_else(|_| root.to_path_buf()),
        patterns,
        min_age,
        now,
        skip,
        store,
        out: ScanOutcome::default(),
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        scan.list(&dir, &mut stack);
    }
    scan.out
        .candidates
        .sort_by(|a, b| a.relative.cmp(&b.relative));
    scan.out
}

/// One scan's settings and findings.
struct Scan<'a> {
    root: &'a Path,
    real_root: PathBuf,
    patterns: &'a [String],
    min_age: Duration,
    now: SystemTime,
    skip: &'a [PathBuf],
    store: Option<(u64, u64)>,
    out: ScanOutcome,
}

impl Scan<'_> {
    /// Looks at every entry of `dir`; sub-directories go on `stack`.
    fn list(&mut self, dir: &Path, stack: &mut Vec<PathBuf>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.warn(format!("cannot list {}: {e}", dir.display())),
        };
        for entry in entries {
            let path = match entry {
                Ok(e) => e.path(),
                Err(e) => {
                    self.warn(format!("cannot read an entry of {}: {e}", dir.display()));
                    continue;
                }
            };
            // symlink_metadata: never follow links.
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() && self.is_a_store(&path, &m) => self.warn(format!(
                    "skipping {}: it is a directory store (the destination mounted inside --dir?): its objects are never archived again, nor deleted from it",
                    path.display()
                )),
                Ok(m) if m.is_dir() => stack.push(path),
                // Symlinks, sockets, fifos and devices are never candidates.
                Ok(m) if m.file_type().is_file() => self.consider(path, &m),
                Ok(_) => {}
                Err(e) => self.warn(format!("cannot stat {}: {e}", path.display())),
            }
        }
    }

    /// Adds a regular file if its name matches, it is old enough, its path
    /// can be a key and it is not one of fgbackup's own files.
    fn consider(&mut self, path: PathBuf, meta: &std::fs::Metadata) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return self.warn(format!(
                "skipping {}: the file name is not valid UTF-8, and object keys are UTF-8, so it has no faithful key; it stays in place and fails every run until renamed (e.g. convmv -f latin1 -t utf8 --notest)",
                path.display()
            ));
        };
        if !self.patterns.iter().any(|p| glob_match(p, name)) {
            self.out.excluded += 1;
            return;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if self.now.duration_since(mtime).unwrap_or(Duration::ZERO) < self.min_age {
            self.out.too_young += 1;
            return;
        }
        let Some(relative) = relative_key(self.root, &path) else {
            return self.warn(format!(
                "skipping {}: its path is not valid UTF-8, and object keys are UTF-8, so it has no faithful key; it stays in place and fails every run until its directory is renamed (e.g. convmv -f latin1 -t utf8 --notest)",
                path.display()
            ));
        };
        if relative.starts_with(MANIFEST_DIR) || relative.starts_with(INDEX_DIR) {
            return self.warn(format!(
                "skipping {}: keys under {} and {} are reserved for fgbackup's signed manifests and index sidecars; move the file",
                path.display(),
                MANIFEST_DIR,
                INDEX_DIR
            ));
        }
        if self.skip.contains(&self.real_root.join(&relative)) {
            log::info!(
                "not archiving {}: it is fgbackup's own (database, lock, flag or metrics file)",
                path.display()
            );
            return;
        }
        self.out.candidates.push(Candidate {
            path,
            relative,
            size: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        });
    }

    /// The destination itself (same device and inode, as through a bind
    /// mount), or any directory store (its stamp `.fgbackup/STORE`).
    fn is_a_store(&self, dir: &Path, m: &std::fs::Metadata) -> bool {
        self.store == Some((m.dev(), m.ino()))
            || std::fs::symlink_metadata(dir.join(".fgbackup/STORE")).is_ok_and(|s| s.is_file())
    }

    fn warn(&mut self, warning: String) {
        self.out.warnings.push(warning);
    }
}

/// `root/a/b.gz` → `a/b.gz`.
fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Shell-style match of a file name: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `device_of` names is what `restore --device` selects.
    #[test]
    fn the_device_of_a_key() {
        for (key, device) in [
            (
                "FGT60F-SITE01/FGT60F-SITE01-2026-11-01T10.log.gz",
                "FGT60F-SITE01",
            ),
            ("site7/FGT60F-SITE02-2026-11-01T10.log.gz", "FGT60F-SITE02"),
            ("FGT60F-SITE03/traffic.log.gz", "FGT60F-SITE03"),
        ] {
            assert_eq!(device_of(key), device, "{key}");
            assert!(crate::ops::restore::of_device(key, device), "{key}");
        }
        // No date, no directory: the name is all there is.
        assert_eq!(device_of("fw-dmz.log.gz"), "fw-dmz");
    }

    // docs/SAFETY.md S24
    #[test]
    fn only_the_shapes_fgbackup_writes_count_as_manifest_objects() {
        assert!(is_manifest_object("fw-1/ed25519.pub"));
        assert!(is_manifest_object(
            "fw-1/2026/11/23/20261123T101500.123Z.json"
        ));
        for stray in [
            "notes.txt",
            "ed25519.pub",
            "/ed25519.pub",
            "fw-1/junk.bin",
            "fw-1/ed25519.pub.bak",
            "fw-1/2026/11/23/.json",
            "fw-1/2026/11/23/x.json.gz",
            "fw-1/26/11/23/x.json",
            "fw-1/2026/11/x.json",
            "fw-1/2026/11/23/extra/x.json",
            "fw-1/2026/1a/23/x.json",
        ] {
            assert!(!is_manifest_object(stray), "{stray}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.gz", "fw1-2026-11-01.log.gz"));
        assert!(!glob_match("*.gz", "fw1.log"));
        assert!(glob_match("fw?-*.gz", "fw1-a.gz"));
        assert!(!glob_match("fw?-*.gz", "fw12-a.gz"));
        assert!(glob_match("*", ""));
    }

    // docs/SAFETY.md S9
    #[test]
    fn skips_links_young_and_unmatched_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("site/fw1")).unwrap();
        std::fs::write(root.join("site/fw1/a.log.gz"), b"x").unwrap();
        std::fs::write(root.join("b.log.gz"), b"yy").unwrap();
        std::fs::write(root.join("c.log"), b"z").unwrap();
        std::os::unix::fs::symlink(root.join("b.log.gz"), root.join("link.gz")).unwrap();
        let pats = vec!["*.gz".to_string()];
        let later = SystemTime::now() + Duration::from_secs(3600);
        let out = scan(root, &pats, Duration::from_secs(60), later, &[], None);
        let keys: Vec<&str> = out.candidates.iter().map(|c| c.relative.as_str()).collect();
        assert_eq!(keys, ["b.log.gz", "site/fw1/a.log.gz"]);
        assert_eq!(out.candidates[0].size, 2);
        let now = scan(
            root,
            &pats,
            Duration::from_secs(60),
            SystemTime::now(),
            &[],
            None,
        );
        assert!(now.candidates.is_empty());
        assert_eq!(now.too_young, 2);
    }
}
