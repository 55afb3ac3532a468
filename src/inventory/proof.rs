//! The inventory's side of proving the archive: what it says was archived,
//! as the expectations `verify`, `restore` and `prune` check the store
//! against. The record of each verify is in `verifications`, the manifest
//! chain's in `manifests`.

use rusqlite::{params, params_from_iter};

use super::{Inventory, KEY};
use crate::error::Result;

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

/// What a verify checks the archive against, read in key order a page at
/// a time: the inventory's newest archived rows ([`Archived`]), or what the
/// manifest chain records ([`super::Scratch`], on disk, not in memory).
pub trait Expectations {
    /// How many objects are expected, and their bytes.
    fn totals(&self) -> Result<(u64, u64)>;
    /// The expected objects among the next `limit` keys after `after`, in
    /// key order, and the key to go on after (`None`: nothing is left). A
    /// page may hold fewer objects than keys looked at (keys with no
    /// archived row), even none.
    fn page(&self, after: &str, limit: usize) -> Result<(Vec<Expected>, Option<String>)>;
    /// Whether any record names `key` (archived or pruned): a listed object
    /// that is neither expected nor known is an extra.
    fn is_known(&self, key: &str) -> Result<bool>;
}

/// The inventory's archived objects in a selection, as [`Expectations`]:
/// the newest archived row of each key, keys pruned since left out.
#[derive(Clone)]
pub struct Archived<'a> {
    pub inv: &'a Inventory,
    pub statuses: Vec<&'static str>,
    pub selection: Selection,
}

impl Expectations for Archived<'_> {
    fn totals(&self) -> Result<(u64, u64)> {
        self.inv.archived_totals(&self.statuses, &self.selection)
    }
    fn page(&self, after: &str, limit: usize) -> Result<(Vec<Expected>, Option<String>)> {
        self.inv
            .archived_page(&self.statuses, &self.selection, after, limit)
    }
    fn is_known(&self, key: &str) -> Result<bool> {
        self.inv.is_known(key)
    }
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

