//! Telling people what a run did: the suite's email summary, chat and JSON
//! webhooks, a flag file and a Prometheus textfile.
//!
//! Notifiers run after the run's rows are written and can never change them:
//! a failure is logged and counted in the return value, nothing more.
//!
//! Every network notifier runs under [`crate::signal::run_bounded`] with its
//! channel's total time limit ([`email::EMAIL_TIMEOUT`],
//! [`webhook::WEBHOOK_TIMEOUT`]), so a server that accepts and never answers
//! cannot hang a run, and SIGTERM/SIGINT ends any wait within
//! [`crate::signal::STOP_GRACE`]. Channels run one after the other, so a run
//! with every channel stalled waits at most the sum of their limits.

pub mod email;
pub mod files;
pub mod webhook;

use crate::cli::flags;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::units::parse_bool;

/// When a channel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    Success,
    Failure,
}

impl When {
    fn parse(name: &str, value: Option<String>, default: When) -> Result<When> {
        match value.as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some("always") => Ok(When::Always),
            Some("success") => Ok(When::Success),
            Some("failure") => Ok(When::Failure),
            Some(other) => Err(Error::usage(format!(
                "{name}='{other}' is not understood: use always, success or failure"
            ))),
        }
    }

    /// Whether a run that did (`ok`) or did not succeed is reported.
    pub fn applies(self, ok: bool) -> bool {
        match self {
            When::Always => true,
            When::Success => ok,
            When::Failure => !ok,
        }
    }
}

/// Every notification setting of a run.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub email: Option<email::EmailConfig>,
    pub webhooks: Vec<webhook::Webhook>,
    pub flag_file: Option<PathBuf>,
    pub metrics_textfile: Option<PathBuf>,
}

/// What a run did, as the notifiers tell it.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// `""` for an upload run, `"verify"` for a verify: named in subjects and texts.
    pub job: &'static str,
    pub host: String,
    pub ok: bool,
    pub dry_run: bool,
    pub files: u64,
    pub failed: u64,
    pub deleted: u64,
    pub bytes_uploaded: u64,
    pub duration_secs: f64,
    pub finished_unix: i64,
    pub counts: BTreeMap<String, u64>,
    /// One line per failed file (`status key: error`), at most [`MAX_PROBLEMS`].
    pub problems: Vec<String>,
    pub problems_omitted: u64,
    /// Set when the run could not start or stopped early (bucket missing...).
    pub fatal: Option<String>,
    /// The newest inventory row as `field: value` pairs, when there is one.
    pub latest: Option<Vec<(String, String)>>,
    /// End of the newest run without failures, from the inventory.
    pub last_success_unix: Option<i64>,
    /// With `--manifest-key`: the chain head after the run (key, sequence,
    /// SHA-256), for the auditor to keep outside the archive.
    pub manifest: Option<(String, Option<i64>, String)>,
}

impl RunReport {
    /// The report with control characters escaped in everything a file
    /// name or key can reach (problem lines, the fatal error, the newest
    /// row's fields): a name holding a newline cannot forge a line in an
    /// email, a chat message or a webhook's text.
    fn escaped(&self) -> RunReport {
        let esc = |s: &String| crate::logging::one_line(s).into_owned();
        RunReport {
            problems: self.problems.iter().map(esc).collect(),
            fatal: self.fatal.as_ref().map(esc),
            latest: self
                .latest
                .as_ref()
                .map(|f| f.iter().map(|(k, v)| (esc(k), esc(v))).collect()),
            ..self.clone()
        }
    }
}

/// Lines of per-file problems kept in a report.
pub const MAX_PROBLEMS: usize = 20;

impl RunReport {
    /// `"verify "` before the verdict for a verify, nothing for an upload
    /// (whose texts stay as the suite wrote them).
    pub fn job_label(&self) -> String {
        if self.job.is_empty() {
            String::new()
        } else {
            format!("{} ", self.job)
        }
    }

