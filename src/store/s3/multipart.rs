//! Files above the multipart cutoff: parts hashed by the same read that
//! hashed the file, sent one by one, the upload aborted on any failure so
//! no parts stay behind.

use super::{S3Store, checksum, normalize_etag};
use crate::digest::Parts;
use crate::engine::client::{Call, Payload};
use crate::engine::error::EngineError;
use crate::engine::xml;
use crate::store::{Body, PutReceipt, StoreError, Upload};

impl S3Store {
    pub(super) fn put_multipart(
        &self,
        up: &Upload<'_>,
        parts: &Parts,
    ) -> Result<PutReceipt, StoreError> {
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
}
