//! The content index's tables (schema 4): one `content` row per archived
//! object (its summary and IP filter) and its `content_facets`. The upload
//! writes them in the same transaction as the file's `backups` row; the
//! queries behind `search`, `grep` and `GET /search` read them.
//!
//! One row per key: indexing a key again (the same bytes read again with
//! `--index always`, or `reindex --content`) replaces its rows.

use std::net::IpAddr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::Inventory;
use crate::content::Indexed;
use crate::content::ips::IpFilter;
use crate::content::query::Query;
use crate::error::Result;

/// Version 4: the content index.
pub(super) const CONTENT_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS content (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  object_key TEXT NOT NULL UNIQUE,
  sha256 TEXT NOT NULL,          -- of the archive the index was built from
  backup_id INTEGER,             -- the backups row whose read built it
  indexed_at TEXT NOT NULL,
  format TEXT,                   -- key_value | forwarded | cef
  time_unit TEXT,                -- s | ms | us | ns
  first_at INTEGER,              -- UTC seconds
  last_at INTEGER,
  lines INTEGER NOT NULL,
  log_bytes INTEGER NOT NULL,
  unparsed INTEGER NOT NULL,
  without_time INTEGER NOT NULL,
  ip_filter BLOB,
  incomplete TEXT                -- why it covers only part of the archive
);
CREATE TABLE IF NOT EXISTS content_facets (
  content_id INTEGER NOT NULL,
  day TEXT NOT NULL,             -- YYYY-MM-DD (UTC), '' without a time
  devid TEXT NOT NULL,
  devname TEXT NOT NULL,
  vd TEXT NOT NULL,
  log_type TEXT NOT NULL,
  subtype TEXT NOT NULL,
  action TEXT NOT NULL,
  overflow INTEGER NOT NULL,     -- 1: the day's combinations past the cap
  lines INTEGER NOT NULL,
  first_at INTEGER,
  last_at INTEGER
);
-- Archived objects without a whole index of their bytes: what search
-- cannot see into, counted at once instead of by a pass over backups.
CREATE TABLE IF NOT EXISTS content_pending (
  object_key TEXT PRIMARY KEY
);
CREATE INDEX IF NOT EXISTS idx_facets_content ON content_facets(content_id);
CREATE INDEX IF NOT EXISTS idx_facets_day ON content_facets(day);
CREATE INDEX IF NOT EXISTS idx_facets_devname ON content_facets(devname, day);
CREATE INDEX IF NOT EXISTS idx_facets_devid ON content_facets(devid, day);
";

/// A device and its days with lines: (day, lines, archives), in day order.
pub type DeviceDays = (String, Vec<(String, u64, u64)>);

impl Inventory {
    /// Records the index of the object at `key` (holding `sha256`), read
    /// for row `backup_id`, replacing any earlier index of the key. Runs in
    /// the caller's transaction, so the index and the row land together.
    pub fn record_content(
        &self,
        backup_id: Option<i64>,
        key: &str,
        sha256: &str,
        ix: &Indexed,
    ) -> Result<()> {
        record(&self.conn, backup_id, key, sha256, ix).map_err(|e| self.err(e))
    }
}

fn record(
    conn: &Connection,
    backup_id: Option<i64>,
    key: &str,
    sha256: &str,
    ix: &Indexed,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM content_facets WHERE content_id IN (SELECT id FROM content WHERE object_key = ?1)",
    )?
    .execute([key])?;
    conn.prepare_cached("DELETE FROM content WHERE object_key = ?1")?
        .execute([key])?;
    let s = &ix.index.summary;
    conn.prepare_cached(
        "INSERT INTO content (object_key, sha256, backup_id, indexed_at, format, time_unit, first_at,
           last_at, lines, log_bytes, unparsed, without_time, ip_filter, incomplete)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        key,
        sha256,
        backup_id,
        crate::timefmt::iso8601(std::time::SystemTime::now()),
        s.format.map(|f| f.as_str()),
        s.unit.map(|u| u.as_str()),
        s.first,
        s.last,
        s.lines as i64,
        s.bytes as i64,
        s.unparsed as i64,
        s.without_time as i64,
        &*ix.index.ips.as_bytes(),
        ix.incomplete,
    ])?;
    let id = conn.last_insert_rowid();
    if ix.incomplete.is_none() {
        conn.prepare_cached("DELETE FROM content_pending WHERE object_key = ?1")?
            .execute([key])?;
    } else {
        conn.prepare_cached("INSERT OR IGNORE INTO content_pending (object_key) VALUES (?1)")?
            .execute([key])?;
    }
    insert_facets(conn, id, ix)
}

