//! Proving the archive: `verify`, `restore`, `reindex`, manifests and
//! `prune`, each tried against the real binary and a real store (s3s-fs,
//! the directory store), by damaging the archive the way time, a careless
//! admin or an intruder would.

use crate::common;

use common::*;

/// Lines of stdout starting with `word` (verify prints one per problem).
fn lines_with(out: &std::process::Output, word: &str) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with(word))
        .map(String::from)
        .collect()
}

/// `(status, checked, read_back, ok, missing, altered, size_mismatch, extra)`
/// of the newest verification.
fn last_verification(ws: &Workspace) -> (String, i64, i64, i64, i64, i64, i64, i64) {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        "SELECT status, checked, read_back, ok, missing, altered, size_mismatch, extra
         FROM verifications ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        },
    )
    .unwrap()
}

fn flip_byte(path: &std::path::Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x55;
    std::fs::write(path, data).unwrap();
}

// docs/SAFETY.md S24
#[test]
fn verify_catches_a_deleted_a_flipped_a_truncated_and_an_extra_object_on_s3() {
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..5 {
        ws.write_gz(&format!("FGT-A/{i}.log.gz"), 200, i);
    }
    let out = ws.upload(&server, &[]);
    assert_exit(&out, 0);
    let ep = server.endpoint();

    let out = ws.on_bucket("verify", &ep, &[]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("5 objects checked (5 read back"),
        "{}",
        stdout(&out)
    );
    assert_eq!(last_verification(&ws), ("ok".into(), 5, 5, 5, 0, 0, 0, 0));

    let obj = |k: &str| server.object_path(BUCKET, k);
    std::fs::remove_file(obj("FGT-A/0.log.gz")).unwrap();
    flip_byte(&obj("FGT-A/1.log.gz"), 40);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(obj("FGT-A/2.log.gz"))
        .unwrap();
    f.set_len(100).unwrap();
    std::fs::write(obj("FGT-A/planted.log.gz"), b"not ours").unwrap();

    let out = ws.on_bucket("verify", &ep, &[]);
    assert_exit(&out, 1);
    assert_eq!(lines_with(&out, "missing").len(), 1, "{}", stdout(&out));
    assert!(lines_with(&out, "missing")[0].contains("FGT-A/0.log.gz"));
    assert!(
        lines_with(&out, "altered")[0].contains("FGT-A/1.log.gz"),
        "{}",
        stdout(&out)
    );
    assert!(lines_with(&out, "size_mismatch")[0].contains("FGT-A/2.log.gz: 100 bytes stored"));
    assert!(lines_with(&out, "extra")[0].contains("FGT-A/planted.log.gz"));
    assert_eq!(
        last_verification(&ws),
        ("failed".into(), 5, 3, 2, 1, 1, 1, 1)
    );
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let findings: i64 = conn
        .query_row("SELECT count(*) FROM verification_findings", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(findings, 4);
}

// docs/SAFETY.md S24
#[test]
fn verify_catches_damage_in_the_directory_store_and_samples_on_request() {
    let ws = Workspace::new();
    for i in 0..20 {
        ws.write_gz(&format!("FGT-B/{i:02}.log.gz"), 50, i);
    }
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);

    let out = ws.on_archive("verify", &["--sample", "10"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("20 objects checked (2 read back"),
        "{}",
        stdout(&out)
    );

    // Same length, one byte changed: only reading it back can tell.
    flip_byte(&ws.archive().join("FGT-B/07.log.gz"), 30);
    let out = ws.on_archive("verify", &["--all"]);
    assert_exit(&out, 1);
    assert!(lines_with(&out, "altered")[0].contains("FGT-B/07.log.gz"));
    assert_eq!(last_verification(&ws).0, "failed");
}

#[test]
fn verify_needs_an_inventory_and_valid_flags() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.archive()).unwrap();
    let out = ws.on_archive("verify", &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("no inventory at"), "{}", stderr(&out));
    assert!(
        !ws.db().exists(),
        "verify must not create an empty inventory"
    );
    for bad in [
        &["--sample", "0"][..],
        &["--sample", "150"],
        &["--all", "--sample", "5"],
        &["--since", "yesterday"],
    ] {
        let out = ws.on_archive("verify", bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(stderr(&out).lines().count(), 1, "{bad:?}: {}", stderr(&out));
    }
}

/// Every regular file under `dir`, as `(relative path, bytes)`, sorted.
fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

