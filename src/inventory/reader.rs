//! Read-only queries on the inventory. Each API worker owns one connection,
//! opened with `SQLITE_OPEN_READ_ONLY`: nothing the API does can change the
//! database, and in WAL mode it reads while an upload run writes.
//!
//! A database straight from the Python suite lacks our added columns; they are
//! selected as NULL there, so the API serves it unchanged.

use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use serde_json::{Map, Value};

use super::KEY;
use super::schema::BACKUP_COLUMNS;
use super::status::{RunStatus, Status, StatusFilter};

/// SQL condition true for rows of any failure status (the suite's
/// `failed_*`, also ones this version does not know): the same rows for
/// `/backups?status=failed` and the `failed` count of `/stats`.
fn failed_condition() -> String {
    format!("status GLOB '{}*'", Status::FAILED_PREFIX)
}

/// A status as an SQL string literal, for a condition inside a query whose
/// parameters are the caller's values (and whose shape varies with the
/// schema, so numbered parameters would not line up). Every status text is
/// ours, lower-case letters and `_`: quoting it cannot be broken out of.
fn literal(status: &'static str) -> String {
    format!("'{status}'")
}

/// Filters of `GET /backups`, already validated.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub status: Option<StatusFilter>,
    pub filename: Option<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// Only rows with `id` below this (keyset pagination, newest first).
    pub before_id: Option<i64>,
}

/// Why the read-only view cannot be had: the database file, and SQLite's
/// own error kept as the cause (the API logs it and answers 503).
#[derive(Debug)]
pub enum OpenError {
    /// SQLite cannot open the file read-only (missing, no permission).
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The file opened, but reading its schema failed (not a database,
    /// locked past the busy timeout).
    Read {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A database without a `backups` table: not an inventory.
    NoBackups { path: PathBuf },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Open { path, source } => {
                write!(f, "cannot open {} read-only: {source}", path.display())
            }
            OpenError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            OpenError::NoBackups { path } => write!(f, "{} has no backups table", path.display()),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Open { source, .. } | OpenError::Read { source, .. } => Some(source),
            OpenError::NoBackups { .. } => None,
        }
    }
}

/// Whether the database has the table `name` (a suite database has no
/// `runs`, one older than schema 2 no `verifications`).
pub(super) fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )
}

/// One worker's read-only view of the database.
pub struct Reader {
    pub(super) conn: Connection,
    pub(super) select: String,
    pub(super) has_runs: bool,
    pub(super) has_verifications: bool,
    /// The manifests table has its `sequence` column (schema 3).
    has_manifest_sequence: bool,
    /// What was opened, to tell when it is no longer what the path names.
    path: PathBuf,
    identity: Option<(u64, u64)>,
    schema_version: i64,
}

/// Whether a [`Reader`] still reads what its path names, as it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Current,
    /// The schema changed (a migration by a newer run, e.g. of a database
    /// from the Python suite): same rows, new columns or tables.
    Schema,
    /// Another file is at the path now (restored, replaced): other rows.
    Replaced,
}

/// The file's device and inode.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA schema_version")?
        .query_row([], |r| r.get(0))
}

impl Reader {
    /// Opens `path` read-only; fails if it does not exist or is not a
    /// fgbackup/suite database.
    pub fn open(path: &Path) -> Result<Reader, OpenError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|source| OpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let read = |source| OpenError::Read {
            path: path.to_path_buf(),
            source,
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(read)?;
        let identity = identity(path);
        let schema_version = schema_version(&conn).map_err(read)?;
        let present = super::columns(&conn, "backups").map_err(read)?;
        if present.is_empty() {
            return Err(OpenError::NoBackups {
                path: path.to_path_buf(),
            });
        }
        let select = BACKUP_COLUMNS
            .iter()
            .map(|c| {
                if present.iter().any(|p| p == c.name) {
                    c.name.to_string()
                } else {
                    format!("NULL AS {}", c.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Reader {
            select,
            has_runs: has_table(&conn, "runs").map_err(read)?,
            has_verifications: has_table(&conn, "verifications").map_err(read)?,
            has_manifest_sequence: super::columns(&conn, "manifests")
                .map_err(read)?
                .iter()
                .any(|c| c == "sequence"),
            conn,
            path: path.to_path_buf(),
            identity,
            schema_version,
        })
    }

    /// Whether this connection still reads the file at its path, with the
    /// schema it was opened with: a reader keeps its file open, so a file
    /// replaced underneath (a restore, `mv new.db inventory.db`) would be
    /// served forever, and a migration's new columns never seen (hostile
    /// review of issue 22). A stat and a pragma: cheap enough per request.
    pub fn freshness(&self) -> Freshness {
        if identity(&self.path) != self.identity {
            return Freshness::Replaced;
        }
        match schema_version(&self.conn) {
            Ok(v) if v == self.schema_version => Freshness::Current,
            _ => Freshness::Schema,
        }
    }

    /// SQLite's `data_version`: it changes whenever another connection
    /// commits, so an answer computed at one value holds while it lasts.
    pub fn data_version(&self) -> rusqlite::Result<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))
    }

