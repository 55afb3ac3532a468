//! The suite's email summary, sent with mail-send.
//!
//! Rules kept from `backup_fg.py`: a run without failures mails only the
//! newest inventory row; a failed run mails the error summary plus the newest
//! row when there is one. TLS trusts the bundled Mozilla roots plus
//! `--ca-file`; plain SMTP is an explicit choice (`EMAIL_METHOD=plain`) and
//! never carries a password.
//!
//! Time: every SMTP step (the opening up to AUTH, then each command) has
//! [`SMTP_STEP_TIMEOUT`]; the whole email has
//! [`EMAIL_TIMEOUT`], enforced by `notify` through `signal::run_bounded`,
//! which also ends the wait on SIGTERM/SIGINT.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mail_send::SmtpClientBuilder;
use mail_send::mail_builder::MessageBuilder;

use super::{RunReport, When};
use crate::error::{Error, Result};

/// How long one SMTP step may take: the opening (TCP connect, greeting,
/// EHLO, the TLS handshake, AUTH: mail-send bounds it as one step) and then
/// each command with its answer. A healthy server (Gmail, a local relay)
/// needs well under a second for each; a server that accepted the
/// connection and then stalls is given up on after this.
pub const SMTP_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The most one email may take in total, from the name lookup to QUIT.
/// Bounds a server that answers each step just in time, and a name lookup
/// stuck in the system resolver, which the step timeout does not cover.
pub const EMAIL_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Plain connection upgraded with STARTTLS (port 587); required, never optional.
    StartTls,
    /// TLS from the first byte (port 465).
    Smtps,
    /// No TLS and no AUTH: a local relay on port 25, by explicit choice only.
    Plain,
}

impl Method {
    pub fn parse(v: Option<&str>) -> Result<Method> {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("starttls") => Ok(Method::StartTls),
            Some("smtps") | Some("ssl") | Some("tls") => Ok(Method::Smtps),
            Some("plain") => Ok(Method::Plain),
            Some(other) => Err(Error::usage(format!(
                "--email-method/EMAIL_METHOD '{other}' is not understood: use starttls, smtps, or plain (local relay, no TLS, no password)"
            ))),
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Method::StartTls => 587,
            Method::Smtps => 465,
            Method::Plain => 25,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::StartTls => "starttls",
            Method::Smtps => "smtps",
            Method::Plain => "plain",
        }
    }
}

/// SMTP user and password; `Debug` never shows the password.
#[derive(Clone)]
pub struct Secret {
    user: String,
    password: String,
}

impl Secret {
    pub fn new(user: String, password: String) -> Secret {
        Secret { user, password }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.user)
    }
}

/// Email settings.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub to: Vec<String>,
    pub from: String,
    pub host: String,
    pub port: u16,
    pub method: Method,
    pub credentials: Option<Secret>,
    /// `EMAIL_DRY_RUN=1`: print the message instead of sending it.
    pub dry_run: bool,
    /// Print it on stderr: stdout holds a `--json` summary.
    pub dry_run_to_stderr: bool,
    pub ca_file: Option<PathBuf>,
    pub when: When,
}

impl EmailConfig {
    /// `smtp.gmail.com:587 (starttls)`: where the email goes, for messages.
    pub fn target(&self) -> String {
        format!("{}:{} ({})", self.host, self.port, self.method.as_str())
    }
}

/// `[fgbackup] fw-collector-1: OK, 12 files (12 uploaded)`.
pub fn subject(report: &RunReport) -> String {
    if let Some(fatal) = &report.fatal {
        let short: String = fatal.chars().take(80).collect();
        return format!(
            "[fgbackup] {}: {}FAILED, run did not complete: {short}",
            report.host,
            report.job_label()
        );
    }
    format!(
        "[fgbackup] {}: {}{}, {} files ({}){}",
        report.host,
        report.job_label(),
        if report.ok { "OK" } else { "FAILED" },
        report.files,
        report.counts_text(),
        if report.failed > 0 {
            format!(", {} failed", report.failed)
        } else {
            String::new()
        }
    )
}

