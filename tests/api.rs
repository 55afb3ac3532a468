//! `fgbackup serve` and `fgbackup daemon` over a real socket with a real HTTP client.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::api::{Api, TOKEN, header};
use common::rawhttp::{self, End};
use common::*;

/// A workspace whose database holds `n` uploaded files (directory store).
fn inventory_with(n: usize) -> Workspace {
    let ws = Workspace::new();
    for i in 0..n {
        ws.write_gz(&format!("FGT-{}/fw-{i:03}.log.gz", i % 3), 20, i as u64);
    }
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    ws
}

fn serve(ws: &Workspace, extra: &[&str]) -> Api {
    let db = ws.db();
    let mut args = vec!["serve", "--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    Api::start(
        ws,
        &args,
        &[("APP_TOKENS", &format!("other-token,{TOKEN}"))],
    )
}

#[test]
fn health_needs_no_token_and_reports_the_database() {
    let ws = inventory_with(2);
    let api = serve(&ws, &[]);
    let (status, body, headers) = api.get("/health", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["database"], "ok");
    assert!(v["last_success"].as_str().unwrap().ends_with('Z'));

    // A server pointed at a missing database answers 503, not a crash.
    let empty = Workspace::new();
    let api2 = serve(&empty, &[]);
    let (status, body, _) = api2.get("/health", None);
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"],
        "error"
    );
    let (status, _, _) = api2.get("/backups", Some(TOKEN));
    assert_eq!(status, 503);
}

// docs/SAFETY.md S29
#[test]
fn auth_errors_are_json_and_tokens_never_logged() {
    let ws = inventory_with(1);
    let api = serve(&ws, &[]);
    let (status, body, headers) = api.get("/backups", None);
    assert_eq!(status, 401);
    assert!(
        header(&headers, "www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("Authorization")
    );
    let (status, _, _) = api.get("/backups", Some("wrong-token"));
    assert_eq!(status, 401);
    let (status, body, _) = api.get(&format!("/backups?token={TOKEN}"), None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    assert_eq!(api.get("/backups", Some("other-token")).0, 200);
    assert_eq!(
        api.get("/metrics", None).0,
        401,
        "metrics need a token by default"
    );
    let (code, log) = api.terminate();
    assert_eq!(code, Some(0), "SIGTERM exits 0");
    let log = log.join("\n");
    assert!(
        !log.contains(TOKEN) && !log.contains("wrong-token"),
        "{log}"
    );
    assert!(
        log.contains("GET /backups -> 401"),
        "requests are logged at debug: {log}"
    );
}

#[test]
fn list_filters_and_pagination() {
    let ws = inventory_with(12);
    let api = serve(&ws, &[]);
    let all = api.json("/backups");
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 12);
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    for field in [
        "id",
        "filename",
        "s3_url",
        "sha256",
        "uploaded_at",
        "backup_date",
        "deleted_local",
        "status",
        "object_key",
        "size_bytes",
        "run_id",
    ] {
        assert!(
            rows[0].get(field).is_some(),
            "field {field} missing: {}",
            rows[0]
        );
    }
    assert_eq!(rows[0]["status"], "uploaded");

    // Pages of 5 via the Link header cover every row once.
    let mut seen = Vec::new();
    let mut next = Some("/backups?limit=5".to_string());
    while let Some(path) = next {
        let (status, body, headers) = api.get(&path, Some(TOKEN));
        assert_eq!(status, 200);
        let page: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert!(page.len() <= 5);
        seen.extend(page.iter().map(|r| r["id"].as_i64().unwrap()));
        next = header(&headers, "link").map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
    }
    assert_eq!(seen, ids);

    let f1 = api.json("/backups?filename=fw-00");
    assert_eq!(f1.as_array().unwrap().len(), 10);
    assert!(
        f1.as_array()
            .unwrap()
            .iter()
            .all(|r| r["filename"].as_str().unwrap().contains("fw-00"))
    );
    assert_eq!(
        api.json("/backups?status=uploaded&limit=3")
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        api.json("/backups?status=failed_conflict")
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let today = rows[0]["backup_date"].as_str().unwrap().to_string();
    assert_eq!(
        api.json(&format!("/backups?date_from={today}&date_to={today}"))
            .as_array()
            .unwrap()
            .len(),
        12
    );
    assert_eq!(
        api.json("/backups?date_to=2000-01-01")
            .as_array()
            .unwrap()
            .len(),
        0
    );

    for (path, word) in [
        ("/backups?limit=0", "limit"),
        ("/backups?limit=abc", "limit"),
        ("/backups?limit=5000", "limit"),
        ("/backups?date_from=yesterday", "date_from"),
        // The shape of a date is not enough: a day that does not exist is
        // refused as the CLI refuses it (one check for both).
        ("/backups?date_from=2026-99-99", "date_from"),
        ("/stats?date_to=2026-02-30", "date_to"),
        ("/backups?cursor=-3", "cursor"),
        ("/backups?colour=blue", "colour"),
        ("/backups?filename=%zz", "malformed"),
        ("/backups/abc", "abc"),
    ] {
        let (status, body, _) = api.get(path, Some(TOKEN));
        assert_eq!(status, 400, "{path}: {body}");
        let err = serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(err.contains(word), "{path}: {err}");
    }
}

#[test]
fn single_rows_stats_metrics_and_errors() {
    let ws = inventory_with(3);
    let api = serve(&ws, &["--metrics-no-auth"]);
    let last = api.json("/backups/last");
    let id = last["id"].as_i64().unwrap();
    assert_eq!(api.json(&format!("/backups/{id}")), last);
    let (status, body, _) = api.get("/backups/99999", Some(TOKEN));
    assert_eq!(status, 404, "{body}");

    let stats = api.json("/stats");
    let day = &stats.as_array().unwrap()[0];
    assert_eq!(day["uploaded"], 3);
    assert_eq!(day["failed"], 0);
    let bytes: i64 = api
        .json("/backups")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size_bytes"].as_i64().unwrap())
        .sum();
    assert_eq!(day["bytes_uploaded"].as_i64().unwrap(), bytes);

    let (status, text, headers) = api.get("/metrics", None);
    assert_eq!(status, 200);
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        text.contains("fgbackup_db_rows{status=\"uploaded\"} 3"),
        "{text}"
    );
    assert!(text.contains("fgbackup_last_run_success 1"), "{text}");
    assert!(
        text.contains("fgbackup_api_requests_total{route=\"backups\",code=\"2xx\"}"),
        "{text}"
    );
    assert!(
        text.contains("fgbackup_api_request_duration_seconds_count"),
        "{text}"
    );

    let (status, body, _) = api.get("/nowhere", Some(TOKEN));
    assert_eq!(status, 404, "{body}");
    let (status, body, _) = api.get("/backups/1/presign", Some(TOKEN));
    assert_eq!(status, 404);
    assert!(body.contains("--presign"), "{body}");

    // Wrong method and a request body, over a raw socket.
    for (request, expect) in [
        (
            "POST /backups HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "405",
        ),
        (
            "GET /backups HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            "413",
        ),
    ] {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(api.base.trim_start_matches("http://")).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {expect}")),
            "{answer}"
        );
        assert!(answer.contains("{\"error\":"), "{answer}");
    }
}

