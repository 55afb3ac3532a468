//! The fault suite, second part: the edges a hostile review of the safety
//! guarantees found (each failed on the code it was written against). The
//! assertions state the promised behaviour, not one particular fix. Some
//! time their attack with `strace` (a delayed system call stands in for a
//! slow disk or a hung mount) or a bind mount in a user namespace
//! (`unshare -rm`); scripts/test.sh installs strace.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;

use common::held::*;
use common::listeners::eventually;
use common::proxy::{FaultProxy, Options};
use common::*;

fn args_local(ws: &Workspace, archive: &Path, db: &Path, extra: &[&str]) -> Vec<String> {
    if archive == ws.archive() {
        std::fs::create_dir_all(archive).unwrap();
    }
    let mut a: Vec<String> = vec![
        "upload".into(),
        "--dir".into(),
        ws.logs().display().to_string(),
        "--dest".into(),
        format!("file://{}", archive.display()),
        "--db".into(),
        db.display().to_string(),
        "--min-age".into(),
        "0".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Every file and directory below `root`, with the content of files.
fn tree(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push((p.clone(), None));
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).ok()));
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// The database (and its run lock) inside --dir.

/// `--db` inside `--dir` with `--include '*'` (or any pattern matching the
/// database's name): the run archives the live inventory and its lock file
/// and, with `--delete`, unlinks both while it holds them. The rows of the
/// run go to an unlinked inode and are lost when it closes; the next run
/// starts an empty inventory; and with the lock file gone a second run can
/// start beside the first (promise 15). Either refuse this configuration
/// or never treat the database's files as candidates.
// docs/SAFETY.md S1
#[test]
fn database_inside_dir_is_never_archived_or_deleted() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 50, 1);
    let db = ws.logs().join("backup_records.db");
    let archive = ws.archive();
    let out = ws.run(&args_local(&ws, &archive, &db, &[]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let _ = ws.run(
        &args_local(&ws, &archive, &db, &["--include", "*", "--delete"]),
        &[],
    );
    let lock = ws.logs().join("backup_records.db.lock");
    assert!(
        lock.exists(),
        "the run lock of a live run was deleted: a second run can now start beside it"
    );
    assert!(db.exists(), "the live inventory was deleted by its own run");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let runs: i64 = conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert!(runs >= 1, "the inventory lost its history");
}

// ---------------------------------------------------------------------------
// Directory store: metadata names derived by appending `.sha256`.

/// A legal file name of 249..=255 bytes cannot get its metadata file
/// (`NAME.sha256` exceeds NAME_MAX): the object is published, then the run
/// says `failed_upload`, and every later run fails on the same metadata
/// path (`read` gets ENAMETOOLONG, not ENOENT). The file can never be
/// archived, and an orphan object stays behind.
// docs/SAFETY.md S8
#[test]
fn longest_legal_file_name_is_archived_in_a_directory_store() {
    let ws = Workspace::new();
    let name = format!("{}.log.gz", "x".repeat(245)); // 252 bytes
    let f = ws.write_gz(&name, 50, 2);
    let out = ws.upload_local(&["--delete"], &[]);
    let rows = ws.rows();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a legal file name must be archivable: {rows:#?}"
    );
    assert_eq!(rows[0].status(), "uploaded");
    assert!(!f.exists());
}

/// Metadata of key `K` is `meta/K.sha256`, and metadata of keys below a
/// directory named `K.sha256` lives in the directory `meta/K.sha256/`: the
/// two collide. With the default `--include '*.gz'` a file `fw.gz` and a
/// directory `fw.gz.sha256/` holding `x.gz` are enough; the second key's
/// object is published, its metadata cannot be written, and it fails on
/// every later run (or, in the other order, `fw.gz` does).
// docs/SAFETY.md S8
#[test]
fn metadata_of_two_keys_never_collide() {
    let ws = Workspace::new();
    ws.write_gz("fw.gz", 50, 3);
    ws.write_gz("fw.gz.sha256/x.gz", 50, 4);
    let out = ws.upload_local(&["--delete", "--workers", "1"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:#?}", ws.rows());
    let out = ws.upload_local(&["--delete", "--workers", "1"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:#?}", ws.rows());
    assert!(!ws.logs().join("fw.gz.sha256/x.gz").exists());
}

// ---------------------------------------------------------------------------
// --dry-run writes to the archive.

/// `--dry-run` is documented as "no rows, no uploads, no deletes" and
/// "without writing anything anywhere", but on a directory store it runs
/// the store's start-up work: it creates the destination directory, moves
/// an old-layout archive's sidecars into `.fgbackup/legacy/` (the migration
/// is one-way), removes dead temporary files, and writes metadata files for
/// objects that lack them. A dry run against an archive still used by an
/// older fgbackup changes that archive under it.
// docs/SAFETY.md S1
#[test]
fn dry_run_leaves_the_destination_untouched() {
    use sha2::Digest;
    let ws = Workspace::new();
    let f = ws.write_gz("FGT/a.log.gz", 50, 5);
    let bytes = std::fs::read(&f).unwrap();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let old = ws.archive().join("FGT");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("a.log.gz"), &bytes).unwrap();
    std::fs::write(old.join("a.log.gz.sha256"), format!("{sha}  a.log.gz\n")).unwrap();
    std::fs::write(old.join(".b.log.gz.fgbackup-2147483646.tmp"), b"half").unwrap();
    let before = tree(&ws.archive());

    let out = ws.upload_local(&["--dry-run", "--delete"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&ws.archive()), before, "a dry run changed the archive");

    // A destination that does not exist is never created (an unmounted
    // disk must not become an empty archive on the root file system).
    let fresh = ws.tmp.path().join("not-yet/archive");
    for extra in [&["--dry-run"][..], &[]] {
        let out = ws.run(&args_local(&ws, &fresh, &ws.db(), extra), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
        assert!(!fresh.exists(), "the destination was created");
    }
}

// ---------------------------------------------------------------------------
// "Still the version that was read" is not "still the bytes that were read".

/// A write through a shared writable mapping (`mmap(MAP_SHARED)`) to a page
/// that is already dirty changes neither mtime nor ctime: the kernel updates
/// them on the first write fault of a clean page only. On tmpfs (a common
/// RAM log directory on appliances) pages are never written back, so they
/// stay dirty for good; on disk file systems the same holds until writeback.
/// The file is deleted although its bytes are not the archived ones.
///
/// A plain `write(2)` that overwrites in place and is in flight across the
/// open/fstat and the read gives the same result (timestamps are updated
/// before the data is copied), but is harder to time in a test.
// docs/SAFETY.md S4
#[test]
fn file_changed_through_a_memory_mapping_is_not_deleted() {
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs a tmpfs at /dev/shm");
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    let logs = tempfile::tempdir_in(shm).unwrap();
    let f = logs.path().join("a.log.gz");
    {
        let data = std::fs::read(ws.write_gz("src.log.gz", 2000, 6)).unwrap();
        std::fs::write(&f, data).unwrap();
    }
    let len = std::fs::metadata(&f).unwrap().len() as usize;
    // A writable mapping of `f`, written through at `at`, then unmapped and
    // closed: no descriptor or mapping is left open for writing (a file a
    // writer still holds is not archived at all, tests/review2.rs).
    let write_through_mapping = |at: usize, xor: u8| {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&f)
            .unwrap();
        // SAFETY: a fresh shared mapping of a file we own, unmapped below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        // SAFETY: inside the mapping, which is then unmapped.
        unsafe {
            *map.cast::<u8>().add(at) ^= xor;
            libc::munmap(map, len);
        }
    };
    // The writer has written before: the page is dirty.
    write_through_mapping(20, 0);

    let mut args = ws.s3_upload_args(&proxy.endpoint(), &["--delete"]);
    let i = args.iter().position(|a| a == "--dir").unwrap();
    args[i + 1] = logs.path().display().to_string();
    let mut child = spawn(&ws, &args, &[]);
    wait_held(&proxy, &mut child);
    // Read, hashed and on its way: now the writer changes a byte.
    write_through_mapping(30, 0xff);
    let now = std::fs::read(&f).unwrap();
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    let archived = std::fs::read(server.object_path(BUCKET, "a.log.gz")).unwrap();
    assert_ne!(archived, now, "the change happened after the read");
    assert!(
        f.exists(),
        "deleted although its bytes are not the archived ones: {}\n{:#?}",
        stderr(&out),
        ws.rows()
    );
}

// ---------------------------------------------------------------------------
// The delete follows the directory wherever it went.

/// The file is deleted through the parent directory's descriptor, so if an
/// admin moves that directory out of `--dir` while its file is archived
/// (say to keep it: `mv /var/log/fortinet/FGT-A /root/keep/`), fgbackup
/// deletes the file in its new place, outside `--dir`. README: "nothing
/// outside --dir is read or deleted".
// docs/SAFETY.md S4
#[test]
fn directory_moved_out_of_dir_is_not_deleted_from() {
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/FGT-A/a.log.gz", 0);
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 100, 7);
    let child = start_held(&ws, &proxy, &["--delete"]);
    let kept = ws.tmp.path().join("keep");
    std::fs::create_dir(&kept).unwrap();
    std::fs::rename(ws.logs().join("FGT-A"), kept.join("FGT-A")).unwrap();
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert!(
        kept.join("FGT-A/a.log.gz").exists(),
        "a file outside --dir was deleted: {}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------
// A retried PUT that had in fact succeeded is reported as a conflict.

/// The PUT succeeds on the server but its answer is lost; fgbackup retries
/// (as it should), the retry is refused with 412 because our own object is
/// now there, and the file is recorded `failed_conflict` ("another object
/// with different content holds the key"), exit 1, failure notifications,
/// although the key holds exactly our bytes. A 412 (or `EEXIST`) should be
/// followed by a probe: our sha256 and size there is `uploaded` (or
/// `skipped_exists`, proven before a delete), not a conflict.
// docs/SAFETY.md S2
#[test]
fn retried_put_whose_first_attempt_landed_is_not_a_conflict() {
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            lose_answer: Some(("PUT", "/fg-logs/a.log.gz")),
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 100, 8);
    let ours = std::fs::read(&f).unwrap();
    let out = ws.upload_to(&proxy.endpoint(), &["--delete", "--retries", "2"]);
    assert!(proxy.injected.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        std::fs::read(server.object_path(BUCKET, "a.log.gz")).unwrap(),
        ours,
        "the first attempt stored our bytes"
    );
    let rows = ws.rows();
    assert!(
        matches!(rows[0].status(), "uploaded" | "skipped_exists"),
        "our own bytes are at the key: {rows:#?}"
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------
// The overlap check does not see bind mounts.

/// `--dest` inside `--dir` through a bind mount (`mount --bind
/// /var/log/fortinet /srv/logs`, `--dest file:///srv/logs/archive`) is not
/// refused: the paths differ after resolving symlinks and `..`, but they
/// are the same directory. The archive then archives itself: with
/// `--include '*' --delete` the second run uploads and deletes the store's
/// own `lock`, `layout-v2` marker and metadata files, and each run moves
/// the objects one level deeper (`archive/archive/...`). Compare (st_dev,
/// st_ino) of `--dir` with every ancestor of `--dest` (and the reverse):
/// bind mounts share them.
// docs/SAFETY.md S1
#[test]
fn destination_inside_dir_through_a_bind_mount_is_refused() {
    let probe = Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        probe,
        "this test needs `unshare -rm` (user and mount namespaces)"
    );
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 50, 9);
    let alias = ws.tmp.path().join("alias");
    std::fs::create_dir(&alias).unwrap();
    let args = args_local(
        &ws,
        &alias.join("archive"),
        &ws.db(),
        &["--delete", "--include", "*"],
    );
    let out: Output = Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
            "sh",
        ])
        .arg(ws.logs())
        .arg(&alias)
        .arg(env!("CARGO_BIN_EXE_fgbackup"))
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ws.home())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "not refused: {}\n{:#?}",
        stderr(&out),
        tree(&ws.logs())
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// Directory store: verification does not see an in-place overwrite.

/// The directory store's "version" of an object is `dev:ino` only, and its
/// verification reads the metadata file (which we write) rather than the
/// bytes. Another writer that overwrites the published object in place
/// (`cp other.gz archive/KEY`, `rsync --inplace`, `dd conv=notrunc`) keeps
/// the inode, so the overwrite between publish and verification, which
/// README says is caught ("Verification checks the stored object is the
/// one our PUT created (ETag / inode)"), is not: the file is deleted while
/// the archive holds other bytes. Re-hash the published object in
/// `verify` (local I/O, usually page-cached), or make the version
/// size+mtime+ctime as well (taken after link(2), which changes ctime).
///
/// Timing: `strace` delays the return of our `linkat` (the publish) by a
/// few seconds; the overwrite happens inside that window.
// docs/SAFETY.md S2
#[test]
fn in_place_overwrite_between_publish_and_verification_is_caught() {
    assert!(
        Command::new("strace").arg("-V").output().is_ok(),
        "this test needs strace (scripts/test.sh installs it)"
    );
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 300, 10);
    let ours = std::fs::read(&f).unwrap();
    let mut other = ours.clone();
    let mid = other.len() / 2;
    other[mid] ^= 0xff;
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=linkat"])
        .args(["-e", "inject=linkat:delay_exit=4000000"])
        .arg(env!("CARGO_BIN_EXE_fgbackup"))
        .args(ws.local_upload_args(&["--delete"]))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ws.home())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let object = ws.archive().join("a.log.gz");
    eventually("the object to be published", || {
        assert!(child.try_wait().unwrap().is_none(), "finished too early");
        object.exists()
    });
    // In place: same inode, same size, other bytes.
    std::fs::write(&object, &other).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(std::fs::read(&object).unwrap(), other);
    assert!(
        f.exists(),
        "deleted while the archive holds other bytes: {}\n{:#?}",
        stderr(&out),
        ws.rows()
    );
}

