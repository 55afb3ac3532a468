//! `fgbackup grep` against a real S3 server (s3s-fs): the lines it prints
//! are exactly those a plain read of every archive and a filter written
//! here give (the index may narrow, never lose), and an archive altered in
//! the store gives an error, never lines.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::Stdio;

use crate::common::*;
use crate::content::{DAY0, Line, model, write_log, ymd};

/// `KEY:LINE` of every line of `files` that `keep` accepts: the reference
/// answer, over all archives, from the model's texts.
fn reference(
    files: &[(String, Vec<Line>)],
    keep: impl Fn(&Line, &str) -> bool,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (rel, lines) in files {
        for (n, l) in lines.iter().enumerate() {
            let text = l.text(n);
            if keep(l, &text) {
                out.insert(format!("{rel}:{text}"));
            }
        }
    }
    out
}

fn grep(
    ws: &Workspace,
    server: &S3Server,
    args: &[&str],
) -> (BTreeSet<String>, std::process::Output) {
    let out = ws.on_bucket("grep", &server.endpoint(), args);
    let lines = stdout(&out).lines().map(str::to_string).collect();
    (lines, out)
}

/// Archives in two states: indexed at upload (--delete), and copied
/// without an index. For random addresses and
/// strings, with device and time filters, grep prints exactly the
/// reference lines, and the index leaves out some archives on the way.
// docs/SAFETY.md S32
#[test]
fn grep_prints_exactly_what_reading_every_archive_finds() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let files = model(11, 3, 6, 120);
    let copied = |i: usize| i % 6 == 5;
    for (i, (rel, lines)) in files.iter().enumerate() {
        if !copied(i) {
            write_log(&ws, rel, lines);
        }
    }
    assert_exit(&ws.upload(&server, &["--delete"]), 0);
    // Every sixth archive goes up later in copy mode: no index.
    for (i, (rel, lines)) in files.iter().enumerate() {
        if copied(i) {
            write_log(&ws, rel, lines);
        }
    }
    assert_exit(&ws.upload(&server, &[]), 0);

    let mut x: u64 = 0x5eed;
    let mut pick = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut left_out = 0;
    for round in 0..6 {
        let (rel_i, line_i) = (pick(files.len()), pick(120));
        let l = &files[rel_i].1[line_i];
        let ip = if round % 2 == 0 {
            l.srcip.clone()
        } else {
            l.dstip.clone()
        };
        let (got, out) = grep(&ws, &server, &["-F", "traffic", "--ip", &ip]);
        let want = reference(&files, |m, _| m.srcip == ip || m.dstip == ip);
        assert!(!want.is_empty());
        assert_eq!(got, want, "--ip {ip}: {}", stderr(&out));
        assert_exit(&out, 0);
        left_out += summary_number(&out, "left out by the content index");

        let dev = format!("FGT-{}", pick(3));
        let (a, b) = (pick(6) as i64, pick(6) as i64);
        let (since, until) = (ymd(DAY0 + a.min(b) * 86_400), ymd(DAY0 + a.max(b) * 86_400));
        let needle = format!("n={}", pick(120));
        let (got, out) = grep(
            &ws,
            &server,
            &[
                "-F", &needle, "--device", &dev, "--since", &since, "--until", &until,
            ],
        );
        let want = reference(&files, |m, text| {
            text.contains(&needle) && m.device == dev && ymd(m.at) >= since && ymd(m.at) <= until
        });
        assert_eq!(
            got,
            want,
            "{needle} {dev} {since}..{until}: {}",
            stderr(&out)
        );
        left_out += summary_number(&out, "left out by the content index");
    }
    assert!(
        left_out > 0,
        "the index left no archive out: it did not narrow"
    );

    // A regex, and an address no line holds in srcip/dstip (the urls'
    // srcip=6.6.6.6 does not count): nothing, exit 1.
    let (got, _) = grep(
        &ws,
        &server,
        &["action=\"(deny|close)\" n=1[0-9]\\b", "--device", "FGT-2"],
    );
    let re = |t: &str| {
        (t.contains("action=\"deny\"") || t.contains("action=\"close\""))
            && t.split(' ').any(|w| w.len() == 4 && w.starts_with("n=1"))
    };
    assert_eq!(got, reference(&files, |m, t| m.device == "FGT-2" && re(t)));
    let (got, out) = grep(&ws, &server, &["6.6.6.6", "--ip", "6.6.6.6"]);
    assert!(got.is_empty());
    assert_exit(&out, 1);
}

