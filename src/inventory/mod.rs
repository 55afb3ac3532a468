//! The SQLite inventory: the Python suite's `backups` table, our added
//! columns, and a `runs` table.
//!
//! Compatibility rule: the suite's table and index are created exactly as its
//! README shows, and everything we add is additive (new nullable columns, new
//! tables), versioned by `PRAGMA user_version`. A database the suite created
//! opens, migrates and keeps every row; Grafana queries written for it keep
//! working. One connection writes (the upload run's main thread), in WAL mode
//! with a busy timeout, so readers such as the API never see "database is locked".

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

mod content;
mod events;
mod manifests;
mod proof;
mod reader;
pub mod schema;
mod scratch;
pub mod status;
mod tokens;
mod verifications;

pub use content::{Coverage, Hit, SearchTotals};
pub use events::Marks;
pub use manifests::{Entry, ManifestRow};
pub use proof::{Archived, Current, Expectations, Expected, Selection};
pub use reader::{Filters, Freshness, Reader};
pub use scratch::Scratch;
pub use tokens::{Revoked, TokenRow};
pub use verifications::VerifyTotals;

use crate::error::{Error, Result};
use crate::host::hostname;
use crate::timefmt;
use status::{RunStatus, Status};

/// The Python suite's database location, kept so deployments need no change.
pub const DEFAULT_PATH: &str = "/var/lib/backup_fg/backup_records.db";

/// Schema version this build writes. 0 is the Python suite's schema; 1
/// added our `backups` columns and `runs`; 2 the proof tables; 3 indexes
/// by key and each manifest's sequence number; 4 the content index; 5
/// upload tokens.
pub const SCHEMA_VERSION: i64 = 5;

const RUNS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  host TEXT,
  source_dir TEXT,
  destination TEXT,
  status TEXT NOT NULL,          -- running | ok | failed | interrupted
  files_seen INTEGER DEFAULT 0,
  uploaded INTEGER DEFAULT 0,
  skipped INTEGER DEFAULT 0,
  failed INTEGER DEFAULT 0,
  deleted INTEGER DEFAULT 0,
  bytes_uploaded INTEGER DEFAULT 0,
  duration_ms INTEGER,
  exit_code INTEGER
);
CREATE INDEX IF NOT EXISTS idx_backups_status ON backups(status);
CREATE INDEX IF NOT EXISTS idx_backups_run_id ON backups(run_id);
";

/// Version 2: what proves the archive. `verifications` has one row per
/// `fgbackup verify`, `verification_findings` one per object that was not
/// ok; `manifests` the signed manifests written (the chain's local copy);
/// `prunes` each object `fgbackup prune` removed, until a manifest records it.
const PROOF_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS verifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  host TEXT,
  destination TEXT,
  scope TEXT,
  status TEXT NOT NULL,          -- running | ok | failed | interrupted
  checked INTEGER DEFAULT 0,
  read_back INTEGER DEFAULT 0,
  ok INTEGER DEFAULT 0,
  missing INTEGER DEFAULT 0,
  altered INTEGER DEFAULT 0,
  size_mismatch INTEGER DEFAULT 0,
  extra INTEGER DEFAULT 0,
  errors INTEGER DEFAULT 0,
  bytes_read INTEGER DEFAULT 0,
  duration_ms INTEGER,
  exit_code INTEGER
);
CREATE TABLE IF NOT EXISTS verification_findings (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  verification_id INTEGER NOT NULL,
  object_key TEXT NOT NULL,
  result TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS idx_findings_verification ON verification_findings(verification_id);
CREATE TABLE IF NOT EXISTS manifests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  object_key TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_backup_id INTEGER NOT NULL,
  files INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS prunes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  object_key TEXT NOT NULL,
  backup_id INTEGER,             -- the newest backups row of the key when pruned
  sha256 TEXT,
  size_bytes INTEGER,
  pruned_at TEXT NOT NULL,
  manifest_id INTEGER
);
";

