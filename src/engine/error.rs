//! How an S3 request failed, with its cause kept whole (transport kind, HTTP
//! status, S3 error code, what the certificate was refused for) until the
//! store decides what it means for the file: retry, conflict, changed
//! content, or a permanent failure; and [`super::advice`] what to tell the
//! user.

use std::fmt;

/// Why no HTTP answer arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportKind {
    /// Nobody answers at the endpoint: refused, no route, DNS failure.
    Unreachable,
    /// Connect, send or receive took longer than its timeout.
    Timeout,
    /// The server's certificate is not trusted: retrying cannot help.
    Certificate(CertProblem),
    /// `https://` to a server that answered in plain HTTP (its first bytes
    /// are no TLS record).
    PlainHttp,
    /// Any other TLS failure.
    Tls,
    /// The connection broke (reset, closed mid-answer, malformed answer).
    Broken,
}

/// Why the server's certificate was refused; times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// Signed by a CA that is neither a bundled root nor in `--ca-file`.
    UnknownIssuer,
    /// Not issued for the host asked for (`asked`, when rustls says); the
    /// names it covers (`covers`, may be empty).
    WrongName {
        asked: Option<String>,
        covers: Vec<String>,
    },
    /// Past its end date (or this machine's clock is ahead).
    Expired {
        not_after: Option<u64>,
        now: Option<u64>,
    },
    /// Before its start date (or this machine's clock is behind).
    NotYetValid {
        not_before: Option<u64>,
        now: Option<u64>,
    },
    /// A CA certificate presented as the server's own (what `openssl req
    /// -x509` makes): a server needs a leaf certificate signed by a CA.
    CaAsServer,
    /// Anything else (bad signature, revoked, wrong purpose...).
    Other,
}

/// What came with an error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorBody {
    /// An S3 error document (it has a `<Code>`): an S3 API answered.
    S3,
    /// Something else, or nothing, where S3 always sends an error document
    /// (an HTML page): perhaps not an S3 API at all.
    Foreign,
    /// No body to judge: a HEAD answer, which never has one.
    None,
}

/// A failed request.
#[derive(Debug)]
pub enum EngineError {
    /// No (complete) HTTP answer.
    Transport { kind: TransportKind, detail: String },
    /// The server answered with a non-2xx status (or an error document in a
    /// 200 answer, as CompleteMultipartUpload may).
    Status {
        status: u16,
        /// S3 error code (`NoSuchBucket`, `BadDigest`...), empty if none.
        code: String,
        message: String,
        body: ErrorBody,
    },
    /// Reading the local file for the body failed or came up short.
    Source(std::io::Error),
    /// The request could not be built (a header or key the HTTP layer refuses).
    Request(String),
}

impl EngineError {
    /// A status answer whose body is an S3 error document (or anything else).
    pub fn from_answer(status: u16, body: &str) -> EngineError {
        let code = super::xml::field(body, "Code").unwrap_or_default();
        EngineError::Status {
            status,
            body: if code.is_empty() {
                ErrorBody::Foreign
            } else {
                ErrorBody::S3
            },
            code,
            message: super::xml::field(body, "Message").unwrap_or_default(),
        }
    }

    /// A status answer to a HEAD request (which has no body).
    pub fn from_head(status: u16) -> EngineError {
        EngineError::Status {
            status,
            code: String::new(),
            message: String::new(),
            body: ErrorBody::None,
        }
    }

    /// The server refuses the credentials themselves (expired, unknown,
    /// wrong secret, not allowed): no request signed with them can succeed
    /// until they are renewed. A HEAD answered 400 carries no code; after
    /// a PUT or GET said why, it is the same refusal.
    pub fn is_credentials_refusal(&self) -> bool {
        match self {
            // A HEAD answered 400 gives no reason (no body); it is what S3
            // answers a HEAD signed with expired or wrong credentials (or for
            // the wrong region): every request fails alike.
            EngineError::Status {
                status: 400,
                code,
                body: ErrorBody::None,
                ..
            } if code.is_empty() => true,
            EngineError::Status { status, code, .. } => {
                matches!(
                    code.as_str(),
                    "ExpiredToken"
                        | "ExpiredTokenException"
                        | "TokenRefreshRequired"
                        | "InvalidToken"
                        | "InvalidAccessKeyId"
                        | "SignatureDoesNotMatch"
                        | "AccessDenied"
                        | "InvalidClientTokenId"
                ) || (*status == 403 && code.is_empty())
            }
            _ => false,
        }
    }

