//! Prometheus text exposition, shared by the API (`/metrics`) and daemon mode.
//!
//! Request counters are plain atomics: handlers record without locks, and a
//! scrape reads a consistent-enough snapshot.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The API's routes, as they appear in the `route` label.
pub const ROUTES: &[&str] = &[
    "health",
    "backups",
    "backups_last",
    "backup",
    "presign",
    "stats",
    "metrics",
    "other",
];

/// Upper bounds (seconds) of the latency histogram.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];

/// Status classes counted per route.
const CLASSES: &[&str] = &["2xx", "3xx", "4xx", "5xx"];

/// In-process counters of the API and, in daemon mode, of upload runs.
pub struct Metrics {
    requests: Vec<[AtomicU64; 4]>,
    latency_buckets: Vec<AtomicU64>,
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    daemon: Mutex<DaemonFigures>,
}

/// Upload runs done by this daemon process.
#[derive(Debug, Default, Clone)]
pub struct DaemonFigures {
    pub runs_ok: u64,
    pub runs_failed: u64,
    pub last_run_unix: Option<i64>,
    pub last_success_unix: Option<i64>,
    pub last_files: u64,
    pub last_failed: u64,
    pub last_bytes: u64,
    pub last_duration_secs: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: ROUTES.iter().map(|_| Default::default()).collect(),
            latency_buckets: BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            latency_count: AtomicU64::new(0),
            latency_sum_micros: AtomicU64::new(0),
            daemon: Mutex::new(DaemonFigures::default()),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, route: &str, status: u16, elapsed: Duration) {
        let r = ROUTES
            .iter()
            .position(|x| *x == route)
            .unwrap_or(ROUTES.len() - 1);
        let c = usize::from((status / 100).clamp(2, 5) - 2);
        self.requests[r][c].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records the outcome of an upload run done in this process.
    pub fn record_run(&self, f: impl FnOnce(&mut DaemonFigures)) {
        f(&mut self.daemon.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Appends the in-process metrics in Prometheus text format.
    pub fn render(&self, out: &mut String, daemon_mode: bool) {
        out.push_str("# HELP fgbackup_api_requests_total API requests answered, by route and status class.\n");
        out.push_str("# TYPE fgbackup_api_requests_total counter\n");
        for (r, route) in ROUTES.iter().enumerate() {
            for (c, class) in CLASSES.iter().enumerate() {
                let n = self.requests[r][c].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "fgbackup_api_requests_total{{route=\"{route}\",code=\"{class}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP fgbackup_api_request_duration_seconds Time to answer API requests.\n");
        out.push_str("# TYPE fgbackup_api_request_duration_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "fgbackup_api_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "fgbackup_api_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "fgbackup_api_request_duration_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "fgbackup_api_request_duration_seconds_count {count}");
        if daemon_mode {
            let d = self
                .daemon
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            gauge(
                out,
                "fgbackup_daemon_runs_total{result=\"ok\"}",
                "Upload runs of this daemon.",
                d.runs_ok as f64,
                "counter",
            );
            let _ = writeln!(
                out,
                "fgbackup_daemon_runs_total{{result=\"failed\"}} {}",
                d.runs_failed
            );
            if let Some(t) = d.last_run_unix {
                gauge(
                    out,
                    "fgbackup_daemon_last_run_timestamp_seconds",
                    "End of the daemon's last upload run.",
                    t as f64,
                    "gauge",
                );
            }
            if let Some(t) = d.last_success_unix {
                gauge(
                    out,
                    "fgbackup_daemon_last_success_timestamp_seconds",
                    "End of the daemon's last run without failures.",
                    t as f64,
                    "gauge",
                );
            }
            gauge(
                out,
                "fgbackup_daemon_last_run_files",
                "Files handled by the daemon's last run.",
                d.last_files as f64,
                "gauge",
            );
            gauge(
                out,
                "fgbackup_daemon_last_run_failed_files",
                "Files that failed in the daemon's last run.",
                d.last_failed as f64,
                "gauge",
            );
            gauge(
                out,
                "fgbackup_daemon_last_run_bytes",
                "Bytes sent by the daemon's last run.",
                d.last_bytes as f64,
                "gauge",
            );
            gauge(
                out,
                "fgbackup_daemon_last_run_duration_seconds",
                "Duration of the daemon's last run.",
                d.last_duration_secs,
                "gauge",
            );
        }
    }
}

/// Writes one metric with its HELP and TYPE lines.
pub fn gauge(out: &mut String, name: &str, help: &str, value: f64, kind: &str) {
    let base = name.split('{').next().unwrap_or(name);
    let _ = writeln!(out, "# HELP {base} {help}");
    let _ = writeln!(out, "# TYPE {base} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.record("backups", 200, Duration::from_micros(700));
        m.record("backups", 401, Duration::from_millis(3));
        let mut s = String::new();
        m.render(&mut s, false);
        assert!(s.contains("fgbackup_api_requests_total{route=\"backups\",code=\"2xx\"} 1"));
        assert!(s.contains("fgbackup_api_requests_total{route=\"backups\",code=\"4xx\"} 1"));
        assert!(s.contains("fgbackup_api_request_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(s.contains("fgbackup_api_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(s.contains("fgbackup_api_request_duration_seconds_count 2"));
        assert!(!s.contains("daemon"));
    }
}
