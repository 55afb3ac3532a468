//! Logging on stderr through env_logger and `RUST_LOG` (default `info`),
//! made safe for any `RUST_LOG` a user may try while debugging:
//!
//! - other crates log at most at [`THIRD_PARTY_CAP`] whatever `RUST_LOG`
//!   says: at debug and trace, HTTP and TLS libraries print request URLs
//!   (whose path is the secret of a Slack or Discord webhook), headers and
//!   hex dumps of the wire, which no mask can reliably catch;
//! - every line passes through [`crate::redact`], which masks each secret
//!   value the program has registered.
//!
//! fgbackup's own modules may log at every level; they never format a secret.
//!
//! A command's `-q`/`-v`/progress display lower the level further through
//! [`apply`] (an explicit `RUST_LOG` wins), and while the progress display
//! is drawn each line is written above it (see [`crate::progress::suspend`]).

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

/// The most other crates (ureq, rustls, rust-s3, attohttpc, mail-send,
/// tiny_http...) may log at. `warn`: their warnings and errors are about
/// failures worth seeing, and none of those we checked quotes a URL path,
/// header or credential; their info and below are request traces.
pub const THIRD_PARTY_CAP: LevelFilter = LevelFilter::Warn;

/// The most detailed level a command's output settings let through, as
/// `LevelFilter as usize` (`Trace`: no limit beyond `RUST_LOG`'s default).
static CEILING: AtomicUsize = AtomicUsize::new(LevelFilter::Trace as usize);

/// Applies a command's `-q`/`-v`/progress settings to the log level, unless
/// `RUST_LOG` is set: whoever sets it asked for exactly that.
pub fn apply(output: crate::progress::Output) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    let ceiling = output.log_ceiling();
    CEILING.store(ceiling as usize, Ordering::Relaxed);
    log::set_max_level(log::max_level().min(ceiling));
}

/// Sets up the process-wide logger; call once, first thing in `main`.
pub fn init() {
    let inner = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(format_line)
        .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Capped { inner })).is_ok() {
        log::set_max_level(max);
    }
}

/// `[2026-01-31T02:00:00Z INFO ] message`, with secrets masked and control
/// characters escaped: the same shape as env_logger's default without the
/// target, and always exactly one line.
fn format_line(buf: &mut env_logger::fmt::Formatter, record: &Record<'_>) -> std::io::Result<()> {
    let text = record.args().to_string();
    writeln!(
        buf,
        "[{} {:<5}] {}",
        buf.timestamp(),
        record.level(),
        one_line(&crate::redact::redact(&text))
    )
}

/// Prints one line on stdout with its control characters escaped, so a
/// key or file name holding a newline (or an escape sequence) cannot forge
/// a second line of a report (`verify`, `ls`, `prune`...): `say(format_args!(..))`.
pub fn say(line: std::fmt::Arguments<'_>) {
    let text = line.to_string();
    crate::progress::suspend(|| println!("{}", one_line(&text)));
}

/// [`say`] on stderr, for a command whose stdout holds only results
/// (`grep`); a stderr that cannot be written is no reason to fail.
pub fn say_err(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = line.to_string();
    crate::progress::suspend(|| {
        let _ = writeln!(std::io::stderr(), "{}", one_line(&text));
    });
}

/// `text` with control characters escaped (`\n`, `\u{1b}`...): a file name
/// holding a newline must not forge a second log or plan line, nor an escape
/// sequence repaint the terminal.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// env_logger's logger with the third-party cap in front of it. A wrapper
/// rather than `filter_module` directives, because `RUST_LOG` can always name
/// a more specific module (`ureq::unversioned=trace`) and win over those.
struct Capped {
    inner: env_logger::Logger,
}

/// True for records of fgbackup itself (target `fgbackup` or `fgbackup::…`).
fn is_own(target: &str) -> bool {
    let own = env!("CARGO_CRATE_NAME");
    target
        .strip_prefix(own)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

fn allowed(metadata: &Metadata<'_>) -> bool {
    (metadata.level() <= THIRD_PARTY_CAP || is_own(metadata.target()))
        && metadata.level() as usize <= CEILING.load(Ordering::Relaxed)
}

impl Log for Capped {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        allowed(metadata) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if allowed(record.metadata()) && self.inner.enabled(record.metadata()) {
            crate::progress::suspend(|| self.inner.log(record));
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/SAFETY.md S15
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("a.gz"), "a.gz");
        assert_eq!(one_line("x\n[INFO] deleted y"), "x\\n[INFO] deleted y");
        assert_eq!(one_line("\u{1b}[2J"), "\\u{1b}[2J");
    }
    use log::Level;

    fn meta(target: &str, level: Level) -> Metadata<'_> {
        Metadata::builder().target(target).level(level).build()
    }

    // docs/SAFETY.md S29
    #[test]
    fn other_crates_are_capped_ours_are_not() {
        assert!(allowed(&meta("fgbackup", Level::Trace)));
        assert!(allowed(&meta("fgbackup::notify::webhook", Level::Trace)));
        assert!(!allowed(&meta(
            "ureq::unversioned::transport",
            Level::Debug
        )));
        assert!(!allowed(&meta("rustls::client::hs", Level::Info)));
        assert!(
            !allowed(&meta("fgbackupx", Level::Debug)),
            "a prefix is not us"
        );
        assert!(allowed(&meta("ureq", Level::Warn)));
        assert!(allowed(&meta("s3::bucket", Level::Error)));
    }
}
