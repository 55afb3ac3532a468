//! A scripted HTTP server standing in for a misbehaving S3 server: every
//! request is answered by a function of the request and its number, one
//! request per connection. For behaviours no real server shows on demand
//! (a listing that never ends, credentials that expire mid-run).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
}

/// What to answer: status, extra headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

pub type Script = Arc<dyn Fn(&Request, usize) -> Answer + Send + Sync>;

pub struct FakeS3 {
    pub port: u16,
    /// Requests answered so far.
    pub served: Arc<AtomicUsize>,
}

impl FakeS3 {
    pub fn start(script: Script) -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (script, counter) = (Arc::clone(&script), Arc::clone(&counter));
                std::thread::spawn(move || {
                    let _ = serve(conn, &script, &counter);
                });
            }
        });
        FakeS3 { port, served }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

fn serve(conn: std::net::TcpStream, script: &Script, counter: &AtomicUsize) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let request = Request {
            method: parts.next().unwrap_or("").to_string(),
            target: parts.next().unwrap_or("").to_string(),
        };
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let answer = script(&request, n);
        let mut head = format!(
            "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\n",
            answer.status,
            answer.body.len()
        );
        for (k, v) in &answer.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes())?;
        if request.method != "HEAD" {
            conn.write_all(&answer.body)?;
        }
        conn.flush()?;
    }
}

/// A ListObjectsV2 page of `keys` (1 byte each), truncated with `token`
/// when one is given.
pub fn list_page(keys: &[String], token: Option<&str>) -> Answer {
    let mut xml = String::from("<?xml version=\"1.0\"?><ListBucketResult>");
    for k in keys {
        xml.push_str(&format!(
            "<Contents><Key>{k}</Key><Size>1</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>"
        ));
    }
    match token {
        Some(t) => xml.push_str(&format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{t}</NextContinuationToken>"
        )),
        None => xml.push_str("<IsTruncated>false</IsTruncated>"),
    }
    xml.push_str("</ListBucketResult>");
    Answer::new(200, xml)
}
