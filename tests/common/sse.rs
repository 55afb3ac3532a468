//! A Server-Sent Events client over a raw socket: the answer's head, then
//! each event (id, name, data) as it arrives, on a channel.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::rawhttp;

/// One event as the stream carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<u64>,
    pub name: String,
    pub data: serde_json::Value,
}

/// An open stream: its status and head, and its events.
pub struct Stream {
    pub status: u16,
    pub head: String,
    /// Held open while the stream is; dropping it hangs up.
    _socket: TcpStream,
    events: Receiver<Event>,
}

impl Stream {
    /// `GET /events` with `token`, and `Last-Event-ID: last` when given.
    pub fn open(addr: &str, token: &str, last: Option<&str>) -> Stream {
        let mut socket = rawhttp::connect(addr).expect("connect");
        let last = last.map_or(String::new(), |l| format!("Last-Event-ID: {l}\r\n"));
        write!(
            socket,
            "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{last}\r\n"
        )
        .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(socket.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut id, mut name, mut data) = (None, String::new(), String::new());
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if !name.is_empty() {
                        let data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
                        if tx
                            .send(Event {
                                id,
                                name: name.clone(),
                                data,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                    (id, name, data) = (None, String::new(), String::new());
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
        });
        socket.set_read_timeout(None).unwrap();
        Stream {
            status,
            head,
            _socket: socket,
            events,
        }
    }

    /// The next event within `wait`.
    pub fn next(&self, wait: Duration) -> Option<Event> {
        self.events.recv_timeout(wait).ok()
    }

    /// Events until one named `name` (included), within `wait`.
    pub fn until(&self, name: &str, wait: Duration) -> Vec<Event> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(e) = self.next(left) else {
                panic!("no '{name}' within {wait:?}; got {out:?}");
            };
            let done = e.name == name;
            out.push(e);
            if done {
                return out;
            }
        }
    }

    /// Every event that arrives within `wait`.
    pub fn drain(&self, wait: Duration) -> Vec<Event> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(e) = self.next(deadline.saturating_duration_since(Instant::now())) {
            out.push(e);
        }
        out
    }
}
