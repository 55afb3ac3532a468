//! Pushes over real sockets against the real binary: `token` commands,
//! `serve --accept-uploads` into a real S3 server (s3s-fs) and a directory
//! store, every answer of the protocol, and `fgbackup push` resuming after
//! the server was killed.

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::api::{Api, TOKEN};
use common::rawhttp::{self, wait_for};
use common::*;
use serde_json::Value;

/// A workspace with a token key, and a server accepting pushes.
struct Site {
    ws: Workspace,
    key: String,
    spool: PathBuf,
}

impl Site {
    fn new() -> Site {
        let ws = Workspace::new();
        let key = ws.home().join("push.key").display().to_string();
        assert_exit(&ws.run(&["token", "keygen", "--token-key", &key], &[]), 0);
        let spool = ws.tmp.path().join("spool");
        Site { ws, key, spool }
    }

    /// `token issue --prefix PREFIX EXTRA... --json`: (token, id).
    fn issue(&self, prefix: &str, extra: &[&str]) -> (String, String) {
        let db = self.ws.db().display().to_string();
        let mut args = vec![
            "token",
            "issue",
            "--prefix",
            prefix,
            "--db",
            &db,
            "--token-key",
            &self.key,
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = self.ws.run(&args, &[]);
        assert_exit(&out, 0);
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        (
            v["token"].as_str().unwrap().to_string(),
            v["id"].as_str().unwrap().to_string(),
        )
    }

    /// `serve --accept-uploads` into `dest` (the S3 flags, or `--dest`).
    fn serve(&self, dest: &[String], extra: &[&str]) -> Api {
        self.serve_on(dest, extra, "127.0.0.1:0")
    }

    /// [`Site::serve`] listening on `listen`.
    fn serve_on(&self, dest: &[String], extra: &[&str], listen: &str) -> Api {
        let db = self.ws.db().display().to_string();
        let spool = self.spool.display().to_string();
        let mut args: Vec<&str> = vec![
            "serve",
            "--db",
            &db,
            "--accept-uploads",
            "--token-key",
            &self.key,
            "--spool",
            &spool,
            "--retries",
            "1",
        ];
        if !extra.contains(&"--spool-min-free") {
            args.extend(["--spool-min-free", "1M"]);
        }
        args.extend(dest.iter().map(String::as_str));
        args.extend_from_slice(extra);
        Api::start_on(&self.ws, &args, &[("APP_TOKENS", TOKEN)], None, listen)
    }

    fn local_dest(&self) -> Vec<String> {
        std::fs::create_dir_all(self.ws.archive()).unwrap();
        vec![
            "--dest".into(),
            format!("file://{}", self.ws.archive().display()),
        ]
    }

    /// Regular files anywhere in the spool.
    fn spooled(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.spool, &mut out);
        out
    }
}

fn s3_dest(s3: &S3Server) -> Vec<String> {
    ["--bucket", BUCKET, "--endpoint", &s3.endpoint()]
        .map(String::from)
        .to_vec()
}

/// A raw request: the head with `headers`, then `body`; the status and the
/// JSON body of the answer. Writing the body may fail when the server
/// answered without reading it: that is what it should do on a refusal.
fn request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value, String) {
    let mut s = rawhttp::connect(addr).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let (text, _) = rawhttp::read_until_close(&mut s, Instant::now() + Duration::from_secs(60));
    let status = rawhttp::statuses(&text).first().copied().unwrap_or(0);
    let body = rawhttp::first_body(&text);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::Null),
        text,
    )
}

