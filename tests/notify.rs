//! Notifications against real servers: email over STARTTLS and SMTPS with a
//! test CA and AUTH (aiosmtpd), webhooks to a loopback HTTP listener, the flag
//! file and the Prometheus textfile. A notifier never changes the run.

use crate::common;

use std::time::Duration;

use common::listeners::{HookListener, Running, SmtpServer, Stall};
use common::pki::{make_pki, start_tls_proxy};
use common::*;

const USER: &str = "ops@example.org";
const PASSWORD: &str = "app-password-for-tests";

fn pki(ws: &Workspace) -> std::path::PathBuf {
    let dir = ws.tmp.path().join("pki");
    std::fs::create_dir(&dir).unwrap();
    make_pki(&dir);
    dir
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

fn body_of(data: &str) -> String {
    data.split_once("\r\n\r\n")
        .map(|(_, b)| b.replace("\r\n", "\n"))
        .unwrap_or_default()
}

#[test]
fn starttls_success_mail_holds_only_the_latest_entry() {
    let ws = Workspace::new();
    let pki = pki(&ws);
    let smtp = SmtpServer::start("starttls", Some(&pki), USER, PASSWORD);
    ws.write_gz("a.log.gz", 50, 1);
    ws.write_gz("b.log.gz", 50, 2);
    let port = smtp.port.to_string();
    let ca = pki.join("ca.pem");
    let out = ws.upload_local(
        &[
            "--notify-email",
            "noc@example.org,sec@example.org",
            "--email-method",
            "starttls",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &port,
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        &[("GMAIL_USER", USER), ("GMAIL_APP_PASSWORD", PASSWORD)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains(PASSWORD));
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{}", stderr(&out));
    let m = &msgs[0];
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["mail_from"], USER);
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["noc@example.org", "sec@example.org"])
    );
    let data = m["data"].as_str().unwrap();
    let to = header(data, "To").unwrap();
    assert!(
        to.contains("noc@example.org") && to.contains("sec@example.org"),
        "{to}"
    );
    let subject = header(data, "Subject").unwrap();
    assert!(
        subject.contains("OK") && subject.contains("2 uploaded"),
        "{subject}"
    );
    assert!(
        header(data, "Date").is_some() && header(data, "Message-ID").is_some(),
        "{data}"
    );
    let body = body_of(data);
    assert!(body.starts_with("Latest inventory entry:"), "{body}");
    let newest = ws.rows().last().unwrap().clone();
    assert!(
        body.contains(&format!("sha256: {}", newest.sha256.unwrap())),
        "{body}"
    );
    assert!(!body.contains("failures"), "{body}");
}

