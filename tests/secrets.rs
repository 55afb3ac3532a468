//! No secret in any output at any log level: `upload` with every
//! notification channel configured and delivering (webhooks to a loopback
//! listener, Telegram through `TELEGRAM_API_URL`, email with AUTH over
//! STARTTLS to aiosmtpd), S3 credentials set, under the noisiest `RUST_LOG`
//! settings a user could try; then `doctor` with the same settings.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use common::listeners::{HookListener, SmtpServer};
use common::pki::make_pki;
use common::*;

const USER: &str = "ops@example.org";
const SMTP_PASSWORD: &str = "gmail-Secret-Password-5";
const TELEGRAM_TOKEN: &str = "123456:telegram-Secret-Token-4";
const SESSION_TOKEN: &str = "aws-Session-Token-6";
const API_TOKEN: &str = "api-Token-7";

/// `RUST_LOG` values that turn on every log line a dependency has.
const NOISY: &[&str] = &[
    "trace",
    "ureq=trace,rustls=trace,attohttpc=trace,s3=trace,mail_send=trace",
    // More specific module names than a crate cap would name.
    "info,ureq::unversioned::transport=trace,ureq_proto=trace,rustls::client=trace",
    "debug",
];

/// Every notification channel on, each pointing at a local peer.
struct Peers {
    hooks: HookListener,
    smtp: SmtpServer,
    ca: std::path::PathBuf,
}

impl Peers {
    fn start(ws: &Workspace) -> Peers {
        let pki = ws.tmp.path().join("pki");
        std::fs::create_dir(&pki).unwrap();
        make_pki(&pki);
        Peers {
            hooks: HookListener::start(0),
            smtp: SmtpServer::start("starttls", Some(&pki), USER, SMTP_PASSWORD),
            ca: pki.join("ca.pem"),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "SLACK_WEBHOOK_URL",
                self.hooks.url("/services/T0/B0/slack-Secret-Token-1"),
            ),
            ("SLACK_NOTIFY_ON", "always".into()),
            (
                "DISCORD_WEBHOOK_URL",
                self.hooks.url("/api/webhooks/42/discord-Secret-Token-2"),
            ),
            ("DISCORD_NOTIFY_ON", "always".into()),
            (
                "WEBHOOK_URL",
                self.hooks.url("/generic/generic-Secret-Token-3"),
            ),
            ("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN.into()),
            ("TELEGRAM_CHAT_ID", "-10042".into()),
            ("TELEGRAM_NOTIFY_ON", "always".into()),
            ("TELEGRAM_API_URL", self.hooks.url("")),
            ("NOTIFY_EMAIL", "noc@example.org".into()),
            ("EMAIL_METHOD", "starttls".into()),
            ("SMTP_HOST", "127.0.0.1".into()),
            ("SMTP_PORT", self.smtp.port.to_string()),
            ("GMAIL_USER", USER.into()),
            ("GMAIL_APP_PASSWORD", SMTP_PASSWORD.into()),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN.into()),
            ("APP_TOKENS", API_TOKEN.into()),
        ]
    }
}

/// Every secret value, plus the forms SMTP AUTH puts on the wire.
fn secrets() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut all: Vec<String> = [
        "slack-Secret-Token-1",
        "discord-Secret-Token-2",
        "generic-Secret-Token-3",
        "telegram-Secret-Token-4",
        SMTP_PASSWORD,
        SECRET_KEY,
        SESSION_TOKEN,
        API_TOKEN,
    ]
    .map(String::from)
    .to_vec();
    all.push(b64.encode(SMTP_PASSWORD));
    all.push(b64.encode(format!("\0{USER}\0{SMTP_PASSWORD}")));
    all
}

fn assert_no_secret(what: &str, out: &std::process::Output) {
    for (stream, text) in [("stdout", stdout(out)), ("stderr", stderr(out))] {
        for secret in secrets() {
            if let Some(at) = text.find(&secret) {
                let line = text[..at].rsplit('\n').next().unwrap_or("");
                panic!("{what}: {secret} in {stream}, on the line starting: {line:.200}");
            }
        }
    }
}

