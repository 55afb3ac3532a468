//! What a failed S3 request means: the one place where HTTP statuses, S3
//! error codes and transport failures become a retry-or-not verdict with
//! the fix in words.

use super::S3Store;
use crate::engine::advice::{Target, advise};
use crate::engine::error::{EngineError, TransportKind};
use crate::store::{StoreError, StoreErrorKind};

impl S3Store {
    /// Decides what a failed request means for the file: the one place
    /// where HTTP statuses, S3 codes and transport failures become a
    /// retry-or-not verdict. Failures of the set-up (endpoint, TLS, bucket,
    /// credentials) are worded with their fix by [`advise`].
    pub(super) fn classify(&self, action: &str, key: &str, err: EngineError) -> StoreError {
        let target = Target {
            endpoint: &self.endpoint_label,
            bucket: &self.name,
            ca_file: !self.options.extra_roots.is_empty(),
        };
        if let Some(advice) = advise(&err, &target, &format!("{action} {key}")) {
            let kind = match &err {
                EngineError::Transport {
                    kind: TransportKind::Unreachable,
                    ..
                } => StoreErrorKind::Unreachable,
                e if e.is_credentials_refusal() => StoreErrorKind::Credentials,
                _ => StoreErrorKind::Permanent,
            };
            return StoreError::advised(kind, advice);
        }
        let at = &self.endpoint_label;
        match err {
            EngineError::Transport { detail, .. } => {
                StoreError::transient(format!("{action} {key}: no answer from {at} ({detail})"))
            }
            EngineError::Source(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                StoreError::changed(format!("{action} {key}: {e}"))
            }
            EngineError::Source(e) => {
                StoreError::permanent(format!("{action} {key}: cannot read the source file: {e}"))
            }
            EngineError::Request(why) => StoreError::permanent(format!("{action} {key}: {why}")),
            status @ EngineError::Status { .. } => self.status_error(action, key, status),
        }
    }

    pub(super) fn status_error(&self, action: &str, key: &str, err: EngineError) -> StoreError {
        let text = format!("{action} {key}: {err}");
        if err.is_digest_rejection() {
            return StoreError::changed(format!(
                "{text}: the server refused the bytes because they do not hash to the SHA-256 taken when the file was read (changed on disk, or damaged in flight)"
            ));
        }
        if err.is_credentials_refusal() {
            return StoreError {
                kind: StoreErrorKind::Credentials,
                message: text,
                advice: None,
            };
        }
        let EngineError::Status { status, code, .. } = err else {
            return StoreError::permanent(text);
        };
        match (status, code.as_str()) {
            (412, _) | (_, "PreconditionFailed") => StoreError::exists(format!(
                "{action} {key}: an object appeared at this key (HTTP 412 to If-None-Match); it was not replaced"
            )),
            (500..=599 | 429 | 408 | 409, _) | (_, "RequestTimeout" | "SlowDown") => {
                StoreError::transient(text)
            }
            _ => StoreError::permanent(text),
        }
    }
}
