//! The inventory's side of proving the archive: what it says was archived,
//! and the record of each `verify`.

use std::collections::HashSet;
use std::time::SystemTime;

use rusqlite::{params, params_from_iter};

use super::Inventory;
use crate::error::Result;
use crate::host::hostname;
use crate::timefmt;

/// An object the inventory says the archive holds, from its newest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub key: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub uploaded_at: Option<String>,
    /// When the key was first archived: the object's age, for `prune`.
    pub first_uploaded_at: Option<String>,
    /// The newest row's id (`None` for expectations from manifests).
    pub row_id: Option<i64>,
}

/// Which rows `verify` and `restore` look at.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keys starting with this.
    pub key_prefix: String,
    /// `backup_date` range, `YYYY-MM-DD`, inclusive.
    pub since: Option<String>,
    pub until: Option<String>,
}

/// A key's newest row, for `fgbackup ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub key: String,
    pub status: String,
    pub size: Option<u64>,
    pub sha256: String,
    pub uploaded_at: String,
    pub deleted_local: bool,
}

/// Totals of one verify, written to its `verifications` row.
#[derive(Debug, Clone, Default)]
pub struct VerifyTotals {
    pub status: &'static str,
    pub checked: u64,
    pub read_back: u64,
    pub ok: u64,
    pub missing: u64,
    pub altered: u64,
    pub size_mismatch: u64,
    pub extra: u64,
    pub errors: u64,
    pub bytes_read: u64,
    pub duration_ms: u64,
    pub exit_code: i32,
}

/// `COALESCE(object_key, filename)`: rows of the Python suite have no key
/// column; their key was the file name.
const KEY: &str = "COALESCE(object_key, filename)";

