//! The one error type of fgbackup.
//!
//! Every error carries a complete, human-readable sentence with its context
//! (`failed to read /var/log/x.gz: permission denied`), because the user sees
//! exactly one line of it. The kind only decides the exit status.

use std::fmt;
use std::path::Path;

/// Why a command could not do its job.
#[derive(Debug)]
pub enum Error {
    /// Wrong flag, missing setting or invalid value: the user must change the
    /// command line or the environment. Exit status 2.
    Usage(String),
    /// The command was well formed but something failed while running
    /// (database, lock, remote store). Exit status 1.
    Runtime(String),
}

impl Error {
    /// A usage error with the given message.
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    /// A run-time error with the given message.
    pub fn runtime(msg: impl Into<String>) -> Error {
        Error::Runtime(msg.into())
    }

    /// A run-time error for an I/O operation on a path, e.g.
    /// `io("open", path, err)` gives `failed to open /x: No such file...`.
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> Error {
        Error::Runtime(format!("failed to {action} {}: {err}", path.display()))
    }

    /// The process exit status this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::Runtime(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;
