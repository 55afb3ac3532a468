//! What a user reads when a request fails because of how the endpoint,
//! bucket or credentials are set up, rather than because of one request:
//! one line naming the problem in the user's terms and the fix, instead of
//! the TLS library's or the server's own words ("received corrupt message
//! of type InvalidContentType", "HTTP 404").
//!
//! This is the one place where those words are chosen: the store's failures
//! carry the [`Advice`] to `upload` (the run's first error, each file's
//! reason, the early stop) and to `doctor`, which prints the fix after
//! `-> fix:`. The causes stay typed in [`EngineError`] up to here.

use std::fmt;

use super::error::{CertProblem, EngineError, ErrorBody, TransportKind};

/// A failure in the user's terms and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem, self.fix)
    }
}

/// Where a request went, for the words of the advice.
pub struct Target<'a> {
    /// `--endpoint` as given (`https://minio.lan:9000`), or `AWS <region>`.
    pub endpoint: &'a str,
    pub bucket: &'a str,
    /// Whether `--ca-file` added CAs to the trusted roots.
    pub ca_file: bool,
}

/// `err` in the user's terms with its fix, when it is about the endpoint,
/// the bucket or the credentials; `None` for anything else (the caller
/// words it). `request` (`PUT logs/a.gz`) names the request where the
/// answer may concern only it (a 403).
pub fn advise(err: &EngineError, to: &Target<'_>, request: &str) -> Option<Advice> {
    match err {
        EngineError::Transport { kind, detail } => transport(kind, detail, to),
        EngineError::Status {
            status, code, body, ..
        } => status_answer(err, *status, code, *body, to, request),
        EngineError::Source(_) | EngineError::Request(_) => None,
    }
}

fn advice(problem: String, fix: impl Into<String>) -> Option<Advice> {
    Some(Advice {
        problem,
        fix: fix.into(),
    })
}

/// No HTTP answer: nobody there, or no TLS we can trust.
fn transport(kind: &TransportKind, detail: &str, to: &Target<'_>) -> Option<Advice> {
    let at = to.endpoint;
    match kind {
        TransportKind::Unreachable => advice(
            format!("cannot reach {at} ({detail})"),
            "check the host and port in --endpoint, that the server is running, and the firewall",
        ),
        TransportKind::PlainHttp => advice(
            format!("the endpoint {at} answered in plain HTTP, not TLS"),
            "use http:// in --endpoint (or enable TLS on the server)",
        ),
        TransportKind::Tls => advice(
            format!("TLS with {at} failed ({detail})"),
            "check that the server speaks TLS (https://) on that port",
        ),
        TransportKind::Certificate(problem) => certificate(problem, detail, to),
        TransportKind::Timeout | TransportKind::Broken => None,
    }
}

/// The server's certificate was refused.
fn certificate(problem: &CertProblem, detail: &str, to: &Target<'_>) -> Option<Advice> {
    let at = to.endpoint;
    match problem {
        CertProblem::UnknownIssuer => {
            let trusted = if to.ca_file {
                "neither by the CA of --ca-file nor by a public CA"
            } else {
                "by a CA this machine does not trust (no --ca-file given)"
            };
            advice(
                format!("the certificate of {at} is signed {trusted}"),
                "pass --ca-file with the PEM of the CA that signed it",
            )
        }
        CertProblem::WrongName { asked, covers } => wrong_name(asked.as_deref(), covers, at),
        CertProblem::Expired { not_after, now } => advice(
            format!(
                "the certificate of {at} expired{}{}",
                when(" on", *not_after),
                clock(*now)
            ),
            "renew it, or check this machine's clock",
        ),
        CertProblem::NotYetValid { not_before, now } => advice(
            format!(
                "the certificate of {at} is not valid yet{}{}",
                when(": it starts on", *not_before),
                clock(*now)
            ),
            "check this machine's clock, or the certificate's start date",
        ),
        CertProblem::CaAsServer => advice(
            format!(
                "the server at {at} presents a CA certificate as its own (a self-signed one made with openssl req -x509?)"
            ),
            "issue the server a certificate (basicConstraints CA:FALSE) signed by that CA, and pass the CA with --ca-file",
        ),
        CertProblem::Other => advice(
            format!("the certificate of {at} is refused ({detail})"),
            "check the certificate the server presents (openssl s_client -connect HOST:PORT)",
        ),
    }
}

/// The certificate is for other names than the one `--endpoint` asked for.
fn wrong_name(asked: Option<&str>, covers: &[String], at: &str) -> Option<Advice> {
    let host = asked
        .map(str::to_string)
        .or_else(|| url::Url::parse(at).ok()?.host_str().map(str::to_string))
        .unwrap_or_else(|| at.to_string());
    let problem = match covers {
        [] => format!("the certificate of {at} names no host, so it is not valid for {host}"),
        names => format!(
            "the certificate of {at} is for {}, not for {host}",
            names.join(", ")
        ),
    };
    let fix = match covers
        .iter()
        .find(|n| !n.contains('*'))
        .and_then(|n| with_host(at, n))
    {
        Some(url) => format!(
            "use the name the certificate is for in --endpoint ({url}), or reissue the certificate for {host}"
        ),
        None => format!(
            "use the name the certificate is for in --endpoint, or reissue the certificate for {host}"
        ),
    };
    advice(problem, fix)
}

