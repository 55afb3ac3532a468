//! Prometheus text exposition, shared by the API (`/metrics`) and daemon mode.
//!
//! Request counters are plain atomics: handlers record without locks, and a
//! scrape reads a consistent-enough snapshot.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The API's routes, as they appear in the `route` label.
pub const ROUTES: &[&str] = &[
    "health",
    "backups",
    "backups_last",
    "backup",
    "presign",
    "stats",
    "verifications_last",
    "search",
    "events",
    "overview",
    "ui",
    "upload",
    "metrics",
    "other",
];

/// Upper bounds (seconds) of the latency histogram.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];

/// Status classes counted per route.
const CLASSES: &[&str] = &["2xx", "3xx", "4xx", "5xx"];

/// Shortest time an upload cycle may run before `/health` reports the daemon
/// degraded; longer intervals allow twice the interval (a run may
/// legitimately take longer than one interval when there is a backlog).
pub const MIN_STALL: Duration = Duration::from_secs(10);

/// In-process counters of the API and, in daemon mode, of upload runs.
pub struct Metrics {
    requests: Vec<[AtomicU64; 4]>,
    latency_buckets: Vec<AtomicU64>,
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    daemon: Mutex<DaemonFigures>,
    cycles: Mutex<Cycles>,
    /// Pushes answered, by outcome (`archived`, `exists`, `conflict`...).
    pushes: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

/// Timing of the daemon's upload cycles, so that a stalled one shows on
/// `/health` (a hung S3 endpoint must not look green).
#[derive(Debug)]
struct Cycles {
    /// Creation of these metrics, i.e. the daemon's start.
    born: Instant,
    /// Start of the cycle in progress.
    running_since: Option<Instant>,
    last_finished: Option<Instant>,
    finished: u64,
    /// `max(2 × interval, MIN_STALL)`; `None` until a cycle started (`serve`).
    stall_after: Option<Duration>,
}

/// The daemon's upload cycles as `/health` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadHealth {
    /// Seconds the cycle in progress has run; `None` between cycles.
    pub running_secs: Option<u64>,
    /// Seconds since the last cycle finished, or since the daemon started
    /// when none has.
    pub last_cycle_age_secs: u64,
    pub cycles_finished: u64,
    pub stall_after_secs: u64,
    /// The cycle in progress has run longer than `stall_after_secs`.
    pub stalled: bool,
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
            cycles: Mutex::new(Cycles {
                born: Instant::now(),
                running_since: None,
                last_finished: None,
                finished: 0,
                stall_after: None,
            }),
            pushes: Mutex::default(),
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

    /// Marks the start of an upload cycle of a daemon running every `interval`.
    pub fn cycle_started(&self, interval: Duration) {
        let mut c = self.cycles.lock().unwrap_or_else(PoisonError::into_inner);
        c.running_since = Some(Instant::now());
        c.stall_after = Some(interval.saturating_mul(2).max(MIN_STALL));
    }

    /// Marks the end of the upload cycle in progress, whatever its outcome.
    pub fn cycle_finished(&self) {
        let mut c = self.cycles.lock().unwrap_or_else(PoisonError::into_inner);
        c.running_since = None;
        c.last_finished = Some(Instant::now());
        c.finished += 1;
    }

    /// The upload cycles for `/health`; `None` when no cycle ever started
    /// (`fgbackup serve`).
    pub fn upload_health(&self) -> Option<UploadHealth> {
        let c = self.cycles.lock().unwrap_or_else(PoisonError::into_inner);
        let stall_after = c.stall_after?;
        let running = c.running_since.map(|t| t.elapsed());
        Some(UploadHealth {
            running_secs: running.map(|d| d.as_secs()),
            last_cycle_age_secs: c.last_finished.unwrap_or(c.born).elapsed().as_secs(),
            cycles_finished: c.finished,
            stall_after_secs: stall_after.as_secs(),
            stalled: running.is_some_and(|d| d > stall_after),
        })
    }

