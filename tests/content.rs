//! The content index (issue 21): built while an upload reads each `.gz`,
//! kept in the inventory, and asked by `fgbackup search`. The logs are
//! written here from a model (each line's device, time, action and
//! addresses known), so every expected answer is computed from the model,
//! never from the scanner under test.

use std::collections::BTreeSet;
use std::io::Write;

use crate::common::*;

/// One log line, as the model knows it.
#[derive(Debug, Clone)]
pub struct Line {
    pub device: String,
    pub devid: String,
    /// UTC seconds.
    pub at: i64,
    pub action: &'static str,
    pub srcip: String,
    pub dstip: String,
}

/// 2026-03-03 00:00:00 UTC.
pub const DAY0: i64 = 20_515 * 86_400;

pub fn ymd(at: i64) -> String {
    let d = at.div_euclid(86_400) - 20_515;
    // March 2026 has 31 days; the tests stay inside it.
    format!("2026-03-{:02}", 3 + d)
}

impl Line {
    /// As FortiOS 7 writes it: quoted values, eventtime in nanoseconds
    /// (every fourth line in seconds), a url that mentions another action
    /// and address, a syslog priority first.
    pub fn text(&self, n: usize) -> String {
        let eventtime = if n.is_multiple_of(4) {
            self.at.to_string()
        } else {
            format!("{}000000123", self.at)
        };
        let local = self.at - 3 * 3600;
        let (h, m, s) = (
            local.rem_euclid(86_400) / 3600,
            local.rem_euclid(3600) / 60,
            local.rem_euclid(60),
        );
        format!(
            "<189>date={} time={h:02}:{m:02}:{s:02} devname=\"{}\" devid=\"{}\" eventtime={eventtime} tz=\"-0300\" type=\"traffic\" subtype=\"forward\" vd=\"root\" srcip={} dstip={} url=\"/q?action=accept&srcip=6.6.6.6\" action=\"{}\" n={n}",
            ymd(local),
            self.device,
            self.devid,
            self.srcip,
            self.dstip,
            self.action
        )
    }
}

/// Writes `lines` as a gzip file at `logs/rel`.
pub fn write_log(ws: &Workspace, rel: &str, lines: &[Line]) {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for (n, l) in lines.iter().enumerate() {
        writeln!(e, "{}", l.text(n)).unwrap();
    }
    ws.write_raw(rel, &e.finish().unwrap());
}

/// A small random model: `files` archives per device over `days` days,
/// each holding `per_file` lines; deterministic for a seed.
pub fn model(seed: u64, devices: usize, days: i64, per_file: usize) -> Vec<(String, Vec<Line>)> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let actions = ["accept", "deny", "close", "timeout"];
    let mut files = Vec::new();
    for d in 0..devices {
        for day in 0..days {
            let device = format!("FGT-{d}");
            let lines: Vec<Line> = (0..per_file)
                .map(|i| Line {
                    device: device.clone(),
                    devid: format!("FG100E{d:04}"),
                    at: DAY0 + day * 86_400 + (i as i64 * 86_400 / per_file as i64),
                    action: actions[(next() % 4) as usize],
                    srcip: format!("10.{d}.{}.{}", next() % 4, next() % 250),
                    dstip: if next() % 3 == 0 {
                        format!("2001:db8::{:x}", next() % 4000)
                    } else {
                        format!("198.51.{}.{}", next() % 8, next() % 250)
                    },
                })
                .collect();
            files.push((
                format!("{device}/{device}-{}.log.gz", ymd(DAY0 + day * 86_400)),
                lines,
            ));
        }
    }
    files
}

fn search(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let mut all = vec!["search", "--db"];
    let db = ws.db().display().to_string();
    all.push(&db);
    all.extend_from_slice(args);
    ws.run(&all, &[])
}

