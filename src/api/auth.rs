//! Bearer tokens: `APP_TOKENS` (comma-separated, the suite's variable) plus
//! `APP_TOKENS_FILE` (one per line), re-read while the server runs so tokens
//! rotate without a restart. The file is the truth: its tokens count only
//! while it can be read and parsed; when it is deleted, unreadable or not
//! text, they are all refused (fail closed). Comparison is constant-time and
//! tokens are never logged.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How often the token file is read again, at most (only when a request
/// needs a token). The content is compared, not the size and mtime, which a
/// rewrite can leave unchanged.
const RECHECK: Duration = Duration::from_millis(250);
/// Largest token file read: a larger one is refused, so that a path pointing
/// at a device or a big file cannot exhaust memory.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The set of accepted tokens.
pub struct Tokens {
    fixed: Vec<String>,
    file: Option<PathBuf>,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    checked: Option<Instant>,
    /// SHA-256 of the bytes behind `tokens`; `None` after a failed read.
    digest: Option<[u8; 32]>,
    tokens: Vec<String>,
    /// The failure last logged, so that it is logged once, not per request.
    failure: Option<String>,
}

/// What a token file holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TokenFile {
    pub tokens: Vec<String>,
    /// Lines not taken, by number (never by content: they may be tokens) and
    /// why.
    pub skipped: Vec<(usize, &'static str)>,
}

/// Parses a token file: one token per line; blank lines and lines starting
/// with `#` are ignored; surrounding whitespace (and a CR) is trimmed.
///
/// A line counts only once it ends with a newline: a file read while being
/// written could otherwise yield a truncated token, which is a shorter,
/// weaker one. A line holding anything but printable ASCII (spaces inside,
/// control characters, non-ASCII) is no token and is skipped. Bytes that are
/// not UTF-8 make the whole file an error.
pub fn parse_token_file(bytes: &[u8]) -> Result<TokenFile, NotText> {
    let text = std::str::from_utf8(bytes).map_err(NotText)?;
    let mut parsed = TokenFile::default();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let token = line.trim();
        if token.is_empty() || token.starts_with('#') {
            continue;
        }
        if !line.ends_with('\n') {
            parsed
                .skipped
                .push((i + 1, "no newline at its end, so it may be half-written"));
        } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
            parsed
                .skipped
                .push((i + 1, "not a token: only printable ASCII without spaces"));
        } else {
            parsed.tokens.push(token.to_string());
        }
    }
    Ok(parsed)
}

/// A token file whose bytes are not UTF-8: the decoder's error, which says
/// where, is kept as the cause.
#[derive(Debug)]
pub struct NotText(std::str::Utf8Error);

impl std::fmt::Display for NotText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not UTF-8 text (byte {})", self.0.valid_up_to())
    }
}

impl std::error::Error for NotText {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Why the token file's tokens are refused: the file, and the cause kept.
#[derive(Debug)]
pub enum TokenFileError {
    /// Missing, unreadable, or larger than [`MAX_FILE_BYTES`].
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Read, but not text.
    NotText { path: PathBuf, source: NotText },
}

impl std::fmt::Display for TokenFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (path, cause): (&Path, &dyn std::fmt::Display) = match self {
            TokenFileError::Read { path, source } => (path, source),
            TokenFileError::NotText { path, source } => (path, source),
        };
        write!(f, "cannot read APP_TOKENS_FILE {}: {cause}", path.display())
    }
}

impl std::error::Error for TokenFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenFileError::Read { source, .. } => Some(source),
            TokenFileError::NotText { source, .. } => Some(source),
        }
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("fixed", &format_args!("{} redacted", self.fixed.len()))
            .field("file", &self.file)
            .finish()
    }
}

/// The bytes of `path`, at most [`MAX_FILE_BYTES`].
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

impl Tokens {
    /// Tokens from the `APP_TOKENS` value and an optional token file.
    pub fn new(app_tokens: Option<&str>, file: Option<PathBuf>) -> Tokens {
        let fixed: Vec<String> = app_tokens
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        // No log line may show a token, whatever a dependency prints.
        fixed.iter().for_each(|t| crate::redact::register(t));
        Tokens {
            fixed,
            file,
            state: Mutex::new(FileState::default()),
        }
    }