// ---------------------------------------------------------------------------
// One run per database: a hard link is another spelling.

/// The run lock is `<resolved path>.lock`, so a second name of the same
/// database file (a hard link) gets its own lock and a second run starts
/// beside the first. SQLite itself corrupts a database opened under two
/// names in WAL mode (each name gets its own `-wal`/`-shm`), so refuse a
/// database whose link count is not 1, or lock on (st_dev, st_ino).
// docs/SAFETY.md S13
#[test]
fn hard_linked_database_is_refused() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 50, 11);
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let alias = ws.tmp.path().join("alias.db");
    std::fs::hard_link(ws.db(), &alias).unwrap();
    // A run in progress on the database holds its lock.
    let mut lock_name = ws.db().into_os_string();
    lock_name.push(".lock");
    let held = std::fs::File::open(PathBuf::from(lock_name)).unwrap();
    held.lock().unwrap();
    let out = ws.run(&args_local(&ws, &ws.archive(), &alias, &[]), &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a second run started on the same database: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hard links"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------
// Hard-linked log files.

/// Two names of one log file (`ln a.gz b.gz`, as some rotation schemes
/// leave): deleting one changes the inode's ctime (its link count), so the
/// other, if it is in flight at that moment, is recorded `failed_changed`
/// "it was modified in place (its ctime changed) while it was archived; the
/// stored copy is of the earlier content": a failure, exit 1 and an alert,
/// and a false statement, for a file nobody touched. Low severity; a ctime
/// change could be settled by re-reading the bytes (which R4 needs anyway),
/// or hard-linked candidates grouped by (dev, ino).
// docs/SAFETY.md S4
#[test]
fn hard_linked_log_files_are_not_reported_as_changed() {
    let server = S3Server::start();
    // a.log.gz waits at its verification HEAD (the second HEAD of its key)
    // while b.log.gz, the other name of the same file, is archived and
    // deleted.
    let proxy = holding(&server, "HEAD", "/fg-logs/a.log.gz", 1);
    let ws = Workspace::new();
    let a = ws.write_gz("a.log.gz", 300, 12);
    let b = ws.logs().join("b.log.gz");
    std::fs::hard_link(&a, &b).unwrap();
    let child = start_held(&ws, &proxy, &["--delete", "--workers", "2"]);
    eventually("b.log.gz to be archived and deleted", || !b.exists());
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{:#?}",
        stderr(&out),
        ws.rows()
    );
}

// ---------------------------------------------------------------------------
// File names with control characters forge log and plan lines.

/// A newline in a file name is written raw to the log (stderr) and to the
/// `--dry-run` plan (stdout, "one line per file"), so a name can forge
/// lines: here a fake `deleted ... (verified copy ...)` log line and a fake
/// plan entry. rsyslog escapes control characters by default, but anything
/// else that can create files in the log directory can inject lines that
/// monitoring or an admin will trust. Escape control characters (e.g.
/// `escape_debug`) wherever a path or key is printed.
// docs/SAFETY.md S15
#[test]
fn control_characters_in_names_cannot_forge_lines() {
    let ws = Workspace::new();
    ws.write_gz(
        "x\n[2026-11-23T10:00:00Z INFO ] deleted forged.gz (verified copy at s3:forged.gz)\nwould_upload    forged.gz",
        50,
        13,
    );
    let out = ws.upload_local(&["--dry-run"], &[]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(
        !o.lines()
            .any(|l| l.starts_with("would_upload    forged.gz")),
        "forged plan line:\n{o}"
    );
    let out = ws.upload_local(&[], &[]);
    let e2 = stderr(&out);
    assert!(
        !format!("{e}{e2}")
            .lines()
            .any(|l| l.starts_with("[2026-11-23T10:00:00Z INFO ] deleted")),
        "forged log line:\n{e}{e2}"
    );
}

// ---------------------------------------------------------------------------
// An old archive that already holds keys under `.fgbackup/`.

/// Before `.fgbackup/` was reserved, a source directory of that name was
/// archived like any other (keys `.fgbackup/...`). The first run of this
/// version adopts the existing `ROOT/.fgbackup/` as its own without a
/// look: `clean_tmp` deletes every unlocked file older than a minute in
/// `.fgbackup/tmp/` whatever its name (here two archived objects, possibly
/// the only copies), and the migration walk skips `.fgbackup/` entirely.
/// Fix: when the layout marker is absent and `.fgbackup/` exists, move it
/// to `legacy/` (or refuse) before using it; and let `clean_tmp` remove
/// only names of the form `<pid>-<n>.tmp`.
// docs/SAFETY.md S8
#[test]
fn archived_objects_under_dot_fgbackup_are_never_deleted() {
    let ws = Workspace::new();
    let old = ws.archive().join(".fgbackup/tmp");
    std::fs::create_dir_all(&old).unwrap();
    let obj = old.join("fw-2025-01-01.log.gz");
    std::fs::write(&obj, b"an archived log, the only copy left").unwrap();
    set_old_mtime(&obj);
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "refused: {}", stderr(&out));
    assert!(
        stderr(&out).contains("not created by fgbackup"),
        "{}",
        stderr(&out)
    );
    let survivors: Vec<_> = tree(&ws.archive())
        .into_iter()
        .filter(|(_, c)| c.as_deref() == Some(b"an archived log, the only copy left".as_slice()))
        .collect();
    assert_eq!(
        survivors.len(),
        1,
        "an archived object was deleted: {}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------
// A stop signal does not end a run whose --dir does not answer.

/// The scan (and `Root::open`) run on the main thread, outside any bounded
/// wait, and never look at the stop flag. On a `--dir` whose file system
/// hangs (a hard NFS mount whose server went away), SIGTERM does nothing
/// until the kernel answers: systemd's stop ends in SIGKILL. README: "A
/// stop signal ends an upload within seconds whatever it waits on".
/// Simulated here by `strace` delaying every `getdents64` on `--dir` by
/// 30 s. Run the scan through `signal::run_bounded` (and check the stop
/// flag between directories).
// docs/SAFETY.md S16
#[test]
fn sigterm_ends_a_run_whose_source_directory_hangs() {
    use std::time::{Duration, Instant};
    assert!(
        Command::new("strace").arg("-V").output().is_ok(),
        "this test needs strace (scripts/test.sh installs it)"
    );
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 50, 14);
    let logs = ws.logs().display().to_string();
    let mut tracer = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-P", &logs])
        .args([
            "-e",
            "trace=getdents64",
            "-e",
            "inject=getdents64:delay_exit=30000000",
        ])
        .arg(env!("CARGO_BIN_EXE_fgbackup"))
        .args(ws.local_upload_args(&[]))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ws.home())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let children = format!("/proc/{0}/task/{0}/children", tracer.id());
    let mut pid = 0;
    eventually("fgbackup to start under strace", || {
        pid = std::fs::read_to_string(&children)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        pid != 0
    });
    // Let it reach the scan (the database is opened before it).
    eventually("the run to be recorded", || {
        ws.db().exists()
            && rusqlite::Connection::open(ws.db())
                .and_then(|c| c.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0)))
                .is_ok_and(|n| n >= 1)
    });
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on fgbackup's pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    let alive = |p: i32| {
        Path::new(&format!("/proc/{p}")).exists()
            && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    };
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still = alive(pid);
    let _ = tracer.kill();
    let _ = tracer.wait();
    // SAFETY: make sure the traced process goes too.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(!still, "fgbackup still running 15 s after SIGTERM");
}

