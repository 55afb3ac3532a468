//! S3 and S3-compatible stores (AWS, MinIO, Ceph, Garage...) on our own data
//! path ([`crate::engine`]).
//!
//! A PUT streams the file from the descriptor that was hashed, signed with
//! that very SHA-256 (`x-amz-content-sha256`) and declaring it as
//! `x-amz-checksum-sha256`, so the server refuses bytes that differ from
//! what was read, and HEAD in checksum mode later returns the server's own
//! hash of what it stored. No body is buffered, nothing is hashed twice, no
//! MD5. Every new object carries `x-amz-meta-sha256` (what the suite wrote),
//! `If-None-Match: *` (never replace), and the bucket options
//! (`--storage-class`, `--sse`, `--object-lock`), all built in one place:
//! [`S3Store::object_headers`].
//! Files above the multipart cutoff go in parts whose digests the same read
//! took; a failed multipart upload is aborted so no parts stay behind.
//!
//! Object Lock (WORM) is asked per object (mode and retain-until date), but
//! only a bucket created with Object Lock keeps it: with a lock requested,
//! [`Store::check`] reads the bucket's configuration first and refuses the
//! run when it is not enabled, and every HEAD reports the lock an object has.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use s3::Bucket;
use s3::Region;
use std::io::Write;

use super::{
    Body, CopyError, Listed, PutReceipt, ReadBack, RemoteObject, Store, StoreError, StoreErrorKind,
    Upload, stream_hashed,
};
use crate::aws::S3Settings;
use crate::digest::{Parts, hex, hex_to_base64};
use crate::engine::advice::{Target, advise};
use crate::engine::client::{Answer, Call, Client, Payload, Settings};
use crate::engine::error::{EngineError, TransportKind};
use crate::engine::sigv4::Signer;
use crate::engine::throttle::Throttle;
use crate::engine::xml;
use crate::error::{Error, Result as AppResult};

/// Keys asked for per LIST page (the S3 maximum).
const LIST_PAGE: &str = "1000";

/// Bucket options sent with every new object, and how the client connects.
#[derive(Default, Clone)]
pub struct S3Options {
    /// Idle connections to keep: about one per worker.
    pub pool: usize,
    /// `--ca-file` certificates, trusted besides the bundled roots.
    pub extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// `--bwlimit`.
    pub throttle: Option<Arc<Throttle>>,
    /// `--storage-class` (`STANDARD_IA`, `GLACIER_IR`...).
    pub storage_class: Option<String>,
    /// `--sse`: `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// `--sse-kms-key-id`, with `--sse aws:kms`.
    pub sse_kms_key_id: Option<String>,
    /// `--object-lock` and `--object-lock-days`.
    pub object_lock: Option<ObjectLock>,
}

/// `--object-lock MODE --object-lock-days N`: every new object is locked
/// (write once, read many) until N days after its upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLock {
    /// `GOVERNANCE` (who holds `s3:BypassGovernanceRetention` may still
    /// delete) or `COMPLIANCE` (nobody may, until the date).
    pub mode: String,
    /// 1 to 36500.
    pub days: u32,
}

impl ObjectLock {
    /// `x-amz-object-lock-retain-until-date` of an object created at `now`.
    pub fn retain_until(&self, now: SystemTime) -> String {
        crate::timefmt::iso8601(now + Duration::from_secs(u64::from(self.days) * 86_400))
    }
}

/// What a bucket says about Object Lock (`GET /?object-lock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockConfig {
    /// Objects may be locked; `default` is the retention the bucket gives
    /// objects created without one.
    Enabled { default: Option<Retention> },
    /// Objects cannot be locked here; the server's word for it
    /// (`ObjectLockConfigurationNotFoundError`, `NotImplemented`...).
    Absent(String),
}

/// A bucket's default retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub mode: String,
    pub days: Option<u32>,
    pub years: Option<u32>,
}

