//! The second hostile review (issue "Second hostile review"): each test
//! reproduces one defect it found, through the real binary and a real store,
//! and states what must happen instead. They are numbered like the issue's
//! items so a reader can go from a finding to its test.

use crate::common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;

/// Every regular file below `dir` with its bytes, sorted by path.
fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Item 1: `DEST/FGT-NEW` is a symlink to `SRC/FGT-NEW`. The store followed
/// it, found each source file "already archived", proved it by reading the
/// file itself back, and `--delete` removed it: no copy left, exit 0.
/// Links inside the store are never followed: nothing is read, written or
/// deleted through one, and every source file stays.
// docs/SAFETY.md S1
#[test]
fn item_01_a_symlinked_directory_in_the_store_never_leads_back_to_the_source() {
    let ws = Workspace::new();
    let a = ws.write_gz("FGT-NEW/a.log.gz", 200, 1);
    let b = ws.write_gz("FGT-NEW/b.log.gz", 200, 2);
    let before = files_below(&ws.logs());
    std::fs::create_dir_all(ws.archive()).unwrap();
    symlink(ws.logs().join("FGT-NEW"), ws.archive().join("FGT-NEW")).unwrap();
    let out = ws.upload_local(&["--delete"], &[]);
    assert_exit(&out, 1);
    assert!(a.exists() && b.exists(), "deleted: {}", stderr(&out));
    assert_eq!(files_below(&ws.logs()), before, "the source was written to");
    for r in ws.rows() {
        assert_eq!(r.deleted_local, Some(0), "{r:?}");
        assert!(
            r.error
                .as_deref()
                .unwrap_or("")
                .contains("links inside the directory store are never followed"),
            "{r:?}"
        );
    }
    // prune through the link reaches nothing outside the store either.
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute(
        "UPDATE backups SET status = 'uploaded', uploaded_at = '2020-01-01T00:00:00Z', backup_date = '2020-01-01'",
        [],
    )
    .unwrap();
    let out = ws.on_archive("prune", &["--older-than", "400", "--yes"]);
    assert!(
        a.exists() && b.exists(),
        "prune deleted through the link: {}",
        stdout(&out)
    );
}

/// Item 1, the other way in: a hard link to the source file inside the
/// store (same inode) holds "the same bytes", but reading it back reads the
/// very file about to be deleted. No proof may rest on the source itself.
// docs/SAFETY.md S1
#[test]
fn item_01_a_hard_link_to_the_source_in_the_store_proves_nothing() {
    let ws = Workspace::new();
    let a = ws.write_gz("FGT/a.log.gz", 200, 3);
    std::fs::create_dir_all(ws.archive().join("FGT")).unwrap();
    std::fs::hard_link(&a, ws.archive().join("FGT/a.log.gz")).unwrap();
    let out = ws.upload_local(&["--delete"], &[]);
    assert_exit(&out, 1);
    assert!(a.exists(), "deleted: {}", stderr(&out));
    let rows = ws.rows();
    let r = row_for(&rows, "FGT/a.log.gz");
    assert_eq!(r.deleted_local, Some(0));
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("the very file being archived"),
        "{r:?}"
    );
}

/// Makes every row look archived two years ago.
fn age_all_rows(ws: &Workspace) {
    rusqlite::Connection::open(ws.db())
        .unwrap()
        .execute(
            "UPDATE backups SET uploaded_at = '2024-01-01T00:00:00Z', backup_date = '2024-01-01'",
            [],
        )
        .unwrap();
}

