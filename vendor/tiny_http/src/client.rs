use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use std::net::SocketAddr;
use std::str::FromStr;

use crate::common::{HTTPVersion, Method, StatusCode};
use crate::util::refined_tcp_stream::Deadline;
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::{Limits, Request};

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // set by a request whose answer carries `Connection: close`: once that
    // answer is written, no further request is read
    close_after: Arc<std::sync::atomic::AtomicBool>,

    // true if the connection goes through SSL
    secure: bool,

    limits: Arc<Limits>,

    // when the request head being read must be complete (Limits::head_timeout)
    deadline: Deadline,

    // bytes of the request head read so far (Limits::max_head_bytes)
    head_bytes: usize,

    // set when a request's body was dropped before its end: the rest of it
    // is still in the stream, so no further request can be read
    unread_body: Arc<AtomicBool>,

    // the write half's descriptor, handed to each request (fgbackup patch 13)
    socket_fd: Option<i32>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    /// the request line is longer than `Limits::max_head_bytes`
    RequestLineTooLong,
    /// the request head is longer than `Limits::max_head_bytes`
    HeadersTooLarge(HTTPVersion),
    /// the body's length is ambiguous (see `RequestCreationError::BadFraming`)
    BadFraming(HTTPVersion, &'static str),
    ReadIoError(IoError),
}

/// Why reading one line of the request head failed.
enum LineError {
    Io(IoError),
    TooLong,
    NotAscii,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: Arc<Limits>,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let deadline = read_socket.deadline();
        #[cfg(unix)]
        let socket_fd = write_socket.tcp_fd();
        #[cfg(not(unix))]
        let socket_fd = None;

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            close_after: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            secure,
            limits,
            deadline,
            head_bytes: 0,
            unread_body: Arc::new(AtomicBool::new(false)),
            socket_fd,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line. Fails once the head is longer
    ///  than `Limits::max_head_bytes`, before storing more.
    fn read_next_line(&mut self) -> Result<AsciiString, LineError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;
        let max = self.limits.max_head_bytes.unwrap_or(usize::MAX);