/// Sum of `field` over the days of `/stats`.
fn stats_sum(stats: &serde_json::Value, field: &str) -> i64 {
    stats
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d[field]
                .as_i64()
                .unwrap_or_else(|| panic!("{field} missing: {d}"))
        })
        .sum()
}

/// Three files archived, then a second run: two skipped, one replaced
/// under its key (`failed_conflict`), one truncated (`failed_gzip`).
fn inventory_with_two_failures() -> Workspace {
    let ws = inventory_with(3);
    ws.write_gz("FGT-1/fw-001.log.gz", 20, 99);
    let good = std::fs::read(ws.write_gz("cut.log.gz", 300, 7)).unwrap();
    ws.write_raw("cut.log.gz", &good[..good.len() - 40]);
    let out = ws.upload_local(&["--gzip-check", "always"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    ws
}

#[test]
fn status_failed_selects_every_failure_and_unknown_statuses_are_refused() {
    let ws = inventory_with_two_failures();
    let api = serve(&ws, &[]);
    let failed = api.json("/backups?status=failed");
    let mut statuses: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["failed_conflict", "failed_gzip"], "{failed}");
    assert_eq!(
        stats_sum(&api.json("/stats"), "failed"),
        2,
        "/stats counts the same rows"
    );
    assert_eq!(
        api.json("/backups?status=failed_gzip")[0]["filename"],
        "cut.log.gz"
    );

    // Pages of status=failed keep the filter in their Link.
    let (_, body, headers) = api.get("/backups?status=failed&limit=1", Some(TOKEN));
    let link = header(&headers, "link").expect("a full page has a next link");
    assert!(
        link.contains("status=failed&") || link.contains("status=failed>"),
        "{link}"
    );
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let second = api.json(next);
    assert_eq!(second.as_array().unwrap().len(), 1, "{body} then {second}");
    assert_ne!(
        second[0]["id"],
        serde_json::from_str::<serde_json::Value>(&body).unwrap()[0]["id"]
    );

    for bogus in ["bogus", "FAILED", "fail", "deferred", "failed_"] {
        let (status, body, headers) = api.get(&format!("/backups?status={bogus}"), Some(TOKEN));
        assert_eq!(status, 400, "status={bogus}: {body}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v.as_object().unwrap().len(),
            1,
            "only an error field: {body}"
        );
        let err = v["error"].as_str().unwrap();
        assert!(err.contains(&format!("'{bogus}'")), "{err}");
        for valid in [
            "failed ",
            "uploaded",
            "skipped_exists",
            "failed_gzip",
            "failed_interrupted",
            "reindexed_unproven",
        ] {
            assert!(err.contains(valid), "{valid} not listed: {err}");
        }
    }
    assert_eq!(api.json("/backups?status=").as_array().unwrap().len(), 7);
}

#[test]
fn stats_count_distinct_files_beside_rows() {
    let ws = inventory_with_two_failures();
    let api = serve(&ws, &[]);
    let stats = api.json("/stats");
    for day in stats.as_array().unwrap() {
        for field in [
            "date",
            "total",
            "uploaded",
            "skipped_exists",
            "failed",
            "bytes_uploaded",
            "files",
        ] {
            assert!(day.get(field).is_some(), "{field} missing: {day}");
        }
    }
    // 7 rows: 3 uploaded, then 2 skipped, 1 conflict, 1 truncated; 4 files.
    assert_eq!(stats_sum(&stats, "total"), 7, "{stats}");
    assert_eq!(stats_sum(&stats, "uploaded"), 3, "{stats}");
    assert_eq!(stats_sum(&stats, "skipped_exists"), 2, "{stats}");
    assert_eq!(stats_sum(&stats, "files"), 4, "{stats}");

    // The same on a suite database, which has no object keys.
    let suite = Workspace::new();
    std::fs::create_dir_all(suite.db().parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(suite.db()).unwrap();
    conn.execute_batch(
        "CREATE TABLE backups (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT NOT NULL, s3_url TEXT, sha256 TEXT,
           uploaded_at TEXT, backup_date TEXT, deleted_local INTEGER DEFAULT 0, status TEXT);
         INSERT INTO backups (filename, backup_date, status) VALUES
           ('a.log.gz', '2025-01-01', 'uploaded'), ('a.log.gz', '2025-01-01', 'skipped_exists'),
           ('b.log.gz', '2025-01-01', 'failed_upload'), ('b.log.gz', '2025-01-01', 'failed_legacy'),
           ('c.log.gz', '2025-01-02', NULL);",
    )
    .unwrap();
    drop(conn);
    let api = serve(&suite, &[]);
    let stats = api.json("/stats");
    assert_eq!(stats[0]["total"], 4, "{stats}");
    assert_eq!(stats[0]["files"], 2, "{stats}");
    assert_eq!(stats[0]["failed"], 2, "{stats}");
    assert_eq!(
        stats[1]["files"], 1,
        "a day of rows without status: {stats}"
    );
    assert_eq!(stats[1]["failed"], 0, "{stats}");
    assert_eq!(
        api.json("/backups?status=failed").as_array().unwrap().len(),
        2,
        "failed_* statuses this version does not know are failures too"
    );
}

#[test]
fn tokens_file_rotates_without_restart() {
    let ws = inventory_with(1);
    let file = ws.tmp.path().join("tokens");
    std::fs::write(&file, "# rotated weekly\nfirst-token\n").unwrap();
    let db = ws.db();
    let api = Api::start(
        &ws,
        &["serve", "--db", db.to_str().unwrap()],
        &[("APP_TOKENS_FILE", file.to_str().unwrap())],
    );
    assert_eq!(api.get("/backups", Some("first-token")).0, 200);
    assert_eq!(api.get("/backups", Some("second-token")).0, 401);
    std::fs::write(&file, "second-token\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.get("/backups", Some("second-token")).0 != 200 {
        assert!(Instant::now() < deadline, "new token never accepted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        api.get("/backups", Some("first-token")).0,
        401,
        "old token revoked"
    );
}

#[test]
fn api_never_writes_and_reads_during_an_upload() {
    let ws = inventory_with(5);
    let before = sha256_file(&ws.db());
    let api = serve(&ws, &[]);
    for path in [
        "/backups",
        "/backups/last",
        "/stats",
        "/health",
        "/metrics",
        "/backups/1",
    ] {
        api.get(path, Some(TOKEN));
    }
    let (code, _) = api.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(
        sha256_file(&ws.db()),
        before,
        "the API changed the database"
    );

    // Now serve while an upload of 150 more files writes rows.
    for i in 0..150 {
        ws.write_gz(&format!("more/m-{i:03}.log.gz"), 10, 1000 + i);
    }
    let api = serve(&ws, &[]);
    let mut upload = ws
        .command(&ws.local_upload_args(&[]), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reads = 0;
    let mut max_seen = 0;
    loop {
        let finished = upload.try_wait().unwrap().is_some();
        let (status, body, _) = api.get("/backups/last", Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_i64()
            .unwrap();
        assert!(id >= max_seen, "ids only grow");
        max_seen = id;
        reads += 1;
        if finished {
            break;
        }
    }
    assert!(upload.wait().unwrap().success());
    assert!(reads > 1);
    assert_eq!(
        api.json("/backups?limit=1000").as_array().unwrap().len(),
        5 + 5 + 150,
        "5 first, 5 skipped, 150 new"
    );
}

#[test]
fn serves_a_python_suite_database() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.db().parent().unwrap()).unwrap();
    write_suite_db(&ws.db());
    let api = serve(&ws, &[]);
    let rows = api.json("/backups");
    assert_eq!(rows[0]["filename"], "a.log.gz");
    assert_eq!(rows[0]["deleted_local"], 1);
    assert!(rows[0]["object_key"].is_null());
    assert_eq!(api.json("/stats")[0]["uploaded"], 1);
    let (status, body, _) = api.get("/health", None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn presign_gives_a_working_link() {
    let server = S3Server::start();
    let ws = Workspace::new();
    let f = ws.write_gz("p.log.gz", 200, 9);
    let out = ws.upload(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let db = ws.db();
    let endpoint = server.endpoint();
    let api = Api::start(
        &ws,
        &[
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--presign",
            "--presign-max",
            "600",
            "--bucket",
            BUCKET,
            "--endpoint",
            &endpoint,
        ],
        &[("APP_TOKENS", TOKEN)],
    );
    let id = api.json("/backups/last")["id"].as_i64().unwrap();
    let v = api.json(&format!("/backups/{id}/presign?expires=60"));
    assert_eq!(v["expires_in"], 60);
    let url = v["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let mut resp = ureq::get(url).call().unwrap();
    assert_eq!(
        resp.body_mut().read_to_vec().unwrap(),
        std::fs::read(&f).unwrap()
    );
    let (status, body, _) = api.get(&format!("/backups/{id}/presign?expires=9999"), Some(TOKEN));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn daemon_uploads_on_schedule_and_survives_a_failed_run() {
    let ws = Workspace::new();
    ws.write_gz("d.log.gz", 50, 1);
    let args = ws.local_upload_args(&["--delete"]);
    let api = Api::daemon(&ws, &args, "1h", &[("APP_TOKENS", TOKEN)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = api.get("/backups/last", Some(TOKEN));
        // The row is committed before the delete and updated after it.
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["status"], "uploaded");
            if v["deleted_local"] == 1 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "daemon never uploaded: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text, _) = api.get("/metrics", Some(TOKEN));
        if text.contains("fgbackup_daemon_runs_total{result=\"ok\"} 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = api.terminate();
    assert_eq!(code, Some(0));

    // A daemon whose S3 endpoint is down keeps serving and counts the failure.
    let ws2 = Workspace::new();
    ws2.write_gz("e.log.gz", 50, 2);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let args = ws2.s3_upload_args(&dead, &["--retries", "0"]);
    let api = Api::daemon(&ws2, &args, "1h", &[("APP_TOKENS", TOKEN)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text, _) = api.get("/metrics", Some(TOKEN));
        if status == 200 && text.contains("fgbackup_daemon_runs_total{result=\"failed\"} 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{status} {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(api.get("/health", None).0, 200);
    assert!(ws2.logs().join("e.log.gz").exists());
    let (code, _) = api.terminate();
    assert_eq!(code, Some(0));
}

// ---------------------------------------------------------------------------
// Hostile clients (issue 9): each test replays an attack over real sockets
// against the real binary.
// ---------------------------------------------------------------------------

/// The server's `HEAD_TIMEOUT` (src/api/mod.rs), as documented in docs/API.md.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// "at most N connections" from the server's start-up line.
fn connection_cap(api: &Api) -> usize {
    let line = api.log_lines("API listening on").remove(0);
    line.split("at most ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection cap in {line}"))
}

// docs/SAFETY.md S19
#[test]
fn idle_connection_flood_beyond_the_descriptor_limit_is_capped_and_survived() {
    const NOFILE: u64 = 256;
    const FLOOD: usize = 600;
    let ws = inventory_with(1);
    let db = ws.db();
    let mut api = Api::start_limited(
        &ws,
        &["serve", "--db", db.to_str().unwrap()],
        &[("APP_TOKENS", TOKEN)],
        Some(NOFILE),
    );
    assert_eq!(api.health_status(), Some(200));

    let mut held = Vec::new();
    for _ in 0..FLOOD {
        held.push(rawhttp::connect(api.addr()).expect("the listener accepts"));
    }
    let cap = connection_cap(&api);
    assert!(cap * 2 < NOFILE as usize, "cap {cap} fits the descriptors");
    // Connections beyond the cap are answered 503 and closed at once.
    let mut answers = vec![String::new(); FLOOD];
    let mut closed = vec![false; FLOOD];
    let busy = rawhttp::wait_for(Duration::from_secs(8), "503 answers", || {
        for (i, s) in held.iter_mut().enumerate() {
            if closed[i] {
                continue;
            }
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 1024];
            match std::io::Read::read(s, &mut buf) {
                Ok(0) => closed[i] = true,
                Ok(n) => answers[i].push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => closed[i] = true,
            }
        }
        let busy = answers
            .iter()
            .zip(&closed)
            .filter(|(a, c)| **c && a.starts_with("HTTP/1.1 503"))
            .count();
        (busy >= FLOOD - cap).then_some(busy)
    });
    let sample = answers.iter().find(|a| a.contains("503")).unwrap();
    assert!(
        rawhttp::first_body(sample).contains("{\"error\":\"too many connections\"}"),
        "{sample}"
    );
    assert!(sample.contains("Retry-After: 1"), "{sample}");
    let threads = rawhttp::proc_status(api.pid(), "Threads");
    assert!(
        threads <= cap as u64 + 32,
        "{threads} threads for at most {cap} connections"
    );
    api.assert_alive();
    eprintln!(
        "{FLOOD} connections under nofile={NOFILE}: cap {cap}, {busy} answered 503, {threads} threads, {} descriptors, VmRSS {} KiB",
        rawhttp::open_fds(api.pid()),
        rawhttp::proc_status(api.pid(), "VmRSS")
    );

    drop(held);
    rawhttp::wait_for(Duration::from_secs(30), "/health 200 again", || {
        (api.health_status() == Some(200)).then_some(())
    });
    api.assert_alive();
    assert!(api.log_lines("panicked").is_empty());
}

// docs/SAFETY.md S19
#[test]
fn accept_errors_are_retried_when_descriptors_run_out() {
    let ws = inventory_with(1);
    let mut api = serve(&ws, &[]);
    // The worker opens its database on the first request.
    assert_eq!(api.health_status(), Some(200));
    // Leave room for a few connections only, as if the uploader held the rest.
    let base = rawhttp::open_fds(api.pid()) as u64;
    rawhttp::set_nofile(api.pid(), base + 9);
    let held: Vec<_> = (0..100)
        .map(|_| rawhttp::connect(api.addr()).expect("the kernel queues connections"))
        .collect();
    rawhttp::wait_for(Duration::from_secs(10), "an accept error", || {
        (!api.log_lines("Too many open files").is_empty()).then_some(())
    });
    api.assert_alive();

    drop(held);
    rawhttp::wait_for(Duration::from_secs(30), "/health 200 again", || {
        (api.health_status() == Some(200)).then_some(())
    });
    api.assert_alive();
    assert!(api.log_lines("panicked").is_empty());
    let reports = api.log_lines("Error accepting new client").len();
    assert_eq!(reports, 1, "reported once a minute, not per retry");
}

// docs/SAFETY.md S19
#[test]
fn oversized_request_heads_get_414_or_431_and_memory_stays_flat() {
    use std::io::Write;
    const SEND_AT_MOST: usize = 256 << 20;
    let ws = inventory_with(1);
    let mut api = serve(&ws, &[]);
    assert_eq!(api.health_status(), Some(200));
    let rss_before = rawhttp::proc_status(api.pid(), "VmRSS");

    // A request line that never ends.
    let mut s = rawhttp::connect(api.addr()).unwrap();
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        let mut sent = writer.write(b"GET /").unwrap_or(0);
        while sent < SEND_AT_MOST {
            match writer.write_all(&chunk) {
                Ok(()) => sent += chunk.len(),
                Err(_) => break,
            }
        }
        sent
    });
    let (text, end) = rawhttp::read_until_close(&mut s, Instant::now() + Duration::from_secs(30));
    assert_eq!(rawhttp::statuses(&text), [414], "{text}");
    assert_eq!(end, End::Closed);
    assert!(
        rawhttp::first_body(&text).starts_with("{\"error\":"),
        "{text}"
    );
    let sent = sender.join().unwrap();
    let rss_after = rawhttp::proc_status(api.pid(), "VmRSS");
    eprintln!(
        "request line: server stopped it after the client sent {} KiB; VmRSS {rss_before} -> {rss_after} KiB",
        sent >> 10
    );
    assert!(sent < 32 << 20, "the server kept reading: {sent} bytes");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "VmRSS grew from {rss_before} to {rss_after} KiB"
    );

    // A header block over 16 KiB made of ordinary-sized headers.
    let mut request = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..400 {
        request.push_str(&format!("X-Filler-{i}: {}\r\n", "b".repeat(100)));
    }
    request.push_str("\r\n");
    let (text, end) = rawhttp::exchange(api.addr(), request.as_bytes(), Duration::from_secs(10));
    assert_eq!(rawhttp::statuses(&text), [431], "{text}");
    assert_eq!(end, End::Closed);
    assert!(rawhttp::first_body(&text).contains("\"error\""), "{text}");

    // A large but legitimate head is still served.
    let mut request = format!(
        "GET /backups?filename={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n",
        "f".repeat(4000)
    );
    for i in 0..80 {
        request.push_str(&format!("X-Filler-{i}: {}\r\n", "b".repeat(100)));
    }
    request.push_str("\r\n");
    let (text, _) = rawhttp::exchange(api.addr(), request.as_bytes(), Duration::from_secs(10));
    assert_eq!(rawhttp::statuses(&text), [200], "{text}");
    api.assert_alive();
}

// docs/SAFETY.md S19
#[test]
fn half_sent_idle_and_trickling_clients_are_dropped_after_the_head_timeout() {
    use std::io::Write;
    let ws = inventory_with(1);
    let mut api = serve(&ws, &[]);
    let started = Instant::now();
    let watch = |mut s: std::net::TcpStream| {
        std::thread::spawn(move || {
            let (text, end) = rawhttp::read_until_close(&mut s, started + 3 * HEAD_TIMEOUT);
            (text, end, started.elapsed())
        })
    };
    // Half a request, then silence.
    let mut half = rawhttp::connect(api.addr()).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let half = watch(half);
    // One answered request, then an idle keep-alive connection.
    let mut idle = rawhttp::connect(api.addr()).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let idle = watch(idle);
    // A header sent one byte every 500 ms: each read succeeds, the head never ends.
    let trickle = rawhttp::connect(api.addr()).unwrap();
    let mut writer = trickle.try_clone().unwrap();
    let trickle = watch(trickle);
    let pacer = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET /health HTTP/1.1\r\nX-Slow: ");
        for _ in 0..120 {
            if writer.write_all(b"z").is_err() {
                break;
            }
            // Pacing of the attack, not synchronisation.
            std::thread::sleep(Duration::from_millis(500));
        }
    });

    let early = HEAD_TIMEOUT - Duration::from_secs(1);
    let late = HEAD_TIMEOUT + Duration::from_secs(5);
    for (name, handle, expect) in [
        ("half", half, 408),
        ("idle", idle, 200),
        ("trickle", trickle, 408),
    ] {
        let (text, end, at) = handle.join().unwrap();
        eprintln!("{name}: closed after {at:?}");
        assert_eq!(end, End::Closed, "{name} still open after {at:?}: {text}");
        assert_eq!(rawhttp::statuses(&text), [expect], "{name}: {text}");
        assert!(at >= early && at <= late, "{name} closed after {at:?}");
        if expect == 408 {
            assert!(rawhttp::first_body(&text).contains("\"error\""), "{text}");
        }
    }
    pacer.join().unwrap();
    assert_eq!(api.health_status(), Some(200));
    api.assert_alive();
}

// docs/SAFETY.md S20
#[test]
fn request_bodies_cannot_crash_stall_or_smuggle() {
    use std::io::Write;
    let ws = inventory_with(1);
    let mut api = serve(&ws, &["--threads", "2"]);

    // A Content-Length of 100 TB: 0.12.0 tried to allocate it and aborted.
    let (text, end) = rawhttp::exchange(
        api.addr(),
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\nabc",
        Duration::from_secs(10),
    );
    assert_eq!(rawhttp::statuses(&text), [413], "{text}");
    assert_eq!(end, End::Closed);
    api.assert_alive();

    // Bodies announced and never sent, more than there are workers.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = rawhttp::connect(api.addr()).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            .unwrap();
        let (text, _) = rawhttp::read_until_close(&mut s, Instant::now() + Duration::from_secs(5));
        assert_eq!(rawhttp::statuses(&text), [413], "{text}");
        stalled.push(s);
    }
    assert_eq!(api.health_status(), Some(200), "workers are free");

    // A request hidden in a body is never run, whatever the framing.
    let hidden = format!(
        "GET /backups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(2000)
    );
    let by_length = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{hidden}",
        hidden.len()
    );
    let chunked = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
    );
    for request in [by_length, chunked] {
        let (text, end) =
            rawhttp::exchange(api.addr(), request.as_bytes(), Duration::from_secs(10));
        assert_eq!(rawhttp::statuses(&text), [413], "{text}");
        assert_eq!(end, End::Closed, "{text}");
    }
    api.assert_alive();
}

// docs/SAFETY.md S20
#[test]
fn ambiguous_body_framing_is_refused_and_the_connection_closed() {
    let ws = inventory_with(1);
    let mut api = serve(&ws, &[]);
    let smuggled =
        format!("GET /backups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    let n = smuggled.len();
    for headers in [
        format!("Content-Length: {n}\r\nTransfer-Encoding: chunked"),
        format!("Transfer-Encoding: chunked\r\nContent-Length: {n}"),
        format!("Content-Length: {n}\r\nContent-Length: 0"),
        format!("Content-Length: +{n}"),
        "Transfer-Encoding: gzip".to_string(),
    ] {
        let request = format!("GET /health HTTP/1.1\r\nHost: x\r\n{headers}\r\n\r\n{smuggled}");
        let (text, end) =
            rawhttp::exchange(api.addr(), request.as_bytes(), Duration::from_secs(10));
        assert_eq!(rawhttp::statuses(&text), [400], "{headers}: {text}");
        assert_eq!(end, End::Closed, "{headers}: {text}");
        let body: serde_json::Value = serde_json::from_str(rawhttp::first_body(&text)).unwrap();
        assert!(body["error"].is_string(), "{body}");
        assert!(text.contains("Connection: close"), "{text}");
    }
    api.assert_alive();
}

// docs/SAFETY.md S19
#[test]
fn a_pipelining_client_that_never_reads_is_bounded_and_let_go() {
    use std::io::Write;
    const SEND_AT_MOST: usize = 32 << 20;
    let ws = inventory_with(1);
    let mut api = serve(&ws, &[]);
    assert_eq!(api.health_status(), Some(200));
    let rss_before = rawhttp::proc_status(api.pid(), "VmRSS");
    let sockets_before = rawhttp::open_sockets(api.pid());

    // Requests back to back, answers never read, until the server stops taking them.
    let mut s = rawhttp::connect(api.addr()).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let chunk = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(30_000);
    let mut sent = 0;
    while sent < SEND_AT_MOST && s.write_all(chunk.as_bytes()).is_ok() {
        sent += chunk.len();
    }
    let rss = rawhttp::proc_status(api.pid(), "VmRSS");
    eprintln!(
        "pipelining: server stopped taking requests after {} KiB; VmRSS {rss_before} -> {rss} KiB",
        sent >> 10
    );
    assert!(sent < SEND_AT_MOST, "the server read all {sent} bytes");
    assert!(
        rss < rss_before + 16 * 1024,
        "VmRSS grew from {rss_before} to {rss} KiB"
    );
    assert_eq!(api.health_status(), Some(200), "other clients are served");

    // The answer that cannot be written times out (10 s) and ends the connection.
    rawhttp::wait_for(
        Duration::from_secs(40),
        "the connection to be released",
        || (rawhttp::open_sockets(api.pid()) <= sockets_before).then_some(()),
    );
    drop(s);
    api.assert_alive();
}
// docs/SAFETY.md S20
#[test]
fn malformed_percent_escapes_are_rejected_over_a_raw_socket() {
    let ws = inventory_with(1);
    let api = serve(&ws, &[]);
    let get = |target: &str| {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        );
        rawhttp::exchange(api.addr(), request.as_bytes(), Duration::from_secs(10)).0
    };
    for target in [
        "/backups?filename=%+1",
        "/backups?filename=%+f",
        "/backups?filename=%-1",
        "/backups?filename=%1",
        "/backups?filename=%",
        "/backups?filename=a%2",
        "/backups?filename=%%41",
        "/backups?%+1=x",
    ] {
        let text = get(target);
        assert_eq!(rawhttp::statuses(&text), [400], "{target}: {text}");
        let body: serde_json::Value = serde_json::from_str(rawhttp::first_body(&text)).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("malformed"),
            "{target}: {body}"
        );
    }
    let text = get("/backups?filename=fw%2D000");
    assert_eq!(rawhttp::statuses(&text), [200], "{text}");
}

