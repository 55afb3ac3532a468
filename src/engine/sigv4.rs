//! AWS Signature Version 4 for requests whose payload hash we already know.
//!
//! rust-s3 signs by hashing the body itself (twice, plus MD5). We sign with
//! the SHA-256 the digest step took from the file, so the bytes are hashed
//! once; the server recomputes it from what arrives and refuses a mismatch.
//! The canonical-request and key-derivation helpers are rust-s3's own
//! (`s3::signing`), so only the order of calls lives here.

use hmac::Mac;
use http::{HeaderMap, HeaderValue};
use s3::Region;
use s3::signing;
use time::OffsetDateTime;
use url::Url;

use super::error::EngineError;
use crate::digest::hex;

/// `x-amz-content-sha256` of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Who signs, for which region.
pub struct Signer {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    pub region: Region,
}

impl Signer {
    /// Adds `x-amz-date`, `x-amz-content-sha256`, the session token and the
    /// `Authorization` header to `headers`, which must already hold `host`
    /// and every other header to be signed.
    pub fn sign(
        &self,
        method: &str,
        url: &Url,
        headers: &mut HeaderMap,
        payload_sha256: &str,
    ) -> Result<(), EngineError> {
        self.sign_at(
            method,
            url,
            headers,
            payload_sha256,
            OffsetDateTime::now_utc(),
        )
    }

    fn sign_at(
        &self,
        method: &str,
        url: &Url,
        headers: &mut HeaderMap,
        payload_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<(), EngineError> {
        let value = |v: &str| {
            HeaderValue::from_str(v).map_err(|e| EngineError::Request(format!("bad header: {e}")))
        };
        headers.insert("x-amz-date", value(&long_datetime(&now))?);
        headers.insert("x-amz-content-sha256", value(payload_sha256)?);
        if let Some(token) = &self.session_token {
            headers.insert("x-amz-security-token", value(token)?);
        }
        let failed =
            |e: s3::error::S3Error| EngineError::Request(format!("cannot sign the request: {e}"));
        let canonical =
            signing::canonical_request(method, url, headers, payload_sha256).map_err(failed)?;
        let to_sign = signing::string_to_sign(&now, &self.region, &canonical).map_err(failed)?;
        let key =
            signing::signing_key(&now, &self.secret_key, &self.region, "s3").map_err(failed)?;
        let mut mac = signing::HmacSha256::new_from_slice(&key)
            .map_err(|e| EngineError::Request(format!("cannot sign the request: {e}")))?;
        mac.update(to_sign.as_bytes());
        let signature = hex(&mac.finalize().into_bytes());
        let auth = signing::authorization_header(
            &self.access_key,
            &now,
            &self.region,
            &signing::signed_header_string(headers),
            &signature,
        )
        .map_err(failed)?;
        headers.insert(http::header::AUTHORIZATION, value(&auth)?);
        Ok(())
    }
}

/// `20261123T101500Z`.
fn long_datetime(t: &OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of AWS's "Signature Calculations for the
    /// Authorization Header" page (GET Object with a Range header).
    #[test]
    fn matches_the_aws_documentation_example() {
        let signer = Signer {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            region: Region::UsEast1,
        };
        let url = Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        headers.insert("range", HeaderValue::from_static("bytes=0-9"));
        let now = OffsetDateTime::from_unix_timestamp(1_369_353_600).unwrap(); // 2013-05-24
        signer
            .sign_at("GET", &url, &mut headers, EMPTY_SHA256, now)
            .unwrap();
        assert_eq!(headers["x-amz-date"], "20130524T000000Z");
        assert_eq!(
            headers["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}
