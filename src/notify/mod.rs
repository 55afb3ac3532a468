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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// When a channel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    Success,
    Failure,
}

impl When {
    pub fn parse(name: &str, value: Option<String>, default: When) -> Result<When> {
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
