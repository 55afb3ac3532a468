//! When a line happened, in UTC seconds.
//!
//! `eventtime` is the device's clock in a unit that depends on the FortiOS
//! version (seconds in 6.0, nanoseconds in 6.2+, milliseconds in some), so
//! it is read by its digit count: 10, 13, 16 and 19 digits are s, ms, µs
//! and ns. Without it, FortiAnalyzer's `timestamp=` (seconds); without
//! that, `date=` and `time=` in the device's local time, moved to UTC by
//! `tz=` (`-0300`, `+05:30`, `UTC+2:00`). A value that fits none of these
//! gives no time: the line is counted as "without a time".

use crate::timefmt::days_from_civil;

/// The unit an `eventtime` was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Unit {
    /// As the inventory and `search --json` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Micros => "us",
            Unit::Nanos => "ns",
        }
    }
}

/// `eventtime` as UTC seconds, with the unit its digit count says.
pub fn eventtime(raw: &[u8]) -> Option<(i64, Unit)> {
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (unit, div) = match raw.len() {
        10 => (Unit::Seconds, 1),
        13 => (Unit::Millis, 1_000),
        16 => (Unit::Micros, 1_000_000),
        19 => (Unit::Nanos, 1_000_000_000),
        _ => return None,
    };
    // Only digits, at most 19 of them: no overflow past i64 (19 nines
    // is above i64::MAX, so the sum is checked).
    let n = raw.iter().try_fold(0i64, |n, &d| {
        n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })?;
    Some((n / div, unit))
}

/// FortiAnalyzer's `timestamp=`: seconds since 1970.
pub fn timestamp(raw: &[u8]) -> Option<i64> {
    eventtime(raw)
        .filter(|(_, u)| *u == Unit::Seconds)
        .map(|(s, _)| s)
}

/// `date=YYYY-MM-DD time=HH:MM:SS tz=...` as UTC seconds; no `tz` reads as UTC.
pub fn local(date: &[u8], time: &[u8], tz: Option<&[u8]>) -> Option<i64> {
    let date = std::str::from_utf8(date).ok()?;
    let time = std::str::from_utf8(time).ok()?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || date.len() != 10 {
        return None;
    }
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&s) {
        return None;
    }
    let offset = match tz {
        None => 0,
        Some(tz) => offset_seconds(std::str::from_utf8(tz).ok()?)?,
    };
    Some(days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + s - offset)
}

/// `-0300`, `+05:30`, `UTC+2:00`, `GMT-3`, `UTC` → seconds east of UTC.
fn offset_seconds(tz: &str) -> Option<i64> {
    let tz = tz.trim();
    let rest = tz
        .strip_prefix("UTC")
        .or_else(|| tz.strip_prefix("GMT"))
        .unwrap_or(tz);
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?),
        None if digits.len() == 4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        None => (digits.parse::<i64>().ok()?, 0),
    };
    if h > 14 || m >= 60 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventtime_by_digit_count() {
        let s = 1_793_613_600;
        assert_eq!(eventtime(b"1793613600"), Some((s, Unit::Seconds)));
        assert_eq!(eventtime(b"1793613600123"), Some((s, Unit::Millis)));
        assert_eq!(eventtime(b"1793613600123456"), Some((s, Unit::Micros)));
        assert_eq!(eventtime(b"1793613600123456789"), Some((s, Unit::Nanos)));
        assert_eq!(eventtime(b"17936136001"), None);
        assert_eq!(eventtime(b"17936x3600"), None);
        assert_eq!(eventtime(b""), None);
        assert_eq!(eventtime(b"99999999999999999999"), None);
    }

    #[test]
    fn local_time_moves_to_utc_by_its_offset() {
        // 2026-11-02 10:00:00 at -03:00 is 13:00:00 UTC.
        let utc = days_from_civil(2026, 11, 2) * 86_400 + 13 * 3600;
        assert_eq!(local(b"2026-11-02", b"10:00:00", Some(b"-0300")), Some(utc));
        assert_eq!(
            local(b"2026-11-02", b"10:00:00", Some(b"-03:00")),
            Some(utc)
        );
        assert_eq!(
            local(b"2026-11-02", b"15:00:00", Some(b"UTC+2:00")),
            Some(utc)
        );
        assert_eq!(local(b"2026-11-02", b"13:00:00", None), Some(utc));
        assert_eq!(local(b"2026-11-02", b"13:00:00", Some(b"UTC")), Some(utc));
        assert_eq!(local(b"2026-13-02", b"10:00:00", None), None);
        assert_eq!(local(b"2026-11-02", b"25:00:00", None), None);
        assert_eq!(local(b"2026-11-02", b"10:00:00", Some(b"Paris")), None);
    }
}
