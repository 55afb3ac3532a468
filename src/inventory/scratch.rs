//! A private scratch database for one command's sorted sets: what the
//! manifest chain records, walked by `verify --manifests`. A chain of a
//! year at a busy site names 350,000 objects; in memory they would cost
//! hundreds of megabytes on a collector with one gigabyte. SQLite keeps them
//! on disk in a temporary file (removed when the command ends), sorted by
//! key for the merge with the listing, with a page cache of a few MiB.

use rusqlite::{Connection, OptionalExtension, params};

use super::proof::{Expectations, Expected};
use crate::error::{Error, Result};

/// Page cache of the scratch database, KiB (`cache_size` negative = KiB).
const CACHE_KIB: i64 = 4096;

pub struct Scratch {
    conn: Connection,
}

impl Scratch {
    /// An empty scratch database in a temporary file.
    pub fn new() -> Result<Scratch> {
        let setup = || -> rusqlite::Result<Connection> {
            // An empty name: SQLite's private temporary on-disk database.
            let conn = Connection::open("")?;
            conn.execute_batch(&format!(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -{CACHE_KIB};
                 CREATE TABLE expected (key TEXT PRIMARY KEY, size INTEGER, sha256 TEXT, uploaded_at TEXT) WITHOUT ROWID;
                 CREATE TABLE known (key TEXT PRIMARY KEY) WITHOUT ROWID;
                 CREATE TABLE masked (key TEXT PRIMARY KEY) WITHOUT ROWID;
                 BEGIN;"
            ))?;
            Ok(conn)
        };
        setup()
            .map(|conn| Scratch { conn })
            .map_err(|e| Error::runtime(format!("cannot create a scratch database: {e}")))
    }

    /// Ends the batch of writes the walk made (one transaction: no fsync
    /// per record); the reads of the merge follow.
    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(Self::err)
    }

    fn err(e: rusqlite::Error) -> Error {
        Error::runtime(format!("scratch database: {e}"))
    }

    /// A key some record names (listed, pruned): not an extra.
    pub fn know(&self, key: &str) -> Result<()> {
        self.run("INSERT OR IGNORE INTO known (key) VALUES (?1)", key)
    }

    /// A key pruned by a newer record: older records of it expect nothing.
    pub fn mask(&self, key: &str) -> Result<()> {
        self.know(key)?;
        self.run("INSERT OR IGNORE INTO masked (key) VALUES (?1)", key)
    }

    /// An object a record expects, unless a newer record already spoke of
    /// its key (the walk goes newest first: a key's first record wins).
    pub fn expect(&self, e: &Expected) -> Result<()> {
        self.know(&e.key)?;
        let masked: Option<i64> = self
            .conn
            .prepare_cached("SELECT 1 FROM masked WHERE key = ?1")
            .and_then(|mut s| s.query_row([&e.key], |r| r.get(0)).optional())
            .map_err(Self::err)?;
        if masked.is_some() {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO expected (key, size, sha256, uploaded_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.key,
                    e.size.map(|n| n as i64),
                    e.sha256,
                    e.uploaded_at
                ])
            })
            .map(drop)
            .map_err(Self::err)
    }

    fn run(&self, sql: &str, key: &str) -> Result<()> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute([key]))
            .map(drop)
            .map_err(Self::err)
    }
}

impl Expectations for Scratch {
    fn totals(&self) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM expected",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
            .map_err(Self::err)
    }

    fn page(&self, after: &str, limit: usize) -> Result<(Vec<Expected>, Option<String>)> {
        let run = || -> rusqlite::Result<Vec<Expected>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT key, size, sha256, uploaded_at FROM expected WHERE key > ?1 ORDER BY key LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], |r| {
                Ok(Expected {
                    key: r.get(0)?,
                    size: r.get::<_, Option<i64>>(1)?.map(|n| n.max(0) as u64),
                    sha256: r.get(2)?,
                    uploaded_at: r.get(3)?,
                    first_uploaded_at: None,
                    row_id: None,
                })
            })?;
            rows.collect()
        };
        let rows: Vec<Expected> = run().map_err(Self::err)?;
        let next = rows
            .last()
            .filter(|_| rows.len() == limit)
            .map(|e| e.key.clone());
        Ok((rows, next))
    }

    fn is_known(&self, key: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM known WHERE key = ?1)")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)))
            .map_err(Self::err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, sha: &str) -> Expected {
        Expected {
            key: key.into(),
            size: Some(3),
            sha256: Some(sha.into()),
            uploaded_at: None,
            first_uploaded_at: None,
            row_id: None,
        }
    }

    #[test]
    fn the_newest_record_of_a_key_wins_and_pages_come_in_key_order() {
        let s = Scratch::new().unwrap();
        s.expect(&e("b", "new")).unwrap();
        s.expect(&e("b", "old")).unwrap();
        s.mask("c").unwrap();
        s.expect(&e("c", "before the prune")).unwrap();
        s.expect(&e("a", "x")).unwrap();
        assert_eq!(s.totals().unwrap(), (2, 6));
        let keys: Vec<(String, Option<String>)> = s
            .page("", 10)
            .unwrap()
            .0
            .into_iter()
            .map(|e| (e.key, e.sha256))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("a".into(), Some("x".into())),
                ("b".into(), Some("new".into()))
            ]
        );
        assert_eq!(s.page("a", 1).unwrap().0[0].key, "b");
        assert_eq!(s.page("a", 1).unwrap().1.as_deref(), Some("b"));
        assert_eq!(s.page("b", 1).unwrap(), (vec![], None));
        assert!(s.is_known("c").unwrap() && !s.is_known("d").unwrap());
    }
}
