//! `--bwlimit`: one byte budget shared by every upload of the process.
//!
//! A collector's uplink also carries the firewall's own traffic, so the
//! limit is for the whole process, not per worker. The syntax is rclone's:
//! a rate (`512k`, `10M`; a bare number is KiB/s; `off`), or a timetable of
//! `HH:MM,RATE` entries separated by spaces, each in force from its time of
//! day (local time) until the next, the last one wrapping past midnight.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Largest grant at a time, so workers share the budget in small turns.
const GRANT: usize = 64 * 1024;

/// A rate in bytes per second; `None` is unlimited.
type Rate = Option<u64>;

/// What `--bwlimit` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BwLimit {
    /// `(minute of the day, rate)`, sorted by minute; one entry at minute 0
    /// for a plain rate.
    table: Vec<(u32, Rate)>,
}

impl BwLimit {
    /// Parses `--bwlimit`; the error says what is wrong with which part.
    pub fn parse(text: &str) -> Result<BwLimit> {
        let text = text.trim();
        if !text.contains(',') {
            return Ok(BwLimit {
                table: vec![(0, parse_rate(text)?)],
            });
        }
        let mut table = Vec::new();
        for entry in text.split_whitespace() {
            let (time, rate) = entry
                .split_once(',')
                .ok_or_else(|| Error::usage(format!("'{entry}' is not HH:MM,RATE")))?;
            table.push((parse_time(time)?, parse_rate(rate)?));
        }
        table.sort_by_key(|(minute, _)| *minute);
        if table.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Error::usage("two entries for the same time of day"));
        }
        Ok(BwLimit { table })
    }

    /// The rate in force at `minute` of the day.
    fn rate_at(&self, minute: u32) -> Rate {
        let last = self.table.last().and_then(|(_, r)| *r);
        self.table
            .iter()
            .take_while(|(m, _)| *m <= minute)
            .last()
            .map_or(last, |(_, r)| *r)
    }

    /// `08:00 512 KiB/s, 19:00 off` or `512 KiB/s`.
    pub fn describe(&self) -> String {
        let rate = |r: &Rate| match r {
            None => "off".to_string(),
            Some(b) if b % (1024 * 1024) == 0 => format!("{} MiB/s", b / (1024 * 1024)),
            Some(b) => format!("{} KiB/s", b / 1024),
        };
        match self.table.as_slice() {
            [(0, r)] => rate(r),
            table => table
                .iter()
                .map(|(m, r)| format!("{:02}:{:02} {}", m / 60, m % 60, rate(r)))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Whether it never limits anything (`off`, or only `off` entries).
    pub fn is_off(&self) -> bool {
        self.table.iter().all(|(_, r)| r.is_none())
    }
}

/// `512k` (KiB/s when bare), `10M`, `1.5M`, `off`.
fn parse_rate(text: &str) -> Result<Rate> {
    let t = text.trim().to_ascii_lowercase();
    if t == "off" {
        return Ok(None);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| Error::usage(format!("'{text}' is not a rate like 512k, 10M or off")))?;
    let mult = match unit.trim_end_matches("/s").trim_end_matches("ib") {
        "" | "k" => 1024.0,
        "b" => 1.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(Error::usage(format!(
                "'{text}' has an unknown unit (use B, K, M or G)"
            )));
        }
    };
    let bytes = (n * mult).round();
    if !(1.0..=1e15).contains(&bytes) {
        return Err(Error::usage(format!("'{text}' is not a usable rate")));
    }
    Ok(Some(bytes as u64))
}

/// `08:00` → minute of the day.
fn parse_time(text: &str) -> Result<u32> {
    let bad = || Error::usage(format!("'{text}' is not a time of day like 08:00"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The shared budget: a token bucket refilled at the rate in force.
pub struct Throttle {
    limit: BwLimit,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    pub fn new(limit: BwLimit) -> Throttle {
        Throttle {
            limit,
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Blocks until some bytes may be sent; returns how many (1..=`want`).
    pub fn take(&self, want: usize) -> usize {
        let want = want.clamp(1, GRANT);
        loop {
            // After a stop signal the caller ends the body: do not hold it.
            if crate::signal::stop_requested() {
                return want;
            }
            let Some(rate) = self.limit.rate_at(local_minute()) else {
                return want;
            };
            let rate = rate as f64;
            // A quarter second of burst: smooth, yet few wake-ups.
            let burst = (rate / 4.0).max(GRANT as f64);
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * rate).min(burst);
                s.1 = now;
                if s.0 >= 1.0 {
                    let granted = want.min(s.0 as usize);
                    s.0 -= granted as f64;
                    return granted;
                }
                (1.0 - s.0) / rate
            };
            std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.001, 0.1)));
        }
    }
}

/// Minutes since local midnight.
fn local_minute() -> u32 {
    // SAFETY: `time(NULL)` and `localtime_r` with a valid output struct.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return 0;
        }
        u32::try_from(tm.tm_hour * 60 + tm.tm_min).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_and_timetables() {
        assert_eq!(parse_rate("512k").ok(), Some(Some(512 * 1024)));
        assert_eq!(parse_rate("100").ok(), Some(Some(100 * 1024)));
        assert_eq!(parse_rate("1.5M").ok(), Some(Some(1_572_864)));
        assert_eq!(parse_rate("10MiB/s").ok(), Some(Some(10 * 1024 * 1024)));
        assert_eq!(parse_rate("off").ok(), Some(None));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10X").is_err());
        let t = BwLimit::parse("19:00,off 08:00,512k 12:30,10M").unwrap();
        assert_eq!(t.rate_at(8 * 60), Some(512 * 1024));
        assert_eq!(t.rate_at(12 * 60 + 29), Some(512 * 1024));
        assert_eq!(t.rate_at(13 * 60), Some(10 * 1024 * 1024));
        assert_eq!(t.rate_at(20 * 60), None);
        // Before the first entry of the day, the last one still holds.
        assert_eq!(t.rate_at(7 * 60), None);
        assert!(BwLimit::parse("25:00,1M").is_err());
        assert!(BwLimit::parse("08:00,1M 08:00,2M").is_err());
        assert!(BwLimit::parse("off").unwrap().is_off());
    }

    #[test]
    fn throttle_paces_bytes() {
        let t = Throttle::new(BwLimit::parse("1M").unwrap());
        let start = Instant::now();
        let mut sent = 0;
        while sent < 512 * 1024 {
            sent += t.take(GRANT);
        }
        // Half a MiB at 1 MiB/s, with a 256 KiB burst at most: >= 0.2 s.
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
    }
}
