//! Read-only queries on the inventory. Each API worker owns one connection,
//! opened with `SQLITE_OPEN_READ_ONLY`: nothing the API does can change the
//! database, and in WAL mode it reads while an upload run writes.
//!
//! A database straight from the Python suite lacks our added columns; they are
//! selected as NULL there, so the API serves it unchanged.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use serde_json::{Map, Value};

/// The suite's columns, then ours, in the order the API returns them.
const COLUMNS: &[&str] = &[
    "id",
    "filename",
    "s3_url",
    "sha256",
    "uploaded_at",
    "backup_date",
    "deleted_local",
    "status",
    "object_key",
    "source_path",
    "size_bytes",
    "duration_ms",
    "error",
    "run_id",
];

/// Filters of `GET /backups`, already validated.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub status: Option<String>,
    pub filename: Option<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// Only rows with `id` below this (keyset pagination, newest first).
    pub before_id: Option<i64>,
}

/// One worker's read-only view of the database.
pub struct Reader {
    conn: Connection,
    select: String,
    has_runs: bool,
}

impl Reader {
    /// Opens `path` read-only; fails if it does not exist or is not a
    /// fgbackup/suite database.
    pub fn open(path: &Path) -> Result<Reader, String> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| format!("cannot open {} read-only: {e}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let present: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info('backups')")
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            stmt.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        };
        if present.is_empty() {
            return Err(format!("{} has no backups table", path.display()));
        }
        let select = COLUMNS
            .iter()
            .map(|c| {
                if present.iter().any(|p| p == c) {
                    (*c).to_string()
                } else {
                    format!("NULL AS {c}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let has_runs: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        Ok(Reader {
            conn,
            select,
            has_runs,
        })
    }

    /// Up to `limit` rows matching `f`, newest first.
    pub fn list(&self, f: &Filters, limit: u32) -> rusqlite::Result<Vec<Value>> {
        let mut sql = format!("SELECT {} FROM backups WHERE 1=1", self.select);
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(s) = &f.status {
            sql.push_str(" AND status = ?");
            args.push(SqlValue::Text(s.clone()));
        }
        if let Some(n) = &f.filename {
            sql.push_str(" AND instr(filename, ?) > 0");
            args.push(SqlValue::Text(n.clone()));
        }
        if let Some(d) = &f.date_from {
            sql.push_str(" AND backup_date >= ?");
            args.push(SqlValue::Text(d.clone()));
        }
        if let Some(d) = &f.date_to {
            sql.push_str(" AND backup_date <= ?");
            args.push(SqlValue::Text(d.clone()));
        }
        if let Some(id) = f.before_id {
            sql.push_str(" AND id < ?");
            args.push(SqlValue::Integer(id));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(SqlValue::Integer(i64::from(limit)));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), row_json)?;
        rows.collect()
    }

    /// The row with this id.
    pub fn by_id(&self, id: i64) -> rusqlite::Result<Option<Value>> {
        let sql = format!("SELECT {} FROM backups WHERE id = ?", self.select);
        self.conn
            .prepare_cached(&sql)?
            .query_row([id], row_json)
            .optional()
    }

    /// The newest row.
    pub fn last(&self) -> rusqlite::Result<Option<Value>> {
        let sql = format!(
            "SELECT {} FROM backups ORDER BY id DESC LIMIT 1",
            self.select
        );
        self.conn
            .prepare_cached(&sql)?
            .query_row([], row_json)
            .optional()
    }

    /// `(object_key or filename)` of a row, for presigning.
    pub fn key_of(&self, id: i64) -> rusqlite::Result<Option<(String, Option<String>)>> {
        let row = self.by_id(id)?;
        Ok(row.map(|r| {
            let key = r["object_key"]
                .as_str()
                .or_else(|| r["filename"].as_str())
                .unwrap_or_default()
                .to_string();
            (key, r["status"].as_str().map(str::to_string))
        }))
    }

    /// Per-day counts by status and bytes archived, oldest day first.
    pub fn stats(
        &self,
        date_from: Option<&str>,
        date_to: Option<&str>,
    ) -> rusqlite::Result<Vec<Value>> {
        let bytes = if self.select.contains("NULL AS size_bytes") {
            "0"
        } else {
            "COALESCE(SUM(CASE WHEN status = 'uploaded' THEN size_bytes END), 0)"
        };
        let sql = format!(
            "SELECT backup_date,
                    COUNT(*),
                    SUM(status = 'uploaded'),
                    SUM(status = 'skipped_exists'),
                    SUM(status LIKE 'failed%'),
                    {bytes}
             FROM backups
             WHERE backup_date >= ?1 AND backup_date <= ?2
             GROUP BY backup_date ORDER BY backup_date"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            [
                date_from.unwrap_or("0000-00-00"),
                date_to.unwrap_or("9999-99-99"),
            ],
            |r| {
                let mut m = Map::new();
                m.insert("date".into(), Value::from(r.get::<_, Option<String>>(0)?));
                m.insert("total".into(), Value::from(r.get::<_, i64>(1)?));
                m.insert("uploaded".into(), Value::from(r.get::<_, i64>(2)?));
                m.insert("skipped_exists".into(), Value::from(r.get::<_, i64>(3)?));
                m.insert("failed".into(), Value::from(r.get::<_, i64>(4)?));
                m.insert("bytes_uploaded".into(), Value::from(r.get::<_, i64>(5)?));
                Ok(Value::Object(m))
            },
        )?;
        rows.collect()
    }

    /// `finished_at` of the newest run that ended `ok`, if the runs table exists.
    pub fn last_success(&self) -> rusqlite::Result<Option<String>> {
        if !self.has_runs {
            return Ok(None);
        }
        self.conn
            .prepare_cached(
                "SELECT finished_at FROM runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
            )?
            .query_row([], |r| r.get(0))
            .optional()
            .map(Option::flatten)
    }

    /// Row counts by status.
    pub fn counts_by_status(&self) -> rusqlite::Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT COALESCE(status, ''), count(*) FROM backups GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    /// The newest run's figures: (status, files, failed, bytes, duration_ms, finished_at).
    pub fn last_run(&self) -> rusqlite::Result<Option<LastRun>> {
        if !self.has_runs {
            return Ok(None);
        }
        self.conn
            .prepare_cached(
                "SELECT status, files_seen, failed, bytes_uploaded, duration_ms,
                        CAST(strftime('%s', finished_at) AS INTEGER)
                 FROM runs WHERE status != 'running' ORDER BY id DESC LIMIT 1",
            )?
            .query_row([], |r| {
                Ok(LastRun {
                    ok: r.get::<_, String>(0)? == "ok",
                    files: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    failed: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                    bytes: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    duration_ms: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                    finished_unix: r.get(5)?,
                })
            })
            .optional()
    }
}

/// Figures of the newest finished run.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub ok: bool,
    pub files: i64,
    pub failed: i64,
    pub bytes: i64,
    pub duration_ms: i64,
    pub finished_unix: Option<i64>,
}

fn row_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let mut m = Map::with_capacity(COLUMNS.len());
    for (i, name) in COLUMNS.iter().enumerate() {
        let v = match r.get_ref(i)? {
            rusqlite::types::ValueRef::Null => Value::Null,
            rusqlite::types::ValueRef::Integer(n) => Value::from(n),
            rusqlite::types::ValueRef::Real(x) => Value::from(x),
            rusqlite::types::ValueRef::Text(t) => {
                Value::from(String::from_utf8_lossy(t).into_owned())
            }
            rusqlite::types::ValueRef::Blob(_) => Value::Null,
        };
        m.insert((*name).to_string(), v);
    }
    Ok(Value::Object(m))
}