/// The facets of content row `id`.
fn insert_facets(conn: &Connection, id: i64, ix: &Indexed) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO content_facets (content_id, day, devid, devname, vd, log_type, subtype, action,
           overflow, lines, first_at, last_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for (k, c) in &ix.index.facets {
        insert.execute(params![
            id,
            k.day,
            k.devid,
            k.devname,
            k.vd,
            k.log_type,
            k.subtype,
            k.action,
            k.is_overflow(),
            c.lines as i64,
            c.first,
            c.last,
        ])?;
    }
    Ok(())
}

/// One archive whose index says it may hold matching lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub key: String,
    pub sha256: String,
    /// The devices (devname, else devid) of its matching facets.
    pub devices: Vec<String>,
    /// First and last UTC day of its matching facets ("" without a time).
    pub first_day: String,
    pub last_day: String,
    /// Lines of its matching facets: the matching lines when `exact`, else
    /// an upper bound (an address filter, a bound inside a day, an
    /// overflow facet).
    pub lines: u64,
    pub exact: bool,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// The index covers only part of the archive (why).
    pub incomplete: Option<String>,
}

/// The SQL condition on `content_facets f` for `q`, and its arguments.
/// An overflow facet matches any type, subtype, vd and action, and one
/// without a device any device: what it counted could be any of them.
fn facet_condition(q: &Query) -> (String, Vec<SqlValue>) {
    let mut sql = "1".to_string();
    let mut args = Vec::new();
    if let Some(d) = &q.device {
        sql.push_str(
            " AND (f.devname = ? OR f.devid = ? OR (f.overflow = 1 AND f.devname = '' AND f.devid = ''))",
        );
        args.push(SqlValue::Text(d.clone()));
        args.push(SqlValue::Text(d.clone()));
    }
    let mut exact = Vec::new();
    for (col, v) in [
        ("action", &q.action),
        ("log_type", &q.log_type),
        ("subtype", &q.subtype),
        ("vd", &q.vd),
    ] {
        if let Some(v) = v {
            exact.push(format!("f.{col} = ?"));
            args.push(SqlValue::Text(v.clone()));
        }
    }
    if !exact.is_empty() {
        sql.push_str(&format!(
            " AND (f.overflow = 1 OR ({}))",
            exact.join(" AND ")
        ));
    }
    if let Some(s) = q.since {
        sql.push_str(" AND f.day >= ? AND f.last_at >= ?");
        args.push(SqlValue::Text(crate::content::day(s)));
        args.push(SqlValue::Integer(s));
    }
    if let Some(u) = q.until {
        sql.push_str(" AND f.day <> '' AND f.day <= ? AND f.first_at <= ?");
        args.push(SqlValue::Text(crate::content::day(u)));
        args.push(SqlValue::Integer(u));
    }
    (sql, args)
}

/// Whether `q`'s time bounds are whole UTC days, so that facets (one per
/// day) count exactly the lines inside them.
fn whole_days(q: &Query) -> bool {
    q.since.is_none_or(|s| s.rem_euclid(86_400) == 0)
        && q.until.is_none_or(|u| u.rem_euclid(86_400) == 86_399)
}

/// The archives whose index matches `q`, in key order, handed to `each`
/// until it returns `false`; with `q.ip`, those whose IP filter may hold it.
/// Without any filter every indexed archive matches, also one none of
/// whose lines could be read (it has no facet): its lines are its count.
pub(super) fn search(
    conn: &Connection,
    q: &Query,
    mut each: impl FnMut(Hit) -> bool,
) -> rusqlite::Result<()> {
    let (cond, args) = facet_condition(q);
    let any = *q == Query::default();
    let sql = format!(
        "SELECT c.id, c.object_key, c.sha256, c.incomplete,
                group_concat(DISTINCT CASE WHEN f.devname <> '' THEN f.devname ELSE f.devid END),
                min(f.day), max(f.day), {lines}, min(f.first_at), max(f.last_at),
                coalesce(max(f.overflow), 0)
         FROM content c {join} content_facets f ON c.id = f.content_id
         WHERE {cond}
         GROUP BY c.id ORDER BY c.object_key",
        lines = if any { "max(c.lines)" } else { "sum(f.lines)" },
        join = if any { "LEFT JOIN" } else { "JOIN" },
    );
    let exact_bounds = whole_days(q) && q.ip.is_none();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        if let Some(ip) = q.ip
            && !may_hold(conn, id, ip)?
        {
            continue;
        }
        let devices: Option<String> = r.get(4)?;
        let hit = Hit {
            key: r.get(1)?,
            sha256: r.get(2)?,
            incomplete: r.get(3)?,
            devices: devices
                .unwrap_or_default()
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect(),
            first_day: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            last_day: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            lines: r.get::<_, Option<i64>>(7)?.unwrap_or(0).max(0) as u64,
            first: r.get(8)?,
            last: r.get(9)?,
            exact: exact_bounds && r.get::<_, i64>(10)? == 0,
        };
        if !each(hit) {
            break;
        }
    }
    Ok(())
}

