//! Resource limits of a server (added by the fgbackup patch, see PATCHES.md).
//!
//! Without limits, one client can make tiny_http allocate without bound (a
//! request line that never ends), hold a connection and its thread forever
//! (a request sent halfway, an idle keep-alive connection), and many clients
//! can exhaust threads and file descriptors. [`Limits::default()`] keeps the
//! behaviour of 0.12.0 (no limits); servers facing untrusted clients set them.

use std::io::Cursor;
use std::time::Duration;

use crate::{Response, StatusCode};

/// Answer that tiny_http sends on its own when it refuses a request or a
/// connection (400, 408, 414, 417, 431, 503, 505). It is always followed by
/// closing the connection; tiny_http adds `Connection: close`.
pub type Rejection = fn(StatusCode, &'static str) -> Response<Cursor<Vec<u8>>>;

/// Limits applied to every connection of a [`Server`](crate::Server).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once. A connection accepted beyond this gets a
    /// 503 answer and is closed at once, without a thread of its own.
    /// `None`: no limit.
    pub max_connections: Option<usize>,
    /// Longest request head (request line, headers and their line ends), in
    /// bytes. A longer request line gets 414, a longer header block 431; the
    /// connection is closed. `None`: no limit.
    pub max_head_bytes: Option<usize>,
    /// Time a connection has to deliver a complete request head (and a body
    /// of up to 1 KiB, which is read together with it), counted from accept,
    /// or from the moment the previous request was handed on (for a larger
    /// body: from when it was dropped). A connection that sent nothing in
    /// that time is closed silently (an idle keep-alive connection; an answer
    /// still being written is finished first), one that sent part of a
    /// request gets 408 and is closed. `None`: wait forever.
    pub head_timeout: Option<Duration>,
    /// Builds the answers tiny_http sends on its own.
    pub rejection: Rejection,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: None,
            max_head_bytes: None,
            head_timeout: None,
            rejection: plain_rejection,
        }
    }
}

/// The default [`Rejection`]: the reason as plain text.
pub fn plain_rejection(status: StatusCode, reason: &'static str) -> Response<Cursor<Vec<u8>>> {
    Response::from_string(reason).with_status_code(status)
}
