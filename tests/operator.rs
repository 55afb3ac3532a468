//! What a network admin meets in the first fifteen minutes: both flag
//! forms, suggestions for typos, help that lists exactly what parses, a
//! mistyped --db that fails instead of starting a second inventory,
//! machine-readable summaries, `ls`, and summary wording.

use crate::common;

use common::*;

fn json_of(out: &std::process::Output) -> serde_json::Value {
    let text = stdout(out);
    assert_eq!(
        text.trim().lines().count(),
        1,
        "stdout must be one JSON object: {text}"
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn flags_take_both_value_forms_and_typos_get_a_suggestion() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 20, 1);
    std::fs::create_dir_all(ws.archive()).unwrap();
    let out = ws.run(
        &[
            "upload".to_string(),
            format!("--dir={}", ws.logs().display()),
            format!("--dest=file://{}", ws.archive().display()),
            format!("--db={}", ws.db().display()),
            "--min-age=0".to_string(),
        ],
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(ws.rows()[0].status(), "uploaded");

    let out = ws.upload_local(&["--buckt", "x"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("unknown option '--buckt' for 'upload': did you mean --bucket?"),
        "{}",
        stderr(&out)
    );
    let out = ws.upload_local(&["--to", "/tmp"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--to is an option of 'fgbackup restore'"),
        "{}",
        stderr(&out)
    );
    let out = ws.run(&["uplaod"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("did you mean 'upload'?"),
        "{}",
        stderr(&out)
    );
    let out = ws.upload_local(&["--workers=99"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--workers/WORKERS '99' must be a whole number from 1 to 64"),
        "{}",
        stderr(&out)
    );
}

/// Every option a help page shows is one the command accepts, and every
/// page names its defaults: help and parser come from one table.
#[test]
fn every_flag_in_help_parses() {
    let ws = Workspace::new();
    let main = stdout(&ws.run(&["--help"], &[]));
    let commands: Vec<String> = main
        .lines()
        .skip_while(|l| !l.starts_with("COMMANDS:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // `token issue`: a family's member is two words.
        .filter_map(|l| l.trim_start().split("  ").next().map(String::from))
        .collect();
    assert!(commands.len() >= 13, "{commands:?}");
    assert!(commands.contains(&"ls".to_string()), "{commands:?}");
    assert!(
        commands.contains(&"token issue".to_string()),
        "{commands:?}"
    );
    for cmd in &commands {
        let words: Vec<&str> = cmd.split(' ').collect();
        let page = stdout(&ws.run(&[&words[..], &["--help"]].concat(), &[]));
        let flags: Vec<String> = page
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .filter_map(|l| {
                let first = l.split_whitespace().next()?;
                let name = if first.ends_with(',') {
                    l.split_whitespace().nth(1)?
                } else {
                    first
                };
                name.starts_with("--").then(|| name.to_string())
            })
            .collect();
        assert!(flags.len() >= 2, "{cmd}: {page}");
        for flag in flags {
            // --help first, so nothing runs; any complaint is fine except
            // that the option does not exist.
            let out = ws.run(&[&words[..], &["--help", &flag, "x"]].concat(), &[]);
            let err = stderr(&out);
            assert!(
                !err.contains("unknown option") && !err.contains("is an option of"),
                "{cmd} --help lists {flag} but rejects it: {err}"
            );
        }
    }
    let upload = stdout(&ws.run(&["upload", "--help"], &[]));
    assert!(upload.contains("[env: WORKERS] [default: 4]"), "{upload}");
    assert!(upload.contains("--dir DIR"), "{upload}");

    // docs/GUIDE.md's settings table documents upload's flags: each one must exist.
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/GUIDE.md")).unwrap();
    let documented: Vec<&str> = guide
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .flat_map(|l| l.split('|').nth(1).unwrap_or("").split('`'))
        .filter_map(|cell| cell.split_whitespace().next())
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(documented.len() >= 20, "{documented:?}");
    for flag in documented {
        let err = stderr(&ws.run(&["upload", "--help", flag, "x"], &[]));
        assert!(
            !err.contains("unknown option"),
            "docs/GUIDE.md documents {flag}: {err}"
        );
    }
}

#[test]
fn a_mistyped_db_is_refused_and_nothing_is_created() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 2);
    std::fs::create_dir_all(ws.archive()).unwrap();
    let typo = ws.tmp.path().join("dbb/sub/backup_records.db");
    let typo_s = typo.display().to_string();
    let out = ws.run(
        &[
            "upload",
            "--dir",
            &ws.logs().display().to_string(),
            "--dest",
            &format!("file://{}", ws.archive().display()),
            "--db",
            &typo_s,
        ],
        &[],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(&format!("--db {typo_s}: directory")),
        "{}",
        stderr(&out)
    );
    assert!(
        !ws.tmp.path().join("dbb").exists(),
        "a directory was created"
    );

    // The same through DB_PATH names the variable.
    let args: Vec<String> = ws
        .local_upload_args(&[])
        .into_iter()
        .take_while(|a| a != "--db")
        .collect();
    let out = ws.run(&args, &[("DB_PATH", &typo_s)]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("DB_PATH "), "{}", stderr(&out));
    assert!(!ws.tmp.path().join("dbb").exists());

    // A held run lock names the setting too.
    let lock = format!("{}.lock", ws.db().display());
    let held = std::fs::File::create(&lock).unwrap();
    held.try_lock().unwrap();
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("--db/DB_PATH"), "{}", stderr(&out));
}

#[test]
fn upload_and_doctor_print_one_json_object() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 20, 3);
    ws.write_gz("FGT-A/b.log.gz", 20, 4);
    ws.write_raw("FGT-A/readme.txt", b"not a log");
    let out = ws.upload_local(&["--json"], &[]);
    assert_exit(&out, 0);
    let j = json_of(&out);
    assert_eq!(j["command"], "upload");
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["counts"]["uploaded"], 2);
    assert_eq!(j["excluded"], 1);
    assert!(j["bytes_sent"].as_u64().unwrap() > 0);

    // Other content under an archived key: a failure with key and reason.
    let conflict = ws.archive().join("FGT-A/c.log.gz");
    std::fs::write(&conflict, b"someone else's bytes").unwrap();
    ws.write_gz("FGT-A/c.log.gz", 20, 5);
    let out = ws.upload_local(&["--json"], &[]);
    assert_exit(&out, 1);
    let j = json_of(&out);
    assert_eq!(j["ok"], false);
    assert_eq!(j["exit_code"], 1);
    assert_eq!(j["counts"]["failed_conflict"], 1);
    assert_eq!(j["failures"][0]["key"], "FGT-A/c.log.gz");
    assert_eq!(j["failures"][0]["status"], "failed_conflict");
    assert!(
        !j["failures"][0]["reason"].as_str().unwrap().is_empty(),
        "{j}"
    );

    let logs = ws.logs().display().to_string();
    let db = ws.db().display().to_string();
    let args = [
        "doctor",
        "--json",
        "--dir",
        &logs,
        "--dest",
        "file:///nonexistent-fgbackup-archive",
        "--db",
        &db,
    ];
    let out = ws.run(&args, &[]);
    assert_exit(&out, 1);
    let j = json_of(&out);
    assert_eq!(j["command"], "doctor");
    assert_eq!(j["exit_code"], 1);
    let fail = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["level"] == "fail")
        .unwrap_or_else(|| panic!("no failed check: {j}"));
    assert!(fail["fix"].as_str().is_some_and(|f| !f.is_empty()), "{j}");
}

