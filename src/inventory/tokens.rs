//! Upload tokens' rows (`push_tokens`, schema 5): what each was issued
//! for (a copy of its signed claims, for `token list`), whether it is
//! revoked, and what it has used. The token itself is never stored: its
//! MAC is the secret, and the key file can make it again only from
//! the claims, which is what the key is for.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::Inventory;
use crate::error::Result;
use crate::timefmt;

pub(super) const TOKENS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS push_tokens (
  id TEXT PRIMARY KEY,
  prefix TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_unix INTEGER NOT NULL,
  max_bytes INTEGER,
  max_files INTEGER,
  max_attempts INTEGER,
  any_name INTEGER NOT NULL DEFAULT 0,
  note TEXT,
  revoked_at TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  files INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  last_used_at TEXT
);
";

const COLUMNS: &str = "id, prefix, created_at, expires_unix, max_bytes, max_files, max_attempts, \
any_name, note, revoked_at, attempts, files, bytes, last_used_at";

/// One token's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub prefix: String,
    pub created_at: String,
    pub expires_unix: i64,
    pub max_bytes: Option<u64>,
    pub max_files: Option<u64>,
    pub max_attempts: Option<u64>,
    pub any_name: bool,
    pub note: Option<String>,
    pub revoked_at: Option<String>,
    /// Upload requests made with it (refused ones included).
    pub attempts: u64,
    /// Files archived through it (201).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    pub last_used_at: Option<String>,
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    let count =
        |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    let limit = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?
            .and_then(|n| u64::try_from(n).ok()))
    };
    Ok(TokenRow {
        id: r.get(0)?,
        prefix: r.get(1)?,
        created_at: r.get(2)?,
        expires_unix: r.get(3)?,
        max_bytes: limit(4)?,
        max_files: limit(5)?,
        max_attempts: limit(6)?,
        any_name: r.get::<_, i64>(7)? != 0,
        note: r.get(8)?,
        revoked_at: r.get(9)?,
        attempts: count(10)?,
        files: count(11)?,
        bytes: count(12)?,
        last_used_at: r.get(13)?,
    })
}

/// What `revoke_token` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    Now,
    Already,
    NoSuchToken,
}

fn sql_count(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl Inventory {
    /// Records a newly issued token (its usage starts at zero).
    pub fn insert_token(&self, row: &TokenRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO push_tokens (id, prefix, created_at, expires_unix, max_bytes, max_files, max_attempts, any_name, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    row.id,
                    row.prefix,
                    row.created_at,
                    row.expires_unix,
                    sql_count(row.max_bytes),
                    sql_count(row.max_files),
                    sql_count(row.max_attempts),
                    i64::from(row.any_name),
                    row.note,
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Every token, newest first (a site has a handful).
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let sql = format!("SELECT {COLUMNS} FROM push_tokens ORDER BY created_at DESC, id");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], token_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(|e| self.err(e))
    }

    /// One token's row.
    pub fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let sql = format!("SELECT {COLUMNS} FROM push_tokens WHERE id = ?1");
        self.conn
            .query_row(&sql, [id], token_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Revokes a token from now on.
    pub fn revoke_token(&self, id: &str, at: SystemTime) -> Result<Revoked> {
        let Some(row) = self.token(id)? else {
            return Ok(Revoked::NoSuchToken);
        };
        if row.revoked_at.is_some() {
            return Ok(Revoked::Already);
        }
        self.conn
            .execute(
                "UPDATE push_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, timefmt::iso8601(at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(Revoked::Now)
    }

    /// Counts one upload request of the token and gives its row as it is
    /// now (committed at once: a refused request counts too).
    pub fn note_token_attempt(&self, id: &str, at: SystemTime) -> Result<Option<TokenRow>> {
        self.conn
            .execute(
                "UPDATE push_tokens SET attempts = attempts + 1, last_used_at = ?2 WHERE id = ?1",
                params![id, timefmt::iso8601(at)],
            )
            .map_err(|e| self.err(e))?;
        self.token(id)
    }

    /// Adds an archived file to the token's use, in the caller's
    /// transaction (with the file's row).
    pub fn note_token_file(&self, id: &str, bytes: u64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE push_tokens SET files = files + 1, bytes = bytes + ?2 WHERE id = ?1",
                params![id, i64::try_from(bytes).unwrap_or(i64::MAX)],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
