//! `fgbackup serve` and `fgbackup daemon` over a real socket with a real HTTP client.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "api-token-0123456789abcdef";

/// A running `fgbackup serve`/`daemon`, its base URL and its log.
struct Api {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Api {
    /// Starts `fgbackup ARGS --listen 127.0.0.1:0` and waits for its "listening" line.
    fn start(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Api {
        let mut all = args.to_vec();
        all.extend(["--listen", "127.0.0.1:0"]);
        let mut child = ws
            .command(&all, env)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("API listening on http://").nth(1) {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                    }
                    log.lock().unwrap().push(line);
                }
            })
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start: {:?}", log.lock().unwrap()));
        Api {
            child,
            base: format!("http://{addr}"),
            log,
            reader: Some(reader),
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String, Vec<(String, String)>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut req = agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp.body_mut().read_to_string().unwrap();
        (status, body, headers)
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body, _) = self.get(path, Some(TOKEN));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        // The pipe closed with the process: the reader has seen every line.
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status.code(), self.log.lock().unwrap().clone())
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

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
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute_batch(
        "CREATE TABLE backups (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT NOT NULL, s3_url TEXT, sha256 TEXT,
           uploaded_at TEXT, backup_date TEXT, deleted_local INTEGER DEFAULT 0, status TEXT);
         INSERT INTO backups (filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status)
           VALUES ('a.log.gz', 'https://b.s3.amazonaws.com/a.log.gz', 'aa', '2025-01-01T01:00:00Z', '2025-01-01', 1, 'uploaded');",
    )
    .unwrap();
    drop(conn);
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
    std::fs::create_dir_all(ws.archive()).unwrap();
    let dest = format!("file://{}", ws.archive().display());
    let logs = ws.logs();
    let db = ws.db();
    let api = Api::start(
        &ws,
        &[
            "daemon",
            "--interval",
            "1h",
            "--dir",
            logs.to_str().unwrap(),
            "--dest",
            &dest,
            "--db",
            db.to_str().unwrap(),
            "--min-age",
            "0",
            "--delete",
        ],
        &[("APP_TOKENS", TOKEN)],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = api.get("/backups/last", Some(TOKEN));
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["status"], "uploaded");
            assert_eq!(v["deleted_local"], 1);
            break;
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
    let logs2 = ws2.logs();
    let db2 = ws2.db();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let api = Api::start(
        &ws2,
        &[
            "daemon",
            "--interval",
            "1h",
            "--dir",
            logs2.to_str().unwrap(),
            "--bucket",
            BUCKET,
            "--endpoint",
            &dead,
            "--db",
            db2.to_str().unwrap(),
            "--min-age",
            "0",
            "--retries",
            "0",
        ],
        &[("APP_TOKENS", TOKEN)],
    );
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
