//! `fgbackup doctor`: checks a deployment end to end and prints one line per
//! check, with the fix for each failure. It reads the same flags and
//! environment as `upload`, so `doctor` with the unit's arguments tests
//! exactly what the timer will run.
//!
//! It writes nothing but one probe object (written, read back and deleted)
//! and a probe file in the log directory when `--delete` is set.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;
use crate::settings::UploadConfig;

mod local;
mod probe;
mod smtp;

use local::{check_database, check_env_file, check_log_dir};
use probe::check_destination;
use smtp::{check_smtp, check_tcp, host_port};

/// Env files of the Python suite, checked when they exist.
const DEFAULT_ENV_FILES: &[&str] = &["/etc/default/backup_fg", "/etc/default/backup_api"];
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The fix for a failed probe-object step without advice of its own.
const PROBE_FIX: &str = "the credentials need PutObject, GetObject and DeleteObject on the bucket (or write access to the directory)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    failed: usize,
    warned: usize,
    /// `--json`: checks are collected and printed as one object at the end.
    json: Option<Vec<serde_json::Value>>,
}

impl Report {
    fn line(&mut self, level: Level, what: &str, detail: &str, fix: &str) {
        if let Some(checks) = &mut self.json {
            let name = match level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Fail => "fail",
            };
            checks.push(
                serde_json::json!({"level": name, "check": what, "detail": detail,
                                           "fix": (!fix.is_empty()).then_some(fix)}),
            );
        }
        let tag = match level {
            Level::Ok => "[ OK ]",
            Level::Warn => {
                self.warned += 1;
                "[WARN]"
            }
            Level::Fail => {
                self.failed += 1;
                "[FAIL]"
            }
        };
        if self.json.is_some() {
            return;
        }
        if level == Level::Ok || fix.is_empty() {
            println!("{tag} {what}: {detail}");
        } else {
            println!("{tag} {what}: {detail} -> fix: {fix}");
        }
    }
}

/// What `doctor` checks: the upload settings as read from the same flags
/// and environment (or why they could not be read), and the env files.
pub struct Checkup {
    pub settings: Result<UploadConfig>,
    /// `--env-file`; none given: the suite's files that exist.
    pub env_files: Vec<PathBuf>,
    /// `--json`: one object at the end instead of lines.
    pub json: bool,
}

/// Runs every check; returns the exit status (1 when anything failed).
pub fn run(checkup: Checkup) -> Result<i32> {
    let mut report = Report {
        failed: 0,
        warned: 0,
        json: checkup.json.then(Vec::new),
    };
    let mut env_files = checkup.env_files;
    if env_files.is_empty() {
        env_files = DEFAULT_ENV_FILES
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect();
    }
    for f in &env_files {
        check_env_file(&mut report, f);
    }

    let cfg = match checkup.settings {
        Ok(c) => c,
        Err(e) => {
            report.line(
                Level::Fail,
                "configuration",
                &e.to_string(),
                "see 'fgbackup upload --help'",
            );
            return Ok(summary(&report));
        }
    };
    report.line(
        Level::Ok,
        "configuration",
        "flags and environment are valid",
        "",
    );
    check_log_dir(&mut report, &cfg);
    check_database(&mut report, &cfg.db_path);
    check_destination(&mut report, &cfg);
    if let Some(mail) = &cfg.notify.email {
        check_smtp(&mut report, mail);
    }
    Ok(summary(&report))
}

fn summary(r: &Report) -> i32 {
    let code = i32::from(r.failed > 0);
    match &r.json {
        Some(checks) => println!(
            "{}",
            serde_json::json!({"command": "doctor", "ok": code == 0, "exit_code": code,
                               "failed": r.failed, "warned": r.warned, "checks": checks})
        ),
        None => println!("doctor: {} failure(s), {} warning(s)", r.failed, r.warned),
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_to_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:9000"),
            ("127.0.0.1".to_string(), 9000)
        );
        assert_eq!(
            host_port("https://minio.site.lan"),
            ("minio.site.lan".to_string(), 443)
        );
        assert_eq!(host_port("http://minio/"), ("minio".to_string(), 80));
        assert_eq!(host_port("https://[::1]:9443"), ("::1".to_string(), 9443));
    }
}