// docs/SAFETY.md S25
#[test]
fn restore_round_trips_byte_identical_and_never_replaces_a_file() {
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..3 {
        ws.write_gz(&format!("FGT-A/FGT-A-{i}.log.gz"), 100, i);
        ws.write_gz(&format!("FGT-B/FGT-B-{i}.log.gz"), 100, 10 + i);
    }
    let original = tree(&ws.logs());
    let out = ws.upload(&server, &["--delete"]);
    assert_exit(&out, 0);
    assert!(
        tree(&ws.logs()).is_empty(),
        "the upload deleted the sources"
    );
    let ep = server.endpoint();
    let to = ws.home().join("restored");
    let to_s = to.display().to_string();

    let out = ws.on_bucket("restore", &ep, &["--to", &to_s, "--dry-run"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("6 file(s)"), "{}", stdout(&out));
    assert!(tree(&to).is_empty(), "a dry run writes nothing");

    let out = ws.on_bucket("restore", &ep, &["--to", &to_s, "--device", "FGT-B"]);
    assert_exit(&out, 0);
    let b_only: Vec<_> = original
        .iter()
        .filter(|(k, _)| k.starts_with("FGT-B/"))
        .cloned()
        .collect();
    assert_eq!(tree(&to), b_only);

    // A file already at a name is never replaced, even by the archived bytes.
    std::fs::create_dir_all(to.join("FGT-A")).unwrap();
    std::fs::write(to.join("FGT-A/FGT-A-1.log.gz"), b"admin's own file").unwrap();
    let out = ws.on_bucket("restore", &ep, &["--to", &to_s]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("exists  FGT-A/FGT-A-1.log.gz"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("3 already present"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read(to.join("FGT-A/FGT-A-1.log.gz")).unwrap(),
        b"admin's own file"
    );
    std::fs::remove_file(to.join("FGT-A/FGT-A-1.log.gz")).unwrap();
    let out = ws.on_bucket(
        "restore",
        &ep,
        &["--to", &to_s, "--key", "FGT-A/FGT-A-1.log.gz"],
    );
    assert_exit(&out, 0);
    assert_eq!(tree(&to), original, "every file back, byte for byte");
}

#[test]
fn restore_fetches_with_the_workers_asked_for() {
    // The first object's GET is held at a proxy: with --workers 2 a second
    // GET must arrive while it waits (restore ran one at a time, whatever
    // --workers said). Then everything is restored byte for byte.
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..4 {
        ws.write_gz(&format!("FGT-A/{i}.log.gz"), 100, i);
    }
    let original = tree(&ws.logs());
    assert_exit(&ws.upload(&server, &[]), 0);
    let proxy = common::held::holding(&server, "GET", ".log.gz", 0);
    let to = ws.home().join("restored");
    let to_s = to.display().to_string();
    let extra = ["--to", &to_s, "--workers", "2"];
    let args = ws.bucket_args("restore", &proxy.endpoint(), &extra);
    let mut child = common::held::spawn(&ws, &args, &[]);
    common::held::wait_held(&proxy, &mut child);
    let gets = || {
        let seen = proxy.seen.lock().unwrap();
        seen.iter().filter(|l| l.starts_with("GET ")).count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while gets() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let parallel = gets();
    proxy.gate.open();
    let out = common::held::exits_within(child, std::time::Duration::from_secs(60));
    assert!(parallel >= 2, "one GET at a time with --workers 2");
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("4 restored"), "{}", stdout(&out));
    assert_eq!(tree(&to), original, "every file back, byte for byte");
}

/// `restore ... --to TO --workers 1` of the test bucket through `proxy`,
/// in the background.
fn spawn_restore(
    ws: &Workspace,
    proxy: &common::proxy::FaultProxy,
    to: &std::path::Path,
) -> std::process::Child {
    let to_s = to.display().to_string();
    let extra = ["--to", &to_s, "--workers", "1"];
    common::held::spawn(
        ws,
        &ws.bucket_args("restore", &proxy.endpoint(), &extra),
        &[],
    )
}

/// A proxy whose answer to the GET of `big.log.gz` stalls after 2 MiB
/// until its gate opens.
fn stalling(server: &S3Server) -> common::proxy::FaultProxy {
    common::held::stalling(server, "GET", "big.log.gz", 2 << 20)
}

/// An archive of one 4 MiB object, and a restore of it started into a
/// fresh `--to` with its download stalled half-way.
fn stalled_restore() -> (
    S3Server,
    Workspace,
    common::proxy::FaultProxy,
    std::process::Child,
    Vec<u8>,
) {
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_noise_gz("FGT-A/big.log.gz", 4);
    let original = std::fs::read(ws.logs().join("FGT-A/big.log.gz")).unwrap();
    assert_exit(&ws.upload(&server, &[]), 0);
    let proxy = stalling(&server);
    let mut child = spawn_restore(&ws, &proxy, &ws.home().join("to"));
    common::held::wait_held(&proxy, &mut child);
    (server, ws, proxy, child, original)
}

/// Whether the filesystem of `dir` makes nameless files (`O_TMPFILE`).
fn has_o_tmpfile(dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; the descriptor is closed at once.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_TMPFILE | libc::O_RDWR, 0o600) };
    if fd >= 0 {
        // SAFETY: a descriptor we just opened.
        unsafe { libc::close(fd) };
    }
    fd >= 0
}

/// Puts the attacker's bytes in place of every file in `dir`, through a
/// rename as an attacker would; returns the names it replaced.
fn swap_every_file(dir: &std::path::Path) -> Vec<String> {
    let mut swapped = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::write(dir.join("evil.part"), b"EVIL: not the archived bytes").unwrap();
        std::fs::rename(dir.join("evil.part"), entry.path()).unwrap();
        swapped.push(entry.file_name().into_string().unwrap());
    }
    swapped
}

// docs/SAFETY.md S25
#[test]
fn restore_writes_into_a_nameless_file_that_nobody_can_swap() {
    // Where the filesystem has O_TMPFILE (ext4, tmpfs, xfs, btrfs), the
    // bytes being downloaded have no name in --to until they are proven:
    // someone with write access to --to finds nothing there to put their
    // own bytes in place of. (Where it has none, a temporary name is
    // used: the next test attacks that one.)
    let (_server, ws, proxy, child, original) = stalled_restore();
    let dir = ws.home().join("to/FGT-A");
    assert!(
        has_o_tmpfile(&dir),
        "this test needs O_TMPFILE where the tests' temporary directories are"
    );
    let swapped = swap_every_file(&dir);
    proxy.gate.open();
    let out = common::held::exits_within(child, std::time::Duration::from_secs(60));
    assert_eq!(
        swapped,
        Vec::<String>::new(),
        "a name for the bytes being written was there to swap"
    );
    assert_exit(&out, 0);
    assert_eq!(
        tree(&ws.home().join("to")),
        vec![("FGT-A/big.log.gz".to_string(), original)],
        "the proven file, and nothing else left behind"
    );
}

// docs/SAFETY.md S25
#[test]
fn restore_never_publishes_a_swapped_temporary_name_where_there_is_no_o_tmpfile() {
    // --to on a FUSE mount (bindfs, in a private mount namespace): no
    // O_TMPFILE there, so restore writes under a temporary name. While the
    // download stalls, someone with write access to --to puts their own
    // bytes in place of every file they find there: the temporary file is
    // really swapped, and restore must then publish nothing.
    assert!(
        std::process::Command::new("bindfs")
            .arg("--version")
            .output()
            .is_ok(),
        "this test needs bindfs (scripts/test.sh installs it)"
    );
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_noise_gz("FGT-A/big.log.gz", 4);
    assert_exit(&ws.upload(&server, &[]), 0);
    let disk = ws.home().join("to-disk");
    let to = ws.home().join("to");
    std::fs::create_dir(&disk).unwrap();
    std::fs::create_dir(&to).unwrap();
    let proxy = stalling(&server);
    let to_s = to.display().to_string();
    let args = ws.bucket_args(
        "restore",
        &proxy.endpoint(),
        &["--to", &to_s, "--workers", "1"],
    );
    // bindfs daemonizes once mounted; unmounting ends it.
    let script = r#"bindfs "$1" "$2" || exit 97
        to=$2; shift 2; rc=0; "$@" || rc=$?
        umount "$to"; exit $rc"#;
    let inner = ws.command(&args, &[]);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script, "sh"])
        .arg(&disk)
        .arg(&to)
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in inner.get_envs() {
        cmd.env(k, v.unwrap());
    }
    let mut child = cmd.spawn().unwrap();
    common::held::wait_held(&proxy, &mut child);
    // The mount as the restore sees it, from its own mount namespace.
    let mounted = std::path::PathBuf::from(format!("/proc/{}/root", child.id()))
        .join(to.strip_prefix("/").unwrap());
    assert!(
        !has_o_tmpfile(&mounted),
        "--to has O_TMPFILE: the named fallback is not what runs"
    );
    let swapped = swap_every_file(&mounted.join("FGT-A"));
    proxy.gate.open();
    let out = common::held::exits_within(child, std::time::Duration::from_secs(60));
    assert!(
        swapped.len() == 1
            && swapped[0].starts_with(".fgbackup-restore-")
            && swapped[0].ends_with(".tmp"),
        "the attack did not hit a temporary file: swapped {swapped:?}"
    );
    assert_eq!(
        tree(&disk),
        vec![],
        "the attacker's bytes published, or a temporary file left behind"
    );
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("the temporary file was replaced while the object was written"),
        "{}",
        stdout(&out)
    );
}

