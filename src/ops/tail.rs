//! `fgbackup tail`: a server's live stream (`GET /events`) in a terminal,
//! for boxes without a browser: one line per event, or one JSON object per
//! line with `--json`. It reconnects when the server ends a stream (its
//! maximum life), drops it (the terminal fell behind) or restarts, sending
//! the last id it printed so nothing is missed or printed twice; when the
//! server no longer has the events after that id it says so.

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::units::human_bytes;

/// Settings of one `tail`.
pub struct TailOptions {
    /// The server's base URL (`http://host:8080`), without `/events`.
    pub url: String,
    pub token: String,
    pub json: bool,
    pub tls: ureq::tls::TlsConfig,
}

/// The server sends a comment every 15 s: this long without a byte means
/// the connection is dead even if TCP has not noticed.
const SILENCE: Duration = Duration::from_secs(45);
/// Longest wait between two attempts to reach the server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A stream lives 30 minutes on the server (`api::events::MAX_LIFE`); the
/// body's timeout is a little longer, so a stream ends on the server's side.
const BODY_TIMEOUT: Duration = Duration::from_secs(31 * 60);

/// One event parsed from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub id: Option<String>,
    pub name: String,
    pub data: String,
}

/// The Server-Sent Events line format (WHATWG): fields until a blank line.
#[derive(Debug, Default)]
pub struct Parser {
    id: Option<String>,
    name: String,
    data: Vec<String>,
    /// The last `retry:` the server sent, in ms.
    pub retry: Option<u64>,
}

impl Parser {
    /// Takes one line (without its end); a blank line ends an event.
    pub fn line(&mut self, line: &str) -> Option<Parsed> {
        if line.is_empty() {
            let name = std::mem::take(&mut self.name);
            let data = std::mem::take(&mut self.data);
            let id = self.id.take();
            return (!data.is_empty()).then(|| Parsed {
                id,
                name: if name.is_empty() {
                    "message".into()
                } else {
                    name
                },
                data: data.join("\n"),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "event" => self.name = value.to_string(),
            "data" => self.data.push(value.to_string()),
            "retry" => self.retry = value.parse().ok().or(self.retry),
            _ => {}
        }
        None
    }
}

/// Follows the stream until interrupted; an error only when the server
/// refuses the token or is not an fgbackup API.
pub fn run(opts: &TailOptions) -> Result<i32> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(opts.tls.clone())
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(BODY_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let heard = Arc::new(AtomicU64::new(0));
    watch_silence(Arc::clone(&heard));
    let url = format!("{}/events", opts.url.trim_end_matches('/'));
    let mut last: Option<String> = None;
    let mut connected = false;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut req = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", opts.token))
            .header("Accept", "text/event-stream");
        if let Some(id) = &last {
            req = req.header("Last-Event-ID", id);
        }
        heard.store(now_ms(), Ordering::SeqCst);
        let wait = match req.call() {
            // Never reached: a wrong URL, not a restart; say so and stop.
            Err(e) if last.is_none() && !connected => {
                return Err(Error::runtime(format!(
                    "cannot reach {url}: {e}: check --url (the address of an fgbackup serve or daemon)"
                )));
            }
            Err(e) => {
                eprintln!("tail: cannot reach {url}: {e}; trying again");
                backoff
            }
            Ok(resp) => match resp.status().as_u16() {
                200 => {
                    connected = true;
                    backoff = Duration::from_secs(1);
                    let mut body = resp.into_body();
                    let retry = follow(body.as_reader(), opts.json, &mut last, &heard)?;
                    eprintln!("tail: the stream ended; reconnecting");
                    retry
                }
                401 | 403 => {
                    return Err(Error::usage(format!(
                        "{url} refused the token ({}): pass a token from the server's APP_TOKENS with --token or FGBACKUP_TOKEN",
                        resp.status()
                    )));
                }
                503 => {
                    let after = resp
                        .headers()
                        .get("Retry-After")
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                        .unwrap_or(5);
                    eprintln!(
                        "tail: the server is busy (503: too many streams); trying again in {after} s"
                    );
                    Duration::from_secs(after)
                }
                status => {
                    return Err(Error::runtime(format!(
                        "{url} answered {status}: is --url an fgbackup serve or daemon?"
                    )));
                }
            },
        };
        std::thread::sleep(wait);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Prints the events of one stream until it ends; returns how long to wait
/// before reconnecting (the server's `retry:`).
fn follow(
    body: impl std::io::Read,
    json: bool,
    last: &mut Option<String>,
    heard: &AtomicU64,
) -> Result<Duration> {
    let mut parser = Parser::default();
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(body).lines() {
        let Ok(line) = line else { break };
        heard.store(now_ms(), Ordering::SeqCst);
        let Some(event) = parser.line(&line) else {
            continue;
        };
        if event.id.is_some() {
            last.clone_from(&event.id);
        }
        let text = if json {
            render_json(&event)
        } else {
            render_line(&event)
        };
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            // The reader of our output went away (`tail | head`).
            std::process::exit(0);
        }
    }
    Ok(Duration::from_millis(parser.retry.unwrap_or(3000)))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Exits when nothing, not even a keepalive comment, arrived for
/// [`SILENCE`]: a server whose host vanished never closes the connection,
/// and the read would wait for the body's whole timeout.
fn watch_silence(heard: Arc<AtomicU64>) {
    let started = Instant::now();
    let _ = std::thread::Builder::new()
        .name("tail-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let quiet = now_ms().saturating_sub(heard.load(Ordering::SeqCst));
                if quiet > SILENCE.as_millis() as u64 && started.elapsed() > SILENCE {
                    eprintln!(
                        "fgbackup: error: nothing from the server for {} s (it sends a comment every 15 s): the connection is dead; run tail again",
                        SILENCE.as_secs()
                    );
                    std::process::exit(1);
                }
            }
        });
}

/// `--json`: one object per line, `{"id", "event", "data"}`.
pub fn render_json(e: &Parsed) -> String {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone()));
    json!({"id": e.id, "event": e.name, "data": data}).to_string()
}

