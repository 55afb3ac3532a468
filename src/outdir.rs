//! Writing restored files below `--to` so that what appears under a name is
//! exactly the file whose bytes were proven, and nothing lands outside.
//!
//! The restore directory may be writable by others (a shared scratch disk),
//! and a restore takes long enough for them to act mid-way: swap a directory
//! on the way for a symlink to elsewhere, or swap the temporary file for
//! their own before it gets its name. So:
//!
//! - directories are created and opened one component at a time from the
//!   `--to` descriptor with `O_NOFOLLOW`; every later call is relative to the
//!   opened directory's descriptor, so a link swapped in afterwards changes
//!   nothing;
//! - the bytes go to a nameless file (`O_TMPFILE`) that gets its name with
//!   `linkat` through its own descriptor: there is no temporary name to swap,
//!   and a killed run leaves nothing behind;
//! - every directory used, `--to` included, must be one only we (or root)
//!   can rename entries in: owned by us or root, and not writable by group
//!   or others unless sticky. Otherwise someone could move a directory, with
//!   files still arriving in it, out of `--to`;
//! - where the filesystem has no `O_TMPFILE` (NFS, FAT, some FUSE), a named
//!   temporary file is used; after the no-replace link the name must hold
//!   the proven SHA-256 (re-read; inode numbers are not stable on every
//!   FUSE filesystem), or the new name is removed and nothing is published.
//!   Temporary files of runs that are gone are removed from each directory
//!   the first time a run uses it.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::fsafe::{OpenError, open_at};

/// `--to`, opened once per run (it may itself be a symlink: that is the
/// admin's choice); everything below it is reached from this descriptor.
pub struct OutRoot {
    fd: OwnedFd,
    /// Directories already cleared of dead runs' temporary files.
    swept: std::sync::Mutex<std::collections::HashSet<(u64, u64)>>,
}

/// A directory below `--to`, reached without following links.
pub struct OutDir {
    fd: OwnedFd,
}

/// A file being written in an [`OutDir`], not yet under its name.
pub struct Temp<'d> {
    pub file: File,
    /// The temporary name, where the filesystem needed one; removed on drop.
    named: Option<CString>,
    dir: &'d OutDir,
}

impl OutRoot {
    pub fn open(to: &Path) -> io::Result<OutRoot> {
        let fd = open_at(
            libc::AT_FDCWD,
            to.as_os_str().as_bytes(),
            libc::O_DIRECTORY | libc::O_RDONLY,
        )?;
        let file = File::from(fd);
        if let Some(why) = not_private(&file.metadata()?) {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
        Ok(OutRoot {
            fd: OwnedFd::from(file),
            swept: Default::default(),
        })
    }

    /// Opens `dirs` below `--to`, creating the missing ones (mode 0700); a
    /// component that is a link, not a directory, or a directory others
    /// control ([`not_private`]) is refused, never used.
    pub fn make_dirs(&self, dirs: &[&str]) -> Result<OutDir, OpenError> {
        let mut dir = self.fd.try_clone().map_err(OpenError::Io)?;
        for part in dirs {
            let name = cstring(part).map_err(OpenError::Io)?;
            // SAFETY: a valid descriptor and a NUL-terminated name.
            // 0700, like the files (0600): restored evidence stays private,
            // and no umask can make it group-writable.
            if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o700) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(OpenError::Io(e));
                }
            }
            let flags = libc::O_DIRECTORY | libc::O_RDONLY | libc::O_NOFOLLOW;
            let next = open_at(dir.as_raw_fd(), part.as_bytes(), flags).map_err(|e| {
                match e.raw_os_error() {
                    Some(libc::ELOOP) | Some(libc::ENOTDIR) => OpenError::NotRegular(format!(
                        "'{part}' is a link or a file, not a directory: nothing is restored through it"
                    )),
                    _ => OpenError::Io(e),
                }
            })?;
            let next = File::from(next);
            let meta = next.metadata().map_err(OpenError::Io)?;
            if let Some(why) = not_private(&meta) {
                return Err(OpenError::NotRegular(format!("'{part}' {why}")));
            }
            dir = OwnedFd::from(next);
            self.sweep_once(&dir, (meta.dev(), meta.ino()));
        }
        Ok(OutDir { fd: dir })
    }

    /// Removes the temporary files of restores that are no longer running
    /// (killed, or stopped while a worker was still writing) from `dir`,
    /// the first time this run uses it.
    fn sweep_once(&self, dir: &OwnedFd, id: (u64, u64)) {
        let first = self
            .swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
        if !first {
            return;
        }
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = temp_owner(&name.to_string_lossy()) else {
                continue;
            };
            if pid != std::process::id()
                && !alive(pid)
                && let Ok(c) = CString::new(name.as_bytes())
            {
                // SAFETY: a NUL-terminated name relative to a valid directory.
                unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
            }
        }
    }
}