// ---------------------------------------------------------------------------
// A read-back cut short by the network is reported as a damaged archive.

/// `prove` (the read-back before a delete relies on an existing object)
/// hashes whatever the GET delivered. When the connection ends before
/// Content-Length bytes arrived, the short read is reported as
/// `failed_remote_corrupt`: "the archived copy ... does not hold the bytes
/// its metadata claims ... it is damaged or was replaced", with a failure
/// alert naming it, although the archive is intact and nothing was retried.
/// The file is kept (safe), but the alarm is false and the next step of an
/// admin who believes it (deleting or replacing the "damaged" object) is
/// not. Count a body shorter than its Content-Length (or than the size the
/// HEAD reported) as a transient read error and retry it.
// docs/SAFETY.md S7
#[test]
fn read_back_cut_short_is_not_reported_as_a_damaged_archive() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let f = ws.write_gz("a.log.gz", 500, 15);
    let out = ws.upload(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            cut_answer: Some(("GET", "/fg-logs/a.log.gz", 500)),
            ..Options::default()
        },
    );
    let _ = ws.upload_to(&proxy.endpoint(), &["--delete", "--retries", "1"]);
    assert!(proxy.injected.load(Ordering::SeqCst) >= 1);
    assert!(f.exists(), "nothing proven, nothing deleted");
    let row = ws.rows()[1].clone();
    assert_ne!(
        row.status(),
        "failed_remote_corrupt",
        "an intact archive reported damaged: {row:#?}"
    );
}