    /// The server refused the body because it does not hash to what we
    /// signed or declared: the bytes changed on disk or were damaged in
    /// flight. Retrying the same request would send the same bytes.
    pub fn is_digest_rejection(&self) -> bool {
        match self {
            EngineError::Status { code, .. } => matches!(
                code.as_str(),
                "BadDigest"
                    | "InvalidDigest"
                    | "XAmzContentSHA256Mismatch"
                    | "XAmzContentChecksumMismatch"
                    | "InvalidChecksum"
            ),
            _ => false,
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Transport { detail, .. } => f.write_str(detail),
            EngineError::Status {
                status,
                code,
                message,
                body,
            } => match (code.is_empty(), message.is_empty()) {
                // A HEAD answer has no body to say why: say what it usually is.
                (true, _) if *body == ErrorBody::None && *status == 400 => write!(
                    f,
                    "HTTP 400 without a reason (a HEAD answer has no body; expired or wrong credentials, or a wrong --region, are the usual causes)"
                ),
                (true, _) => write!(f, "HTTP {status}"),
                (false, true) => write!(f, "HTTP {status} {code}"),
                (false, false) => write!(f, "HTTP {status} {code}: {message}"),
            },
            EngineError::Source(e) => write!(f, "cannot read the source file: {e}"),
            EngineError::Request(why) => f.write_str(why),
        }
    }
}

/// Sorts a ureq failure (no HTTP answer) into a [`TransportKind`].
pub fn transport(e: ureq::Error) -> EngineError {
    use std::io::ErrorKind as K;
    // ureq hands TLS failures on as I/O errors wrapping rustls's own.
    let tls = match &e {
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        ureq::Error::Rustls(r) => Some(r),
        _ => None,
    };
    let kind = match (&e, tls) {
        (_, Some(t)) => tls_kind(t),
        (ureq::Error::Io(io), None) => match io.kind() {
            K::ConnectionRefused
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
            | K::NotConnected => TransportKind::Unreachable,
            K::TimedOut | K::WouldBlock => TransportKind::Timeout,
            _ => TransportKind::Broken,
        },
        (ureq::Error::HostNotFound | ureq::Error::ConnectionFailed, _) => {
            TransportKind::Unreachable
        }
        (ureq::Error::Timeout(_), _) => TransportKind::Timeout,
        (ureq::Error::Tls(_), _) => TransportKind::Tls,
        (ureq::Error::Http(_) | ureq::Error::BadUri(_), _) => {
            return EngineError::Request(format!("the request could not be built: {e}"));
        }
        _ => TransportKind::Broken,
    };
    EngineError::Transport {
        kind,
        detail: e.to_string(),
    }
}

/// What a rustls failure says about the endpoint.
fn tls_kind(e: &rustls::Error) -> TransportKind {
    use rustls::CertificateError as C;
    let cert = match e {
        // A plain-HTTP answer ("HTTP/1.1 400...") read as a TLS record.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            return TransportKind::PlainHttp;
        }
        rustls::Error::InvalidCertificate(c) => c,
        _ => return TransportKind::Tls,
    };
    TransportKind::Certificate(match cert {
        C::UnknownIssuer => CertProblem::UnknownIssuer,
        C::NotValidForName => CertProblem::WrongName {
            asked: None,
            covers: Vec::new(),
        },
        C::NotValidForNameContext {
            expected,
            presented,
        } => CertProblem::WrongName {
            asked: Some(expected.to_str().into_owned()),
            covers: presented.iter().map(|n| plain_name(n)).collect(),
        },
        C::Expired => CertProblem::Expired {
            not_after: None,
            now: None,
        },
        C::ExpiredContext { time, not_after } => CertProblem::Expired {
            not_after: Some(not_after.as_secs()),
            now: Some(time.as_secs()),
        },
        C::NotValidYet => CertProblem::NotYetValid {
            not_before: None,
            now: None,
        },
        C::NotValidYetContext { time, not_before } => CertProblem::NotYetValid {
            not_before: Some(not_before.as_secs()),
            now: Some(time.as_secs()),
        },
        // webpki's reason arrives only inside rustls's opaque `Other`.
        C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            CertProblem::CaAsServer
        }
        _ => CertProblem::Other,
    })
}

/// `DnsName("minio.lan")` → `minio.lan`, `IpAddress(10.0.0.5)` →
/// `10.0.0.5`: webpki's debug form of a certificate's subject names.
fn plain_name(presented: &str) -> String {
    let inner = ["DnsName(", "IpAddress("]
        .iter()
        .find_map(|p| presented.strip_prefix(p)?.strip_suffix(')'));
    match inner {
        Some(name) => name.trim_matches('"').to_string(),
        None => presented.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_are_shown_plain() {
        assert_eq!(plain_name("DnsName(\"minio.lan\")"), "minio.lan");
        assert_eq!(plain_name("IpAddress(10.0.0.5)"), "10.0.0.5");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn only_an_s3_error_document_makes_an_s3_answer() {
        let s3 = EngineError::from_answer(404, "<Error><Code>NoSuchKey</Code></Error>");
        assert!(matches!(
            s3,
            EngineError::Status {
                body: ErrorBody::S3,
                ..
            }
        ));
        let html = EngineError::from_answer(404, "<html><h1>Not Found</h1></html>");
        assert!(matches!(
            html,
            EngineError::Status {
                body: ErrorBody::Foreign,
                ..
            }
        ));
        let head = EngineError::from_head(404);
        assert!(matches!(
            head,
            EngineError::Status {
                body: ErrorBody::None,
                ..
            }
        ));
    }
}