/// A row's object key, as every query writes it (and as the key index is
/// built, so SQLite uses it): rows of the Python suite have no key column;
/// their key was the file name.
const KEY: &str = "COALESCE(object_key, filename)";

/// Version 3: an index on each row's key, for the questions asked once per
/// object at a site's scale (500k rows): which rows an object in the store
/// belongs to (`prune`), whether a listed key is known at all (`verify`).
/// The expression is the one every query writes ([`KEY`]), so SQLite uses it.
const V3_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS idx_backups_key ON backups(COALESCE(object_key, filename));
CREATE INDEX IF NOT EXISTS idx_prunes_key ON prunes(object_key);
";

/// One file's row, as the upload pipeline reports it.
#[derive(Debug, Clone)]
pub struct BackupRow {
    pub filename: String,
    pub s3_url: Option<String>,
    pub sha256: Option<String>,
    pub uploaded_at: SystemTime,
    pub status: String,
    pub object_key: String,
    pub source_path: String,
    pub size_bytes: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
}

/// Totals of one run, written to its `runs` row at the end.
#[derive(Debug, Clone)]
pub struct RunTotals {
    pub files_seen: u64,
    pub uploaded: u64,
    pub skipped: u64,
    pub failed: u64,
    pub deleted: u64,
    pub bytes_uploaded: u64,
    pub duration_ms: u64,
    pub exit_code: i32,
    pub status: RunStatus,
}

/// Creates the directory of the default database location when missing.
/// Only that one: a mistyped `--db` must fail, not start a second, empty
/// inventory somewhere new.
pub fn create_default_dir(path: &Path) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    if path != Path::new(DEFAULT_PATH) {
        return Err(Error::usage(format!(
            "--db/DB_PATH {}: directory {} does not exist: correct the path or create the directory first",
            path.display(),
            parent.display()
        )));
    }
    std::fs::create_dir_all(parent).map_err(|e| {
        Error::runtime(format!(
            "cannot create the database directory {} ({e}): create it or pass --db/DB_PATH elsewhere",
            parent.display()
        ))
    })
}

/// A read-write handle on the inventory.
pub struct Inventory {
    conn: Connection,
    path: PathBuf,
}

impl Inventory {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Inventory> {
        create_default_dir(path)?;
        let conn = Connection::open(path).map_err(|e| {
            Error::runtime(format!(
                "cannot open database {} ({e}): check the path and permissions, or pass --db/DB_PATH",
                path.display()
            ))
        })?;
        let context = |e: rusqlite::Error| {
            Error::runtime(format!("database {} (--db/DB_PATH): {e}", path.display()))
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(context)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(context)?;
        // FULL: a row must be on disk before the file it describes is deleted,
        // even across a power cut (NORMAL may roll back the last commits).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(context)?;
        let mut inv = Inventory {
            conn,
            path: path.to_path_buf(),
        };
        inv.migrate().map_err(context)?;
        Ok(inv)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Brings any older schema (including the suite's, version 0) to
    /// [`SCHEMA_VERSION`] in one transaction.
    fn migrate(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            tx.execute_batch(&schema::suite_ddl())?;
            let existing = columns(&tx, "backups")?;
            for c in schema::added_columns() {
                if !existing.iter().any(|e| e == c.name) {
                    tx.execute_batch(&format!(
                        "ALTER TABLE backups ADD COLUMN {} {}",
                        c.name, c.ddl
                    ))?;
                }
            }
            tx.execute_batch(RUNS_SCHEMA)?;
            tx.execute_batch(PROOF_SCHEMA)?;
            let manifest_columns = columns(&tx, "manifests")?;
            if !manifest_columns.iter().any(|c| c == "sequence") {
                tx.execute_batch("ALTER TABLE manifests ADD COLUMN sequence INTEGER")?;
            }
            tx.execute_batch(V3_SCHEMA)?;
            tx.execute_batch(content::CONTENT_SCHEMA)?;
            tx.execute_batch(tokens::TOKENS_SCHEMA)?;
            if version < 4 {
                let statuses: Vec<String> = Status::archived_names()
                    .iter()
                    .map(|s| format!("'{s}'"))
                    .collect();
                tx.execute_batch(&content::SEED_PENDING.replace("STATUSES", &statuses.join(",")))?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()
    }
}

/// The column names of `table`.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    stmt.query_map([table], |r| r.get::<_, String>(0))?
        .collect()
}

impl Inventory {
    /// Marks runs left `running` by a crash or kill as `interrupted`. Safe
    /// because the run lock guarantees no other run is alive.
    pub fn close_stale_runs(&self) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?1, exit_code = NULL WHERE status = ?2",
                [RunStatus::Interrupted.as_str(), RunStatus::Running.as_str()],
            )
            .map_err(|e| self.err(e))
    }

