//! Opening and deleting source files so that what is deleted is exactly what
//! was archived.
//!
//! Paths are re-resolved by the kernel at every call, and a log directory is
//! writable by rsyslog, logrotate and admins: between the scan, the read and
//! the delete, a file can be replaced (`mv`, `touch -r`), rewritten in place,
//! or swapped for a symlink to anything the service can read. So:
//!
//! - a file is opened once, walking down from `--dir` one component at a time
//!   with `O_NOFOLLOW`, so no symlink is ever followed below `--dir`;
//! - the opened descriptor must be the regular file the scan saw (same device
//!   and inode), and everything (hash, upload) reads from that descriptor;
//! - before unlinking, the name (looked up without following links, relative
//!   to the same parent directory descriptor) must still carry the identity
//!   the descriptor had before it was read: device, inode, size, mtime and
//!   ctime. ctime cannot be set from user space, so an in-place rewrite whose
//!   mtime was put back is still seen.
//!
//! What remains is the instant between that last check and `unlinkat`, which
//! POSIX offers no way to close; the window is a few microseconds and needs a
//! writer that replaces the file at that very moment.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

mod writers;
pub use writers::{Writers, writers};

/// What identifies one version of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileId {
    /// The identity in `meta` (from `stat`, `lstat` or `fstat`).
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// `None` when `now` is the same version of the same file, else why not.
    pub fn change_to(&self, now: &FileId) -> Option<String> {
        if (self.dev, self.ino) != (now.dev, now.ino) {
            Some("it was replaced by another file (different inode)".to_string())
        } else if self.size != now.size {
            Some(format!(
                "its size changed ({} bytes, then {})",
                self.size, now.size
            ))
        } else if self.mtime != now.mtime {
            Some("its modification time changed".to_string())
        } else if self.ctime != now.ctime {
            Some(
                "its ctime changed (modified in place, or a hard link to it added or removed)"
                    .to_string(),
            )
        } else {
            None
        }
    }

    /// Whether `other` may be this very file seen through another mount:
    /// the same device and inode, or (an overlay or bind mount shows the
    /// same inode under another device number) the same inode, size, mtime
    /// and ctime to the nanosecond, which two distinct files practically
    /// never share. A false match only keeps a file.
    pub fn same_file(&self, other: &FileId) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
            || (self.ino, self.size, self.mtime, self.ctime)
                == (other.ino, other.size, other.mtime, other.ctime)
    }

    /// Only the ctime differs: a write that put the mtime back, a chmod, or
    /// a hard link added or removed. Only the bytes can tell which.
    fn only_ctime_differs(&self, now: &FileId) -> bool {
        (self.dev, self.ino, self.size, self.mtime) == (now.dev, now.ino, now.size, now.mtime)
            && self.ctime != now.ctime
    }
}

/// The configured source directory, opened once per run. Every file is
/// reached from this descriptor, so renaming `--dir` itself mid-run changes
/// nothing.
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `dir` (which may itself be a symlink: that is configuration).
    pub fn open(dir: &Path) -> io::Result<Root> {
        let fd = open_at(
            libc::AT_FDCWD,
            dir.as_os_str().as_bytes(),
            libc::O_DIRECTORY | libc::O_RDONLY,
        )?;
        Ok(Root { fd })
    }

    /// Opens `relative` (`a/b/c.gz`, as the scan built it) read-only without
    /// following any symlink, and checks it is a regular file.
    pub fn open_file(&self, relative: &str) -> Result<Opened, OpenError> {
        let parts: Vec<&str> = relative.split('/').collect();
        let Some((name, dirs)) = parts.split_last() else {
            return Err(OpenError::NotRegular("empty path".into()));
        };
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(OpenError::NotRegular(format!(
                "'{relative}' is not a plain relative path"
            )));
        }
        let dir = self.walk(dirs)?;
        // O_NONBLOCK: a FIFO swapped in after the scan must not block the open.
        let fd = open_at(
            dir.as_raw_fd(),
            name.as_bytes(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
        )
        .map_err(|e| OpenError::from_walk(e, name))?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(OpenError::Io)?;
        if !meta.file_type().is_file() {
            return Err(OpenError::NotRegular(
                "it is no longer a regular file".to_string(),
            ));
        }
        clear_nonblock(&file);
        let name = CString::new(name.as_bytes())
            .map_err(|_| OpenError::NotRegular("the name holds a NUL byte".into()))?;
        Ok(Opened {
            id: FileId::of(&meta),
            file,
            dir,
            name,
            relative: relative.to_string(),
        })
    }

    /// Opens the directory `dirs` (components below the root) without
    /// following any symlink.
    fn walk(&self, dirs: &[&str]) -> Result<OwnedFd, OpenError> {
        let mut dir: Option<OwnedFd> = None;
        for part in dirs {
            let base = dir.as_ref().map_or(self.fd.as_raw_fd(), AsRawFd::as_raw_fd);
            let next = open_at(
                base,
                part.as_bytes(),
                libc::O_DIRECTORY | libc::O_RDONLY | libc::O_NOFOLLOW,
            )
            .map_err(|e| OpenError::from_walk(e, part))?;
            dir = Some(next);
        }
        match dir {
            Some(d) => Ok(d),
            None => self.fd.try_clone().map_err(OpenError::Io),
        }
    }
}