#[test]
fn smtps_failure_mail_has_the_error_summary_then_the_entry() {
    let ws = Workspace::new();
    let pki = pki(&ws);
    let smtp = SmtpServer::start("smtps", Some(&pki), USER, PASSWORD);
    let f = ws.write_gz("cut.log.gz", 2000, 3);
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..data.len() / 2]).unwrap();
    set_old_mtime(&f);
    let port = smtp.port.to_string();
    let ca = pki.join("ca.pem");
    let out = ws.upload_local(
        // The truncated .gz fails the run only where its proof is asked for.
        &["--ca-file", ca.to_str().unwrap(), "--gzip-check", "always"],
        &[
            ("NOTIFY_EMAIL", "noc@example.org"),
            ("EMAIL_METHOD", "smtps"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("GMAIL_USER", USER),
            ("GMAIL_APP_PASSWORD", PASSWORD),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run failed, the email does not change that"
    );
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{}", stderr(&out));
    let data = msgs[0]["data"].as_str().unwrap();
    assert!(header(data, "Subject").unwrap().contains("FAILED"));
    let body = body_of(data);
    let summary = body.find("failed_gzip cut.log.gz").expect("error summary");
    let entry = body.find("Latest inventory entry:").expect("latest entry");
    assert!(summary < entry, "{body}");
}

// docs/SAFETY.md S17
#[test]
fn email_failures_are_clear_and_leave_the_run_alone() {
    let ws = Workspace::new();
    let pki = pki(&ws);
    let smtp = SmtpServer::start("starttls", Some(&pki), USER, PASSWORD);
    let ca = pki.join("ca.pem");
    let port = smtp.port.to_string();
    let closed = free_port().to_string();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        // Wrong password.
        (
            vec!["--ca-file", ca.to_str().unwrap()],
            vec![
                ("SMTP_PORT", &port),
                ("GMAIL_APP_PASSWORD", "wrong-password"),
            ],
            "authentication failed",
        ),
        // Server down.
        (
            vec!["--ca-file", ca.to_str().unwrap()],
            vec![("SMTP_PORT", &closed), ("GMAIL_APP_PASSWORD", PASSWORD)],
            "connection refused",
        ),
        // Certificate from a CA we were not told to trust.
        (
            vec![],
            vec![("SMTP_PORT", &port), ("GMAIL_APP_PASSWORD", PASSWORD)],
            "--ca-file",
        ),
    ];
    for (i, (flags, env, expect)) in cases.into_iter().enumerate() {
        ws.write_gz(&format!("f{i}.log.gz"), 20, 10 + i as u64);
        let mut all_env = vec![
            ("NOTIFY_EMAIL", "noc@example.org"),
            ("SMTP_HOST", "127.0.0.1"),
            ("GMAIL_USER", USER),
        ];
        all_env.extend(env);
        let out = ws.upload_local(&flags, &all_env);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "case {i}: the upload succeeded: {err}"
        );
        assert!(
            err.contains("email not sent") && err.contains(expect),
            "case {i}: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains(PASSWORD) && !err.contains("wrong-password"),
            "{err}"
        );
        let key = format!("f{i}.log.gz");
        let rows = ws.rows();
        let row = rows
            .iter()
            .find(|r| r.object_key.as_deref() == Some(key.as_str()));
        assert_eq!(row.unwrap().status(), "uploaded");
    }
    assert!(smtp.messages().is_empty());
}