    /// Appends the in-process metrics in Prometheus text format.
    /// Counts one push request's outcome.
    pub fn record_push(&self, outcome: &'static str) {
        *self
            .pushes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(outcome)
            .or_insert(0) += 1;
    }

    pub fn render(&self, out: &mut String, daemon_mode: bool) {
        self.render_requests(out);
        self.render_latency(out);
        self.render_pushes(out);
        if daemon_mode {
            self.render_daemon(out);
        }
    }

    /// Requests answered, by route and status class (only those seen).
    fn render_requests(&self, out: &mut String) {
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
    }

    /// Push requests, by outcome (only those seen).
    fn render_pushes(&self, out: &mut String) {
        let pushes = self.pushes.lock().unwrap_or_else(PoisonError::into_inner);
        if pushes.is_empty() {
            return;
        }
        out.push_str("# HELP fgbackup_push_requests_total Push requests (PUT, PATCH, HEAD /upload/NAME), by outcome.\n");
        out.push_str("# TYPE fgbackup_push_requests_total counter\n");
        for (outcome, n) in pushes.iter() {
            let _ = writeln!(
                out,
                "fgbackup_push_requests_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
    }

    /// The request latency histogram.
    fn render_latency(&self, out: &mut String) {
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
    }

    /// The daemon's upload runs: counts and the last run's figures. Long
    /// because it is one `# HELP`/`# TYPE`/value block per metric, in order.
    fn render_daemon(&self, out: &mut String) {
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
        let last_run = [
            (
                "fgbackup_daemon_last_run_files",
                "Files handled by the daemon's last run.",
                d.last_files as f64,
            ),
            (
                "fgbackup_daemon_last_run_failed_files",
                "Files that failed in the daemon's last run.",
                d.last_failed as f64,
            ),
            (
                "fgbackup_daemon_last_run_bytes",
                "Bytes sent by the daemon's last run.",
                d.last_bytes as f64,
            ),
            (
                "fgbackup_daemon_last_run_duration_seconds",
                "Duration of the daemon's last run.",
                d.last_duration_secs,
            ),
        ];
        for (name, help, value) in last_run {
            gauge(out, name, help, value, "gauge");
        }
        self.render_cycle(out);
    }

    /// The upload cycle in progress, for the stalled-cycle alert.
    fn render_cycle(&self, out: &mut String) {
        let Some(u) = self.upload_health() else {
            return;
        };
        gauge(
            out,
            "fgbackup_daemon_cycle_running_seconds",
            "Seconds the upload cycle in progress has run (0 between cycles).",
            u.running_secs.unwrap_or(0) as f64,
            "gauge",
        );
        gauge(
            out,
            "fgbackup_daemon_stalled",
            "1 while the upload cycle in progress runs longer than max(2 x interval, 10 s).",
            if u.stalled { 1.0 } else { 0.0 },
            "gauge",
        );
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

    #[test]
    fn upload_cycles_for_health() {
        let m = Metrics::default();
        assert_eq!(m.upload_health(), None, "serve has no upload cycles");
        m.cycle_started(Duration::from_secs(1));
        let h = m.upload_health().unwrap();
        assert_eq!(h.running_secs, Some(0));
        assert_eq!(h.stall_after_secs, 10, "at least MIN_STALL");
        assert!(!h.stalled);
        m.cycle_finished();
        m.cycle_started(Duration::from_secs(3600));
        let h = m.upload_health().unwrap();
        assert_eq!((h.cycles_finished, h.stall_after_secs), (1, 7200));
        // A 1 s daemon whose cycle started 11 s ago is stalled.
        m.cycle_started(Duration::from_secs(1));
        m.cycles.lock().unwrap().running_since =
            Instant::now().checked_sub(Duration::from_secs(11));
        let h = m.upload_health().unwrap();
        assert!(h.stalled && h.running_secs == Some(11), "{h:?}");
        let mut s = String::new();
        m.render(&mut s, true);
        assert!(s.contains("fgbackup_daemon_stalled 1"), "{s}");
    }
}
