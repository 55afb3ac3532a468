//! Bearer tokens: `APP_TOKENS` (comma-separated, the suite's variable) plus
//! `APP_TOKENS_FILE` (one per line), re-read when the file changes so tokens
//! rotate without a restart. Comparison is constant-time and tokens are never
//! logged.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// How often the token file's mtime is looked at, at most.
const RECHECK: Duration = Duration::from_millis(250);

/// The set of accepted tokens.
pub struct Tokens {
    fixed: Vec<String>,
    file: Option<PathBuf>,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    checked: Option<Instant>,
    mtime: Option<SystemTime>,
    len: u64,
    tokens: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("fixed", &format_args!("{} redacted", self.fixed.len()))
            .field("file", &self.file)
            .finish()
    }
}

impl Tokens {
    /// Tokens from the `APP_TOKENS` value and an optional token file.
    pub fn new(app_tokens: Option<&str>, file: Option<PathBuf>) -> Tokens {
        let fixed = app_tokens
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
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
    pub fn load_file(&self) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh(&mut state, true)
    }

    fn refresh(&self, state: &mut FileState, force: bool) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        if !force && state.checked.is_some_and(|t| t.elapsed() < RECHECK) {
            return Ok(());
        }
        state.checked = Some(Instant::now());
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read APP_TOKENS_FILE {}: {e}", path.display()))?;
        let mtime = meta.modified().ok();
        if !force && mtime == state.mtime && meta.len() == state.len {
            return Ok(());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read APP_TOKENS_FILE {}: {e}", path.display()))?;
        state.tokens = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        state.mtime = mtime;
        state.len = meta.len();
        log::info!(
            "loaded {} token(s) from {}",
            state.tokens.len(),
            path.display()
        );
        Ok(())
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
            if let Err(e) = self.refresh(&mut state, false) {
                // Keep the last good set: a half-written file must not lock everyone out.
                log::warn!("{e}; keeping the previous tokens");
            }
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
}
