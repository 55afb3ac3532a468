//! The live progress display as a person at a terminal meets it, and its
//! absence where a log is written (the journal, cron mail): `upload` and
//! `verify` run on a pseudo-terminal through `script` (util-linux/bsdutils)
//! and on plain pipes, with the directory store.
//!
//! No `RUST_LOG` is set here (it would decide the levels by itself), except
//! where that override is what is tested.

use crate::common;

use std::process::{Command, Output, Stdio};

use common::*;

const FILES: usize = 36;

/// `FILES` log files in `ws`, an empty archive directory, and the upload
/// arguments for them.
fn setup(ws: &Workspace) -> Vec<String> {
    for i in 0..FILES {
        ws.write_gz(&format!("FGT-{}/f{i:02}.log.gz", i % 3), 300, i as u64);
    }
    std::fs::create_dir_all(ws.archive()).unwrap();
    let mut args = vec!["upload".to_string(), "--dir".into()];
    args.push(ws.logs().display().to_string());
    args.extend(["--min-age".into(), "0".into()]);
    args.extend(target(ws));
    args
}

/// `--dest file://... --db ...`, shared by upload and verify.
fn target(ws: &Workspace) -> Vec<String> {
    vec![
        "--dest".into(),
        format!("file://{}", ws.archive().display()),
        "--db".into(),
        ws.db().display().to_string(),
    ]
}

fn with(args: &[String], extra: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.extend(extra.iter().map(|s| s.to_string()));
    all
}

/// A clean environment without `RUST_LOG`, plus `env`.
fn clean_env(cmd: &mut Command, ws: &Workspace, env: &[(&str, &str)]) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ws.home())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
}

/// `fgbackup ARGS` on plain pipes.
fn on_pipes(ws: &Workspace, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fgbackup"));
    cmd.args(args);
    clean_env(&mut cmd, ws, env);
    cmd.output().unwrap()
}

