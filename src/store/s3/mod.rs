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

mod errors;
mod listing;
mod lock;
mod multipart;

use listing::Pages;

pub use lock::{LockConfig, ObjectLock};

use std::sync::Arc;
use std::time::SystemTime;

use s3::Bucket;
use s3::Region;
use std::io::Write;

use super::{
    Body, CopyError, Listed, PutReceipt, ReadBack, RemoteObject, Store, StoreError, Upload,
    stream_hashed,
};
use crate::aws::S3Settings;
use crate::digest::{hex, hex_to_base64};
use crate::engine::client::{Answer, Call, Client, Payload, Settings};
use crate::engine::error::EngineError;
use crate::engine::sigv4::Signer;
use crate::engine::throttle::Throttle;
use crate::error::{Error, Result as AppResult};

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
