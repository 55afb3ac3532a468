//! The name of a pushed file (`PUT /upload/NAME`), checked before anything
//! is written: the key is the token's prefix plus this name, so a name
//! must not climb out of the prefix, hide characters, or be something a
//! file system or a log reader would take differently.

/// Longest name (bytes, decoded): S3 keys stop at 1024 with the prefix.
pub const MAX_NAME: usize = 512;

/// Why a name is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BadName {
    /// It would leave the token's prefix (`..`, a leading `/`): 403.
    Outside(String),
    /// Anything else wrong with it: 400.
    Invalid(String),
}

impl BadName {
    pub fn status(&self) -> u16 {
        match self {
            BadName::Outside(_) => 403,
            BadName::Invalid(_) => 400,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            BadName::Outside(r) | BadName::Invalid(r) => r,
        }
    }
}

/// The checked name from the path after `/upload/` (still percent-encoded).
/// `any_name`: the token accepts names not ending in `.gz`.
pub fn check(raw: &str, any_name: bool) -> Result<String, BadName> {
    let invalid = |why: &str| Err(BadName::Invalid(why.to_string()));
    let name = match percent_decode(raw) {
        Some(n) => n,
        None => return invalid("the name is not valid percent-encoded UTF-8"),
    };
    if name.is_empty() {
        return invalid("no name: PUT /upload/NAME");
    }
    if name.len() > MAX_NAME {
        return Err(BadName::Invalid(format!(
            "the name is longer than {MAX_NAME} bytes"
        )));
    }
    if name.starts_with('/') {
        return Err(BadName::Outside(
            "an absolute name would leave the token's prefix".into(),
        ));
    }
    if name.split('/').any(|s| s == "..") {
        return Err(BadName::Outside(
            "'..' in the name would leave the token's prefix".into(),
        ));
    }
    if name.chars().any(|c| !shown_as_is(c)) {
        return invalid(
            "the name holds a control, invisible or blank character other than a plain space",
        );
    }
    if name.contains('\\') {
        return invalid("the name holds a backslash: use / between directories");
    }
    if name.split('/').any(|s| s.is_empty() || s == ".") {
        return invalid("the name has an empty or '.' part ('a//b', './a', 'a/')");
    }
    if name.split('/').any(|s| s.len() > MAX_PART) {
        return Err(BadName::Invalid(format!(
            "a part of the name is longer than {MAX_PART} bytes (a file system's limit)"
        )));
    }
    if name.split('/').next().is_some_and(|s| s.starts_with('_')) {
        return invalid("names starting with '_' are the archive's own (_index/, _manifests/)");
    }
    if !any_name && !name.to_ascii_lowercase().ends_with(".gz") {
        return invalid("the name must end in .gz (this token accepts only gzip logs)");
    }
    Ok(name)
}

/// Longest part between slashes (NAME_MAX of Linux file systems).
pub const MAX_PART: usize = 255;

/// Characters a name may hold: printable ASCII (a plain space included),
/// and beyond ASCII only letters and digits, less the blank ones. Every
/// control, format (bidi marks, zero-width and soft hyphens, tags,
/// variation selectors), separator and private character is refused: each
/// makes a name read as another one in a log or a listing.
fn shown_as_is(c: char) -> bool {
    if c.is_ascii() {
        return c == ' ' || c.is_ascii_graphic();
    }
    c.is_alphanumeric() && !matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

/// `%2e%2e` → `..`; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/SAFETY.md S37
    #[test]
    fn traversal_and_odd_names_are_refused() {
        let outside = [
            "../x.gz",
            "%2e%2e/x.gz",
            "%2E%2E%2fx.gz",
            "a/../../x.gz",
            "/abs.gz",
            "%2fabs.gz",
        ];
        for raw in outside {
            assert_eq!(check(raw, false).map_err(|e| e.status()), Err(403), "{raw}");
        }
        let invalid = [
            "a%5cb.gz",
            "a\\b.gz",
            "a%00b.gz",
            "a%0ab.gz",
            "a%e2%80%aeb.gz",
            "a%d8%9cb.gz",
            "a%c2%adb.gz",
            "a%cd%8fb.gz",
            "a%e1%a0%8eb.gz",
            "a%e2%80%a8b.gz",
            "a%e2%81%afb.gz",
            "a%ef%b8%8fb.gz",
            "a%f3%a0%80%81b.gz",
            "a%e3%85%a4b.gz",
            "a%c2%a0b.gz",
            "a%ef%bf%bcb.gz",
            "a//b.gz",
            "./a.gz",
            "a/",
            "",
            "x.log",
            "%zz.gz",
            "%ff.gz",
            "_index/a.gz",
        ];
        for raw in invalid {
            assert_eq!(check(raw, false).map_err(|e| e.status()), Err(400), "{raw}");
        }
        let long = format!("{}.gz", "a".repeat(MAX_NAME));
        assert_eq!(check(&long, false).map_err(|e| e.status()), Err(400));
        let part = format!("{}.gz", "a".repeat(MAX_PART));
        assert_eq!(check(&part, false).map_err(|e| e.status()), Err(400));
    }

    #[test]
    fn plain_names_pass_decoded() {
        assert_eq!(
            check("FGT-A/2026-12-01.log.gz", false).unwrap(),
            "FGT-A/2026-12-01.log.gz"
        );
        assert_eq!(check("a%20b.gz", false).unwrap(), "a b.gz");
        assert_eq!(check("bundle.tar", true).unwrap(), "bundle.tar");
        assert_eq!(check("x..y.gz", false).unwrap(), "x..y.gz");
        assert_eq!(
            check("Zürich-FGT/été.gz", false).unwrap(),
            "Zürich-FGT/été.gz"
        );
    }
}