/// `fgbackup ARGS` with stdout and stderr on a pseudo-terminal of 120
/// columns, `TERM=xterm` unless `env` says otherwise; returns the exit
/// status and everything the terminal received.
fn on_pty(ws: &Workspace, args: &[String], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut line = vec![shell_quote(env!("CARGO_BIN_EXE_fgbackup"))];
    line.extend(args.iter().map(|a| shell_quote(a)));
    let script = format!("stty cols 120 rows 40 2>/dev/null; exec {}", line.join(" "));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &script, "/dev/null"]);
    clean_env(&mut cmd, ws, &[("TERM", "xterm")]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("util-linux 'script' is needed (Debian: bsdutils)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The terminal's text without escape sequences, one entry per line
/// (`\r` and `\n` both end one).
fn screen_lines(raw: &str) -> Vec<String> {
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text.split(['\r', '\n'])
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The last frame the display drew: what follows `label` on its first
/// line (`312.5 KiB / 312.5 KiB, 100%, 1.2 MiB/s, ETA 0s`), and its second
/// line (with whatever was printed after it).
fn final_frame(raw: &str, label: &str) -> (String, String) {
    let text = screen_lines(raw).join("\n");
    let start = text
        .rfind(label)
        .unwrap_or_else(|| panic!("no progress display ({label}) in:\n{raw}"));
    let frame = text[start + label.len()..].trim_start();
    // Lines are padded to the terminal's width and wrap by themselves.
    let (first, rest) = frame
        .split_once("  ")
        .unwrap_or_else(|| panic!("one line only: {frame}"));
    (first.to_string(), rest.trim_start().to_string())
}

/// All of it done, a byte count with its unit, a rate and an ETA.
fn assert_all_bytes(line: &str) {
    let fields: Vec<&str> = line.split(", ").collect();
    assert_eq!(fields.len(), 4, "{line}");
    let (done, total) = fields[0].split_once(" / ").expect(line);
    assert_eq!(done, total, "{line}");
    assert!(done.ends_with("iB") || done.ends_with(" B"), "{line}");
    assert_eq!(fields[1], "100%", "{line}");
    assert!(fields[2].ends_with("/s"), "{line}");
    assert!(fields[3].starts_with("ETA "), "{line}");
}

fn per_file_lines(text: &str) -> usize {
    screen_lines(text)
        .iter()
        .filter(|l| l.contains("INFO ] uploaded "))
        .count()
}

#[test]
fn terminal_upload_shows_the_display_and_no_per_file_lines() {
    let ws = Workspace::new();
    let args = setup(&ws);
    let (code, raw) = on_pty(&ws, &args, &[]);
    assert_eq!(code, Some(0), "{raw}");
    let (bytes, counts) = final_frame(&raw, "Transferred:");
    assert_all_bytes(&bytes);
    assert!(
        counts.starts_with(&format!(
            "Files:       {FILES} / {FILES}, failures: 0, elapsed "
        )),
        "{counts}"
    );
    assert_eq!(per_file_lines(&raw), 0, "{raw}");
    assert!(
        raw.contains(&format!("{FILES} files: uploaded={FILES}")),
        "the summary stays: {raw}"
    );
}

#[test]
fn terminal_upload_verbose_keeps_per_file_lines_above_the_display() {
    let ws = Workspace::new();
    let args = setup(&ws);
    let (code, raw) = on_pty(&ws, &with(&args, &["-v"]), &[]);
    assert_eq!(code, Some(0), "{raw}");
    final_frame(&raw, "Transferred:");
    assert_eq!(per_file_lines(&raw), FILES, "{raw}");
    // Each log line whole, on its own line: never glued to a frame.
    for l in screen_lines(&raw) {
        if l.contains("INFO ]") {
            assert!(l.starts_with("[20"), "garbled: {l:?}");
        }
    }
}

#[test]
fn rust_log_still_decides_the_levels_under_the_display() {
    let ws = Workspace::new();
    let args = setup(&ws);
    let (code, raw) = on_pty(&ws, &args, &[("RUST_LOG", "info")]);
    assert_eq!(code, Some(0), "{raw}");
    final_frame(&raw, "Transferred:");
    assert_eq!(per_file_lines(&raw), FILES, "{raw}");
}

#[test]
fn terminal_upload_quiet_prints_nothing_after_a_clean_run() {
    let ws = Workspace::new();
    let args = setup(&ws);
    let (code, raw) = on_pty(&ws, &with(&args, &["-q"]), &[]);
    assert_eq!(code, Some(0), "{raw}");
    assert!(!raw.contains('\x1b'), "{raw:?}");
    assert!(screen_lines(&raw).is_empty(), "{raw}");
    assert_eq!(ws.rows().len(), FILES);
}

#[test]
fn terminal_upload_no_progress_is_todays_output() {
    let ws = Workspace::new();
    let args = setup(&ws);
    let (code, raw) = on_pty(&ws, &with(&args, &["--no-progress"]), &[]);
    assert_eq!(code, Some(0), "{raw}");
    assert!(!raw.contains('\x1b'), "{raw:?}");
    assert!(!raw.contains("Transferred:"), "{raw}");
    assert_eq!(per_file_lines(&raw), FILES, "{raw}");
    // A terminal that cannot redraw (TERM=dumb) is treated like a pipe.
    let second = Workspace::new();
    let args = setup(&second);
    let (code, raw) = on_pty(&second, &args, &[("TERM", "dumb")]);
    assert_eq!(code, Some(0), "{raw}");
    assert!(!raw.contains('\x1b'), "{raw:?}");
    assert_eq!(per_file_lines(&raw), FILES, "{raw}");
}

#[test]
fn piped_upload_is_one_line_per_file_without_escapes() {
    let ws = Workspace::new();
    let args = setup(&ws);
    let out = on_pipes(&ws, &args, &[]);
    assert_exit(&out, 0);
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(!so.contains('\x1b') && !se.contains('\x1b'), "{se:?}");
    assert!(!se.contains("Transferred:"), "{se}");
    assert_eq!(
        se.lines()
            .filter(|l| l.contains("INFO ] uploaded "))
            .count(),
        FILES,
        "{se}"
    );
    assert_eq!(so.lines().count(), 1, "only the summary on stdout: {so}");
}

#[test]
fn forced_progress_draws_without_a_terminal() {
    let ws = Workspace::new();
    let args = setup(&ws);
    let out = on_pipes(&ws, &with(&args, &["-P"]), &[]);
    assert_exit(&out, 0);
    let se = stderr(&out);
    let (bytes, counts) = final_frame(&se, "Transferred:");
    assert_all_bytes(&bytes);
    assert!(
        counts.starts_with(&format!("Files:       {FILES} / {FILES}")),
        "{counts}"
    );
    assert_eq!(per_file_lines(&se), 0, "{se}");
    let bad = on_pipes(&ws, &with(&args, &["-P", "--no-progress"]), &[]);
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("contradict"), "{}", stderr(&bad));
}

#[test]
fn verify_shows_the_display_on_a_terminal_only() {
    let ws = Workspace::new();
    let args = setup(&ws);
    assert_exit(&on_pipes(&ws, &args, &[]), 0);
    let verify = [vec!["verify".to_string()], target(&ws)].concat();

    let (code, raw) = on_pty(&ws, &verify, &[]);
    assert_eq!(code, Some(0), "{raw}");
    let (bytes, counts) = final_frame(&raw, "Checked:");
    assert_all_bytes(&bytes);
    assert!(
        counts.starts_with(&format!("Objects:     {FILES} / {FILES}, problems: 0")),
        "{counts}"
    );
    assert!(
        raw.contains(&format!("verify: {FILES} objects checked")),
        "{raw}"
    );

    let (_, raw) = on_pty(&ws, &with(&verify, &["-v"]), &[]);
    let ok_lines = screen_lines(&raw)
        .iter()
        .filter(|l| l.starts_with("[20") && l.contains("INFO ] ok "))
        .count();
    assert_eq!(ok_lines, FILES, "{raw}");

    let out = on_pipes(&ws, &verify, &[]);
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains('\x1b') && !stdout(&out).contains('\x1b'));
    assert_eq!(stderr(&out), "", "nothing but the summary");
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
}

#[test]
fn verify_problems_print_whole_above_the_display() {
    let ws = Workspace::new();
    let args = setup(&ws);
    assert_exit(&on_pipes(&ws, &args, &[]), 0);
    std::fs::remove_file(ws.archive().join("FGT-1/f01.log.gz")).unwrap();
    let verify = [vec!["verify".to_string()], target(&ws)].concat();
    let (code, raw) = on_pty(&ws, &verify, &[]);
    assert_eq!(code, Some(1), "{raw}");
    let (_, counts) = final_frame(&raw, "Checked:");
    assert!(counts.contains("problems: 1"), "{counts}");
    assert!(
        screen_lines(&raw)
            .iter()
            .any(|l| l.starts_with("missing       FGT-1/f01.log.gz: not in the listing")),
        "{raw}"
    );
    let (code, raw) = on_pty(&ws, &with(&verify, &["-q"]), &[]);
    assert_eq!(code, Some(1), "{raw}");
    assert!(!raw.contains('\x1b'), "{raw:?}");
    let lines = screen_lines(&raw);
    assert_eq!(lines.len(), 2, "the problem and the summary: {raw}");
}

/// The percentage of a `Transferred:` (`Checked:`, `Restored:`) line
/// (`1.00 MiB / 3.00 MiB, 33%, ...`).
fn percent(line: &str) -> Option<u32> {
    let rest = line
        .strip_prefix("Transferred:")
        .or_else(|| line.strip_prefix("Checked:"))
        .or_else(|| line.strip_prefix("Restored:"))?;
    rest.split(", ").nth(1)?.strip_suffix('%')?.parse().ok()
}

#[test]
fn a_large_file_moves_the_byte_count_while_it_is_sent() {
    // One 3 MiB file at 1 MiB/s: about three seconds on the wire, six
    // redraws. The count must move during them, not jump from 0% to 100%
    // when the file is done.
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_noise_gz("FGT-0/big.log.gz", 3);
    let out = ws.upload(&server, &["-P", "--bwlimit", "1M"]);
    assert_exit(&out, 0);
    let se = stderr(&out);
    let shown: Vec<u32> = screen_lines(&se)
        .iter()
        .filter_map(|l| percent(l))
        .collect();
    assert_eq!(shown.last(), Some(&100), "{se}");
    assert!(
        shown.iter().any(|p| (1..100).contains(p)),
        "no frame between 0% and 100% while the file was sent: {shown:?}\n{se}"
    );
    assert!(
        shown.windows(2).all(|w| w[0] <= w[1]),
        "the count never goes back: {shown:?}"
    );
}

/// Runs `fgbackup COMMAND -P` (verify or restore) on an archive of one
/// 4 MiB object whose read-back stalls after 2 MiB until a frame between 0%
/// and 100% has been drawn; the count must take in the bytes read before
/// the object is done. Returns everything stderr showed.
fn byte_count_moves_while_read(command: &str, extra: &[&str]) -> String {
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_noise_gz("FGT-0/big.log.gz", 4);
    assert_exit(&ws.upload(&server, &[]), 0);
    let proxy = common::held::stalling(&server, "GET", "big.log.gz", 2 << 20);
    let mut all = vec!["-P"];
    all.extend(extra);
    let args = ws.bucket_args(command, &proxy.endpoint(), &all);
    let mut child = ws
        .command(&args, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    let moved = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(chunk) = rx.recv_timeout(left) else {
            break false;
        };
        seen.extend(chunk);
        let text = String::from_utf8_lossy(&seen).to_string();
        if screen_lines(&text)
            .iter()
            .filter_map(|l| percent(l))
            .any(|p| (1..100).contains(&p))
        {
            break true;
        }
    };
    proxy.gate.open();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(rx.try_iter().flatten());
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(
        moved,
        "no frame between 0% and 100% during the stalled read:\n{text}"
    );
    assert_eq!(status.code(), Some(0), "{text}");
    let shown: Vec<u32> = screen_lines(&text)
        .iter()
        .filter_map(|l| percent(l))
        .collect();
    assert_eq!(shown.last(), Some(&100), "{text}");
    text
}

#[test]
fn verify_moves_the_byte_count_while_an_object_is_read() {
    let text = byte_count_moves_while_read("verify", &[]);
    assert!(text.contains("Objects:     1 / 1, problems: 0"), "{text}");
}

#[test]
fn restore_shows_the_display_and_moves_while_a_file_is_fetched() {
    let to = tempfile::tempdir().unwrap();
    let to_s = to.path().join("to").display().to_string();
    let text = byte_count_moves_while_read("restore", &["--to", &to_s]);
    assert!(text.contains("Files:       1 / 1, failures: 0"), "{text}");
}

#[test]
fn restore_quiet_prints_nothing_after_a_clean_run_and_problems_always() {
    let ws = Workspace::new();
    let args = setup(&ws);
    assert_exit(&on_pipes(&ws, &args, &[]), 0);
    let to = ws.home().join("to");
    let mut restore = vec![
        "restore".to_string(),
        "--to".into(),
        to.display().to_string(),
    ];
    restore.extend(target(&ws));
    let out = on_pipes(&ws, &with(&restore, &["-q"]), &[]);
    assert_exit(&out, 0);
    assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()));
    // A file already there with other bytes: the problem and the summary
    // are printed even with -q.
    std::fs::write(to.join("FGT-0/f00.log.gz"), b"other").unwrap();
    std::fs::remove_file(to.join("FGT-1/f01.log.gz")).unwrap();
    let out = on_pipes(&ws, &with(&restore, &["-q"]), &[]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("exists  FGT-0/f00.log.gz"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("restore: 1 restored"),
        "{}",
        stdout(&out)
    );
}