fn sha_hex(data: &[u8]) -> String {
    hex(&sha256_bytes(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `PUT /upload/NAME` of `body` with its true length and digest.
fn put(addr: &str, name: &str, token: &str, body: &[u8]) -> (u16, Value) {
    let headers = [
        ("Authorization", format!("Bearer {token}")),
        ("Content-Length", body.len().to_string()),
        ("X-Content-SHA256", sha_hex(body)),
    ];
    let (status, json, _) = request(addr, "PUT", &format!("/upload/{name}"), &headers, body);
    (status, json)
}

/// A `PUT /upload/NAME` of `body` (true length and digest) of which only
/// the first `sent` bytes are sent: the connection, to send the rest on.
fn put_begun(addr: &str, name: &str, token: &str, body: &[u8], sent: usize) -> std::net::TcpStream {
    let mut s = rawhttp::connect(addr).unwrap();
    let head = format!(
        "PUT /upload/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nX-Content-SHA256: {}\r\n\r\n",
        body.len(),
        sha_hex(body)
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..sent]).unwrap();
    s
}

fn gz(seed: u64, lines: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..lines {
        writeln!(e, "date=2026-11-22 time=01:00:{:02} devname=\"FGT-P\" srcip=10.0.0.{} seed={seed} line={i}", i % 60, i % 250).unwrap();
    }
    e.finish().unwrap()
}

#[test]
fn tokens_are_printed_once_listed_without_secret_and_revoked() {
    let site = Site::new();
    let (token, id) = site.issue("site7/", &["--max-bytes", "20G", "--note", "ticket 4711"]);
    assert!(token.starts_with("fgpush1."), "{token}");
    let db = site.ws.db().display().to_string();
    for args in [
        vec!["token", "list", "--db", &db],
        vec!["token", "list", "--db", &db, "--json"],
    ] {
        let out = site.ws.run(&args, &[]);
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(
            text.contains(&id) && text.contains("site7/") && text.contains("ticket 4711"),
            "{text}"
        );
        let mac = token.rsplit('.').next().unwrap();
        assert!(
            !text.contains(mac) && !text.contains(&token),
            "list shows the secret: {text}"
        );
    }
    // Beyond 30 days only with --force; never a prefix of the archive's own.
    let key = site.key.clone();
    let long = site.ws.run(
        &[
            "token",
            "issue",
            "--prefix",
            "s/",
            "--db",
            &db,
            "--token-key",
            &key,
            "--expires",
            "31d",
        ],
        &[],
    );
    assert_exit(&long, 2);
    assert!(stderr(&long).contains("--force"), "{}", stderr(&long));
    site.issue("s/", &["--expires", "31d", "--force"]);
    let own = site.ws.run(
        &[
            "token",
            "issue",
            "--prefix",
            "_index/",
            "--db",
            &db,
            "--token-key",
            &key,
        ],
        &[],
    );
    assert_exit(&own, 2);
    for own in [".fgbackup/", ".fgbackup/x/"] {
        let out = site.ws.run(
            &[
                "token",
                "issue",
                "--prefix",
                own,
                "--db",
                &db,
                "--token-key",
                &key,
            ],
            &[],
        );
        assert_exit(&out, 2);
    }
    // Revoked, shown as such; an unknown id is an error.
    assert_exit(&site.ws.run(&["token", "revoke", &id, "--db", &db], &[]), 0);
    let list: Value = serde_json::from_str(&stdout(
        &site.ws.run(&["token", "list", "--db", &db, "--json"], &[]),
    ))
    .unwrap();
    let row = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert_eq!(row["state"], "revoked");
    assert_exit(
        &site
            .ws
            .run(&["token", "revoke", "0000000000000000", "--db", &db], &[]),
        1,
    );
    // The key file is private and never replaced.
    let again = site.ws.run(&["token", "keygen", "--token-key", &key], &[]);
    assert_exit(&again, 2);
}

/// Every answer of the table, against a real S3 server: what each refusal
/// says, and that nothing of a refused body stays in the spool.
// docs/SAFETY.md S36 S37 S38
#[test]
fn every_answer_of_the_protocol_and_nothing_of_a_refusal_stays() {
    let s3 = S3Server::start();
    let site = Site::new();
    let (token, id) = site.issue("site7/", &["--max-bytes", "300000"]);
    let api = site.serve(&s3_dest(&s3), &["--push-max-file", "250000"]);
    let addr = api.addr();
    let body = gz(1, 2000);

    // 201: archived, proven in the bucket, recorded with its source.
    let (status, got) = put(addr, "FGT-A/a.log.gz", &token, &body);
    assert_eq!(status, 201, "{got}");
    assert_eq!(got["key"], "site7/FGT-A/a.log.gz");
    assert_eq!(got["sha256"], sha_hex(&body));
    assert_eq!(got["size"], body.len());
    assert_eq!(
        s3.head_sha256("site7/FGT-A/a.log.gz").as_deref(),
        Some(sha_hex(&body).as_str())
    );
    let stored = std::fs::read(s3.object_path(BUCKET, "site7/FGT-A/a.log.gz")).unwrap();
    assert_eq!(stored, body);
    let rows = site.ws.rows();
    let row = row_for(&rows, "site7/FGT-A/a.log.gz");
    assert_eq!(row.status(), "uploaded");
    assert_eq!(
        row.deleted_local,
        Some(1),
        "the spooled body is deleted once proven"
    );
    let conn = rusqlite::Connection::open(site.ws.db()).unwrap();
    let source: String = conn
        .query_row(
            "SELECT source_path FROM backups WHERE id = ?1",
            [row.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(source, format!("push:{id}/FGT-A/a.log.gz"));
    assert!(site.spooled().is_empty(), "{:?}", site.spooled());

    // 200: the same bytes again (answered before the body is read).
    let (status, got) = put(addr, "FGT-A/a.log.gz", &token, &body);
    assert_eq!(
        (status, got["sha256"].as_str()),
        (200, Some(sha_hex(&body).as_str())),
        "{got}"
    );
    // 409: other bytes at the key; the archived copy is untouched.
    let (status, got) = put(addr, "FGT-A/a.log.gz", &token, &gz(2, 2000));
    assert_eq!(status, 409, "{got}");
    assert_eq!(
        std::fs::read(s3.object_path(BUCKET, "site7/FGT-A/a.log.gz")).unwrap(),
        body
    );

    // 401: no token, a token edited by one byte, a token of another key.
    let other = Site::new();
    let (foreign, _) = other.issue("site7/", &[]);
    let mut edited = token.clone().into_bytes();
    let at = edited.len() / 2;
    edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    for bad in ["", "fgpush1.x.y", edited.as_str(), foreign.as_str()] {
        let (status, got) = put(addr, "FGT-A/b.log.gz", bad, &body);
        assert_eq!(status, 401, "{bad}: {got}");
        assert!(
            got["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{got}"
        );
    }
    // 403: a name outside the prefix; an API read token is no upload token.
    for name in ["../x.gz", "%2e%2e/x.gz", "%2Fabs.gz", "FGT-A/../../x.gz"] {
        assert_eq!(put(addr, name, &token, &body).0, 403, "{name}");
    }
    assert_eq!(put(addr, "FGT-A/b.log.gz", TOKEN, &body).0, 401);
    // 400: bad names.
    for name in [
        "a%5Cb.gz",
        "a%00b.gz",
        "a%0Ab.gz",
        "notgzip.txt",
        "a//b.gz",
        "_index/x.gz",
        "a%d8%9cb.gz",
        "a%c2%a0b.gz",
        &format!("{}.gz", "a".repeat(300)),
    ] {
        let (status, got) = put(addr, name, &token, &body);
        assert_eq!(status, 400, "{name}: {got}");
    }
    assert!(site.spooled().is_empty(), "{:?}", site.spooled());
    // 400: no digest, a bad digest (the whole body arrives, then is thrown
    // away), a Content-Range that does not match the length.
    let auth = ("Authorization", format!("Bearer {token}"));
    let len = ("Content-Length", body.len().to_string());
    let (status, got, _) = request(
        addr,
        "PUT",
        "/upload/FGT-A/c.log.gz",
        &[auth.clone(), len.clone()],
        &body,
    );
    assert_eq!(status, 400, "{got}");
    let wrong = ("X-Content-SHA256", sha_hex(b"something else"));
    let (status, got, _) = request(
        addr,
        "PUT",
        "/upload/FGT-A/c.log.gz",
        &[auth.clone(), len.clone(), wrong],
        &body,
    );
    assert_eq!(status, 400, "{got}");
    assert!(
        got["error"]
            .as_str()
            .unwrap()
            .contains("nothing of it was kept"),
        "{got}"
    );
    let range = ("Content-Range", format!("bytes 0-9/{}", body.len()));
    let digest = ("X-Content-SHA256", sha_hex(&body));
    let (status, got, _) = request(
        addr,
        "PUT",
        "/upload/FGT-A/c.log.gz",
        &[auth.clone(), len.clone(), digest.clone(), range],
        &body,
    );
    assert_eq!(status, 400, "{got}");
    // A piece from the middle would be hashed as the whole file: 400 before it is read.
    let middle = ("Content-Range", format!("bytes 10-19/{}", body.len()));
    let ten = ("Content-Length", "10".to_string());
    let (status, got, _) = request(
        addr,
        "PUT",
        "/upload/FGT-A/c.log.gz",
        &[auth.clone(), ten, digest.clone(), middle],
        &body[10..20],
    );
    assert_eq!(status, 400, "{got}");
    assert!(
        got["error"]
            .as_str()
            .unwrap()
            .contains("run to the file's end"),
        "{got}"
    );
    // An empty .gz is no log; a truncated one is archived byte for byte
    // (its row says failed_gzip) but answered 422 and not kept in the spool.
    assert_eq!(put(addr, "FGT-A/empty.log.gz", &token, b"").0, 400);
    let (status, got) = put(addr, "FGT-A/cut.log.gz", &token, &body[..body.len() / 2]);
    assert_eq!(status, 422, "{got}");
    assert!(site.spooled().is_empty(), "{:?}", site.spooled());
    // Repr-Digest (RFC 9530) is accepted as well.
    use base64::Engine;
    let small = gz(9, 10);
    let b64 = base64::engine::general_purpose::STANDARD.encode(crate::common::sha256_bytes(&small));
    let repr = ("Repr-Digest", format!("sha-256=:{b64}:"));
    let small_len = ("Content-Length", small.len().to_string());
    let (status, got, _) = request(
        addr,
        "PUT",
        "/upload/FGT-A/d.log.gz",
        &[auth.clone(), small_len, repr],
        &small,
    );
    assert_eq!(status, 201, "{got}");

    // 413: over the per-file cap; over the token's bytes by one.
    assert_eq!(
        put(addr, "FGT-A/big.log.gz", &token, &vec![0u8; 250_001]).0,
        413
    );
    let used = small.len() + body.len();
    let room = 300_000 - used;
    let (status, got) = put(addr, "FGT-A/over.log.gz", &token, &vec![7u8; room + 1]);
    assert_eq!(status, 413, "{got}");
    assert!(site.spooled().is_empty(), "{:?}", site.spooled());
    // (Accepted bytes are not gzip: the token would need --any-name.)
    let (fits, _) = site.issue("fits/", &["--max-bytes", "1000", "--any-name"]);
    assert_eq!(put(addr, "x.bin", &fits, &[1u8; 1000]).0, 201);
    assert_eq!(
        put(addr, "e.gz", &fits, b"").0,
        400,
        "an empty .gz, even for --any-name"
    );
    assert_eq!(put(addr, "y.bin", &fits, &[1u8; 1]).0, 413);

    // 429: files used up, attempts used up.
    let (one, _) = site.issue("one/", &["--max-files", "1"]);
    assert_eq!(put(addr, "a.log.gz", &one, &gz(3, 10)).0, 201);
    assert_eq!(put(addr, "b.log.gz", &one, &gz(4, 10)).0, 429);
    // A retry of the file it did archive (its 201 lost) still gets 200.
    assert_eq!(put(addr, "a.log.gz", &one, &gz(3, 10)).0, 200);
    let (two, _) = site.issue("two/", &["--max-attempts", "2"]);
    assert_eq!(put(addr, "a%5Cb.gz", &two, &body).0, 400);
    assert_eq!(put(addr, "a.log.gz", &two, &gz(5, 10)).0, 201);
    assert_eq!(put(addr, "b.log.gz", &two, &gz(6, 10)).0, 429);

    // 403: expired, revoked.
    let (short, _) = site.issue("short/", &["--expires", "1s"]);
    let expired = wait_for(Duration::from_secs(5), "the token to expire", || {
        let (status, got) = put(addr, "a.log.gz", &short, &gz(7, 10));
        (status == 403).then_some(got)
    });
    assert!(
        expired["error"].as_str().unwrap().contains("expired"),
        "{expired}"
    );
    let db = site.ws.db().display().to_string();
    assert_exit(&site.ws.run(&["token", "revoke", &id, "--db", &db], &[]), 0);
    let (status, got) = put(addr, "FGT-A/e.log.gz", &token, &gz(8, 10));
    assert_eq!(status, 403, "{got}");
    assert!(got["error"].as_str().unwrap().contains("revoked"), "{got}");

    assert!(
        site.spooled().is_empty(),
        "a refused body stayed: {:?}",
        site.spooled()
    );
    // The server logs at debug level: no token's MAC in any line.
    for t in [&token, &one, &two, &fits] {
        let mac = t.rsplit('.').next().unwrap();
        assert!(api.log_lines(mac).is_empty(), "a token in the log");
    }
    assert!(!api.log_lines("upload").is_empty(), "the log was read");
    // /health reports the spool; /metrics counts pushes by outcome.
    let health = api.json("/health");
    assert!(
        health["spool"]["free_bytes"].as_u64().unwrap() > 0,
        "{health}"
    );
    let (_, metrics, _) = api.get("/metrics", Some(TOKEN));
    for outcome in [
        "archived",
        "exists",
        "conflict",
        "unauthorized",
        "forbidden",
        "bad_name",
        "bad_request",
        "bad_digest",
        "too_large",
        "used_up",
    ] {
        assert!(
            metrics.contains(&format!(
                "fgbackup_push_requests_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome} missing:\n{metrics}"
        );
    }
}

/// 507 when the spool would fall below its floor: refused before a byte
/// is written, and the client keeps its file.
// docs/SAFETY.md S38
#[test]
fn a_full_spool_answers_507_and_the_client_keeps_its_file() {
    let site = Site::new();
    let (token, _) = site.issue("site7/", &[]);
    let api = site.serve(&site.local_dest(), &["--spool-min-free", "100000G"]);
    let (status, got) = put(api.addr(), "a.log.gz", &token, &gz(1, 100));
    assert_eq!(status, 507, "{got}");
    assert!(
        got["error"].as_str().unwrap().contains("--spool-min-free"),
        "{got}"
    );
    assert!(site.spooled().is_empty());
    let file = site.ws.write_raw("a.log.gz", &gz(1, 100));
    let out = site.ws.run(
        &[
            "push",
            file.to_str().unwrap(),
            "--url",
            &api.base,
            "--delete",
            "--json",
        ],
        &[("FGBACKUP_PUSH_TOKEN", &token)],
    );
    // 507 is retried (the spool may drain), then given up: exit 1, file kept.
    assert_exit(&out, 1);
    assert!(file.exists());
    let health = api.json("/health");
    assert_eq!(health["status"], "degraded", "{health}");
}

/// A TCP relay to `upstream` that passes the first `limit` bytes a client
/// sends on its first connection and then stops reading (the wire stalls),
/// and passes later connections whole: a push cut mid-body, on demand.
struct Stall {
    port: u16,
    passed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Stall {
    fn start(upstream: u16, limit: u64) -> Stall {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let passed = std::sync::Arc::new(AtomicU64::new(0));
        let first = std::sync::Arc::new(AtomicBool::new(true));
        let counter = passed.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let cap = if first.swap(false, Ordering::SeqCst) {
                    limit
                } else {
                    u64::MAX
                };
                let closed = std::sync::Arc::new(AtomicBool::new(false));
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (counter, done) = (counter.clone(), closed.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    let mut sent = 0u64;
                    while sent < cap {
                        let want = (cap - sent).min(buf.len() as u64) as usize;
                        match c_in.read(&mut buf[..want]) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s_out.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                                sent += n as u64;
                                counter.fetch_add(n as u64, Ordering::SeqCst);
                            }
                        }
                    }
                    // At the cap: read nothing more until the server's side
                    // ends; then both sockets close with data unread, which
                    // resets the client (what a killed server's kernel does).
                    while !done.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    closed.store(true, Ordering::SeqCst);
                });
            }
        });
        Stall { port, passed }
    }
}

/// The server is killed (SIGKILL) in the middle of a push by the real
/// client: the client keeps its file and, once the server is back,
/// resumes from what the spool holds instead of sending it all again; the
/// half body left by the kill is never archived as whole.
// docs/SAFETY.md S36
#[test]
fn a_push_cut_by_a_killed_server_resumes_after_its_restart() {
    let site = Site::new();
    let (token, _) = site.issue("site7/", &[]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut api = site.serve_on(&site.local_dest(), &[], &listen);
    let file = site.ws.write_noise_gz("big.log.gz", 8);
    let size = std::fs::metadata(&file).unwrap().len();
    // The first connection passes the HEAD and 3 MiB of the PUT.
    let stall = Stall::start(port, 3 * 1024 * 1024);
    let client = site
        .ws
        .command(
            &[
                "push",
                file.to_str().unwrap(),
                "--url",
                &format!("http://127.0.0.1:{}", stall.port),
                "--json",
                "--delete",
            ],
            &[("FGBACKUP_PUSH_TOKEN", &token)],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The server has written what came through, then the wire stalls.
    let held = wait_for(Duration::from_secs(30), "the spooled part", || {
        let body = site
            .spooled()
            .into_iter()
            .find(|p| p.ends_with("big.log.gz"))?;
        let len = std::fs::metadata(&body).ok()?.len();
        (len > 2 * 1024 * 1024
            && stall.passed.load(std::sync::atomic::Ordering::SeqCst) >= 3 * 1024 * 1024)
            .then_some(len)
    });
    let _ = api.child.kill();
    let _ = api.child.wait();
    assert!(held < size);
    let partial = wait_for(Duration::from_secs(5), "the spool to settle", || {
        let body = site
            .spooled()
            .into_iter()
            .find(|p| p.ends_with("big.log.gz"))?;
        std::fs::metadata(&body).ok().map(|m| m.len())
    });
    assert!(partial < size, "the kill left a part: {partial} of {size}");
    // Back on the same port: the half body is not archived by the restart.
    let api = site.serve_on(&site.local_dest(), &[], &listen);
    let (status, _, text) = request(
        api.addr(),
        "HEAD",
        "/upload/big.log.gz",
        &[("Authorization", format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(&format!("Upload-Offset: {partial}")),
        "{text}"
    );
    assert!(!site.ws.archive().join("site7/big.log.gz").exists());
    // The client, retrying, resumes from the offset and ends archived.
    let out = client.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let line: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "archived", "{line}");
    assert_eq!(line["deleted"], true, "{line}");
    // The last try sent only what the spool lacked.
    assert_eq!(line["resumed_from"], partial, "{line}");
    let archived = std::fs::read(site.ws.archive().join("site7/big.log.gz")).unwrap();
    assert_eq!(sha_hex(&archived), line["sha256"].as_str().unwrap());
    assert_eq!(archived.len() as u64, size);
    let rows = site.ws.rows();
    assert_eq!(rows.len(), 1, "one row, for the whole file: {rows:?}");
    assert_eq!(rows[0].status(), "uploaded");
    assert!(
        !file.exists(),
        "deleted after the 201 that named its sha256"
    );
    assert!(site.spooled().is_empty(), "{:?}", site.spooled());
    drop(api);
}

/// Twenty pushes at once, each a different file: each archived and proven
/// under its own key with its own bytes.
// docs/SAFETY.md S36
#[test]
fn twenty_concurrent_pushes_are_each_archived_with_their_own_bytes() {
    let s3 = S3Server::start();
    let site = Site::new();
    let (token, _) = site.issue("site7/", &[]);
    let api = site.serve(&s3_dest(&s3), &["--push-max", "20"]);
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| gz(100 + i, 3000 + i as usize * 10))
        .collect();
    let addr = api.addr().to_string();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let (addr, token) = (&addr, &token);
                scope.spawn(move || put(addr, &format!("FGT-{i}/f.log.gz"), token, b))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (status, got)) in answers.iter().enumerate() {
        assert_eq!(*status, 201, "push {i}: {got}");
        let key = format!("site7/FGT-{i}/f.log.gz");
        assert_eq!(got["key"], key.as_str());
        assert_eq!(got["sha256"], sha_hex(&bodies[i]));
        assert_eq!(
            std::fs::read(s3.object_path(BUCKET, &key)).unwrap(),
            bodies[i],
            "{key}"
        );
    }
    let rows = site.ws.rows();
    assert_eq!(rows.len(), 20);
    for (i, b) in bodies.iter().enumerate() {
        let row = row_for(&rows, &format!("site7/FGT-{i}/f.log.gz"));
        assert_eq!(
            (row.status(), row.sha256.as_deref()),
            ("uploaded", Some(sha_hex(b).as_str()))
        );
    }
    assert!(site.spooled().is_empty());
    let out = site.ws.on_bucket("verify", &s3.endpoint(), &[]);
    assert_exit(&out, 0);
}

/// A token revoked while one of its pushes is being received: that push
/// completes, the next one is refused.
// docs/SAFETY.md S37
#[test]
fn a_token_revoked_mid_push_lets_that_push_finish_and_refuses_the_next() {
    let site = Site::new();
    let (token, id) = site.issue("site7/", &[]);
    let api = site.serve(&site.local_dest(), &[]);
    let body = gz(42, 20_000);
    let half = body.len() / 2;
    let mut s = put_begun(api.addr(), "a.log.gz", &token, &body, half);
    wait_for(
        Duration::from_secs(10),
        "the first half in the spool",
        || {
            let p = site
                .spooled()
                .into_iter()
                .find(|p| p.ends_with("a.log.gz"))?;
            (std::fs::metadata(p).ok()?.len() == half as u64).then_some(())
        },
    );
    let db = site.ws.db().display().to_string();
    assert_exit(&site.ws.run(&["token", "revoke", &id, "--db", &db], &[]), 0);
    s.write_all(&body[half..]).unwrap();
    let (text, _) = rawhttp::read_until_close(&mut s, Instant::now() + Duration::from_secs(30));
    assert_eq!(rawhttp::statuses(&text).first(), Some(&201), "{text}");
    assert_eq!(
        std::fs::read(site.ws.archive().join("site7/a.log.gz")).unwrap(),
        body
    );
    let (status, got) = put(api.addr(), "b.log.gz", &token, &gz(43, 10));
    assert_eq!(status, 403, "{got}");
}

/// A client that drips its body is cut after the least-rate window (64 KiB
/// per 30 s) with 408, keeping what arrived for a resume; a restarted
/// server discards the part once its token can no longer resume it.
// docs/SAFETY.md S38
#[test]
fn a_dripping_push_times_out_and_its_part_goes_with_its_token() {
    let site = Site::new();
    let (token, id) = site.issue("site7/", &[]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let api = site.serve_on(&site.local_dest(), &["--push-max", "1"], &listen);
    let body = gz(5, 50_000);
    let mut s = put_begun(api.addr(), "drip.log.gz", &token, &body, 100);
    let started = Instant::now();
    wait_for(
        Duration::from_secs(10),
        "the drip's first bytes in the spool",
        || {
            let p = site
                .spooled()
                .into_iter()
                .find(|p| p.ends_with("drip.log.gz"))?;
            (std::fs::metadata(p).ok()?.len() == 100).then_some(())
        },
    );
    // Its place is the only one (--push-max 1): another push waits its turn
    // (503), while /health and the read API answer at once.
    let (status, got, text) = request(
        api.addr(),
        "PUT",
        "/upload/other.log.gz",
        &[
            ("Authorization", format!("Bearer {token}")),
            ("Content-Length", "3".into()),
        ],
        b"abc",
    );
    assert_eq!(status, 503, "{got}");
    assert!(text.contains("Retry-After: 5"), "{text}");
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(api.health_status(), Some(200));
        let (status, _, _) = api.get("/backups?limit=10", Some(TOKEN));
        assert_eq!(status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    let (text, _) = rawhttp::read_until_close(&mut s, Instant::now() + Duration::from_secs(60));
    let waited = started.elapsed();
    assert_eq!(rawhttp::statuses(&text).first(), Some(&408), "{text}");
    assert!(
        waited >= Duration::from_secs(25) && waited < Duration::from_secs(45),
        "{waited:?}"
    );
    let auth = [("Authorization", format!("Bearer {token}"))];
    let (status, _, text) = request(api.addr(), "HEAD", "/upload/drip.log.gz", &auth, b"");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Upload-Offset: 100\r\n"), "{text}");
    // Revoked: the part cannot be resumed; the next start discards it.
    let db = site.ws.db().display().to_string();
    assert_exit(&site.ws.run(&["token", "revoke", &id, "--db", &db], &[]), 0);
    drop(api);
    let _api = site.serve_on(&site.local_dest(), &[], &listen);
    wait_for(Duration::from_secs(10), "the part to be discarded", || {
        site.spooled().is_empty().then_some(())
    });
}

/// An object lost from the store after its push (a lifecycle rule, a
/// hand) is archived again when the file is pushed again: the server never
/// confirms a copy from its inventory alone, so `push --delete` cannot
/// delete the last copy.
// docs/SAFETY.md S36
#[test]
fn a_push_of_a_file_whose_copy_was_lost_archives_it_again() {
    let site = Site::new();
    let (token, _) = site.issue("site7/", &[]);
    let api = site.serve(&site.local_dest(), &[]);
    let file = site.ws.write_raw("gone.log.gz", &gz(11, 2000));
    let push = |extra: &[&str]| {
        let mut args = vec!["push", file.to_str().unwrap(), "--url", &api.base, "--json"];
        args.extend_from_slice(extra);
        let out = site.ws.run(&args, &[("FGBACKUP_PUSH_TOKEN", &token)]);
        let line: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
        (out, line)
    };
    let (out, line) = push(&[]);
    assert_exit(&out, 0);
    assert_eq!(line["status"], "archived");
    let stored = site.ws.archive().join("site7/gone.log.gz");
    std::fs::remove_file(&stored).unwrap();
    let (out, line) = push(&["--delete"]);
    assert_exit(&out, 0);
    assert_eq!(
        (line["status"].as_str(), line["http"].as_u64()),
        (Some("archived"), Some(201)),
        "{line}"
    );
    assert_eq!(std::fs::read(&stored).unwrap(), gz(11, 2000));
    assert!(!file.exists());
}

/// Two tokens of one prefix pushing the same name at once: one push per
/// key, whatever the token (a store whose conditional PUT is not atomic
/// would otherwise let both be told 201 for one object).
// docs/SAFETY.md S36
#[test]
fn one_push_per_key_whatever_the_token() {
    let site = Site::new();
    let (a, _) = site.issue("same/", &[]);
    let (b, _) = site.issue("same/", &[]);
    let api = site.serve(&site.local_dest(), &[]);
    let first = gz(21, 20_000);
    let mut s = put_begun(api.addr(), "m.log.gz", &a, &first, 1000);
    wait_for(Duration::from_secs(10), "the first push under way", || {
        site.spooled()
            .iter()
            .any(|p| p.ends_with("m.log.gz"))
            .then_some(())
    });
    let (status, got) = put(api.addr(), "m.log.gz", &b, &gz(22, 100));
    assert_eq!(status, 409, "{got}");
    assert!(
        got["error"].as_str().unwrap().contains("in progress"),
        "{got}"
    );
    s.write_all(&first[1000..]).unwrap();
    let (text, _) = rawhttp::read_until_close(&mut s, Instant::now() + Duration::from_secs(30));
    assert_eq!(rawhttp::statuses(&text).first(), Some(&201), "{text}");
    // The other token's bytes are now refused as other bytes at the key.
    assert_eq!(put(api.addr(), "m.log.gz", &b, &gz(22, 100)).0, 409);
    assert_eq!(
        std::fs::read(site.ws.archive().join("same/m.log.gz")).unwrap(),
        first
    );
}

/// Bodies a token leaves in the spool count against its limits, and a
/// body left whole (its store was down) is archived after a restart only
/// if its token may still archive it.
// docs/SAFETY.md S37
#[test]
fn what_a_token_left_in_the_spool_counts_against_it() {
    let site = Site::new();
    let (one, _) = site.issue("one/", &["--max-files", "1"]);
    let (small, _) = site.issue("small/", &["--max-bytes", "30000", "--any-name"]);
    let (gone, gone_id) = site.issue("gone/", &[]);
    let mut s3 = S3Server::start();
    let dest = s3_dest(&s3);
    s3.stop();
    let api = site.serve(&dest, &[]);
    // The store is down: each body is kept whole in the spool (503)...
    assert_eq!(put(api.addr(), "a.log.gz", &one, &gz(31, 100)).0, 503);
    // ...and counts: the token's one file is spoken for.
    assert_eq!(put(api.addr(), "b.log.gz", &one, &gz(32, 100)).0, 429);
    // A part counts its declared size: 20000 held of 30000 allowed.
    let part = vec![5u8; 20_000];
    let c = put_begun(api.addr(), "p.bin", &small, &part, 100);
    wait_for(Duration::from_secs(10), "the part in the spool", || {
        site.spooled()
            .iter()
            .any(|p| p.ends_with("p.bin"))
            .then_some(())
    });
    drop(c);
    let (status, got) = put(api.addr(), "q.bin", &small, &[6u8; 10_001]);
    assert_eq!(status, 413, "{got}");
    assert_eq!(put(api.addr(), "g.log.gz", &gone, &gz(33, 100)).0, 503);
    let db = site.ws.db().display().to_string();
    assert_exit(
        &site
            .ws
            .run(&["token", "revoke", &gone_id, "--db", &db], &[]),
        0,
    );
    drop(api);
    // Back with a store: the kept body of the live token is archived, the
    // revoked token's is discarded, the part waits for its resume.
    let s3 = S3Server::start();
    let _api = site.serve(&s3_dest(&s3), &[]);
    wait_for(Duration::from_secs(20), "the sweep", || {
        let left = site.spooled();
        (s3.object_path(BUCKET, "one/a.log.gz").exists()
            && !left.iter().any(|p| p.ends_with("g.log.gz")))
        .then_some(left)
    });
    assert!(!s3.object_path(BUCKET, "gone/g.log.gz").exists());
    assert!(site.spooled().iter().any(|p| p.ends_with("p.bin")));
}

/// `push --json | head -1`: the reader going away does not stop the run.
#[test]
fn a_closed_stdout_does_not_stop_push() {
    let site = Site::new();
    let (token, _) = site.issue("site7/", &[]);
    let api = site.serve(&site.local_dest(), &[]);
    let a = site.ws.write_raw("a.log.gz", &gz(41, 100));
    let b = site.ws.write_raw("b.log.gz", &gz(42, 100));
    let mut child = site
        .ws
        .command(
            &[
                "push",
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                "--url",
                &api.base,
                "--json",
                "--delete",
            ],
            &[("FGBACKUP_PUSH_TOKEN", &token)],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!a.exists() && !b.exists());
    let bad = site.ws.run(
        &["push", a.to_str().unwrap(), "--url", &api.base],
        &[("FGBACKUP_PUSH_TOKEN", "fgpush1.a b")],
    );
    assert_exit(&bad, 2);
}

/// A body kept whole in the spool (its store was down) and damaged there
/// (same size: what a crash can leave of an unsynced file) is never
/// stored: the pipeline's read must be the declared body before any PUT.
/// A link planted in the spool is not followed.
// docs/SAFETY.md S36
#[test]
fn a_spooled_body_that_is_not_the_declared_one_is_never_stored() {
    let site = Site::new();
    let (token, id) = site.issue("site7/", &[]);
    let mut s3 = S3Server::start();
    let dest = s3_dest(&s3);
    s3.stop();
    let api = site.serve(&dest, &[]);
    let body = gz(51, 3000);
    assert_eq!(put(api.addr(), "z.log.gz", &token, &body).0, 503);
    let spooled = site
        .spooled()
        .into_iter()
        .find(|p| p.ends_with("z.log.gz"))
        .unwrap();
    let mut damaged = body.clone();
    damaged[100..200].fill(0);
    std::fs::write(&spooled, &damaged).unwrap();
    // A link where an entry's directory should be, with a declaration.
    let outside = site.ws.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = gz(52, 100);
    std::fs::write(outside.join("v.log.gz"), &victim).unwrap();
    let h: String = sha_hex(b"v.log.gz")[..32].to_string();
    let token_dir = site.spool.join(&id);
    std::os::unix::fs::symlink(&outside, token_dir.join(&h)).unwrap();
    let meta =
        serde_json::json!({"name": "v.log.gz", "size": victim.len(), "sha256": sha_hex(&victim)});
    std::fs::write(token_dir.join(format!("{h}.meta")), meta.to_string()).unwrap();
    drop(api);
    let s3 = S3Server::start();
    let _api = site.serve(&s3_dest(&s3), &[]);
    wait_for(
        Duration::from_secs(20),
        "the sweep to drop the damaged body",
        || (!spooled.exists()).then_some(()),
    );
    assert!(
        !s3.object_path(BUCKET, "site7/z.log.gz").exists(),
        "a damaged body was stored"
    );
    assert!(
        !s3.object_path(BUCKET, "site7/v.log.gz").exists(),
        "a linked file was stored"
    );
    assert_eq!(
        std::fs::read(outside.join("v.log.gz")).unwrap(),
        victim,
        "the linked file was touched"
    );
    let rows = site.ws.rows();
    assert!(rows.iter().all(|r| r.status() != "uploaded"), "{rows:?}");
}
