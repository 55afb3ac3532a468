//! `/metrics`: the inventory's figures (rows by status, the newest run and
//! verify, the database size) in Prometheus text format, ahead of the
//! process's own counters.

use std::path::PathBuf;

use super::ServeConfig;
use super::routes::Failure;
use crate::inventory::Reader;
use crate::metrics;

/// The newest verify's figures, from the inventory.
fn render_verify_metrics(out: &mut String, db: &Reader) -> std::result::Result<(), Failure> {
    let Some(v) = db.last_verification()? else {
        return Ok(());
    };
    metrics::gauge(
        out,
        "fgbackup_verify_last_success",
        "1 if the newest finished verify found every object intact and nothing extra.",
        if v.ok { 1.0 } else { 0.0 },
        "gauge",
    );
    if let Some(t) = v.finished_unix {
        metrics::gauge(
            out,
            "fgbackup_verify_last_timestamp_seconds",
            "End of the newest finished verify.",
            t as f64,
            "gauge",
        );
    }
    out.push_str("# HELP fgbackup_verify_last_objects Objects of the newest finished verify, by result.\n# TYPE fgbackup_verify_last_objects gauge\n");
    for (result, n) in &v.counts {
        out.push_str(&format!(
            "fgbackup_verify_last_objects{{result=\"{result}\"}} {n}\n"
        ));
    }
    Ok(())
}

/// The newest finished upload run's figures, from the inventory.
fn render_run_metrics(out: &mut String, db: &Reader) -> std::result::Result<(), Failure> {
    let Some(run) = db.last_run()? else {
        return Ok(());
    };
    metrics::gauge(
        out,
        "fgbackup_last_run_success",
        "1 if the newest finished upload run had no failures.",
        if run.ok { 1.0 } else { 0.0 },
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_files",
        "Files handled by the newest finished run.",
        run.files as f64,
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_failed_files",
        "Files that failed in the newest finished run.",
        run.failed as f64,
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_bytes",
        "Bytes sent by the newest finished run.",
        run.bytes as f64,
        "gauge",
    );
    metrics::gauge(
        out,
        "fgbackup_last_run_duration_seconds",
        "Duration of the newest finished run.",
        run.duration_ms as f64 / 1000.0,
        "gauge",
    );
    if let Some(t) = run.finished_unix {
        metrics::gauge(
            out,
            "fgbackup_last_run_timestamp_seconds",
            "End of the newest finished run.",
            t as f64,
            "gauge",
        );
    }
    Ok(())
}

pub(super) fn render_db_metrics(
    out: &mut String,
    cfg: &ServeConfig,
    db: &Reader,
) -> std::result::Result<(), Failure> {
    let mut size = std::fs::metadata(&cfg.db_path)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut wal = cfg.db_path.as_os_str().to_os_string();
    wal.push("-wal");
    size += std::fs::metadata(PathBuf::from(wal))
        .map(|m| m.len())
        .unwrap_or(0);
    metrics::gauge(
        out,
        "fgbackup_db_size_bytes",
        "Size of the inventory database and its WAL.",
        size as f64,
        "gauge",
    );
    out.push_str("# HELP fgbackup_db_rows Rows of the backups table by status.\n# TYPE fgbackup_db_rows gauge\n");
    for (status, n) in db.counts_by_status()? {
        let status = status.replace(['"', '\\', '\n'], "_");
        out.push_str(&format!("fgbackup_db_rows{{status=\"{status}\"}} {n}\n"));
    }
    render_verify_metrics(out, db)?;
    render_run_metrics(out, db)?;
    if let Some(Ok(t)) = db
        .last_success()?
        .map(|s| crate::timefmt::parse_iso8601(&s).ok_or(()))
    {
        metrics::gauge(
            out,
            "fgbackup_last_success_timestamp_seconds",
            "End of the newest run without failures.",
            t as f64,
            "gauge",
        );
    }
    Ok(())
}