/// A server whose only tokens are `APP_TOKENS=env-token` and the file
/// `tokens`, written with `content` (and `mtime`) before the server starts.
fn serve_with_token_file(
    ws: &Workspace,
    content: &str,
    mtime: Option<std::time::SystemTime>,
) -> (Api, std::path::PathBuf) {
    let file = ws.tmp.path().join("tokens");
    std::fs::write(&file, content).unwrap();
    if let Some(t) = mtime {
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(t).unwrap();
    }
    let db = ws.db();
    let api = Api::start(
        ws,
        &["serve", "--db", db.to_str().unwrap()],
        &[
            ("APP_TOKENS", "env-token"),
            ("APP_TOKENS_FILE", file.to_str().unwrap()),
        ],
    );
    (api, file)
}

/// Waits until `token` gets `status` from `GET /backups`.
fn wait_for_token_status(api: &Api, token: &str, status: u16) {
    rawhttp::wait_for(
        Duration::from_secs(10),
        &format!("{status} for a token"),
        || (api.get("/backups", Some(token)).0 == status).then_some(()),
    );
}

// docs/SAFETY.md S21
#[test]
fn deleting_the_token_file_revokes_its_tokens_and_says_so_once() {
    let ws = inventory_with(1);
    let (api, file) = serve_with_token_file(&ws, "file-token\n", None);
    assert_eq!(api.get("/backups", Some("file-token")).0, 200);
    std::fs::remove_file(&file).unwrap();
    wait_for_token_status(&api, "file-token", 401);
    for _ in 0..20 {
        assert_eq!(api.get("/backups", Some("file-token")).0, 401);
    }
    assert_eq!(
        api.get("/backups", Some("env-token")).0,
        200,
        "APP_TOKENS still work"
    );
    assert_eq!(
        api.log_lines("cannot read APP_TOKENS_FILE").len(),
        1,
        "logged once, not per request: {:?}",
        api.log_lines("APP_TOKENS_FILE")
    );
    std::fs::write(&file, "file-token\n").unwrap();
    wait_for_token_status(&api, "file-token", 200);
    let (code, log) = api.terminate();
    assert_eq!(code, Some(0));
    assert!(!log.join("\n").contains("file-token"), "a token was logged");
}

