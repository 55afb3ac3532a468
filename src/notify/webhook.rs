//! Chat and JSON webhooks over ureq: Slack, Discord, Telegram and a generic
//! JSON POST. Short timeouts and one retry; URLs carry secrets (Slack and
//! Discord tokens live in the path, Telegram's in the bot segment), so logs and
//! errors show only scheme and host.
//!
//! Time: each attempt has [`ATTEMPT_TIMEOUT`] for everything (name lookup,
//! connect, TLS, request, answer: ureq's global timeout); one webhook has
//! [`WEBHOOK_TIMEOUT`] in total, enforced by `notify` through
//! `signal::run_bounded`, which also ends the wait on SIGTERM/SIGINT.

use std::time::Duration;

use serde_json::{Value, json};

use super::{RunReport, When};
use crate::error::{Error, Result};

/// Time allowed for one webhook request, name lookup to last byte of the
/// answer. Chat APIs answer in well under a second.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause before the one retry.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The most one webhook may take in total. Two attempts and the pause take
/// at most 20.5 s, so this is only reached when something outside ureq's
/// timeouts hangs; it makes the bound a fact rather than a sum to trust.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(25);

/// The kinds of webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Slack,
    Discord,
    Telegram,
    /// `WEBHOOK_URL`: the JSON document of [`generic_payload`].
    Generic,
}

/// One configured webhook.
#[derive(Clone)]
pub struct Webhook {
    pub kind: Kind,
    url: String,
    chat_id: Option<String>,
    pub when: When,
}

impl Webhook {
    /// A webhook of `kind` at `url` (registered for redaction by the caller).
    pub fn new(kind: Kind, url: String, chat_id: Option<String>, when: When) -> Webhook {
        Webhook {
            kind,
            url,
            chat_id,
            when,
        }
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Webhook({:?}, {}, {:?})",
            self.kind,
            redact(&self.url),
            self.when
        )
    }
}

/// A webhook URL must be http(s); the error shows only scheme and host.
pub fn check_url(var: &str, url: &str) -> Result<()> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "{var} must be an http:// or https:// URL (got {})",
            redact(url)
        )))
    }
}

/// `https://hooks.slack.com/services/T0/B0/secret` → `https://hooks.slack.com/…`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    if scheme.is_empty() {
        "<redacted>".to_string()
    } else {
        format!("{scheme}://{host}/…")
    }
}

/// The one-paragraph text chat channels get.
pub fn chat_text(r: &RunReport) -> String {
    let verdict = if r.ok { "OK" } else { "FAILED" };
    let mut t = if r.job.is_empty() {
        format!(
            "fgbackup on {}: {verdict}. {} files ({}), {} deleted, {} bytes uploaded in {:.1} s.",
            r.host,
            r.files,
            r.counts_text(),
            r.deleted,
            r.bytes_uploaded,
            r.duration_secs
        )
    } else {
        format!(
            "fgbackup on {}: {}{verdict}. {} objects ({}) in {:.1} s.",
            r.host,
            r.job_label(),
            r.files,
            r.counts_text(),
            r.duration_secs
        )
    };
    if let Some(f) = &r.fatal {
        t.push_str(&format!(" Error: {f}"));
    }
    for p in r.problems.iter().take(5) {
        t.push_str(&format!("\n- {p}"));
    }
    if r.problems.len() > 5 || r.problems_omitted > 0 {
        t.push_str(&format!(
            "\n… {} more",
            r.problems.len().saturating_sub(5) as u64 + r.problems_omitted
        ));
    }
    t
}

/// The document posted to `WEBHOOK_URL`.
pub fn generic_payload(r: &RunReport) -> Value {
    json!({
        "source": "fgbackup",
        "job": if r.job.is_empty() { "upload" } else { r.job },
        "host": r.host,
        "status": if r.ok { "ok" } else { "failed" },
        "finished_at": crate::timefmt::iso8601(crate::timefmt::from_unix(r.finished_unix)),
        "files": r.files,
        "failed": r.failed,
        "deleted": r.deleted,
        "bytes_uploaded": r.bytes_uploaded,
        "duration_seconds": r.duration_secs,
        "counts": r.counts,
        "problems": r.problems,
        "error": r.fatal,
        "manifest": r.manifest.as_ref().map(|(key, sequence, sha256)| {
            json!({"key": key, "sequence": sequence, "sha256": sha256})
        }),
        "latest": r.latest.as_ref().map(|fields| {
            fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect::<serde_json::Map<String, Value>>()
        }),
    })
}

impl Webhook {
    fn payload(&self, r: &RunReport) -> Value {
        match self.kind {
            Kind::Slack => json!({ "text": chat_text(r) }),
            Kind::Discord => json!({ "content": chat_text(r) }),
            Kind::Telegram => json!({ "chat_id": self.chat_id, "text": chat_text(r) }),
            Kind::Generic => generic_payload(r),
        }
    }

    /// Posts the report, retrying once; errors never contain the URL's secret.
    pub fn send(&self, r: &RunReport) -> Result<()> {
        let body = self.payload(r).to_string();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let mut last = String::new();
        for attempt in 1..=2 {
            match agent
                .post(&self.url)
                .header("Content-Type", "application/json")
                .send(body.as_bytes())
            {
                Ok(resp) if resp.status().is_success() => {
                    log::info!("{} notified", self.label());
                    return Ok(());
                }
                Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
                // ureq's error text can include the URL: keep only its kind.
                Err(e) => last = error_kind(&e),
            }
            if attempt == 1 {
                std::thread::sleep(RETRY_PAUSE);
            }
        }
        Err(Error::runtime(format!(
            "{} failed twice: {last}",
            self.label()
        )))
    }

    /// `Slack webhook https://hooks.slack.com/…`: which channel, no secret.
    pub fn label(&self) -> String {
        format!("{:?} webhook {}", self.kind, redact(&self.url))
    }
}

fn error_kind(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("I/O error ({})", io.kind()),
        ureq::Error::Timeout(_) => format!("timed out after {} s", ATTEMPT_TIMEOUT.as_secs()),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Tls(t) => format!("TLS error ({t})"),
        _ => "request failed".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("https://user:pw@example.org/x?token=1"),
            "https://example.org/…"
        );
        let hook = Webhook {
            kind: Kind::Telegram,
            url: "https://api.telegram.org/bot123:SECRET/sendMessage".into(),
            chat_id: Some("42".into()),
            when: When::Failure,
        };
        assert!(!format!("{hook:?}").contains("SECRET"));
    }
}
