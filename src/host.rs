//! This machine's name, as runs, manifests, notifications and probes
//! report it: a leaf, so the database and the notifiers share it.

/// The machine's host name, for the runs table and notifications.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}
