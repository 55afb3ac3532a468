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
//! - where the filesystem has no `O_TMPFILE` (NFS, FAT), a named temporary
//!   file is used, and after the no-replace link the name must carry the
//!   temporary file's own device and inode, or the new name is removed and
//!   nothing is published.

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
        Ok(OutRoot { fd })
    }

    /// Opens `dirs` below `--to`, creating the missing ones; a component that
    /// is a link or not a directory is refused, never followed.
    pub fn make_dirs(&self, dirs: &[&str]) -> Result<OutDir, OpenError> {
        let mut dir = self.fd.try_clone().map_err(OpenError::Io)?;
        for part in dirs {
            let name = cstring(part).map_err(OpenError::Io)?;
            // SAFETY: a valid descriptor and a NUL-terminated name.
            if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(OpenError::Io(e));
                }
            }
            let flags = libc::O_DIRECTORY | libc::O_RDONLY | libc::O_NOFOLLOW;
            dir = open_at(dir.as_raw_fd(), part.as_bytes(), flags).map_err(|e| {
                match e.raw_os_error() {
                    Some(libc::ELOOP) | Some(libc::ENOTDIR) => OpenError::NotRegular(format!(
                        "'{part}' is a link or a file, not a directory: nothing is restored through it"
                    )),
                    _ => OpenError::Io(e),
                }
            })?;
        }
        Ok(OutDir { fd: dir })
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

    /// Gives `temp` the name `name` without replacing anything, and makes
    /// the name durable. `Ok(false)` when something is already there.
    pub fn publish(&self, temp: &Temp<'_>, name: &str) -> io::Result<bool> {
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
            self.check_published(&temp.file, &target)?;
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
        if rc == 0 { Ok(()) } else { Err(e) }
    }

    /// The name must now carry the temporary file's own identity: if the
    /// temporary name was swapped before the link, the new name is removed.
    fn check_published(&self, file: &File, target: &CString) -> io::Result<()> {
        let ours = file.metadata()?;
        let there = self.stat(target)?;
        #[allow(clippy::unnecessary_cast)] // dev_t and ino_t differ by target
        let there = (there.st_dev as u64, there.st_ino as u64);
        if there == (ours.dev(), ours.ino()) {
            return Ok(());
        }
        // SAFETY: a name relative to a valid directory; we created it.
        unsafe { libc::unlinkat(self.fd.as_raw_fd(), target.as_ptr(), 0) };
        Err(io::Error::other(
            "the temporary file was replaced while the object was written; nothing published",
        ))
    }

    fn stat(&self, name: &CString) -> io::Result<libc::stat> {
        // SAFETY: zeroed plain-data struct filled by the kernel.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let flags = libc::AT_SYMLINK_NOFOLLOW;
        // SAFETY: NUL-terminated name, valid directory, valid out pointer.
        let rc = unsafe { libc::fstatat(self.fd.as_raw_fd(), name.as_ptr(), &mut st, flags) };
        if rc == 0 {
            Ok(st)
        } else {
            Err(io::Error::last_os_error())
        }
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

    #[test]
    fn a_file_is_published_once_and_never_replaced() {
        let d = tempfile::tempdir().unwrap();
        let root = OutRoot::open(d.path()).unwrap();
        let dir = root.make_dirs(&["a", "b"]).unwrap();
        let mut t = dir.temp().unwrap();
        t.file.write_all(b"proven").unwrap();
        assert!(dir.publish(&t, "x.gz").unwrap());
        let mut other = dir.temp().unwrap();
        other.file.write_all(b"second").unwrap();
        assert!(!dir.publish(&other, "x.gz").unwrap(), "never replaced");
        drop((t, other));
        assert_eq!(std::fs::read(d.path().join("a/b/x.gz")).unwrap(), b"proven");
        let left: Vec<_> = std::fs::read_dir(d.path().join("a/b")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }

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
        assert!(dir.publish(&t, "x.gz").is_err());
        assert!(!d.path().join("a/x.gz").exists(), "nothing published");
        drop(t);
        assert!(
            !d.path().join("a").join(&tmp_name).exists(),
            "temporary name removed"
        );
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