/// A source file opened for archiving, with what is needed to delete exactly
/// this file later.
pub struct Opened {
    pub file: File,
    /// Identity before any byte was read.
    pub id: FileId,
    dir: OwnedFd,
    name: CString,
    /// The path below the root it was opened by, to check before a delete
    /// that its directory is still there (not moved out of `--dir`).
    relative: String,
}

/// How a file is no longer the version that was read, with the I/O error
/// where one stopped the check.
#[derive(Debug)]
pub enum Changed {
    Stat(io::Error),
    /// No file at its name any more.
    Gone,
    /// Another inode, size or time: what [`FileId::change_to`] saw.
    Version(String),
    Reread(io::Error),
    Bytes,
}

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Changed::Stat(e) => write!(f, "it cannot be stat'ed ({e})"),
            Changed::Gone => f.write_str("it was removed or renamed"),
            Changed::Version(why) => f.write_str(why),
            Changed::Reread(e) => write!(f, "it cannot be read again ({e})"),
            Changed::Bytes => f.write_str("its bytes changed after they were read"),
        }
    }
}

/// Tells the kernel `file` is about to be read front to back, so it reads
/// ahead further. Only a hint: failure changes nothing.
pub fn advise_sequential(file: &File) {
    // SAFETY: fadvise on a valid open descriptor; it does not touch memory.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opened({:?}, {:?})", self.name, self.id)
    }
}

impl Opened {
    /// The descriptor's identity now: differs from [`Opened::id`] when the
    /// file was written to since it was opened.
    pub fn current(&self) -> io::Result<FileId> {
        self.file.metadata().map(|m| FileId::of(&m))
    }

