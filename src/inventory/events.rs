//! What changed in the inventory since the last look, as the live stream's
//! events (`GET /events`): new runs and their ends, each new file row,
//! finished verifies, and the content index growing. The rows are the one
//! source, whichever process wrote them: the API's watcher reads here, at
//! once after a write of its own process (`crate::changes`) and otherwise
//! once a second.

use rusqlite::OptionalExtension;
use serde_json::{Value, json};

use super::reader::{Reader, has_table};
use super::status::{RunStatus, Status};

/// Where the last look ended: the newest id seen per table, and the runs
/// and verifies seen started but not yet finished.
#[derive(Debug, Default, Clone)]
pub struct Marks {
    backup: i64,
    run: i64,
    verification: i64,
    content: i64,
    open_runs: Vec<i64>,
    open_verifications: Vec<i64>,
}

/// One event: its name (`run_started`, `file_archived`, ...) and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub name: &'static str,
    pub data: Value,
}

fn change(name: &'static str, data: Value) -> Change {
    Change { name, data }
}

/// Most runs or verifies followed at once: a crashed writer leaves its row
/// `running` until the next run closes it, and those pile up no further.
const MAX_OPEN: usize = 64;

impl Reader {
    /// The marks as of now, or as of `since` (an ISO 8601 time as the
    /// inventory writes them, to the second): a stream carries what happens
    /// from then on, not the inventory's history (the views read that). The
    /// watcher passes the time it started when the database could not be
    /// opened then (the daemon's first run creates it), so rows written
    /// meanwhile are not lost, and the time of its last look at a file
    /// replaced since.
    pub fn marks(&self, since: Option<&str>) -> rusqlite::Result<Marks> {
        let before = |table: &str, time: &str| -> rusqlite::Result<i64> {
            if !has_table(&self.conn, table)? {
                return Ok(0);
            }
            let newest = format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
            let Some(since) = since else {
                return self.conn.query_row(&newest, [], |r| r.get(0));
            };
            // Ids grow with time: the first row at or after `since` (an
            // index range on the time column), else the newest row.
            self.conn.query_row(
                &format!(
                    "SELECT COALESCE((SELECT MIN(id) - 1 FROM {table} WHERE {time} >= ?1), ({newest}))"
                ),
                [since],
                |r| r.get(0),
            )
        };
        let mut marks = Marks {
            backup: before("backups", "uploaded_at")?,
            run: before("runs", "started_at")?,
            verification: before("verifications", "started_at")?,
            content: before("content", "indexed_at")?,
            ..Marks::default()
        };
        marks.open_runs = self.open_ids("runs", marks.run)?;
        marks.open_verifications = self.open_ids("verifications", marks.verification)?;
        Ok(marks)
    }

