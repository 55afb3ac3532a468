//! A generator of realistic FortiGate syslog archives (`key=value` traffic,
//! UTM and event lines; one folder per device; hourly rotated `.gz` files).
//!
//! It exists for the demo, the tests and the benchmarks, so that all three
//! exercise the same kind of data a collector really holds. Output is
//! deterministic for a given seed.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::{Compression, write::GzEncoder};

use crate::error::{Error, Result};
use crate::timefmt;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    pub out: PathBuf,
    pub devices: u32,
    pub files_per_device: u32,
    /// Target compressed size of each file, in bytes.
    pub file_size: u64,
    pub seed: u64,
}

/// Writes the files and returns their paths.
pub fn generate(spec: &GenSpec) -> Result<Vec<PathBuf>> {
    let mut rng = Rng(spec.seed.max(1));
    let mut paths = Vec::new();
    // Files end one hour apart, the newest two hours ago, like hourly rotation.
    let newest = SystemTime::now() - Duration::from_secs(2 * 3600);
    for d in 0..spec.devices {
        let devname = format!("FGT60F-SITE{:02}", d + 1);
        let devid = format!("FGT60FTK21{:06}", 100_000 + u64::from(d) * 7919 % 900_000);
        let dir = spec.out.join(&devname);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        for f in 0..spec.files_per_device {
            let age = Duration::from_secs(3600 * u64::from(spec.files_per_device - 1 - f));
            let end = newest - age;
            let start_secs = timefmt::unix_seconds(end) - 3600;
            let stamp = timefmt::iso8601(end).replace(':', "");
            let path = dir.join(format!("{devname}-{}.log.gz", &stamp[..15]));
            write_file(
                &path,
                &devname,
                &devid,
                start_secs,
                spec.file_size,
                &mut rng,
            )
            .map_err(|e| Error::io("write", &path, e))?;
            let file = File::options()
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open", &path, e))?;
            file.set_modified(end)
                .map_err(|e| Error::io("set mtime of", &path, e))?;
            paths.push(path);
        }
    }
    Ok(paths)
}