fn with_log(env: &[(&'static str, String)], rust_log: &str) -> Vec<(&'static str, String)> {
    let mut all = env.to_vec();
    all.push(("RUST_LOG", rust_log.to_string()));
    all
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

// docs/SAFETY.md S29
#[test]
fn upload_at_every_log_level_delivers_and_prints_no_secret() {
    let ws = Workspace::new();
    let peers = Peers::start(&ws);
    let ca = peers.ca.display().to_string();
    for (i, level) in NOISY.iter().enumerate() {
        ws.write_gz(&format!("f{i}.log.gz"), 20, 30 + i as u64);
        let posts_before = peers.hooks.posts().len();
        let env = with_log(&peers.env(), level);
        let out = ws.upload_local(&["--ca-file", &ca], &borrowed(&env));
        let what = format!("upload with RUST_LOG={level}");
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("notification(s) failed"),
            "{what}: every channel delivers: {}",
            stderr(&out)
        );
        assert_eq!(
            peers.hooks.posts().len() - posts_before,
            4,
            "{what}: Slack, Discord, generic and Telegram were posted to"
        );
        assert_eq!(
            peers.smtp.messages().len(),
            i + 1,
            "{what}: the email went out"
        );
        assert_no_secret(&what, &out);
    }
}

// docs/SAFETY.md S29
#[test]
fn s3_upload_at_trace_prints_no_credential() {
    let server = S3Server::start();
    let ws = Workspace::new();
    ws.write_gz("s3.log.gz", 20, 40);
    for level in NOISY {
        let out = ws.run(
            &ws.s3_upload_args(&server.endpoint(), &[]),
            &[("RUST_LOG", level)],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_no_secret(&format!("S3 upload with RUST_LOG={level}"), &out);
    }
}

// docs/SAFETY.md S29 S30
#[test]
fn doctor_with_every_secret_set_prints_none() {
    let ws = Workspace::new();
    let peers = Peers::start(&ws);
    ws.write_gz("a.log.gz", 20, 50);
    // A world-readable env file holding secrets, in the forms systemd reads.
    let env_file = ws.tmp.path().join("backup_fg");
    let text = format!(
        "# fgbackup\nexport GMAIL_APP_PASSWORD=\"{SMTP_PASSWORD}\"\n  AWS_SECRET_ACCESS_KEY = {SECRET_KEY}\n\
         ; comment\nTELEGRAM_BOT_TOKEN='{TELEGRAM_TOKEN}'\nAPP_TOKENS={API_TOKEN}\n"
    );
    std::fs::write(&env_file, text).unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let archive = format!("file://{}", ws.archive().display());
    let ca = peers.ca.display().to_string();
    let (logs, db) = (ws.logs(), ws.db());
    let args = [
        "doctor",
        "--env-file",
        env_file.to_str().unwrap(),
        "--dir",
        logs.to_str().unwrap(),
        "--dest",
        &archive,
        "--db",
        db.to_str().unwrap(),
        "--ca-file",
        &ca,
    ];
    for level in NOISY {
        let env = with_log(&peers.env(), level);
        let out = ws.run(&args, &borrowed(&env));
        let what = format!("doctor with RUST_LOG={level}");
        let text = stdout(&out);
        assert!(
            !stderr(&out).contains("panicked"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(
            text.contains("[WARN]")
                && [
                    "GMAIL_APP_PASSWORD",
                    "AWS_SECRET_ACCESS_KEY",
                    "TELEGRAM_BOT_TOKEN",
                    "APP_TOKENS"
                ]
                .iter()
                .all(|v| text.contains(v)),
            "{what}: the env file's secret variables are named: {text}"
        );
        assert!(
            text.contains(&format!(
                "SMTP server 127.0.0.1:{}: reachable, greets: 220",
                peers.smtp.port
            )),
            "{what}: {text}"
        );
        assert_no_secret(&what, &out);
    }
}
