//! Checks of the mail server: TCP reachability and its greeting.

use crate::notify::email;
use std::net::{TcpStream, ToSocketAddrs};

use super::*;

/// The SMTP server answers: for plain and STARTTLS it must send its `220`
/// greeting within [`email::SMTP_STEP_TIMEOUT`], which catches a server
/// (or a wrong port) that accepts connections and never speaks, the case
/// that would make every email time out. Bounded as a whole, name lookup
/// included, like the email itself.
pub(super) fn check_smtp(r: &mut Report, mail: &email::EmailConfig) {
    let label = format!("SMTP server {}:{}", mail.host, mail.port);
    let fix = "check --smtp-host/SMTP_HOST, --smtp-port/SMTP_PORT and --email-method/EMAIL_METHOD, and the firewall";
    let (host, port, method) = (mail.host.clone(), mail.port, mail.method);
    let probe = crate::signal::run_bounded("doctor-smtp", email::EMAIL_TIMEOUT, move || {
        smtp_greeting(&host, port, method)
    });
    match probe {
        Ok(Ok(detail)) => r.line(Level::Ok, &label, &detail, ""),
        Ok(Err(why)) => r.line(Level::Fail, &label, &why.to_string(), fix),
        Err(why) => r.line(Level::Fail, &label, &why.to_string(), fix),
    }
}

/// Connects to the first address of `host` that accepts, then reads the
/// greeting line (not for SMTPS, whose first bytes are TLS).
pub(super) fn smtp_greeting(
    host: &str,
    port: u16,
    method: email::Method,
) -> std::result::Result<String, NoGreeting> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(NoGreeting::Resolve)?;
    let mut last = None;
    let mut conn = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let conn = conn.ok_or(NoGreeting::Connect(last))?;
    if method == email::Method::Smtps {
        return Ok("reachable (smtps: TLS from the first byte, tried by the first email)".into());
    }
    conn.set_read_timeout(Some(email::SMTP_STEP_TIMEOUT))
        .map_err(NoGreeting::Socket)?;
    let mut line = String::new();
    let read = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(std::io::Read::take(conn, 512)),
        &mut line,
    );
    let shown: String = line
        .trim_end()
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    match read {
        Ok(_) if line.starts_with("220") => Ok(format!("reachable, greets: {shown}")),
        Ok(0) => Err(NoGreeting::Closed),
        Ok(_) => Err(NoGreeting::Other(shown)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(NoGreeting::Silent(method))
        }
        Err(e) => Err(NoGreeting::Read(e)),
    }
}

/// Why the mail server gave no SMTP greeting, with the socket's own error.
#[derive(Debug)]
pub(super) enum NoGreeting {
    Resolve(std::io::Error),
    /// No address accepted; the last connect error, if any address was tried.
    Connect(Option<std::io::Error>),
    Socket(std::io::Error),
    Closed,
    /// Something else than a 220 line (control characters removed).
    Other(String),
    /// Connected, but nothing within the step timeout.
    Silent(email::Method),
    Read(std::io::Error),
}

impl std::fmt::Display for NoGreeting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoGreeting::Resolve(e) => write!(f, "name does not resolve ({e})"),
            NoGreeting::Connect(None) => f.write_str("not reachable (no address)"),
            NoGreeting::Connect(Some(e)) => write!(f, "not reachable ({e})"),
            NoGreeting::Socket(e) => write!(f, "cannot set a read timeout: {e}"),
            NoGreeting::Closed => f.write_str("closes the connection without a greeting"),
            NoGreeting::Other(shown) => write!(f, "answers '{shown}' instead of a 220 greeting"),
            NoGreeting::Silent(method) => write!(
                f,
                "accepts connections but sends no greeting within {} s (an SMTPS port with EMAIL_METHOD={}?)",
                email::SMTP_STEP_TIMEOUT.as_secs(),
                method.as_str()
            ),
            NoGreeting::Read(e) => write!(f, "greeting not readable ({e})"),
        }
    }
}

pub(super) fn check_tcp(r: &mut Report, what: &str, host: &str, port: u16, fix: &str) -> bool {
    let label = format!("{what} {host}:{port}");
    let addrs = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            r.line(
                Level::Fail,
                &label,
                &format!("name does not resolve ({e})"),
                fix,
            );
            return false;
        }
    };
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(_) => {
                r.line(Level::Ok, &label, "reachable", "");
                return true;
            }
            Err(e) => last = e.to_string(),
        }
    }
    r.line(Level::Fail, &label, &format!("not reachable ({last})"), fix);
    false
}

/// `https://minio.lan:9000/x` → (`minio.lan`, 9000).
pub(super) fn host_port(url: &str) -> (String, u16) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let default = if scheme == "http" { 80 } else { 443 };
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse() {
            Ok(port) => (h.trim_matches(['[', ']']).to_string(), port),
            Err(_) => (authority.to_string(), default),
        },
        _ => (authority.trim_matches(['[', ']']).to_string(), default),
    }
}