// docs/SAFETY.md S21
#[test]
fn token_file_rewritten_with_the_same_size_and_mtime_is_reloaded() {
    use std::io::Write;
    let ws = inventory_with(1);
    let mtime = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let (api, file) = serve_with_token_file(&ws, "token-AAAA\n", Some(mtime));
    assert_eq!(api.get("/backups", Some("token-AAAA")).0, 200);
    // Rewritten in place, same length, mtime put back, with no request in
    // between: size and mtime are exactly as the server last saw them.
    let mut f = std::fs::File::options().write(true).open(&file).unwrap();
    f.write_all(b"token-BBBB\n").unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.len(), meta.modified().unwrap()), (11, mtime));
    wait_for_token_status(&api, "token-BBBB", 200);
    assert_eq!(api.get("/backups", Some("token-AAAA")).0, 401);
}

// docs/SAFETY.md S21
#[test]
fn an_unreadable_or_half_written_token_file_fails_closed() {
    let ws = inventory_with(1);
    let (api, file) = serve_with_token_file(&ws, "file-token\n", None);
    assert_eq!(api.get("/backups", Some("file-token")).0, 200);

    // Unreadable (a directory: reading it fails even for root).
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    wait_for_token_status(&api, "file-token", 401);
    std::fs::remove_dir(&file).unwrap();
    std::fs::write(&file, "file-token\n").unwrap();
    wait_for_token_status(&api, "file-token", 200);

    // Not text: the whole file is refused.
    std::fs::write(&file, b"file-token\n\xff\xfe\n").unwrap();
    wait_for_token_status(&api, "file-token", 401);

    // Caught half-written: the unfinished last line is no token, not even a
    // prefix of the real one; the complete lines count.
    std::fs::write(&file, "file-token\nsecond-tok").unwrap();
    wait_for_token_status(&api, "file-token", 200);
    assert_eq!(api.get("/backups", Some("second-tok")).0, 401);
    std::fs::write(&file, "file-token\nsecond-token\n").unwrap();
    wait_for_token_status(&api, "second-token", 200);
    assert_eq!(api.get("/backups", Some("env-token")).0, 200);
    let (_, log) = api.terminate();
    let log = log.join("\n");
    assert!(log.contains("line 2 skipped"), "{log}");
    assert!(!log.contains("second-tok"), "a token was logged: {log}");
}