/// The body, following the suite's rules.
pub fn body(report: &RunReport) -> String {
    let mut b = String::new();
    if !report.ok {
        if report.job.is_empty() {
            b.push_str("The backup run had failures.\n\n");
        } else {
            b.push_str(&format!("The {} run found problems.\n\n", report.job));
        }
        if let Some(fatal) = &report.fatal {
            b.push_str(&format!("Error: {fatal}\n"));
        }
        b.push_str(&format!(
            "Files: {} ({}); deleted locally: {}; bytes uploaded: {}; duration: {:.1} s\n",
            report.files,
            report.counts_text(),
            report.deleted,
            report.bytes_uploaded,
            report.duration_secs
        ));
        if !report.problems.is_empty() {
            b.push_str("\nFailed files:\n");
            for p in &report.problems {
                b.push_str(&format!("  - {p}\n"));
            }
            if report.problems_omitted > 0 {
                b.push_str(&format!(
                    "  ... and {} more (see the inventory)\n",
                    report.problems_omitted
                ));
            }
        }
        b.push('\n');
    }
    if let Some((key, sequence, sha256)) = &report.manifest {
        b.push_str(&format!(
            "Manifest chain head: sequence {}, sha256 {sha256} ({key})\n\n",
            sequence.map_or("-".into(), |s| s.to_string())
        ));
    }
    match &report.latest {
        Some(fields) => {
            b.push_str("Latest inventory entry:\n");
            for (k, v) in fields {
                b.push_str(&format!("  {k}: {v}\n"));
            }
        }
        // A verify's report carries no entry: it does not mean none exists.
        None if report.job.is_empty() => b.push_str("The inventory has no entry yet.\n"),
        None => {}
    }
    b
}

/// The complete RFC 5322 message.
pub fn message(cfg: &EmailConfig, report: &RunReport) -> Result<Vec<u8>> {
    MessageBuilder::new()
        .from(("fgbackup".to_string(), cfg.from.clone()))
        .to(cfg.to.clone())
        .subject(subject(report))
        .text_body(body(report))
        .write_to_vec()
        .map_err(|e| Error::runtime(format!("cannot build the email: {e}")))
}

