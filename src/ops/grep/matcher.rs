//! One archive's bytes, as they come from the store, to its matching
//! lines: inflated on the fly, cut into lines, each tested against the
//! pattern and then the filters, and the matches kept in a [`Spool`] until
//! the read is proven (nothing is printed before the archive's SHA-256 is
//! known to be the inventory's).

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use crate::content::inflate::Inflate;
use crate::content::query::Query;
use crate::content::{line_time, scan};

/// Longest line kept whole (the index's): longer ones are tested on their
/// first [`MAX_LINE`] bytes, printed so, and counted (a warning says how many).
use crate::content::MAX_LINE;

/// Matches held in memory before they go to a temporary file.
const SPOOL_MEMORY: usize = 1024 * 1024;

/// What a line must contain.
pub enum Pattern {
    /// `-F`: these bytes, found with memchr's memmem.
    Fixed(Box<memchr::memmem::Finder<'static>>),
    Regex(regex::bytes::Regex),
}

impl Pattern {
    pub fn is_match(&self, line: &[u8]) -> bool {
        match self {
            Pattern::Fixed(f) => f.find(line).is_some(),
            Pattern::Regex(r) => r.is_match(line),
        }
    }
}

/// How matches are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `key:line`.
    Text,
    /// `{"key":...,"line":...}`, one per line.
    Json,
    /// Only counted (`-c`).
    Count,
}

/// What one grep asks of every archive.
pub struct Spec {
    pub pattern: Pattern,
    pub query: Query,
    pub format: Format,
    /// At most this many matching lines per archive.
    pub max_count: Option<u64>,
}

impl Spec {
    /// Whether `line` matches: the pattern first (cheap, and most lines
    /// fail it), then the filters on the line's own fields.
    pub fn matches(&self, line: &[u8]) -> bool {
        if !self.pattern.is_match(line) {
            return false;
        }
        if self.query == Query::default() {
            return true;
        }
        match scan::line(line) {
            Some((_, f)) => {
                let at = line_time(&f).map(|(t, _)| t);
                self.query.matches_line(&f, at)
            }
            None => false,
        }
    }
}

/// Matching lines, formatted, in memory up to [`SPOOL_MEMORY`] and then in
/// an unnamed temporary file: memory stays bounded whatever matches.
#[derive(Default)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
}