    /// `3 uploaded, 1 skipped_exists, 2 failed_gzip`.
    pub fn counts_text(&self) -> String {
        if self.counts.is_empty() {
            return "no files".to_string();
        }
        self.counts
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads the notification settings: the suite's email flags and variables
/// (`--notify-email`, `--email-method`, `--smtp-host`, `--smtp-port`,
/// `GMAIL_USER`, `GMAIL_APP_PASSWORD`, `EMAIL_METHOD`, `SMTP_HOST`, `SMTP_PORT`,
/// `NOTIFY_EMAIL`, `EMAIL_DRY_RUN`), webhooks, flag file and textfile.
pub fn parse(
    args: &crate::cli::Args,
    env: crate::cli::Env,
    ca_file: Option<PathBuf>,
) -> Result<NotifyConfig> {
    // Empty flag values count as unset, like empty variables.
    let get = |flag: &crate::cli::table::Flag| args.get(flag, env).filter(|s| !s.trim().is_empty());
    // systemd expands an unset ${VAR} to an empty word: treat empty as unset.
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let recipients = get(&flags::NOTIFY_EMAIL);
    let flag_file = get(&flags::FLAG_FILE).map(PathBuf::from);
    let metrics_textfile = get(&flags::METRICS_TEXTFILE).map(PathBuf::from);

    let email = match recipients {
        None => None,
        Some(list) => Some(email_config(args, env, &list, ca_file)?),
    };
    let webhooks = webhook::from_env(&env_nonempty)?;
    Ok(NotifyConfig {
        email,
        webhooks,
        flag_file,
        metrics_textfile,
    })
}

/// The email channel's settings, once `--notify-email`/`NOTIFY_EMAIL` names
/// recipients: method, server, login and sender.
fn email_config(
    args: &crate::cli::Args,
    env: crate::cli::Env,
    list: &str,
    ca_file: Option<PathBuf>,
) -> Result<email::EmailConfig> {
    let get = |flag: &crate::cli::table::Flag| args.get(flag, env).filter(|s| !s.trim().is_empty());
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (method, host, port) = (
        get(&flags::EMAIL_METHOD),
        get(&flags::SMTP_HOST),
        get(&flags::SMTP_PORT),
    );
    let to: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = to.iter().find(|a| !looks_like_address(a)) {
        return Err(Error::usage(format!(
            "--notify-email/NOTIFY_EMAIL: '{bad}' is not an e-mail address"
        )));
    }
    let method = email::Method::parse(method.as_deref())?;
    let port = match port {
        None => method.default_port(),
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Error::usage(format!("--smtp-port/SMTP_PORT '{p}' is not a port number"))
            })?,
    };
    let (user, credentials) = smtp_login(env)?;
    if method == email::Method::Plain && credentials.is_some() {
        return Err(Error::usage(
            "EMAIL_METHOD=plain never sends a password without TLS: use starttls or smtps, or unset GMAIL_USER and GMAIL_APP_PASSWORD for a local relay",
        ));
    }
    let from = env_nonempty("EMAIL_FROM")
        .or(user)
        .unwrap_or_else(|| format!("fgbackup@{}", crate::host::hostname()));
    let dry_run = match env("EMAIL_DRY_RUN") {
        None => false,
        Some(v) => parse_bool(&v).ok_or_else(|| {
            Error::usage(format!("EMAIL_DRY_RUN='{v}' is not a boolean: use 1 or 0"))
        })?,
    };
    Ok(email::EmailConfig {
        to,
        from,
        host: host.unwrap_or_default(),
        port,
        method,
        credentials,
        dry_run,
        dry_run_to_stderr: args.flag(&flags::JSON),
        ca_file,
        when: When::parse("EMAIL_NOTIFY_ON", env("EMAIL_NOTIFY_ON"), When::Always)?,
    })
}

/// `GMAIL_USER` + `GMAIL_APP_PASSWORD` (or `SMTP_USER` + `SMTP_PASSWORD`):
/// both or neither. The password is registered for redaction at once.
fn smtp_login(env: crate::cli::Env) -> Result<(Option<String>, Option<email::Secret>)> {
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let user = env_nonempty("GMAIL_USER").or_else(|| env_nonempty("SMTP_USER"));
    let password = env_nonempty("GMAIL_APP_PASSWORD").or_else(|| env_nonempty("SMTP_PASSWORD"));
    if let Some(p) = &password {
        crate::redact::register_smtp_password(user.as_deref().unwrap_or(""), p);
    }
    let credentials = match (user.clone(), password) {
        (Some(u), Some(p)) => Some(email::Secret::new(u, p)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(Error::usage(
                "GMAIL_USER is set but GMAIL_APP_PASSWORD is not: set both, or neither for a relay without AUTH",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::usage(
                "GMAIL_APP_PASSWORD is set but GMAIL_USER is not: set both",
            ));
        }
    };
    Ok((user, credentials))
}

/// `local@domain`, no spaces or angle brackets: enough to catch a
/// mistyped list (`a@x.org;b@y.org`) before the SMTP server does.
fn looks_like_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !a.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ';' | ','))
        }
        None => false,
    }
}

/// Runs one channel's blocking send on a helper thread for at most
/// `timeout` (less after a stop signal); giving up becomes an error that
/// names the channel (`label`) and why.
fn bounded<T: Send + 'static>(
    label: &str,
    thread: &str,
    timeout: Duration,
    send: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    crate::signal::run_bounded(thread, timeout, send)
        .unwrap_or_else(|why| Err(Error::runtime(format!("{label} {why}"))))
}

/// Runs every configured notifier for `report`; returns how many failed.
pub fn notify_all(cfg: &NotifyConfig, report: &RunReport) -> usize {
    let report = &report.escaped();
    let mut failures = 0;
    if let Some(path) = &cfg.metrics_textfile
        && let Err(e) = files::write_textfile(path, report)
    {
        log::error!("metrics textfile: {e}");
        failures += 1;
    }
    if report.ok
        && !report.dry_run
        && let Some(path) = &cfg.flag_file
    {
        match files::touch(path) {
            Ok(()) => log::info!("flag file {} touched", path.display()),
            Err(e) => {
                log::error!("flag file: {e}");
                failures += 1;
            }
        }
    }
    for hook in &cfg.webhooks {
        if !hook.when.applies(report.ok) {
            continue;
        }
        let (h, r) = (hook.clone(), report.clone());
        let sent = bounded(
            &hook.label(),
            "notify-webhook",
            webhook::WEBHOOK_TIMEOUT,
            move || h.send(&r),
        );
        if let Err(e) = sent {
            log::error!("{e}");
            failures += 1;
        }
    }
    if let Some(mail) = &cfg.email
        && mail.when.applies(report.ok)
    {
        let (m, r) = (mail.clone(), report.clone());
        let label = format!("SMTP {}", mail.target());
        match bounded(&label, "notify-email", email::EMAIL_TIMEOUT, move || {
            email::send(&m, &r)
        }) {
            Ok(text) => log::info!("{text}"),
            Err(e) => {
                log::error!("email not sent: {e}");
                failures += 1;
            }
        }
    }
    failures
}