#[test]
fn ls_lists_the_inventory_and_the_archive_with_filters_and_totals() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/FGT-A-1.log.gz", 200, 6);
    ws.write_gz("FGT-A/FGT-A-2.log.gz", 200, 7);
    ws.write_gz("FGT-B/FGT-B-1.log.gz", 200, 8);
    std::fs::create_dir_all(ws.archive().join("FGT-B")).unwrap();
    std::fs::write(ws.archive().join("FGT-B/FGT-B-2.log.gz"), b"other").unwrap();
    ws.write_gz("FGT-B/FGT-B-2.log.gz", 20, 9);
    assert_exit(&ws.upload_local(&[], &[]), 1);
    // An object no run ever wrote or saw.
    std::fs::create_dir_all(ws.archive().join("FGT-C")).unwrap();
    std::fs::write(ws.archive().join("FGT-C/stray.log.gz"), b"stray").unwrap();
    let db = ws.db().display().to_string();
    let ls = |extra: &[&str]| {
        let mut args = vec!["ls", "--db", db.as_str()];
        args.extend_from_slice(extra);
        ws.run(&args, &[])
    };

    let out = ls(&[]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("FGT-A/FGT-A-1.log.gz"), "{text}");
    assert!(text.contains("KiB"), "sizes are human-readable: {text}");
    assert!(
        text.lines().last().unwrap().starts_with("4 file(s), "),
        "{text}"
    );
    assert!(
        text.contains("3 uploaded, 1 failed_conflict")
            || text.contains("1 failed_conflict, 3 uploaded"),
        "{text}"
    );

    let text = stdout(&ls(&["--device", "FGT-A"]));
    assert!(!text.contains("FGT-B"), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("2 file(s)"),
        "{text}"
    );

    let text = stdout(&ls(&["--status", "failed"]));
    assert!(text.contains("FGT-B/FGT-B-2.log.gz"), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("1 file(s)"),
        "{text}"
    );

    let text = stdout(&ls(&["--prefix", "FGT-B/"]));
    assert!(
        text.lines().last().unwrap().starts_with("2 file(s)"),
        "{text}"
    );

    let text = stdout(&ls(&["--since", "2999-01-01"]));
    assert!(
        text.lines().last().unwrap().starts_with("0 file(s)"),
        "{text}"
    );

    let out = ls(&["--status", "bogus"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--status 'bogus' is not valid: use failed (every failed_* status) or one of uploaded, skipped_exists"),
        "{}",
        stderr(&out)
    );

    let j = json_of(&ls(&["--json", "--device", "FGT-B"]));
    assert_eq!(j["total_files"], 2);
    assert_eq!(j["counts"]["failed_conflict"], 1);

    // The archive itself: the object nobody archived is marked.
    let out = ws.on_archive("ls", &["--remote"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("FGT-C/stray.log.gz  (not in the inventory)"),
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().starts_with("5 object(s)"),
        "{text}"
    );
    assert!(text.contains("; 1 not in the inventory"), "{text}");
    assert!(!text.contains("FGT-B-2.log.gz  (not"), "{text}");
}

#[test]
fn summary_says_nothing_sent_and_what_include_left_out() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 20, 10);
    ws.write_raw("notes.txt", b"x");
    ws.write_raw("b.log", b"y");
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains(" sent in "), "{text}");
    assert!(text.contains("2 not matching --include skipped"), "{text}");
    let out = ws.upload_local(&[], &[]);
    let text = stdout(&out);
    assert!(text.contains("nothing sent"), "{text}");
    assert!(!text.contains("/s)"), "{text}");
}