/// Whether content row `id`'s IP filter may hold `ip` (a missing or
/// unreadable filter may hold anything).
fn may_hold(conn: &Connection, id: i64, ip: IpAddr) -> rusqlite::Result<bool> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT ip_filter FROM content WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(blob
        .as_deref()
        .and_then(IpFilter::from_bytes)
        .is_none_or(|f| f.may_contain(ip)))
}

/// How the index stands for one archived object: what `grep` decides by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Indexed whole, from these very bytes: its facets decide.
    Whole { id: i64 },
    /// Indexed from these very bytes, but only in part (a broken gzip
    /// stream, a line over 1 MiB): grep must read it; reading it again
    /// would give the same part, so `reindex --content` leaves it.
    Partial,
    /// Not indexed, or indexed from other bytes: it must be read.
    Unknown,
}

/// The index of `key` if it was built from the bytes `sha256` names.
pub(super) fn coverage_of(
    conn: &Connection,
    key: &str,
    sha256: Option<&str>,
) -> rusqlite::Result<Coverage> {
    let row: Option<(i64, String, Option<String>)> = conn
        .prepare_cached("SELECT id, sha256, incomplete FROM content WHERE object_key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match row {
        Some((id, sha, None)) if Some(sha.as_str()) == sha256 => Coverage::Whole { id },
        Some((_, sha, Some(_))) if Some(sha.as_str()) == sha256 => Coverage::Partial,
        _ => Coverage::Unknown,
    })
}

/// Whether the archive indexed as content row `id` may hold a line `q`
/// matches. Without a filter any line matches, also those the scanner
/// could not read (which have no facet): every archive may.
pub(super) fn may_match(conn: &Connection, id: i64, q: &Query) -> rusqlite::Result<bool> {
    if *q == Query::default() {
        return Ok(true);
    }
    let (cond, mut args) = facet_condition(q);
    let sql = format!("SELECT 1 FROM content_facets f WHERE f.content_id = ? AND {cond} LIMIT 1");
    args.insert(0, SqlValue::Integer(id));
    let any = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args), |_| Ok(()))
        .optional()?
        .is_some();
    match q.ip {
        Some(ip) if any => may_hold(conn, id, ip),
        _ => Ok(any),
    }
}

/// Lines per UTC day for one device (devname or devid) between two days
/// (inclusive), in day order: the facts behind `search --coverage`.
pub(super) fn device_days(
    conn: &Connection,
    device: &str,
    from: &str,
    to: &str,
) -> rusqlite::Result<Vec<(String, u64, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, sum(lines), count(DISTINCT content_id) FROM content_facets
         WHERE (devname = ?1 OR devid = ?1) AND day >= ?2 AND day <= ?3 AND day <> ''
         GROUP BY day ORDER BY day",
    )?;
    let rows = stmt.query_map(params![device, from, to], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?.max(0) as u64,
            r.get::<_, i64>(2)?.max(0) as u64,
        ))
    })?;
    rows.collect()
}

/// The time spans (first, last line) of the archives holding lines of
/// `device` that overlap `[from, to]`: hourly coverage is read from these.
pub(super) fn device_spans(
    conn: &Connection,
    device: &str,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT min(first_at), max(last_at) FROM content_facets
         WHERE (devname = ?1 OR devid = ?1) AND day >= ?2 AND day <= ?3 AND day <> ''
         GROUP BY content_id",
    )?;
    let rows = stmt.query_map(
        params![
            device,
            crate::content::day(from - 86_400),
            crate::content::day(to + 86_400)
        ],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    rows.collect()
}

/// The archived objects (newest archived row per key, not pruned since)
/// without a whole index of their bytes: a pass over `backups`, run once
/// when the inventory gains the index (schema 4) to fill `content_pending`.
pub(super) const SEED_PENDING: &str = "
INSERT OR IGNORE INTO content_pending (object_key)
SELECT g.k
FROM (SELECT COALESCE(object_key, filename) AS k, MAX(id) AS last_id FROM backups
      WHERE status IN (STATUSES) GROUP BY COALESCE(object_key, filename)) g