    /// What the name in the parent directory refers to now (never following a
    /// symlink); `Ok(None)` when it is gone.
    pub fn at_name(&self) -> io::Result<Option<FileId>> {
        match open_at(
            self.dir.as_raw_fd(),
            self.name.as_bytes(),
            libc::O_PATH | libc::O_NOFOLLOW,
        ) {
            Ok(fd) => File::from(fd).metadata().map(|m| Some(FileId::of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ok when both the descriptor and the name still are the version whose
    /// bytes hash to `sha256`. A change of ctime alone (a hard link added or
    /// removed, a chmod, a rewrite that put the mtime back) is settled by
    /// reading the bytes again; `reread` always reads them again, which also
    /// catches what leaves no timestamp (a write through a shared mapping).
    pub fn confirm(&self, sha256: &str, reread: bool) -> Result<(), Changed> {
        let now = self.current().map_err(Changed::Stat)?;
        let at = self
            .at_name()
            .map_err(Changed::Stat)?
            .ok_or(Changed::Gone)?;
        let mut must_reread = reread;
        for seen in [now, at] {
            if let Some(why) = self.id.change_to(&seen) {
                if !self.id.only_ctime_differs(&seen) {
                    return Err(Changed::Version(why));
                }
                must_reread = true;
            }
        }
        if must_reread {
            let (size, sha) = self.rehash().map_err(Changed::Reread)?;
            if size != self.id.size || sha != sha256 {
                return Err(Changed::Bytes);
            }
        }
        Ok(())
    }

    /// SHA-256 of the whole file, read again through the descriptor.
    fn rehash(&self) -> io::Result<(u64, String)> {
        let mut reader = PositionedReader {
            file: &self.file,
            offset: 0,
        };
        let d = crate::digest::digest_reader(&mut reader, false)?;
        Ok((d.bytes, d.sha256))
    }

    /// Deletes the file only if its directory is still the one below
    /// `--dir` it was opened in, and its name still carries the version whose
    /// bytes were archived (`sha256`, see [`Opened::confirm`]).
    pub fn unlink_if_unchanged(&self, root: &Root, sha256: &str) -> Result<(), Refusal> {
        let parts: Vec<&str> = self.relative.split('/').collect();
        let dirs = &parts[..parts.len().saturating_sub(1)];
        let same_dir = root
            .walk(dirs)
            .ok()
            .and_then(|fd| File::from(fd).metadata().ok())
            .zip(self.dir_meta())
            .is_some_and(|(a, b)| (a.dev(), a.ino()) == (b.dev(), b.ino()));
        if !same_dir {
            return Err(Refusal::Changed(
                "its directory was moved or replaced; nothing outside --dir is deleted".to_string(),
            ));
        }
        self.confirm(sha256, false).map_err(|why| {
            Refusal::Changed(format!(
                "{why} after it was archived, so its current content is not the archived one"
            ))
        })?;
        if let Writers::Busy(who) = writers(&self.file, &self.id) {
            return Err(Refusal::Changed(format!(
                "{who}: its next write would be lost with the file, so it is kept"
            )));
        }
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        let rc = unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.name.as_ptr(), 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Refusal::Failed(format!(
                "cannot delete: {}",
                io::Error::last_os_error()
            )))
        }
    }

    fn dir_meta(&self) -> Option<std::fs::Metadata> {
        let dup = self.dir.try_clone().ok()?;
        File::from(dup).metadata().ok()
    }
}

/// Reads a file from its start with `pread`, leaving its offset alone.
struct PositionedReader<'a> {
    file: &'a File,
    offset: u64,
}

impl io::Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Why a file was not deleted.
#[derive(Debug)]
pub enum Refusal {
    /// It is no longer the archived version: its status must say so.
    Changed(String),
    /// The delete itself failed (permissions...); the archived copy stands.
    Failed(String),
}

/// Why a source file could not be opened safely.
#[derive(Debug)]
pub enum OpenError {
    /// A symlink or non-regular file where the scan saw a regular file or a
    /// directory: refused, never followed.
    NotRegular(String),
    /// Missing, permission denied, I/O error.
    Io(io::Error),
}

impl OpenError {
    fn from_walk(e: io::Error, part: &str) -> OpenError {
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => OpenError::NotRegular(format!(
                "'{part}' is now a symbolic link or not a directory; links are never followed"
            )),
            Some(libc::ENXIO) => {
                OpenError::NotRegular(format!("'{part}' is now a socket or device"))
            }
            _ => OpenError::Io(e),
        }
    }
}

