//! Output that streams to stdout, line by line or as a JSON array, and
//! stops quietly when its reader goes away (`| head`).

use std::io::{BufWriter, Write};

use crate::error::{Error, Result};

/// Where a listing goes: stdout, buffered. A reader that goes away (`| head`)
/// ends the listing quietly (`println!` would panic on the broken pipe);
/// any other write error is an error.
pub struct Out {
    w: BufWriter<std::io::Stdout>,
    /// Lines written so far (the `--limit` count).
    pub shown: usize,
    /// The reader went away: write nothing more.
    pub gone: bool,
    failed: Option<std::io::Error>,
    json: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out {
            w: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            shown: 0,
            gone: false,
            failed: None,
            json,
        }
    }

    pub fn write(&mut self, text: &str) {
        self.write_bytes(text.as_bytes());
    }

    /// [`Out::write`] of bytes that need not be UTF-8 (a log line).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        if self.gone || self.failed.is_some() {
            return;
        }
        match self.w.write_all(bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.gone = true,
            Err(e) => self.failed = Some(e),
            Ok(()) => {}
        }
    }

    /// One entry (a text line, or a JSON element), up to `limit` (0: no limit).
    pub fn entry(&mut self, limit: usize, text: &str) {
        if limit != 0 && self.shown >= limit {
            return;
        }
        if self.json && self.shown > 0 {
            self.write(",");
        }
        self.write(text);
        if !self.json {
            self.write("\n");
        }
        self.shown += 1;
    }

    /// Flushes; `what` names the output in an error (`the listing`).
    pub fn finish(mut self, what: &str) -> Result<i32> {
        if let Err(e) = self.w.flush()
            && e.kind() != std::io::ErrorKind::BrokenPipe
            && self.failed.is_none()
        {
            self.failed = Some(e);
        }
        match self.failed {
            Some(e) => Err(Error::runtime(format!("cannot write {what}: {e}"))),
            None => Ok(0),
        }
    }
}
