//! `fgbackup daemon`: the API plus an upload every `--interval`.

use crate::cli::flags;
use std::time::Duration;

use std::sync::Arc;
use std::time::Instant;

use crate::api::{self, Presign};
use crate::cli::Args;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::ops::upload;
use crate::settings::{self, Destination, ServeFlags, UploadConfig};
use crate::store::s3::S3Store;
use crate::{signal, timefmt};

use super::serve::serve_config;
use super::*;

/// `fgbackup daemon`: the API plus an upload run every `--interval`.
pub fn daemon(args: Args) -> Result<i32> {
    let flags = settings::parse_serve_flags(&args, &process_env)?;
    let interval = args.parse_or_default(
        &flags::INTERVAL,
        &process_env,
        |v| crate::units::parse_duration(v).filter(|d| d.as_secs() >= 1),
        "is not a duration: use e.g. 15m, 1h, 3600",
    )?;
    let mut cfg = crate::build::upload(settings::parse_upload(&args, &process_env)?)?;
    // A service writes a log, not a display; -q and -v still apply.
    cfg.output.progress = false;
    crate::logging::apply(cfg.output);
    if cfg.dry_run {
        return Err(Error::usage(
            "--dry-run does not combine with daemon: use 'fgbackup upload --dry-run'",
        ));
    }
    let presign = daemon_presign(&cfg, &flags)?;
    let push = match settings::parse_push_server(&args, &process_env)? {
        Some(p) => Some(super::serve::push_server(p, &cfg, true)?),
        None => None,
    };
    signal::install_service();
    let metrics = Arc::new(Metrics::default());
    let server = api::start(
        serve_config(flags, cfg.db_path.clone(), presign, true, push),
        Arc::clone(&metrics),
    )?;
    log::info!("daemon: uploading every {} s", interval.as_secs());
    while !signal::stop_requested() {
        let started = Instant::now();
        daemon_cycle(&cfg, &metrics, interval);
        while !signal::stop_requested() && started.elapsed() < interval {
            server.reload_if_asked();
            std::thread::sleep((interval - started.elapsed()).min(Duration::from_millis(200)));
        }
    }
    server.join();
    log::info!("stop signal received; daemon stopped");
    Ok(0)
}

/// `--presign` in the daemon: the upload's own S3 destination signs links.
pub(super) fn daemon_presign(cfg: &UploadConfig, flags: &ServeFlags) -> Result<Option<Presign>> {
    Ok(match (&cfg.destination, flags.presign) {
        (_, false) => None,
        (
            Destination::S3 {
                bucket, settings, ..
            },
            true,
        ) => Some(Presign {
            store: S3Store::new(
                bucket,
                settings,
                crate::build::s3_options(&cfg.destination, &cfg.transfer, cfg.workers)?,
            )?,
            max_expires: flags.presign_max,
        }),
        (Destination::Local { .. }, true) => {
            return Err(Error::usage(
                "--presign needs an S3 destination (--bucket), not --dest file://",
            ));
        }
    })
}

/// One upload run of the daemon, its notifications and its metrics. A failed
/// run (server down, lock held...) is logged and must not stop the daemon.
pub(super) fn daemon_cycle(cfg: &UploadConfig, metrics: &Metrics, interval: Duration) {
    metrics.cycle_started(interval);
    let result = upload::run(cfg);
    metrics.cycle_finished();
    upload::notify_run(cfg, &result);
    let now = timefmt::unix_seconds(std::time::SystemTime::now());
    match result {
        Ok(summary) => {
            log::info!("{}", summary.render(false));
            let ok = summary.exit_code() == 0;
            metrics.record_run(|m| {
                if ok {
                    m.runs_ok += 1;
                    m.last_success_unix = Some(now);
                } else {
                    m.runs_failed += 1;
                }
                m.last_run_unix = Some(now);
                m.last_files = summary.files;
                m.last_failed = summary.failed;
                m.last_bytes = summary.bytes_sent;
                m.last_duration_secs = summary.duration.as_secs_f64();
            });
        }
        Err(e) => {
            log::error!(
                "upload run failed: {e}; next try in {} s",
                interval.as_secs()
            );
            metrics.record_run(|m| {
                m.runs_failed += 1;
                m.last_run_unix = Some(now);
            });
        }
    }
}