fn search_json(ws: &Workspace, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = search(ws, &a);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// `upload --delete` indexes every archive it reads (the gzip proof's
/// inflate), and `search` gives, per archive, exactly the lines the model
/// says match: device and action and day, and an address in srcip/dstip
/// only (the url's `srcip=6.6.6.6` is no address of any line).
// docs/SAFETY.md S32
#[test]
fn search_answers_what_the_model_says() {
    let ws = Workspace::new();
    let files = model(7, 2, 3, 400);
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);

    let day1 = ymd(DAY0 + 86_400);
    let got = search_json(
        &ws,
        &[
            "--device", "FGT-1", "--action", "deny", "--since", &day1, "--until", &day1,
        ],
    );
    let expect: Vec<(String, u64)> = files
        .iter()
        .filter_map(|(rel, lines)| {
            let n = lines
                .iter()
                .filter(|l| l.device == "FGT-1" && l.action == "deny" && ymd(l.at) == day1)
                .count() as u64;
            (n > 0).then(|| (rel.clone(), n))
        })
        .collect();
    let hits: Vec<(String, u64)> = got["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["key"].as_str().unwrap().to_string(),
                h["lines"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(hits, expect, "{got}");
    assert_eq!(got["unindexed"], 0);
    assert_eq!(got["archives"][0]["devices"][0], "FGT-1");

    // By devid, the same archives.
    let by_id = search_json(
        &ws,
        &[
            "--device",
            "FG100E0001",
            "--action",
            "deny",
            "--since",
            &day1,
            "--until",
            &day1,
        ],
    );
    assert_eq!(by_id["archives"], got["archives"]);

    // Every archive holding an address is listed (never a false "absent").
    for (rel, lines) in files.iter().take(3) {
        for ip in [&lines[5].srcip, &lines[9].dstip] {
            let found = search_json(&ws, &["--ip", ip]);
            let keys: BTreeSet<&str> = found["archives"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["key"].as_str().unwrap())
                .collect();
            assert!(keys.contains(rel.as_str()), "{ip} is in {rel}: {found}");
        }
    }
    let decoy = search(&ws, &["--ip", "6.6.6.6"]);
    assert_exit(&decoy, 1);
    assert!(
        stdout(&decoy).starts_with("0 archive(s)"),
        "{}",
        stdout(&decoy)
    );
}

/// A `.gz` past 1 MiB is inflated on a thread of its own while it is sent,
/// so that its upload does not wait for the inflate: it gets the same gzip
/// proof and the same index as a small one read in one pass (a cut one is
/// kept, a whole one deleted and indexed line for line), over a real S3
/// server.
// docs/SAFETY.md S32
#[test]
fn a_big_archive_is_proven_and_indexed_beside_its_upload() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let (rel, lines) = model(11, 1, 1, 40_000).remove(0);
    write_log(&ws, &rel, &lines);
    let whole = ws.logs().join(&rel);
    let bytes = std::fs::read(&whole).unwrap();
    assert!(bytes.len() > 1 << 20, "{} bytes: below 1 MiB", bytes.len());
    let cut = ws.write_raw("cut/big.log.gz", &bytes[..bytes.len() - 5000]);
    let small = model(12, 1, 1, 300).remove(0);
    write_log(&ws, "small/one.log.gz", &small.1);

    let out = ws.upload(&server, &["--delete"]);
    assert_exit(&out, 1);
    let rows = ws.rows();
    assert_eq!(row_for(&rows, "cut/big.log.gz").status(), "failed_gzip");
    assert!(cut.exists(), "a cut .gz is never deleted");
    assert_eq!(row_for(&rows, &rel).status(), "uploaded");
    assert!(!whole.exists());

    let got = search_json(&ws, &["--device", "FGT-0"]);
    let archives = got["archives"].as_array().unwrap();
    let keys: Vec<&str> = archives
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [rel.as_str(), "small/one.log.gz"], "{got}");
    assert_eq!(archives[0]["lines"], 40_000, "{got}");
    assert_eq!(archives[1]["lines"], 300, "{got}");
    let ip = &lines[39_999].srcip;
    let found = search_json(&ws, &["--ip", ip]);
    assert!(found.to_string().contains(&rel), "{ip}: {found}");
}

/// `--index`: auto indexes when the gzip proof inflates (with --delete)
/// and not in copy mode, where `search` then says how many archives it
/// cannot see into; always indexes in copy mode too; never never does.
// docs/SAFETY.md S32
#[test]
fn index_modes_and_what_search_says_of_unindexed_archives() {
    let ws = Workspace::new();
    let files = model(3, 1, 2, 50);
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload_local(&[], &[]), 0);
    let out = search(&ws, &["--device", "FGT-0"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("2 archived object(s) have no complete content index"),
        "{}",
        stderr(&out)
    );

    let cov = search(
        &ws,
        &["--device", "FGT-0", "--coverage", "--since", &ymd(DAY0)],
    );
    assert!(
        stderr(&cov).contains("coverage counts only the lines of indexed ones"),
        "{}",
        stderr(&cov)
    );
    assert_exit(&ws.upload_local(&["--index", "always"], &[]), 0);
    let got = search_json(&ws, &["--device", "FGT-0"]);
    assert_eq!(got["matched"], 2, "{got}");
    assert_eq!(got["lines"], 100);
    assert_eq!(got["unindexed"], 0);

    let ws = Workspace::new();
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload_local(&["--delete", "--index", "never"], &[]), 0);
    assert_eq!(search_json(&ws, &[])["unindexed"], 2);

    let bad = ws.upload_local(&["--index", "sometimes"], &[]);
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("--index"), "{}", stderr(&bad));
}