JOIN backups b ON b.id = g.last_id
WHERE NOT EXISTS (SELECT 1 FROM prunes p WHERE p.object_key = g.k AND p.backup_id >= g.last_id)
  AND NOT EXISTS (SELECT 1 FROM content c WHERE c.object_key = g.k
                  AND c.sha256 = b.sha256 AND c.incomplete IS NULL)";

/// How many archived objects the index cannot speak for (never indexed,
/// indexed in part, or from other bytes): `search` says so, since it
/// cannot see inside them, and `grep` reads them whatever the filters.
pub(super) fn unindexed(conn: &Connection) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM content_pending", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// A row of `key` holding `sha256` was archived: pending unless a whole
/// index of those bytes exists (a later index of them clears it).
pub(super) fn archived(conn: &Connection, key: &str, sha256: Option<&str>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO content_pending (object_key)
         SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM content WHERE object_key = ?1
                                     AND sha256 IS ?2 AND incomplete IS NULL)",
    )?
    .execute(params![key, sha256])?;
    Ok(())
}

/// `prune` removed `key`: its index goes, and it is no longer pending.
pub(super) fn pruned(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM content_facets WHERE content_id IN (SELECT id FROM content WHERE object_key = ?1)",
    )?
    .execute([key])?;
    conn.prepare_cached("DELETE FROM content WHERE object_key = ?1")?
        .execute([key])?;
    conn.prepare_cached("DELETE FROM content_pending WHERE object_key = ?1")?
        .execute([key])?;
    Ok(())
}

impl Inventory {
    /// How the index stands for `key`, archived with `sha256` ([`Coverage`]).
    pub fn content_coverage(&self, key: &str, sha256: Option<&str>) -> Result<Coverage> {
        coverage_of(&self.conn, key, sha256).map_err(|e| self.err(e))
    }

    /// Whether the archive indexed as `id` may hold a line `q` matches.
    pub fn content_may_match(&self, id: i64, q: &Query) -> Result<bool> {
        may_match(&self.conn, id, q).map_err(|e| self.err(e))
    }
}

impl super::Reader {
    /// [`search`], on an inventory that may predate the index (none then).
    pub fn search(&self, q: &Query, each: impl FnMut(Hit) -> bool) -> rusqlite::Result<()> {
        if !self.has_content()? {
            return Ok(());
        }
        search(&self.conn, q, each)
    }