    /// Records the start of a run and returns its id.
    pub fn start_run(
        &self,
        started: SystemTime,
        source_dir: &str,
        destination: &str,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, host, source_dir, destination, status) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                timefmt::iso8601(started),
                hostname(),
                source_dir,
                destination,
                RunStatus::Running.as_str()
            ],
        ).map_err(|e| self.err(e))?;
        crate::changes::announce();
        Ok(self.conn.last_insert_rowid())
    }

    /// Writes the totals of a finished run.
    pub fn finish_run(&self, run_id: i64, finished: SystemTime, t: &RunTotals) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET finished_at = ?2, status = ?3, files_seen = ?4, uploaded = ?5, skipped = ?6,
               failed = ?7, deleted = ?8, bytes_uploaded = ?9, duration_ms = ?10, exit_code = ?11
             WHERE id = ?1",
            params![
                run_id,
                timefmt::iso8601(finished),
                t.status.as_str(),
                t.files_seen as i64,
                t.uploaded as i64,
                t.skipped as i64,
                t.failed as i64,
                t.deleted as i64,
                t.bytes_uploaded as i64,
                t.duration_ms as i64,
                t.exit_code,
            ],
        ).map_err(|e| self.err(e))?;
        crate::changes::announce();
        Ok(())
    }

    /// Opens a transaction: the rows of many files are then made durable
    /// by one [`Inventory::commit`] (one fsync) instead of one each.
    pub fn begin(&self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))
    }

    /// Commits the transaction [`Inventory::begin`] opened.
    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
        crate::changes::announce();
        Ok(())
    }

    /// Inserts one file's row (with `deleted_local = 0`) and returns its id.
    /// `run_id` is `None` for rows no upload run wrote (`reindex`).
    pub fn insert_backup(&self, run_id: Option<i64>, row: &BackupRow) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO backups (filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status,
                                  object_key, source_path, size_bytes, duration_ms, error, run_id)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                row.filename,
                row.s3_url,
                row.sha256,
                timefmt::iso8601(row.uploaded_at),
                timefmt::date(row.uploaded_at),
                row.status,
                row.object_key,
                row.source_path,
                row.size_bytes as i64,
                row.duration_ms as i64,
                row.error,
                run_id,
            ],
        ).map_err(|e| self.err(e))?;
        let id = self.conn.last_insert_rowid();
        if Status::archived_names().contains(&row.status.as_str()) {
            content::archived(&self.conn, &row.object_key, row.sha256.as_deref())
                .map_err(|e| self.err(e))?;
        }
        Ok(id)
    }

    /// Records that the local file of row `id` was deleted.
    pub fn mark_deleted(&self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE backups SET deleted_local = 1 WHERE id = ?1", [id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Appends a note to the row's error text (e.g. a failed local delete).
    pub fn append_error(&self, id: i64, note: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE backups SET error = CASE WHEN error IS NULL OR error = '' THEN ?2 ELSE error || '; ' || ?2 END WHERE id = ?1",
            params![id, note],
        ).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The newest `limit` rows, newest first, for `fgbackup inventory`.
    pub fn recent(&self, limit: u32) -> Result<Vec<InventoryLine>> {
        self.recent_rows(limit).map_err(|e| self.err(e))
    }

    fn recent_rows(&self, limit: u32) -> rusqlite::Result<Vec<InventoryLine>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, status, sha256, uploaded_at, deleted_local, {KEY}, size_bytes, error
             FROM backups ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], |r| {
            Ok(InventoryLine {
                id: r.get(0)?,
                status: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                sha256: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                uploaded_at: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                deleted_local: r.get::<_, Option<i64>>(4)?.unwrap_or(0) != 0,
                object_key: r.get(5)?,
                size_bytes: r.get(6)?,
                error: r.get(7)?,
            })
        })?;
        rows.collect()
    }

    /// The newest row's suite fields (and key, size, error) as `name: value`
    /// pairs, for notifications.
    pub fn latest_fields(&self) -> Result<Option<Vec<(String, String)>>> {
        let fields: Vec<&str> = schema::BACKUP_COLUMNS
            .iter()
            .filter(|c| c.notify)
            .map(|c| c.name)
            .collect();
        let sql = format!(
            "SELECT {} FROM backups ORDER BY id DESC LIMIT 1",
            fields.join(", ")
        );
        self.conn
            .query_row(&sql, [], |r| {
                let mut out = Vec::new();
                for (i, name) in fields.iter().enumerate() {
                    let text = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => continue,
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Real(x) => x.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(_) => continue,
                    };
                    out.push(((*name).to_string(), text));
                }
                Ok(out)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// `finished_at` (Unix seconds) of the newest run that ended `ok`.
    pub fn last_success_unix(&self) -> Result<Option<i64>> {
        let text = last_success(&self.conn).map_err(|e| self.err(e))?;
        Ok(text.and_then(|t| timefmt::parse_iso8601(&t)))
    }

    /// The last run, if any.
    pub fn last_run(&self) -> Result<Option<RunInfo>> {
        self.conn
            .query_row(
                "SELECT id, status, started_at, finished_at FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(RunInfo {
                        id: r.get(0)?,
                        status: r.get(1)?,
                        started_at: r.get(2)?,
                        finished_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a row's status and appends `note` to its error text: a file
    /// that turned out not to be deletable after its row was committed.
    pub fn set_status(&self, id: i64, status: Status, note: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE backups SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )
            .map_err(|e| self.err(e))?;
        self.append_error(id, note)
    }

    /// A database error that names the database, so the user knows which
    /// file (and which setting, `--db`/`DB_PATH`) it is about.
    fn err(&self, e: rusqlite::Error) -> Error {
        Error::runtime(format!(
            "database {} (--db/DB_PATH): {e}",
            self.path.display()
        ))
    }
}

/// `finished_at` of the newest run that ended `ok`: the one query behind
/// the notifications' last success and the API's `/health` and `/metrics`.
fn last_success(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT finished_at FROM runs WHERE status = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([RunStatus::Ok.as_str()], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

/// Start, end and outcome of one run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub id: i64,
    /// As stored: printed as found, so a value this version does not know
    /// (a newer fgbackup's) still shows instead of failing the read.
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// One row as `fgbackup inventory` prints it.
#[derive(Debug, Clone)]
pub struct InventoryLine {
    pub id: i64,
    pub status: String,
    pub sha256: String,
    pub uploaded_at: String,
    pub deleted_local: bool,
    pub object_key: String,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables' comments list the run statuses for whoever reads the
    /// schema with `sqlite3`; they must list exactly [`RunStatus::ALL`].
    #[test]
    fn schema_comments_name_every_run_status() {
        let names: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        let comment = format!("-- {}", names.join(" | "));
        assert!(RUNS_SCHEMA.contains(&comment), "{comment}");
        assert!(PROOF_SCHEMA.contains(&comment), "{comment}");
    }

    /// The key index is built on the very expression the queries write,
    /// or SQLite would not use it and every page would scan the table.
    #[test]
    fn the_key_index_is_on_the_queries_key() {
        assert!(V3_SCHEMA.contains(&format!("idx_backups_key ON backups({KEY});")));
    }
}
