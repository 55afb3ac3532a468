//! One streaming pass over a file: SHA-256 of every byte and, for `.gz`
//! files, proof that the bytes form complete gzip streams.
//!
//! A gzip file cut short by a crash, a full disk or a writer that has not
//! finished cannot be told apart from a good one by its header; only
//! inflating it to the end and checking each member's CRC does that.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::content::{Indexed, Indexer};

/// Size of the read buffer: large enough for few syscalls, small for RSS.
const READ_CHUNK: usize = 256 * 1024;

/// What one pass learned about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Bytes read.
    pub bytes: u64,
    /// `None` when the gzip check was not asked for; otherwise whether every
    /// gzip member was complete, with the reason when it was not.
    pub gzip: Option<Result<(), GzipError>>,
    /// Per-part digests, when asked for (a multipart upload follows).
    pub parts: Option<Parts>,
    /// The content index of the inflated bytes, when asked for.
    pub index: Option<Indexed>,
}

/// What one read does besides the SHA-256 of the whole file.
#[derive(Debug, Default)]
pub struct Reading {
    /// Prove that the bytes are complete gzip streams ([`FileDigest::gzip`]).
    pub check_gzip: bool,
    /// Index the inflated log ([`FileDigest::index`]): the bytes are
    /// inflated for it even without `check_gzip`, but once for both.
    pub index: Option<Indexer>,
    /// Also hash each part of this size ([`FileDigest::parts`]).
    pub part_size: Option<u64>,
}

/// The SHA-256 of each `size`-byte part of a file (the last may be shorter),
/// taken in the same pass as the whole-file hash: a multipart upload signs
/// and checksums every part without reading the file again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub size: u64,
    /// Lowercase hex, in part order.
    pub sha256: Vec<String>,
}

/// Reads `reader` to the end, hashing it, and checks gzip integrity when
/// `check_gzip` is set.
pub fn digest_reader<R: Read>(reader: R, check_gzip: bool) -> io::Result<FileDigest> {
    digest_with(
        reader,
        Reading {
            check_gzip,
            ..Reading::default()
        },
    )
}

/// Like [`digest_reader`], and with `part_size` also the SHA-256 of each part.
#[cfg(test)]
pub fn digest_parts<R: Read>(
    reader: R,
    check_gzip: bool,
    part_size: Option<u64>,
) -> io::Result<FileDigest> {
    digest_with(
        reader,
        Reading {
            check_gzip,
            index: None,
            part_size,
        },
    )
}

/// Reads `reader` to the end once, doing all that `reading` asks.
pub fn digest_with<R: Read>(reader: R, reading: Reading) -> io::Result<FileDigest> {
    let Reading {
        check_gzip,
        index,
        part_size,
    } = reading;
    let mut tee = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
        bytes: 0,
        failed: false,
        parts: part_size.map(|size| PartHasher {
            size: size.max(1),
            hasher: Sha256::new(),
            filled: 0,
            done: Vec::new(),
        }),
    };
    let (gzip, index) = if check_gzip || index.is_some() {
        let (verdict, index) = inflate(&mut tee, index);
        let verdict = match verdict {
            Ok(()) => Ok(()),
            // A failure reading the file is an I/O error, not a gzip verdict.
            Err(e) if tee.failed => return Err(e),
            Err(e) => Err(describe_gzip_error(&e)),
        };
        let index = index.map(|ix| Indexed::new(ix.finish(), verdict.as_ref().err()));
        (check_gzip.then_some(verdict), index)
    } else {
        (None, None)
    };
    // Whatever the decoder did not consume (garbage after a bad member, or
    // everything when no check was asked) still belongs in the hash.
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match tee.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let parts = tee.parts.take().map(PartHasher::finish);
    Ok(FileDigest {
        sha256: hex(&tee.hasher.finalize()),
        bytes: tee.bytes,
        gzip,
        parts,
        index,
    })
}

