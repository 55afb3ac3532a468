//! What `search`, `grep` and `GET /search` ask of the logs: one set of
//! filters, with one meaning per line.
//!
//! A filter is defined on a log line ([`Query::matches_line`]). The index
//! only narrows which archives can hold such a line: a facet matches when
//! its fields do (an overflow facet matches any device, action or type),
//! and the IP filter never says "absent" for an address an archive holds.
//! `grep` then applies the very same line test, so the index can drop an
//! archive only when no line of it could match.

use std::net::IpAddr;

use super::scan::Fields;
use crate::timefmt::days_from_civil;

/// The filters, validated. Times are UTC seconds, both ends inclusive;
/// a line without a time is outside any time range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `devname` or `devid`.
    pub device: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub action: Option<String>,
    pub log_type: Option<String>,
    pub subtype: Option<String>,
    pub vd: Option<String>,
    /// In `srcip` or `dstip` (IPv4 and its IPv6-mapped form are one).
    pub ip: Option<IpAddr>,
}

impl Query {
    /// Whether a line with these fields, at `at` (its time, see
    /// [`super::line_time`]), matches.
    pub fn matches_line(&self, f: &Fields<'_>, at: Option<i64>) -> bool {
        let is = |want: &Option<String>, got: Option<&[u8]>| match want {
            None => true,
            Some(w) => got == Some(w.as_bytes()),
        };
        let device = match &self.device {
            None => true,
            Some(d) => f.devname == Some(d.as_bytes()) || f.devid == Some(d.as_bytes()),
        };
        let time = match (self.since, self.until, at) {
            (None, None, _) => true,
            (_, _, None) => false,
            (s, u, Some(t)) => s.is_none_or(|s| t >= s) && u.is_none_or(|u| t <= u),
        };
        let ip = match self.ip {
            None => true,
            Some(want) => [f.srcip, f.dstip]
                .into_iter()
                .flatten()
                .filter_map(super::ips::parse)
                .any(|got| same_ip(got, want)),
        };
        device
            && time
            && ip
            && is(&self.action, f.action)
            && is(&self.log_type, f.log_type)
            && is(&self.subtype, f.subtype)
            && is(&self.vd, f.vd)
    }
}

/// IPv4 and its IPv6-mapped form are one address.
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    v6(a) == v6(b)
}

/// `--since`/`--until`: a date (`2026-03-03`, the whole UTC day: its
/// first second for a start, its last for an end) or an RFC 3339 time
/// with a zone (`2026-03-03T14:00:00Z`, `...+02:00`); `None` otherwise.
pub fn parse_bound(v: &str, end: bool) -> Option<i64> {
    let v = v.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = v.get(r)?;
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if !crate::timefmt::is_day(v.get(..10)?) {
        return None;
    }
    let day = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?) * 86_400;
    if v.len() == 10 {
        return Some(if end { day + 86_399 } else { day });
    }
    if !matches!(v.as_bytes().get(10), Some(b'T' | b't' | b' ')) || v.get(13..14)? != ":" {
        return None;
    }
    let (h, m) = (num(11..13)?, num(14..16)?);
    let (s, mut rest) = if v.get(16..17) == Some(":") {
        (num(17..19)?, v.get(19..)?)
    } else {
        (0, v.get(16..)?)
    };
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            let two = |p: &str| {
                (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse::<i64>().ok())?
            };
            let (oh, om) = (two(oh)?, two(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    // A bound past the years a line's time can have (1 to 9999) is the
    // last (first) second of those: its day must sort as text like theirs.
    Some((day + h * 3600 + m * 60 + s - offset).clamp(FIRST_SECOND, LAST_SECOND))
}

/// The first and last second a line's time can have (years 1 to 9999).
pub const FIRST_SECOND: i64 = -62_135_596_800;
pub const LAST_SECOND: i64 = 253_402_300_799;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_days_or_zoned_times() {
        // 2026-03-03 is day 20,515.
        let d = 20_515 * 86_400;
        assert_eq!(parse_bound("2026-03-03", false), Some(d));
        assert_eq!(parse_bound("2026-03-03", true), Some(d + 86_399));
        assert_eq!(
            parse_bound("2026-03-03T14:00:00Z", false),
            Some(d + 14 * 3600)
        );
        assert_eq!(parse_bound("2026-03-03T14:00Z", true), Some(d + 14 * 3600));
        assert_eq!(
            parse_bound("2026-03-03T14:00:00.250+02:00", false),
            Some(d + 12 * 3600)
        );
        assert_eq!(
            parse_bound("2026-03-03T01:00:00-03:30", false),
            Some(d + 4 * 3600 + 1800)
        );
        for bad in [
            "2026-02-30",
            "2026-03-03T14:00:00",
            "2026-03-03T25:00:00Z",
            "2026-03-03T14:00:00+2",
            "yesterday",
            "",
            "2026-03-03T14:00:00.Z",
            "2026-03-03T14:00:00+-1:00",
            "2026-03-03T14:00:00++1:00",
            "2026-03-03T14:00:00+01:-5",
        ] {
            assert_eq!(parse_bound(bad, false), None, "{bad}");
        }
    }

    /// 9999-12-31T23:30:00-01:00 is in year 10000 UTC: as a bound it is
    /// the last second of 9999, whose day sorts as text with the others.
    #[test]
    fn bounds_stay_within_the_years_lines_have() {
        assert_eq!(
            parse_bound("9999-12-31T23:30:00-01:00", true),
            Some(LAST_SECOND)
        );
        assert_eq!(
            parse_bound("0001-01-01T00:30:00+01:00", false),
            Some(FIRST_SECOND)
        );
        assert_eq!(crate::content::day(LAST_SECOND), "9999-12-31");
    }

    #[test]
    fn a_line_matches_on_its_own_fields_only() {
        let line = b"date=2026-11-02 time=10:00:00 devname=FGT-A devid=FG1 type=traffic subtype=forward vd=root srcip=10.1.2.3 dstip=8.8.8.8 action=deny url=\"/?srcip=6.6.6.6\"";
        let (_, f) = crate::content::scan::line(line).unwrap();
        let q = |q: Query| q.matches_line(&f, Some(1000));
        assert!(q(Query::default()));
        assert!(q(Query {
            device: Some("FG1".into()),
            ..Query::default()
        }));
        assert!(q(Query {
            device: Some("FGT-A".into()),
            action: Some("deny".into()),
            ip: "::ffff:10.1.2.3".parse().ok(),
            since: Some(1000),
            until: Some(1000),
            ..Query::default()
        }));
        for miss in [
            Query {
                ip: "6.6.6.6".parse().ok(),
                ..Query::default()
            },
            Query {
                device: Some("FGT".into()),
                ..Query::default()
            },
            Query {
                since: Some(1001),
                ..Query::default()
            },
            Query {
                vd: Some("dmz".into()),
                ..Query::default()
            },
        ] {
            assert!(!q(miss.clone()), "{miss:?}");
        }
        let untimed = Query {
            until: Some(5000),
            ..Query::default()
        };
        assert!(
            !untimed.matches_line(&f, None),
            "no time, outside any range"
        );
    }
}