        loop {
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(b) => b.map_err(LineError::Io)?,
                None => {
                    let eof = IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF");
                    return Err(LineError::Io(eof));
                }
            };
            self.head_bytes += 1;
            if self.head_bytes > max {
                return Err(LineError::TooLong);
            }

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf).map_err(|_| LineError::NotAscii);
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Waits until the previous request's body is dropped, then starts the
    /// clock of `Limits::head_timeout` for the next request.
    ///
    /// Waiting for the body tells whether it was read to its end; if not,
    /// its rest is still in the stream and would be parsed as the next
    /// request, so the connection ends. (Bodies of up to 1 KiB are read with
    /// the head, so this waits only for larger ones.)
    fn prepare_next_head(&mut self) -> Result<(), ReadError> {
        self.next_header_source
            .wait_turn()
            .map_err(ReadError::ReadIoError)?;
        if self.unread_body.load(Ordering::Acquire) {
            let e = IoError::new(ErrorKind::ConnectionAborted, "request body left unread");
            return Err(ReadError::ReadIoError(e));
        }
        self.head_bytes = 0;
        self.start_clock();
        Ok(())
    }

    fn start_clock(&mut self) {
        let timeout = self.limits.head_timeout;
        self.deadline.set(timeout.map(|t| Instant::now() + t));
    }

    /// Waits until the previous request is answered, so that one request per
    /// connection is in flight: a client pipelining requests without reading
    /// the answers used to make this thread queue requests without bound.
    /// Called once the next head is read, the wait is normally over already;
    /// if not, the clock restarts after it, as the wait was the server's.
    fn wait_previous_answer(&mut self) {
        if self.sink.wait_previous() {
            self.start_clock();
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        self.prepare_next_head()?;
        let result = self.read_head_and_build();
        // Only the head (and a small body read with it) is under the deadline.
        self.deadline.set(None);
        result
    }

    fn read_head_and_build(&mut self) -> Result<Request, ReadError> {
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line().map_err(|e| match e {
                    LineError::Io(e) => ReadError::ReadIoError(e),
                    LineError::TooLong => ReadError::RequestLineTooLong,
                    LineError::NotAscii => ReadError::WrongRequestLine,
                })?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line().map_err(|e| match e {
                        LineError::Io(e) => ReadError::ReadIoError(e),
                        LineError::TooLong => ReadError::HeadersTooLarge(version.clone()),
                        LineError::NotAscii => ReadError::WrongHeader(version.clone()),
                    })?;

                    if line.is_empty() {
                        break;
                    };
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        self.wait_previous_answer();
        // The previous answer closed the connection: this request is never
        // answered (the client was told), the connection ends here.
        if self.close_after.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ReadError::ReadIoError(std::io::Error::new(
                ErrorKind::ConnectionAborted,
                "the previous answer closed the connection",
            )));
        }

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            // peer_addr() fails when the client is already gone; the request
            // will fail on its own then, no need to panic here.
            self.remote_addr.as_ref().ok().copied().flatten(),
            data_source,
            writer,
            self.unread_body.clone(),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
                request::RequestCreationError::BadFraming(why) => {
                    ReadError::BadFraming(version, why)
                }
            }
        })?;

        // return the request
        Ok(request
            .with_close_flag(Arc::clone(&self.close_after))
            .with_socket_fd(self.socket_fd)
            .with_deadline(self.deadline.clone()))
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                Err(ReadError::ReadIoError(ref err))
                    if err.kind() == ErrorKind::TimedOut && self.head_bytes > 0 =>
                {
                    // request timeout: part of a request came, not all of it
                    self.reject(408, HTTPVersion(1, 1), "request not received in time");
                    return None; // closing the connection
                }

                // An idle connection timing out, EOF, a reset: nothing to answer.
                Err(ReadError::ReadIoError(_)) => return None,

                // For all other errors we don't know where the next request would
                // start, so we answer and close.
                Err(ReadError::WrongRequestLine) => {
                    self.reject(400, HTTPVersion(1, 1), "malformed request line");
                    return None;
                }

                Err(ReadError::WrongHeader(ver)) => {
                    self.reject(400, ver, "malformed header");
                    return None;
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    self.reject(417, ver, "unsupported Expect header");
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::RequestLineTooLong) => {
                    self.reject(414, HTTPVersion(1, 1), "request line too long");
                    return None;
                }

                Err(ReadError::HeadersTooLarge(ver)) => {
                    self.reject(431, ver, "request headers too large");
                    return None;
                }

                Err(ReadError::BadFraming(ver, why)) => {
                    self.reject(400, ver, why);
                    return None;
                }

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                // Answered with the request's own writer: 0.12.0 took a second
                // writer, which waited forever for the first one to finish.
                let reason = "This server only supports HTTP versions 1.0 and 1.1";
                let writer = rq.into_writer();
                write_rejection(&self.limits, writer, 505, HTTPVersion(1, 1), reason);
                return None;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

impl ClientConnection {
    /// Answers with one of tiny_http's own answers; the caller then closes
    /// the connection.
    fn reject(&mut self, status: u16, version: HTTPVersion, reason: &'static str) {
        let writer = self.sink.next().unwrap();
        write_rejection(&self.limits, writer, status, version, reason);
    }
}

/// Writes `Limits::rejection`'s answer with `Connection: close`.
fn write_rejection<W: Write>(
    limits: &Limits,
    mut writer: W,
    status: u16,
    version: HTTPVersion,
    reason: &'static str,
) {
    let response = (limits.rejection)(StatusCode(status), reason).with_connection_close();
    response
        .raw_print(&mut writer, version, &[], false, None)
        .and_then(|()| writer.flush())
        .ok();
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