/// A cut archive is archived as before (copy mode does not prove gzip);
/// its index covers what was read and says so, and `search` shows it as
/// indexed in part and counts it among those it cannot speak for.
#[test]
fn a_cut_archive_is_archived_and_indexed_in_part() {
    let ws = Workspace::new();
    let files = model(5, 1, 1, 3000);
    write_log(&ws, &files[0].0, &files[0].1);
    let path = ws.logs().join(&files[0].0);
    let whole = std::fs::read(&path).unwrap();
    ws.write_raw(&files[0].0, &whole[..whole.len() * 2 / 3]);
    assert_exit(&ws.upload_local(&["--index", "always"], &[]), 0);
    assert_eq!(ws.rows()[0].status(), "uploaded");
    let got = search_json(&ws, &["--device", "FGT-0"]);
    let hit = &got["archives"][0];
    assert!(
        hit["incomplete"].as_str().unwrap().contains("ends early"),
        "{got}"
    );
    let lines = hit["lines"].as_u64().unwrap();
    assert!(lines > 0 && lines < 3000, "{got}");
    assert_eq!(got["unindexed"], 1);
    assert!(stdout(&search(&ws, &["--device", "FGT-0"])).contains("(indexed in part"));
}

/// `--coverage`: a day with no archive is missing, a day with a tenth of
/// the median lines is thin, reported apart; exit 1 while any is found.
#[test]
fn coverage_reports_missing_and_thin_days_apart() {
    let ws = Workspace::new();
    let mut files = model(9, 1, 6, 200);
    files.remove(2); // day 2: no archive
    files[3].1.truncate(20); // day 4: 10% of the median
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    let (from, to) = (ymd(DAY0), ymd(DAY0 + 5 * 86_400));
    let out = search(
        &ws,
        &[
            "--device",
            "FGT-0",
            "--coverage",
            "--since",
            &from,
            "--until",
            &to,
            "--json",
        ],
    );
    assert_exit(&out, 1);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["slots"], 6);
    assert_eq!(r["missing"], serde_json::json!([ymd(DAY0 + 2 * 86_400)]));
    assert_eq!(r["thin"][0]["day"], ymd(DAY0 + 4 * 86_400));
    assert_eq!(r["thin"][0]["percent"], 10);
    assert_eq!(r["thin"].as_array().unwrap().len(), 1);
    assert_eq!(r["median_lines"], 200);

    let whole = search(
        &ws,
        &[
            "--device",
            "FGT-0",
            "--coverage",
            "--since",
            &from,
            "--until",
            &ymd(DAY0 + 86_400),
        ],
    );
    assert_exit(&whole, 0);
    let text = stdout(&whole);
    assert!(text.contains("2 days, 0 missing, 0 thin"), "{text}");
}

