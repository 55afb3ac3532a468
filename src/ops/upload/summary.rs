//! What one upload run reports: its figures, failures and manifest, as
//! the summary line, the JSON object and the notifiers read them.

use crate::inventory::ManifestRow;
use crate::inventory::status::Status;
use crate::units::human_bytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// One failed file of a run.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: Status,
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    /// `status key: reason`, the form notifications list.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_str(), self.key, self.reason)
    }
}

/// Final figures of a run, also used for the exit status.
#[derive(Debug, Default)]
pub struct Summary {
    pub counts: BTreeMap<&'static str, u64>,
    pub files: u64,
    pub failed: u64,
    pub deleted: u64,
    pub delete_failures: u64,
    pub bytes_sent: u64,
    pub duration: Duration,
    pub too_young: usize,
    /// Files another process held open for writing, left for a later run.
    pub busy: usize,
    /// Files of `--dir` whose name matches no `--include` pattern.
    pub excluded: usize,
    pub scan_warnings: usize,
    pub interrupted: bool,
    /// Set when the run stopped early because the endpoint is unreachable.
    pub aborted: Option<String>,
    /// Files found but never tried (stop signal or unreachable endpoint).
    pub not_attempted: usize,
    /// Failed files, at most [`crate::notify::MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Failed files beyond those in `problems`.
    pub problems_omitted: u64,
    /// With `--manifest-key`: the chain's newest manifest after the run
    /// (written by it or not), the witness an auditor keeps elsewhere.
    pub manifest: Option<ManifestRow>,
    /// With `--manifest-key`: what is wrong with the chain (a manifest gone
    /// or replaced), or why no manifest could be written.
    pub manifest_problems: Vec<String>,
    /// The inventory's newest row and last good run, read by the run itself
    /// with its own handle, under its lock, once its row is final (absent in
    /// a dry run): what the notifications show.
    pub newest: Option<Newest>,
}

/// What the notifiers show of the inventory after a run.
#[derive(Debug, Default, Clone)]
pub struct Newest {
    pub latest: Option<Vec<(String, String)>>,
    pub last_success_unix: Option<i64>,
}

impl Summary {
    /// 0 when everything succeeded, 1 when anything failed.
    pub fn exit_code(&self) -> i32 {
        let bad = self.failed > 0
            || self.delete_failures > 0
            || self.scan_warnings > 0
            || self.interrupted
            || self.aborted.is_some()
            || !self.manifest_problems.is_empty();
        i32::from(bad)
    }

    /// The one-paragraph report printed at the end of a run.
    pub fn render(&self, dry_run: bool) -> String {
        let secs = self.duration.as_secs_f64();
        let per_status: Vec<String> = self
            .counts
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        // No "0.0 MB sent (0.0 MB/s)" on a run that sent nothing.
        let sent = if self.bytes_sent == 0 {
            format!("nothing sent, {secs:.2} s")
        } else {
            let rate = (self.bytes_sent as f64 / secs.max(1e-3)) as u64;
            format!(
                "{} sent in {secs:.2} s ({}/s)",
                human_bytes(self.bytes_sent),
                human_bytes(rate)
            )
        };
        let mut text = format!(
            "{}{} files: {}; {} deleted; {sent}",
            if dry_run { "dry run: " } else { "" },
            self.files,
            if per_status.is_empty() {
                "nothing to do".to_string()
            } else {
                per_status.join(", ")
            },
            self.deleted,
        );
        text.push_str(&self.notes());
        if let Some(m) = &self.manifest {
            text.push_str(&format!("; {}", manifest_witness(m)));
        }
        if !self.manifest_problems.is_empty() {
            text.push_str(&format!(
                "; {} manifest chain problem(s) (see log)",
                self.manifest_problems.len()
            ));
        }
        text
    }

    /// `; 3 newer than --min-age left for a later run; ...`: what the run
    /// left, skipped or could not do, each only when it happened.
    fn notes(&self) -> String {
        let notes = [
            (self.too_young, "newer than --min-age left for a later run"),
            (
                self.busy,
                "still open for writing by another process left for a later run",
            ),
            (self.excluded, "not matching --include skipped"),
            (self.scan_warnings, "scan problems (see log)"),
            (self.delete_failures as usize, "local deletes failed"),
            (
                self.not_attempted,
                "not attempted (left in place for the next run)",
            ),
        ];
        let mut text: String = notes
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("; {n} {what}"))
            .collect();
        if self.interrupted {
            text.push_str("; interrupted by a stop signal");
        }
        if let Some(why) = &self.aborted {
            text.push_str(&format!("; stopped early: {why}"));
        }
        text
    }
}

impl Summary {
    /// `--json`: the run as one object, for cron wrappers and configuration
    /// management (the same figures as [`Summary::render`]).
    pub fn to_json(&self, dry_run: bool) -> serde_json::Value {
        let failures: Vec<serde_json::Value> = self
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({"status": p.status.as_str(), "key": p.key, "reason": p.reason})
            })
            .collect();
        serde_json::json!({
            "command": "upload",
            "ok": self.exit_code() == 0,
            "exit_code": self.exit_code(),
            "dry_run": dry_run,
            "files": self.files,
            "counts": self.counts,
            "failed": self.failed,
            "deleted": self.deleted,
            "delete_failures": self.delete_failures,
            "bytes_sent": self.bytes_sent,
            "duration_secs": self.duration.as_secs_f64(),
            "too_young": self.too_young,
            "open_for_writing": self.busy,
            "excluded": self.excluded,
            "scan_warnings": self.scan_warnings,
            "not_attempted": self.not_attempted,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "failures": failures,
            "failures_omitted": self.problems_omitted,
            "manifest": self.manifest.as_ref().map(|m| serde_json::json!({
                "key": m.key, "sequence": m.sequence, "sha256": m.sha256, "created_at": m.created_at,
            })),
            "manifest_problems": self.manifest_problems,
        })
    }
}

/// `manifest chain head: sequence 12, sha256 0123456789abcdef…`.
pub fn manifest_witness(m: &ManifestRow) -> String {
    format!(
        "manifest chain head: sequence {}, sha256 {}",
        m.sequence.map_or("-".into(), |s| s.to_string()),
        m.sha256
    )
}