/// The number before `what` in grep's last line.
fn summary_number(out: &std::process::Output, what: &str) -> u64 {
    let err = stderr(out);
    let line = err
        .lines()
        .rfind(|l| l.contains(what))
        .unwrap_or_else(|| panic!("{err}"));
    let before = &line[..line.find(what).unwrap()];
    before
        .trim_end()
        .rsplit(['(', ' '])
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// An archive whose bytes changed in the store is an error line and none
/// of its lines, though they match; the others still print; exit 1.
// docs/SAFETY.md S31
#[test]
fn an_altered_archive_is_an_error_never_lines() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let files = model(13, 1, 3, 50);
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload(&server, &["--delete"]), 0);
    // Same length, other bytes: a gzip of other lines, padded.
    let victim = &files[1].0;
    let path = server.object_path(BUCKET, victim);
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    let mut forged = files[1].1.clone();
    forged[0].srcip = "10.66.66.66".into();
    let other = Workspace::new();
    write_log(&other, "x.gz", &forged);
    let mut bytes = std::fs::read(other.logs().join("x.gz")).unwrap();
    bytes.resize(size, 0);
    std::fs::write(&path, &bytes).unwrap();

    let (got, out) = grep(&ws, &server, &["-F", "traffic"]);
    assert_exit(&out, 1);
    assert!(
        got.iter().all(|l| !l.starts_with(victim.as_str())),
        "printed lines of the altered archive"
    );
    let want = reference(&files, |_, _| true);
    let others: BTreeSet<String> = want
        .into_iter()
        .filter(|l| !l.starts_with(victim.as_str()))
        .collect();
    assert_eq!(got, others);
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l.contains(victim.as_str())
            && l.contains("altered")
            && l.contains("none of its lines")),
        "{err}"
    );
}

/// -c and --json and --max-count; a pattern after --; `| head -1` ends it
/// early and quietly.
#[test]
fn counts_json_max_count_and_a_closed_pipe() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let files = model(17, 1, 2, 300);
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload(&server, &["--delete"]), 0);

    let (got, _) = grep(&ws, &server, &["-c", "-F", "action=\"deny\""]);
    let want: BTreeSet<String> = files
        .iter()
        .map(|(rel, lines)| {
            format!(
                "{rel}:{}",
                lines.iter().filter(|l| l.action == "deny").count()
            )
        })
        .collect();
    assert_eq!(got, want);

    let (got, _) = grep(&ws, &server, &["--json", "-m", "2", "--", "-0300"]);
    assert_eq!(got.len(), 4, "two lines of each archive: {got:?}");
    for l in &got {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["line"].as_str().unwrap().contains("-0300"));
        assert!(files.iter().any(|(rel, _)| v["key"] == rel.as_str()));
    }

    // A store that cannot be reached is one line, not one per archive.
    let gone = ws.run(
        &[
            "grep",
            "x",
            "--dest",
            "file:///nonexistent-store",
            "--db",
            &ws.db().display().to_string(),
        ],
        &[],
    );
    assert_ne!(gone.status.code(), Some(0));
    assert_eq!(stderr(&gone).trim().lines().count(), 1, "{}", stderr(&gone));

    let bad = ws.on_bucket("grep", &server.endpoint(), &["a(b"]);
    assert_exit(&bad, 2);
    assert!(
        stderr(&bad).contains("is not a regular expression"),
        "{}",
        stderr(&bad)
    );

    let mut child = ws
        .command(
            &ws.bucket_args("grep", &server.endpoint(), &["-F", "traffic"]),
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.code().is_some(), "ended by a signal: {status:?}");
}

/// Archives the scanner cannot read a line of (JSON format, plain syslog)
/// have no facet, yet without a filter every line matches: grep reads them
/// and search lists them; a line of 70 KB is indexed whole, so a field
/// after its long message still narrows right (hostile review of issue 21).
#[test]
fn lines_the_index_cannot_read_are_still_found() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let plain =
        "Dec 22 14:15:18 fg200d plain text SECRET\n{\"date\":\"2026-03-03\",\"msg\":\"SECRET\"}\n";
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, plain.as_bytes()).unwrap();
    ws.write_raw("plain.log.gz", &e.finish().unwrap());
    let long = format!(
        "date=2026-03-03 time=10:00:00 devname=\"A\" devid=\"FG1\" tz=\"+0000\" msg=\"{}\" type=\"traffic\" vd=\"root\" srcip=10.0.0.7 dstip=10.0.0.8 action=\"deny\" SECRET\n",
        "x".repeat(70_000)
    );
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, long.as_bytes()).unwrap();
    ws.write_raw("long.log.gz", &e.finish().unwrap());
    assert_exit(&ws.upload(&server, &["--delete"]), 0);

    let (got, out) = grep(&ws, &server, &["SECRET"]);
    assert_eq!(got.len(), 3, "{got:?} {}", stderr(&out));
    let (got, _) = grep(
        &ws,
        &server,
        &["SECRET", "--action", "deny", "--ip", "10.0.0.7"],
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got.iter().all(|l| l.starts_with("long.log.gz:")));

    let listed = ws.run(
        &["search", "--db", &ws.db().display().to_string(), "--json"],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v["matched"], 2, "{v}");
}