impl Spool {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + data.len() > SPOOL_MEMORY {
            let mut f = temp_file()?;
            f.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(data),
            None => {
                self.memory.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Copies everything kept into `out`.
    pub fn drain(self, out: &mut dyn FnMut(&[u8]) -> bool) -> io::Result<()> {
        let Some(mut f) = self.file else {
            out(&self.memory);
            return Ok(());
        };
        f.rewind()?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 || !out(&buf[..n]) {
                return Ok(());
            }
        }
    }
}

/// A file with no name in the temporary directory, gone when closed.
fn temp_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir);
    if let Ok(f) = unnamed {
        return Ok(f);
    }
    // No O_TMPFILE here (some filesystems): a private name, removed at once.
    let path = dir.join(format!(
        "fgbackup-grep-{}-{:x}",
        std::process::id(),
        crate::timefmt::unix_seconds(std::time::SystemTime::now()) ^ (&dir as *const _ as i64)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

/// The inflated log, cut into lines and matched.
pub struct Lines<'a> {
    spec: &'a Spec,
    key: &'a str,
    partial: Vec<u8>,
    /// The partial line outgrew [`MAX_LINE`].
    overlong_now: bool,
    pub found: Found,
}

/// What one archive gave.
#[derive(Default)]
pub struct Found {
    pub spool: Spool,
    pub lines: u64,
    /// Lines tested on their first [`MAX_LINE`] bytes only.
    pub overlong: u64,
    /// Writing the spool failed (a full temporary directory).
    pub spool_error: Option<io::Error>,
}

impl<'a> Lines<'a> {
    pub fn new(spec: &'a Spec, key: &'a str) -> Lines<'a> {
        Lines {
            spec,
            key,
            partial: Vec::new(),
            overlong_now: false,
            found: Found::default(),
        }
    }

    /// Ends the last line (one without a line end counts too).
    pub fn finish(mut self) -> Found {
        if !self.partial.is_empty() || self.overlong_now {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        self.found
    }

    fn full(&self) -> bool {
        self.spec.max_count.is_some_and(|m| self.found.lines >= m)
    }

    fn line(&mut self, line: &[u8]) {
        if self.overlong_now {
            self.found.overlong += 1;
            self.overlong_now = false;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.full() || !self.spec.matches(line) {
            return;
        }
        self.found.lines += 1;
        let text = match self.spec.format {
            Format::Count => return,
            Format::Text => {
                let mut t = Vec::with_capacity(self.key.len() + line.len() + 2);
                t.extend_from_slice(self.key.as_bytes());
                t.push(b':');
                t.extend_from_slice(line);
                t.push(b'\n');
                t
            }
            Format::Json => {
                let mut t = serde_json::json!({
                    "key": self.key,
                    "line": String::from_utf8_lossy(line),
                })
                .to_string()
                .into_bytes();
                t.push(b'\n');
                t
            }
        };
        if self.found.spool_error.is_none()
            && let Err(e) = self.found.spool.write(&text)
        {
            self.found.spool_error = Some(e);
        }
    }

    fn take_partial(&mut self, data: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        if data.len() > room {
            self.overlong_now = true;
        }
        self.partial
            .extend_from_slice(&data[..data.len().min(room)]);
    }
}

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut data = buf;
        while let Some(n) = memchr::memchr(b'\n', data) {
            let (head, rest) = (&data[..n], &data[n + 1..]);
            if self.partial.is_empty() && !self.overlong_now {
                self.line(&head[..head.len().min(MAX_LINE)]);
                if head.len() > MAX_LINE {
                    self.found.overlong += 1;
                }
            } else {
                self.take_partial(head);
                let line = std::mem::take(&mut self.partial);
                self.line(&line);
                self.partial = line;
                self.partial.clear();
            }
            data = rest;
        }
        self.take_partial(data);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The store's bytes in, inflated into [`Lines`]: what one read of an
/// archive found, and why its gzip stream broke (if it did).
pub fn inflate<'a>(spec: &'a Spec, key: &'a str) -> Inflate<Lines<'a>> {
    Inflate::new(Lines::new(spec, key))
}

/// The lines found by `inflate`, and why the stream broke.
pub fn found(inflate: Inflate<Lines<'_>>) -> (Found, Option<String>) {
    let (lines, broken) = inflate.finish();
    (lines.map(Lines::finish).unwrap_or_default(), broken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn spec(pattern: Pattern, query: Query, format: Format) -> Spec {
        Spec {
            pattern,
            query,
            format,
            max_count: None,
        }
    }

    fn run(spec: &Spec, data: &[u8], chunk: usize) -> (String, u64, Option<String>) {
        let mut inflate = inflate(spec, "k");
        for c in data.chunks(chunk) {
            inflate.write_all(c).unwrap();
        }
        let (found, broken) = found(inflate);
        let mut out = Vec::new();
        found
            .spool
            .drain(&mut |b| {
                out.extend_from_slice(b);
                true
            })
            .unwrap();
        (String::from_utf8(out).unwrap(), found.lines, broken)
    }

    const LOG: &str = "date=2026-11-02 time=10:00:00 devname=A srcip=10.0.0.1 action=deny msg=\"x\"\n\
                       date=2026-11-02 time=10:00:01 devname=B srcip=10.0.0.2 action=accept url=\"/?srcip=10.0.0.1\"\n\
                       garbage with 10.0.0.1\n\
                       date=2026-11-02 time=10:00:02 devname=A srcip=10.0.0.3 action=deny";

    #[test]
    fn fixed_and_regex_in_any_chunks_with_the_filters_on_each_line() {
        let data = gz(LOG.as_bytes());
        let fixed = || {
            Pattern::Fixed(Box::new(
                memchr::memmem::Finder::new(b"10.0.0.1").into_owned(),
            ))
        };
        for chunk in [1, 7, data.len()] {
            let (out, n, broken) =
                run(&spec(fixed(), Query::default(), Format::Text), &data, chunk);
            assert_eq!(n, 3, "{out}");
            assert!(out.starts_with("k:date=2026-11-02 time=10:00:00"), "{out}");
            assert_eq!(broken, None);
        }
        let ip = Query {
            ip: "10.0.0.1".parse().ok(),
            ..Query::default()
        };
        let (out, n, _) = run(&spec(fixed(), ip, Format::Text), &data, 5);
        assert_eq!(n, 1, "only srcip/dstip count: {out}");
        let re = Pattern::Regex(regex::bytes::Regex::new("action=de.y").unwrap());
        let dev = Query {
            device: Some("A".into()),
            ..Query::default()
        };
        let (out, n, _) = run(&spec(re, dev, Format::Json), &data, 3);
        assert_eq!(n, 2, "the last line has no line end and still counts");
        let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(first["key"], "k");
    }

    #[test]
    fn a_cut_stream_gives_its_lines_and_says_it_broke() {
        let data = gz(format!("{LOG}\n").repeat(2_000).as_bytes());
        let cut = &data[..data.len() / 2];
        let any = Pattern::Fixed(Box::new(memchr::memmem::Finder::new(b"").into_owned()));
        let (_, n, broken) = run(&spec(any, Query::default(), Format::Count), cut, 4096);
        assert!(n > 0 && n < 8_000, "{n}");
        assert!(broken.is_some());
        let any = Pattern::Fixed(Box::new(memchr::memmem::Finder::new(b"").into_owned()));
        let (_, _, broken) = run(&spec(any, Query::default(), Format::Count), b"not gzip", 3);
        assert!(broken.is_some());
    }

    #[test]
    fn max_count_and_a_large_spool() {
        let data = gz(format!("{LOG}\n").repeat(20_000).as_bytes());
        let any = || Pattern::Fixed(Box::new(memchr::memmem::Finder::new(b"time=").into_owned()));
        let mut s = spec(any(), Query::default(), Format::Text);
        let (out, n, _) = run(&s, &data, 65_536);
        assert_eq!(n, 60_000);
        assert!(out.len() > SPOOL_MEMORY, "went through the temporary file");
        assert_eq!(out.lines().count(), 60_000);
        s.max_count = Some(5);
        assert_eq!(run(&s, &data, 65_536).1, 5);
    }
}