/// Item 2: a key archived two years ago was pruned; a new file of the same
/// name was archived today and its local copy deleted. Prune took the age
/// of the key's oldest row and deleted today's object: no copy was left.
/// The age is that of the content actually at the key.
// docs/SAFETY.md S28
#[test]
fn item_02_prune_never_deletes_a_fresh_object_under_a_reused_key() {
    let ws = Workspace::new();
    ws.write_gz("FGT/a.log.gz", 100, 10);
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    age_all_rows(&ws);
    let out = ws.on_archive("prune", &["--older-than", "400", "--yes"]);
    assert_exit(&out, 0);
    let object = ws.archive().join("FGT/a.log.gz");
    assert!(
        !object.exists(),
        "the old object is pruned: {}",
        stdout(&out)
    );

    let fresh = ws.write_gz("FGT/a.log.gz", 100, 11);
    let bytes = std::fs::read(&fresh).unwrap();
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    assert!(!fresh.exists(), "archived today and deleted locally");
    let out = ws.on_archive("prune", &["--older-than", "400", "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read(&object).ok(),
        Some(bytes),
        "today's only copy was pruned: {}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("recent    FGT/a.log.gz"),
        "{}",
        stdout(&out)
    );
}

/// Item 2, the sibling: the object at an old key holds other content than
/// the inventory's row (another writer replaced it). It cannot be tied to
/// an old row, so it is kept and reported, and prune exits 1.
// docs/SAFETY.md S28
#[test]
fn item_02_prune_keeps_and_reports_an_object_it_cannot_tie_to_an_old_row() {
    let ws = Workspace::new();
    ws.write_gz("FGT/a.log.gz", 100, 12);
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    age_all_rows(&ws);
    let object = ws.archive().join("FGT/a.log.gz");
    std::fs::remove_file(&object).unwrap();
    std::fs::remove_file(meta_path(&ws.archive(), "FGT/a.log.gz")).unwrap();
    std::fs::write(&object, b"someone else's only copy").unwrap();
    let out = ws.on_archive("prune", &["--older-than", "400", "--yes"]);
    assert_exit(&out, 1);
    assert_eq!(std::fs::read(&object).unwrap(), b"someone else's only copy");
    assert!(
        stdout(&out).contains("untied    FGT/a.log.gz: the object holds other content"),
        "{}",
        stdout(&out)
    );
}

/// A complete gzip member of `text`: what rsyslog's `veryRobustZip` writes.
fn member(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

/// Item 3: a writer keeps the `.gz` open and writes whole gzip members, so
/// the file passes the gzip proof between writes and, idle longer than
/// `--min-age`, was archived and deleted; the writer's next line went to
/// the unlinked inode. A file some process holds open for writing is left
/// for a later run, and archived (and deleted) once its writer closed it.
// docs/SAFETY.md S5
#[test]
fn item_03_a_file_still_open_for_writing_is_never_deleted() {
    use std::io::Write;
    let ws = Workspace::new();
    let path = ws.write_raw("FGT/a.log.gz", &member(b"first line\n"));
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writer.write_all(&member(b"second line\n")).unwrap();
    set_old_mtime(&path);
    let out = ws.upload_local(&["--delete"], &[]);
    assert_exit(&out, 0);
    writer.write_all(&member(b"third line\n")).unwrap();
    drop(writer);
    let text = stdout(&out);
    assert!(
        text.contains("1 still open for writing by another process left for a later run"),
        "{text}"
    );
    assert!(ws.rows().is_empty(), "nothing archived while it is written");
    let mut all = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap());
    std::io::Read::read_to_end(&mut decoder, &mut all).unwrap();
    assert_eq!(
        all, b"first line\nsecond line\nthird line\n",
        "no line lost"
    );
    set_old_mtime(&path);
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    assert!(
        !path.exists(),
        "archived and deleted once its writer closed it"
    );
}

/// Item 3, at the last moment: the writer opens the file after it was
/// read and uploaded, before the delete. It is kept, and its row says why.
// docs/SAFETY.md S5
#[test]
fn item_03_a_writer_that_opens_the_file_during_the_upload_keeps_it() {
    use common::held::*;
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/a.log.gz", 0);
    let ws = Workspace::new();
    let path = ws.write_gz("a.log.gz", 100, 20);
    let child = start_held(&ws, &proxy, &["--delete"]);
    let writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    drop(writer);
    assert!(path.exists(), "deleted under its writer: {}", stderr(&out));
    let rows = ws.rows();
    let r = row_for(&rows, "a.log.gz");
    assert_eq!(r.status(), "failed_changed", "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("holds it open for writing"),
        "{r:?}"
    );
}

/// Item 8: a server that keeps answering `IsTruncated=true` with the same
/// continuation token made `reindex` page forever (129k requests, 10 GB in
/// 10 minutes), and `verify` and `ls --remote` with it. A repeated token is
/// an error naming the server, at once.
// docs/SAFETY.md S3 S16
#[test]
fn item_08_a_repeated_continuation_token_ends_the_listing_with_an_error() {
    use common::fakes3::*;
    use std::sync::Arc;
    let fake = FakeS3::start(Arc::new(|_r: &Request, n: usize| {
        list_page(&[format!("k{n:06}.gz")], Some("same-token"))
    }));
    let ws = Workspace::new();
    let real = S3Server::start();
    ws.write_gz("a.log.gz", 10, 1);
    assert_exit(&ws.upload(&real, &[]), 0);
    for (command, extra) in [
        ("reindex", vec![]),
        ("verify", vec![]),
        ("ls", vec!["--remote"]),
    ] {
        let before = fake.served();
        let mut args = ws.bucket_args(command, &fake.endpoint(), &extra);
        args.extend(["--retries".into(), "0".into()]);
        let running = common::listeners::Running::spawn(ws.command(&args, &[]));
        let (out, _) = running.finish_within(std::time::Duration::from_secs(20));
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("repeats a continuation token"),
            "{command}: {}",
            stderr(&out)
        );
        assert!(fake.served() - before < 10, "{command} kept paging");
    }
}

/// Item 8: a listing whose every page has a new token never ends by
/// itself; a stop signal ends it, within the grace, exit 1.
// docs/SAFETY.md S16
#[test]
fn item_08_a_stop_signal_ends_an_endless_listing() {
    use common::fakes3::*;
    use std::sync::Arc;
    use std::time::Duration;
    let fake = FakeS3::start(Arc::new(|_r: &Request, n: usize| {
        list_page(&[format!("k{n:09}.gz")], Some(&format!("token-{n}")))
    }));
    let ws = Workspace::new();
    let args = ws.bucket_args("reindex", &fake.endpoint(), &["--retries", "0"]);
    let running = common::listeners::Running::spawn(ws.command(&args, &[]));
    common::listeners::eventually("the listing to page", || fake.served() > 50);
    running.signal(libc::SIGTERM);
    let (out, took) = running.finish_within(Duration::from_secs(10));
    assert_exit(&out, 1);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        stderr(&out).contains("stopped by a signal"),
        "{}",
        stderr(&out)
    );
}

