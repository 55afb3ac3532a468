//! Directories used through their descriptors, never by path.
//!
//! A path is resolved again by the kernel at every call, following every
//! symlink on the way, and a directory that others can write changes under
//! a long run: a directory swapped for a link to elsewhere (the log
//! directory, `/etc`) would lead reads, writes and deletes there. A [`Dir`]
//! is opened once, each step down with `O_NOFOLLOW`, and every later call is
//! relative to its descriptor (`openat`, `linkat`, `unlinkat`...), so a link
//! anywhere below the starting directory is refused, never followed.
//!
//! The starting directory itself ([`Dir::open`]) may be a symlink: that is
//! the admin's configuration (`--dest file:///mnt/archive` on a link).

use std::ffi::{CString, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An open directory; everything below it is reached from its descriptor.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// What a name in a directory is, as `lstat` sees it (never following).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    /// A symlink, socket, device or FIFO.
    Other,
}

impl Dir {
    /// Opens `path` (a symlink there is followed: that is configuration).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = raw_open(
            libc::AT_FDCWD,
            &cstr(path.as_os_str().as_bytes())?,
            libc::O_DIRECTORY | libc::O_RDONLY,
            0,
        )?;
        Ok(Dir { fd })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The directory `name` below this one, never through a link: a link or
    /// a file there fails with `ELOOP` or `ENOTDIR` (see [`is_link_error`]).
    pub fn sub(&self, name: &str) -> io::Result<Dir> {
        let flags = libc::O_DIRECTORY | libc::O_RDONLY | libc::O_NOFOLLOW;
        Ok(Dir {
            fd: raw_open(self.raw(), &cstr(name.as_bytes())?, flags, 0)?,
        })
    }

    /// Walks down `parts`, one component at a time without following links;
    /// with `create`, missing directories are made with that mode (and each
    /// parent synced, so a new path survives a power cut).
    pub fn walk(&self, parts: &[&str], create: Option<u32>) -> io::Result<Dir> {
        let mut dir = self.try_clone()?;
        for part in parts {
            dir = match (dir.sub(part), create) {
                (Ok(d), _) => d,
                (Err(e), Some(mode)) if e.kind() == io::ErrorKind::NotFound => {
                    dir.mkdir(part, mode)?;
                    dir.sync();
                    dir.sub(part)?
                }
                (Err(e), _) => return Err(e),
            };
        }
        Ok(dir)
    }

    /// Creates the directory `name`; one that already exists is fine.
    pub fn mkdir(&self, name: &str, mode: u32) -> io::Result<()> {
        let c = cstr(name.as_bytes())?;
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        if unsafe { libc::mkdirat(self.raw(), c.as_ptr(), mode as libc::mode_t) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EEXIST) => Ok(()),
            _ => Err(e),
        }
    }

    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// Opens the file `name` with `flags` (plus `O_NOFOLLOW`; new files get
    /// `mode`): a link there is refused with `ELOOP`.
    pub fn open_file(&self, name: &str, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let fd = raw_open(
            self.raw(),
            &cstr(name.as_bytes())?,
            flags | libc::O_NOFOLLOW,
            mode,
        )?;
        Ok(File::from(fd))
    }

    /// A new file named `stem` plus a suffix no one can predict (process,
    /// time, counter), created with `O_EXCL | O_NOFOLLOW`: whatever someone
    /// planted under a name this process might use (a link to the inventory,
    /// to `/etc/shadow`) makes the creation fail and the next name is tried,
    /// so nothing is ever written through it.
    pub fn create_unique(&self, stem: &str, mode: u32) -> io::Result<(String, File)> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        let mut last = io::Error::other("no free temporary name");
        for _ in 0..16 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("{stem}{}-{n}-{nanos:09}.tmp", std::process::id());
            match self.open_file(&name, flags, mode) {
                Ok(f) => return Ok((name, f)),
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists
                        || e.raw_os_error() == Some(libc::ELOOP) =>
                {
                    last = e
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// What `name` is, without following it; `Ok(None)` when nothing is there.
    pub fn stat(&self, name: &str) -> io::Result<Option<Metadata>> {
        match raw_open(
            self.raw(),
            &cstr(name.as_bytes())?,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
        ) {
            Ok(fd) => File::from(fd).metadata().map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// This directory's own metadata.
    #[cfg(test)]
    pub fn metadata(&self) -> io::Result<Metadata> {
        File::from(self.fd.try_clone()?).metadata()
    }

    /// Removes the file (or link) `name`; a link is removed, not followed.
    pub fn unlink(&self, name: &str) -> io::Result<()> {
        let c = cstr(name.as_bytes())?;
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) })
    }

    /// Gives the file `name` the second name `to_name` in `to`; fails with
    /// `EEXIST` when that name is taken (nothing is ever replaced).
    pub fn link(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let (a, b) = (cstr(name.as_bytes())?, cstr(to_name.as_bytes())?);
        // SAFETY: valid descriptors and NUL-terminated names; flags 0: the
        // source is not followed if it is a link.
        check(unsafe { libc::linkat(self.raw(), a.as_ptr(), to.raw(), b.as_ptr(), 0) })
    }

    /// Renames `name` to `to_name` in `to` without replacing anything there
    /// (`renameat2(RENAME_NOREPLACE)`, `EEXIST` when taken; `EINVAL` or
    /// `ENOSYS` where the file system or kernel cannot promise it).
    pub fn rename_noreplace(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        self.rename_flags(name, to, to_name, libc::RENAME_NOREPLACE)
    }

    /// Renames `name` to `to_name` in `to`, replacing what is there (the
    /// name, never through a link).
    pub fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        self.rename_flags(name, to, to_name, 0)
    }

    fn rename_flags(&self, name: &str, to: &Dir, to_name: &str, flags: u32) -> io::Result<()> {
        let (a, b) = (cstr(name.as_bytes())?, cstr(to_name.as_bytes())?);
        // SAFETY: valid descriptors, NUL-terminated names, integer flags.
        // Through `syscall`: older libcs lack a renameat2 wrapper.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                self.raw(),
                a.as_ptr(),
                to.raw(),
                b.as_ptr(),
                flags,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Makes the directory's entries durable; only best effort.
    pub fn sync(&self) {
        // SAFETY: fsync on a valid descriptor.
        unsafe { libc::fsync(self.raw()) };
    }

    /// The names in this directory (not `.`/`..`) with what each is, never
    /// following a link. Read through `/proc/self/fd`, which names this very
    /// directory whatever happened to its path since it was opened; where
    /// there is no `/proc` (a bare chroot), through `path`, the directory's
    /// path as last known.
    pub fn entries(&self, path: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        let through_fd = std::fs::read_dir(format!("/proc/self/fd/{}", self.raw()));
        let listing = match through_fd {
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::read_dir(path)?,
            other => other?,
        };
        let mut out = Vec::new();
        for entry in listing {
            let entry = entry?;
            let kind = match entry.file_type()? {
                t if t.is_file() => Kind::File,
                t if t.is_dir() => Kind::Dir,
                _ => Kind::Other,
            };
            out.push((entry.file_name(), kind));
        }
        Ok(out)
    }
}

