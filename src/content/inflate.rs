//! A `.gz` pushed through in pieces (as a store streams an object) and
//! inflated into any writer: `grep`'s line matcher, or an [`super::Indexer`]
//! for `reindex --content`. A gzip stream that breaks stops the inflating,
//! never the read: the caller still hashes the whole object, and what came
//! before the break is kept, with the reason.

use std::io::{self, Write};

use flate2::write::MultiGzDecoder;

/// The inflated bytes go to `W`.
pub struct Inflate<W: Write> {
    decoder: MultiGzDecoder<Slot<W>>,
    /// Why the gzip stream could not be read to its end.
    broken: Option<String>,
}

/// Holds the writer so that it can be taken back from the decoder even
/// when finishing fails (a cut stream).
struct Slot<W>(Option<W>);

impl<W: Write> Write for Slot<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl<W: Write> Inflate<W> {
    pub fn new(inner: W) -> Inflate<W> {
        Inflate {
            decoder: MultiGzDecoder::new(Slot(Some(inner))),
            broken: None,
        }
    }

    /// The writer, and why the stream broke (`None`: it ended whole).
    pub fn finish(mut self) -> (Option<W>, Option<String>) {
        if self.broken.is_none()
            && let Err(e) = self.decoder.try_finish()
        {
            self.broken = Some(e.to_string());
        }
        (self.decoder.get_mut().0.take(), self.broken)
    }
}

impl<W: Write> Write for Inflate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.broken.is_none()
            && let Err(e) = self.decoder.write_all(buf)
        {
            self.broken = Some(e.to_string());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An indexer takes inflated bytes as a writer.
impl Write for super::Indexer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