// docs/SAFETY.md S22
#[test]
fn daemon_health_degrades_when_an_upload_cycle_stalls() {
    // An S3 endpoint that accepts connections and never answers.
    let hang = rawhttp::Blackhole::start();
    let ws = Workspace::new();
    ws.write_gz("s.log.gz", 50, 3);
    let endpoint = format!("http://127.0.0.1:{}", hang.port);
    let args = ws.s3_upload_args(&endpoint, &["--retries", "0"]);
    let api = Api::daemon(&ws, &args, "1s", &[("APP_TOKENS", TOKEN)]);
    rawhttp::wait_for(Duration::from_secs(10), "the upload to reach S3", || {
        (hang.accepted() > 0).then_some(())
    });
    let (status, body, _) = api.get("/health", None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    if v["upload"]["cycle_running_seconds"].as_u64() < Some(9) {
        assert_eq!(status, 200, "a young cycle is fine: {body}");
        assert_eq!(v["upload"]["state"], "running", "{body}");
    }
    // max(2 × 1 s, 10 s) = 10 s after the cycle started, /health turns 503.
    let body = rawhttp::wait_for(Duration::from_secs(40), "/health 503 degraded", || {
        let (status, body, _) = api.get("/health", None);
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 503 && v["status"] == "degraded").then_some(v)
    });
    let upload = &body["upload"];
    let running = upload["cycle_running_seconds"].as_u64().unwrap();
    assert!(running >= 10, "{body}");
    assert!(
        upload["last_cycle_age_seconds"].as_u64().unwrap() >= running,
        "no cycle finished: the age counts from the daemon's start: {body}"
    );
    assert_eq!(upload["cycles_finished"], 0, "{body}");
    assert_eq!(upload["stall_after_seconds"], 10, "{body}");
    assert_eq!(upload["state"], "running", "{body}");
    assert!(
        upload["reason"].as_str().unwrap().contains("running for"),
        "{body}"
    );
    let (_, metrics, _) = api.get("/metrics", Some(TOKEN));
    assert!(metrics.contains("fgbackup_daemon_stalled 1"), "{metrics}");
    // Stop it; the stalled upload need not finish for the test (Drop kills).
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(api.pid() as i32, libc::SIGTERM) };
}