/// Opens (creating when missing) the file at `path` for writing, without
/// truncating it and never through a symlink at its last component: a link
/// planted where a lock or flag file belongs is refused (`ELOOP`), not
/// followed to whatever it points at. Directories above it are the admin's.
pub fn open_own_file(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .and_then(|f| match f.metadata()?.is_file() {
            true => Ok(f),
            false => Err(io::Error::other("not a regular file")),
        })
}

/// `path`'s directory and last component, for [`Dir`] calls.
pub fn split_path(path: &Path) -> io::Result<(Dir, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((Dir::open(parent)?, name))
}

/// Whether walking failed because a component is a link or not a directory:
/// something was put where the store's own directories belong.
pub fn is_link_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name holds a NUL byte"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn raw_open(dir: RawFd, name: &CString, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; the returned descriptor is checked
    // before it is owned.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_below_the_start_are_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.gz"), b"outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.gz"), d.path().join("f.gz")).unwrap();
        let root = Dir::open(d.path()).unwrap();
        let e = root.walk(&["link"], None).unwrap_err();
        assert!(is_link_error(&e), "{e}");
        let e = root.walk(&["link", "new"], Some(0o700)).unwrap_err();
        assert!(is_link_error(&e), "{e}");
        assert!(!outside.path().join("new").exists());
        assert!(root.open_file("f.gz", libc::O_RDONLY, 0).is_err());
        let kind = root.stat("f.gz").unwrap().unwrap().file_type();
        assert!(kind.is_symlink());
        root.unlink("f.gz").unwrap();
        assert!(
            outside.path().join("x.gz").exists(),
            "the link went, not its target"
        );
        let made = root.walk(&["a", "b"], Some(0o755)).unwrap();
        assert!(made.metadata().unwrap().is_dir());
        let mut names = root.entries(d.path()).unwrap();
        names.sort();
        assert_eq!(
            names,
            vec![("a".into(), Kind::Dir), ("link".into(), Kind::Other)]
        );
    }

    // docs/SAFETY.md S2
    #[test]
    fn rename_noreplace_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"a").unwrap();
        std::fs::write(d.path().join("b"), b"b").unwrap();
        let root = Dir::open(d.path()).unwrap();
        let e = root.rename_noreplace("a", &root, "b").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(d.path().join("b")).unwrap(), b"b");
        let e = root.link("a", &root, "b").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }
}
