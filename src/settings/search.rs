//! The filters of `search`, `grep` and `GET /search`: one table of names
//! (the flag and the API parameter) and one parser, so the command line
//! and the API accept and refuse the same values with the same words.

use crate::cli::flags;
use crate::cli::table::Flag;
use crate::content::query::{Query, parse_bound};

/// One filter: its flag and its API query parameter.
pub struct Filter {
    pub flag: &'static Flag,
    pub param: &'static str,
}

const fn filter(flag: &'static Flag, param: &'static str) -> Filter {
    Filter { flag, param }
}

/// Every filter, in the order help and errors list them.
pub const FILTERS: &[Filter] = &[
    filter(&flags::LOG_DEVICE, "device"),
    filter(&flags::LOG_SINCE, "since"),
    filter(&flags::LOG_UNTIL, "until"),
    filter(&flags::ACTION, "action"),
    filter(&flags::LOG_TYPE, "type"),
    filter(&flags::SUBTYPE, "subtype"),
    filter(&flags::VD, "vd"),
    filter(&flags::IP, "ip"),
];

/// A filter value that cannot be used: its name, the value, what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFilter {
    pub name: String,
    pub value: String,
    pub expect: &'static str,
}

impl std::fmt::Display for BadFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}' {}", self.name, self.value, self.expect)
    }
}

/// Longest filter value: a devname is at most 35 characters.
const MAX_VALUE: usize = 256;

/// The filters as `get` finds them (by filter), named in errors as
/// `--flag` (`api` false) or as the query parameter.
pub fn parse_query(get: impl Fn(&Filter) -> Option<String>, api: bool) -> Result<Query, BadFilter> {
    let mut q = Query::default();
    for f in FILTERS {
        let Some(value) = get(f) else { continue };
        let bad = |expect| BadFilter {
            name: if api {
                f.param.to_string()
            } else {
                f.flag.name.to_string()
            },
            value: value.chars().take(80).collect(),
            expect,
        };
        if value.is_empty() || value.len() > MAX_VALUE || value.chars().any(char::is_control) {
            return Err(bad(
                "must be 1 to 256 characters without control characters",
            ));
        }
        let text = Some(value.clone());
        match f.param {
            "device" => q.device = text,
            "action" => q.action = text,
            "type" => q.log_type = text,
            "subtype" => q.subtype = text,
            "vd" => q.vd = text,
            "ip" => {
                q.ip =
                    Some(value.trim().parse().map_err(|_| {
                        bad("is not an IP address: use e.g. 10.1.2.3 or 2001:db8::1")
                    })?);
            }
            "since" | "until" => {
                let at = parse_bound(&value, f.param == "until").ok_or_else(|| {
                    bad("is not a UTC day or an RFC 3339 time: use e.g. 2026-03-03 or 2026-03-03T14:00:00Z")
                })?;
                if f.param == "since" {
                    q.since = Some(at);
                } else {
                    q.until = Some(at);
                }
            }
            _ => {}
        }
    }
    if let (Some(s), Some(u)) = (q.since, q.until)
        && s > u
    {
        return Err(BadFilter {
            name: if api {
                "since".into()
            } else {
                "--since".into()
            },
            value: crate::content::day(s),
            expect: "is after the end of the range (until): swap them",
        });
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Query, BadFilter> {
        parse_query(
            |f| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == f.param)
                    .map(|(_, v)| v.to_string())
            },
            true,
        )
    }

    #[test]
    fn filters_parse_and_refuse_with_their_names() {
        let q = parse(&[
            ("device", "FGT-A"),
            ("ip", "10.1.2.3"),
            ("since", "2026-03-03"),
        ])
        .unwrap();
        assert_eq!(q.device.as_deref(), Some("FGT-A"));
        assert_eq!(q.ip, "10.1.2.3".parse().ok());
        assert_eq!(q.since, parse_bound("2026-03-03", false));
        let e = parse(&[("ip", "10.1.2")]).unwrap_err();
        assert_eq!(e.name, "ip");
        assert!(e.to_string().contains("is not an IP address"), "{e}");
        let e = parse(&[("since", "2026-03-04"), ("until", "2026-03-03")]).unwrap_err();
        assert!(e.to_string().contains("swap them"), "{e}");
        assert!(parse(&[("action", "")]).is_err());
        assert!(parse(&[("vd", "a\u{0}b")]).is_err());
        assert!(parse(&[("until", "tomorrow")]).is_err());
        assert_eq!(parse(&[]).unwrap(), Query::default());
        let names: Vec<_> = FILTERS.iter().map(|f| f.param).collect();
        assert_eq!(names.len(), 8);
    }
}