// docs/SAFETY.md S25
#[test]
fn restore_never_publishes_through_a_directory_swapped_for_a_link() {
    // While the download stalls, the object's directory is moved away and
    // a link to a directory outside --to takes its place.
    let (_server, ws, proxy, child, original) = stalled_restore();
    let to = ws.home().join("to");
    let outside = ws.home().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(to.join("FGT-A"), to.join("FGT-A.moved")).unwrap();
    std::os::unix::fs::symlink(&outside, to.join("FGT-A")).unwrap();
    proxy.gate.open();
    let out = common::held::exits_within(child, std::time::Duration::from_secs(60));
    assert!(
        tree(&outside).is_empty(),
        "written through a link: {:?}",
        tree(&outside)
    );
    assert_eq!(
        std::fs::read(to.join("FGT-A.moved/big.log.gz")).unwrap(),
        original,
        "the proven bytes, in the directory they were written in"
    );
    assert_exit(&out, 0);
}

// docs/SAFETY.md S16
#[test]
fn a_stop_signal_ends_restore_and_verify_while_the_server_is_silent() {
    // The server takes a GET and never answers (a read waits up to the
    // client's 120 s answer timeout): a stop signal must still end either
    // command within seconds, with exit 1, leaving nothing half-published
    // and a truthful verification row.
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..3 {
        ws.write_gz(&format!("FGT-A/{i}.log.gz"), 50, i);
    }
    assert_exit(&ws.upload(&server, &[]), 0);

    let proxy = common::held::holding(&server, "GET", ".log.gz", 0);
    let to = ws.home().join("to");
    let mut child = spawn_restore(&ws, &proxy, &to);
    common::held::wait_held(&proxy, &mut child);
    common::held::signal(&child, libc::SIGTERM);
    let out = common::held::exits_within(child, std::time::Duration::from_secs(15));
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("restore: stopped by a signal"),
        "{}",
        stdout(&out)
    );
    assert!(tree(&to).is_empty(), "{:?}", tree(&to));
    drop(proxy);

    let proxy = common::held::holding(&server, "GET", ".log.gz", 0);
    let args = ws.bucket_args("verify", &proxy.endpoint(), &[]);
    let mut child = common::held::spawn(&ws, &args, &[]);
    common::held::wait_held(&proxy, &mut child);
    common::held::signal(&child, libc::SIGTERM);
    let out = common::held::exits_within(child, std::time::Duration::from_secs(15));
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(last_verification(&ws).0, "interrupted");
}

// docs/SAFETY.md S16
#[test]
fn a_read_back_cut_by_a_stop_signal_is_no_finding() {
    // The only object's read stalls half-way; SIGTERM, then the rest of the
    // body arrives: the verification is 'interrupted', with no error
    // recorded against an object that was simply not checked.
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_noise_gz("FGT-A/big.log.gz", 4);
    assert_exit(&ws.upload(&server, &[]), 0);
    let proxy = stalling(&server);
    let args = ws.bucket_args("verify", &proxy.endpoint(), &[]);
    let mut child = common::held::spawn(&ws, &args, &[]);
    common::held::wait_held(&proxy, &mut child);
    common::held::signal(&child, libc::SIGTERM);
    proxy.gate.open();
    let out = common::held::exits_within(child, std::time::Duration::from_secs(15));
    assert_ne!(out.status.code(), Some(0));
    let (status, checked, ..) = last_verification(&ws);
    assert_eq!(
        (status.as_str(), checked),
        ("interrupted", 0),
        "{}",
        stdout(&out)
    );
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let findings: i64 = conn
        .query_row("SELECT count(*) FROM verification_findings", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(findings, 0, "{}", stdout(&out));
}

#[test]
fn a_huge_file_planted_at_a_restore_name_is_not_read() {
    // A 64 GiB sparse file at the name: it cannot hold the archived bytes
    // (the size differs), so it is reported without hashing it for minutes.
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 20, 1);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let to = ws.home().join("to");
    std::fs::create_dir_all(to.join("FGT-A")).unwrap();
    std::fs::File::create(to.join("FGT-A/a.log.gz"))
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let mut args = vec!["restore".to_string(), "--dest".into()];
    args.push(format!("file://{}", ws.archive().display()));
    args.extend(["--db".into(), ws.db().display().to_string()]);
    args.extend(["--to".into(), to.display().to_string()]);
    let child = common::held::spawn(&ws, &args, &[]);
    let out = common::held::exits_within(child, std::time::Duration::from_secs(20));
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("exists  FGT-A/a.log.gz"),
        "{}",
        stdout(&out)
    );
}

// docs/SAFETY.md S25
#[test]
fn restore_refuses_directories_someone_else_controls() {
    // Someone who can move a directory below --to can move it, with files
    // still arriving in it, out of --to: a --to anyone can write without
    // the sticky bit is refused, and so is a directory below it owned by
    // another user.
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    for i in 0..2 {
        ws.write_gz(&format!("FGT-A/{i}.log.gz"), 20, i);
        ws.write_gz(&format!("FGT-B/{i}.log.gz"), 20, 10 + i);
    }
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let to = ws.home().join("to");
    std::fs::create_dir_all(&to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o777)).unwrap();
    let to_s = to.display().to_string();
    let out = ws.on_archive("restore", &["--to", &to_s]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("without the sticky bit"),
        "{}",
        stderr(&out)
    );
    assert!(tree(&to).is_empty());

    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::fs::create_dir(to.join("FGT-A")).unwrap();
        std::os::unix::fs::chown(to.join("FGT-A"), Some(65534), Some(65534)).unwrap();
    }
    let out = ws.on_archive("restore", &["--to", &to_s]);
    if root {
        assert_exit(&out, 1);
        assert!(
            stdout(&out).contains("owned by uid 65534"),
            "{}",
            stdout(&out)
        );
        assert!(stdout(&out).contains("2 restored"), "{}", stdout(&out));
        assert!(
            std::fs::read_dir(to.join("FGT-A"))
                .unwrap()
                .next()
                .is_none()
        );
    } else {
        assert_exit(&out, 0);
    }
    assert_eq!(std::fs::read_dir(to.join("FGT-B")).unwrap().count(), 2);
}