// ---------------------------------------------------------------------------
// --min-age is checked at the scan only.

/// The age of a file is judged once, when the run scans `--dir`; the file
/// may be opened much later (the queue of a big run drains for minutes or
/// hours). A file written again between the scan and its turn, i.e. one a
/// writer is using right now (rsyslog with `zipLevel` appends gzip members
/// to the day's `.gz` of a device that was quiet for a while), is then
/// read, archived and deleted under the writer, and what the writer
/// appends to its still-open descriptor afterwards goes to an unlinked
/// inode: lost. Re-check the age from the `fstat` taken at open (and
/// leave the file for a later run, like the scan does).
// docs/SAFETY.md S4
#[test]
fn file_written_after_the_scan_is_left_for_a_later_run() {
    use std::io::Write as _;
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 100, 16);
    let b = ws.write_gz("b.log.gz", 100, 17); // an hour old at the scan
    let mut args = ws.s3_upload_args(&proxy.endpoint(), &["--delete", "--workers", "1"]);
    let i = args.iter().position(|a| a == "--min-age").unwrap();
    args[i + 1] = "30m".into();
    let mut child = spawn(&ws, &args, &[]);
    wait_held(&proxy, &mut child);
    // The writer wakes up: appends a complete gzip member, keeps the file open.
    let mut writer = std::fs::OpenOptions::new().append(true).open(&b).unwrap();
    let member = |text: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    };
    writer.write_all(&member(b"a new line\n")).unwrap();
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    writer.write_all(&member(b"the next line\n")).unwrap();
    assert!(
        b.exists(),
        "a file younger than --min-age when it was read was deleted under its writer, \
         whose next line is now lost: {}\n{:#?}",
        stderr(&out),
        ws.rows()
    );
}
