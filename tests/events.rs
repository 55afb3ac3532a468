//! `GET /events` over real sockets against the real binary: what a client
//! that reconnects is replayed, the subscriber cap, a killed client, a
//! client that never reads, and the daemon's own runs.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{Api, TOKEN, header};
use common::rawhttp::wait_for;
use common::sse::{Event, Stream};
use common::*;

fn serve(ws: &Workspace, extra: &[&str]) -> Api {
    let db = ws.db();
    let mut args = vec!["serve", "--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    Api::start(ws, &args, &[("APP_TOKENS", TOKEN)])
}

fn addr(api: &Api) -> &str {
    api.base.trim_start_matches("http://")
}

/// Threads of the server that are streaming (`api-events`, not its watcher).
fn stream_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim_end() == "api-events")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Events until run `run_id`'s `run_finished` (included).
fn until_run_finished(stream: &Stream, run_id: i64) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let batch = stream.until("run_finished", Duration::from_secs(20));
        let done = batch.last().is_some_and(|e| e.data["run_id"] == run_id);
        out.extend(batch);
        if done {
            return out;
        }
    }
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

/// A client that reconnects with `Last-Event-ID` is sent exactly the
/// events it missed, in order, with their ids; an id this server never
/// sent gets `reset`. The runs are another process's (`upload`), found in
/// the inventory by `serve`.
// docs/SAFETY.md S33
#[test]
fn a_reconnecting_client_is_replayed_exactly_what_it_missed() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/first.log.gz", 20, 1);
    assert_eq!(ws.upload_local(&[], &[]).status.code(), Some(0));
    let api = serve(&ws, &[]);
    let watcher = Stream::open(addr(&api), TOKEN, None);
    assert_eq!(watcher.status, 200, "{}", watcher.head);
    let head = watcher.head.to_ascii_lowercase();
    for needed in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "x-accel-buffering: no",
    ] {
        assert!(head.contains(needed), "{needed} missing: {head}");
    }
    let early = Stream::open(addr(&api), TOKEN, None);

    for i in 0..3 {
        ws.write_gz(&format!("FGT-A/run1-{i}.log.gz"), 20, 10 + i);
    }
    assert_eq!(ws.upload_local(&[], &[]).status.code(), Some(0));
    // Run 1 ended before the server started: a stream starts after it,
    // even within the same second.
    let run1 = until_run_finished(&watcher, 2);
    assert!(run1.iter().all(|e| e.data["run_id"] == 2), "{run1:?}");
    assert_eq!(
        names(&run1),
        [
            "run_started",
            "file_archived",
            "file_archived",
            "file_archived",
            "file_archived",
            "run_finished"
        ]
    );
    let seen = early.until("run_started", Duration::from_secs(20));
    let last = seen.last().unwrap().id.unwrap();
    drop(early);

    ws.write_gz("FGT-B/run2.log.gz", 20, 20);
    std::fs::write(ws.logs().join("FGT-B/broken.log.gz"), b"not gzip at all").unwrap();
    let out = ws.upload_local(&["--gzip-check", "always"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut all = run1;
    all.extend(until_run_finished(&watcher, 3));
    all.extend(watcher.drain(Duration::from_millis(2500)));
    let failed: Vec<&Event> = all.iter().filter(|e| e.name == "file_failed").collect();
    assert_eq!(failed.len(), 1, "{all:?}");
    assert_eq!(failed[0].data["key"], "FGT-B/broken.log.gz");
    assert_eq!(failed[0].data["device"], "FGT-B");
    assert!(!failed[0].data["reason"].as_str().unwrap().is_empty());
    let ids: Vec<u64> = all.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    let back = Stream::open(addr(&api), TOKEN, Some(&last.to_string()));
    let missed: Vec<Event> = all.into_iter().filter(|e| e.id > Some(last)).collect();
    assert!(missed.len() >= 4, "{missed:?}");
    assert_eq!(back.drain(Duration::from_millis(2500)), missed);

    let stale = Stream::open(addr(&api), TOKEN, Some("1"));
    let reset = stale.next(Duration::from_secs(5)).expect("an event");
    assert_eq!(reset.name, "reset", "{reset:?}");
    let bogus = Stream::open(addr(&api), TOKEN, Some("yesterday"));
    assert_eq!(bogus.next(Duration::from_secs(5)).unwrap().name, "reset");
    let no_token = Stream::open(addr(&api), "wrong", None);
    assert_eq!(no_token.status, 401);
    // HEAD: the head alone, no stream held open.
    let (text, end) = common::rawhttp::exchange(
        addr(&api),
        format!("HEAD /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(end, common::rawhttp::End::Closed, "{text}");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body: {text:?}");
}

/// `curl -N` on the stream: a real client the test can kill.
fn curl_stream(api: &Api) -> Child {
    Command::new("curl")
        .args(["-sN", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .arg(format!("{}/events", api.base))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl")
}

/// Eight streams (the default cap) are served on threads of their own: the
/// ninth gets 503 with Retry-After, while `/health` and a page of 100 rows
/// still answer in well under 100 ms; a killed client's thread is freed
/// (within 30 s: in about a second) and its place taken again.
// docs/SAFETY.md S33
#[test]
fn the_cap_holds_without_starving_the_api_and_a_killed_client_is_let_go() {
    let ws = Workspace::new();
    for i in 0..110 {
        ws.write_gz(&format!("FGT-{}/f{i:03}.log.gz", i % 2), 5, i);
    }
    assert_eq!(ws.upload_local(&[], &[]).status.code(), Some(0));
    let api = serve(&ws, &[]);
    let mut clients: Vec<Child> = (0..8).map(|_| curl_stream(&api)).collect();
    wait_for(Duration::from_secs(20), "8 streams", || {
        (stream_threads(api.pid()) == 8).then_some(())
    });
    let (status, body, headers) = api.get("/events", Some(TOKEN));
    assert_eq!(status, 503, "{body}");
    assert!(header(&headers, "retry-after").is_some());
    assert!(body.contains("--events-max"), "{body}");
    for _ in 0..20 {
        for path in ["/health", "/backups?limit=100"] {
            let started = Instant::now();
            let (status, body, _) = api.get(path, Some(TOKEN));
            let took = started.elapsed();
            assert_eq!(status, 200, "{path}: {body}");
            assert!(took < Duration::from_millis(100), "{path} took {took:?}");
        }
    }
    let rows: serde_json::Value = api.json("/backups?limit=100");
    assert_eq!(rows.as_array().unwrap().len(), 100);

    let mut killed = clients.remove(0);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let started = Instant::now();
    wait_for(
        Duration::from_secs(30),
        "the killed client's thread",
        || (stream_threads(api.pid()) == 7).then_some(()),
    );
    eprintln!("killed client's thread freed in {:?}", started.elapsed());
    clients.push(curl_stream(&api));
    wait_for(Duration::from_secs(20), "its place taken again", || {
        (stream_threads(api.pid()) == 8).then_some(())
    });
    for mut c in clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    wait_for(Duration::from_secs(30), "every stream thread freed", || {
        (stream_threads(api.pid()) == 0).then_some(())
    });
}

/// A client that connects and never reads does not hold up the events of
/// one that does, nor the upload: every file of a 1,000-file run reaches
/// the reading client (whose backlog, one look of up to 500 rows at a
/// time, once overflowed a 256-event queue: hostile review), the upload
/// ends, and the API answers throughout.
// docs/SAFETY.md S33
#[test]
fn a_client_that_never_reads_holds_up_no_one() {
    let ws = Workspace::new();
    ws.write_gz("FGT-A/seed.log.gz", 5, 1);
    assert_eq!(ws.upload_local(&[], &[]).status.code(), Some(0));
    let api = serve(&ws, &[]);
    let stalled = Stream::open(addr(&api), TOKEN, None);
    // Its events pile up in the socket and then in its queue, unread.
    let reader = Stream::open(addr(&api), TOKEN, None);
    for i in 0..1000 {
        ws.write_gz(&format!("FGT-A/many-{i:04}.log.gz"), 2, 100 + i);
    }
    let out = ws.upload_local(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = until_run_finished(&reader, 2);
    let files = got
        .iter()
        .filter(|e| e.name == "file_archived" && e.data["run_id"] == 2)
        .count();
    assert_eq!(files, 1001, "the new files and the one already archived");
    assert_eq!(api.health_status(), Some(200));
    drop(stalled);
}

/// The daemon's own runs reach its stream at once (its inventory writes
/// wake the watcher), with the file's key, size, digest and device.
#[test]
fn the_daemon_streams_its_own_runs() {
    let ws = Workspace::new();
    let args = ws.local_upload_args(&[]);
    let api = Api::daemon(&ws, &args, "1s", &[("APP_TOKENS", TOKEN)]);
    let stream = Stream::open(addr(&api), TOKEN, None);
    let file = ws.write_gz("FGT-A/FGT-A-2026-11-22T01.log.gz", 50, 3);
    let sha = sha256_file(&file);
    let size = std::fs::metadata(&file).unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    let archived = loop {
        let e = stream
            .next(deadline.saturating_duration_since(Instant::now()))
            .expect("a file_archived event within 30 s");
        if e.name == "file_archived" {
            break e;
        }
    };
    assert_eq!(archived.data["key"], "FGT-A/FGT-A-2026-11-22T01.log.gz");
    assert_eq!(archived.data["status"], "uploaded");
    assert_eq!(archived.data["bytes"], size);
    assert_eq!(archived.data["sha256"], &sha[..12]);
    assert_eq!(archived.data["device"], "FGT-A");
    let rest = stream.until("run_finished", Duration::from_secs(10));
    assert_eq!(rest.last().unwrap().data["uploaded"], 1, "{rest:?}");
}

/// `fgbackup tail --json` follows the daemon's stream: the file archived
/// after it started is printed with its key; a wrong token is refused in
/// one line that does not repeat it.
#[test]
fn tail_follows_the_stream_in_a_terminal() {
    use std::io::BufRead;
    let ws = Workspace::new();
    let args = ws.local_upload_args(&[]);
    let api = Api::daemon(&ws, &args, "1s", &[("APP_TOKENS", TOKEN)]);
    let mut tail = ws
        .command(
            &["tail", "--url", &api.base, "--json"],
            &[("FGBACKUP_TOKEN", TOKEN)],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Until tail's stream is open, a file could be archived unseen: wait
    // for the server to count it.
    wait_for(Duration::from_secs(20), "tail's stream", || {
        (stream_threads(api.pid()) == 1).then_some(())
    });
    ws.write_gz("FGT-T/FGT-T-2026-11-22T02.log.gz", 30, 9);
    let deadline = Instant::now() + Duration::from_secs(30);
    let archived = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("tail printed the file within 30 s");
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        assert!(v["id"].is_string(), "{line}");
        if v["event"] == "file_archived" {
            break v;
        }
    };
    assert_eq!(archived["data"]["key"], "FGT-T/FGT-T-2026-11-22T02.log.gz");
    let _ = tail.kill();
    let _ = tail.wait();

    let out = ws.run(
        &["tail", "--url", &api.base],
        &[("FGBACKUP_TOKEN", "not-the-token-4f1c")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("refused the token"), "{err}");
    assert!(!err.contains("not-the-token-4f1c"), "{err}");
    // A server never reached is a wrong URL, not a restart: one line, 1
    // (it retried forever: hostile review).
    let closed = format!("http://127.0.0.1:{}", free_port());
    for url in [
        closed.as_str(),
        "http://[::1",
        "http://nonexistent.invalid:8080",
    ] {
        let out = ws.run(&["tail", "--url", url], &[("FGBACKUP_TOKEN", TOKEN)]);
        assert_eq!(out.status.code(), Some(1), "{url}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("cannot reach") && err.contains("--url"),
            "{err}"
        );
    }
}

/// `demo --serve`: after archiving, a verify, then the API with the page
/// on loopback, its URL and a token made for the run printed; the token
/// opens `/overview`, the page carries its CSP, and SIGTERM stops it.
#[test]
fn demo_serve_shows_the_page_with_a_one_time_token() {
    use std::io::BufRead;
    let ws = Workspace::new();
    let workdir = ws.tmp.path().join("demo");
    let mut demo = ws
        .command(
            &["demo", "--workdir", workdir.to_str().unwrap(), "--serve"],
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(demo.stdout.take().unwrap()).lines();
    let (mut url, mut token, mut verified) = (String::new(), String::new(), false);
    for line in lines.by_ref() {
        let line = line.unwrap();
        verified |= line.starts_with("verify: 12 objects checked") && line.contains("12 ok");
        if let Some(u) = line.strip_prefix("The dashboard: ") {
            url = u.to_string();
        }
        if let Some(t) = line.strip_prefix("Its token (for this run only): ") {
            token = t.to_string();
            break;
        }
    }
    assert!(verified, "the demo verifies the archive before serving");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/ui/"),
        "{url}"
    );
    assert_eq!(token.len(), 32, "{token}");
    let base = url.trim_end_matches("/ui/");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut page = agent.get(&url).call().unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers().get("content-security-policy").unwrap();
    assert!(csp.to_str().unwrap().starts_with("default-src 'self'"));
    assert!(page.body_mut().read_to_string().unwrap().contains("app.js"));
    let mut overview = agent
        .get(format!("{base}/overview"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(overview.status(), 200);
    let v: serde_json::Value =
        serde_json::from_str(&overview.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["devices"].as_array().unwrap().len(), 3, "{v}");
    let refused = agent
        .get(format!("{base}/overview"))
        .header("Authorization", "Bearer not-it")
        .call()
        .unwrap();
    assert_eq!(refused.status(), 401);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(demo.id() as i32, libc::SIGTERM) };
    let status = demo.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A database the Python suite created, migrated by an upload while
/// `serve` runs, and then replaced by another file at the same path: the
/// API and the stream read the new columns, and then the new file, at
/// once (both kept what they opened first: hostile review).
// docs/SAFETY.md S34
#[test]
fn a_migrated_then_replaced_inventory_is_read_again() {
    let ws = Workspace::new();
    write_suite_db(&ws.db());
    let api = serve(&ws, &["--threads", "1"]);
    assert!(api.json("/backups/last")["object_key"].is_null());
    let stream = Stream::open(addr(&api), TOKEN, None);
    let file = ws.write_gz("FGT-M/m.log.gz", 20, 5);
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(ws.upload_local(&[], &[]).status.code(), Some(0));
    let events = stream.until("run_finished", Duration::from_secs(20));
    assert_eq!(
        names(&events),
        ["run_started", "file_archived", "run_finished"],
        "{events:?}"
    );
    assert_eq!(events[1].data["key"], "FGT-M/m.log.gz");
    assert_eq!(events[1].data["bytes"], size);
    assert_eq!(api.json("/backups/last")["object_key"], "FGT-M/m.log.gz");

    // Another inventory moved over this one's path.
    let other = Workspace::new();
    for i in 0..4 {
        other.write_gz(&format!("FGT-R/r{i}.log.gz"), 5, 40 + i);
    }
    assert_eq!(other.upload_local(&[], &[]).status.code(), Some(0));
    // As a restore does: the old file's WAL goes with it (the server still
    // has both open; a new connection must not take the old WAL's frames).
    for end in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{end}", ws.db().display()));
    }
    std::fs::rename(other.db(), ws.db()).unwrap();
    let last = api.json("/backups/last");
    assert!(
        last["object_key"].as_str().unwrap().starts_with("FGT-R/"),
        "{last}"
    );
    assert_eq!(api.json("/backups?limit=50").as_array().unwrap().len(), 4);
    // The stream says the file changed (clients reload), then follows it:
    // a run into the new file is streamed.
    let reset = stream.until("reset", Duration::from_secs(10));
    assert!(
        reset.iter().all(|e| e.name == "reset"),
        "nothing from the new file's past is streamed: {reset:?}"
    );
    ws.write_gz("FGT-M/after.log.gz", 20, 6);
    assert_eq!(ws.upload_local(&[], &[]).status.code(), Some(0));
    let after = until_run_finished(&stream, 2);
    assert!(
        after
            .iter()
            .any(|e| e.name == "file_archived" && e.data["key"] == "FGT-M/after.log.gz"),
        "{after:?}"
    );
}
