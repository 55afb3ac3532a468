//! Coverage arithmetic, pure: which days or hours of a range have no
//! lines (missing), and which days have few (thin), apart.

use crate::content::day;

/// One thin day: its lines and their share of the median day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thin {
    pub day: String,
    pub lines: u64,
    pub percent: u64,
}

/// What a coverage run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `day` or `hour`.
    pub unit: &'static str,
    pub from: String,
    pub to: String,
    /// Days (or hours) in the range.
    pub slots: u64,
    /// The median lines of the days with lines (0 per hour).
    pub median: u64,
    /// `YYYY-MM-DD` (or `YYYY-MM-DDTHH`) with nothing.
    pub missing: Vec<String>,
    pub thin: Vec<Thin>,
}

/// Per day: `days` are (day, lines, archives) with lines, in day order.
pub fn by_day(days: &[(String, u64, u64)], since: i64, until: i64, thin_below: u32) -> Report {
    let (first, last) = (since.div_euclid(86_400), until.div_euclid(86_400));
    let in_range: Vec<&(String, u64, u64)> = days
        .iter()
        .filter(|(d, _, _)| *d >= day(since) && *d <= day(until))
        .collect();
    let mut counts: Vec<u64> = in_range.iter().map(|(_, n, _)| *n).collect();
    counts.sort_unstable();
    let median = counts.get(counts.len() / 2).copied().unwrap_or(0);
    let mut missing = Vec::new();
    let mut thin = Vec::new();
    let mut next = in_range.iter().peekable();
    for n in first..=last {
        let d = day(n * 86_400);
        match next.next_if(|(x, _, _)| *x == d) {
            None => missing.push(d),
            Some((_, lines, _)) => {
                if *lines * 100 < median * u64::from(thin_below) {
                    thin.push(Thin {
                        day: d,
                        lines: *lines,
                        percent: lines * 100 / median.max(1),
                    });
                }
            }
        }
    }
    Report {
        unit: "day",
        from: day(since),
        to: day(until),
        slots: (last - first + 1).max(0) as u64,
        median,
        missing,
        thin,
    }
}

/// Per hour: an hour is covered when an archive's lines of the device span
/// it (from its first line's hour to its last's).
pub fn by_hour(spans: &[(i64, i64)], since: i64, until: i64) -> Report {
    let (first, last) = (since.div_euclid(3600), until.div_euclid(3600));
    let slots = (last - first + 1).max(0) as usize;
    let mut covered = vec![false; slots];
    for (a, b) in spans {
        let (a, b) = (a.div_euclid(3600).max(first), b.div_euclid(3600).min(last));
        for h in a..=b {
            covered[(h - first) as usize] = true;
        }
    }
    let missing = covered
        .iter()
        .enumerate()
        .filter(|(_, c)| !**c)
        .map(|(i, _)| {
            let h = (first + i as i64) * 3600;
            format!("{}T{:02}", day(h), h.rem_euclid(86_400) / 3600)
        })
        .collect();
    Report {
        unit: "hour",
        from: day(since),
        to: day(until),
        slots: slots as u64,
        median: 0,
        missing,
        thin: Vec::new(),
    }
}

impl Report {
    /// The report as text lines (a header, then one line per gap) or one
    /// JSON object.
    pub fn render(&self, device: &str, json: bool) -> String {
        if json {
            let thin: Vec<serde_json::Value> = self
                .thin
                .iter()
                .map(|t| serde_json::json!({"day": t.day, "lines": t.lines, "percent": t.percent}))
                .collect();
            let doc = serde_json::json!({
                "device": device, "by": self.unit, "from": self.from, "to": self.to,
                "slots": self.slots, "median_lines": self.median,
                "missing": self.missing, "thin": thin,
            });
            return format!("{doc}\n");
        }
        let mut s = crate::logging::one_line(&format!(
            "coverage of {device} from {} to {} by {}: {} {}s, {} missing, {} thin{}",
            self.from,
            self.to,
            self.unit,
            self.slots,
            self.unit,
            self.missing.len(),
            self.thin.len(),
            if self.unit == "day" {
                format!(" (median {} lines a day)", self.median)
            } else {
                String::new()
            }
        ))
        .into_owned();
        s.push('\n');
        for m in &self.missing {
            s.push_str(&format!("missing {m}\n"));
        }
        for t in &self.thin {
            s.push_str(&format!(
                "thin    {}  {} lines ({}% of the median)\n",
                t.day, t.lines, t.percent
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 20_515 * 86_400; // 2026-03-03

    #[test]
    fn missing_and_thin_days_apart() {
        let days: Vec<(String, u64, u64)> = [(0, 1000), (1, 1100), (3, 90), (4, 950)]
            .iter()
            .map(|(n, l)| (day(D + n * 86_400), *l, 1))
            .collect();
        let r = by_day(&days, D, D + 5 * 86_400 + 86_399, 25);
        assert_eq!(r.slots, 6);
        assert_eq!(r.median, 1000);
        assert_eq!(r.missing, vec!["2026-03-05", "2026-03-08"]);
        assert_eq!(
            r.thin,
            vec![Thin {
                day: "2026-03-06".into(),
                lines: 90,
                percent: 9
            }]
        );
        let text = r.render("FGT-A", false);
        assert!(
            text.starts_with(
                "coverage of FGT-A from 2026-03-03 to 2026-03-08 by day: 6 days, 2 missing, 1 thin"
            ),
            "{text}"
        );
    }

    #[test]
    fn hours_no_archive_spans() {
        let spans = [(D + 30, D + 2 * 3600 + 10), (D + 5 * 3600, D + 5 * 3600)];
        let r = by_hour(&spans, D, D + 6 * 3600 - 1);
        assert_eq!(r.missing, vec!["2026-03-03T03", "2026-03-03T04"]);
        assert_eq!(r.slots, 6);
    }
}