/// Item 16: when listing the prefix took longer than the 10 s it is
/// trusted, every file listed the whole prefix again, under a lock all
/// workers waited on (20,000 files into a bucket of 100,000 objects: one
/// file in 11 minutes). The prefix is listed once per run; after that a
/// file gets a HEAD.
// docs/SAFETY.md S3
#[test]
fn item_16_a_slow_listing_is_taken_once_per_run() {
    use common::held::*;
    use std::time::Duration;
    let server = S3Server::start();
    let proxy = common::proxy::FaultProxy::start_with(
        server.port,
        common::proxy::Options {
            hold: Some(common::proxy::Hold {
                method: "GET",
                target_contains: "max-keys=1000",
                skip: 0,
            }),
            ..Default::default()
        },
    );
    let ws = Workspace::new();
    for i in 0..8 {
        ws.write_gz(&format!("FGT/f{i}.log.gz"), 20, i);
    }
    let child = start_held(&ws, &proxy, &["--workers", "2"]);
    // The listing answers only after it stopped being fresh.
    std::thread::sleep(Duration::from_millis(10_500));
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let listings = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.contains("max-keys=1000"))
        .count();
    assert_eq!(listings, 1, "the prefix was listed again per file");
    assert_eq!(ws.rows().len(), 8);
}

/// Starts `fgbackup ARGS` through `sh -c 'wait for GO; exec fgbackup'`, so
/// its process id (the shell's, kept across `exec`) is known before it
/// runs: what an attacker who plants links at pid-named files relies on.
fn spawn_with_known_pid(ws: &Workspace, args: &[String], go: &Path) -> std::process::Child {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(r#"while [ ! -e "$GO" ]; do sleep 0.01; done; exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_fgbackup"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ws.home())
        .env("RUST_LOG", "info")
        .env("GO", go)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// Items 10 and 11: the metrics textfile's temporary name
/// (`fgbackup.prom.<pid>.tmp`) and doctor's probe files
/// (`.fgbackup-doctor-<pid>` in `--dir` and beside the database) were
/// predictable and written with calls that follow links: a link planted
/// there made fgbackup overwrite any file it can write (the inventory
/// included). Temporary and probe files get names no one can predict and
/// are created with `O_EXCL | O_NOFOLLOW`.
// docs/SAFETY.md S14
#[test]
fn item_10_11_links_planted_at_predictable_names_are_never_written_through() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    let victim = ws.tmp.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let prom_dir = ws.tmp.path().join("prom");
    std::fs::create_dir(&prom_dir).unwrap();
    let prom = prom_dir.join("fgbackup.prom");
    let go = ws.tmp.path().join("go");

    // The textfile, after an upload run.
    let mut args = ws.local_upload_args(&["--metrics-textfile"]);
    args.push(prom.display().to_string());
    let child = spawn_with_known_pid(&ws, &args, &go);
    symlink(
        &victim,
        prom_dir.join(format!("fgbackup.prom.{}.tmp", child.id())),
    )
    .unwrap();
    std::fs::write(&go, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "written through the link"
    );
    assert!(
        std::fs::read_to_string(&prom)
            .unwrap()
            .contains("fgbackup_run_success 1")
    );
    std::fs::remove_file(&go).unwrap();

    // doctor's probes, in --dir (with --delete) and beside a database to come.
    let db_dir = ws.tmp.path().join("newdb");
    std::fs::create_dir(&db_dir).unwrap();
    let args: Vec<String> = [
        "doctor",
        "--dir",
        ws.logs().to_str().unwrap(),
        "--dest",
        &format!("file://{}", ws.archive().display()),
        "--db",
        db_dir.join("inventory.db").to_str().unwrap(),
        "--delete",
    ]
    .map(String::from)
    .to_vec();
    let child = spawn_with_known_pid(&ws, &args, &go);
    let probe = format!(".fgbackup-doctor-{}", child.id());
    symlink(&victim, ws.logs().join(&probe)).unwrap();
    symlink(&victim, db_dir.join(&probe)).unwrap();
    std::fs::write(&go, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("writable: --delete can remove archived files"),
        "{}",
        stdout(&out)
    );
}

/// Item 12, the siblings: the flag file and the run lock were opened with
/// calls that follow a link at their name (creating or touching whatever it
/// points at). A link there is refused, with a line naming it.
// docs/SAFETY.md S14
#[test]
fn item_12_links_at_the_flag_file_and_the_lock_are_refused() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    let victim = ws.tmp.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    set_old_mtime(&victim);
    let mtime = std::fs::metadata(&victim).unwrap().modified().unwrap();
    let flag = ws.tmp.path().join("flag");
    symlink(&victim, &flag).unwrap();
    let out = ws.upload_local(&["--flag-file", flag.to_str().unwrap()], &[]);
    assert_eq!(
        std::fs::metadata(&victim).unwrap().modified().unwrap(),
        mtime,
        "touched through the link"
    );
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );

    let created = ws.tmp.path().join("created-through-the-lock");
    let mut lock = ws.db().into_os_string();
    lock.push(".lock");
    let _ = std::fs::remove_file(&lock);
    symlink(&created, &lock).unwrap();
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 1);
    assert!(!created.exists(), "the lock's link was followed");
    assert!(
        stderr(&out).contains("it is a symbolic link"),
        "{}",
        stderr(&out)
    );
}