/// A stop signal ends grep even while its reader stopped reading (the
/// process sits in a write to a full pipe).
#[test]
fn a_stop_signal_ends_grep_blocked_on_its_output() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let files = model(19, 1, 2, 2000);
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload(&server, &["--delete"]), 0);
    let mut child = ws
        .command(
            &ws.bucket_args("grep", &server.endpoint(), &["-F", "traffic"]),
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the pipe (64 KiB) holds output: grep is then blocked.
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "grep still running 10 s after SIGTERM with its output unread"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{status:?}");
}

/// Every facet row of a workspace's inventory, with its archive's key,
/// lines and SHA-256, as text.
fn facets(ws: &Workspace) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.object_key, f.day, f.devid, f.devname, f.vd, f.log_type, f.subtype, f.action,
                    f.lines, f.first_at, f.last_at, c.lines, c.sha256
             FROM content_facets f JOIN content c ON c.id = f.content_id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((0..13)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?
            .join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// `reindex --content` on a bucket whose archives were uploaded without an
/// index (as the release before the index did) gives the very facets an
/// upload indexing them would have, and reads an altered object back as
/// altered: no index for it, exit 1.
#[test]
fn reindex_content_gives_the_facets_of_indexing_at_upload() {
    let files = model(31, 2, 2, 150);
    let server = S3Server::start();
    let indexed = Workspace::new();
    for (rel, lines) in &files {
        write_log(&indexed, rel, lines);
    }
    assert_exit(&indexed.upload(&server, &["--delete", "--prefix", "a/"]), 0);

    let old = Workspace::new();
    for (rel, lines) in &files {
        write_log(&old, rel, lines);
    }
    assert_exit(
        &old.upload(&server, &["--delete", "--index", "never", "--prefix", "b/"]),
        0,
    );
    assert!(facets(&old).is_empty());
    let out = old.on_bucket(
        "reindex",
        &server.endpoint(),
        &["--prefix", "b/", "--content"],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("4 archived object(s) indexed (0 from their sidecars), 0 not"),
        "{}",
        stdout(&out)
    );
    let strip = |set: BTreeSet<String>, p: &str| -> BTreeSet<String> {
        set.into_iter().map(|l| l.replacen(p, "", 1)).collect()
    };
    assert_eq!(strip(facets(&old), "b/"), strip(facets(&indexed), "a/"));
    // A second run has nothing left to do.
    let again = old.on_bucket(
        "reindex",
        &server.endpoint(),
        &["--prefix", "b/", "--content"],
    );
    assert!(
        stdout(&again).contains("0 archived object(s) indexed (0 from their sidecars), 0 not"),
        "{}",
        stdout(&again)
    );

    // An archive indexed in part (cut short) is read by grep every time,
    // but not again by reindex --content: it would give the same part.
    let cut = Workspace::new();
    write_log(&cut, &files[0].0, &files[0].1);
    let whole = std::fs::read(cut.logs().join(&files[0].0)).unwrap();
    cut.write_raw(&files[0].0, &whole[..whole.len() / 2]);
    assert_exit(
        &cut.upload(&server, &["--index", "always", "--prefix", "d/"]),
        0,
    );
    let out = cut.on_bucket(
        "reindex",
        &server.endpoint(),
        &["--prefix", "d/", "--content"],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("0 archived object(s) indexed (0 from their sidecars), 0 not"),
        "{}",
        stdout(&out)
    );

    // An object altered in the store is refused, not indexed.
    let third = Workspace::new();
    write_log(&third, &files[0].0, &files[0].1);
    assert_exit(
        &third.upload(&server, &["--index", "never", "--prefix", "c/"]),
        0,
    );
    let path = server.object_path(BUCKET, &format!("c/{}", files[0].0));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let out = third.on_bucket(
        "reindex",
        &server.endpoint(),
        &["--prefix", "c/", "--content"],
    );
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("0 archived object(s) indexed (0 from their sidecars), 1 not"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("altered"), "{}", stderr(&out));
    assert!(facets(&third).is_empty());
}

/// A central box that only reads the bucket rebuilds the sites' index from
/// the sidecars their uploads wrote (`PREFIX_index/KEY.fgix`): the same
/// facets as the site's, without reading the archives. A sidecar that does
/// not describe the archived bytes (here: another archive's) is not taken,
/// that archive is read back instead; `--read-objects` reads every one;
/// `verify` does not count sidecars as extra objects; prune removes an
/// archive's sidecar with it.
// docs/SAFETY.md S32
#[test]
fn a_central_box_indexes_from_the_sidecars() {
    let files = model(41, 2, 2, 150);
    let server = S3Server::start();
    let site = Workspace::new();
    for (rel, lines) in &files {
        write_log(&site, rel, lines);
    }
    assert_exit(&site.upload(&server, &["--delete", "--prefix", "s/"]), 0);
    let side = |rel: &str| server.object_path(BUCKET, &format!("s/_index/{rel}.fgix"));
    assert!(side(&files[0].0).is_file(), "no sidecar written");
    let reindex = |ws: &Workspace, extra: &[&str]| {
        let mut args = vec!["--prefix", "s/", "--content"];
        args.extend_from_slice(extra);
        let out = ws.on_bucket("reindex", &server.endpoint(), &args);
        assert_exit(&out, 0);
        stdout(&out)
    };

    // A box listing the whole bucket (no prefix) does not take the
    // site's sidecars for archives.
    let whole = Workspace::new();
    assert_exit(&whole.on_bucket("reindex", &server.endpoint(), &[]), 0);
    let keys: Vec<String> = whole
        .rows()
        .iter()
        .filter_map(|r| r.object_key.clone())
        .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains("_index")), "{keys:?}");

    let central = Workspace::new();
    let said = reindex(&central, &[]);
    assert!(
        said.contains("4 archived object(s) indexed (4 from their sidecars), 0 not"),
        "{said}"
    );
    assert_eq!(facets(&central), facets(&site));
    let ip = &files[1].1[7].srcip;
    let hits = |ws: &Workspace| {
        let db = ws.db().display().to_string();
        stdout(&ws.run(&["search", "--db", &db, "--ip", ip, "--json"], &[]))
    };
    assert_eq!(hits(&central), hits(&site));
    assert!(hits(&central).contains(&files[1].0));

    // A sidecar swapped for another archive's is refused; the archive it
    // sits beside is read back, and the index is still the site's.
    std::fs::copy(side(&files[1].0), side(&files[0].0)).unwrap();
    let central = Workspace::new();
    let said = reindex(&central, &[]);
    assert!(
        said.contains("4 archived object(s) indexed (3 from their sidecars)"),
        "{said}"
    );
    assert_eq!(facets(&central), facets(&site));
    let central = Workspace::new();
    let said = reindex(&central, &["--read-objects"]);
    assert!(
        said.contains("4 archived object(s) indexed (0 from their sidecars)"),
        "{said}"
    );
    assert_eq!(facets(&central), facets(&site));

    let listed = site.on_bucket("ls", &server.endpoint(), &["--remote", "--prefix", "s/"]);
    assert!(
        stdout(&listed).contains("4 object(s)") && !stdout(&listed).contains("_index"),
        "{}",
        stdout(&listed)
    );
    let verify = site.on_bucket("verify", &server.endpoint(), &["--prefix", "s/", "--all"]);
    assert_exit(&verify, 0);
    assert!(stdout(&verify).contains("0 extra"), "{}", stdout(&verify));
    let bad = central.on_bucket("reindex", &server.endpoint(), &["--read-objects"]);
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("add --content"), "{}", stderr(&bad));

    age_rows(&site.db(), "2024-01-01T00:00:00Z");
    let prune = site.on_bucket(
        "prune",
        &server.endpoint(),
        &["--prefix", "s/", "--older-than", "400", "--yes"],
    );
    assert_exit(&prune, 0);
    assert!(!side(&files[2].0).exists(), "{}", stdout(&prune));
}

/// A store policy that refuses writes under `_index/` (least privilege on
/// the archives' prefixes) costs the sidecars, never the archiving: every
/// file is archived and deleted, the run does not stop as if the
/// credentials were refused, and each refusal is a warning.
#[test]
fn refused_sidecars_never_stop_the_archiving() {
    use crate::common::proxy::{FailAfter, FaultProxy, Options};
    let server = S3Server::start();
    let proxy = FaultProxy::start_with(
        server.port,
        Options {
            fail_after: Some(FailAfter {
                method: "PUT",
                target_contains: "/_index/",
                after: 0,
                status: 403,
                code: "AccessDenied",
            }),
            ..Options::default()
        },
    );
    let ws = Workspace::new();
    let files = model(43, 2, 4, 50);
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    let out = ws.upload_to(&proxy.endpoint(), &["--delete", "--workers", "4"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("its index sidecar"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.rows().len(), 8);
    assert!(ws.rows().iter().all(|r| r.status() == "uploaded"));
    assert!(files.iter().all(|(rel, _)| !ws.logs().join(rel).exists()));
}
