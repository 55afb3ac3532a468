//! A fault-injecting HTTP proxy in front of the S3 server: it forwards
//! requests unchanged, except that requests matching a rule get an error
//! status (a real 5xx over a real socket), or lose response headers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What to do with matching requests.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    /// Substring of the request target (path and query).
    pub target_contains: &'static str,
    /// Answer this status instead of forwarding...
    pub status: u16,
    /// ...for at most this many matching requests (then forward).
    pub times: usize,
}

/// What the proxy does to `x-amz-meta-*` headers in HEAD answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeadMeta {
    /// Forward unchanged.
    #[default]
    Keep,
    /// Remove them, like a misconfigured gateway.
    Strip,
    /// Replace `x-amz-meta-sha256` with a wrong digest, like a corrupted store.
    Corrupt,
}

/// Holds matching requests until opened; once open it stays open.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }
}

/// Which request to hold at the gate: the `skip`+1-th whose method is
/// `method` (any when empty) and whose target contains `target_contains`.
#[derive(Clone, Debug)]
pub struct Hold {
    pub method: &'static str,
    pub target_contains: &'static str,
    pub skip: usize,
}

/// Everything a proxy can do; `Options::default()` forwards unchanged.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub rules: Vec<Rule>,
    pub head_meta: HeadMeta,
    pub hold: Option<Hold>,
    /// After this many connections, close the listening socket, so the
    /// endpoint refuses connections from then on (a server going down).
    pub close_after: Option<usize>,
    /// Request headers removed before forwarding (lowercase names), e.g.
    /// `if-none-match` to play a server that ignores conditional writes.
    /// Only for upstreams that do not check signatures (moto).
    pub strip_request_headers: Vec<&'static str>,
    /// Request headers added to every request before forwarding, e.g.
    /// what moto demands where AWS does not. Only for upstreams that do
    /// not check signatures (moto).
    pub add_request_headers: Vec<(&'static str, &'static str)>,
    /// (method, target substring): the first such request reaches the
    /// server, which does the work, but its answer is replaced by a 500 (a
    /// gateway timing out, a reset after the request was processed).
    pub lose_answer: Option<(&'static str, &'static str)>,
    /// (method, target substring, bytes): such answers lose their last
    /// bytes and the connection closes (a reset mid-body).
    pub cut_answer: Option<(&'static str, &'static str, usize)>,
    /// (method, target substring): every such request body reaches the
    /// server with its last byte flipped (a body damaged in flight).
    pub corrupt_body: Option<(&'static str, &'static str)>,
    /// (method, target substring): such requests are answered `400
    /// BadDigest`, as AWS answers a body that does not match its checksum.
    pub reject_digest: Option<(&'static str, &'static str)>,
    /// (method, target substring, bytes): such an answer sends its head and
    /// `bytes` of its body, then waits at the gate before the rest (a
    /// download that stalls half-way, for as long as the test likes).
    pub stall_answer: Option<(&'static str, &'static str, usize)>,
    /// Such requests, once `after` of them went through, are answered with
    /// an S3 error (`status`, `code`) instead: credentials that expire
    /// mid-run (`400 ExpiredToken`).
    pub fail_after: Option<FailAfter>,
}

/// See [`Options::fail_after`].
#[derive(Clone, Copy, Debug)]
pub struct FailAfter {
    pub method: &'static str,
    pub target_contains: &'static str,
    pub after: usize,
    pub status: u16,
    pub code: &'static str,
}

/// What happens to requests and answers on the way (see [`Options`]).
#[derive(Default)]
struct Tweaks {
    strip: Vec<&'static str>,
    add: Vec<(&'static str, &'static str)>,
    lose_answer: Option<(&'static str, &'static str)>,
    lost_one: AtomicBool,
    cut_answer: Option<(&'static str, &'static str, usize)>,
    corrupt_body: Option<(&'static str, &'static str)>,
    reject_digest: Option<(&'static str, &'static str)>,
    stall_answer: Option<(&'static str, &'static str, usize)>,
    fail_after: Option<FailAfter>,
    fail_seen: AtomicUsize,
}