pub(crate) fn open_at(dir: libc::c_int, name: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: `name` is NUL-terminated and outlives the call; the returned
    // descriptor is checked before it is owned.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Regular files ignore O_NONBLOCK on Linux; cleared anyway so the descriptor
/// behaves like any other `File`.
fn clear_nonblock(file: &File) {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::writers::{Scan, lease_refused, proc_writers};
    use super::*;
    use std::io::{Read, Write};

    // docs/SAFETY.md S9
    #[test]
    fn opens_below_the_root_and_refuses_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("logs");
        std::fs::create_dir_all(root.join("fw1")).unwrap();
        std::fs::write(root.join("fw1/a.gz"), b"hello").unwrap();
        std::fs::write(tmp.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("fw1/link.gz")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();

        let r = Root::open(&root).unwrap();
        let mut opened = r.open_file("fw1/a.gz").unwrap();
        let mut s = String::new();
        opened.file.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert!(matches!(
            r.open_file("fw1/link.gz"),
            Err(OpenError::NotRegular(_))
        ));
        assert!(matches!(
            r.open_file("up/secret"),
            Err(OpenError::NotRegular(_))
        ));
        assert!(matches!(
            r.open_file("../secret"),
            Err(OpenError::NotRegular(_))
        ));
        assert!(matches!(r.open_file("fw1/none.gz"), Err(OpenError::Io(_))));
    }

    fn sha(data: &[u8]) -> String {
        crate::digest::digest_bytes(data, false).unwrap().sha256
    }

    // docs/SAFETY.md S4
    #[test]
    fn unlink_only_the_same_version() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("a.gz"), b"one").unwrap();
        let r = Root::open(root).unwrap();
        let opened = r.open_file("a.gz").unwrap();
        // Replaced by another file of the same size and mtime.
        std::fs::write(root.join("new"), b"two").unwrap();
        let f = File::options().write(true).open(root.join("new")).unwrap();
        f.set_modified(opened.file.metadata().unwrap().modified().unwrap())
            .unwrap();
        drop(f);
        std::fs::rename(root.join("new"), root.join("a.gz")).unwrap();
        let err = opened.unlink_if_unchanged(&r, &sha(b"one")).unwrap_err();
        assert!(
            matches!(&err, Refusal::Changed(w) if w.contains("replaced")),
            "{err:?}"
        );
        assert_eq!(std::fs::read(root.join("a.gz")).unwrap(), b"two");

        // Rewritten in place with the mtime put back: the ctime changed, and
        // the bytes read again differ.
        let opened = r.open_file("a.gz").unwrap();
        let mtime = opened.file.metadata().unwrap().modified().unwrap();
        // ctime has the kernel's coarse clock granularity (a few ms): let one
        // tick pass so the rewrite gets a later ctime, as any real one would.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut w = File::options().write(true).open(root.join("a.gz")).unwrap();
        w.write_all(b"TWO").unwrap();
        w.set_modified(mtime).unwrap();
        drop(w); // a writer still holding it would keep it anyway
        let err = opened.unlink_if_unchanged(&r, &sha(b"two")).unwrap_err();
        assert!(
            matches!(&err, Refusal::Changed(w) if w.contains("bytes changed")),
            "{err:?}"
        );

        // Only the ctime changed (a hard link came and went): same bytes, deleted.
        let opened = r.open_file("a.gz").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::hard_link(root.join("a.gz"), root.join("b.gz")).unwrap();
        std::fs::remove_file(root.join("b.gz")).unwrap();
        assert!(opened.confirm(&sha(b"TWO"), false).is_ok());
        opened.unlink_if_unchanged(&r, &sha(b"TWO")).unwrap();
        assert!(!root.join("a.gz").exists());
    }

    /// A child process holding the file open for writing is seen both by
    /// the lease and by the `/proc` scan; once it is gone, neither sees one.
    // docs/SAFETY.md S5
    #[test]
    fn a_writer_in_another_process_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.gz");
        std::fs::write(&path, b"x").unwrap();
        let ready = tmp.path().join("ready");
        let mut writer = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 3>>'{}'; : > '{}'; exec sleep 60",
                path.display(),
                ready.display()
            ))
            .spawn()
            .unwrap();
        while !ready.exists() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let file = File::open(&path).unwrap();
        let meta = file.metadata().unwrap();
        let id = FileId::of(&meta);
        assert!(lease_refused(&file).unwrap(), "the lease is refused");
        match proc_writers(id.dev, id.ino) {
            Scan::Found(who) => assert!(who.contains(&writer.id().to_string()), "{who}"),
            other => panic!("the /proc scan missed the writer: {other:?}"),
        }
        assert!(matches!(writers(&file, &id), Writers::Busy(_)));
        writer.kill().unwrap();
        writer.wait().unwrap();
        assert!(!lease_refused(&file).unwrap());
        // SAFETY: geteuid has no preconditions.
        match unsafe { libc::geteuid() } {
            0 => assert_eq!(proc_writers(id.dev, id.ino), Scan::Clear),
            _ => assert!(!matches!(proc_writers(id.dev, id.ino), Scan::Found(_))),
        }
        assert_eq!(writers(&file, &id), Writers::None);
    }

    // docs/SAFETY.md S4
    #[test]
    fn never_deletes_in_a_directory_moved_out_of_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("logs");
        std::fs::create_dir_all(root.join("fw")).unwrap();
        std::fs::write(root.join("fw/a.gz"), b"x").unwrap();
        let r = Root::open(&root).unwrap();
        let opened = r.open_file("fw/a.gz").unwrap();
        std::fs::rename(root.join("fw"), tmp.path().join("kept")).unwrap();
        let err = opened.unlink_if_unchanged(&r, &sha(b"x")).unwrap_err();
        assert!(
            matches!(&err, Refusal::Changed(w) if w.contains("moved")),
            "{err:?}"
        );
        assert!(tmp.path().join("kept/a.gz").exists());
    }
}
