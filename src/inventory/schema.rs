//! The `backups` table's columns, defined once: the database creates and
//! migrates them, the API selects and names them, notifications quote them.
//!
//! The writer (`Inventory`) and the read-only view (`Reader`) both derive
//! their SQL from this one list.

/// One column of `backups`.
pub struct Column {
    pub name: &'static str,
    /// Type and constraints, as in `CREATE TABLE`.
    pub ddl: &'static str,
    /// Schema version that added it: 0 for the Python suite's own columns.
    pub since: i64,
    /// Quoted in notifications (the newest row's fields).
    pub notify: bool,
}

const fn col(name: &'static str, ddl: &'static str, since: i64, notify: bool) -> Column {
    Column {
        name,
        ddl,
        since,
        notify,
    }
}

/// The suite's columns, then ours, in the order the API returns them.
pub const BACKUP_COLUMNS: &[Column] = &[
    col("id", "INTEGER PRIMARY KEY AUTOINCREMENT", 0, true),
    col("filename", "TEXT NOT NULL", 0, true),
    col("s3_url", "TEXT", 0, true),
    col("sha256", "TEXT", 0, true),
    col("uploaded_at", "TEXT", 0, true),
    col("backup_date", "TEXT", 0, true),
    col("deleted_local", "INTEGER DEFAULT 0", 0, true),
    col("status", "TEXT", 0, true),
    col("object_key", "TEXT", 1, true),
    col("source_path", "TEXT", 1, false),
    col("size_bytes", "INTEGER", 1, true),
    col("duration_ms", "INTEGER", 1, false),
    col("error", "TEXT", 1, true),
    col("run_id", "INTEGER", 1, false),
];

/// The suite's `CREATE TABLE backups` and its index: what a database the
/// suite never touched gets before our columns are added.
pub fn suite_ddl() -> String {
    let cols: Vec<String> = BACKUP_COLUMNS
        .iter()
        .filter(|c| c.since == 0)
        .map(|c| format!("  {} {}", c.name, c.ddl))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS backups (\n{}\n);\nCREATE INDEX IF NOT EXISTS idx_backups_uploaded_at ON backups(uploaded_at);\n",
        cols.join(",\n")
    )
}

/// Columns added after the suite's schema, for `ALTER TABLE ... ADD COLUMN`.
pub fn added_columns() -> impl Iterator<Item = &'static Column> {
    BACKUP_COLUMNS.iter().filter(|c| c.since > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Python suite's DDL, as its README shows it: the generated text
    /// must create the very same table.
    #[test]
    fn suite_columns_match_the_suite_readme() {
        let suite = "CREATE TABLE IF NOT EXISTS backups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  filename TEXT NOT NULL,
  s3_url TEXT,
  sha256 TEXT,
  uploaded_at TEXT,
  backup_date TEXT,
  deleted_local INTEGER DEFAULT 0,
  status TEXT
);
CREATE INDEX IF NOT EXISTS idx_backups_uploaded_at ON backups(uploaded_at);
";
        assert_eq!(suite_ddl(), suite);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = BACKUP_COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BACKUP_COLUMNS.len());
    }
}