/// Inflates what `tee` reads to the end of its last gzip member, feeding
/// the inflated bytes to `index`; the error is the decoder's (or the read's).
fn inflate<R: Read>(
    tee: &mut HashingReader<R>,
    mut index: Option<Indexer>,
) -> (io::Result<()>, Option<Indexer>) {
    let mut decoder = MultiGzDecoder::new(io::BufReader::with_capacity(READ_CHUNK, tee));
    let mut sink = vec![0u8; READ_CHUNK];
    let verdict = loop {
        match decoder.read(&mut sink) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Some(ix) = &mut index {
                    ix.feed(&sink[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    (verdict, index)
}

/// An inflate (the gzip proof, the index) running on its own thread while
/// the caller uploads: on a file the gzip proof guards, the inflate is most
/// of the CPU, and done before the send it doubled `upload --delete`'s wall
/// time. It reads the file again through its own descriptor and hashes what
/// it inflates, so its verdict is about bytes whose SHA-256 the caller can
/// compare with the one it uploaded ([`Inflating::finish`]).
pub struct Inflating {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<FileDigest>>>,
}

impl Inflating {
    /// Starts reading `file` from its first byte (with `pread`: the
    /// descriptor's offset is left alone), indexing it when `index` gives
    /// the archive's size (the indexer is built on the thread that fills
    /// it). It also stops once `interrupted` says so (a stop signal: the
    /// run must not wait for a long inflate). Fails only when no thread can
    /// be started; the caller then inflates in its own read.
    pub fn start(
        file: File,
        check_gzip: bool,
        index: Option<u64>,
        interrupted: fn() -> bool,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let reader = Reread {
            file,
            offset: 0,
            stop: Arc::clone(&stop),
            interrupted,
        };
        let thread = std::thread::Builder::new()
            .name("inflate".into())
            .spawn(move || {
                let reading = Reading {
                    check_gzip,
                    index: index.map(Indexer::for_archive),
                    part_size: None,
                };
                digest_with(reader, reading)
            })?;
        Ok(Inflating {
            stop,
            thread: Some(thread),
        })
    }

    /// Waits for the end of the read: its SHA-256 and size (to compare with
    /// the upload's), the gzip verdict and the index.
    pub fn finish(mut self) -> io::Result<FileDigest> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(read)) => read,
            Some(Err(_)) => Err(io::Error::other("the inflate thread panicked")),
            None => Err(io::Error::other("the inflate was already finished")),
        }
    }
}

/// A file left before its end (a failed upload, a dry run): the thread
/// stops at its next read, and is waited for, so no read outlives its file's step.
impl Drop for Inflating {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads an owned descriptor from its start with `pread`, until told to stop.
struct Reread {
    file: File,
    offset: u64,
    stop: Arc<AtomicBool>,
    interrupted: fn() -> bool,
}

impl Read for Reread {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped: the file's upload ended first"));
        }
        if (self.interrupted)() {
            return Err(io::Error::other("stopped by a signal"));
        }
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Hashes an in-memory body.
#[cfg(test)]
pub fn digest_bytes(data: &[u8], check_gzip: bool) -> io::Result<FileDigest> {
    digest_reader(data, check_gzip)
}

/// Why a `.gz` is not a complete gzip stream: the decoder's cause, kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GzipError {
    /// It ends inside a member: cut short, or its writer is not done.
    Truncated,
    /// Not gzip at some point (a bad header, CRC or length), with the decoder's words.
    Invalid(String),
}

impl std::fmt::Display for GzipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GzipError::Truncated => f.write_str(
                "not a complete gzip stream: the file ends early (truncated or still being written)",
            ),
            GzipError::Invalid(e) => write!(f, "not a valid gzip stream: {e}"),
        }
    }
}

fn describe_gzip_error(e: &io::Error) -> GzipError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => GzipError::Truncated,
        _ => GzipError::Invalid(e.to_string()),
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Base64 of the raw digest behind a hex SHA-256, as `x-amz-checksum-sha256` wants.
pub fn hex_to_base64(hex_digest: &str) -> Option<String> {
    use base64::Engine as _;
    let raw: Option<Vec<u8>> = (0..hex_digest.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex_digest.get(i..i + 2)?, 16).ok())
        .collect();
    Some(base64::engine::general_purpose::STANDARD.encode(raw?))
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    /// Set when the underlying reader failed, to tell I/O errors from bad gzip.
    failed: bool,
    parts: Option<PartHasher>,
}

/// Hashes a stream part by part.
struct PartHasher {
    size: u64,
    hasher: Sha256,
    /// Bytes in the current part so far.
    filled: u64,
    done: Vec<String>,
}

