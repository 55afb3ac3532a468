//! The record of each `verify`: its `verifications` row, opened `running`
//! and given its totals at the end, and one finding per object not ok.

use std::time::SystemTime;

use rusqlite::params;

use super::Inventory;
use super::status::RunStatus;
use crate::error::Result;
use crate::host::hostname;
use crate::timefmt;

/// Totals of one verify, written to its `verifications` row.
#[derive(Debug, Clone)]
pub struct VerifyTotals {
    pub status: RunStatus,
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

impl Inventory {
    /// Records the start of a verify and returns its id.
    pub fn start_verification(&self, destination: &str, scope: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO verifications (started_at, host, destination, scope, status)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    timefmt::iso8601(SystemTime::now()),
                    hostname(),
                    destination,
                    scope,
                    RunStatus::Running.as_str()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records one object that was not ok.
    /// Records findings (key, result, detail) of verify `id` in one short
    /// transaction: one fsync for many, and the write lock held for
    /// milliseconds, never across a read-back.
    pub fn add_findings(&self, id: i64, findings: &[(String, &'static str, String)]) -> Result<()> {
        if findings.is_empty() {
            return Ok(());
        }
        let run = || -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            let mut stmt = self.conn.prepare_cached(
                "INSERT INTO verification_findings (verification_id, object_key, result, detail)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (key, result, detail) in findings {
                stmt.execute(params![id, key, result, detail])?;
            }
            self.conn.execute_batch("COMMIT")
        };
        run().map_err(|e| {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.err(e)
        })
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
                    t.status.as_str(),
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
        crate::changes::announce();
        Ok(())
    }

    /// Marks verifies left `running` by a crash as `interrupted`.
    pub fn close_stale_verifications(&self) -> Result<()> {
        self.conn
            .execute(
                "UPDATE verifications SET status = ?1 WHERE status = ?2",
                [RunStatus::Interrupted.as_str(), RunStatus::Running.as_str()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
