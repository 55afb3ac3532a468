//! UTC timestamps in the formats the Python suite stored, without a date crate.
//!
//! `uploaded_at` is ISO 8601 with a trailing `Z` and `backup_date` is
//! `YYYY-MM-DD`; both sort correctly as text, which the API relies on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, saturating at 0 for clocks set before 1970.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// `2026-11-22T01:00:00Z` for the given instant.
pub fn iso8601(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `2026-11-22` for the given instant (UTC).
pub fn date(t: SystemTime) -> String {
    let (y, m, d) = civil_from_days(unix_seconds(t).div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Whether `v` has the shape `YYYY-MM-DD` (the `backup_date` column's).
pub fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Whether `v` is a real calendar day written `YYYY-MM-DD`: the shape, a
/// month from 1 to 12 and a day that month has (`2026-02-30` is none). The
/// one check of a date given by a user, for the CLI and the API alike.
pub fn is_day(v: &str) -> bool {
    if !is_date(v) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| v[r].parse::<i64>().unwrap_or(0);
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    if !(1..=12).contains(&m) || d < 1 {
        return false;
    }
    // The day after the last of the month is the 1st of the next.
    civil_from_days(days_from_civil(y, m, d)) == (y, m as u32, d as u32)
}

/// The instant `secs` seconds after the epoch.
pub fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS...` (fraction and zone
/// suffix ignored, UTC assumed: both this program and the suite write UTC).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Seconds since the epoch of an HTTP date (`Wed, 02 Dec 2026 09:57:40
/// GMT`, RFC 9110's IMF-fixdate, what S3 gives as `Last-Modified`).
pub fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = s.trim().split_once(", ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = f.as_slice() else {
        return None;
    };
    let mo = MONTHS.iter().position(|m| m == month)? + 1;
    parse_iso8601(&format!("{year:0>4}-{mo:02}-{day:0>2}T{time}Z"))
}

/// Inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Converts days since 1970-01-01 to (year, month, day) in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(from_unix(0)), "1970-01-01T00:00:00Z");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(iso8601(from_unix(1_709_210_096)), "2024-02-29T12:34:56Z");
        assert_eq!(date(from_unix(1_709_210_096)), "2024-02-29");
        assert_eq!(iso8601(from_unix(4_102_444_799)), "2099-12-31T23:59:59Z");
        assert_eq!(parse_iso8601("2024-02-29T12:34:56Z"), Some(1_709_210_096));
        assert_eq!(
            parse_iso8601("2025-01-01T01:00:00.123456Z"),
            Some(1_735_693_200)
        );
        assert_eq!(parse_iso8601("garbage"), None);
        assert!(is_day("2024-02-29") && is_day("2026-12-31") && is_day("2026-01-01"));
        for no in [
            "2026-02-29",
            "2026-99-99",
            "2026-04-31",
            "2026-00-10",
            "2026-01-00",
            "26-01-01",
        ] {
            assert!(!is_day(no), "{no}");
        }
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:34:56 GMT"),
            Some(1_709_210_096)
        );
        assert_eq!(parse_http_date("Thu, 29 Feb 2024 12:34:56"), None);
        assert_eq!(parse_http_date("29 Feb 2024"), None);
    }
}
