//! What a run tells the notifiers: its figures, its problems and the
//! newest inventory row, built from the summary the run returns. The run
//! reads that row itself, with its own handle and under its lock
//! ([`super::Newest`]); only a run that failed is read back afterwards.
//! Sending happens after the summary is printed and never changes the
//! run's outcome.

use crate::error::Result;
use crate::inventory::Inventory;
use crate::settings::UploadConfig;
use crate::timefmt;

use super::Summary;

/// Tells the configured channels about a run (also one that could not start).
/// Notifiers never change the run's outcome or exit status.
pub fn notify_run(cfg: &UploadConfig, result: &Result<Summary>) {
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
pub fn run_report(cfg: &UploadConfig, result: &Result<Summary>) -> crate::notify::RunReport {
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
    if let Ok(Summary {
        newest: Some(n), ..
    }) = result
    {
        r.latest = n.latest.clone();
        r.last_success_unix = n.last_success_unix;
    } else if !cfg.dry_run && cfg.db_path.exists() {
        // A run that failed returns no summary: read what it left.
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