// docs/SAFETY.md S19
#[test]
fn requests_inside_a_burst_of_idle_connections_are_answered_at_once() {
    use std::io::Write;
    let ws = inventory_with(1);
    let mut api = serve(&ws, &[]);
    assert_eq!(api.health_status(), Some(200));
    // 60 connections opened back to back; every 6th sends a request at once,
    // the others stay idle.
    let mut idle = Vec::new();
    let mut asking = Vec::new();
    for i in 0..60 {
        let mut s = rawhttp::connect(api.addr()).unwrap();
        if i % 6 == 5 {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            asking.push(s);
        } else {
            idle.push(s);
        }
    }
    let started = Instant::now();
    for (i, s) in asking.iter_mut().enumerate() {
        let (text, _) = rawhttp::read_until_close(s, started + Duration::from_secs(3));
        assert_eq!(
            rawhttp::statuses(&text),
            [200],
            "request {i}: no answer after {:?} while idle connections were open",
            started.elapsed()
        );
    }
    eprintln!("all answered after {:?}", started.elapsed());
    drop(idle);
    api.assert_alive();
}

#[test]
fn the_last_verify_is_served_at_verifications_last_health_and_metrics() {
    let ws = inventory_with(3);
    let api = serve(&ws, &[]);
    let (status, body, _) = api.get("/verifications/last", Some(TOKEN));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no verify has finished yet"), "{body}");
    let stats = api.json("/stats");
    assert!(stats[0]["last_verify"].is_null(), "{stats}");
    drop(api);

    std::fs::remove_file(ws.archive().join("FGT-1/fw-001.log.gz")).unwrap();
    let out = ws.on_archive("verify", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let api = serve(&ws, &[]);
    let (status, _, _) = api.get("/verifications/last", None);
    assert_eq!(status, 401, "the verify record needs a token");
    let (status, body, _) = api.get("/verifications/last", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["checked"], 3);
    assert_eq!(v["missing"], 1);
    assert_eq!(v["ok"], 2);
    let (_, health, _) = api.get("/health", None);
    let h: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(h["last_verify"]["status"], "failed", "{health}");
    assert!(
        h["last_verify"]["destination"].is_null(),
        "no details without a token"
    );
    let (_, metrics, _) = api.get("/metrics", Some(TOKEN));
    assert!(
        metrics.contains("fgbackup_verify_last_success 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fgbackup_verify_last_objects{result=\"missing\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fgbackup_verify_last_timestamp_seconds "),
        "{metrics}"
    );
    drop(api);

    // /stats, day by day: the verdict of the newest verify finished by
    // then. Fixed dates: the rows on two days, the verify between them.
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute_batch(
        "UPDATE backups SET backup_date = CASE WHEN id % 2 = 0 THEN '2026-03-01' ELSE '2026-03-03' END;
         UPDATE verifications SET finished_at = '2026-03-02T10:00:00Z';",
    )
    .unwrap();
    drop(conn);
    let api = serve(&ws, &[]);
    let stats = api.json("/stats");
    let days: Vec<(String, serde_json::Value)> = stats
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["last_verify"].clone(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2026-03-01".to_string(), serde_json::Value::Null),
            ("2026-03-03".to_string(), serde_json::Value::from("failed")),
        ],
        "{stats}"
    );
}

/// A worker keeps its answers while the inventory is unchanged: the same
/// page asked again after another process committed rows is the new page,
/// at once (SQLite's data_version), never the kept one.
// docs/SAFETY.md S34
#[test]
fn a_repeated_page_is_fresh_after_every_commit() {
    let ws = inventory_with(3);
    // One query worker: every request meets the same kept answers.
    let api = serve(&ws, &["--threads", "1"]);
    let count = |path: &str| api.json(path).as_array().map_or(0, Vec::len);
    for _ in 0..3 {
        assert_eq!(count("/backups?limit=50"), 3);
    }
    let last = api.json("/backups/last")["id"].clone();
    let files = |stats: serde_json::Value| stats_sum(&stats, "files");
    assert_eq!(files(api.json("/stats")), 3);
    ws.write_gz("FGT-9/late-1.log.gz", 20, 91);
    ws.write_gz("FGT-9/late-2.log.gz", 20, 92);
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count("/backups?limit=50"), 3 + 5, "3 rows again, 2 new");
    assert_ne!(api.json("/backups/last")["id"], last);
    assert_eq!(files(api.json("/stats")), 5);
}