/// Item 15: a private manifest key readable by everyone (`0644`) signed
/// without complaint, and `doctor` said nothing. Whoever reads it can sign
/// a forged chain. It is refused, as ssh refuses such a key, with one line
/// saying how to fix it; `doctor` reports it too.
#[test]
fn item_15_a_private_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    let key = ws.tmp.path().join("m.key");
    assert_exit(&ws.run(&["keygen", "--key", key.to_str().unwrap()], &[]), 0);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ws.upload_local(&["--manifest-key", key.to_str().unwrap()], &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("mode 0644") && err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );
    assert!(!ws.db().exists(), "nothing ran");
    let args: Vec<String> = vec![
        "doctor".into(),
        "--dir".into(),
        ws.logs().display().to_string(),
        "--dest".into(),
        format!("file://{}", ws.archive().display()),
        "--db".into(),
        ws.db().display().to_string(),
        "--manifest-key".into(),
        key.display().to_string(),
    ];
    let out = ws.run(&args, &[]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("chmod 600"), "{}", stdout(&out));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_exit(
        &ws.upload_local(&["--manifest-key", key.to_str().unwrap()], &[]),
        0,
    );
}

/// Item 14: one planted key that cannot be a path below `--to` (`/abs.gz`,
/// reindexed from a bucket someone else writes) made `restore` refuse
/// everything: 0 of 2 good files. The bad key is refused alone, named, and
/// the exit status is 1; the good files come back.
#[test]
fn item_14_one_bad_key_does_not_block_the_restore() {
    let ws = Workspace::new();
    ws.write_gz("FGT/a.log.gz", 50, 1);
    ws.write_gz("FGT/b.log.gz", 50, 2);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    rusqlite::Connection::open(ws.db())
        .unwrap()
        .execute(
            "INSERT INTO backups (filename, sha256, uploaded_at, backup_date, status, object_key, size_bytes)
             VALUES ('abs.gz', ?1, '2026-11-01T00:00:00Z', '2026-11-01', 'reindexed', '/abs.gz', 3)",
            ["ab".repeat(32)],
        )
        .unwrap();
    let to = ws.tmp.path().join("restored");
    let out = ws.on_archive("restore", &["--to", to.to_str().unwrap()]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("refused /abs.gz: not a plain relative path"),
        "{text}"
    );
    assert!(text.contains("2 restored"), "{text}");
    for name in ["a.log.gz", "b.log.gz"] {
        assert_eq!(
            sha256_file(&to.join("FGT").join(name)),
            sha256_file(&ws.logs().join("FGT").join(name))
        );
    }
}

/// Item 13: a file name holding a newline and a fake line printed a forged
/// line in `verify`, `ls`, `inventory` (and reached emails), although
/// README promises control characters are escaped in every line printed.
// docs/SAFETY.md S15
#[test]
fn item_13_a_name_with_a_newline_forges_no_line_anywhere() {
    use common::listeners::SmtpServer;
    let ws = Workspace::new();
    let pki = ws.tmp.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    common::pki::make_pki(&pki);
    let smtp = SmtpServer::start("smtps", Some(&pki), "ops@example.org", "pw-for-tests");
    let forged = "250 ok forged.gz";
    let name = format!("x\n{forged}\n.log.gz");
    let f = ws.write_gz(&name, 50, 1);
    // Truncated, so the run fails and mails the file's problem line.
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..data.len() / 2]).unwrap();
    set_old_mtime(&f);
    let port = smtp.port.to_string();
    let ca = pki.join("ca.pem");
    let upload = ws.upload_local(
        &["--ca-file", ca.to_str().unwrap(), "--gzip-check", "always"],
        &[
            ("NOTIFY_EMAIL", "noc@example.org"),
            ("EMAIL_METHOD", "smtps"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("GMAIL_USER", "ops@example.org"),
            ("GMAIL_APP_PASSWORD", "pw-for-tests"),
        ],
    );
    assert_exit(&upload, 1);
    // The archived object goes missing: verify names it.
    std::fs::remove_file(ws.archive().join(&name)).unwrap();
    let verify = ws.on_archive("verify", &[]);
    let ls = ws.run(&["ls", "--db", ws.db().to_str().unwrap()], &[]);
    let inventory = ws.run(&["inventory", "--db", ws.db().to_str().unwrap()], &[]);
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{}", stderr(&upload));
    let mail = msgs[0]["data"].as_str().unwrap().replace("\r\n", "\n");
    for (what, text) in [
        ("upload", format!("{}{}", stdout(&upload), stderr(&upload))),
        ("verify", format!("{}{}", stdout(&verify), stderr(&verify))),
        ("ls", stdout(&ls)),
        ("inventory", stdout(&inventory)),
        ("email", mail),
    ] {
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with(forged)),
            "{what} printed a forged line:\n{text}"
        );
        assert!(
            text.contains("\\n250 ok forged.gz"),
            "{what} does not name the file:\n{text}"
        );
    }
}