    /// Up to `limit` rows matching `f`, newest first, as a JSON array, and
    /// the id of the last row (the next page's cursor) when the page is full.
    pub fn list(&self, f: &Filters, limit: u32) -> rusqlite::Result<(String, Option<i64>)> {
        let mut sql = format!("SELECT {} FROM backups WHERE 1=1", self.select);
        let mut args: Vec<SqlValue> = Vec::new();
        match f.status {
            None => {}
            Some(StatusFilter::One(s)) => {
                sql.push_str(" AND status = ?");
                args.push(SqlValue::Text(s.as_str().to_string()));
            }
            Some(StatusFilter::AnyFailure) => {
                sql.push_str(&format!(" AND {}", failed_condition()));
            }
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
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut out = String::with_capacity(512 * limit.min(100) as usize);
        out.push('[');
        let mut count = 0u32;
        let mut last_id = None;
        while let Some(row) = rows.next()? {
            if count > 0 {
                out.push(',');
            }
            write_row(&mut out, row)?;
            last_id = Some(row.get::<_, i64>(0)?);
            count += 1;
        }
        out.push(']');
        Ok((out, if count == limit { last_id } else { None }))
    }

    /// The row with this id, as a JSON object.
    pub fn by_id(&self, id: i64) -> rusqlite::Result<Option<String>> {
        let sql = format!("SELECT {} FROM backups WHERE id = ?", self.select);
        self.conn
            .prepare_cached(&sql)?
            .query_row([id], row_text)
            .optional()
    }

    /// The newest row, as a JSON object.
    pub fn last(&self) -> rusqlite::Result<Option<String>> {
        let sql = format!(
            "SELECT {} FROM backups ORDER BY id DESC LIMIT 1",
            self.select
        );
        self.conn
            .prepare_cached(&sql)?
            .query_row([], row_text)
            .optional()
    }

    /// `(object_key or filename, status)` of a row, for presigning.
    pub fn key_of(&self, id: i64) -> rusqlite::Result<Option<(String, Option<String>)>> {
        let key_col = if self.select.contains("NULL AS object_key") {
            "filename"
        } else {
            KEY
        };
        self.conn
            .prepare_cached(&format!(
                "SELECT {key_col}, status FROM backups WHERE id = ?"
            ))?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    /// Per-day counts by status and bytes archived, oldest day first.
    /// `total` counts rows (each run adds one per file it saw, so re-runs
    /// inflate it); `files` counts distinct files (object keys, or file
    /// names in a suite database without keys). `last_verify` is the verdict
    /// of the newest verify finished by the end of that day (UTC), so a
    /// dashboard shows, day by day, whether the archive was last proven.
    pub fn stats(
        &self,
        date_from: Option<&str>,
        date_to: Option<&str>,
    ) -> rusqlite::Result<Vec<Value>> {
        let uploaded = literal(Status::Uploaded.as_str());
        let skipped = literal(Status::SkippedExists.as_str());
        let (bytes, file) = self.bytes_and_file();
        let failed = failed_condition();
        let verify = if self.has_verifications {
            format!(
                "(SELECT v.status FROM verifications v
                  WHERE v.status != {} AND substr(v.finished_at, 1, 10) <= backup_date
                  ORDER BY v.id DESC LIMIT 1)",
                literal(RunStatus::Running.as_str())
            )
        } else {
            "NULL".to_string()
        };
        let sql = format!(
            "SELECT backup_date,
                    COUNT(*),
                    COALESCE(SUM(status = {uploaded}), 0),
                    COALESCE(SUM(status = {skipped}), 0),
                    COALESCE(SUM({failed}), 0),
                    {bytes},
                    COUNT(DISTINCT {file}),
                    {verify}
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
            stats_row,
        )?;
        rows.collect()
    }

    /// The SQL of `/stats`' bytes archived (of `uploaded` rows; 0 in a
    /// suite database without sizes) and of what tells files apart (the
    /// key; the file name in a suite database): one definition for the
    /// day totals and the per-device split that must add up to them.
    fn bytes_and_file(&self) -> (String, &'static str) {
        let uploaded = literal(Status::Uploaded.as_str());
        let bytes = if self.select.contains("NULL AS size_bytes") {
            "0".to_string()
        } else {
            format!("COALESCE(SUM(CASE WHEN status = {uploaded} THEN size_bytes END), 0)")
        };
        let file = if self.select.contains("NULL AS object_key") {
            "filename"
        } else {
            KEY
        };
        (bytes, file)
    }

    /// Day `day`'s rows (`YYYY-MM-DD`, UTC) by device
    /// ([`crate::scan::device_of`] the key): (device, files, bytes, failed)
    /// counted as [`Reader::stats`] counts that day, so the devices add up
    /// to its figures. One row per key is read (a day's files, not the
    /// whole inventory: the range on `uploaded_at` uses its index).
    pub fn day_by_device(&self, day: &str) -> rusqlite::Result<Vec<(String, u64, u64, u64)>> {
        let (bytes, file) = self.bytes_and_file();
        let sql = format!(
            "SELECT {file}, COALESCE(SUM({failed}), 0), {bytes} FROM backups
             WHERE uploaded_at >= ?1 AND uploaded_at < ?2 AND backup_date = ?3 GROUP BY {file}",
            failed = failed_condition()
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params![day, format!("{day}~"), day])?;
        let mut by: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let e = by.entry(crate::scan::device_of(&key)).or_default();
            e.0 += 1;
            e.1 += r.get::<_, i64>(2)?.max(0) as u64;
            e.2 += r.get::<_, i64>(1)?.max(0) as u64;
        }
        Ok(by.into_iter().map(|(d, (f, b, x))| (d, f, b, x)).collect())
    }