impl LockConfig {
    /// Reads a `<ObjectLockConfiguration>` document.
    fn parse(doc: &str) -> LockConfig {
        match xml::field(doc, "ObjectLockEnabled").as_deref() {
            Some("Enabled") => {}
            Some(other) => return LockConfig::Absent(format!("ObjectLockEnabled is '{other}'")),
            None => return LockConfig::Absent("no ObjectLockEnabled in the answer".into()),
        }
        let default = xml::elements(doc, "DefaultRetention").next().and_then(|r| {
            Some(Retention {
                mode: xml::field(r, "Mode")?,
                days: positive(xml::field(r, "Days")),
                years: positive(xml::field(r, "Years")),
            })
        });
        LockConfig::Enabled { default }
    }

    /// `enabled, default retention GOVERNANCE 30 days`, `enabled, no
    /// default retention`, `not enabled (NotImplemented)`.
    pub fn describe(&self) -> String {
        match self {
            LockConfig::Enabled { default: None } => "enabled, no default retention".into(),
            LockConfig::Enabled { default: Some(r) } => {
                let period = match (r.days, r.years) {
                    (Some(d), _) => format!("{d} days"),
                    (None, Some(y)) => format!("{y} years"),
                    (None, None) => "(no period)".into(),
                };
                format!("enabled, default retention {} {period}", r.mode)
            }
            LockConfig::Absent(why) => format!("not enabled ({why})"),
        }
    }
}

/// One bucket on one endpoint.
pub struct S3Store {
    /// rust-s3's view of the bucket: its URL and presigned links.
    bucket: Box<Bucket>,
    client: Client,
    name: String,
    endpoint_label: String,
    options: S3Options,
}

