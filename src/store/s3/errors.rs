//! What a failed S3 request means: the one place where HTTP statuses, S3
//! error codes and transport failures become a retry-or-not verdict with
//! the fix in words.

use super::S3Store;
use crate::engine::advice::{Target, advise};
use crate::engine::error::{EngineError, TransportKind};
use crate::store::{Answer, StoreError, StoreErrorKind};

impl S3Store {
    /// Decides what a failed request means for the file: the one place
    /// where HTTP statuses, S3 codes and transport failures become a
    /// retry-or-not verdict. Failures of the set-up (endpoint, TLS, bucket,
    /// credentials) are worded with their fix by [`advise`].
    pub(super) fn classify(&self, action: &str, key: &str, err: EngineError) -> StoreError {
        let answer = answer_of(&err);
        self.verdict(action, key, err).with_answer(answer)
    }

    /// [`S3Store::classify`] without the answer.
    fn verdict(&self, action: &str, key: &str, err: EngineError) -> StoreError {
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
            return StoreError::credentials(text);
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

/// The HTTP status and S3 code of an error that is a server's answer.
fn answer_of(err: &EngineError) -> Option<Answer> {
    match err {
        EngineError::Status { status, code, .. } => Some(Answer {
            status: *status,
            code: code.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{Credentials, S3Settings};
    use crate::store::s3::S3Options;

    fn store() -> S3Store {
        let settings = S3Settings {
            credentials: Credentials {
                access_key: "test-key".into(),
                secret_key: "answer-test-secret-5821".into(),
                session_token: None,
            },
            region: "us-east-1".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
        };
        S3Store::new("fg-logs", &settings, S3Options::default()).expect("store")
    }

    /// The verdict keeps the answer it came from: status and S3 code reach
    /// whoever decides next, not only the words of the message.
    #[test]
    fn server_answers_keep_their_status_and_code() {
        let s = store();
        let body = "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>";
        let e = s.classify("PUT", "a.gz", EngineError::from_answer(503, body));
        assert_eq!(e.kind, StoreErrorKind::Transient);
        assert_eq!(
            e.answer,
            Some(Answer {
                status: 503,
                code: "SlowDown".into()
            })
        );
        let body = "<Error><Code>ExpiredToken</Code><Message>expired</Message></Error>";
        let e = s.classify("PUT", "a.gz", EngineError::from_answer(400, body));
        assert_eq!(e.kind, StoreErrorKind::Credentials);
        assert_eq!(
            e.answer.map(|a| (a.status, a.code)),
            Some((400, "ExpiredToken".into()))
        );
        let e = s.classify("PUT", "a.gz", EngineError::Request("bad header".into()));
        assert_eq!(e.answer, None);
    }
}
