use std::io::Read;
use std::io::Result as IoResult;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A Reader that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached
/// when the destructor is called, `unread` is set: the rest of the body is
/// still in the stream, so the stream cannot be used for another request.
///
/// (In 0.12.0 the destructor read the rest into a buffer of the remaining
/// size: a client announcing a huge `Content-Length` made the server allocate
/// that much, or abort, and a client that never sent the body blocked the
/// thread that dropped the request for good.)
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    unread: Arc<AtomicBool>,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub fn new(reader: R, size: usize, unread: Arc<AtomicBool>) -> EqualReader<R> {
        EqualReader {
            reader,
            size,
            unread,
        }
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        if self.size > 0 {
            self.unread.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());
        let unread = Arc::new(AtomicBool::new(false));

        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5, unread.clone());

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        assert!(!unread.load(Ordering::Acquire));
        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());
        let unread = Arc::new(AtomicBool::new(false));

        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5, unread.clone());

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        // The rest of the body is left alone and reported.
        assert!(unread.load(Ordering::Acquire));
        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, "ello world");
    }
}
