//! S3 and S3-compatible stores (AWS, MinIO, Ceph, Garage...) on blocking rust-s3.
//!
//! Every PUT carries `x-amz-meta-sha256` (what the suite wrote and what HEAD
//! verification reads back) and a SigV4-signed payload hash, so the server
//! rejects a body damaged in transit. Single PUTs also send
//! `x-amz-checksum-sha256` of the whole object. Multipart uploads use our own
//! part size and the shared memory budget, re-hash the parts on the way out,
//! and are aborted on any failure so no orphaned parts stay behind.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use s3::Bucket;
use s3::Region;
use s3::error::S3Error;
use sha2::{Digest, Sha256};

use super::{Body, PutReceipt, RemoteObject, Store, StoreError};
use crate::aws::S3Settings;
use crate::budget::MemoryBudget;
use crate::digest::{hex, hex_to_base64};
use crate::error::{Error, Result as AppResult};

/// How long one HTTP request may take before it counts as a transient failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// One bucket on one endpoint.
pub struct S3Store {
    bucket: Box<Bucket>,
    name: String,
    endpoint_label: String,
    part_size: u64,
}

impl S3Store {
    /// Builds the client; no network traffic happens here.
    pub fn new(bucket_name: &str, settings: &S3Settings, part_size: u64) -> AppResult<S3Store> {
        // We retry ourselves (--retries), with our own notion of what is safe to repeat.
        s3::set_retries(0);
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
        let creds = s3::creds::Credentials::new(
            Some(&settings.credentials.access_key),
            Some(&settings.credentials.secret_key),
            None,
            settings.credentials.session_token.as_deref(),
            None,
        )
        .map_err(|e| Error::usage(format!("S3 credentials are not usable: {e}")))?;
        let mut bucket = Bucket::new(bucket_name, region, creds)
            .map_err(|e| Error::usage(format!("cannot set up bucket '{bucket_name}': {e}")))?;
        if settings.endpoint.is_some() {
            bucket.set_path_style();
        }
        bucket.set_request_timeout(Some(REQUEST_TIMEOUT));
        let endpoint_label = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("AWS {}", settings.region));
        Ok(S3Store {
            bucket,
            name: bucket_name.to_string(),
            endpoint_label,
            part_size,
        })
    }

    /// A presigned GET URL for `key`, valid `expires` seconds (no network traffic).
    pub fn presign_get(&self, key: &str, expires: u32) -> Result<String, StoreError> {
        self.bucket
            .presign_get(key, expires, None)
            .map_err(|e| self.classify("presign", key, e))
    }

    /// `fgbackup doctor`: does the server check `x-amz-checksum-sha256`?
    /// Sends a small PUT whose checksum is wrong; `Ok(true)` when refused.
    /// An accepted probe object is deleted again.
    pub fn rejects_bad_checksum(&self, key: &str) -> Result<bool, StoreError> {
        let body = b"fgbackup doctor checksum probe\n";
        let wrong = hex_to_base64(&"00".repeat(32)).unwrap_or_default();
        let response = self
            .bucket
            .put_object_builder(key, body)
            .with_header("x-amz-checksum-sha256", &wrong)
            .and_then(|r| r.with_header("If-None-Match", "*"))
            .and_then(|r| r.execute())
            .map_err(|e| self.classify("PUT", key, e))?;
        match response.status_code() {
            200..=299 => {
                self.delete(key)?;
                Ok(false)
            }
            400 | 500 => {
                // Some servers (s3s-fs) store the bytes before checking them.
                let _ = self.delete(key);
                Ok(true)
            }
            status => Err(self.status_error("PUT", key, status, "")),
        }
    }

    /// Turns a request result into its response, or a classified error for
    /// a transport failure or a non-2xx status.
    fn expect_2xx(
        &self,
        action: &str,
        key: &str,
        result: Result<s3::request::ResponseData, S3Error>,
    ) -> Result<s3::request::ResponseData, StoreError> {
        let response = result.map_err(|e| self.classify(action, key, e))?;
        let status = response.status_code();
        if (200..300).contains(&status) {
            Ok(response)
        } else {
            Err(self.status_error(
                action,
                key,
                status,
                &String::from_utf8_lossy(response.as_slice()),
            ))
        }
    }

    fn classify(&self, action: &str, key: &str, err: S3Error) -> StoreError {
        match err {
            // A certificate problem does not heal by retrying.
            S3Error::Atto(e) if e.to_string().contains("certificate") => {
                StoreError::permanent(format!(
                    "{action} {key}: TLS to {} failed ({e}); if the endpoint uses a private CA, pass --ca-file with its PEM",
                    self.endpoint_label
                ))
            }
            S3Error::Atto(e) if is_unreachable(&e) => StoreError::unreachable(format!(
                "{action} {key}: cannot reach {} ({e})",
                self.endpoint_label
            )),
            S3Error::Atto(e) => StoreError::transient(format!(
                "{action} {key}: no answer from {} ({e})",
                self.endpoint_label
            )),
            S3Error::Io(e) => StoreError::transient(format!("{action} {key}: I/O error ({e})")),
            S3Error::HttpFailWithBody(status, body) => {
                self.status_error(action, key, status, &body)
            }
            other => StoreError::permanent(format!("{action} {key}: {other}")),
        }
    }

    fn status_error(&self, action: &str, key: &str, status: u16, body: &str) -> StoreError {
        let code = xml_field(body, "Code").unwrap_or_default();
        let message = xml_field(body, "Message").unwrap_or_default();
        let detail = match (code.is_empty(), message.is_empty()) {
            (true, _) => format!("HTTP {status}"),
            (false, true) => format!("HTTP {status} {code}"),
            (false, false) => format!("HTTP {status} {code}: {message}"),
        };
        let text = format!("{action} {key}: {detail}");
        match (status, code.as_str()) {
            (412, _) => StoreError::exists(format!(
                "{action} {key}: an object appeared at this key (HTTP 412 to If-None-Match); it was not replaced"
            )),
            (500..=599 | 429 | 408 | 409, _) | (_, "BadDigest" | "RequestTimeout" | "SlowDown") => {
                StoreError::transient(text)
            }
            (404, "NoSuchBucket") => StoreError::permanent(format!(
                "bucket '{}' does not exist at {}: create it or fix --bucket/BUCKET",
                self.name, self.endpoint_label
            )),
            (403, _) | (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied") => {
                StoreError::permanent(format!(
                    "{text} (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile, and the bucket policy)"
                ))
            }
            _ => StoreError::permanent(text),
        }
    }

    /// One PUT with `If-None-Match: *`: a server that honours it (AWS since
    /// 2024, MinIO, s3s) refuses to replace an object that appeared since the
    /// probe; verification catches the others.
    fn put_single(&self, key: &str, data: &[u8], sha256: &str) -> Result<PutReceipt, StoreError> {
        let checksum = hex_to_base64(sha256)
            .ok_or_else(|| StoreError::permanent(format!("invalid sha256 '{sha256}'")))?;
        let request = self
            .bucket
            .put_object_builder(key, data)
            .with_content_type(content_type(key))
            .with_metadata("sha256", sha256)
            .and_then(|r| r.with_header("x-amz-checksum-sha256", checksum))
            .and_then(|r| r.with_header("If-None-Match", "*"))
            .map_err(|e| self.classify("PUT", key, e))?;
        let response = self.expect_2xx("PUT", key, request.execute())?;
        // rust-s3 hands back the ETag header as the body of a PUT answer.
        Ok(PutReceipt {
            version: response.as_str().ok().and_then(normalize_etag),
        })
    }

    fn put_multipart(
        &self,
        key: &str,
        file: &mut File,
        size: u64,
        sha256: &str,
        budget: &Arc<MemoryBudget>,
    ) -> Result<PutReceipt, StoreError> {
        file.seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::permanent(format!("cannot rewind source file: {e}")))?;
        // Metadata belongs on the initiate request only.
        let mut init_bucket = (*self.bucket).clone();
        init_bucket.add_header("x-amz-meta-sha256", sha256);
        let init = init_bucket
            .initiate_multipart_upload(key, content_type(key))
            .map_err(|e| self.classify("initiate multipart upload of", key, e))?;
        let upload_id = init.upload_id;
        let result = self.upload_parts(key, &upload_id, file, size, sha256, budget);
        if let Err(err) = result {
            if let Err(abort_err) = self.bucket.abort_upload(key, &upload_id) {
                // A part failure may already have aborted it (rust-s3 does so on
                // non-2xx parts); anything else is worth a warning.
                log::warn!(
                    "could not abort multipart upload of {key} (upload id {upload_id}): {}",
                    self.classify("abort", key, abort_err)
                );
            }
            return Err(err);
        }
        result
    }

    fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &mut File,
        size: u64,
        sha256: &str,
        budget: &Arc<MemoryBudget>,
    ) -> Result<PutReceipt, StoreError> {
        let ctype = content_type(key);
        let mut hasher = Sha256::new();
        let mut parts = Vec::new();
        let mut sent = 0u64;
        let mut number = 1u32;
        while sent < size {
            if crate::signal::stop_requested() {
                return Err(StoreError::permanent(format!(
                    "multipart upload of {key} interrupted by a stop signal"
                )));
            }
            let len = usize::try_from((size - sent).min(self.part_size))
                .map_err(|_| StoreError::permanent("part size does not fit in memory"))?;
            let mut buffer = budget.buffer(len);
            file.read_exact(&mut buffer.data).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    StoreError::changed(
                        "the source file became shorter while it was being uploaded",
                    )
                } else {
                    StoreError::permanent(format!("cannot read source file: {e}"))
                }
            })?;
            hasher.update(&buffer.data);
            let part = self
                .bucket
                .put_multipart_chunk(&buffer.data, key, number, upload_id, ctype)
                .map_err(|e| self.classify(&format!("upload part {number} of"), key, e))?;
            drop(buffer);
            parts.push(part);
            sent += len as u64;
            number += 1;
        }
        if hex(&hasher.finalize()) != sha256 {
            return Err(StoreError::changed(
                "the source file changed between hashing and uploading",
            ));
        }
        // The object appears only now: the no-replace condition belongs here.
        let mut complete_bucket = (*self.bucket).clone();
        complete_bucket.add_header("If-None-Match", "*");
        let result = complete_bucket.complete_multipart_upload(key, upload_id, parts);
        let response = self.expect_2xx("complete multipart upload of", key, result)?;
        let body = String::from_utf8_lossy(response.as_slice());
        // S3 may answer 200 and put the error in the body.
        if let Some(code) = xml_field(&body, "Code") {
            return Err(self.status_error(
                "complete multipart upload of",
                key,
                if code == "PreconditionFailed" {
                    412
                } else {
                    500
                },
                &body,
            ));
        }
        Ok(PutReceipt {
            version: xml_field(&body, "ETag").and_then(|e| normalize_etag(&e)),
        })
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{} at {}", self.name, self.endpoint_label)
    }

    fn url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.bucket.url(),
            s3::signing::uri_encode(key, false)
        )
    }

    fn check(&self) -> Result<(), StoreError> {
        // A one-key ListObjectsV2, sent raw so that the error document (and
        // its code, e.g. NoSuchBucket) reaches us instead of an XML parse error.
        let mut probe = (*self.bucket).clone();
        probe.add_query("list-type", "2");
        probe.add_query("max-keys", "1");
        self.expect_2xx("list bucket", &self.name, probe.get_object(""))
            .map(drop)
    }

    /// HEAD in checksum mode, so servers that keep a full-object SHA-256
    /// (computed from the bytes they received) return it.
    fn head(&self, key: &str) -> Result<Option<RemoteObject>, StoreError> {
        use s3::request::Request as _;
        let mut bucket = (*self.bucket).clone();
        bucket.add_header("x-amz-checksum-mode", "ENABLED");
        let (headers, status) =
            s3::request::blocking::AttoRequest::new(&bucket, key, s3::command::Command::HeadObject)
                .and_then(|r| r.response_header())
                .map_err(|e| self.classify("HEAD", key, e))?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        match status {
            200..=299 => {
                let size = header("content-length")
                    .and_then(|l| l.parse::<u64>().ok())
                    .ok_or_else(|| {
                        StoreError::permanent(format!(
                            "HEAD {key}: no Content-Length in the answer"
                        ))
                    })?;
                Ok(Some(RemoteObject {
                    size,
                    sha256: header("x-amz-meta-sha256").map(|s| s.to_ascii_lowercase()),
                    checksum_sha256: header("x-amz-checksum-sha256")
                        .and_then(|b| base64_to_hex(&b)),
                    version: header("etag").and_then(|e| normalize_etag(&e)),
                }))
            }
            404 => Ok(None),
            _ => Err(self.status_error("HEAD", key, status, "")),
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.expect_2xx("GET", key, self.bucket.get_object(key))
            .map(|r| r.as_slice().to_vec())
    }

    fn hash_object(&self, key: &str) -> Result<Option<(u64, String)>, StoreError> {
        let mut sink = HashingSink::default();
        let status = self
            .bucket
            .get_object_to_writer(key, &mut sink)
            .map_err(|e| self.classify("GET", key, e))?;
        match status {
            200..=299 => Ok(Some((sink.bytes, hex(&sink.hasher.finalize())))),
            404 => Ok(None),
            _ => Err(self.status_error("GET", key, status, "")),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.expect_2xx("DELETE", key, self.bucket.delete_object(key))
            .map(drop)
    }

    fn put(
        &self,
        key: &str,
        body: Body<'_>,
        sha256: &str,
        budget: &Arc<MemoryBudget>,
    ) -> Result<PutReceipt, StoreError> {
        match body {
            Body::Memory(data) => self.put_single(key, data, sha256),
            Body::File { file, size } => self.put_multipart(key, file, size, sha256, budget),
        }
    }
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

/// Hashes a GET body as it streams by, so read-back needs no buffer.
#[derive(Default)]
struct HashingSink {
    hasher: Sha256,
    bytes: u64,
}

impl std::io::Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// True for transport errors that mean nobody answers at the endpoint.
fn is_unreachable(e: &attohttpc::Error) -> bool {
    match e.kind() {
        attohttpc::ErrorKind::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::HostUnreachable
                | std::io::ErrorKind::NetworkUnreachable
                | std::io::ErrorKind::AddrNotAvailable
                | std::io::ErrorKind::NotConnected
                | std::io::ErrorKind::TimedOut
        ),
        _ => false,
    }
}

/// `"abc"`, `&quot;abc&quot;` or `abc` → `abc`; `None` when empty.
fn normalize_etag(raw: &str) -> Option<String> {
    let e = raw.trim().replace("&quot;", "").replace('"', "");
    let e = e.trim().trim_start_matches("W/").to_string();
    (!e.is_empty()).then_some(e)
}

/// The hex form of a base64 full-object SHA-256; `None` for anything else
/// (a composite multipart checksum `...-3`, a truncated value).
fn base64_to_hex(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (raw.len() == 32).then(|| hex(&raw))
}

/// The text of the first `<name>...</name>` in an S3 error document.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_error_code() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(xml_field("", "Code"), None);
    }
}