/// One line a person reads.
pub fn render_line(e: &Parsed) -> String {
    let d: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    // Keys and reasons come from file names and servers: a control
    // character would move the cursor, retitle the terminal or forge a
    // line; shown escaped, as the upload's own log does.
    let s = |k: &str| printable(d[k].as_str().unwrap_or(""));
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    let f = |k: &str| d[k].as_f64().unwrap_or(0.0);
    let now = crate::timefmt::iso8601(std::time::SystemTime::now());
    let clock = now.get(11..19).unwrap_or("");
    let what = match e.name.as_str() {
        "run_started" => format!(
            "run {} started on {}: {} -> {}",
            n("run_id"),
            s("host"),
            s("source"),
            s("destination")
        ),
        "file_archived" => format!(
            "{} {} ({}) {} in {:.2} s, sha256 {}",
            if s("status") == "uploaded" {
                "archived"
            } else {
                "already archived"
            },
            s("key"),
            s("device"),
            human_bytes(n("bytes")),
            f("seconds"),
            s("sha256")
        ),
        "file_failed" => format!(
            "FAILED {} ({}): {}: {}",
            s("key"),
            s("device"),
            s("status"),
            s("reason")
        ),
        "run_finished" => format!(
            "run {} finished {}: {} files, {} uploaded, {} skipped, {} failed, {} deleted, {} in {:.1} s",
            n("run_id"),
            s("status"),
            n("files"),
            n("uploaded"),
            n("skipped"),
            n("failed"),
            n("deleted"),
            human_bytes(n("bytes")),
            f("seconds")
        ),
        "verify_finished" => format!(
            "verify finished {}: {} checked, {} missing, {} altered, {} size mismatches, {} extra, {} errors",
            s("status"),
            n("checked"),
            n("missing"),
            n("altered"),
            n("size_mismatch"),
            n("extra"),
            n("errors")
        ),
        "index_updated" => format!(
            "content index: {} archive(s) indexed, {} in all",
            n("indexed"),
            n("archives")
        ),
        "reset" => {
            "some events were missed (the server no longer keeps them): reload what you watch"
                .to_string()
        }
        other => format!("{}: {}", printable(other), printable(&e.data)),
    };
    format!("{clock} {what}")
}

/// `text` with control characters escaped (`\u{1b}`, `\n`), and the
/// invisible format characters that reorder or hide text on a terminal
/// (`\u{202e}` shows `x\u{202e}gz.exe` as `xexe.zg`).
fn printable(text: &str) -> String {
    let hidden = |c: char| {
        matches!(c, '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}')
    };
    text.chars()
        .map(|c| {
            if c.is_control() || hidden(c) {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Parsed>, Option<u64>) {
        let mut p = Parser::default();
        let events = text.lines().filter_map(|l| p.line(l)).collect();
        (events, p.retry)
    }

    #[test]
    fn the_event_stream_format() {
        let (events, retry) = parse(
            "retry: 3000\n\n: keepalive\n\nid: 7\nevent: file_archived\ndata: {\"key\":\"a\"}\n\n\
             data: one\ndata:two\n\nid: 8\nevent: empty\n\n",
        );
        assert_eq!(retry, Some(3000));
        assert_eq!(
            events,
            vec![
                Parsed {
                    id: Some("7".into()),
                    name: "file_archived".into(),
                    data: "{\"key\":\"a\"}".into()
                },
                Parsed {
                    id: None,
                    name: "message".into(),
                    data: "one\ntwo".into()
                },
            ]
        );
    }

    #[test]
    fn lines_say_what_happened() {
        let e = Parsed {
            id: Some("9".into()),
            name: "file_failed".into(),
            data: r#"{"key":"d/x.gz","device":"d","status":"failed_gzip","reason":"truncated"}"#
                .into(),
        };
        assert!(render_line(&e).ends_with("FAILED d/x.gz (d): failed_gzip: truncated"));
        let forged = Parsed {
            id: None,
            name: "file_failed".into(),
            data: r#"{"key":"a\u001b]0;PWNED\u0007\n00:00:00 FAILED fake","reason":"r"}"#.into(),
        };
        let line = render_line(&forged);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains(r"a\u{1b}]0;PWNED\u{7}\n00:00:00"), "{line}");
        assert_eq!(printable("b\u{202e}gz.exe"), r"b\u{202e}gz.exe");
        let v: Value = serde_json::from_str(&render_json(&e)).unwrap();
        assert_eq!(v["id"], "9");
        assert_eq!(v["data"]["status"], "failed_gzip");
    }
}