/// Bad filters are one line naming the flag and a valid example; exit 2.
#[test]
fn bad_filters_are_refused_with_the_flag_named() {
    let ws = Workspace::new();
    assert_exit(&ws.upload_local(&[], &[]), 0);
    for (args, needle) in [
        (
            &["--ip", "10.1.2"][..],
            "--ip '10.1.2' is not an IP address",
        ),
        (
            &["--since", "2026-03-05", "--until", "2026-03-04"],
            "swap them",
        ),
        (
            &["--until", "yesterday"],
            "--until 'yesterday' is not a UTC day",
        ),
        (&["--coverage"], "--coverage needs --device"),
        (&["--by", "hour"], "--by only applies with --coverage"),
    ] {
        let out = search(&ws, args);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// `GET /search` over a real socket: the same JSON as `search --json` for
/// the same filters, behind the token, `limit` capping the archives (not
/// the totals), and a bad filter a 400 naming its parameter.
#[test]
fn the_api_search_is_the_command_over_http() {
    use crate::common::api::{Api, TOKEN};
    let ws = Workspace::new();
    let files = model(21, 2, 3, 100);
    for (rel, lines) in &files {
        write_log(&ws, rel, lines);
    }
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    let db = ws.db().display().to_string();
    let api = Api::start(&ws, &["serve", "--db", &db], &[("APP_TOKENS", TOKEN)]);
    let day = ymd(DAY0 + 86_400);

    let cli = search_json(
        &ws,
        &["--device", "FGT-0", "--action", "deny", "--since", &day],
    );
    let path = format!("/search?device=FGT-0&action=deny&since={day}");
    let (status, body, _) = api.get(&path, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let http: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(http, cli);
    assert_eq!(http["matched"], 2, "{http}");

    let (status, body, _) = api.get("/search?limit=1", Some(TOKEN));
    assert_eq!(status, 200);
    let capped: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(capped["archives"].as_array().unwrap().len(), 1);
    assert_eq!(capped["matched"], files.len());

    assert_eq!(api.get("/search", None).0, 401);
    for (query, name) in [
        ("ip=10.1", "ip '10.1'"),
        ("since=2026-03-05&until=2026-03-04", "swap them"),
        ("limit=5000", "limit '5000'"),
        ("devices=FGT-0", "unknown parameter 'devices'"),
        (
            "action=deny&action=accept",
            "parameter 'action' is given twice",
        ),
    ] {
        let (status, body, _) = api.get(&format!("/search?{query}"), Some(TOKEN));
        assert_eq!(status, 400, "{query}: {body}");
        let err: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            err["error"].as_str().unwrap().contains(name),
            "{query}: {body}"
        );
    }
}

/// Counts say when they are exact: a whole day without an address is; a
/// bound inside the day is an upper bound. An archive of more devices than
/// the index keeps rows for still shows each device's day in --coverage,
/// and a coverage range too long to list is refused (hostile review).
#[test]
fn exact_counts_overflow_coverage_and_range_caps() {
    let ws = Workspace::new();
    let files = model(23, 1, 1, 240);
    write_log(&ws, &files[0].0, &files[0].1);
    // 10,050 devices in one archive of one day: past the index's 10,000 rows.
    let flood: Vec<Line> = (0..10_050)
        .map(|n| Line {
            device: format!("D{n}"),
            devid: format!("ID{n}"),
            at: DAY0 + n as i64,
            action: "deny",
            srcip: "10.9.0.1".into(),
            dstip: "10.9.0.2".into(),
        })
        .collect();
    write_log(&ws, "flood.log.gz", &flood);
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    let d0 = ymd(DAY0);
    let whole = search_json(&ws, &["--device", "FGT-0", "--since", &d0, "--until", &d0]);
    assert_eq!(whole["archives"][0]["exact"], true, "{whole}");
    assert_eq!(whole["archives"][0]["lines"], 240);
    let noon = format!("{d0}T12:00:00Z");
    let part = search_json(
        &ws,
        &["--device", "FGT-0", "--since", &noon, "--until", &noon],
    );
    assert_eq!(part["archives"][0]["exact"], false, "{part}");
    assert!(part["archives"][0]["lines"].as_u64().unwrap() >= 1);

    let late = search(
        &ws,
        &[
            "--device",
            "D10040",
            "--coverage",
            "--since",
            &d0,
            "--until",
            &d0,
        ],
    );
    assert_exit(&late, 0);
    assert!(stdout(&late).contains("0 missing"), "{}", stdout(&late));

    for args in [
        &[
            "--device",
            "D1",
            "--coverage",
            "--by",
            "hour",
            "--since",
            "2020-01-01",
            "--until",
            "2026-01-01",
        ][..],
        &[
            "--device",
            "D1",
            "--coverage",
            "--since",
            "1000-01-01",
            "--until",
            "9999-12-31",
        ],
    ] {
        let out = search(&ws, args);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("narrow it with --since/--until"),
            "{}",
            stderr(&out)
        );
    }
}

/// A pruned archive leaves the index: search no longer lists it, nor
/// counts it among those it cannot see into; the unindexed count comes
/// from the inventory at once, also for archives uploaded before the index.
#[test]
fn pruned_archives_leave_search() {
    let ws = Workspace::new();
    let files = model(29, 1, 2, 40);
    write_log(&ws, &files[0].0, &files[0].1);
    assert_exit(&ws.upload_local(&["--delete"], &[]), 0);
    write_log(&ws, &files[1].0, &files[1].1);
    assert_exit(&ws.upload_local(&[], &[]), 0); // copy mode: not indexed
    let before = search_json(&ws, &["--device", "FGT-0"]);
    assert_eq!(
        (before["matched"].as_u64(), before["unindexed"].as_u64()),
        (Some(1), Some(1))
    );
    age_rows(&ws.db(), "2024-01-01T00:00:00Z");
    assert_exit(
        &ws.on_archive("prune", &["--older-than", "400", "--yes"]),
        0,
    );
    let after = search_json(&ws, &[]);
    assert_eq!(after["matched"], 0, "{after}");
    assert_eq!(after["unindexed"], 0, "{after}");
}