/// `at` with its host replaced by `host`: the `--endpoint` to suggest.
fn with_host(at: &str, host: &str) -> Option<String> {
    let mut url = url::Url::parse(at).ok()?;
    url.set_host(Some(host)).ok()?;
    Some(url.as_str().trim_end_matches('/').to_string())
}

/// ` on 2020-01-02T00:00:00Z` (with `lead` " on"), or nothing when unknown.
fn when(lead: &str, secs: Option<u64>) -> String {
    secs.map(|s| format!("{lead} {}", iso(s)))
        .unwrap_or_default()
}

/// ` (this machine's clock says ...)`, or nothing when unknown.
fn clock(now: Option<u64>) -> String {
    now.map(|s| format!(" (this machine's clock says {})", iso(s)))
        .unwrap_or_default()
}

fn iso(secs: u64) -> String {
    crate::timefmt::iso8601(crate::timefmt::from_unix(
        i64::try_from(secs).unwrap_or(i64::MAX),
    ))
}

/// An HTTP answer that shows the endpoint, bucket or credentials are wrong.
fn status_answer(
    err: &EngineError,
    status: u16,
    code: &str,
    body: ErrorBody,
    to: &Target<'_>,
    request: &str,
) -> Option<Advice> {
    let at = to.endpoint;
    match (status, code) {
        // S3 answers every GET, LIST, PUT and DELETE error with an error
        // document; a 404 without one (an HTML page) is another server.
        // A HEAD answer has no body, so its 404 says nothing (ErrorBody::None).
        (404, _) if body == ErrorBody::Foreign => advice(
            format!("the endpoint {at} is not an S3 API (HTTP 404 without an S3 error)"),
            "check --endpoint (MinIO's API port is usually 9000, its console 9001)",
        ),
        (_, "NoSuchBucket") => advice(
            format!("bucket '{}' does not exist at {at}", to.bucket),
            "create it or fix --bucket/BUCKET",
        ),
        (_, "RequestTimeTooSkewed") => advice(
            format!("{request}: {err}: {at} refuses requests signed with this machine's clock"),
            "set this machine's clock right (NTP)",
        ),
        (_, "ExpiredToken" | "ExpiredTokenException" | "TokenRefreshRequired" | "InvalidToken") => {
            advice(
                format!("{request}: {err}: the S3 credentials have expired"),
                "renew them (AWS_SESSION_TOKEN with its key pair, or the profile's) and run again",
            )
        }
        (403, _) | (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied") => advice(
            format!("{request}: {err}"),
            "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile, and the bucket policy",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Target<'static> = Target {
        endpoint: "https://127.0.0.1:9000",
        bucket: "logs",
        ca_file: true,
    };

    fn line(err: &EngineError) -> String {
        advise(err, &AT, "GET x")
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    fn tls(kind: TransportKind) -> EngineError {
        EngineError::Transport {
            kind,
            detail: "io: ...".into(),
        }
    }

    #[test]
    fn only_a_404_with_a_foreign_body_means_not_s3() {
        let html = EngineError::from_answer(404, "<html>Not Found</html>");
        assert!(line(&html).contains("is not an S3 API (HTTP 404 without an S3 error)"));
        let no_key = EngineError::from_answer(404, "<Error><Code>NoSuchKey</Code></Error>");
        assert!(advise(&no_key, &AT, "GET x").is_none());
        assert!(advise(&EngineError::from_head(404), &AT, "HEAD x").is_none());
        let no_bucket = EngineError::from_answer(404, "<Error><Code>NoSuchBucket</Code></Error>");
        assert_eq!(
            line(&no_bucket),
            "bucket 'logs' does not exist at https://127.0.0.1:9000: create it or fix --bucket/BUCKET"
        );
    }

    #[test]
    fn wrong_name_suggests_the_name_the_certificate_is_for() {
        let err = tls(TransportKind::Certificate(CertProblem::WrongName {
            asked: Some("127.0.0.1".into()),
            covers: vec!["*.lan".into(), "minio.lan".into()],
        }));
        assert_eq!(
            line(&err),
            "the certificate of https://127.0.0.1:9000 is for *.lan, minio.lan, not for 127.0.0.1: use the name the certificate is for in --endpoint (https://minio.lan:9000), or reissue the certificate for 127.0.0.1"
        );
        let unnamed = tls(TransportKind::Certificate(CertProblem::WrongName {
            asked: None,
            covers: vec![],
        }));
        assert!(line(&unnamed).contains("names no host, so it is not valid for 127.0.0.1"));
    }

    #[test]
    fn expiry_names_both_dates() {
        let err = tls(TransportKind::Certificate(CertProblem::Expired {
            not_after: Some(1_577_923_200),
            now: Some(1_795_446_291),
        }));
        assert_eq!(
            line(&err),
            "the certificate of https://127.0.0.1:9000 expired on 2020-01-02T00:00:00Z (this machine's clock says 2026-11-23T15:04:51Z): renew it, or check this machine's clock"
        );
    }

    #[test]
    fn timeouts_and_server_errors_are_left_to_the_caller() {
        assert!(advise(&tls(TransportKind::Timeout), &AT, "GET x").is_none());
        assert!(advise(&tls(TransportKind::Broken), &AT, "GET x").is_none());
        let busy = EngineError::from_answer(503, "<Error><Code>SlowDown</Code></Error>");
        assert!(advise(&busy, &AT, "GET x").is_none());
    }
}
