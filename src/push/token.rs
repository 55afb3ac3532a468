//! Upload tokens: `fgpush1.PAYLOAD.MAC`.
//!
//! - `fgpush1.` is the version and the only one: no algorithm field to
//!   negotiate (the lesson of JWT's `alg` and of PASETO's versions). A
//!   token of another version is refused, not interpreted.
//! - PAYLOAD is the base64url (no padding) of a JSON object: the token's
//!   id, prefix, limits and expiry ([`Claims`]).
//! - MAC is the base64url of HMAC-SHA256 over `fgpush1.PAYLOAD` (the
//!   version is bound too) under the key file of `fgbackup token keygen`.
//!
//! The MAC is checked (in constant time, by aws-lc) before the payload is
//! decoded, so nothing of an unsigned token is ever parsed. What a token
//! may still do (revoked? used up?) is its inventory row's business; the
//! payload only says what it was issued for. docs/PUSH.md has the format.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The version prefix every token starts with.
pub const VERSION: &str = "fgpush1.";

/// Where `token keygen` writes and the server reads the key by default:
/// beside the suite's database, apart from the manifest key.
pub const DEFAULT_KEY_PATH: &str = "/var/lib/backup_fg/push-token.key";

/// Longest lifetime without `--force`.
pub const MAX_LIFETIME_SECS: u64 = 30 * 86_400;

/// Bytes of key material (256 bits, HMAC-SHA256's block-sized security).
const KEY_BYTES: usize = 32;

/// Longest token accepted for checking: a real one is about 250 bytes; a
/// header of megabytes is refused before any work.
const MAX_TOKEN_LEN: usize = 2048;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// What a token was issued for: signed, so it cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// 16 hex digits, random; the inventory row's key.
    pub id: String,
    /// Keys it may write start with this (ends with `/`).
    pub prefix: String,
    /// Unix seconds after which it is refused.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    /// Names need not end in `.gz`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_name: bool,
}

/// Why a token was refused before its row was looked at: both are 401.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not of our format or version.
    Malformed,
    /// The MAC does not match: edited, or signed with another key.
    BadMac,
}

/// The HMAC key of the tokens.
pub struct Key(hmac::Key);

impl Key {
    /// Reads the key file, which must be private to its owner.
    pub fn load(path: &Path) -> Result<Key> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::usage(format!(
                "upload token key {shown} cannot be read ({e}): create it with 'fgbackup token keygen --token-key {shown}'"
            ))
        })?;
        if meta.mode() & 0o077 != 0 {
            return Err(Error::usage(format!(
                "upload token key {shown} is readable by others (mode {:o}): chmod 600 {shown}",
                meta.mode() & 0o777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let bytes = decode_hex(text.trim())
            .filter(|b| b.len() == KEY_BYTES)
            .ok_or_else(|| {
                Error::usage(format!(
                    "upload token key {shown} is not a key made by 'fgbackup token keygen' (64 hex digits)"
                ))
            })?;
        Ok(Key(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// Writes a new random key file (mode 0600); never replaces one.
    pub fn generate(path: &Path) -> Result<()> {
        let mut bytes = [0u8; KEY_BYTES];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| Error::runtime("no randomness available for the token key"))?;
        let text = format!("{}\n", hex(&bytes));
        crate::sign::write_new(
            path,
            text.as_bytes(),
            0o600,
            "it exists and is never replaced (every token it signed would stop working): remove it yourself to start over",
        )
    }

    /// The token for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        // Serializing a struct of strings and numbers cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{VERSION}{}", b64().encode(json));
        let tag = hmac::sign(&self.0, signed.as_bytes());
        format!("{signed}.{}", b64().encode(tag.as_ref()))
    }

    /// The claims of a token this key signed.
    pub fn verify(&self, token: &str) -> std::result::Result<Claims, Refused> {
        if token.len() > MAX_TOKEN_LEN || !token.starts_with(VERSION) {
            return Err(Refused::Malformed);
        }
        let (signed, mac) = token.rsplit_once('.').ok_or(Refused::Malformed)?;
        let mac = b64().decode(mac).map_err(|_| Refused::Malformed)?;
        hmac::verify(&self.0, signed.as_bytes(), &mac).map_err(|_| Refused::BadMac)?;
        let payload = signed
            .strip_prefix(VERSION)
            .and_then(|p| b64().decode(p).ok())
            .ok_or(Refused::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| Refused::Malformed)
    }
}

/// A fresh token id: 64 random bits as 16 hex digits.
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::runtime("no randomness available for a token id"))?;
    Ok(hex(&bytes))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The bytes of an even-length hex string.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path, name: &str) -> Key {
        let path = dir.join(name);
        Key::generate(&path).unwrap();
        Key::load(&path).unwrap()
    }

    fn claims() -> Claims {
        Claims {
            id: "0123456789abcdef".into(),
            prefix: "site7/".into(),
            exp: 2_000_000_000,
            max_bytes: Some(20 << 30),
            max_files: None,
            max_attempts: Some(3),
            any_name: false,
        }
    }

    // docs/SAFETY.md S37
    #[test]
    fn a_token_verifies_under_its_key_only_and_unedited() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (key(dir.path(), "a"), key(dir.path(), "b"));
        let token = a.sign(&claims());
        assert!(token.starts_with("fgpush1."));
        assert_eq!(a.verify(&token), Ok(claims()));
        assert_eq!(b.verify(&token), Err(Refused::BadMac));
        // Every one-byte edit is refused, wherever it is.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(bytes).unwrap();
            if edited != token {
                assert!(a.verify(&edited).is_err(), "edit at {i} accepted");
            }
        }
        assert_eq!(a.verify("fgpush2.x.y"), Err(Refused::Malformed));
        assert_eq!(a.verify(""), Err(Refused::Malformed));
        assert_eq!(
            a.verify(&format!("fgpush1.{}", "A".repeat(5000))),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn a_signed_payload_of_the_wrong_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        Key::generate(&path).unwrap();
        let k = Key::load(&path).unwrap();
        // Signed, but with a field the format does not have.
        let json = br#"{"id":"x","prefix":"p/","exp":1,"alg":"none"}"#;
        let signed = format!("{VERSION}{}", b64().encode(json));
        let tag = hmac::sign(&k.0, signed.as_bytes());
        let token = format!("{signed}.{}", b64().encode(tag.as_ref()));
        assert_eq!(k.verify(&token), Err(Refused::Malformed));
    }

    #[test]
    fn key_files_are_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        Key::generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(Key::generate(&path).is_err());
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let err = Key::load(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
