//! Checks on this machine: env files, the log directory, the inventory.

use crate::settings::UploadConfig;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

pub(super) fn check_env_file(r: &mut Report, path: &Path) {
    let what = format!("env file {}", path.display());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return r.line(
                Level::Fail,
                &what,
                &format!("cannot read: {e}"),
                "create it from etc/backup_fg.env.example",
            );
        }
    };
    // Read with systemd's EnvironmentFile= rules, so `export X=...` and
    // `X = ...` count; a variable set to nothing holds no secret. Values are
    // never shown. A file this user cannot read is judged by its mode alone.
    let (assignments, unreadable) = match std::fs::read(path) {
        Ok(bytes) => (
            crate::envfile::parse(&String::from_utf8_lossy(&bytes)),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    // The table marks which variables hold secrets.
    let secrets: Vec<&str> = crate::cli::flags::VARS
        .iter()
        .filter(|v| v.secret)
        .map(|v| v.name)
        .filter(|v| {
            assignments
                .iter()
                .any(|a| a.key == *v && !a.value.is_empty())
        })
        .collect();
    let mode = meta.permissions().mode() & 0o777;
    if !secrets.is_empty() && mode & 0o077 != 0 {
        r.line(
            Level::Warn,
            &what,
            &format!(
                "holds {} but its mode is {mode:04o} (readable by others)",
                secrets.join(", ")
            ),
            &format!("chmod 600 {}", path.display()),
        );
    } else if let Some(e) = unreadable {
        let detail = format!("mode {mode:04o} (contents not readable by this user: {e})");
        r.line(Level::Ok, &what, &detail, "");
    } else {
        r.line(Level::Ok, &what, &format!("mode {mode:04o}"), "");
    }
}

pub(super) fn check_log_dir(r: &mut Report, cfg: &UploadConfig) {
    let what = format!("log directory {}", cfg.dir.display());
    match std::fs::read_dir(&cfg.dir) {
        Ok(_) => {
            let found = crate::scan::scan(
                &cfg.dir,
                &cfg.include,
                cfg.min_age,
                std::time::SystemTime::now(),
                &crate::build::own_files(cfg),
                crate::build::store_root_identity(cfg),
            );
            r.line(
                Level::Ok,
                &what,
                &format!(
                    "readable; {} file(s) ready to archive, {} newer than --min-age",
                    found.candidates.len(),
                    found.too_young
                ),
                "",
            );
            for w in found.warnings {
                r.line(Level::Fail, &what, &w, "give the service user read access");
            }
        }
        Err(e) => {
            return r.line(
                Level::Fail,
                &what,
                &format!("cannot list: {e}"),
                "give the service user read access (and ReadWritePaths= in the unit)",
            );
        }
    }
    if cfg.delete {
        match write_probe(&cfg.dir) {
            Ok(()) => r.line(Level::Ok, &what, "writable: --delete can remove archived files", ""),
            Err(e) => r.line(Level::Fail, &what, &format!("--delete is set but files cannot be removed here ({e})"), "give the service user write access to the directory, or drop --delete/DELETE_AFTER"),
        }
    }
}

/// Creates, writes and removes a probe file in `dir`: whether the service
/// user may create and delete files there. The probe's name is fresh and
/// created with `O_EXCL | O_NOFOLLOW`, so a link planted in a directory
/// others can write is never written through.
pub(super) fn write_probe(dir: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let d = crate::dirfd::Dir::open(dir)?;
    let (name, mut f) = d.create_unique(".fgbackup-doctor-", 0o600)?;
    let written = f.write_all(b"probe");
    let removed = d.unlink(&name);
    written.and(removed)
}

/// The inventory: present (or creatable), writable, its schema, and the
/// last run. Long because each check is one report line and they share the
/// open connection; split, they would pass it around for nothing.
pub(super) fn check_database(r: &mut Report, db: &Path) {
    let what = format!("database {}", db.display());
    if !db.exists() {
        let parent = db.parent().unwrap_or(Path::new("."));
        // Nothing is created here: the nearest existing directory must let
        // the first upload create what is missing.
        let dir = parent
            .ancestors()
            .find(|a| a.is_dir())
            .unwrap_or(Path::new("."));
        let detail = if dir == parent {
            "does not exist yet; its directory is writable, the first upload creates it".to_string()
        } else {
            format!(
                "does not exist yet; {} is writable, the first upload creates {} and the database",
                dir.display(),
                parent.display()
            )
        };
        return match write_probe(dir) {
            Ok(()) => r.line(Level::Ok, &what, &detail, ""),
            Err(e) => r.line(
                Level::Fail,
                &what,
                &format!("does not exist and {} is not writable ({e})", dir.display()),
                "create the directory for the service user, or set --db/DB_PATH",
            ),
        };
    }
    let conn = match rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    ) {
        Ok(c) => c,
        Err(e) => {
            return r.line(
                Level::Fail,
                &what,
                &format!("cannot open for writing: {e}"),
                "give the service user write access to the file and its directory",
            );
        }
    };
    let version: rusqlite::Result<i64> =
        conn.query_row("PRAGMA user_version", [], |row| row.get(0));
    let writable = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;");
    match (version, writable) {
        (Ok(v), Ok(())) => {
            let note = if v < crate::inventory::SCHEMA_VERSION {
                format!(
                    "writable, schema version {v} (the next upload migrates it to {})",
                    crate::inventory::SCHEMA_VERSION
                )
            } else {
                format!("writable, schema version {v}")
            };
            r.line(Level::Ok, &what, &note, "");
        }
        (Err(e), _) | (_, Err(e)) => r.line(
            Level::Fail,
            &what,
            &format!("not usable: {e}"),
            "check the file is a SQLite database and writable by the service user",
        ),
    }
}