impl OutDir {
    /// What is at `name`: nothing, a regular file (opened, not following a
    /// link), or something else (a link, a directory, a device).
    pub fn existing(&self, name: &str) -> io::Result<Existing> {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        match open_at(self.fd.as_raw_fd(), name.as_bytes(), flags) {
            Ok(fd) => {
                let file = File::from(fd);
                match file.metadata()?.file_type().is_file() {
                    true => Ok(Existing::File(file)),
                    false => Ok(Existing::Other),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Nothing),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(Existing::Other),
            Err(e) => Err(e),
        }
    }

    /// A new file for the bytes, mode 0600: nameless where the filesystem
    /// allows, else under a fresh temporary name (`O_EXCL`, `O_NOFOLLOW`).
    pub fn temp(&self) -> io::Result<Temp<'_>> {
        let flags = libc::O_TMPFILE | libc::O_RDWR;
        match open_mode(self.fd.as_raw_fd(), c".", flags) {
            Ok(fd) => Ok(Temp {
                file: File::from(fd),
                named: None,
                dir: self,
            }),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL)
                ) =>
            {
                self.named_temp()
            }
            Err(e) => Err(e),
        }
    }

    fn named_temp(&self) -> io::Result<Temp<'_>> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDWR;
        let mut last = io::Error::other("no temporary name was free");
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = cstring(&format!(
                ".fgbackup-restore-{}-{n}-{}.tmp",
                std::process::id(),
                nanos()
            ))?;
            match open_mode(self.fd.as_raw_fd(), &name, flags) {
                Ok(fd) => {
                    return Ok(Temp {
                        file: File::from(fd),
                        named: Some(name),
                        dir: self,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Gives `temp` (whose content has SHA-256 `sha256`) the name `name`
    /// without replacing anything, and makes the name durable. `Ok(false)`
    /// when something is already there.
    pub fn publish(&self, temp: &Temp<'_>, name: &str, sha256: &str) -> io::Result<bool> {
        let target = cstring(name)?;
        let linked = match &temp.named {
            None => self.link_nameless(&temp.file, &target),
            Some(tmp) => self.link_named(tmp, &target),
        };
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        }
        if temp.named.is_some() {
            self.check_published(name, &target, sha256)?;
        }
        // SAFETY: fsync on a valid descriptor.
        unsafe { libc::fsync(self.fd.as_raw_fd()) };
        Ok(true)
    }

    /// `linkat` of an `O_TMPFILE` file through `/proc/self/fd`, or where
    /// there is no `/proc` through `AT_EMPTY_PATH` (needs privilege).
    fn link_nameless(&self, file: &File, target: &CString) -> io::Result<()> {
        let proc_path = cstring(&format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        // SAFETY: NUL-terminated paths, valid descriptors.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                proc_path.as_ptr(),
                self.fd.as_raw_fd(),
                target.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
        // SAFETY: as above; the empty path names `file` itself.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                c"".as_ptr(),
                self.fd.as_raw_fd(),
                target.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `linkat` of the temporary name; on filesystems without hard links a
    /// rename that refuses to replace.
    fn link_named(&self, tmp: &CString, target: &CString) -> io::Result<()> {
        let dir = self.fd.as_raw_fd();
        // SAFETY: NUL-terminated names relative to a valid directory.
        if unsafe { libc::linkat(dir, tmp.as_ptr(), dir, target.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::AlreadyExists {
            return Err(e);
        }
        // SAFETY: as above.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                dir,
                tmp.as_ptr(),
                dir,
                target.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let renamed = io::Error::last_os_error();
        // Something took the name meanwhile: that is the answer, not why
        // the link failed.
        match renamed.kind() {
            io::ErrorKind::AlreadyExists => Err(renamed),
            _ => Err(e),
        }
    }

    /// The name must now hold the proven bytes: if the temporary name was
    /// swapped before the link, the new name is removed. (Content, not
    /// inode numbers: some FUSE filesystems give a new link another one.)
    fn check_published(&self, name: &str, target: &CString, sha256: &str) -> io::Result<()> {
        let holds = match self.existing(name)? {
            Existing::File(f) => crate::digest::digest_reader(f, false)?.sha256 == sha256,
            _ => false,
        };
        if holds {
            return Ok(());
        }
        // SAFETY: a name relative to a valid directory; we created it.
        unsafe { libc::unlinkat(self.fd.as_raw_fd(), target.as_ptr(), 0) };
        Err(io::Error::other(
            "the temporary file was replaced while the object was written; nothing published",
        ))
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.named.take() {
            // SAFETY: a NUL-terminated name relative to a directory the
            // borrow keeps open.
            unsafe { libc::unlinkat(self.dir.fd.as_raw_fd(), name.as_ptr(), 0) };
        }
    }
}

/// What a name in an [`OutDir`] holds.
pub enum Existing {
    Nothing,
    File(File),
    /// A symlink, directory, device...: never opened, never replaced.
    Other,
}

fn open_mode(dir: libc::c_int, name: &std::ffi::CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: NUL-terminated name; the descriptor is checked before owned.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Why a directory could let someone else move what is restored into it:
/// owned by another user, or writable by group or others without the
/// sticky bit. `None` when only its owner (us or root) can.
fn not_private(meta: &std::fs::Metadata) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "is owned by uid {}: not restoring into a directory someone else controls",
            meta.uid()
        ));
    }
    let sticky = meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !sticky {
        return Some(format!(
            "is writable by group or others (mode {:o}) without the sticky bit: anyone could move what is restored; use a private directory",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// The process id in a temporary file's name, `.fgbackup-restore-PID-...`.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".fgbackup-restore-")?;
    if !rest.ends_with(".tmp") {
        return None;
    }
    rest.split('-').next()?.parse().ok()
}

/// Whether a process with this id exists (a reused id only keeps a file).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists.
    unsafe {
        libc::kill(pid, 0) == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name holds a NUL byte"))
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sha(data: &[u8]) -> String {
        crate::digest::digest_reader(data, false).unwrap().sha256
    }

    #[test]
    fn a_file_is_published_once_and_never_replaced() {
        let d = tempfile::tempdir().unwrap();
        let root = OutRoot::open(d.path()).unwrap();
        let dir = root.make_dirs(&["a", "b"]).unwrap();
        let mut t = dir.temp().unwrap();
        t.file.write_all(b"proven").unwrap();
        assert!(dir.publish(&t, "x.gz", &sha(b"proven")).unwrap());
        let mut other = dir.temp().unwrap();
        other.file.write_all(b"second").unwrap();
        assert!(
            !dir.publish(&other, "x.gz", &sha(b"second")).unwrap(),
            "never replaced"
        );
        drop((t, other));
        assert_eq!(std::fs::read(d.path().join("a/b/x.gz")).unwrap(), b"proven");
        let left: Vec<_> = std::fs::read_dir(d.path().join("a/b")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }

    // docs/SAFETY.md S25
    #[test]
    fn a_swapped_temporary_name_is_never_published() {
        let d = tempfile::tempdir().unwrap();
        let root = OutRoot::open(d.path()).unwrap();
        let dir = root.make_dirs(&["a"]).unwrap();
        let mut t = dir.named_temp().unwrap();
        t.file.write_all(b"proven").unwrap();
        let tmp_name = t.named.clone().unwrap().into_string().unwrap();
        std::fs::write(d.path().join("a/evil"), b"evil").unwrap();
        std::fs::rename(d.path().join("a/evil"), d.path().join("a").join(&tmp_name)).unwrap();
        assert!(dir.publish(&t, "x.gz", &sha(b"proven")).is_err());
        assert!(!d.path().join("a/x.gz").exists(), "nothing published");
        drop(t);
        assert!(
            !d.path().join("a").join(&tmp_name).exists(),
            "temporary name removed"
        );
    }

    #[test]
    fn directories_others_control_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let mode = |p: &str, m: u32| {
            std::fs::create_dir_all(d.path().join(p)).unwrap();
            std::fs::set_permissions(d.path().join(p), std::fs::Permissions::from_mode(m)).unwrap();
        };
        mode("shared", 0o775);
        mode("tmp", 0o1777);
        let root = OutRoot::open(d.path()).unwrap();
        assert!(matches!(
            root.make_dirs(&["shared"]),
            Err(OpenError::NotRegular(_))
        ));
        assert!(root.make_dirs(&["tmp", "mine"]).is_ok(), "sticky is fine");
        let made = std::fs::metadata(d.path().join("tmp/mine")).unwrap();
        assert_eq!(made.mode() & 0o777, 0o700);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            mode("theirs", 0o755);
            std::os::unix::fs::chown(d.path().join("theirs"), Some(65534), None).unwrap();
            assert!(matches!(
                root.make_dirs(&["theirs"]),
                Err(OpenError::NotRegular(_))
            ));
        }
        mode("open", 0o777);
        assert!(
            OutRoot::open(&d.path().join("open")).is_err(),
            "--to itself too"
        );
    }

    // docs/SAFETY.md S25
    #[test]
    fn temporary_files_of_dead_runs_are_swept_once() {
        let d = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let a = d.path().join("a");
        std::fs::create_dir(&a).unwrap();
        let names = [
            format!(".fgbackup-restore-{dead}-0-1.tmp"),
            format!(".fgbackup-restore-{}-0-1.tmp", std::process::id()),
            ".fgbackup-restore-1-0-1.tmp".to_string(),
            "x.gz".to_string(),
        ];
        for n in &names {
            std::fs::write(a.join(n), b"x").unwrap();
        }
        let root = OutRoot::open(d.path()).unwrap();
        root.make_dirs(&["a"]).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&a)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = names[1..].to_vec();
        want.sort();
        assert_eq!(left, want, "only the dead run's file goes");
    }

    #[test]
    fn links_on_the_way_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), d.path().join("a")).unwrap();
        let root = OutRoot::open(d.path()).unwrap();
        assert!(matches!(
            root.make_dirs(&["a", "b"]),
            Err(OpenError::NotRegular(_))
        ));
        std::fs::create_dir(d.path().join("c")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("c/x.gz")).unwrap();
        let dir = root.make_dirs(&["c"]).unwrap();
        assert!(matches!(dir.existing("x.gz").unwrap(), Existing::Other));
        assert!(
            std::fs::read_dir(elsewhere.path())
                .unwrap()
                .next()
                .is_none()
        );
    }
}