/// Item 19: from the 6th PUT on the server answered `400 ExpiredToken`;
/// the run tried every remaining file (36 failed rows, 36 error lines).
/// A few refusals of the credentials in a row stop the run with one line
/// naming them; the files not tried stay in place.
// docs/SAFETY.md S18
#[test]
fn item_19_expired_credentials_stop_the_run_after_a_few_files() {
    use common::proxy::{FailAfter, FaultProxy, Options};
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            fail_after: Some(FailAfter {
                method: "PUT",
                // The archives' PUTs, not their index sidecars' (_index/).
                target_contains: "/fg-logs/FGT/",
                after: 5,
                status: 400,
                code: "ExpiredToken",
            }),
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let files: Vec<_> = (0..40)
        .map(|i| ws.write_gz(&format!("FGT/f{i:02}.log.gz"), 20, i))
        .collect();
    let out = ws.upload_to(&proxy.endpoint(), &["--delete", "--workers", "2"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("refuses the credentials") && err.contains("have expired"),
        "{err}"
    );
    assert!(err.contains("AWS_SESSION_TOKEN"), "{err}");
    // Three in a row trip it; with two workers a few more are in flight.
    let refused = proxy.injected.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        refused <= 8,
        "{refused} of 35 PUTs refused: the run went on"
    );
    let failed = ws
        .rows()
        .iter()
        .filter(|r| r.status() == "failed_upload")
        .count();
    assert!(failed <= 8, "{failed} failed rows");
    let kept = files.iter().filter(|f| f.exists()).count();
    assert_eq!(
        kept,
        40 - 5,
        "the 5 archived files go, every other file stays"
    );
}

/// Item 20: SIGHUP killed the daemon silently (exit 129, no log line, the
/// API and the schedule gone, a cycle cut off like `kill -9`). It is
/// `systemctl reload`: the token file is read again, the daemon goes on and
/// says so; SIGTERM still ends it cleanly. A one-shot command takes SIGHUP
/// (its terminal went away) as a stop: rows and summary are written.
#[test]
fn item_20_sighup_reloads_a_daemon_and_stops_an_upload_cleanly() {
    use common::api::{Api, TOKEN};
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    let mut api = Api::daemon(
        &ws,
        &ws.local_upload_args(&[]),
        "1h",
        &[("APP_TOKENS", TOKEN)],
    );
    common::listeners::eventually("the first cycle", || {
        ws.db().exists()
            && rusqlite::Connection::open(ws.db())
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM backups", [], |r| r.get::<_, i64>(0))
                })
                .is_ok_and(|n| n > 0)
    });
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(api.pid() as i32, libc::SIGHUP) };
    common::listeners::eventually("the reload line", || !api.log_lines("SIGHUP").is_empty());
    api.assert_alive();
    assert_eq!(api.health_status(), Some(200));
    let (code, log) = api.terminate();
    assert_eq!(code, Some(0), "{log:#?}");

    // An upload that gets SIGHUP mid-run: a clean stop, not exit 129.
    use common::held::*;
    let server = S3Server::start();
    let proxy = holding(&server, "PUT", "/fg-logs/b.log.gz", 0);
    ws.write_gz("b.log.gz", 10, 2);
    let child = start_held(&ws, &proxy, &[]);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    proxy.gate.open();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("interrupted by a stop signal"),
        "{}",
        stdout(&out)
    );
    assert_eq!(ws.runs().last().unwrap().0, "interrupted");
}

