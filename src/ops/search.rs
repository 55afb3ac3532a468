//! `fgbackup search`: which archives hold matching log lines, answered
//! from the content index alone, and `--coverage`: which days or hours of
//! a device have no archive, or too few lines.
//!
//! Both stream from the inventory: a hit is printed as its row is read, a
//! coverage report holds one number per day of the range.

use std::path::Path;

use crate::content::query::Query;
use crate::error::{Error, Result};
use crate::inventory::{Hit, Reader, SearchTotals};
use crate::timefmt;

use super::stdout::Out;

/// What `search` prints.
pub struct SearchOptions {
    pub query: Query,
    /// At most this many archives (0: all); the totals count every match.
    pub limit: usize,
    pub json: bool,
}

/// Per day or per hour (`--by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Day,
    Hour,
}

/// What `search --coverage` looks at.
pub struct CoverageOptions {
    pub device: String,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub by: By,
    /// A day under this percentage of the median day is thin.
    pub thin_below: u32,
    pub json: bool,
}

/// The inventory at `db`, read-only: it must exist.
pub fn open(db: &Path) -> Result<Reader> {
    if !db.exists() {
        return Err(Error::usage(format!(
            "no inventory at {}: pass --db PATH or set DB_PATH (it is created by the first upload)",
            db.display()
        )));
    }
    Reader::open(db).map_err(|e| Error::runtime(format!("{e} (--db/DB_PATH)")))
}

fn read_error(db: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| {
        Error::runtime(format!(
            "cannot read the content index in {}: {e}",
            db.display()
        ))
    }
}

/// Prints the archives matching `opts.query`; 0 when any did, 1 when none.
pub fn search(db: &Path, opts: &SearchOptions) -> Result<i32> {
    let reader = open(db)?;
    let mut out = Out::new(opts.json);
    if opts.json {
        out.write("{\"archives\":[");
    }
    let mut totals = SearchTotals::default();
    let mut exact = true;
    reader
        .search(&opts.query, |hit| {
            totals.matched += 1;
            totals.lines += hit.lines;
            exact &= hit.exact;
            let text = match opts.json {
                true => hit.to_json().to_string(),
                false => hit_text(&hit),
            };
            out.entry(opts.limit, &text);
            !out.gone
        })
        .map_err(read_error(db))?;
    totals.unindexed = reader.unindexed().map_err(read_error(db))?;
    let unindexed = totals.unindexed;
    if opts.json {
        out.write(&format!("],{}\n", &totals.to_json().to_string()[1..]));
    }
    if unindexed > 0 {
        log::warn!(
            "{unindexed} archived object(s) have no complete content index, so search cannot see inside them: `fgbackup reindex --content` indexes them (grep reads them whatever the filters)"
        );
    }
    if !opts.json && !out.gone {
        out.write(&format!(
            "{} archive(s), {} matching line(s){}\n",
            totals.matched,
            totals.lines,
            if exact {
                ""
            } else {
                " at most (an address filter, a time inside a day or an overflowing index count more)"
            }
        ));
    }
    out.finish("the search results")?;
    Ok(if totals.matched > 0 { 0 } else { 1 })
}

/// `FIRST_DAY  DEVICES  LINES  FIRST  LAST  KEY`.
fn hit_text(h: &Hit) -> String {
    let t = |t: Option<i64>| t.map_or("-".to_string(), rfc3339);
    crate::logging::one_line(&format!(
        "{:<10}  {:<16}  {:>10}  {:<20}  {:<20}  {}{}",
        if h.first_day.is_empty() {
            "-"
        } else {
            &h.first_day
        },
        if h.devices.is_empty() {
            "-".to_string()
        } else {
            h.devices.join(",")
        },
        format!("{}{}", if h.exact { "" } else { "<=" }, h.lines),
        t(h.first),
        t(h.last),
        h.key,
        h.incomplete
            .as_deref()
            .map(|w| format!("  (indexed in part: {w})"))
            .unwrap_or_default()
    ))
    .into_owned()
}

/// `2026-11-02T13:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    crate::content::instant(secs)
}

/// The gaps of one device: 0 when none, 1 when a day or hour is missing or thin.
pub fn coverage(db: &Path, opts: &CoverageOptions) -> Result<i32> {
    let reader = open(db)?;
    let today = timefmt::unix_seconds(std::time::SystemTime::now());
    // By default up to the last whole day (hour): the current one is not
    // over, so it would look thin (or missing).
    let unit = match opts.by {
        By::Day => 86_400,
        By::Hour => 3600,
    };
    let until = opts.until.unwrap_or(today - today.rem_euclid(unit) - 1);
    let days = reader
        .device_days(&opts.device, "0000-00-00", &crate::content::day(until))
        .map_err(read_error(db))?;
    let since = match (opts.since, days.first()) {
        (Some(s), _) => s,
        (None, Some((d, _, _))) => crate::content::query::parse_bound(d, false).unwrap_or(until),
        (None, None) => {
            return Err(Error::runtime(format!(
                "the content index has no line of device '{}': check the name (devname or devid), or index its archives with `fgbackup reindex --content`",
                opts.device
            )));
        }
    };
    check_range(opts, since, until)?;
    let unindexed = reader.unindexed().map_err(read_error(db))?;
    if unindexed > 0 {
        log::warn!(
            "{unindexed} archived object(s) have no complete content index: coverage counts only the lines of indexed ones (`fgbackup reindex --content` indexes them)"
        );
    }
    let report = match opts.by {
        By::Day => gaps::by_day(&days, since, until, opts.thin_below),
        By::Hour => {
            let spans = reader
                .device_spans(&opts.device, since, until)
                .map_err(read_error(db))?;
            gaps::by_hour(&spans, since, until)
        }
    };
    let mut out = Out::new(false);
    out.write(&report.render(&opts.device, opts.json));
    out.finish("the coverage report")?;
    Ok(if report.missing.is_empty() && report.thin.is_empty() {
        0
    } else {
        1
    })
}

/// Longest coverage range: what a report can list line by line.
const MAX_DAYS: i64 = 3_660;
const MAX_HOURS: i64 = 366 * 24;

/// A range too long to report (a reset clock's 1970 line makes the
/// default one decades long) is refused with the way out.
fn check_range(opts: &CoverageOptions, since: i64, until: i64) -> Result<()> {
    let (unit, max, name) = match opts.by {
        By::Day => (86_400, MAX_DAYS, "days"),
        By::Hour => (3_600, MAX_HOURS, "hours"),
    };
    let n = until.div_euclid(unit) - since.div_euclid(unit) + 1;
    if n > max {
        return Err(Error::usage(format!(
            "--coverage from {} to {} is {n} {name}, more than {max}: narrow it with --since/--until{}",
            crate::content::day(since),
            crate::content::day(until),
            if opts.since.is_none() {
                " (without --since it starts at the device's first day in the index, which a device with a reset clock puts decades back)"
            } else {
                ""
            }
        )));
    }
    if n <= 0 {
        return Err(Error::usage(
            "--coverage: --since is after --until: swap them",
        ));
    }
    Ok(())
}

pub mod gaps;