// docs/SAFETY.md S25
#[test]
fn restore_stops_early_when_the_endpoint_goes_away() {
    // The server stops answering after a few objects: after a few refused
    // connections in a row the run ends with one clear line, instead of a
    // failure per remaining file.
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..30 {
        ws.write_gz(&format!("FGT-A/{i:02}.log.gz"), 20, i);
    }
    assert_exit(&ws.upload(&server, &[]), 0);
    let proxy = common::proxy::FaultProxy::start_with(
        server.port,
        common::proxy::Options {
            close_after: Some(4),
            ..Default::default()
        },
    );
    let to = ws.home().join("to");
    let out = common::held::exits_within(
        spawn_restore(&ws, &proxy, &to),
        std::time::Duration::from_secs(60),
    );
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("restore: endpoint unreachable ("), "{text}");
    let failed = text.lines().filter(|l| l.starts_with("failed ")).count();
    assert!(
        failed < 10,
        "{failed} failure lines for an endpoint that is gone:\n{text}"
    );
}

// docs/SAFETY.md S25
#[test]
fn a_stop_signal_ends_a_restore_mid_download_and_publishes_nothing() {
    let (_server, ws, proxy, child, _) = stalled_restore();
    common::held::signal(&child, libc::SIGTERM);
    // The rest of the body now arrives: the signal must still win.
    proxy.gate.open();
    let out = common::held::exits_within(child, std::time::Duration::from_secs(30));
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("restore: stopped by a signal; 0 restored before it"),
        "{}",
        stdout(&out)
    );
    let to = ws.home().join("to");
    assert!(
        tree(&to).is_empty(),
        "nothing published, no temporary file: {:?}",
        tree(&to)
    );
}

// docs/SAFETY.md S25
#[test]
fn restore_refuses_a_damaged_object_and_leaves_nothing_behind() {
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 200, 1);
    let out = ws.upload(&server, &[]);
    assert_exit(&out, 0);
    flip_byte(&server.object_path(BUCKET, "FGT-A/a.log.gz"), 50);
    let to = ws.home().join("restored");
    let out = ws.on_bucket(
        "restore",
        &server.endpoint(),
        &["--to", &to.display().to_string()],
    );
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("failed  FGT-A/a.log.gz: altered"),
        "{}",
        stdout(&out)
    );
    assert!(
        tree(&to).is_empty(),
        "no file, no temporary file: {:?}",
        tree(&to)
    );
    let out = ws.on_bucket(
        "restore",
        &server.endpoint(),
        &["--to", "/tmp/x", "--key", "nope.gz"],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--key nope.gz is not an archived file"),
        "{}",
        stderr(&out)
    );
}

/// The rows' lasting facts, sorted: what a rebuilt inventory must match.
fn facts(ws: &Workspace) -> Vec<(String, String, String, String, i64)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT filename, s3_url, sha256, object_key, size_bytes FROM backups ORDER BY object_key")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

// docs/SAFETY.md S26
#[test]
fn reindex_rebuilds_a_lost_inventory_to_the_same_rows_and_marks_what_it_cannot_prove() {
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..4 {
        ws.write_gz(&format!("FGT-A/{i}.log.gz"), 100, i);
    }
    let out = ws.upload(&server, &[]);
    assert_exit(&out, 0);
    let before = facts(&ws);
    assert_eq!(before.len(), 4);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", ws.db().display()));
    }
    let ep = server.endpoint();
    let out = ws.on_bucket("reindex", &ep, &[]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("4 added (4 proven by the stored checksum"),
        "{}",
        stdout(&out)
    );
    assert_eq!(facts(&ws), before);
    let statuses: Vec<String> = ws.rows().iter().map(|r| r.status().to_string()).collect();
    assert_eq!(statuses, vec!["reindexed"; 4]);
    // The rebuilt inventory proves the archive like the original one.
    let out = ws.on_bucket("verify", &ep, &[]);
    assert_exit(&out, 0);

    // Idempotent; an object written behind fgbackup's back (no checksum,
    // no metadata) is added as unproven, then proven by reading it.
    std::fs::write(
        server.object_path(BUCKET, "FGT-A/planted.log.gz"),
        b"planted",
    )
    .unwrap();
    let out = ws.on_bucket("reindex", &ep, &[]);
    assert!(
        stdout(&out).contains(
            "1 added (0 proven by the stored checksum, 0 read back, 1 unproven), 4 already"
        ),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("--read"));
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let (status, sha): (String, Option<String>) = conn
        .query_row(
            "SELECT status, sha256 FROM backups WHERE object_key = 'FGT-A/planted.log.gz'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), sha), ("reindexed_unproven", None));
    let out = ws.on_bucket("reindex", &ep, &[]);
    assert!(stdout(&out).contains("0 added"), "{}", stdout(&out));
    // --read proves what nothing else could.
    let out = ws.on_bucket("reindex", &ep, &["--read"]);
    assert!(
        stdout(&out).contains("1 added (0 proven by the stored checksum, 1 read back"),
        "{}",
        stdout(&out)
    );
    let (status, sha): (String, Option<String>) = conn
        .query_row(
            "SELECT status, sha256 FROM backups WHERE object_key = 'FGT-A/planted.log.gz' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "reindexed");
    let planted = sha256_file(&server.object_path(BUCKET, "FGT-A/planted.log.gz"));
    assert_eq!(sha, Some(planted));
}

/// Manifest objects of the test host, oldest first.
fn manifests(server: &S3Server) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let root = server.object_path(BUCKET, "_manifests");
    fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    walk(&root, &mut out);
    out.sort();
    out
}