impl Inventory {
    /// The newest archived row of every key matching `sel`, in key order.
    /// `statuses` are the statuses whose object exists in the archive;
    /// keys removed by `prune` since their newest row are left out (a key
    /// archived again after a prune is expected again).
    pub fn archived(&self, statuses: &[&str], sel: &Selection) -> Result<Vec<Expected>> {
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT g.k, b.size_bytes, b.sha256, b.uploaded_at, g.first_at, g.last_id
             FROM (SELECT {KEY} AS k, MAX(id) AS last_id, MIN(uploaded_at) AS first_at
                   FROM backups WHERE status IN ({marks}) GROUP BY {KEY}) g
             JOIN backups b ON b.id = g.last_id
             WHERE substr(g.k, 1, length(?)) = ?
               AND b.backup_date >= ? AND b.backup_date <= ?
               AND NOT EXISTS (SELECT 1 FROM prunes p
                               WHERE p.object_key = g.k AND p.backup_id >= g.last_id)
             ORDER BY g.k"
        );
        let mut args: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
        args.push(sel.key_prefix.clone());
        args.push(sel.key_prefix.clone());
        args.push(sel.since.clone().unwrap_or_else(|| "0000-00-00".into()));
        args.push(sel.until.clone().unwrap_or_else(|| "9999-99-99".into()));
        let run = || -> rusqlite::Result<Vec<Expected>> {
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
                Ok(Expected {
                    key: r.get(0)?,
                    size: r.get::<_, Option<i64>>(1)?.map(|n| n.max(0) as u64),
                    sha256: r.get(2)?,
                    uploaded_at: r.get(3)?,
                    first_uploaded_at: r.get(4)?,
                    row_id: r.get(5)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// The newest row of every key matching `sel` (whatever its status), in
    /// key order: the current state of each file, for `fgbackup ls`.
    pub fn current(&self, sel: &Selection) -> Result<Vec<Current>> {
        let sql = format!(
            "SELECT g.k, b.status, b.size_bytes, b.sha256, b.uploaded_at, b.deleted_local
             FROM (SELECT {KEY} AS k, MAX(id) AS last_id FROM backups GROUP BY {KEY}) g
             JOIN backups b ON b.id = g.last_id
             WHERE substr(g.k, 1, length(?1)) = ?1
               AND COALESCE(b.backup_date, '') >= ?2 AND COALESCE(b.backup_date, '') <= ?3
             ORDER BY g.k"
        );
        let since = sel.since.clone().unwrap_or_default();
        let until = sel.until.clone().unwrap_or_else(|| "9999-99-99".into());
        let run = || -> rusqlite::Result<Vec<Current>> {
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map(params![sel.key_prefix, since, until], |r| {
                Ok(Current {
                    key: r.get(0)?,
                    status: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    size: r.get::<_, Option<i64>>(2)?.map(|n| n.max(0) as u64),
                    sha256: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    uploaded_at: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    deleted_local: r.get::<_, Option<i64>>(5)?.unwrap_or(0) != 0,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// When the content `sha256` was first archived at `key` since the key
    /// was last pruned: the age of the object now there, if it holds that
    /// content (a key pruned and archived again is as old as its new
    /// content, not as its first row).
    pub fn first_archived(
        &self,
        key: &str,
        sha256: &str,
        statuses: &[&str],
    ) -> Result<Option<String>> {
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT MIN(uploaded_at) FROM backups
             WHERE {KEY} = ? AND sha256 = ? AND status IN ({marks})
               AND id > COALESCE((SELECT MAX(backup_id) FROM prunes WHERE object_key = ?), 0)"
        );
        let mut args: Vec<String> = vec![key.to_string(), sha256.to_string()];
        args.extend(statuses.iter().map(|s| s.to_string()));
        args.push(key.to_string());
        self.conn
            .query_row(&sql, params_from_iter(args.iter()), |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Every key any row names, archived or pruned: a listed object outside
    /// this set is one the inventory never heard of.
    pub fn known_keys(&self) -> Result<HashSet<String>> {
        let run = || -> rusqlite::Result<HashSet<String>> {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {KEY} FROM backups UNION SELECT object_key FROM prunes"
            ))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// Records the start of a verify and returns its id.
    pub fn start_verification(&self, destination: &str, scope: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO verifications (started_at, host, destination, scope, status)
                 VALUES (?1, ?2, ?3, ?4, 'running')",
                params![
                    timefmt::iso8601(SystemTime::now()),
                    hostname(),
                    destination,
                    scope
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records one object that was not ok.
    pub fn add_finding(&self, id: i64, key: &str, result: &str, detail: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO verification_findings (verification_id, object_key, result, detail)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, key, result, detail],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes the totals of a finished verify.
    pub fn finish_verification(&self, id: i64, t: &VerifyTotals) -> Result<()> {
        let n = |v: u64| v as i64;
        self.conn
            .execute(
                "UPDATE verifications SET finished_at = ?2, status = ?3, checked = ?4, read_back = ?5,
                   ok = ?6, missing = ?7, altered = ?8, size_mismatch = ?9, extra = ?10,
                   errors = ?11, bytes_read = ?12, duration_ms = ?13, exit_code = ?14
                 WHERE id = ?1",
                params![
                    id,
                    timefmt::iso8601(SystemTime::now()),
                    t.status,
                    n(t.checked),
                    n(t.read_back),
                    n(t.ok),
                    n(t.missing),
                    n(t.altered),
                    n(t.size_mismatch),
                    n(t.extra),
                    n(t.errors),
                    n(t.bytes_read),
                    n(t.duration_ms),
                    t.exit_code
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks verifies left `running` by a crash as `interrupted`.
    pub fn close_stale_verifications(&self) -> Result<()> {
        self.conn
            .execute(
                "UPDATE verifications SET status = 'interrupted' WHERE status = 'running'",
                [],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// The newest manifest this inventory wrote.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    pub key: String,
    pub sha256: String,
    pub created_at: String,
    pub last_backup_id: i64,
}

/// One archived file or pruned object a manifest lists.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub key: String,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    /// Upload time, or for a pruned object the time it was removed.
    pub at: Option<String>,
}

impl Inventory {
    pub fn last_manifest(&self) -> Result<Option<ManifestRow>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT object_key, sha256, created_at, last_backup_id FROM manifests ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(ManifestRow {
                        key: r.get(0)?,
                        sha256: r.get(1)?,
                        created_at: r.get(2)?,
                        last_backup_id: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Rows after `after_id` with one of `statuses` and a SHA-256: the files
    /// archived since the previous manifest.
    pub fn archived_since(&self, after_id: i64, statuses: &[&str]) -> Result<Vec<Entry>> {
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT id, {KEY}, size_bytes, sha256, uploaded_at FROM backups
             WHERE id > ? AND sha256 IS NOT NULL AND status IN ({marks}) ORDER BY id"
        );
        let mut args: Vec<rusqlite::types::Value> = vec![after_id.into()];
        args.extend(
            statuses
                .iter()
                .map(|s| rusqlite::types::Value::from(s.to_string())),
        );
        self.entries(&sql, args)
    }

    /// Objects `prune` removed that no manifest has recorded yet.
    pub fn unrecorded_prunes(&self) -> Result<Vec<Entry>> {
        self.entries(
            "SELECT id, object_key, size_bytes, sha256, pruned_at FROM prunes WHERE manifest_id IS NULL ORDER BY id",
            Vec::new(),
        )
    }

    fn entries(&self, sql: &str, args: Vec<rusqlite::types::Value>) -> Result<Vec<Entry>> {
        let run = || -> rusqlite::Result<Vec<Entry>> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
                Ok(Entry {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    size: r.get(2)?,
                    sha256: r.get(3)?,
                    at: r.get(4)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// Records a written manifest and marks the prunes it lists.
    pub fn record_manifest(&self, m: &ManifestRow, files: usize, prune_ids: &[i64]) -> Result<()> {
        let run = || -> rusqlite::Result<()> {
            self.conn.execute(
                "INSERT INTO manifests (object_key, sha256, created_at, last_backup_id, files) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m.key, m.sha256, m.created_at, m.last_backup_id, files as i64],
            )?;
            let id = self.conn.last_insert_rowid();
            for p in prune_ids {
                self.conn.execute(
                    "UPDATE prunes SET manifest_id = ?1 WHERE id = ?2",
                    params![id, p],
                )?;
            }
            Ok(())
        };
        run().map_err(|e| self.err(e))
    }

    /// Records an object `prune` removed; `e.row_id` ties the removal to
    /// the rows up to it, so a later upload of the key counts again.
    pub fn record_prune(&self, e: &Expected, size: Option<u64>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO prunes (object_key, backup_id, sha256, size_bytes, pruned_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    e.key,
                    e.row_id,
                    e.sha256,
                    size.map(|s| s as i64),
                    timefmt::iso8601(SystemTime::now())
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