#[test]
fn verify_prints_one_json_object_with_each_problem() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/a.log.gz", 50, 11);
    ws.write_gz("FGT-A/b.log.gz", 50, 12);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let out = ws.on_archive("verify", &["--json"]);
    assert_exit(&out, 0);
    let j = json_of(&out);
    assert_eq!(j["command"], "verify");
    assert_eq!(j["counts"]["ok"], 2);
    assert_eq!(j["problems"], serde_json::json!([]));

    std::fs::remove_file(ws.archive().join("FGT-A/b.log.gz")).unwrap();
    let out = ws.on_archive("verify", &["--json"]);
    assert_exit(&out, 1);
    let j = json_of(&out);
    assert_eq!(j["ok"], false);
    assert_eq!(j["exit_code"], 1);
    assert_eq!(j["counts"]["missing"], 1);
    assert_eq!(j["problems"][0]["result"], "missing");
    assert_eq!(j["problems"][0]["key"], "FGT-A/b.log.gz");
    // The problem line a person reads went to stderr, not into the JSON stream.
    assert!(stderr(&out).contains("FGT-A/b.log.gz"), "{}", stderr(&out));
}

/// Found by a hostile review: a flag without its value swallowed the next
/// flag (`--prefix --dry-run` ran a real upload under `--dry-run/`).
#[test]
fn a_missing_value_never_takes_the_next_flag() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 13);
    let out = ws.upload_local(&["--prefix", "--dry-run"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--prefix needs a value before --dry-run"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.archive().join("--dry-run").exists());
    assert!(!ws.db().exists(), "nothing ran");
    // Help wins over any other mistake on the line.
    let out = ws.run(&["ls", "--bogus", "--help"], &[]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("fgbackup ls - "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_stdout_stays_one_object_on_usage_errors_and_email_dry_runs() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 14);
    let out = ws.upload_local(&["--json", "--workers", "99"], &[]);
    assert_exit(&out, 2);
    let j = json_of(&out);
    assert_eq!(j["exit_code"], 2);
    assert_eq!(j["ok"], false);
    assert!(j["error"].as_str().unwrap().contains("--workers"), "{j}");

    // A word that is not UTF-8 is a usage error, never a panic.
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"--dir=\xff");
    let out = ws.run(
        &[
            std::ffi::OsStr::new("upload"),
            std::ffi::OsStr::new("--json"),
            bad,
        ],
        &[],
    );
    assert_exit(&out, 2);
    assert_eq!(json_of(&out)["exit_code"], 2);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));

    let out = ws.upload_local(
        &["--json", "--notify-email", "noc@example.org"],
        &[("EMAIL_DRY_RUN", "1")],
    );
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["counts"]["uploaded"], 1);
    assert!(
        stderr(&out).contains("To: <noc@example.org>"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_refuses_a_db_in_a_missing_directory_and_tiny_runs_say_bytes() {
    let ws = Workspace::new();
    let typo = ws.tmp.path().join("nope/x.db").display().to_string();
    // Exits at once: before the fix it listened until killed.
    let out = ws.run(&["serve", "--listen", "127.0.0.1:0", "--db", &typo], &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--db "), "{}", stderr(&out));

    ws.write_raw(
        "t.log.gz",
        &[
            0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    let out = ws.upload_local(&[], &[]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("20 B sent in"), "{text}");
    assert!(!text.contains("0.0 MB"), "{text}");
}

#[test]
fn ls_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 10, 15);
    assert_exit(&ws.upload_local(&[], &[]), 0);
    // Enough rows to fill the pipe, so the writer meets the closed end.
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO backups (filename, object_key, status, size_bytes, uploaded_at, backup_date)
         SELECT 'f' || i || '.log.gz', 'site/some-long-directory-name/f' || i || '.log.gz',
                'uploaded', 1000, '2026-11-01T00:00:00Z', '2026-11-01' FROM n;",
    )
    .unwrap();
    let mut child = ws
        .command(&["ls", "--db", &ws.db().display().to_string()], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("uploaded_at"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// docs/SAFETY.md numbers its guarantees (`### S4. ...`) and names the
/// tests that attack each (`tests/FILE.rs::name`, `src/FILE.rs::tests::name`).
/// Each named test carries the number in a comment right above its
/// `#[test]`, and every number a test carries is a guarantee of the page
/// that names that test: a renamed test or a dropped number fails here.
#[test]
fn safety_guarantees_and_their_tests_name_each_other() {
    use std::collections::BTreeMap;
    use std::path::Path;
    const TAG: &str = "// docs/SAFETY.md ";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/SAFETY.md")).unwrap();

    // Guarantee -> the tests it names, as (file, function).
    let mut named: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("### S") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            assert!(
                !digits.is_empty() && rest[digits.len()..].starts_with(". "),
                "docs/SAFETY.md: a guarantee's heading is `### S<number>. <title>`: {line}"
            );
            let id = format!("S{digits}");
            assert!(!named.contains_key(&id), "docs/SAFETY.md has {id} twice");
            order.push(digits.parse::<u32>().unwrap());
            named.insert(id.clone(), Vec::new());
            current = Some(id);
        } else if line.starts_with("# ") || line.starts_with("## ") {
            current = None;
        } else if let Some(id) = &current {
            // Code spans naming a test: `tests/x.rs::name`, `src/y.rs::tests::name`.
            for span in line.split('`').skip(1).step_by(2) {
                let Some((file, path)) = span.split_once("::") else {
                    continue;
                };
                if file.ends_with(".rs") && (file.starts_with("tests/") || file.starts_with("src/"))
                {
                    let name = path.rsplit("::").next().unwrap().to_string();
                    named.get_mut(id).unwrap().push((file.to_string(), name));
                }
            }
        }
    }
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "docs/SAFETY.md: guarantees out of order: {order:?}"
    );

    // Each named test exists and carries its guarantee's number.
    let mut sources: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, tests) in &named {
        assert!(!tests.is_empty(), "docs/SAFETY.md {id} names no test");
        for (file, name) in tests {
            let lines = sources.entry(file.clone()).or_insert_with(|| {
                std::fs::read_to_string(root.join(file))
                    .unwrap_or_else(|e| panic!("docs/SAFETY.md {id} names {file}: {e}"))
                    .lines()
                    .map(str::to_string)
                    .collect()
            });
            let decl = format!("fn {name}(");
            let at: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].trim_start().starts_with(&decl))
                .collect();
            assert_eq!(
                at.len(),
                1,
                "docs/SAFETY.md {id} names {file}::{name}, which is not a test there (renamed?)"
            );
            // Other attributes may sit between `#[test]` and the function.
            let mut i = at[0];
            while i > 0
                && lines[i - 1].trim() != "#[test]"
                && lines[i - 1].trim_start().starts_with("#[")
            {
                i -= 1;
            }
            assert!(
                i >= 2 && lines[i - 1].trim() == "#[test]",
                "{file}::{name} is not a #[test]"
            );
            let above = lines[i - 2].trim();
            let ids: Vec<&str> = above
                .strip_prefix(TAG)
                .map(|t| t.split_whitespace().collect())
                .unwrap_or_default();
            assert!(
                ids.contains(&id.as_str()),
                "{file}::{name} is named by docs/SAFETY.md {id}: put `{TAG}{id}` right above its #[test] (found: {above})"
            );
        }
    }

    // Every number a test carries names a guarantee that names that test.
    let mut files = Vec::new();
    let mut dirs = vec![root.join("tests"), root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut tagged = 0;
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(ids) = line.trim_start().strip_prefix(TAG) else {
                continue;
            };
            assert_eq!(
                lines.get(i + 1).map(|l| l.trim()),
                Some("#[test]"),
                "{rel}:{}: `{TAG}...` goes right above a #[test]",
                i + 1
            );
            let name = lines[i + 1..]
                .iter()
                .find_map(|l| {
                    let rest = l.trim_start().strip_prefix("fn ")?;
                    rest.split('(').next().map(str::to_string)
                })
                .unwrap();
            for id in ids.split_whitespace() {
                let tests = named.get(id).unwrap_or_else(|| {
                    panic!("{rel}::{name} carries {id}, which docs/SAFETY.md does not have")
                });
                assert!(
                    tests.iter().any(|(f, n)| *f == rel && *n == name),
                    "{rel}::{name} carries {id}, but docs/SAFETY.md {id} does not name it"
                );
                tagged += 1;
            }
        }
    }
    assert!(named.len() >= 30, "docs/SAFETY.md: {:?}", named.keys());
    let total: usize = named.values().map(Vec::len).sum();
    assert_eq!(
        tagged, total,
        "every test docs/SAFETY.md names is tagged once per guarantee"
    );
}