fn expected_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Expected> {
    Ok(Expected {
        key: r.get(0)?,
        size: r.get::<_, Option<i64>>(1)?.map(|n| n.max(0) as u64),
        sha256: r.get(2)?,
        uploaded_at: r.get(3)?,
        first_uploaded_at: r.get(4)?,
        row_id: r.get(5)?,
    })
}

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
            let rows = stmt.query_map(params_from_iter(args.iter()), expected_row)?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// [`Inventory::archived`], one page at a time: the next `limit` keys
    /// after `after` (within the selection's prefix) are read along the key
    /// index, then the rows of just that key range are grouped, so each page
    /// costs the same at any inventory size (a grouped query with a LIMIT
    /// would group the whole table for every page). Returns the objects and
    /// the last key looked at, to go on after.
    pub fn archived_page(
        &self,
        statuses: &[&str],
        sel: &Selection,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<Expected>, Option<String>)> {
        let prefix = sel.key_prefix.as_str();
        let keys = self.keys_after(prefix, after, limit)?;
        let past_prefix = keys.iter().any(|k| !k.starts_with(prefix));
        let Some(last) = keys.iter().rev().find(|k| k.starts_with(prefix)).cloned() else {
            return Ok((Vec::new(), None));
        };
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT g.k, b.size_bytes, b.sha256, b.uploaded_at, g.first_at, g.last_id
             FROM (SELECT {KEY} AS k, MAX(id) AS last_id, MIN(uploaded_at) AS first_at
                   FROM backups INDEXED BY idx_backups_key
                   WHERE {KEY} > ? AND {KEY} <= ? AND status IN ({marks})
                   GROUP BY {KEY}) g
             JOIN backups b ON b.id = g.last_id
             WHERE substr(g.k, 1, length(?)) = ?
               AND b.backup_date >= ? AND b.backup_date <= ?
               AND NOT EXISTS (SELECT 1 FROM prunes p
                               WHERE p.object_key = g.k AND p.backup_id >= g.last_id)
             ORDER BY g.k"
        );
        let mut args: Vec<rusqlite::types::Value> =
            vec![after.to_string().into(), last.clone().into()];
        args.extend(
            statuses
                .iter()
                .map(|s| rusqlite::types::Value::from(s.to_string())),
        );
        args.push(sel.key_prefix.clone().into());
        args.push(sel.key_prefix.clone().into());
        args.push(
            sel.since
                .clone()
                .unwrap_or_else(|| "0000-00-00".into())
                .into(),
        );
        args.push(
            sel.until
                .clone()
                .unwrap_or_else(|| "9999-99-99".into())
                .into(),
        );
        let run = || -> rusqlite::Result<Vec<Expected>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), expected_row)?;
            rows.collect()
        };
        let rows = run().map_err(|e| self.err(e))?;
        Ok((rows, (!past_prefix).then_some(last)))
    }

    /// Up to `limit` distinct keys after `after`, from `prefix` on, read
    /// along the key index. The keys under the prefix are one run of the
    /// index from the prefix on: the page ends at the first key past it (no
    /// computed upper bound: a key may hold any character after the prefix).
    fn keys_after(&self, prefix: &str, after: &str, limit: usize) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT {KEY} FROM backups INDEXED BY idx_backups_key
             WHERE {KEY} > ?1 AND {KEY} >= ?2
             ORDER BY {KEY} LIMIT ?3"
        );
        let run = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after, prefix, limit as i64], |r| r.get(0))?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// [`Inventory::archived`] for one key: its newest archived row in the
    /// selection, if it has one.
    pub fn archived_key(
        &self,
        statuses: &[&str],
        sel: &Selection,
        key: &str,
    ) -> Result<Option<Expected>> {
        use rusqlite::OptionalExtension;
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT g.k, b.size_bytes, b.sha256, b.uploaded_at, g.first_at, g.last_id
             FROM (SELECT {KEY} AS k, MAX(id) AS last_id, MIN(uploaded_at) AS first_at
                   FROM backups WHERE {KEY} = ? AND status IN ({marks})) g
             JOIN backups b ON b.id = g.last_id
             WHERE substr(g.k, 1, length(?)) = ?
               AND b.backup_date >= ? AND b.backup_date <= ?
               AND NOT EXISTS (SELECT 1 FROM prunes p
                               WHERE p.object_key = g.k AND p.backup_id >= g.last_id)"
        );
        let mut args: Vec<String> = vec![key.to_string()];
        args.extend(statuses.iter().map(|s| s.to_string()));
        args.push(sel.key_prefix.clone());
        args.push(sel.key_prefix.clone());
        args.push(sel.since.clone().unwrap_or_else(|| "0000-00-00".into()));
        args.push(sel.until.clone().unwrap_or_else(|| "9999-99-99".into()));
        self.conn
            .query_row(&sql, params_from_iter(args.iter()), expected_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// How many objects [`Inventory::archived`] would give, and their bytes.
    pub fn archived_totals(&self, statuses: &[&str], sel: &Selection) -> Result<(u64, u64)> {
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(b.size_bytes), 0)
             FROM (SELECT {KEY} AS k, MAX(id) AS last_id
                   FROM backups WHERE status IN ({marks}) GROUP BY {KEY}) g
             JOIN backups b ON b.id = g.last_id
             WHERE substr(g.k, 1, length(?)) = ?
               AND b.backup_date >= ? AND b.backup_date <= ?
               AND NOT EXISTS (SELECT 1 FROM prunes p
                               WHERE p.object_key = g.k AND p.backup_id >= g.last_id)"
        );
        let mut args: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
        args.push(sel.key_prefix.clone());
        args.push(sel.key_prefix.clone());
        args.push(sel.since.clone().unwrap_or_else(|| "0000-00-00".into()));
        args.push(sel.until.clone().unwrap_or_else(|| "9999-99-99".into()));
        self.conn
            .query_row(&sql, params_from_iter(args.iter()), |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get::<_, i64>(1)?.max(0) as u64,
                ))
            })
            .map_err(|e| self.err(e))
    }

    /// Whether any row (archived or not) or prune names `key`.
    pub fn is_known(&self, key: &str) -> Result<bool> {
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM backups WHERE {KEY} = ?1)
                 OR EXISTS(SELECT 1 FROM prunes WHERE object_key = ?1)"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([key], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// The newest row of every key matching `sel` (whatever its status), in
    /// key order: the current state of each file, for `fgbackup ls`. Rows
    /// are handed to `each` as SQLite reads them along the key index, never
    /// collected: `ls` of 500k rows holds one. `each` returns false to stop.
    pub fn each_current(
        &self,
        sel: &Selection,
        each: &mut dyn FnMut(Current) -> bool,
    ) -> Result<()> {
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
        let mut run = || -> rusqlite::Result<()> {
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
            for row in rows {
                if !each(row?) {
                    break;
                }
            }
            Ok(())
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

    /// Whether `key` has a row with one of `statuses` that no prune
    /// removed since: an object `reindex` leaves alone.
    pub fn is_archived(&self, key: &str, statuses: &[&str]) -> Result<bool> {
        let marks = vec!["?"; statuses.len()].join(",");
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM backups b WHERE {KEY} = ? AND status IN ({marks})
               AND NOT EXISTS (SELECT 1 FROM prunes p WHERE p.object_key = ? AND p.backup_id >= b.id))"
        );
        let mut args: Vec<&str> = vec![key];
        args.extend_from_slice(statuses);
        args.push(key);
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(params_from_iter(args.iter()), |r| r.get(0)))
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::inventory::BackupRow;

    fn row(key: &str, status: &str) -> BackupRow {
        BackupRow {
            filename: key.rsplit('/').next().unwrap_or(key).into(),
            s3_url: None,
            sha256: Some("ab".repeat(32)),
            uploaded_at: SystemTime::now(),
            status: status.into(),
            object_key: key.into(),
            source_path: String::new(),
            size_bytes: 1,
            duration_ms: 0,
            error: None,
        }
    }

    /// Pages walk every key once in order, skip keys with no archived row
    /// (a page may come back empty and still go on), and keep to the prefix.
    #[test]
    fn pages_walk_the_key_index_within_the_prefix() {
        let d = tempfile::tempdir().unwrap();
        let inv = Inventory::open(&d.path().join("i.db")).unwrap();
        for k in ["a/1", "a/2", "a/3", "a/4", "a/\u{10FFFF}.gz", "a0", "b/1"] {
            inv.insert_backup(None, &row(k, "uploaded")).unwrap();
        }
        for k in ["a/2", "a/3"] {
            inv.insert_backup(None, &row(k, "skipped_exists")).unwrap();
        }
        inv.insert_backup(None, &row("a/25", "failed_upload"))
            .unwrap();
        inv.insert_backup(None, &row("a/26", "failed_upload"))
            .unwrap();
        let statuses = crate::inventory::status::Status::archived_names();
        let walk = |prefix: &str, limit: usize| {
            let sel = Selection {
                key_prefix: prefix.into(),
                ..Selection::default()
            };
            let (mut after, mut got, mut pages) = (String::new(), Vec::new(), 0);
            loop {
                let (rows, next) = inv.archived_page(&statuses, &sel, &after, limit).unwrap();
                pages += 1;
                got.extend(rows.into_iter().map(|e| e.key));
                match next {
                    Some(k) => after = k,
                    None => break,
                }
            }
            (got, pages)
        };
        let (keys, pages) = walk("a/", 2);
        assert_eq!(keys, ["a/1", "a/2", "a/3", "a/4", "a/\u{10FFFF}.gz"]);
        assert_eq!(
            pages, 4,
            "7 keys under a/ in pages of 2; the last page runs past a/"
        );
        assert_eq!(
            walk("", 100).0,
            ["a/1", "a/2", "a/3", "a/4", "a/\u{10FFFF}.gz", "a0", "b/1"]
        );
        let sel = Selection::default();
        assert_eq!(inv.archived_totals(&statuses, &sel).unwrap(), (7, 7));
    }
}