    /// `finished_at` of the newest run that ended `ok`, if the runs table exists.
    pub fn last_success(&self) -> rusqlite::Result<Option<String>> {
        if !self.has_runs {
            return Ok(None);
        }
        super::last_success(&self.conn)
    }

    /// The newest manifest written: the chain head an auditor compares
    /// with a copy kept elsewhere (key, sequence, SHA-256, time).
    pub fn last_manifest(&self) -> rusqlite::Result<Option<serde_json::Value>> {
        if !self.has_manifest_sequence {
            return Ok(None);
        }
        self.conn
            .prepare_cached(
                "SELECT object_key, sequence, sha256, created_at FROM manifests ORDER BY id DESC LIMIT 1",
            )?
            .query_row([], |r| {
                Ok(serde_json::json!({
                    "key": r.get::<_, String>(0)?,
                    "sequence": r.get::<_, Option<i64>>(1)?,
                    "sha256": r.get::<_, String>(2)?,
                    "created_at": r.get::<_, String>(3)?,
                }))
            })
            .optional()
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
                 FROM runs WHERE status != ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([RunStatus::Running.as_str()], |r| {
                let status = r.get::<_, String>(0)?;
                Ok(LastRun {
                    ok: RunStatus::from_column(&status) == Some(RunStatus::Ok),
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

/// The newest finished `verify`, as the API and `/metrics` show it.
#[derive(Debug, Clone)]
pub struct LastVerify {
    pub json: Value,
    pub ok: bool,
    pub finished_unix: Option<i64>,
    /// `(result, count)` for ok, missing, altered, size_mismatch, extra, errors.
    pub counts: Vec<(&'static str, i64)>,
}

impl Reader {
    /// The newest finished verify, if the table exists and has one.
    pub fn last_verification(&self) -> rusqlite::Result<Option<LastVerify>> {
        self.verification_where(
            "status != ?1 ORDER BY id DESC LIMIT 1",
            RunStatus::Running.as_str(),
        )
    }

    /// Verify `id` as [`Reader::last_verification`] gives it, finished or not.
    pub fn verification(&self, id: i64) -> rusqlite::Result<Option<Value>> {
        Ok(self.verification_where("id = ?1", id)?.map(|v| v.json))
    }

    /// Up to `limit` findings (key, result, detail) of verify `id`: what a
    /// page shows under the verdict.
    pub fn findings(&self, id: i64, limit: u32) -> rusqlite::Result<Vec<Value>> {
        if !self.has_verifications || !has_table(&self.conn, "verification_findings")? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT object_key, result, detail FROM verification_findings
             WHERE verification_id = ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(rusqlite::params![id, limit], |r| {
            Ok(
                serde_json::json!({"key": r.get::<_, String>(0)?, "result": r.get::<_, String>(1)?,
                                  "detail": r.get::<_, Option<String>>(2)?}),
            )
        })?;
        rows.collect()
    }

    /// The verify the condition `cond` (with `?1` = `arg`) selects.
    fn verification_where(
        &self,
        cond: &str,
        arg: impl rusqlite::ToSql,
    ) -> rusqlite::Result<Option<LastVerify>> {
        if !self.has_verifications {
            return Ok(None);
        }
        const COUNTS: [&str; 6] = [
            "ok",
            "missing",
            "altered",
            "size_mismatch",
            "extra",
            "errors",
        ];
        self.conn
            .prepare_cached(&format!(
                "SELECT id, started_at, finished_at, destination, scope, status, checked, read_back,
                        ok, missing, altered, size_mismatch, extra, errors, bytes_read, duration_ms,
                        exit_code, CAST(strftime('%s', finished_at) AS INTEGER)
                 FROM verifications WHERE {cond}",
            ))?
            .query_row([arg], |r| {
                let names = [
                    "id",
                    "started_at",
                    "finished_at",
                    "destination",
                    "scope",
                    "status",
                    "checked",
                    "read_back",
                    "ok",
                    "missing",
                    "altered",
                    "size_mismatch",
                    "extra",
                    "errors",
                    "bytes_read",
                    "duration_ms",
                    "exit_code",
                ];
                let mut m = Map::new();
                for (i, n) in names.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Integer(x) => Value::from(x),
                        rusqlite::types::ValueRef::Text(t) => {
                            Value::from(String::from_utf8_lossy(t).into_owned())
                        }
                        _ => Value::Null,
                    };
                    m.insert((*n).to_string(), v);
                }
                let counts = COUNTS
                    .iter()
                    .map(|c| (*c, m.get(*c).and_then(Value::as_i64).unwrap_or(0)))
                    .collect();
                Ok(LastVerify {
                    ok: m.get("status").and_then(Value::as_str) == Some(RunStatus::Ok.as_str()),
                    finished_unix: r.get(17)?,
                    counts,
                    json: Value::Object(m),
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

/// One day of `/stats`: the columns of [`Reader::stats`]'s query, named.
fn stats_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let mut m = Map::new();
    m.insert("date".into(), Value::from(r.get::<_, Option<String>>(0)?));
    for (i, name) in [
        "total",
        "uploaded",
        "skipped_exists",
        "failed",
        "bytes_uploaded",
        "files",
    ]
    .into_iter()
    .enumerate()
    {
        m.insert(name.into(), Value::from(r.get::<_, i64>(i + 1)?));
    }
    m.insert(
        "last_verify".into(),
        Value::from(r.get::<_, Option<String>>(7)?),
    );
    Ok(Value::Object(m))
}

fn row_text(r: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    let mut out = String::with_capacity(512);
    write_row(&mut out, r)?;
    Ok(out)
}

/// Appends one row as a JSON object. Written by hand rather than through a
/// `serde_json::Value` because `/backups` renders up to 1000 rows per request
/// and the intermediate maps were most of its cost.
fn write_row(out: &mut String, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
    use rusqlite::types::ValueRef;
    use std::fmt::Write as _;
    out.push('{');
    for (i, name) in BACKUP_COLUMNS.iter().map(|c| c.name).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        match r.get_ref(i)? {
            ValueRef::Null | ValueRef::Blob(_) => out.push_str("null"),
            ValueRef::Integer(n) => {
                let _ = write!(out, "{n}");
            }
            ValueRef::Real(x) if x.is_finite() => {
                let _ = write!(out, "{x}");
            }
            ValueRef::Real(_) => out.push_str("null"),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(text) => push_json_string(out, text),
                Err(_) => push_json_string(out, &String::from_utf8_lossy(t)),
            },
        }
    }
    out.push('}');
    Ok(())
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    // Runs of bytes that need no escape are copied whole: a page of 100
    // rows is ~50 KB of text, and a char at a time was a quarter of the
    // API's CPU (bench-api.sh). Every byte to escape is ASCII, so the
    // runs end on character boundaries.
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\"b\\c\nd\u{1}é");
    }
}
