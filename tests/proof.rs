//! Proving the archive: `verify`, `restore`, `reindex`, manifests and
//! `prune`, each tried against the real binary and a real store (s3s-fs,
//! the directory store), by damaging the archive the way time, a careless
//! admin or an intruder would.

mod common;

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

#[test]
fn verify_catches_a_deleted_a_flipped_a_truncated_and_an_extra_object_on_s3() {
    let server = S3Server::start();
    let ws = Workspace::new();
    for i in 0..5 {
        ws.write_gz(&format!("FGT-A/{i}.log.gz"), 200, i);
    }
    let out = ws.upload(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ep = server.endpoint();

    let out = ws.on_bucket("verify", &ep, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
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
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
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

#[test]
fn verify_catches_damage_in_the_directory_store_and_samples_on_request() {
    let ws = Workspace::new();
    for i in 0..20 {
        ws.write_gz(&format!("FGT-B/{i:02}.log.gz"), 50, i);
    }
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = ws.on_archive("verify", &["--sample", "10"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("20 objects checked (2 read back"),
        "{}",
        stdout(&out)
    );

    // Same length, one byte changed: only reading it back can tell.
    flip_byte(&ws.archive().join("FGT-B/07.log.gz"), 30);
    let out = ws.on_archive("verify", &["--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(lines_with(&out, "altered")[0].contains("FGT-B/07.log.gz"));
    assert_eq!(last_verification(&ws).0, "failed");
}

#[test]
fn verify_needs_an_inventory_and_valid_flags() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.archive()).unwrap();
    let out = ws.on_archive("verify", &[]);
    assert_eq!(out.status.code(), Some(2));
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