    /// True when no token is configured at all (the server refuses to start).
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.file.is_none()
    }

    /// Reads the token file now; an error names the file.
    pub fn load_file(&self) -> Result<(), TokenFileError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh(&mut state, true)
    }

    /// Re-reads the file (at most every [`RECHECK`] unless `force`). On any
    /// failure the file's tokens are dropped, and the failure is logged once.
    fn refresh(&self, state: &mut FileState, force: bool) -> Result<(), TokenFileError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        if !force && state.checked.is_some_and(|t| t.elapsed() < RECHECK) {
            return Ok(());
        }
        state.checked = Some(Instant::now());
        let loaded = read_capped(path)
            .map_err(|source| TokenFileError::Read {
                path: path.clone(),
                source,
            })
            .and_then(|bytes| {
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                if state.digest == Some(digest) {
                    return Ok(None);
                }
                parse_token_file(&bytes)
                    .map(|parsed| Some((digest, parsed)))
                    .map_err(|source| TokenFileError::NotText {
                        path: path.clone(),
                        source,
                    })
            });
        match loaded {
            Ok(None) => Ok(()),
            Ok(Some((digest, parsed))) => {
                for (line, why) in &parsed.skipped {
                    log::warn!(
                        "APP_TOKENS_FILE {}: line {line} skipped: {why}",
                        path.display()
                    );
                }
                log::info!(
                    "loaded {} token(s) from {}",
                    parsed.tokens.len(),
                    path.display()
                );
                parsed
                    .tokens
                    .iter()
                    .for_each(|t| crate::redact::register(t));
                state.tokens = parsed.tokens;
                state.digest = Some(digest);
                state.failure = None;
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                if state.failure.as_deref() != Some(msg.as_str()) {
                    log::error!("{msg}; its tokens are refused until it can be read");
                    state.failure = Some(msg);
                }
                state.tokens.clear();
                state.digest = None;
                Err(e)
            }
        }
    }

    /// Checks an `Authorization` header value.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return false;
        };
        let mut ok = false;
        for t in &self.fixed {
            ok |= constant_time_eq(t.as_bytes(), presented.as_bytes());
        }
        if self.file.is_some() {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            // A failure is logged inside and leaves no file token: fail closed.
            let _ = self.refresh(&mut state, false);
            for t in &state.tokens {
                ok |= constant_time_eq(t.as_bytes(), presented.as_bytes());
            }
        }
        ok
    }
}

/// Compares without an early exit, so timing does not reveal a prefix match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let t = Tokens::new(Some("alpha, beta"), None);
        assert!(t.accepts(Some("Bearer alpha")));
        assert!(t.accepts(Some("Bearer beta")));
        assert!(!t.accepts(Some("Bearer alph")));
        assert!(!t.accepts(Some("Bearer alphaa")));
        assert!(!t.accepts(Some("alpha")));
        assert!(!t.accepts(Some("Bearer ")));
        assert!(!t.accepts(None));
        assert!(!format!("{t:?}").contains("alpha"));
    }

    #[test]
    fn token_file_lines() {
        let parsed =
            parse_token_file(b"# comment\n\n  alpha  \r\nbe ta\n#x\ngamma\nhalf-writ").unwrap();
        assert_eq!(parsed.tokens, ["alpha", "gamma"]);
        assert_eq!(
            parsed.skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [4, 7]
        );
        assert!(parse_token_file(b"alpha\n\xff\n").is_err());
        assert_eq!(parse_token_file(b"").unwrap(), TokenFile::default());
    }

    // docs/SAFETY.md S21
    #[test]
    fn deleted_file_revokes_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "from-file\n").unwrap();
        let t = Tokens::new(Some("fixed"), Some(path.clone()));
        t.load_file().unwrap();
        assert!(t.accepts(Some("Bearer from-file")));
        std::fs::remove_file(&path).unwrap();
        assert!(t.load_file().is_err());
        assert!(!t.accepts(Some("Bearer from-file")));
        assert!(t.accepts(Some("Bearer fixed")));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_token_file(&bytes);
        }

        #[test]
        fn tokens_are_never_empty_nor_hold_whitespace(text in "(.|\n|\r|\t){0,300}") {
            if let Ok(parsed) = parse_token_file(text.as_bytes()) {
                for token in parsed.tokens {
                    proptest::prop_assert!(!token.is_empty());
                    proptest::prop_assert!(!token.chars().any(char::is_whitespace), "{:?}", token);
                }
            }
        }

        #[test]
        fn comments_are_ignored_and_complete_lines_are_tokens(
            lines in proptest::collection::vec(
                ("[ \t]{0,2}", "[!-~]{1,20}", proptest::bool::ANY),
                0..20,
            )
        ) {
            let mut text = String::new();
            let mut expected = Vec::new();
            for (indent, word, comment) in &lines {
                if *comment {
                    text.push_str(&format!("{indent}# {word}\n"));
                } else if !word.starts_with('#') {
                    text.push_str(&format!("{indent}{word}{indent}\n"));
                    expected.push(word.clone());
                }
            }
            let parsed = parse_token_file(text.as_bytes()).unwrap();
            proptest::prop_assert_eq!(parsed.tokens, expected);
            proptest::prop_assert!(parsed.skipped.is_empty());
        }
    }
}