impl S3Store {
    /// Builds the client; no network traffic happens here.
    pub fn new(bucket_name: &str, settings: &S3Settings, options: S3Options) -> AppResult<S3Store> {
        let region = match &settings.endpoint {
            Some(endpoint) => Region::Custom {
                region: settings.region.clone(),
                endpoint: endpoint.clone(),
            },
            None => settings.region.parse().map_err(|e| {
                Error::usage(format!(
                    "region '{}' is not understood ({e}): set --region or AWS_REGION",
                    settings.region
                ))
            })?,
        };
        let creds = &settings.credentials;
        let rs_creds = s3::creds::Credentials::new(
            Some(&creds.access_key),
            Some(&creds.secret_key),
            None,
            creds.session_token.as_deref(),
            None,
        )
        .map_err(|e| Error::usage(format!("S3 credentials are not usable: {e}")))?;
        let mut bucket = Bucket::new(bucket_name, region.clone(), rs_creds)
            .map_err(|e| Error::usage(format!("cannot set up bucket '{bucket_name}': {e}")))?;
        if settings.endpoint.is_some() {
            bucket.set_path_style();
        }
        let client = Client::new(Settings {
            bucket_url: bucket.url(),
            signer: Signer {
                access_key: creds.access_key.clone(),
                secret_key: creds.secret_key.clone(),
                session_token: creds.session_token.clone(),
                region,
            },
            pool: options.pool,
            extra_roots: options.extra_roots.clone(),
            throttle: options.throttle.clone(),
        })
        .map_err(|e| Error::usage(e.to_string()))?;
        let endpoint_label = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("AWS {}", settings.region));
        Ok(S3Store {
            bucket,
            client,
            name: bucket_name.to_string(),
            endpoint_label,
            options,
        })
    }

    /// A presigned GET URL for `key`, valid `expires` seconds (no network traffic).
    pub fn presign_get(&self, key: &str, expires: u32) -> Result<String, StoreError> {
        self.bucket
            .presign_get(key, expires, None)
            .map_err(|e| StoreError::permanent(format!("presign {key}: {e}")))
    }

    /// `fgbackup doctor`: does the server check `x-amz-checksum-sha256`?
    /// Sends a small PUT whose checksum is wrong; `Ok(true)` when refused.
    /// An accepted probe object is deleted again.
    pub fn rejects_bad_checksum(&self, key: &str) -> Result<bool, StoreError> {
        let body = b"fgbackup doctor checksum probe\n";
        let wrong = hex_to_base64(&"00".repeat(32)).unwrap_or_default();
        let headers = [
            ("x-amz-checksum-sha256", wrong),
            ("if-none-match", "*".to_string()),
        ];
        let call = Call {
            headers: &headers,
            payload: Payload::Bytes(body),
            ..Call::new("PUT", key)
        };
        let answer = self
            .client
            .send(&call)
            .map_err(|e| self.classify("PUT", key, e))?;
        let status = answer.status;
        let text = answer.text().unwrap_or_default();
        match status {
            200..=299 => {
                self.delete(key)?;
                Ok(false)
            }
            400 | 500 => {
                // Some servers (s3s-fs) store the bytes before checking them.
                let _ = self.delete(key);
                Ok(true)
            }
            _ => Err(self.classify("PUT", key, EngineError::from_answer(status, &text))),
        }
    }

    /// The bucket's Object Lock configuration. A bucket without one, and a
    /// server that does not implement Object Lock, answer `Absent`.
    pub fn object_lock_config(&self) -> Result<LockConfig, StoreError> {
        let action = "GET ?object-lock of bucket";
        let call = Call {
            query: &[("object-lock", "")],
            ..Call::new("GET", "")
        };
        let answer = self
            .client
            .send(&call)
            .map_err(|e| self.classify(action, &self.name, e))?;
        let status = answer.status;
        let body = answer
            .text()
            .map_err(|e| self.classify(action, &self.name, e))?;
        if (200..300).contains(&status) {
            return Ok(LockConfig::parse(&body));
        }
        match EngineError::from_answer(status, &body) {
            EngineError::Status { code, .. }
                if status == 501
                    || matches!(
                        code.as_str(),
                        "ObjectLockConfigurationNotFoundError" | "NotImplemented"
                    ) =>
            {
                Ok(LockConfig::Absent(if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    code
                }))
            }
            err @ EngineError::Status { status: 403, .. } => Err(StoreError::permanent(format!(
                "{action} {} at {}: {err}: grant s3:GetBucketObjectLockConfiguration to these credentials, or drop --object-lock/OBJECT_LOCK_MODE",
                self.name, self.endpoint_label
            ))),
            err => Err(self.classify(action, &self.name, err)),
        }
    }

    /// With `--object-lock`, the bucket must keep locks: one clear error
    /// before any file, rather than objects anyone may delete.
    fn check_object_lock(&self) -> Result<(), StoreError> {
        match self.object_lock_config()? {
            LockConfig::Enabled { .. } => Ok(()),
            LockConfig::Absent(why) => Err(StoreError::permanent(format!(
                "bucket '{}' at {}: Object Lock is not enabled ({why}): create the bucket with Object Lock enabled, or drop --object-lock/OBJECT_LOCK_MODE",
                self.name, self.endpoint_label
            ))),
        }
    }

    /// What a successful HEAD says about the object.
    fn remote_object(&self, key: &str, answer: &Answer) -> Result<RemoteObject, StoreError> {
        let size = answer
            .header("content-length")
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| {
                StoreError::permanent(format!("HEAD {key}: no Content-Length in the answer"))
            })?;
        Ok(RemoteObject {
            size,
            sha256: meta_sha256(answer),
            checksum_sha256: whole_checksum(answer),
            version: answer.header("etag").and_then(normalize_etag),
            lock_mode: answer
                .header("x-amz-object-lock-mode")
                .map(str::to_ascii_uppercase),
            lock_until: answer
                .header("x-amz-object-lock-retain-until-date")
                .map(str::to_string),
            legal_hold: answer
                .header("x-amz-object-lock-legal-hold")
                .is_some_and(|h| h.eq_ignore_ascii_case("ON")),
            modified: answer
                .header("last-modified")
                .and_then(crate::timefmt::parse_http_date),
        })
    }

    /// Decides what a failed request means for the file: the one place
    /// where HTTP statuses, S3 codes and transport failures become a
    /// retry-or-not verdict. Failures of the set-up (endpoint, TLS, bucket,
    /// credentials) are worded with their fix by [`advise`].
    fn classify(&self, action: &str, key: &str, err: EngineError) -> StoreError {
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

    fn status_error(&self, action: &str, key: &str, err: EngineError) -> StoreError {
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

    /// Sends `call`, expecting 2xx; any failure classified for `action`.
    fn expect(&self, action: &str, call: &Call<'_>) -> Result<Answer, StoreError> {
        self.client
            .expect(call)
            .map_err(|e| self.classify(action, call.key, e))
    }

    /// The headers every new object is created with, defined once: content
    /// type, the `sha256` metadata, and the bucket options (storage class,
    /// encryption, Object Lock mode and retain-until date).
    fn object_headers(&self, key: &str, sha256: &str) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("content-type", content_type(key).to_string()),
            ("x-amz-meta-sha256", sha256.to_string()),
        ];
        let o = &self.options;
        if let Some(class) = &o.storage_class {
            h.push(("x-amz-storage-class", class.clone()));
        }
        if let Some(sse) = &o.sse {
            h.push(("x-amz-server-side-encryption", sse.clone()));
        }
        if let Some(kms) = &o.sse_kms_key_id {
            h.push(("x-amz-server-side-encryption-aws-kms-key-id", kms.clone()));
        }
        if let Some(lock) = &o.object_lock {
            h.push(("x-amz-object-lock-mode", lock.mode.clone()));
            h.push((
                "x-amz-object-lock-retain-until-date",
                lock.retain_until(SystemTime::now()),
            ));
        }
        h
    }

    /// One PUT with `If-None-Match: *`: a server that honours it (AWS since
    /// 2024, MinIO, s3s) refuses to replace an object that appeared since the
    /// probe; verification catches the others.
    fn put_single(&self, up: &Upload<'_>) -> Result<PutReceipt, StoreError> {
        let mut headers = self.object_headers(up.key, up.sha256);
        // Also what S3 demands of a PUT under an Object Lock retention
        // ("Content-MD5 OR x-amz-checksum-"), ours or the bucket's default.
        headers.push(("x-amz-checksum-sha256", checksum(up.sha256)?));
        headers.push(("if-none-match", "*".into()));
        let payload = match up.body {
            Body::Memory(data) => Payload::Bytes(data),
            Body::File(file) => Payload::File {
                file,
                offset: 0,
                len: up.size,
                sha256: up.sha256,
            },
        };
        let call = Call {
            headers: &headers,
            payload,
            ..Call::new("PUT", up.key)
        };
        let answer = self.expect("PUT", &call)?;
        let version = answer.header("etag").and_then(normalize_etag);
        answer
            .finish()
            .map_err(|e| self.classify("PUT", up.key, e))?;
        Ok(PutReceipt { version })
    }

    fn put_multipart(&self, up: &Upload<'_>, parts: &Parts) -> Result<PutReceipt, StoreError> {
        let Body::File(_) = up.body else {
            return Err(StoreError::permanent("multipart upload needs a file"));
        };
        let mut headers = self.object_headers(up.key, up.sha256);
        headers.push(("x-amz-checksum-algorithm", "SHA256".into()));
        let call = Call {
            query: &[("uploads", "")],
            headers: &headers,
            ..Call::new("POST", up.key)
        };
        let action = "initiate multipart upload of";
        let answer = self.expect(action, &call)?;
        let body = answer
            .text()
            .map_err(|e| self.classify(action, up.key, e))?;
        let upload_id = xml::field(&body, "UploadId").ok_or_else(|| {
            StoreError::permanent(format!("{action} {}: no UploadId in the answer", up.key))
        })?;
        let result = self.upload_parts(up, parts, &upload_id);
        if result.is_err() {
            let call = Call {
                query: &[("uploadId", &upload_id)],
                ..Call::new("DELETE", up.key)
            };
            if let Err(e) = self.expect("abort multipart upload of", &call) {
                log::warn!(
                    "could not abort multipart upload of {} (upload id {upload_id}): {e}",
                    up.key
                );
            }
        }
        result
    }

    /// Sends every part, then completes the upload: the object appears only
    /// at completion, so the no-replace condition belongs there.
    fn upload_parts(
        &self,
        up: &Upload<'_>,
        parts: &Parts,
        upload_id: &str,
    ) -> Result<PutReceipt, StoreError> {
        let mut done = String::from("<CompleteMultipartUpload>");
        for (i, part_sha) in parts.sha256.iter().enumerate() {
            let etag = self.upload_part(up, parts, upload_id, i, part_sha)?;
            done.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag><ChecksumSHA256>{}</ChecksumSHA256></Part>",
                i + 1,
                xml::escape(&etag),
                checksum(part_sha)?
            ));
        }
        done.push_str("</CompleteMultipartUpload>");
        let headers = [("if-none-match", "*".to_string())];
        let call = Call {
            query: &[("uploadId", upload_id)],
            headers: &headers,
            payload: Payload::Bytes(done.as_bytes()),
            ..Call::new("POST", up.key)
        };
        let action = "complete multipart upload of";
        let answer = self.expect(action, &call)?;
        let body = answer
            .text()
            .map_err(|e| self.classify(action, up.key, e))?;
        // S3 may answer 200 and put the error in the body.
        if xml::field(&body, "Code").is_some() {
            let status = if body.contains("PreconditionFailed") {
                412
            } else {
                500
            };
            return Err(self.classify(action, up.key, EngineError::from_answer(status, &body)));
        }
        Ok(PutReceipt {
            version: xml::field(&body, "ETag").and_then(|e| normalize_etag(&e)),
        })
    }

    fn upload_part(
        &self,
        up: &Upload<'_>,
        parts: &Parts,
        upload_id: &str,
        index: usize,
        part_sha: &str,
    ) -> Result<String, StoreError> {
        let Body::File(file) = up.body else {
            return Err(StoreError::permanent("multipart upload needs a file"));
        };
        let action = format!("upload part {} of", index + 1);
        if crate::signal::stop_requested() {
            return Err(StoreError::permanent(format!(
                "multipart upload of {} interrupted by a stop signal",
                up.key
            )));
        }
        let offset = parts.size * index as u64;
        let len = parts.size.min(up.size.saturating_sub(offset));
        let number = (index + 1).to_string();
        let headers = [("x-amz-checksum-sha256", checksum(part_sha)?)];
        let call = Call {
            query: &[("partNumber", &number), ("uploadId", upload_id)],
            headers: &headers,
            payload: Payload::File {
                file,
                offset,
                len,
                sha256: part_sha,
            },
            ..Call::new("PUT", up.key)
        };
        let answer = self.expect(&action, &call)?;
        let etag = answer.header("etag").map(str::to_string).ok_or_else(|| {
            StoreError::permanent(format!("{action} {}: no ETag in the answer", up.key))
        })?;
        answer
            .finish()
            .map_err(|e| self.classify(&action, up.key, e))?;
        Ok(etag)
    }

    /// One page of ListObjectsV2.
    fn list_page(&self, prefix: &str, token: Option<&str>) -> Result<Page, StoreError> {
        let mut query = vec![
            ("list-type", "2"),
            ("max-keys", LIST_PAGE),
            ("prefix", prefix),
        ];
        if let Some(t) = token {
            query.push(("continuation-token", t));
        }
        let call = Call {
            query: &query,
            ..Call::new("GET", "")
        };
        let answer = self.expect("list", &call)?;
        let body = answer
            .text()
            .map_err(|e| self.classify("list", prefix, e))?;
        Ok(Page {
            objects: xml::elements(&body, "Contents")
                .filter_map(|c| {
                    Some(Listed {
                        key: xml::field(c, "Key")?,
                        size: xml::field(c, "Size")?.trim().parse().ok()?,
                        modified: xml::field(c, "LastModified")
                            .and_then(|t| crate::timefmt::parse_iso8601(&t)),
                    })
                })
                .collect(),
            truncated: xml::field(&body, "IsTruncated").as_deref() == Some("true"),
            next: xml::field(&body, "NextContinuationToken").filter(|t| !t.is_empty()),
        })
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{} at {}", self.name, self.endpoint_label)
    }

    fn url(&self, key: &str) -> String {
        self.client.url(key)
    }

    fn check(&self) -> Result<(), StoreError> {
        let call = Call {
            query: &[("list-type", "2"), ("max-keys", "1")],
            ..Call::new("GET", "")
        };
        let answer = self
            .client
            .expect(&call)
            .map_err(|e| self.classify("list bucket", &self.name, e))?;
        answer
            .finish()
            .map_err(|e| self.classify("list bucket", &self.name, e))?;
        if self.options.object_lock.is_some() {
            self.check_object_lock()?;
        }
        Ok(())
    }

    /// HEAD in checksum mode, so servers that keep a full-object SHA-256
    /// (computed from the bytes they received) return it.
    fn head(&self, key: &str) -> Result<Option<RemoteObject>, StoreError> {
        let headers = [("x-amz-checksum-mode", "ENABLED".to_string())];
        let call = Call {
            headers: &headers,
            ..Call::new("HEAD", key)
        };
        let answer = self
            .client
            .send(&call)
            .map_err(|e| self.classify("HEAD", key, e))?;
        match answer.status {
            200..=299 => self.remote_object(key, &answer).map(Some),
            404 => Ok(None),
            status => Err(self.classify("HEAD", key, EngineError::from_head(status))),
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let answer = self.expect("GET", &Call::new("GET", key))?;
        answer.bytes().map_err(|e| self.classify("GET", key, e))
    }

    /// GET in checksum mode: the stored checksum and metadata come with the
    /// bytes, so one request proves the object and shows what it claims.
    fn read_object(&self, key: &str, sink: &mut dyn Write) -> Result<Option<ReadBack>, StoreError> {
        let headers = [("x-amz-checksum-mode", "ENABLED".to_string())];
        let call = Call {
            headers: &headers,
            ..Call::new("GET", key)
        };
        let mut answer = self
            .client
            .send(&call)
            .map_err(|e| self.classify("GET", key, e))?;
        match answer.status {
            200..=299 => {}
            404 => return Ok(None),
            status => {
                let body = answer.text().unwrap_or_default();
                return Err(self.classify("GET", key, EngineError::from_answer(status, &body)));
            }
        }
        let (meta_sha256, checksum_sha256) = (meta_sha256(&answer), whole_checksum(&answer));
        // A body cut short (fewer bytes than Content-Length) is a read
        // error here, retried like any transport failure: it proves nothing.
        let (size, sha256) = stream_hashed(&mut answer.reader(), sink).map_err(|e| match e {
            CopyError::Read(e) => StoreError::transient(format!(
                "GET {key}: the answer from {} broke off ({e})",
                self.endpoint_label
            )),
            CopyError::Write(e) => StoreError::permanent(format!("cannot write {key}: {e}")),
        })?;
        Ok(Some(ReadBack {
            size,
            sha256,
            meta_sha256,
            checksum_sha256,
            identity: None,
        }))
    }

    fn list_all(&self, prefix: &str, each: &mut dyn FnMut(Listed)) -> Result<(), StoreError> {
        let mut pages = Pages::new(self, prefix);
        while let Some(page) = pages.next_page()? {
            for o in page {
                each(o);
            }
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let answer = self.expect("DELETE", &Call::new("DELETE", key))?;
        answer.finish().map_err(|e| self.classify("DELETE", key, e))
    }

    fn put(&self, upload: &Upload<'_>) -> Result<PutReceipt, StoreError> {
        match upload.parts {
            Some(parts) if parts.sha256.len() > 1 => self.put_multipart(upload, parts),
            _ => self.put_single(upload),
        }
    }

    fn list(
        &self,
        prefix: &str,
        last: &str,
        max_pages: usize,
        seen: &mut dyn FnMut(&str),
    ) -> Result<bool, StoreError> {
        let mut pages = Pages::new(self, prefix);
        for _ in 0..max_pages {
            let Some(page) = pages.next_page()? else {
                return Ok(true);
            };
            for o in &page {
                seen(&o.key);
            }
            if pages.done || page.last().is_some_and(|o| o.key.as_str() > last) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Walks the pages of one listing. A server that says "more" without a way
/// on (no continuation token), or gives a token it gave before, would make
/// a naive loop page forever, growing with every page: either is an error
/// naming the server. A stop signal ends the walk between pages.
struct Pages<'a> {
    store: &'a S3Store,
    prefix: &'a str,
    /// The token of the next page; `None` before the first and after the last.
    next: Option<String>,
    done: bool,
    /// Every token given so far: a repeat is a loop.
    tokens: HashSet<String>,
    /// The last key of the pages so far: keys must come in S3's order.
    last: Option<String>,
}

impl<'a> Pages<'a> {
    fn new(store: &'a S3Store, prefix: &'a str) -> Pages<'a> {
        Pages {
            store,
            prefix,
            next: None,
            done: false,
            tokens: HashSet::new(),
            last: None,
        }
    }

    /// The next page's objects; `Ok(None)` once the listing is complete.
    fn next_page(&mut self) -> Result<Option<Vec<Listed>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        if crate::signal::stop_requested() {
            return Err(StoreError::permanent(format!(
                "listing {} at {}: stopped by a signal",
                self.prefix, self.store.endpoint_label
            )));
        }
        let page = self.store.list_page(self.prefix, self.next.as_deref())?;
        // Whoever merges a listing with sorted records (verify) relies on
        // S3's key order; a page out of order is refused before any of it
        // is used.
        for o in &page.objects {
            if let Some(prev) = self.last.as_ref().filter(|p| o.key <= **p) {
                return Err(StoreError::permanent(format!(
                    "listing {} at {}: the server lists keys out of order (or twice): {} came after {prev}",
                    self.prefix, self.store.endpoint_label, o.key
                )));
            }
            self.last = Some(o.key.clone());
        }
        let broken = |why: &str| {
            StoreError::permanent(format!(
                "listing {} at {}: the server says there is more but {why}: its listing cannot be trusted (a bug or a proxy in the way)",
                self.prefix, self.store.endpoint_label
            ))
        };
        match (page.truncated, page.next) {
            (false, _) => self.done = true,
            (true, None) => return Err(broken("gives no continuation token")),
            (true, Some(t)) if !self.tokens.insert(t.clone()) => {
                return Err(broken("repeats a continuation token it gave before"));
            }
            (true, Some(t)) => self.next = Some(t),
        }
        Ok(Some(page.objects))
    }
}

/// One page of a listing, as the server described it.
struct Page {
    objects: Vec<Listed>,
    truncated: bool,
    next: Option<String>,
}

/// A count from an XML field; `None` when absent, not a number, or 0
/// (moto writes `<Years>0</Years>` beside `<Days>30</Days>`).
fn positive(field: Option<String>) -> Option<u32> {
    field
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
}

/// `x-amz-checksum-sha256` (base64) of a hex SHA-256.
fn checksum(sha256: &str) -> Result<String, StoreError> {
    hex_to_base64(sha256).ok_or_else(|| StoreError::permanent(format!("invalid sha256 '{sha256}'")))
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

/// The `sha256` metadata of a HEAD or GET answer.
fn meta_sha256(answer: &Answer) -> Option<String> {
    answer
        .header("x-amz-meta-sha256")
        .map(str::to_ascii_lowercase)
}

/// The server's stored SHA-256 (hex) when it covers the whole object. A
/// multipart object's checksum is usually a checksum of the part
/// checksums, not of the bytes; some servers (moto) do not mark it as such.
/// Only a checksum known to cover the whole object is compared with a
/// file's SHA-256.
fn whole_checksum(answer: &Answer) -> Option<String> {
    let whole = match answer.header("x-amz-checksum-type") {
        Some(t) => t.eq_ignore_ascii_case("FULL_OBJECT"),
        None => !answer
            .header("etag")
            .and_then(normalize_etag)
            .is_some_and(|e| is_multipart_etag(&e)),
    };
    answer
        .header("x-amz-checksum-sha256")
        .filter(|_| whole)
        .and_then(base64_to_hex)
}

/// `"abc"`, `&quot;abc&quot;` or `abc` → `abc`; `None` when empty.
fn normalize_etag(raw: &str) -> Option<String> {
    let e = raw.trim().replace("&quot;", "").replace('"', "");
    let e = e.trim().trim_start_matches("W/").to_string();
    (!e.is_empty()).then_some(e)
}

/// `0123abcd-3`: the ETag S3 gives an object assembled from 3 parts.
fn is_multipart_etag(etag: &str) -> bool {
    etag.rsplit_once('-')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The hex form of a base64 full-object SHA-256; `None` for anything else
/// (a composite multipart checksum `...-3`, a truncated value).
fn base64_to_hex(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (raw.len() == 32).then(|| hex(&raw))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_configurations() {
        use super::{LockConfig, Retention};
        let doc = |inner: &str| {
            format!(
                "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{inner}</ObjectLockConfiguration>"
            )
        };
        let moto = doc(
            "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>30</Days><Years>0</Years></DefaultRetention></Rule>",
        );
        let c = LockConfig::parse(&moto);
        assert_eq!(
            c,
            LockConfig::Enabled {
                default: Some(Retention {
                    mode: "GOVERNANCE".into(),
                    days: Some(30),
                    years: None
                })
            }
        );
        assert_eq!(
            c.describe(),
            "enabled, default retention GOVERNANCE 30 days"
        );
        let years = doc(
            "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>7</Years></DefaultRetention></Rule>",
        );
        assert_eq!(
            LockConfig::parse(&years).describe(),
            "enabled, default retention COMPLIANCE 7 years"
        );
        let bare = doc("<ObjectLockEnabled>Enabled</ObjectLockEnabled>");
        assert_eq!(
            LockConfig::parse(&bare).describe(),
            "enabled, no default retention"
        );
        assert!(matches!(LockConfig::parse("<x/>"), LockConfig::Absent(_)));
    }

    #[test]
    fn retain_until_is_days_ahead_in_utc() {
        let lock = super::ObjectLock {
            mode: "GOVERNANCE".into(),
            days: 1,
        };
        let at = crate::timefmt::from_unix(1_709_210_096);
        assert_eq!(lock.retain_until(at), "2024-03-01T12:34:56Z");
    }

    #[test]
    fn multipart_etags() {
        assert!(super::is_multipart_etag(
            "9b2cf535f27731c974343645a3985328-3"
        ));
        assert!(!super::is_multipart_etag(
            "9b2cf535f27731c974343645a3985328"
        ));
        assert!(!super::is_multipart_etag("dev-ino"));
    }
}
