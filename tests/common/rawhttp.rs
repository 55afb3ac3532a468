//! Raw HTTP over TCP, for requests no well-behaved client would send, and
//! what /proc says about a server process (memory, threads, descriptors).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How a read from the server ended.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum End {
    /// The server closed the connection (EOF or reset).
    Closed,
    /// The deadline passed with the connection still open.
    StillOpen,
}

/// Connects to `addr` ("127.0.0.1:port") with a short connect timeout.
pub fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let sock: std::net::SocketAddr = addr.parse().expect("an IP:port address");
    TcpStream::connect_timeout(&sock, Duration::from_secs(5))
}

/// Reads until the server closes the connection or `deadline` passes.
pub fn read_until_close(s: &mut TcpStream, deadline: Instant) -> (String, End) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&out).into_owned(), End::StillOpen);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), End::Closed),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset after the answer: the server closed.
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), End::Closed),
        }
    }
}

/// Sends `request` on a new connection and reads until the server closes it
/// (or `wait` passes).
pub fn exchange(addr: &str, request: &[u8], wait: Duration) -> (String, End) {
    let mut s = connect(addr).expect("connect");
    s.write_all(request).expect("send request");
    read_until_close(&mut s, Instant::now() + wait)
}

/// Status codes of every HTTP response in `text`, in order.
pub fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.")
        .filter_map(|(i, _)| text.get(i + 9..i + 12))
        .filter_map(|code| code.parse().ok())
        .collect()
}

/// The body of the first response in `text`.
pub fn first_body(text: &str) -> &str {
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    body.split("HTTP/1.").next().unwrap_or("")
}

/// A number field of /proc/PID/status (`VmRSS` in KiB, `Threads`).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process gone");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Open descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Open sockets of process `pid` (its listener included).
pub fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Sets the descriptor limit (soft and hard) of a running process of ours.
pub fn set_nofile(pid: u32, n: u64) {
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: prlimit(2) on our own child, with a valid struct.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Polls `check` every 20 ms until it gives `Some`, or panics with `what`
/// after `within`.
pub fn wait_for<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP server that accepts connections and never answers: an S3 endpoint
/// that hangs. Dropping it closes every held connection.
pub struct Blackhole {
    pub port: u16,
    held: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = std::sync::Arc::downgrade(&held);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let (Ok(conn), Some(keep)) = (conn, keep.upgrade()) else {
                    break;
                };
                keep.lock().unwrap().push(conn);
            }
        });
        Blackhole { port, held }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}
