//! The last line of defence against secrets in logs: every secret value the
//! program reads is registered here, and the logger's format function
//! replaces each occurrence with `<redacted>` before a line is written.
//!
//! The first line is not logging secrets at all (our messages name hosts,
//! never URLs with tokens) and capping other crates' log levels (see
//! `logging`); this catches what slips past both, such as a dependency's
//! error text that quotes a request URL.

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;

/// What a secret is replaced with.
pub const MASK: &str = "<redacted>";

/// Registered secrets, longest first so a URL is masked whole before its
/// path is looked for.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value (password, token, key) so no log line shows it.
/// Surrounding whitespace is ignored; empty values are not secrets.
///
/// Call it where the value is read (environment, file, flag). Every value is
/// kept, however short: a one-letter password masks every such letter in the
/// logs, which is ugly but never leaks.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.is_empty() {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if !all.iter().any(|s| s == secret) {
        all.push(secret.to_string());
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers a URL whose path or query carries a secret (Slack, Discord,
/// Telegram, a generic webhook): the URL, its path-and-query on its own (a
/// request line or an HTTP library's log shows only that) and any password
/// in its userinfo.
///
/// A generic webhook path that is an ordinary word (`/fgbackup`) is masked
/// too, also where it appears in a directory name: over-masking is
/// preferred to guessing which paths are secret.
pub fn register_url(url: &str) {
    let url = url.trim();
    register(url);
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if tail.len() > 1 {
        register(tail);
    }
    if let Some((userinfo, _host)) = authority.rsplit_once('@') {
        let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
        register(password);
    }
}

/// Registers an SMTP password together with the base64 forms that AUTH
/// PLAIN and AUTH LOGIN put on the wire, in case a protocol trace shows them.
pub fn register_smtp_password(user: &str, password: &str) {
    register(password);
    let b64 = base64::engine::general_purpose::STANDARD;
    register(&b64.encode(password));
    register(&b64.encode(format!("\0{user}\0{password}")));
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in all.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // One registry per process: each test uses its own distinctive values.

    // docs/SAFETY.md S29
    #[test]
    fn registered_values_are_masked_wherever_they_appear() {
        register("  s3cr3t-Aa1  ");
        assert_eq!(
            redact("key=s3cr3t-Aa1, again s3cr3t-Aa1."),
            "key=<redacted>, again <redacted>."
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        register("");
        register("   ");
        assert_eq!(redact("a b"), "a b", "blank values are not secrets");
    }

    #[test]
    fn urls_are_masked_whole_and_by_path() {
        register_url("https://hooks.slack.com/services/T9/B9/zzSlackTok");
        assert_eq!(
            redact("POST https://hooks.slack.com/services/T9/B9/zzSlackTok failed"),
            "POST <redacted> failed"
        );
        assert_eq!(
            redact("POST /services/T9/B9/zzSlackTok HTTP/1.1"),
            "POST <redacted> HTTP/1.1"
        );
        register_url("https://bob:pw-in-url-77@example.org/x?token=abc77");
        assert_eq!(redact("pw-in-url-77"), MASK);
        assert_eq!(redact("GET /x?token=abc77"), "GET <redacted>");
        // A bare host has no secret part of its own.
        register_url("https://only-a-host.example");
        assert_eq!(redact("only-a-host.example"), "only-a-host.example");
    }

    #[test]
    fn smtp_auth_encodings_are_masked() {
        register_smtp_password("u@example.org", "app-pw-zz9");
        let plain = base64::engine::general_purpose::STANDARD.encode("\0u@example.org\0app-pw-zz9");
        assert_eq!(
            redact(&format!("AUTH PLAIN {plain}")),
            "AUTH PLAIN <redacted>"
        );
    }
}
