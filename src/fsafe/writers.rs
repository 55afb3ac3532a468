//! Who else holds a file open for writing: a lease probe, else a scan of
//! /proc (which cannot see past a nested PID namespace, and says so).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::*;

/// Whether some process holds a file open for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writers {
    /// Nobody does.
    None,
    /// Someone does: who, as far as known.
    Busy(String),
    /// This process cannot tell (not the file's owner and no `CAP_LEASE`, a
    /// file system without leases, other users' processes hidden): why.
    Unknown(String),
}

/// Asks whether any process has `file` open for writing. rsyslog keeps a
/// dynafile open for minutes after its last line (`closeTimeout`, 10 min by
/// default) and, with `veryRobustZip`, writes whole gzip members, so an idle,
/// complete-looking `.gz` may still get its next line: deleting it would
/// send that line to an unlinked inode.
///
/// First a read lease (`F_SETLEASE F_RDLCK`), which the kernel refuses while
/// any descriptor has the file open for writing, taken and released at once
/// (the owner of the file or root may); else a scan of `/proc/*/fd`, which
/// sees the processes this user may inspect.
pub fn writers(file: &File, id: &FileId) -> Writers {
    match lease_refused(file) {
        Ok(true) => Writers::Busy("a process holds it open for writing".into()),
        Ok(false) => Writers::None,
        Err(lease) => match proc_writers(id.dev, id.ino) {
            Scan::Found(who) => Writers::Busy(who),
            Scan::Clear => Writers::None,
            Scan::Partial(why) => Writers::Unknown(format!("no lease ({lease}) and {why}")),
        },
    }
}

/// `Ok(true)` when the kernel refuses a read lease because the file is open
/// for writing; `Err` when leases cannot be used here.
pub(super) fn lease_refused(file: &File) -> io::Result<bool> {
    static IGNORE_SIGIO: std::sync::Once = std::sync::Once::new();
    // A lease broken while held is announced with SIGIO, whose default is to
    // end the process; the lease is released at once anyway.
    // SAFETY: setting a signal to ignored has no preconditions.
    IGNORE_SIGIO.call_once(|| unsafe {
        libc::signal(libc::SIGIO, libc::SIG_IGN);
    });
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    if unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) } == 0 {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return Ok(false);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Ok(true),
        _ => Err(e),
    }
}

/// What a `/proc` scan found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Scan {
    /// A process with the file open for writing: which.
    Found(String),
    /// Every process was looked at; none has it open for writing.
    Clear,
    /// None found among those visible, but not every process was: why.
    Partial(String),
}

/// Looks through every process's descriptors for one that names the file
/// `(dev, ino)` and was opened for writing (its `fdinfo` flags).
pub(super) fn proc_writers(dev: u64, ino: u64) -> Scan {
    // In a PID namespace of its own (a container), /proc shows only the
    // namespace's processes: a writer outside it (rsyslog on the host)
    // is invisible, and "none found" would be a false all-clear.
    if nested_pid_namespace() {
        return Scan::Partial(
            "this process runs in a PID namespace of its own (a container): writers outside it cannot be seen"
                .into(),
        );
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Scan::Partial("/proc cannot be read".into());
    };
    let me = std::process::id().to_string();
    let mut hidden = 0;
    for p in procs.flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            // Gone since the listing, or another user's: only the latter hides.
            hidden += usize::from(p.path().exists());
            continue;
        };
        for fd in fds.flatten() {
            let same = std::fs::metadata(fd.path())
                .is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino) && m.is_file());
            if same && opened_for_writing(&p.path(), &fd.file_name().to_string_lossy()) {
                let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                return Scan::Found(format!(
                    "process {pid} ({}) holds it open for writing",
                    comm.trim()
                ));
            }
        }
    }
    match hidden {
        0 => Scan::Clear,
        n => Scan::Partial(format!(
            "{n} process(es) whose descriptors this user cannot see"
        )),
    }
}

/// Whether this process is in a PID namespace other than the first one:
/// the first has the fixed inode number `PROC_PID_INIT_INO` (0xEFFFFFFC,
/// since Linux 3.8). (`NSpid` would not do: a container's own `/proc`
/// shows one level.) Unknown: assume another (the scan cannot be trusted).
pub(super) fn nested_pid_namespace() -> bool {
    const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;
    !std::fs::metadata("/proc/self/ns/pid").is_ok_and(|m| m.ino() == PROC_PID_INIT_INO)
}

/// Whether descriptor `fd` of the process at `proc_dir` was opened for
/// writing (`flags:` in its fdinfo, octal, access mode not read-only).
pub(super) fn opened_for_writing(proc_dir: &Path, fd: &str) -> bool {
    let info = std::fs::read_to_string(proc_dir.join("fdinfo").join(fd)).unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| i64::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & i64::from(libc::O_ACCMODE) != i64::from(libc::O_RDONLY))
}