/// Sends (or with `EMAIL_DRY_RUN`, prints) the summary. Returns what was done.
pub fn send(cfg: &EmailConfig, report: &RunReport) -> Result<String> {
    let bytes = message(cfg, report)?;
    if cfg.dry_run {
        let text = String::from_utf8_lossy(&bytes);
        match cfg.dry_run_to_stderr {
            true => eprintln!("{text}"),
            false => println!("{text}"),
        }
        return Ok(format!(
            "EMAIL_DRY_RUN: email to {} printed, not sent",
            cfg.to.join(", ")
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the email runtime: {e}")))?;
    let target = cfg.target();
    runtime
        .block_on(deliver(cfg, bytes))
        .map_err(|e| Error::runtime(format!("SMTP {target}: {}", describe(&e, cfg))))?;
    Ok(format!("email sent to {} via {target}", cfg.to.join(", ")))
}

async fn deliver(cfg: &EmailConfig, body: Vec<u8>) -> std::result::Result<(), SendError> {
    let message = mail_send::smtp::message::Message::new(
        cfg.from.as_str(),
        cfg.to.iter().map(String::as_str),
        body,
    );
    let connector = tls_connector(cfg.ca_file.as_deref()).map_err(SendError::Setup)?;
    let mut builder =
        SmtpClientBuilder::new_with_tls_connector(cfg.host.as_str(), cfg.port, connector)
            .implicit_tls(cfg.method == Method::Smtps)
            .timeout(SMTP_STEP_TIMEOUT);
    if let Some(c) = &cfg.credentials {
        builder = builder.credentials((c.user.as_str(), c.password.as_str()));
    }
    match cfg.method {
        Method::Plain => {
            // mail-send bounds the connect but not the greeting read of a
            // plain connection (a server that accepts and never speaks would
            // hang here): bound the whole opening, as `connect` does for TLS.
            let mut client = tokio::time::timeout(SMTP_STEP_TIMEOUT, builder.connect_plain())
                .await
                .map_err(|_| SendError::Smtp(mail_send::Error::Timeout))?
                .map_err(SendError::Smtp)?;
            client.send(message).await.map_err(SendError::Smtp)?;
            let _ = client.quit().await;
        }
        Method::StartTls | Method::Smtps => {
            let mut client = builder.connect().await.map_err(SendError::Smtp)?;
            client.send(message).await.map_err(SendError::Smtp)?;
            let _ = client.quit().await;
        }
    }
    Ok(())
}

enum SendError {
    Setup(crate::error::Error),
    Smtp(mail_send::Error),
}

/// One line a user can act on; never contains the password.
fn describe(e: &SendError, cfg: &EmailConfig) -> String {
    match e {
        SendError::Setup(e) => e.to_string(),
        SendError::Smtp(mail_send::Error::AuthenticationFailed(r)) => format!(
            "authentication failed ({}): check GMAIL_USER and GMAIL_APP_PASSWORD (Gmail needs an App Password)",
            r.message()
        ),
        SendError::Smtp(mail_send::Error::Tls(t)) => format!(
            "TLS failed ({t}): if the server uses a private CA, pass --ca-file with its PEM"
        ),
        SendError::Smtp(mail_send::Error::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "connection refused: check --smtp-host/SMTP_HOST ({}) and --smtp-port/SMTP_PORT ({})",
            cfg.host, cfg.port
        ),
        SendError::Smtp(mail_send::Error::Io(io)) if io.to_string().contains("certificate") => format!(
            "TLS failed ({io}): if the server uses a private CA, pass --ca-file with its PEM"
        ),
        SendError::Smtp(mail_send::Error::Timeout) => format!(
            "timed out: no answer within {} s (the server accepted the connection, then stalled in the greeting, a command or the TLS handshake): check the server, and that SMTP_PORT ({}) fits EMAIL_METHOD ({})",
            SMTP_STEP_TIMEOUT.as_secs(),
            cfg.port,
            cfg.method.as_str()
        ),
        SendError::Smtp(mail_send::Error::MissingStartTls) => {
            "the server does not offer STARTTLS: use EMAIL_METHOD=smtps, or plain for a local relay without a password".to_string()
        }
        SendError::Smtp(other) => other.to_string(),
    }
}

/// Bundled Mozilla roots plus the CAs of `ca_file`, on the aws-lc-rs provider.
fn tls_connector(
    ca_file: Option<&std::path::Path>,
) -> crate::error::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in crate::tls::load_ca_file(path)? {
            roots.add(cert).map_err(|e| {
                crate::error::Error::usage(format!(
                    "unusable certificate in --ca-file {}: {e}",
                    path.display()
                ))
            })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| crate::error::Error::runtime(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ok: bool) -> RunReport {
        let mut r = RunReport {
            host: "fw-collector".into(),
            ok,
            files: 3,
            failed: if ok { 0 } else { 1 },
            latest: Some(vec![
                ("filename".into(), "a.log.gz".into()),
                ("status".into(), "uploaded".into()),
            ]),
            ..RunReport::default()
        };
        r.counts.insert("uploaded".into(), if ok { 3 } else { 2 });
        if !ok {
            r.counts.insert("failed_gzip".into(), 1);
            r.problems.push("failed_gzip b.log.gz: ends early".into());
        }
        r
    }

    #[test]
    fn success_body_is_only_the_latest_entry() {
        let b = body(&report(true));
        assert!(b.starts_with("Latest inventory entry:"), "{b}");
        assert!(!b.contains("failure"));
        assert_eq!(
            subject(&report(true)),
            "[fgbackup] fw-collector: OK, 3 files (3 uploaded)"
        );
    }

    #[test]
    fn failure_body_has_the_summary_then_the_entry() {
        let b = body(&report(false));
        assert!(b.contains("failed_gzip b.log.gz: ends early"), "{b}");
        assert!(b.find("Failed files").unwrap() < b.find("Latest inventory entry").unwrap());
        assert!(subject(&report(false)).contains("FAILED"));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let s = Secret::new("ops@example.org".into(), "app-pass-123".into());
        assert!(!format!("{s:?}").contains("app-pass-123"));
    }
}