    /// [`Reader::search`] that gives up after `limit` (SQLite interrupted
    /// from a watchdog thread): a query on the API's lane must not hold it
    /// for as long as a huge index takes. `Ok(false)`: it gave up.
    pub fn search_within(
        &self,
        q: &Query,
        limit: std::time::Duration,
        each: impl FnMut(Hit) -> bool,
    ) -> rusqlite::Result<bool> {
        let handle = self.conn.get_interrupt_handle();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::Builder::new()
            .name("search-limit".into())
            .spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                    handle.interrupt();
                    return true;
                }
                false
            });
        let result = self.search(q, each);
        drop(done);
        let gave_up = watchdog.is_ok_and(|w| w.join().unwrap_or(false));
        match result {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if gave_up && e.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        }
    }

    /// [`unindexed`]: every archived object when the index predates it.
    pub fn unindexed(&self) -> rusqlite::Result<u64> {
        if self.has_content()? {
            unindexed(&self.conn)
        } else {
            self.archived_count()
        }
    }

    /// [`device_days`] (none before the index).
    pub fn device_days(
        &self,
        device: &str,
        from: &str,
        to: &str,
    ) -> rusqlite::Result<Vec<(String, u64, u64)>> {
        if !self.has_content()? {
            return Ok(Vec::new());
        }
        device_days(&self.conn, device, from, to)
    }

    /// Every device's days with lines in `[from, to]` (days `YYYY-MM-DD`):
    /// (device, [(day, lines, archives)]) by device name (its id where the
    /// lines carry no name), at most `max_devices` of them: the page's
    /// coverage calendar (none before the index).
    pub fn devices_days(
        &self,
        from: &str,
        to: &str,
        max_devices: usize,
    ) -> rusqlite::Result<Vec<DeviceDays>> {
        if !self.has_content()? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT COALESCE(NULLIF(devname, ''), devid) AS device, day, sum(lines),
                    count(DISTINCT content_id)
             FROM content_facets WHERE day >= ?1 AND day <= ?2 AND day <> ''
             GROUP BY device, day HAVING device <> '' ORDER BY device, day",
        )?;
        let mut rows = stmt.query(params![from, to])?;
        let mut out: Vec<DeviceDays> = Vec::new();
        while let Some(r) = rows.next()? {
            let device: String = r.get(0)?;
            let day = (
                r.get(1)?,
                r.get::<_, i64>(2)?.max(0) as u64,
                r.get::<_, i64>(3)?.max(0) as u64,
            );
            if let Some((_, days)) = out.last_mut().filter(|(d, _)| *d == device) {
                days.push(day);
            } else if out.len() == max_devices {
                break;
            } else {
                out.push((device, vec![day]));
            }
        }
        Ok(out)
    }

    /// [`device_spans`] (none before the index).
    pub fn device_spans(
        &self,
        device: &str,
        from: i64,
        to: i64,
    ) -> rusqlite::Result<Vec<(i64, i64)>> {
        if !self.has_content()? {
            return Ok(Vec::new());
        }
        device_spans(&self.conn, device, from, to)
    }

    fn has_content(&self) -> rusqlite::Result<bool> {
        Ok(super::reader::has_table(&self.conn, "content")?
            && super::reader::has_table(&self.conn, "content_facets")?
            && super::reader::has_table(&self.conn, "content_pending")?)
    }

    /// Archived objects, pruned ones left out (an inventory before the
    /// index: none indexed). A pass over `backups`, on old inventories only.
    fn archived_count(&self) -> rusqlite::Result<u64> {
        let statuses = super::status::Status::archived_names();
        let marks = vec!["?"; statuses.len()].join(",");
        let key = super::KEY;
        let pruned = if super::reader::has_table(&self.conn, "prunes")? {
            "WHERE NOT EXISTS (SELECT 1 FROM prunes p WHERE p.object_key = g.k AND p.backup_id >= g.last_id)"
        } else {
            ""
        };
        let n: i64 = self.conn.query_row(
            &format!(
                "SELECT count(*) FROM (SELECT {key} AS k, MAX(id) AS last_id FROM backups
                 WHERE status IN ({marks}) GROUP BY {key}) g {pruned}"
            ),
            params_from_iter(statuses),
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}

/// What a search found in all, after its archives: the same last fields
/// for `search --json` and `GET /search`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchTotals {
    /// Archives that may hold matching lines.
    pub matched: u64,
    /// Their matching lines (an upper bound unless every hit is exact).
    pub lines: u64,
    /// Archived objects the index cannot speak for.
    pub unindexed: u64,
}

impl SearchTotals {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({"matched": self.matched, "lines": self.lines, "unindexed": self.unindexed})
    }
}

impl Hit {
    /// The hit as `search --json` and `GET /search` give it.
    pub fn to_json(&self) -> serde_json::Value {
        let t = |t: Option<i64>| t.map(crate::content::instant);
        serde_json::json!({
            "key": self.key,
            "sha256": self.sha256,
            "devices": self.devices,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "lines": self.lines,
            "exact": self.exact,
            "first": t(self.first),
            "last": t(self.last),
            "incomplete": self.incomplete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A search over an index too big for its time limit is stopped and
    /// says so; with room, the same search answers whole.
    #[test]
    fn a_search_past_its_time_limit_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inv.db");
        let inv = Inventory::open(&path).unwrap();
        inv.conn
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
                 INSERT INTO content (id, object_key, sha256, indexed_at, lines, log_bytes, unparsed, without_time)
                   SELECT i, 'k' || i, 's', 't', 1, 1, 0, 0 FROM n;
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
                 INSERT INTO content_facets (content_id, day, devid, devname, vd, log_type, subtype, action, overflow, lines)
                   SELECT i % 5000 + 1, '2026-03-03', 'id' || (i % 977), 'd' || i, 'root', 't', 's', 'deny', 0, 1 FROM n;",
            )
            .unwrap();
        let reader = super::super::Reader::open(&path).unwrap();
        let q = Query {
            action: Some("deny".into()),
            ..Query::default()
        };
        let tiny = std::time::Duration::from_millis(1);
        assert!(
            !reader.search_within(&q, tiny, |_| true).unwrap(),
            "not stopped"
        );
        let mut n = 0;
        let roomy = std::time::Duration::from_secs(600);
        assert!(
            reader
                .search_within(&q, roomy, |_| {
                    n += 1;
                    true
                })
                .unwrap()
        );
        assert_eq!(n, 5000);
    }
}