#[test]
fn email_dry_run_prints_the_message_and_plain_needs_an_explicit_opt_in() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 20, 4);
    let out = ws.upload_local(
        &["--notify-email", "noc@example.org"],
        &[("EMAIL_DRY_RUN", "1"), ("SMTP_PORT", "1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Subject: [fgbackup]"), "{text}");
    assert!(text.contains("To: <noc@example.org>"), "{text}");
    assert!(text.contains("Latest inventory entry:"), "{text}");

    // A password is never sent without TLS.
    let out = ws.upload_local(
        &[],
        &[
            ("NOTIFY_EMAIL", "noc@example.org"),
            ("EMAIL_METHOD", "plain"),
            ("GMAIL_USER", USER),
            ("GMAIL_APP_PASSWORD", PASSWORD),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("never sends a password without TLS"),
        "{}",
        stderr(&out)
    );

    // A local relay without TLS or AUTH, chosen explicitly.
    let relay = SmtpServer::start("plain", None, "", "");
    ws.write_gz("b.log.gz", 20, 5);
    let port = relay.port.to_string();
    let out = ws.upload_local(
        &[],
        &[
            ("NOTIFY_EMAIL", "noc@example.org"),
            ("EMAIL_METHOD", "plain"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(relay.messages().len(), 1);
}

// docs/SAFETY.md S29
#[test]
fn webhooks_get_their_payloads_and_secrets_stay_out_of_logs() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 20, 6);
    // The first request anywhere gets a 500: one retry must deliver it.
    let hooks = HookListener::start(1);
    let slack = hooks.url("/services/T000/B000/slacksecret");
    let discord = hooks.url("/api/webhooks/1/discordsecret");
    let generic = hooks.url("/fgbackup");
    let telegram_api = hooks.url("");
    let out = ws.upload_local(
        &[],
        &[
            ("SLACK_WEBHOOK_URL", &slack),
            ("SLACK_NOTIFY_ON", "always"),
            ("DISCORD_WEBHOOK_URL", &discord), // default: failures only
            ("WEBHOOK_URL", &generic),
            ("TELEGRAM_BOT_TOKEN", "123:telegramsecret"),
            ("TELEGRAM_CHAT_ID", "-10042"),
            ("TELEGRAM_NOTIFY_ON", "always"),
            ("TELEGRAM_API_URL", &telegram_api),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    for secret in ["slacksecret", "discordsecret", "telegramsecret"] {
        assert!(!err.contains(secret), "{secret} leaked: {err}");
    }
    let posts = hooks.posts();
    let to = |p: &str| {
        posts
            .iter()
            .filter(|x| x.path == p && x.method == "POST")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(posts.len(), 4, "3 deliveries plus one retry: {posts:#?}");
    assert!(
        to("/api/webhooks/1/discordsecret").is_empty(),
        "Discord is failure-only by default"
    );
    let s = to("/services/T000/B000/slacksecret");
    assert!(
        s.last().unwrap().body["text"]
            .as_str()
            .unwrap()
            .contains("OK. 1 files (1 uploaded)"),
        "{s:?}"
    );
    let t = to("/bot123:telegramsecret/sendMessage");
    assert_eq!(t.last().unwrap().body["chat_id"], "-10042");
    assert!(
        t.last().unwrap().body["text"]
            .as_str()
            .unwrap()
            .contains("fgbackup on")
    );
    let g = to("/fgbackup");
    let doc = &g.last().unwrap().body;
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["files"], 1);
    assert_eq!(doc["counts"]["uploaded"], 1);
    assert_eq!(doc["latest"]["status"], "uploaded");
    assert!(doc["finished_at"].as_str().unwrap().ends_with('Z'));

    // A failing run reaches Discord too.
    let f = ws.write_gz("bad.log.gz", 500, 7);
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..data.len() / 2]).unwrap();
    set_old_mtime(&f);
    let out = ws.upload_local(
        &["--gzip-check", "always"],
        &[("DISCORD_WEBHOOK_URL", &discord)],
    );
    assert_eq!(out.status.code(), Some(1));
    let d = hooks
        .posts()
        .into_iter()
        .filter(|p| p.path.contains("discord"))
        .collect::<Vec<_>>();
    assert_eq!(d.len(), 1);
    let text = d[0].body["content"].as_str().unwrap();
    assert!(
        text.contains("FAILED") && text.contains("failed_gzip bad.log.gz"),
        "{text}"
    );
}

#[test]
fn flag_file_and_metrics_textfile() {
    let ws = Workspace::new();
    ws.write_gz("a.log.gz", 20, 8);
    let flag = ws.tmp.path().join("backup.ok");
    let prom = ws.tmp.path().join("fgbackup.prom");
    let out = ws.upload_local(
        &["--flag-file", flag.to_str().unwrap()],
        &[("METRICS_TEXTFILE", prom.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(flag.exists());
    let first_touch = std::fs::metadata(&flag).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("fgbackup_run_success 1"), "{text}");
    assert!(
        text.contains("fgbackup_run_files{status=\"uploaded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("fgbackup_last_success_timestamp_seconds "),
        "{text}"
    );
    assert!(
        text.contains("# TYPE fgbackup_run_bytes_uploaded gauge"),
        "{text}"
    );

    // A failed run rewrites the textfile but leaves the flag file alone.
    std::fs::File::options()
        .write(true)
        .open(&flag)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    let old = std::fs::metadata(&flag).unwrap().modified().unwrap();
    assert!(old < first_touch);
    let f = ws.write_gz("bad.log.gz", 500, 9);
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..data.len() / 2]).unwrap();
    set_old_mtime(&f);
    let out = ws.upload_local(
        &[
            "--flag-file",
            flag.to_str().unwrap(),
            "--gzip-check",
            "always",
        ],
        &[("METRICS_TEXTFILE", prom.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::metadata(&flag).unwrap().modified().unwrap(),
        old,
        "flag file untouched by a failed run"
    );
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("fgbackup_run_success 0"), "{text}");
    assert!(
        text.contains("fgbackup_run_files{status=\"failed_gzip\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("fgbackup_last_success_timestamp_seconds "),
        "the last success survives a failed run: {text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(ws.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn https_s3_and_starttls_smtp_in_one_process_do_not_panic() {
    // Both TLS users (rust-s3's rustls and mail-send's) in the same run: the
    // crypto-provider pitfall would panic here.
    let server = S3Server::start();
    let ws = Workspace::new();
    let pki = pki(&ws);
    let s3_tls = start_tls_proxy(&pki, server.port);
    let smtp = SmtpServer::start("starttls", Some(&pki), USER, PASSWORD);
    ws.write_gz("both.log.gz", 50, 11);
    let logs = ws.logs();
    let db = ws.db();
    let endpoint = format!("https://127.0.0.1:{}", s3_tls.port);
    let ca = pki.join("ca.pem");
    let port = smtp.port.to_string();
    let out = ws.run(
        &[
            "upload",
            "--dir",
            logs.to_str().unwrap(),
            "--bucket",
            BUCKET,
            "--endpoint",
            &endpoint,
            "--db",
            db.to_str().unwrap(),
            "--min-age",
            "0",
            "--ca-file",
            ca.to_str().unwrap(),
            "--notify-email",
            "noc@example.org",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &port,
        ],
        &[("GMAIL_USER", USER), ("GMAIL_APP_PASSWORD", PASSWORD)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    assert_eq!(ws.rows()[0].status(), "uploaded");
    assert_eq!(smtp.messages().len(), 1);
}

/// SMTP settings that send the summary to `port` on loopback with `method`.
fn smtp_env(method: &'static str, port: &str) -> Vec<(&'static str, String)> {
    vec![
        ("NOTIFY_EMAIL", "noc@example.org".to_string()),
        ("EMAIL_METHOD", method.to_string()),
        ("SMTP_HOST", "127.0.0.1".to_string()),
        ("SMTP_PORT", port.to_string()),
    ]
}

/// Starts `upload` to a directory store with `env`, one fresh file.
fn start_upload(ws: &Workspace, env: &[(&str, String)]) -> Running {
    ws.write_gz("a.log.gz", 20, 21);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Running::spawn(ws.command(&ws.local_upload_args(&[]), &env))
}

// docs/SAFETY.md S17
#[test]
fn smtp_servers_that_stall_cannot_hang_the_run() {
    // Each case: (method, what the fake server says before going silent).
    let cases: [(&str, &'static [&'static str]); 5] = [
        // Accepts and never sends the greeting.
        ("plain", &[]),
        ("starttls", &[]),
        // A TLS server that never completes the handshake.
        ("smtps", &[]),
        // Greets, then never answers EHLO.
        ("plain", &["220 stall.test ESMTP"]),
        // Offers STARTTLS, then never completes the TLS handshake.
        (
            "starttls",
            &[
                "220 stall.test ESMTP",
                "250-stall.test\r\n250 STARTTLS",
                "220 go ahead",
            ],
        ),
    ];
    let runs: Vec<_> = cases
        .iter()
        .map(|(method, script)| {
            let ws = Workspace::new();
            let server = Stall::start(script);
            let run = start_upload(&ws, &smtp_env(method, &server.port.to_string()));
            (ws, server, run)
        })
        .collect();
    for ((method, script), (ws, server, run)) in cases.iter().zip(runs) {
        // A hung email would block forever; give well over the bound.
        let (out, took) = run.finish_within(Duration::from_secs(60));
        let err = stderr(&out);
        let case = format!("{method} after {} scripted line(s)", script.len());
        assert_eq!(server.accepted(), 1, "{case}: {err}");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: the upload succeeded: {err}"
        );
        assert_eq!(ws.rows()[0].status(), "uploaded", "{case}");
        assert!(
            err.contains("email not sent")
                && err.contains(&format!("127.0.0.1:{} ({method})", server.port))
                && err.contains("timed out"),
            "{case}: one clear line naming the channel and the timeout: {err}"
        );
        assert!(err.contains("1 notification(s) failed"), "{case}: {err}");
        assert!(
            took < Duration::from_secs(30),
            "{case}: took {took:?}, more than the email limit of 30 s"
        );
    }
}

// docs/SAFETY.md S17
#[test]
fn a_webhook_that_never_answers_is_given_up_on_in_bounded_time() {
    let ws = Workspace::new();
    let hook = Stall::start(&[]);
    let run = start_upload(&ws, &[("WEBHOOK_URL", hook.url("/hooks/never-answers"))]);
    let (out, took) = run.finish_within(Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(ws.rows()[0].status(), "uploaded");
    assert_eq!(hook.accepted(), 2, "one attempt and one retry: {err}");
    assert!(
        err.contains(&format!(
            "Generic webhook http://127.0.0.1:{}/… failed twice: timed out after 10 s",
            hook.port
        )),
        "{err}"
    );
    assert!(err.contains("1 notification(s) failed"), "{err}");
    assert!(
        !err.contains("never-answers"),
        "the URL path stays out of logs: {err}"
    );
    assert!(
        took < Duration::from_secs(25),
        "took {took:?}, over the 25 s webhook limit"
    );
}

// docs/SAFETY.md S17
#[test]
fn sigterm_ends_a_hung_notification_within_seconds() {
    type Case = (
        &'static str,
        fn(&Stall) -> Vec<(&'static str, String)>,
        &'static str,
    );
    let cases: [Case; 2] = [
        (
            "plain SMTP without a greeting",
            |s| smtp_env("plain", &s.port.to_string()),
            "email not sent: SMTP 127.0.0.1:",
        ),
        (
            "webhook that never answers",
            |s| vec![("WEBHOOK_URL", s.url("/hook"))],
            "Generic webhook http://127.0.0.1:",
        ),
    ];
    for (name, env, channel) in cases {
        let ws = Workspace::new();
        let server = Stall::start(&[]);
        let run = start_upload(&ws, &env(&server));
        // The upload is done and the notification waits on our silent server.
        server.wait_accepted(1, Duration::from_secs(30));
        let signalled = std::time::Instant::now();
        run.signal(libc::SIGTERM);
        let (out, _) = run.finish_within(Duration::from_secs(15));
        let after_signal = signalled.elapsed();
        let err = stderr(&out);
        assert!(
            after_signal < Duration::from_secs(10),
            "{name}: exited {after_signal:?} after SIGTERM: {err}"
        );
        assert!(
            err.contains(channel) && err.contains("abandoned: stop signal"),
            "{name}: {err}"
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: the upload stands: {err}"
        );
        assert_eq!(ws.rows()[0].status(), "uploaded", "{name}");
    }
}

#[test]
fn doctor_names_an_smtp_server_that_never_greets() {
    let ws = Workspace::new();
    let silent = Stall::start(&[]);
    let port = silent.port.to_string();
    let archive = format!("file://{}", ws.archive().display());
    let (logs, db) = (ws.logs(), ws.db());
    let args = [
        "doctor",
        "--dir",
        logs.to_str().unwrap(),
        "--dest",
        &archive,
        "--db",
        db.to_str().unwrap(),
    ];
    let env = [
        ("NOTIFY_EMAIL", "noc@example.org"),
        ("EMAIL_METHOD", "starttls"),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", port.as_str()),
    ];
    let run = Running::spawn(ws.command(&args, &env));
    let (out, took) = run.finish_within(Duration::from_secs(60));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "[FAIL] SMTP server 127.0.0.1:{port}: accepts connections but sends no greeting within 10 s"
        )),
        "{text}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
