//! The manifest chain's local copy (`manifests`) and what `prune` removed
//! (`prunes`): the rows a manifest is written from, and its record once
//! it is.

use std::time::SystemTime;

use rusqlite::{params, params_from_iter};

use super::proof::Expected;
use super::{Inventory, KEY};
use crate::error::Result;
use crate::timefmt;

fn manifest_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ManifestRow> {
    Ok(ManifestRow {
        key: r.get(0)?,
        sha256: r.get(1)?,
        created_at: r.get(2)?,
        last_backup_id: r.get(3)?,
        sequence: r.get(4)?,
    })
}

/// A manifest this inventory wrote (or adopted from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub key: String,
    pub sha256: String,
    pub created_at: String,
    /// The last `backups` row it lists: the next manifest lists rows after it.
    pub last_backup_id: i64,
    /// Its place in its chain (1, 2...); `None` for manifests of format 1,
    /// which had none.
    pub sequence: Option<i64>,
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

/// `COL >= ?a AND substr(COL, 1, length(?a)) = ?a`: `COL` starts with the
/// prefix bound to every `?a` (the first part lets SQLite start at the
/// prefix along an index). Not `LIKE`, which ignores ASCII case (`site/`
/// and `SITE/` are two prefixes), nor a computed upper bound, which a key
/// with the highest characters after the prefix would pass.
fn in_prefix(col: &str, a: &str) -> String {
    format!("{col} >= {a} AND substr({col}, 1, length({a})) = {a}")
}

impl Inventory {
    /// Every manifest this inventory wrote under `dir`, oldest first: what
    /// `verify --manifests` compares the store with (a manifest gone, or
    /// replaced by an older one, is a rollback). A chain has one per run.
    pub fn manifests_under(&self, dir: &str) -> Result<Vec<ManifestRow>> {
        let run = || -> rusqlite::Result<Vec<ManifestRow>> {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT object_key, sha256, created_at, last_backup_id, sequence FROM manifests
                 WHERE {} ORDER BY id",
                in_prefix("object_key", "?1")
            ))?;
            let rows = stmt.query_map(params![dir], manifest_row)?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// Up to `limit` rows after `after_id` under `key_prefix` with one of
    /// `statuses` and a SHA-256, oldest first: the files archived since the
    /// previous manifest, one manifest's worth at a time.
    pub fn archived_since(
        &self,
        after_id: i64,
        statuses: &[&str],
        key_prefix: &str,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT id, {KEY}, size_bytes, sha256, uploaded_at FROM backups
             WHERE id > ? AND sha256 IS NOT NULL AND status IN ({marks})
               AND {range}
             ORDER BY id LIMIT ?",
            range = in_prefix(KEY, "?")
        );
        let mut args: Vec<rusqlite::types::Value> = vec![after_id.into()];
        args.extend(
            statuses
                .iter()
                .map(|s| rusqlite::types::Value::from(s.to_string())),
        );
        // `in_prefix` with an anonymous parameter: the prefix three times.
        for _ in 0..3 {
            args.push(key_prefix.to_string().into());
        }
        args.push((limit as i64).into());
        self.entries(&sql, args)
    }

    /// Up to `limit` objects under `key_prefix` that `prune` removed and no
    /// manifest has recorded yet.
    pub fn unrecorded_prunes(&self, key_prefix: &str, limit: usize) -> Result<Vec<Entry>> {
        let sql = format!(
            "SELECT id, object_key, size_bytes, sha256, pruned_at FROM prunes
             WHERE manifest_id IS NULL AND {} ORDER BY id LIMIT ?2",
            in_prefix("object_key", "?1")
        );
        self.entries(
            &sql,
            vec![key_prefix.to_string().into(), (limit as i64).into()],
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

    /// Records a written (or adopted) manifest and marks the prunes it
    /// lists, in one transaction unless one is open.
    pub fn record_manifest(&self, m: &ManifestRow, files: usize, prune_ids: &[i64]) -> Result<()> {
        let own = self.conn.is_autocommit();
        let run = || -> rusqlite::Result<()> {
            if own {
                self.conn.execute_batch("BEGIN IMMEDIATE")?;
            }
            self.conn.execute(
                "INSERT INTO manifests (object_key, sha256, created_at, last_backup_id, files, sequence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![m.key, m.sha256, m.created_at, m.last_backup_id, files as i64, m.sequence],
            )?;
            let id = self.conn.last_insert_rowid();
            for p in prune_ids {
                self.conn.execute(
                    "UPDATE prunes SET manifest_id = ?1 WHERE id = ?2",
                    params![id, p],
                )?;
            }
            if own {
                self.conn.execute_batch("COMMIT")?;
            }
            Ok(())
        };
        run().map_err(|e| {
            if own && !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.err(e)
        })
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
        super::content::pruned(&self.conn, &e.key).map_err(|e| self.err(e))
    }
}