    /// Runs (or verifies) up to id `upto` still running: their ends are news.
    fn open_ids(&self, table: &str, upto: i64) -> rusqlite::Result<Vec<i64>> {
        if !has_table(&self.conn, table)? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id FROM {table} WHERE status = ?1 AND id <= ?2 ORDER BY id DESC LIMIT {MAX_OPEN}"
        ))?;
        let rows = stmt.query_map(rusqlite::params![RunStatus::Running.as_str(), upto], |r| {
            r.get(0)
        })?;
        rows.collect()
    }

    /// The changes after `marks`, at most about `limit` file rows of them
    /// (call again while it returns that many), and `marks` moved past them.
    ///
    /// One read transaction: every query sees the same commit, so a run's
    /// end never comes before its files (each statement on its own saw the
    /// run finished but not yet all its rows, under load). A run's end
    /// waits while file rows are left for the next call.
    pub fn changes(&self, marks: &mut Marks, limit: u32) -> rusqlite::Result<Vec<Change>> {
        self.conn.execute_batch("BEGIN")?;
        let mut next = marks.clone();
        let found = self.changes_in(&mut next, limit);
        self.conn.execute_batch("COMMIT")?;
        let found = found?;
        *marks = next;
        Ok(found)
    }

    fn changes_in(&self, marks: &mut Marks, limit: u32) -> rusqlite::Result<Vec<Change>> {
        let mut out = Vec::new();
        self.new_runs(marks, &mut out)?;
        let files = out.len();
        self.new_files(marks, limit, &mut out)?;
        if out.len() - files < limit as usize {
            self.finished_runs(marks, &mut out)?;
            self.verifies(marks, &mut out)?;
            self.index_growth(marks, &mut out)?;
        }
        Ok(out)
    }

    fn new_runs(&self, marks: &mut Marks, out: &mut Vec<Change>) -> rusqlite::Result<()> {
        if !self.has_runs {
            return Ok(());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, started_at, host, source_dir, destination FROM runs WHERE id > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([marks.run], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                json!({"run_id": r.get::<_, i64>(0)?, "started_at": r.get::<_, Option<String>>(1)?,
                       "host": r.get::<_, Option<String>>(2)?, "source": r.get::<_, Option<String>>(3)?,
                       "destination": r.get::<_, Option<String>>(4)?}),
            ))
        })?;
        for row in rows {
            let (id, data) = row?;
            marks.run = id;
            marks.open_runs.insert(0, id);
            marks.open_runs.truncate(MAX_OPEN);
            out.push(change("run_started", data));
        }
        Ok(())
    }

    fn new_files(
        &self,
        marks: &mut Marks,
        limit: u32,
        out: &mut Vec<Change>,
    ) -> rusqlite::Result<()> {
        let sql = format!(
            "SELECT id, {key}, status, size_bytes, sha256, duration_ms, error, run_id
             FROM (SELECT {select} FROM backups WHERE id > ?1 ORDER BY id LIMIT ?2)",
            key = super::KEY,
            select = self.select
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params![marks.backup, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<i64>>(7)?,
            ))
        })?;
        for row in rows {
            let (id, key, status, size, sha, ms, error, run) = row?;
            marks.backup = id;
            out.push(file_change(id, key, status, size, sha, ms, error, run));
        }
        Ok(())
    }

    fn finished_runs(&self, marks: &mut Marks, out: &mut Vec<Change>) -> rusqlite::Result<()> {
        if !self.has_runs || marks.open_runs.is_empty() {
            return Ok(());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT status, files_seen, uploaded, skipped, failed, deleted, bytes_uploaded,
                    duration_ms, exit_code, finished_at
             FROM runs WHERE id = ?1",
        )?;
        let mut still_open = Vec::new();
        for id in std::mem::take(&mut marks.open_runs) {
            let row = stmt
                .query_row([id], |r| {
                    let n = |i| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0));
                    Ok((
                        r.get::<_, String>(0)?,
                        json!({"run_id": id, "status": r.get::<_, String>(0)?, "files": n(1)?,
                               "uploaded": n(2)?, "skipped": n(3)?, "failed": n(4)?, "deleted": n(5)?,
                               "bytes": n(6)?, "seconds": n(7)? as f64 / 1000.0,
                               "exit_code": r.get::<_, Option<i64>>(8)?,
                               "finished_at": r.get::<_, Option<String>>(9)?}),
                    ))
                })
                .optional()?;
            match row {
                Some((status, _)) if status == RunStatus::Running.as_str() => still_open.push(id),
                Some((_, data)) => out.push(change("run_finished", data)),
                None => {}
            }
        }
        marks.open_runs = still_open;
        Ok(())
    }

    fn verifies(&self, marks: &mut Marks, out: &mut Vec<Change>) -> rusqlite::Result<()> {
        if !self.has_verifications {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM verifications WHERE id > ?1 ORDER BY id")?;
        let new: Vec<i64> = stmt
            .query_map([marks.verification], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if let Some(last) = new.last() {
            marks.verification = *last;
        }
        let mut open = std::mem::take(&mut marks.open_verifications);
        open.extend(new);
        for id in open {
            match self.verification(id)? {
                Some(v) if v["status"] == RunStatus::Running.as_str() => {
                    marks.open_verifications.push(id)
                }
                Some(v) => out.push(change("verify_finished", v)),
                None => {}
            }
        }
        marks.open_verifications.truncate(MAX_OPEN);
        Ok(())
    }

    fn index_growth(&self, marks: &mut Marks, out: &mut Vec<Change>) -> rusqlite::Result<()> {
        if !has_table(&self.conn, "content")? {
            return Ok(());
        }
        // A key indexed again gets a new row (and id): `indexed` counts
        // the indexes written, `archives` what the index holds now.
        let (count, max): (i64, i64) = self.conn.query_row(
            "SELECT count(*), COALESCE(MAX(id), 0) FROM content WHERE id > ?1",
            [marks.content],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if count > 0 {
            marks.content = max;
            let total: i64 = self
                .conn
                .query_row("SELECT count(*) FROM content", [], |r| r.get(0))?;
            out.push(change(
                "index_updated",
                json!({"indexed": count, "archives": total}),
            ));
        }
        Ok(())
    }
}

/// A file row as its event: `file_archived` for a row whose object is
/// archived, else `file_failed` with the reason.
#[allow(clippy::too_many_arguments)]
fn file_change(
    id: i64,
    key: String,
    status: Option<String>,
    size: Option<i64>,
    sha: Option<String>,
    ms: Option<i64>,
    error: Option<String>,
    run: Option<i64>,
) -> Change {
    let status = status.unwrap_or_default();
    let device = crate::scan::device_of(&key);
    let failed = Status::from_column(&status).map_or(
        status.starts_with(Status::FAILED_PREFIX),
        Status::is_failure,
    );
    if failed {
        return change(
            "file_failed",
            json!({"id": id, "key": key, "status": status, "reason": error.unwrap_or_default(),
                   "device": device, "run_id": run}),
        );
    }
    let sha: String = sha.unwrap_or_default().chars().take(12).collect();
    change(
        "file_archived",
        json!({"id": id, "key": key, "bytes": size.unwrap_or(0), "sha256": sha, "device": device,
               "seconds": ms.unwrap_or(0) as f64 / 1000.0, "status": status, "run_id": run}),
    )
}
