//! How an S3 request failed, with its cause kept whole (transport kind, HTTP
//! status, S3 error code) until the store decides what it means for the
//! file: retry, conflict, changed content, or a permanent failure.

use std::fmt;

/// Why no HTTP answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Nobody answers at the endpoint: refused, no route, DNS failure.
    Unreachable,
    /// Connect, send or receive took longer than its timeout.
    Timeout,
    /// The server's certificate is not trusted (unknown CA, wrong name,
    /// expired): retrying cannot help.
    Certificate,
    /// Any other TLS failure (e.g. `https://` to a plain-HTTP port).
    Tls,
    /// The connection broke (reset, closed mid-answer, malformed answer).
    Broken,
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
    },
    /// Reading the local file for the body failed or came up short.
    Source(std::io::Error),
    /// The request could not be built (a header or key the HTTP layer refuses).
    Request(String),
}

impl EngineError {
    /// A status answer whose body is an S3 error document (or anything else).
    pub fn from_answer(status: u16, body: &str) -> EngineError {
        EngineError::Status {
            status,
            code: super::xml::field(body, "Code").unwrap_or_default(),
            message: super::xml::field(body, "Message").unwrap_or_default(),
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
            } => match (code.is_empty(), message.is_empty()) {
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
        (_, Some(rustls::Error::InvalidCertificate(_))) => TransportKind::Certificate,
        (_, Some(_)) => TransportKind::Tls,
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