/// Three uploads with a manifest key: three manifests in one chain.
fn chained_archive() -> (S3Server, Workspace, String, String) {
    let server = S3Server::start();
    let ws = Workspace::new();
    let key = ws.home().join("manifest.key").display().to_string();
    let out = ws.run(&["keygen", "--key", &key], &[]);
    assert_exit(&out, 0);
    assert!(
        !stdout(&out).contains("PRIVATE"),
        "keygen never prints the private key"
    );
    for round in 0..3u64 {
        for i in 0..2 {
            ws.write_gz(&format!("FGT-A/r{round}-{i}.log.gz"), 100, round * 10 + i);
        }
        let out = ws.upload(&server, &["--manifest-key", &key]);
        assert_exit(&out, 0);
        assert!(
            stderr(&out).contains("manifest _manifests/"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(manifests(&server).len(), 3);
    let public = format!("{key}.pub");
    (server, ws, key, public)
}

// docs/SAFETY.md S27
#[test]
fn the_manifest_chain_verifies_and_catches_a_removed_object() {
    let (server, ws, _key, public) = chained_archive();
    let ep = server.endpoint();
    let out = ws.on_bucket("verify", &ep, &["--manifests", "--public-key", &public]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("6 objects checked (6 read back"),
        "{}",
        stdout(&out)
    );
    // Nothing new archived: no new manifest (the daily heartbeat aside).
    let out = ws.upload(
        &server,
        &["--manifest-key", public.trim_end_matches(".pub")],
    );
    assert_exit(&out, 0);
    assert_eq!(manifests(&server).len(), 3);

    std::fs::remove_file(server.object_path(BUCKET, "FGT-A/r0-1.log.gz")).unwrap();
    let out = ws.on_bucket("verify", &ep, &["--manifests", "--public-key", &public]);
    assert_exit(&out, 1);
    assert!(
        lines_with(&out, "missing")[0].contains("FGT-A/r0-1.log.gz"),
        "{}",
        stdout(&out)
    );
}

// docs/SAFETY.md S24
#[test]
fn verify_reports_strays_in_the_manifest_directory_but_not_the_chain() {
    let (server, ws, _key, _public) = chained_archive();
    let ep = server.endpoint();
    let out = ws.on_bucket("verify", &ep, &[]);
    assert_exit(&out, 0);
    assert!(lines_with(&out, "extra").is_empty(), "{}", stdout(&out));

    // Something only an intruder or a careless admin puts there: a note at
    // the top, a file beside a host's key, a look-alike name in a day.
    let host_dir = manifests(&server)[0]
        .ancestors()
        .nth(4)
        .unwrap()
        .to_path_buf();
    let host = host_dir.file_name().unwrap().to_string_lossy().to_string();
    let strays = [
        "_manifests/notes.txt".to_string(),
        format!("_manifests/{host}/junk.bin"),
        format!("_manifests/{host}/2026/11/23/copy.json.bak"),
    ];
    for key in &strays {
        let path = server.object_path(BUCKET, key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"not ours").unwrap();
    }
    let out = ws.on_bucket("verify", &ep, &[]);
    assert_exit(&out, 1);
    let extra = lines_with(&out, "extra");
    assert_eq!(extra.len(), strays.len(), "{}", stdout(&out));
    for key in &strays {
        assert!(
            extra.iter().any(|l| l.contains(key.as_str())),
            "{key} not reported: {extra:?}"
        );
    }
}

// docs/SAFETY.md S27
#[test]
fn the_manifest_chain_catches_an_edited_manifest_a_removed_manifest_and_a_wrong_key() {
    let (server, ws, _key, public) = chained_archive();
    let ep = server.endpoint();
    let m = manifests(&server);

    // Edited: a file's recorded hash changed to match a forged object.
    let original = std::fs::read(&m[1]).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let forged = text.replacen("\"sha256\":\"", "\"sha256\":\"0", 1);
    std::fs::write(&m[1], forged).unwrap();
    let out = ws.on_bucket("verify", &ep, &["--manifests", "--public-key", &public]);
    assert_exit(&out, 1);
    let chain = lines_with(&out, "chain").join("\n");
    assert!(
        chain.contains("signature does not verify"),
        "{}",
        stdout(&out)
    );
    assert!(
        chain.contains("differs from the"),
        "the successor's link catches it too: {chain}"
    );
    std::fs::write(&m[1], &original).unwrap();

    // Wrong key: another key pair's public half.
    let other = ws.home().join("other.key").display().to_string();
    assert_eq!(
        ws.run(&["keygen", "--key", &other], &[]).status.code(),
        Some(0)
    );
    let out = ws.on_bucket(
        "verify",
        &ep,
        &["--manifests", "--public-key", &format!("{other}.pub")],
    );
    assert_exit(&out, 1);
    assert_eq!(
        lines_with(&out, "chain")
            .iter()
            .filter(|l| l.contains("signature does not verify"))
            .count(),
        3,
        "{}",
        stdout(&out)
    );

    // Removed: the middle manifest; the newest one's link breaks.
    std::fs::remove_file(&m[1]).unwrap();
    let out = ws.on_bucket("verify", &ep, &["--manifests", "--public-key", &public]);
    assert_exit(&out, 1);
    assert!(
        lines_with(&out, "chain")
            .join("\n")
            .contains("named as previous but cannot be read"),
        "{}",
        stdout(&out)
    );

    // Removed: the newest manifest; the inventory remembers it.
    std::fs::write(&m[1], &original).unwrap();
    std::fs::remove_file(&m[2]).unwrap();
    let out = ws.on_bucket("verify", &ep, &["--manifests", "--public-key", &public]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("is gone from the archive"),
        "{}",
        stdout(&out)
    );
}

// docs/SAFETY.md S28
#[test]
fn prune_is_a_dry_run_by_default_refuses_short_retention_and_is_recorded_in_the_chain() {
    let ws = Workspace::new();
    let key = ws.home().join("m.key").display().to_string();
    assert_eq!(
        ws.run(&["keygen", "--key", &key], &[]).status.code(),
        Some(0)
    );
    for i in 0..3 {
        ws.write_gz(&format!("FGT-A/old-{i}.log.gz"), 50, i);
    }
    let out = ws.upload_local(&["--manifest-key", &key], &[]);
    assert_exit(&out, 0);
    age_rows(&ws.db(), "2024-01-01T00:00:00Z");
    ws.write_gz("FGT-A/new.log.gz", 50, 9);
    let out = ws.upload_local(&["--manifest-key", &key], &[]);
    assert_exit(&out, 0);

    let out = ws.on_archive("prune", &["--older-than", "30"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("under 365 days"), "{}", stderr(&out));

    let out = ws.on_archive("prune", &["--older-than", "400"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("would prune 3 object(s)"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("pass --yes"));
    assert!(
        ws.archive().join("FGT-A/old-0.log.gz").exists(),
        "a dry run deletes nothing"
    );

    let out = ws.on_archive(
        "prune",
        &["--older-than", "400", "--yes", "--manifest-key", &key],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("recorded in manifest"),
        "{}",
        stdout(&out)
    );
    assert!(!ws.archive().join("FGT-A/old-0.log.gz").exists());
    assert!(ws.archive().join("FGT-A/new.log.gz").exists());
    // Pruned objects are neither missing nor extra: the inventory and the
    // signed chain both say they were removed on purpose.
    let out = ws.on_archive("verify", &[]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("1 objects checked"),
        "{}",
        stdout(&out)
    );
    let public = format!("{key}.pub");
    let out = ws.on_archive("verify", &["--manifests", "--public-key", &public]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("1 objects checked"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verify_shows_progress_on_a_terminal_and_not_in_a_pipe() {
    let ws = Workspace::new();
    for i in 0..3 {
        ws.write_gz(&format!("FGT-C/{i}.log.gz"), 50, i);
    }
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);
    let cmd = format!(
        "{} verify --dest file://{} --db {}",
        env!("CARGO_BIN_EXE_fgbackup"),
        ws.archive().display(),
        ws.db().display()
    );
    // util-linux `script` gives the command a pseudo-terminal (one that
    // can redraw: TERM set, RUST_LOG not deciding the levels).
    let tty = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("RUST_LOG")
        .output()
        .expect("script(1) from util-linux");
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.contains("Objects:     3 / 3, problems: 0"), "{text}");
    assert!(text.contains("3 ok"), "{text}");
    let piped = ws.on_archive("verify", &[]);
    assert!(!stderr(&piped).contains("Objects:"), "{}", stderr(&piped));
    assert!(!stderr(&piped).contains('\x1b'), "{}", stderr(&piped));
}

// docs/SAFETY.md S16
#[test]
fn a_stop_signal_ends_a_long_read_back_within_seconds() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 10, 1);
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);
    // A 64 GiB object (sparse: no disk used) that takes minutes to hash,
    // recorded in the inventory with that size so verify reads it.
    let big = ws.archive().join("FGT-A/huge.log.gz");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    rusqlite::Connection::open(ws.db())
        .unwrap()
        .execute(
            "INSERT INTO backups (filename, sha256, uploaded_at, backup_date, status, object_key, size_bytes)
             VALUES ('huge.log.gz', 'aa', '2026-01-01T00:00:00Z', '2026-01-01', 'uploaded', 'FGT-A/huge.log.gz', ?1)",
            [64i64 << 30],
        )
        .unwrap();
    let mut args = vec!["verify".to_string(), "--dest".into()];
    args.push(format!("file://{}", ws.archive().display()));
    args.extend(["--db".to_string(), ws.db().display().to_string()]);
    let mut child = ws
        .command(&args, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is deep into the read (bytes read, from /proc).
    let io = format!("/proc/{}/io", child.id());
    let read = || -> u64 {
        std::fs::read_to_string(&io)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("rchar: ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let t0 = std::time::Instant::now();
    while read() < 256 << 20 {
        assert!(t0.elapsed().as_secs() < 60, "verify never started reading");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if stopped.elapsed().as_secs() > 10 {
            let _ = child.kill();
            panic!("verify still running 10 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
}

// docs/SAFETY.md S25
#[test]
fn restore_never_writes_through_a_planted_link() {
    let ws = Workspace::new();
    ws.write_gz("x/FGT-A/a.log.gz", 50, 1);
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);
    let to = ws.home().join("to");
    let outside = ws.home().join("outside");
    std::fs::create_dir_all(outside.join("FGT-A")).unwrap();
    std::fs::create_dir_all(&to).unwrap();
    // A directory on the way is a link to elsewhere.
    std::os::unix::fs::symlink(&outside, to.join("x")).unwrap();
    let to_s = to.display().to_string();
    let out = ws.on_archive("restore", &["--to", &to_s]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("is a link or a file"),
        "{}",
        stdout(&out)
    );
    assert!(
        tree(&outside).is_empty(),
        "nothing written through the link"
    );

    // Temporary names planted as links to a victim file: never opened.
    std::fs::remove_file(to.join("x")).unwrap();
    std::fs::create_dir_all(to.join("x/FGT-A")).unwrap();
    let victim = ws.home().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    for n in 0..64 {
        let _ = std::os::unix::fs::symlink(
            &victim,
            to.join(format!("x/FGT-A/.fgbackup-restore-{n}.tmp")),
        );
    }
    let out = ws.on_archive("restore", &["--to", &to_s]);
    assert_exit(&out, 0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let restored = to.join("x/FGT-A/a.log.gz");
    assert!(
        std::fs::symlink_metadata(&restored)
            .unwrap()
            .file_type()
            .is_file()
    );
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(ws.logs().join("x/FGT-A/a.log.gz")).unwrap()
    );
}

#[test]
fn a_key_archived_again_after_a_prune_is_verified_again() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 50, 1);
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);
    age_rows(&ws.db(), "2024-01-01T00:00:00Z");
    let out = ws.on_archive("prune", &["--older-than", "400", "--yes"]);
    assert_exit(&out, 0);
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);
    std::fs::remove_file(ws.archive().join("FGT-A/a.log.gz")).unwrap();
    let out = ws.on_archive("verify", &[]);
    assert_exit(&out, 1);
    assert!(lines_with(&out, "missing")[0].contains("FGT-A/a.log.gz"));
}

#[test]
fn verify_refuses_impossible_dates_and_an_empty_selection() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 50, 1);
    assert_eq!(ws.upload_local(&[], &[]).status.code(), Some(0));
    for bad in [
        &["--since", "2026-13-45"][..],
        &["--since", "2026-02-01", "--until", "2026-01-01"],
    ] {
        let out = ws.on_archive("verify", bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    let out = ws.on_archive("verify", &["--until", "2000-01-01"]);
    assert_eq!(out.status.code(), Some(1), "checking nothing is not a pass");
    assert!(
        stdout(&out).contains("nothing to verify"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_manifest_is_written_daily_even_when_nothing_was_archived() {
    let (server, ws, key, public) = chained_archive();
    let out = ws.on_bucket(
        "verify",
        &server.endpoint(),
        &["--manifests", "--public-key", &public],
    );
    assert_eq!(out.status.code(), Some(0), "fresh chain: {}", stdout(&out));
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute(
        "UPDATE manifests SET created_at = '2026-01-01T00:00:00Z'",
        [],
    )
    .unwrap();
    drop(conn);
    // A new manifest is due (the last is "old"): written although nothing new was archived.
    let out = ws.upload(&server, &["--manifest-key", &key]);
    assert_exit(&out, 0);
    assert_eq!(manifests(&server).len(), 4, "the daily heartbeat manifest");
}

// ---------------------------------------------------------------------------
// The second hostile review: the manifest chain (items 4, 6, 7, 9, 17).

/// Item 4: after three signed runs, manifest 2 is copied over manifest 3's
/// key, manifest 2's key removed, and run 3's objects deleted: a rollback
/// to the chain as it was after run 2. `verify --manifests` said all was
/// well. Each manifest names its own key and sequence, and the inventory
/// recorded the SHA-256 of every manifest it wrote: both catch it. With an
/// inventory rebuilt by `reindex` (no record), the moved manifest still
/// gives it away, and verify says what it cannot check.
// docs/SAFETY.md S27
#[test]
fn item_04_a_rolled_back_chain_is_caught() {
    let (server, ws, _key, public) = chained_archive();
    let ep = server.endpoint();
    let m = manifests(&server);
    std::fs::copy(&m[1], &m[2]).unwrap();
    std::fs::remove_file(&m[1]).unwrap();
    for i in 0..2 {
        std::fs::remove_file(server.object_path(BUCKET, &format!("FGT-A/r2-{i}.log.gz"))).unwrap();
    }
    let out = ws.on_bucket("verify", &ep, &["--manifests", "--public-key", &public]);
    assert_exit(&out, 1);
    let chain = lines_with(&out, "chain ").join("\n");
    assert!(
        chain.contains("moved or replayed (a rollback)"),
        "{}",
        stdout(&out)
    );
    assert!(
        chain.contains("is gone from the archive"),
        "{}",
        stdout(&out)
    );
    assert!(chain.contains("holds other bytes"), "{}", stdout(&out));

    // The inventory lost and rebuilt: no record of the manifests.
    std::fs::remove_file(ws.db()).unwrap();
    assert_exit(&ws.on_bucket("reindex", &ep, &[]), 0);
    let out = ws.on_bucket("verify", &ep, &["--manifests", "--public-key", &public]);
    assert_exit(&out, 1);
    assert!(
        lines_with(&out, "chain ")
            .join("\n")
            .contains("moved or replayed"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("this inventory has no record of these manifests"),
        "{}",
        stdout(&out)
    );
}

/// Item 4, the outside witness: the run's summary (`--json`, email,
/// webhooks) and `/health` carry the chain head's sequence and SHA-256, and
/// `verify --manifests` prints the head it found, so an auditor can compare
/// the two.
#[test]
fn item_04_the_chain_head_is_reported_for_an_outside_witness() {
    let (server, ws, key, public) = chained_archive();
    ws.write_gz("FGT-A/w.log.gz", 50, 77);
    let out = ws.upload(&server, &["--manifest-key", &key, "--json"]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["manifest"]["sequence"], 4, "{json}");
    let sha = json["manifest"]["sha256"].as_str().unwrap().to_string();
    let newest = manifests(&server).pop().unwrap();
    assert_eq!(sha, sha256_file(&newest));
    let out = ws.on_bucket(
        "verify",
        &server.endpoint(),
        &["--manifests", "--public-key", &public],
    );
    assert_exit(&out, 0);
    let head = lines_with(&out, "chain head").join("\n");
    assert!(
        head.contains(&format!("sequence 4, sha256 {sha}")),
        "{}",
        stdout(&out)
    );
}

/// Item 6: a manifest that reached the store but not the inventory (the
/// run ended between its PUT and its row) was orphaned: the next manifest
/// linked to the older row, and `verify --manifests` raised a false alarm
/// for ever. It is adopted on the next run instead.
#[test]
fn item_06_a_manifest_stored_but_not_recorded_is_adopted() {
    use common::proxy::{FaultProxy, Options};
    let server = S3Server::start();
    let ws = Workspace::new();
    let key = ws.manifest_key();
    ws.write_gz("FGT/a.log.gz", 50, 1);
    assert_exit(&ws.upload(&server, &["--manifest-key", &key]), 0);
    // The manifest's PUT is done by the server, its answer lost.
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            lose_answer: Some(("PUT", ".json")),
            ..Options::default()
        },
    );
    ws.write_gz("FGT/b.log.gz", 50, 2);
    let out = ws.upload_to(&proxy.endpoint(), &["--manifest-key", &key]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("manifest not written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(manifests(&server).len(), 2, "stored, though not recorded");
    ws.write_gz("FGT/c.log.gz", 50, 3);
    let out = ws.upload(&server, &["--manifest-key", &key]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("adopted"), "{}", stderr(&out));
    let out = ws.on_bucket(
        "verify",
        &server.endpoint(),
        &["--manifests", "--public-key", &format!("{key}.pub")],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("3 objects checked"),
        "{}",
        stdout(&out)
    );
}

/// Item 6: the upload wrote its manifest after releasing the run lock, so
/// a prune run meanwhile linked its manifest to the same predecessor: a
/// fork, and a false tamper alarm. The manifest is the run's last step
/// under the lock: the prune waits for it (here: is refused while it runs)
/// and the chain stays one line.
#[test]
fn item_06_upload_and_prune_at_once_never_fork_the_chain() {
    use common::held::*;
    let server = S3Server::start();
    let ws = Workspace::new();
    let key = ws.manifest_key();
    ws.write_gz("FGT/old.log.gz", 50, 1);
    assert_exit(&ws.upload(&server, &["--manifest-key", &key]), 0);
    age_rows(&ws.db(), "2024-01-01T00:00:00Z");
    ws.write_gz("FGT/new.log.gz", 50, 2);
    // The upload's manifest PUT waits at the gate while prune tries its luck.
    let proxy = common::proxy::FaultProxy::start_with(
        server.port,
        common::proxy::Options {
            hold: Some(common::proxy::Hold {
                method: "PUT",
                target_contains: ".json",
                skip: 0,
            }),
            ..Default::default()
        },
    );
    let child = start_held(&ws, &proxy, &["--manifest-key", &key]);
    let prune = ws.on_bucket(
        "prune",
        &server.endpoint(),
        &["--older-than", "400", "--yes", "--manifest-key", &key],
    );
    proxy.gate.open();
    let upload = child.wait_with_output().unwrap();
    assert_exit(&upload, 0);
    assert_exit(&prune, 1);
    assert!(
        stderr(&prune).contains("already running"),
        "{}",
        stderr(&prune)
    );
    // Now the prune runs, after the upload's manifest.
    let prune = ws.on_bucket(
        "prune",
        &server.endpoint(),
        &["--older-than", "400", "--yes", "--manifest-key", &key],
    );
    assert_exit(&prune, 0);
    let out = ws.on_bucket(
        "verify",
        &server.endpoint(),
        &["--manifests", "--public-key", &format!("{key}.pub")],
    );
    assert_exit(&out, 0);
}

/// Item 7: uploads with `--prefix site-A`, then `site-B`, then `site-A`
/// into one inventory, each with a manifest key: `verify --manifests`
/// failed for both prefixes ("missing", "gone from the archive") though
/// nothing was touched. One chain per prefix and host; no false alarm.
/// Prefixes that differ only in case are two prefixes too (a `LIKE`
/// filter had linked them).
#[test]
fn item_07_prefixes_sharing_an_inventory_keep_their_own_chains() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let key = ws.manifest_key();
    for (round, prefix) in ["site-A/", "site-B/", "site-A/", "SITE-A/"]
        .iter()
        .enumerate()
    {
        ws.write_gz(&format!("FGT/r{round}.log.gz"), 50, round as u64);
        let out = ws.upload(
            &server,
            &["--manifest-key", &key, "--prefix", prefix, "--delete"],
        );
        assert_exit(&out, 0);
    }
    for (prefix, objects) in [("site-A/", 2), ("site-B/", 1), ("SITE-A/", 1)] {
        let out = ws.on_bucket(
            "verify",
            &server.endpoint(),
            &[
                "--manifests",
                "--public-key",
                &format!("{key}.pub"),
                "--prefix",
                prefix,
            ],
        );
        assert_exit(&out, 0);
        assert!(
            stdout(&out).contains(&format!("{objects} objects checked")),
            "{prefix}: {}",
            stdout(&out)
        );
    }
}

/// Item 9: a 1 GiB file planted under `_manifests/` was read whole by
/// `verify --manifests` (1 GB of memory; larger ones got it killed), and
/// the upload's manifest step read the newest object the same way. A
/// manifest has a size cap: a bigger object is reported, never read.
#[test]
fn item_09_a_huge_object_under_manifests_is_never_read_whole() {
    let (server, ws, key, public) = chained_archive();
    let host_dir = manifests(&server)[0]
        .ancestors()
        .nth(4)
        .unwrap()
        .to_path_buf();
    let planted = host_dir.join("2099/12/31/20991231T000000.000Z.json");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&planted).unwrap();
    f.set_len(1 << 30).unwrap(); // sparse: no disk, 1 GiB to whoever reads it
    ws.write_gz("FGT-A/late.log.gz", 50, 99);
    let out = ws.upload(&server, &["--manifest-key", &key]);
    assert_exit(&out, 0);
    let out = ws.on_bucket(
        "verify",
        &server.endpoint(),
        &["--manifests", "--public-key", &public],
    );
    assert_exit(&out, 1);
    let chain = lines_with(&out, "chain ").join("\n");
    assert!(
        chain.contains("larger than a manifest may be"),
        "{}",
        stdout(&out)
    );
    // SAFETY: getrusage only writes the struct it is given.
    let peak_kib = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    };
    assert!(peak_kib < 256 * 1024, "a child used {peak_kib} KiB");
}

/// Item 17: a run that archives more rows than one manifest should hold
/// (a migrated inventory: 60k rows gave a 10.7 MB manifest, beyond the
/// reader's limit, and the chain was reported broken from there on) writes
/// several manifests, each a link of the chain, and verify accepts them all.
#[test]
fn item_17_a_large_backlog_is_written_as_several_manifests_verify_accepts() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let key = ws.manifest_key();
    ws.write_gz("FGT/first.log.gz", 20, 1);
    assert_exit(&ws.upload(&server, &[]), 0);
    // 12,000 objects archived by an earlier tool: in the bucket and in the
    // inventory, never in a manifest.
    let n = 12_000;
    let sha1 = sha256_file(&{
        let p = ws.tmp.path().join("one");
        std::fs::write(&p, b"x").unwrap();
        p
    });
    let dir = server.object_path(BUCKET, "bulk");
    std::fs::create_dir_all(&dir).unwrap();
    let mut conn = rusqlite::Connection::open(ws.db()).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..n {
        let k = format!("bulk/f{i:05}.gz");
        std::fs::write(server.object_path(BUCKET, &k), b"x").unwrap();
        tx.execute(
            "INSERT INTO backups (filename, sha256, uploaded_at, backup_date, status, object_key, size_bytes)
             VALUES (?1, ?2, '2026-11-01T00:00:00Z', '2026-11-01', 'uploaded', ?1, 1)",
            rusqlite::params![k, sha1],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(conn);
    let out = ws.upload(&server, &["--manifest-key", &key, "--json"]);
    assert_exit(&out, 0);
    let written = manifests(&server);
    assert_eq!(written.len(), 3, "12,001 rows in parts of 5,000");
    for m in &written {
        assert!(std::fs::metadata(m).unwrap().len() < 2 << 20, "{m:?}");
    }
    let out = ws.on_bucket(
        "verify",
        &server.endpoint(),
        &[
            "--manifests",
            "--public-key",
            &format!("{key}.pub"),
            "--sample",
            "1",
        ],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains(&format!("{} objects checked", n + 1)),
        "{}",
        stdout(&out)
    );
}

/// Found by a second look at item 4's chain: a key pruned and archived
/// again before the next manifest is listed there both as pruned and as a
/// file; the prune hid the new file, so `verify --manifests` never checked
/// it (its object deleted: still "ok"). The file counts unless it was
/// pruned after it was archived.
#[test]
fn a_key_pruned_and_archived_again_in_one_manifest_is_still_checked() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let key = ws.manifest_key();
    ws.write_gz("FGT/k1.log.gz", 50, 1);
    ws.write_gz("FGT/k2.log.gz", 50, 2);
    assert_exit(&ws.upload(&server, &["--manifest-key", &key]), 0);
    rusqlite::Connection::open(ws.db())
        .unwrap()
        .execute(
            "UPDATE backups SET uploaded_at = '2023-01-01T00:00:00Z', backup_date = '2023-01-01' WHERE object_key = 'FGT/k1.log.gz'",
            [],
        )
        .unwrap();
    let ep = server.endpoint();
    assert_exit(
        &ws.on_bucket("prune", &ep, &["--older-than", "365", "--yes"]),
        0,
    );
    // The file is still here (no --delete): archived again.
    assert_exit(&ws.upload(&server, &["--manifest-key", &key]), 0);
    std::fs::remove_file(server.object_path(BUCKET, "FGT/k1.log.gz")).unwrap();
    let out = ws.on_bucket(
        "verify",
        &ep,
        &["--manifests", "--public-key", &format!("{key}.pub")],
    );
    assert_exit(&out, 1);
    assert!(
        lines_with(&out, "missing")
            .join("\n")
            .contains("FGT/k1.log.gz"),
        "{}",
        stdout(&out)
    );
}