pub struct FaultProxy {
    pub port: u16,
    /// Requests that reached the gate (held, or passed once it was open).
    pub held: Arc<AtomicUsize>,
    /// Requests whose target contains `hold` wait here (see [`FaultProxy::start_holding`]).
    pub gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
    /// Requests answered with an injected error.
    pub injected: Arc<AtomicUsize>,
    /// `METHOD target` of every request seen.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream_port`.
    /// `head` says what happens to `x-amz-meta-*` headers of HEAD answers.
    pub fn start(upstream_port: u16, rules: Vec<Rule>, head: HeadMeta) -> FaultProxy {
        Self::start_holding(upstream_port, rules, head, None)
    }

    /// Like [`FaultProxy::start`], and requests whose target contains `hold`
    /// are not forwarded until `gate.open()`.
    pub fn start_holding(
        upstream_port: u16,
        rules: Vec<Rule>,
        head_meta: HeadMeta,
        hold: Option<&'static str>,
    ) -> FaultProxy {
        let hold = hold.map(|t| Hold {
            method: "",
            target_contains: t,
            skip: 0,
        });
        Self::start_with(
            upstream_port,
            Options {
                rules,
                head_meta,
                hold,
                ..Options::default()
            },
        )
    }

    /// The general form, see [`Options`].
    pub fn start_with(upstream_port: u16, opts: Options) -> FaultProxy {
        let Options {
            rules,
            head_meta,
            hold,
            close_after,
            strip_request_headers,
            add_request_headers,
            lose_answer,
            cut_answer,
            corrupt_body,
            reject_digest,
            stall_answer,
            fail_after,
        } = opts;
        let strip = Arc::new(Tweaks {
            strip: strip_request_headers,
            add: add_request_headers,
            lose_answer,
            cut_answer,
            corrupt_body,
            reject_digest,
            stall_answer,
            fail_after,
            ..Tweaks::default()
        });
        let gate = Arc::new(Gate::default());
        let held = Arc::new(AtomicUsize::new(0));
        let matches = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let injected = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let budgets: Arc<Mutex<Vec<usize>>> =
            Arc::new(Mutex::new(rules.iter().map(|r| r.times).collect()));
        {
            let stop = stop.clone();
            let injected = injected.clone();
            let seen = seen.clone();
            let gate = gate.clone();
            let held = held.clone();
            std::thread::spawn(move || {
                for (n, conn) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let rules = rules.clone();
                    let budgets = budgets.clone();
                    let injected = injected.clone();
                    let seen = seen.clone();
                    let gate = gate.clone();
                    let hold = hold.clone();
                    let held = held.clone();
                    let matches = matches.clone();
                    let strip = strip.clone();
                    std::thread::spawn(move || {
                        let held = Held {
                            gate: &gate,
                            hold,
                            held: &held,
                            matches: &matches,
                        };
                        let _ = serve(
                            conn,
                            upstream_port,
                            &rules,
                            &budgets,
                            &injected,
                            &seen,
                            head_meta,
                            &held,
                            &strip,
                        );
                    });
                    if close_after.is_some_and(|c| n + 1 >= c) {
                        break; // drops the listener: connections are refused
                    }
                }
            });
        }
        FaultProxy {
            port,
            held,
            gate,
            stop,
            injected,
            seen,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Held<'a> {
    gate: &'a Gate,
    hold: Option<Hold>,
    held: &'a AtomicUsize,
    matches: &'a AtomicUsize,
}

impl Held<'_> {
    /// Waits at the gate if this request is the one to hold.
    fn maybe_wait(&self, method: &str, target: &str) {
        let Some(h) = &self.hold else { return };
        if (!h.method.is_empty() && h.method != method) || !target.contains(h.target_contains) {
            return;
        }
        if self.matches.fetch_add(1, Ordering::SeqCst) != h.skip {
            return;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        self.gate.wait();
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    client: TcpStream,
    upstream_port: u16,
    rules: &[Rule],
    budgets: &Mutex<Vec<usize>>,
    injected: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
    head_meta: HeadMeta,
    held: &Held<'_>,
    tweaks: &Tweaks,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    {
        // Request head (one request per connection: answers close it).
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let end = line == "\r\n";
            head.push(line);
            if end {
                break;
            }
        }
        let request_line = head[0].trim_end().to_string();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        seen.lock().unwrap().push(format!("{method} {target}"));
        let length: usize = head
            .iter()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;

        let hit = {
            let mut budgets = budgets.lock().unwrap();
            rules.iter().enumerate().find_map(|(i, r)| {
                (r.method == method && target.contains(r.target_contains) && budgets[i] > 0).then(
                    || {
                        budgets[i] -= 1;
                        r.status
                    },
                )
            })
        };
        if let Some(status) = hit {
            injected.fetch_add(1, Ordering::SeqCst);
            return write_error(&mut client, status);
        }

        held.maybe_wait(&method, &target);
        let picked = |(m, t): (&str, &str)| method == m && target.contains(t);
        if let Some(f) = tweaks.fail_after
            && picked((f.method, f.target_contains))
            && tweaks.fail_seen.fetch_add(1, Ordering::SeqCst) >= f.after
        {
            injected.fetch_add(1, Ordering::SeqCst);
            return write_error_code(&mut client, f.status, f.code);
        }
        if tweaks.reject_digest.is_some_and(picked) {
            injected.fetch_add(1, Ordering::SeqCst);
            return write_error_code(&mut client, 400, "BadDigest");
        }
        if tweaks.corrupt_body.is_some_and(picked)
            && let Some(last) = body.last_mut()
        {
            *last ^= 0xff;
            injected.fetch_add(1, Ordering::SeqCst);
        }
        // Forward with `Connection: close` so the answer ends at EOF.
        let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
        for line in &head[..head.len() - 1] {
            let lower = line.to_ascii_lowercase();
            let name = lower.split(':').next().unwrap_or("");
            if name != "connection" && !tweaks.strip.contains(&name) {
                upstream.write_all(line.as_bytes())?;
            }
        }
        for (name, value) in &tweaks.add {
            upstream.write_all(format!("{name}: {value}\r\n").as_bytes())?;
        }
        upstream.write_all(b"Connection: close\r\n\r\n")?;
        upstream.write_all(&body)?;
        let mut answer = Vec::new();
        upstream.read_to_end(&mut answer)?;
        if tweaks.lose_answer.is_some_and(picked) && !tweaks.lost_one.swap(true, Ordering::SeqCst) {
            injected.fetch_add(1, Ordering::SeqCst);
            return write_error(&mut client, 500);
        }
        if let Some((m, t, n)) = tweaks.cut_answer
            && picked((m, t))
            && answer.len() > n
        {
            injected.fetch_add(1, Ordering::SeqCst);
            client.write_all(&answer[..answer.len() - n])?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(answer.len(), |p| p + 4);
        let (resp_head, resp_body) = answer.split_at(split);
        let resp_head = String::from_utf8_lossy(resp_head);
        let mut out = String::new();
        for line in resp_head.split_inclusive("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:") {
                continue;
            }
            if method == "HEAD" && lower.starts_with("x-amz-meta-") {
                match head_meta {
                    HeadMeta::Keep => {}
                    HeadMeta::Strip => continue,
                    HeadMeta::Corrupt => {
                        if lower.starts_with("x-amz-meta-sha256:") {
                            out.push_str(&format!("x-amz-meta-sha256: {}\r\n", "ab".repeat(32)));
                            continue;
                        }
                    }
                }
            }
            if line == "\r\n" {
                out.push_str("Connection: close\r\n");
            }
            out.push_str(line);
        }
        client.write_all(out.as_bytes())?;
        if let Some((m, t, n)) = tweaks.stall_answer
            && picked((m, t))
            && resp_body.len() > n
        {
            client.write_all(&resp_body[..n])?;
            client.flush()?;
            held.held.fetch_add(1, Ordering::SeqCst);
            held.gate.wait();
            client.write_all(&resp_body[n..])?;
        } else {
            client.write_all(resp_body)?;
        }
        client.flush()?;
        let _ = client.shutdown(Shutdown::Both);
    }
    Ok(())
}

/// Answers `status` with an S3 error document and closes the connection.
fn write_error(client: &mut TcpStream, status: u16) -> std::io::Result<()> {
    write_error_code(client, status, "InternalError")
}

fn write_error_code(client: &mut TcpStream, status: u16, code: &str) -> std::io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>injected by test proxy</Message></Error>"
    );
    write!(
        client,
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
