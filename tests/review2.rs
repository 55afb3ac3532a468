//! The second hostile review (issue "Second hostile review"): each test
//! reproduces one defect it found, through the real binary and a real store,
//! and states what must happen instead. They are numbered like the issue's
//! items so a reader can go from a finding to its test.

mod common;

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