/// Item 21: `/health` waited behind heavy queries (16 parallel `/stats` on
/// 500k rows: 4.0 s) because one pool of workers answered everything. Here
/// the queries are made slow for certain: each asks for 1000 large rows and
/// never reads the answer, so a worker writing it stays blocked. Probes
/// have their own lane and are answered at once; a query past the queue's
/// bound is refused at once (503), never queued without end.
// docs/SAFETY.md S23
#[test]
fn item_21_health_never_waits_behind_heavy_queries() {
    use common::api::{Api, TOKEN};
    use std::io::Write;
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let mut conn = rusqlite::Connection::open(ws.db()).unwrap();
    let tx = conn.transaction().unwrap();
    let big = "x".repeat(32 * 1024);
    for i in 0..1000 {
        tx.execute(
            "INSERT INTO backups (filename, status, object_key, error, uploaded_at, backup_date)
             VALUES ('f.gz', 'failed_upload', ?1, ?2, '2026-11-01T00:00:00Z', '2026-11-01')",
            rusqlite::params![format!("big/{i}.gz"), big],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(conn);
    let db = ws.db().display().to_string();
    let mut api = Api::start(
        &ws,
        &["serve", "--db", &db, "--threads", "2"],
        &[("APP_TOKENS", TOKEN)],
    );
    // More such readers than workers and queue: every query worker is stuck
    // writing, the queue fills up, and the queries past it are refused.
    let mut stuck = Vec::new();
    for _ in 0..20 {
        let mut s = common::rawhttp::connect(api.addr()).unwrap();
        write!(
            s,
            "GET /backups?limit=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        stuck.push(s);
    }
    common::listeners::eventually("a query refused at once (the queue is bounded)", || {
        stuck.iter_mut().any(|s| {
            let mut head = [0u8; 12];
            std::io::Read::read(s, &mut head).is_ok_and(|n| head[..n].starts_with(b"HTTP/1.1 503"))
        })
    });
    let t0 = std::time::Instant::now();
    assert_eq!(
        api.health_status(),
        Some(200),
        "/health queued behind the queries"
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t0.elapsed()
    );
    api.assert_alive();
    drop(stuck);
}

/// Item 18: `ls` held every row of the inventory (218 MiB for 500k rows,
/// `--device` filtered in memory), so a 1 GB collector could not list its
/// own archive. It streams: memory does not grow with the rows (here
/// 300,000 keys; GNU time measures the peak).
#[test]
fn item_18_ls_memory_does_not_grow_with_the_inventory() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let mut conn = rusqlite::Connection::open(ws.db()).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO backups (filename, sha256, uploaded_at, backup_date, status, object_key, size_bytes, s3_url)
                 VALUES ('f.log.gz', ?1, '2026-01-01T00:00:00Z', '2026-01-01', 'uploaded', ?2, 1000, ?3)",
            )
            .unwrap();
        let sha = "ab".repeat(32);
        for i in 0..300_000 {
            let key = format!("FGT{:02}/FGT{:02}-2026-01-01T{i:07}.log.gz", i % 40, i % 40);
            insert
                .execute(rusqlite::params![sha, key, format!("s3://bucket/{key}")])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(conn);
    let report = ws.tmp.path().join("time");
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_fgbackup"))
        .args(["ls", "--db", ws.db().to_str().unwrap(), "--device", "FGT07"])
        .env_clear()
        .env("HOME", ws.home())
        .output()
        .expect("GNU time (scripts/test.sh installs it)");
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("7500 file(s)"),
        "{}",
        text.lines().last().unwrap_or("")
    );
    let kib: u64 = std::fs::read_to_string(&report)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(kib < 40 * 1024, "ls of 300,000 rows peaked at {kib} KiB");
}

/// Item 19, found again by a second look: S3 answers a HEAD signed with
/// expired credentials with a bare 400 (a HEAD has no body), which was not
/// counted as a refusal, so a run whose files all get a HEAD first tried
/// every one. Three in a row stop it too.
// docs/SAFETY.md S18
#[test]
fn item_19_bare_400_answers_to_heads_stop_the_run_too() {
    use common::fakes3::*;
    use std::sync::Arc;
    let fake = FakeS3::start(Arc::new(|r: &Request, _n: usize| {
        if r.method == "GET"
            && (r.target.contains("max-keys=1&") || r.target.ends_with("max-keys=1"))
        {
            return list_page(&[], None);
        }
        Answer::new(
            400,
            "<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>",
        )
    }));
    let ws = Workspace::new();
    for i in 0..20 {
        ws.write_gz(&format!("FGT/f{i:02}.log.gz"), 20, i);
    }
    let out = ws.upload_to(&fake.endpoint(), &["--workers", "1"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("refuses the credentials"), "{err}");
    let failed = ws
        .rows()
        .iter()
        .filter(|r| r.status().starts_with("failed"))
        .count();
    assert!(failed <= 4, "{failed} of 20 files tried: {err}");
}

/// Item 18, found again by a second look: `verify` held every problem line
/// (about 1.2 KB each: 516 MB for 428k objects missing, an inventory
/// checked against an empty or wrong bucket) and wrote each finding with
/// its own fsync. It keeps only what notifications and `--json` show, and
/// writes findings in batches.
#[test]
fn item_18_verify_memory_does_not_grow_with_its_findings() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let n = 60_000;
    let mut conn = rusqlite::Connection::open(ws.db()).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO backups (filename, sha256, uploaded_at, backup_date, status, object_key, size_bytes)
                 VALUES ('f.log.gz', ?1, '2026-01-01T00:00:00Z', '2026-01-01', 'uploaded', ?2, 1000)",
            )
            .unwrap();
        for i in 0..n {
            insert
                .execute(rusqlite::params![
                    "ab".repeat(32),
                    format!("gone/FGT-{i:06}.log.gz")
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(conn);
    let report = ws.tmp.path().join("time");
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_fgbackup"))
        .args(["verify", "--dest"])
        .arg(format!("file://{}", ws.archive().display()))
        .args(["--db", ws.db().to_str().unwrap(), "--sample", "1", "--json"])
        .env_clear()
        .env("HOME", ws.home())
        .output()
        .expect("GNU time (scripts/test.sh installs it)");
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["counts"]["missing"], n);
    assert_eq!(json["problems_omitted"], n - 1000);
    let kib: u64 = std::fs::read_to_string(&report)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        kib < 40 * 1024,
        "verify with {n} findings peaked at {kib} KiB"
    );
    let recorded: i64 = rusqlite::Connection::open(ws.db())
        .unwrap()
        .query_row("SELECT count(*) FROM verification_findings", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(recorded, n, "every finding is recorded");
}

/// Item 3, found again by a second look: in a PID namespace of its own (a
/// container) without CAP_LEASE and not the files' owner, the lease is
/// refused and the `/proc` scan sees no writer outside the namespace: it
/// said "nobody writes" and the file was deleted under its writer without
/// a word. Such a scan cannot tell, and the run says so.
// docs/SAFETY.md S5
#[test]
fn item_03_a_scan_inside_a_pid_namespace_cannot_tell_and_says_so() {
    use std::os::unix::fs::chown;
    let ws = Workspace::new();
    let path = ws.write_gz("FGT/a.log.gz", 50, 1);
    chown(&path, Some(1000), Some(1000)).unwrap();
    let writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let mut args = vec![
        "-p".to_string(),
        "-f".into(),
        "--mount-proc".into(),
        "setpriv".into(),
        "--bounding-set".into(),
        "-lease".into(),
        env!("CARGO_BIN_EXE_fgbackup").into(),
    ];
    args.extend(ws.local_upload_args(&["--delete"]));
    let out = std::process::Command::new("unshare")
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ws.home())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    drop(writer);
    let err = stderr(&out);
    assert!(
        err.contains("cannot tell whether another process still writes")
            && err.contains("PID namespace of its own"),
        "no word that writers cannot be seen: {err}"
    );
}

/// Runs `fgbackup ARGS` in a new mount namespace after `setup` (a shell
/// line mounting things), as root (`unshare -m`).
fn in_mount_namespace(ws: &Workspace, setup: &str, args: &[String]) -> std::process::Output {
    std::process::Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(format!("{setup} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_fgbackup"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ws.home())
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

/// Item 1, found again by a second look: `--dir` an overlay mount whose
/// upper layer lies inside the store shows each file with another device
/// number than the store's copy of it, so the dev/inode comparison missed
/// that the "archived copy" was the file itself: all deleted, no copy. The
/// same inode, size and times to the nanosecond are the same file.
// docs/SAFETY.md S1
#[test]
fn item_01_an_overlay_of_the_store_as_dir_proves_nothing() {
    let ws = Workspace::new();
    let t = ws.tmp.path();
    for d in ["lower", "archive/p", "work", "ov"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    let generated = t.join("gen");
    ws.write_gz("x.log.gz", 100, 1);
    std::fs::create_dir(&generated).unwrap();
    std::fs::rename(ws.logs().join("x.log.gz"), generated.join("x.log.gz")).unwrap();
    let args: Vec<String> = vec![
        "upload".into(),
        "--dir".into(),
        t.join("ov").display().to_string(),
        "--dest".into(),
        format!("file://{}", ws.archive().display()),
        "--prefix".into(),
        "p".into(),
        "--db".into(),
        ws.db().display().to_string(),
        "--min-age".into(),
        "0".into(),
        "--delete".into(),
    ];
    let setup = format!(
        "mount -t overlay overlay -o lowerdir={0}/lower,upperdir={0}/archive/p,workdir={0}/work {0}/ov && cp -a {0}/gen/. {0}/ov/",
        t.display()
    );
    let out = in_mount_namespace(&ws, &setup, &args);
    let left: Vec<_> = std::fs::read_dir(ws.archive().join("p")).unwrap().collect();
    assert_eq!(left.len(), 1, "the only copy was deleted: {}", stderr(&out));
    assert!(
        stderr(&out).contains("the very file being archived"),
        "{}",
        stderr(&out)
    );
}

/// Item 1 and the overlap rule, found again by a second look: the store
/// bind-mounted below `--dir` passed the start-up check (paths only), so
/// its objects were archived again under new keys and deleted from the
/// archive, whose rows then said `uploaded` for objects gone. The scan
/// never enters a directory store.
// docs/SAFETY.md S1
#[test]
fn item_01_the_store_mounted_inside_dir_is_never_scanned() {
    let ws = Workspace::new();
    ws.write_gz("FGT/a.log.gz", 100, 1);
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    std::fs::create_dir(ws.logs().join("mnt")).unwrap();
    let args = ws.local_upload_args(&["--delete"]);
    let setup = format!(
        "mount --bind {} {}",
        ws.archive().display(),
        ws.logs().join("mnt").display()
    );
    let out = in_mount_namespace(&ws, &setup, &args);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("it is a directory store"),
        "{}",
        stderr(&out)
    );
    assert!(
        ws.archive().join("FGT/a.log.gz").exists(),
        "deleted from the archive"
    );
    assert_exit(&ws.on_archive("verify", &[]), 0);
}

/// Item 4, found again by a second look: the check that every manifest
/// this inventory wrote is still there ran only for the host directories
/// the listing found, so removing a whole host's chain went unreported.
// docs/SAFETY.md S27
#[test]
fn item_04_a_whole_host_chain_removed_is_reported() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let key = ws.manifest_key();
    for (i, host) in ["host-a", "host-b"].iter().enumerate() {
        ws.write_gz(&format!("FGT/{host}.log.gz"), 20, i as u64);
        let args = ws.s3_upload_args(&server.endpoint(), &["--manifest-key", &key]);
        let out = std::process::Command::new("unshare")
            .args(["-u", "sh", "-c"])
            .arg(format!("hostname {host} && exec \"$@\""))
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_fgbackup"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", ws.home())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .output()
            .unwrap();
        assert_exit(&out, 0);
    }
    std::fs::remove_dir_all(server.object_path(BUCKET, "_manifests/host-a")).unwrap();
    let out = ws.on_bucket(
        "verify",
        &server.endpoint(),
        &["--manifests", "--public-key", &format!("{key}.pub")],
    );
    assert_exit(&out, 1);
    assert!(
        stdout(&out)
            .contains("_manifests/host-a/: the 1 manifest(s) this inventory wrote for this host"),
        "{}",
        stdout(&out)
    );
}

/// A sibling of item 8: verify merges the listing with the inventory in
/// key order, so a server that lists keys out of order would turn present
/// objects into "missing" and "extra". It is an error naming the keys.
// docs/SAFETY.md S3
#[test]
fn item_08_a_listing_out_of_order_is_an_error_not_findings() {
    use common::fakes3::*;
    use std::sync::Arc;
    let ws = Workspace::new();
    let real = S3Server::start();
    ws.write_gz("a.log.gz", 10, 1);
    ws.write_gz("b.log.gz", 10, 2);
    assert_exit(&ws.upload(&real, &[]), 0);
    let fake = FakeS3::start(Arc::new(|_r: &Request, _n: usize| {
        list_page(&["b.log.gz".to_string(), "a.log.gz".to_string()], None)
    }));
    let out = ws.on_bucket("verify", &fake.endpoint(), &["--sample", "1"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("lists keys out of order"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("missing"), "{}", stdout(&out));
}

/// Item 21, found again by a second look: the probe lane wrote `/health`
/// answers itself, so clients pipelining probes without reading (as many
/// as `--threads`) kept every probe worker waiting on a full socket buffer
/// for the write timeout, and a real probe waited 10 to 20 s. A probe's
/// answer closes its connection: one answer per connection, no wait.
// docs/SAFETY.md S23
#[test]
fn item_21_pipelined_probes_that_are_never_read_do_not_stall_health() {
    use common::api::{Api, TOKEN};
    use common::rawhttp::{self, End};
    use std::io::Write;
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 1);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let db = ws.db().display().to_string();
    let api = Api::start(
        &ws,
        &["serve", "--db", &db, "--threads", "2"],
        &[("APP_TOKENS", TOKEN)],
    );
    let mut s = rawhttp::connect(api.addr()).unwrap();
    s.write_all(
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            .repeat(50)
            .as_bytes(),
    )
    .unwrap();
    let (text, end) = rawhttp::read_until_close(
        &mut s,
        std::time::Instant::now() + std::time::Duration::from_secs(5),
    );
    assert_eq!(rawhttp::statuses(&text), vec![200], "{text}");
    assert!(
        matches!(end, End::Closed),
        "the connection stays open: {end:?}"
    );
}

/// Found by a second look at item 18's paging: the pages under a prefix
/// stopped at the prefix followed by U+10FFFF, so a key with that character
/// right after the prefix was never expected: its object deleted, `verify
/// --prefix` said ok, and no manifest listed it.
// docs/SAFETY.md S24
#[test]
fn item_18_every_key_under_a_prefix_is_paged_whatever_follows_it() {
    let ws = Workspace::new();
    let odd = "\u{10FFFF}.log.gz";
    ws.write_gz(odd, 20, 1);
    ws.write_gz("a.log.gz", 20, 2);
    assert_exit(&ws.upload_local(&["--prefix", "site"], &[]), 0);
    std::fs::remove_file(ws.archive().join("site").join(odd)).unwrap();
    let out = ws.on_archive("verify", &["--prefix", "site"]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("1 missing"), "{}", stdout(&out));
}

/// Found by a second look at item 2: rows of the Python suite carry no
/// size, so prune could never tie their objects ("untied", exit 1 on every
/// run): retention was never enforced on a migrated archive. The hash ties
/// them alone.
#[test]
fn item_02_prune_ties_the_suites_rows_by_their_hash() {
    let ws = Workspace::new();
    ws.write_gz("FGT/old.log.gz", 50, 1);
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    rusqlite::Connection::open(ws.db())
        .unwrap()
        .execute(
            "UPDATE backups SET size_bytes = NULL, uploaded_at = '2024-01-01T00:00:00Z', backup_date = '2024-01-01'",
            [],
        )
        .unwrap();
    let out = ws.on_archive("prune", &["--older-than", "400", "--yes"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("pruned    FGT/old.log.gz"),
        "{}",
        stdout(&out)
    );
    assert!(!ws.archive().join("FGT/old.log.gz").exists());
}