/// `File::create`, except that a symlink at `path` is refused, not
/// followed (the output directory may be shared).
fn create_plain(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn write_file(
    path: &Path,
    devname: &str,
    devid: &str,
    start: i64,
    target: u64,
    rng: &mut Rng,
) -> io::Result<()> {
    let counter = CountingWriter {
        inner: BufWriter::with_capacity(256 * 1024, create_plain(path)?),
        written: 0,
    };
    let mut gz = GzEncoder::new(counter, Compression::default());
    let mut line = String::with_capacity(1024);
    let mut t = start;
    let mut session: u64 = 100_000 + rng.below(800_000);
    loop {
        for _ in 0..64 {
            t += i64::try_from(rng.below(2)).unwrap_or(0);
            session += 1 + rng.below(5);
            line.clear();
            log_line(&mut line, devname, devid, t, session, rng);
            gz.write_all(line.as_bytes())?;
        }
        if gz.get_ref().written >= target {
            break;
        }
    }
    let mut counter = gz.finish()?;
    counter.inner.flush()?;
    counter.inner.get_ref().sync_all()
}

/// One line: the syslog header every FortiGate line shares, then an admin
/// login event (1 in 10), a web filter hit (2 in 10) or a traffic log. The
/// random draws come in a fixed order, so a seed always gives the same lines.
fn log_line(out: &mut String, devname: &str, devid: &str, t: i64, session: u64, rng: &mut Rng) {
    let src = format!(
        "10.{}.{}.{}",
        rng.below(4),
        rng.below(255),
        1 + rng.below(253)
    );
    let dst = format!(
        "{}.{}.{}.{}",
        13 + rng.below(200),
        rng.below(255),
        rng.below(255),
        1 + rng.below(253)
    );
    header(out, devname, devid, t, rng);
    match rng.below(10) {
        0 => event_line(out, t, &src),
        1 | 2 => webfilter_line(out, session, &src, &dst, rng),
        _ => traffic_line(out, session, &src, &dst, rng),
    }
}

/// `<189>date=… time=… devname=… devid=… eventtime=… tz=…`: the fields
/// every log type starts with (eventtime: the second followed by nine digits).
fn header(out: &mut String, devname: &str, devid: &str, t: i64, rng: &mut Rng) {
    let stamp = timefmt::iso8601(timefmt::from_unix(t));
    let (date, time) = (&stamp[..10], &stamp[11..19]);
    let _ = write!(
        out,
        "<189>date={date} time={time} devname=\"{devname}\" devid=\"{devid}\" eventtime={t}{:09} tz=\"-0300\" ",
        rng.below(1_000_000_000)
    );
}

/// A successful admin login (type `event`); draws nothing from the rng.
fn event_line(out: &mut String, t: i64, src: &str) {
    let _ = writeln!(
        out,
        "logid=\"0100032001\" type=\"event\" subtype=\"system\" level=\"information\" vd=\"root\" logdesc=\"Admin login successful\" sn=\"{}\" user=\"admin\" ui=\"https({src})\" method=\"https\" srcip={src} dstip=10.0.0.1 action=\"login\" status=\"success\" reason=\"none\" profile=\"super_admin\" msg=\"Administrator admin logged in successfully from https({src})\"",
        t
    );
}

/// An allowed HTTPS request to one of a few well-known hosts (type `utm`,
/// subtype `webfilter`).
fn webfilter_line(out: &mut String, session: u64, src: &str, dst: &str, rng: &mut Rng) {
    let hosts = [
        "www.google.com",
        "login.microsoftonline.com",
        "cdn.jsdelivr.net",
        "api.github.com",
        "updates.example.org",
    ];
    let host = hosts[usize::try_from(rng.below(hosts.len() as u64)).unwrap_or(0)];
    let _ = writeln!(
        out,
        "logid=\"0316013056\" type=\"utm\" subtype=\"webfilter\" eventtype=\"ftgd_allow\" level=\"notice\" vd=\"root\" policyid={} sessionid={session} srcip={src} srcport={} srcintf=\"internal\" srcintfrole=\"lan\" dstip={dst} dstport=443 dstintf=\"wan1\" dstintfrole=\"wan\" proto=6 service=\"HTTPS\" hostname=\"{host}\" profile=\"default\" action=\"passthrough\" reqtype=\"direct\" url=\"https://{host}/\" sentbyte={} rcvdbyte={} direction=\"outgoing\" msg=\"URL belongs to an allowed category in policy\" cat=52 catdesc=\"Information Technology\"",
        1 + rng.below(20),
        1024 + rng.below(64_000),
        rng.below(5000),
        rng.below(90_000)
    );
}

/// A forwarded session (type `traffic`): mostly HTTPS, 1 in 20 denied,
/// UDP for DNS and NTP.
fn traffic_line(out: &mut String, session: u64, src: &str, dst: &str, rng: &mut Rng) {
    let (service, port) = match rng.below(5) {
        0 => ("DNS", 53),
        1 => ("HTTP", 80),
        2 => ("NTP", 123),
        _ => ("HTTPS", 443),
    };
    let action = if rng.below(20) == 0 { "deny" } else { "accept" };
    let _ = writeln!(
        out,
        "logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" srcip={src} srcport={} srcintf=\"internal\" srcintfrole=\"lan\" dstip={dst} dstport={port} dstintf=\"wan1\" dstintfrole=\"wan\" srccountry=\"Reserved\" dstcountry=\"United States\" sessionid={session} proto={} action=\"{action}\" policyid={} policytype=\"policy\" service=\"{service}\" trandisp=\"snat\" transip=200.160.{}.{} transport={} duration={} sentbyte={} rcvdbyte={} sentpkt={} rcvdpkt={} appcat=\"unscanned\"",
        1024 + rng.below(64_000),
        if port == 53 || port == 123 { 17 } else { 6 },
        1 + rng.below(20),
        rng.below(255),
        1 + rng.below(253),
        1024 + rng.below(64_000),
        rng.below(600),
        rng.below(50_000),
        rng.below(900_000),
        rng.below(200),
        rng.below(800)
    );
}

struct CountingWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// xorshift64*: small, fast, deterministic; not for anything secret.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_complete_gzip_files_of_about_the_asked_size() {
        let dir = tempfile::tempdir().unwrap();
        let spec = GenSpec {
            out: dir.path().to_path_buf(),
            devices: 2,
            files_per_device: 2,
            file_size: 20_000,
            seed: 7,
        };
        let paths = generate(&spec).unwrap();
        assert_eq!(paths.len(), 4);
        for p in &paths {
            let data = std::fs::read(p).unwrap();
            assert!(
                data.len() >= 20_000 && data.len() < 40_000,
                "{}",
                data.len()
            );
            let d = crate::digest::digest_bytes(&data, true).unwrap();
            assert_eq!(d.gzip, Some(Ok(())));
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&data[..]), &mut text)
                .unwrap();
            assert!(
                text.lines().all(|l| l.contains("devname=\"FGT60F-SITE")),
                "bad line"
            );
        }
    }
}
