//! The headers of the push protocol, parsed and written in one place for
//! the server (`api::upload`) and the client (`push::client`).
//!
//! - The body's SHA-256: `X-Content-SHA256: <64 hex>` (what curl users
//!   type, `sha256sum` output), or RFC 9530's `Repr-Digest:
//!   sha-256=:<base64>:`. Both given must agree.
//! - Resuming (as tus does it): `HEAD` answers `Upload-Offset` (bytes held)
//!   and `Upload-Length`; the rest comes as `PATCH` with `Upload-Offset`, or
//!   as `PUT` with `Content-Range: bytes START-END/TOTAL`.

use base64::Engine;

/// Header names, once.
pub const SHA256: &str = "X-Content-SHA256";
pub const REPR_DIGEST: &str = "Repr-Digest";
pub const UPLOAD_OFFSET: &str = "Upload-Offset";
pub const UPLOAD_LENGTH: &str = "Upload-Length";
pub const CONTENT_RANGE: &str = "Content-Range";

/// The body's SHA-256 (lowercase hex) from either header; `Err` says why
/// not.
pub fn digest(x_sha: Option<&str>, repr: Option<&str>) -> Result<String, String> {
    let hex = match x_sha {
        Some(v) => {
            let v = v.trim();
            if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "{SHA256} must be 64 hex digits (sha256sum's output)"
                ));
            }
            Some(v.to_ascii_lowercase())
        }
        None => None,
    };
    let repr = match repr {
        Some(v) => Some(
            repr_digest(v)
                .ok_or_else(|| format!("{REPR_DIGEST} must hold sha-256=:BASE64: (RFC 9530)"))?,
        ),
        None => None,
    };
    match (hex, repr) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "{SHA256} and {REPR_DIGEST} name different digests: send one"
        )),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(format!(
            "the body's SHA-256 is required: send '{SHA256}: <hex>' (or '{REPR_DIGEST}: sha-256=:<base64>:')"
        )),
    }
}

/// The sha-256 member of a `Repr-Digest` dictionary, as hex.
fn repr_digest(v: &str) -> Option<String> {
    v.split(',').find_map(|member| {
        let (alg, value) = member.trim().split_once('=')?;
        if !alg.trim().eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let b64 = value.trim().strip_prefix(':')?.strip_suffix(':')?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        (bytes.len() == 32).then(|| crate::push::token::hex(&bytes))
    })
}

/// `sha-256=:<base64>:` for a hex digest.
#[cfg(test)]
pub fn repr_digest_of(hex: &str) -> Option<String> {
    let bytes = crate::push::token::decode_hex(hex)?;
    Some(format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// `bytes START-END/TOTAL` → (start, total), with END = START + length - 1.
pub fn content_range(v: &str, length: u64) -> Result<(u64, u64), String> {
    let bad = || format!("{CONTENT_RANGE} must be 'bytes START-END/TOTAL' matching Content-Length");
    let spec = v.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| -> Result<u64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (start, end, total) = (num(start)?, num(end)?, num(total)?);
    if end < start || end >= total || end - start + 1 != length {
        return Err(bad());
    }
    Ok((start, total))
}

/// A whole number header (`Upload-Offset`).
pub fn number(v: &str) -> Option<u64> {
    let v = v.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn both_digest_headers_name_the_same_hash() {
        let repr = repr_digest_of(HEX).unwrap();
        assert_eq!(
            repr,
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
        assert_eq!(digest(Some(HEX), None).unwrap(), HEX);
        assert_eq!(digest(None, Some(&repr)).unwrap(), HEX);
        assert_eq!(digest(Some(&HEX.to_uppercase()), Some(&repr)).unwrap(), HEX);
        assert_eq!(
            digest(None, Some(&format!("sha-512=:AAAA:, {repr}"))).unwrap(),
            HEX
        );
        let other = "0".repeat(64);
        assert!(digest(Some(&other), Some(&repr)).is_err());
        assert!(digest(None, None).is_err());
        assert!(digest(Some("abc"), None).is_err());
        assert!(digest(None, Some("sha-256=:AAAA:")).is_err());
    }

    #[test]
    fn content_ranges_must_match_the_length() {
        assert_eq!(content_range("bytes 100-199/1000", 100), Ok((100, 1000)));
        assert_eq!(content_range("bytes 0-999/1000", 1000), Ok((0, 1000)));
        for bad in [
            "bytes 100-199/150",
            "bytes 100-199/*",
            "bytes -199/1000",
            "bytes 200-100/1000",
            "100-199/1000",
            "bytes +1-100/1000",
        ] {
            assert!(content_range(bad, 100).is_err(), "{bad}");
        }
        assert!(content_range("bytes 100-199/1000", 99).is_err());
        assert_eq!(number("42"), Some(42));
        assert_eq!(number("+42"), None);
        assert_eq!(number(""), None);
    }
}