impl PartHasher {
    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = usize::try_from(self.size - self.filled).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.hasher.update(now);
            self.filled += now.len() as u64;
            if self.filled == self.size {
                self.done.push(hex(&self.hasher.finalize_reset()));
                self.filled = 0;
            }
            data = rest;
        }
    }

    fn finish(mut self) -> Parts {
        if self.filled > 0 || self.done.is_empty() {
            self.done.push(hex(&self.hasher.finalize()));
        }
        Parts {
            size: self.size,
            sha256: self.done,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed = true;
            }
        })?;
        self.hasher.update(&buf[..n]);
        if let Some(p) = &mut self.parts {
            p.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn known_sha256() {
        let d = digest_bytes(b"abc", false).unwrap();
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.bytes, 3);
        assert_eq!(d.gzip, None);
        assert_eq!(
            hex_to_base64(&d.sha256).unwrap(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn part_digests_split_at_part_boundaries() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let d = digest_parts(&data[..], false, Some(4096)).unwrap();
        let parts = d.parts.unwrap();
        let expect: Vec<String> = data
            .chunks(4096)
            .map(|c| digest_bytes(c, false).unwrap().sha256)
            .collect();
        assert_eq!(parts.sha256, expect);
        assert_eq!(parts.sha256.len(), 3);
        assert_eq!(d.sha256, digest_bytes(&data, false).unwrap().sha256);
        // Exactly two parts' worth: no empty third part.
        let d = digest_parts(&data[..8192], false, Some(4096)).unwrap();
        assert_eq!(d.parts.unwrap().sha256.len(), 2);
    }

    #[test]
    fn complete_truncated_and_multi_member_gzip() {
        let body: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let good = gz(&body);
        let d = digest_bytes(&good, true).unwrap();
        assert_eq!(d.gzip, Some(Ok(())));
        assert_eq!(d.sha256, digest_bytes(&good, false).unwrap().sha256);

        let cut = &good[..good.len() - 100];
        let d = digest_bytes(cut, true).unwrap();
        assert!(matches!(d.gzip, Some(Err(GzipError::Truncated))), "{d:?}");
        assert_eq!(d.bytes, cut.len() as u64);

        let mut two = gz(b"first member\n");
        two.extend(gz(b"second member\n"));
        assert_eq!(digest_bytes(&two, true).unwrap().gzip, Some(Ok(())));

        let d = digest_bytes(b"plain text, not gzip", true).unwrap();
        assert!(matches!(d.gzip, Some(Err(_))));
        assert_eq!(d.bytes, 20);
    }

    /// The inflate beside an upload finds what the single read finds, from
    /// its own descriptor's first byte whatever the shared offset; dropped
    /// unfinished, it stops and is waited for.
    #[test]
    fn inflating_beside_gives_what_one_read_gives() {
        let log = b"date=2026-11-02 time=10:00:00 devname=FGT-A srcip=10.1.2.3 action=deny\n"
            .repeat(20_000);
        let good = gz(&log);
        let path = std::env::temp_dir().join(format!("fgb-inflating-{}", std::process::id()));
        std::fs::write(&path, &good).unwrap();
        let mut file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        io::copy(&mut file, &mut io::sink()).unwrap(); // the offset is at the end
        let one = digest_with(
            &good[..],
            Reading {
                check_gzip: true,
                index: Some(Indexer::for_archive(good.len() as u64)),
                part_size: None,
            },
        )
        .unwrap();
        let size = Some(good.len() as u64);
        let never = || false;
        let beside = Inflating::start(file.try_clone().unwrap(), true, size, never).unwrap();
        let beside = beside.finish().unwrap();
        assert_eq!((beside.sha256, beside.bytes), (one.sha256, one.bytes));
        assert_eq!(beside.gzip, Some(Ok(())));
        assert_eq!(beside.index, one.index);
        drop(Inflating::start(file.try_clone().unwrap(), true, size, never).unwrap());
        let at_once = Inflating::start(file, true, size, || true).unwrap();
        let e = at_once.finish().unwrap_err();
        assert!(e.to_string().contains("signal"), "{e}");
    }

    /// One read gives the hash, the gzip verdict and the index; indexing
    /// without the check inflates but gives no verdict; a cut archive is
    /// indexed as far as it goes and says so.
    #[test]
    fn the_index_comes_from_the_same_read() {
        let log = b"date=2026-11-02 time=10:00:00 devname=FGT-A devid=FG1 eventtime=1793624400 type=traffic subtype=forward vd=root srcip=10.1.2.3 dstip=8.8.8.8 action=deny\n".repeat(5_000);
        let good = gz(&log);
        let read = |data: &[u8], check_gzip: bool| {
            let reading = Reading {
                check_gzip,
                index: Some(Indexer::for_archive(data.len() as u64)),
                part_size: None,
            };
            digest_with(data, reading).unwrap()
        };
        let d = read(&good, true);
        assert_eq!(d.sha256, digest_bytes(&good, false).unwrap().sha256);
        assert_eq!(d.gzip, Some(Ok(())));
        let ix = d.index.unwrap();
        assert_eq!(ix.incomplete, None);
        assert_eq!(ix.index.summary.lines, 5_000);
        assert_eq!(ix.index.summary.bytes, log.len() as u64);
        assert!(ix.index.ips.may_contain("10.1.2.3".parse().unwrap()));

        let d = read(&good, false);
        assert_eq!(d.gzip, None, "indexing alone gives no gzip verdict");
        assert_eq!(d.index.unwrap().index.summary.lines, 5_000);

        let cut = &good[..good.len() / 2];
        let d = read(cut, false);
        let ix = d.index.unwrap();
        assert!(ix.incomplete.unwrap().contains("ends early"));
        assert!(ix.index.summary.lines > 0 && ix.index.summary.lines < 5_000);
        assert_eq!(d.bytes, cut.len() as u64, "the whole file is still hashed");
    }
}
