//! `fgbackup upload`: archive a directory, then tell the notifiers.

use crate::cli::Args;
use crate::error::Result;
use crate::inventory::Inventory;
use crate::ops::upload;
use crate::settings::{self, UploadConfig};
use crate::{signal, timefmt};

use super::*;

/// `fgbackup upload`.
pub fn upload(args: Args) -> Result<i32> {
    let cfg = crate::build::upload(settings::parse_upload(&args, &process_env)?)?;
    crate::logging::apply(cfg.output);
    run_upload(&cfg)
}

pub(super) fn run_upload(cfg: &UploadConfig) -> Result<i32> {
    signal::install();
    let result = upload::run(cfg);
    match &result {
        Ok(summary) if cfg.json => println!("{}", summary.to_json(cfg.dry_run)),
        // -q: a clean run prints nothing at all (cron mails only failures).
        Ok(summary) if cfg.output.quiet() && summary.exit_code() == 0 => {}
        Ok(summary) => println!("{}", summary.render(cfg.dry_run)),
        // main prints the error (and, with --json, its JSON object).
        Err(_) => {}
    }
    if let Ok(summary) = &result
        && let Some(why) = &summary.aborted
    {
        eprintln!(
            "fgbackup: error: {why}; the run stopped, {} file(s) not attempted are left in place for the next run",
            summary.not_attempted
        );
    }
    notify_run(cfg, &result);
    let summary = result?;
    Ok(summary.exit_code())
}

/// Tells the configured channels about a run (also one that could not start).
/// Notifiers never change the run's outcome or exit status.
pub(super) fn notify_run(cfg: &UploadConfig, result: &Result<upload::Summary>) {
    let n = &cfg.notify;
    if n.email.is_none()
        && n.webhooks.is_empty()
        && n.flag_file.is_none()
        && n.metrics_textfile.is_none()
    {
        return;
    }
    let failures = crate::notify::notify_all(n, &run_report(cfg, result));
    if failures > 0 {
        log::error!("{failures} notification(s) failed; the upload results above stand");
    }
}

/// The notifiers' view of a run: its figures plus the newest inventory row.
pub(super) fn run_report(
    cfg: &UploadConfig,
    result: &Result<upload::Summary>,
) -> crate::notify::RunReport {
    let mut r = crate::notify::RunReport {
        host: crate::host::hostname(),
        dry_run: cfg.dry_run,
        finished_unix: timefmt::unix_seconds(std::time::SystemTime::now()),
        ..Default::default()
    };
    match result {
        Ok(s) => {
            r.ok = s.exit_code() == 0;
            r.files = s.files;
            r.failed = s.failed;
            r.deleted = s.deleted;
            r.bytes_uploaded = s.bytes_sent;
            r.duration_secs = s.duration.as_secs_f64();
            r.counts = s
                .counts
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect();
            r.problems = s.problems.iter().map(ToString::to_string).collect();
            r.problems.extend(
                s.manifest_problems
                    .iter()
                    .map(|p| format!("manifest chain: {p}")),
            );
            r.problems_omitted = s.problems_omitted;
            r.manifest = s
                .manifest
                .as_ref()
                .map(|m| (m.key.clone(), m.sequence, m.sha256.clone()));
            if let Some(why) = &s.aborted {
                r.fatal = Some(why.clone());
            } else if s.interrupted {
                r.fatal = Some("interrupted by a stop signal".to_string());
            }
        }
        Err(e) => {
            r.ok = false;
            r.fatal = Some(e.to_string());
        }
    }
    if !cfg.dry_run && cfg.db_path.exists() {
        match Inventory::open(&cfg.db_path) {
            Ok(inv) => {
                r.latest = inv.latest_fields().unwrap_or_default();
                r.last_success_unix = inv.last_success_unix().unwrap_or_default();
            }
            Err(e) => log::warn!("notifications without the latest entry: {e}"),
        }
    }
    r
}
