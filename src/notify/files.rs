//! File-based signals: a flag file touched after each successful run (for
//! "how old is the last good backup" checks over SNMP or a cron job), and a
//! node_exporter textfile with the run's figures, replaced atomically so the
//! collector never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::RunReport;
use crate::error::{Error, Result};

/// Creates `path` if needed and sets its modification time to now. A
/// symlink planted at `path` is refused, never followed: it would let
/// anyone who can write its directory change another file's time (or
/// create one where the link points).
pub fn touch(path: &Path) -> Result<()> {
    let file = crate::dirfd::open_own_file(path, 0o644).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => Error::runtime(format!(
            "flag file {} is a symbolic link: refused, never followed; remove the link or set --flag-file/FLAG_FILE to a plain file",
            path.display()
        )),
        _ => Error::io("open flag file", path, e),
    })?;
    file.set_modified(std::time::SystemTime::now())
        .map_err(|e| Error::io("touch flag file", path, e))
}

/// The textfile's content for `r`: one `# HELP`/`# TYPE`/value block per
/// metric, which is why it is long.
pub fn textfile(r: &RunReport) -> String {
    let mut s = String::new();
    let mut metric = |name: &str, help: &str, kind: &str, lines: &[(String, String)]| {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(s, "{name}{labels} {value}");
        }
    };
    let one = |v: String| vec![(String::new(), v)];
    metric(
        "fgbackup_run_success",
        "1 if the last upload run had no failures.",
        "gauge",
        &one(u8::from(r.ok).to_string()),
    );
    metric(
        "fgbackup_run_timestamp_seconds",
        "End of the last upload run.",
        "gauge",
        &one(r.finished_unix.to_string()),
    );
    metric(
        "fgbackup_run_duration_seconds",
        "Duration of the last upload run.",
        "gauge",
        &one(format!("{:.3}", r.duration_secs)),
    );
    metric(
        "fgbackup_run_bytes_uploaded",
        "Bytes sent by the last upload run.",
        "gauge",
        &one(r.bytes_uploaded.to_string()),
    );
    metric(
        "fgbackup_run_deleted_files",
        "Local files deleted by the last upload run.",
        "gauge",
        &one(r.deleted.to_string()),
    );
    let per_status: Vec<(String, String)> = r
        .counts
        .iter()
        .map(|(status, n)| (format!("{{status=\"{status}\"}}"), n.to_string()))
        .collect();
    metric(
        "fgbackup_run_files",
        "Files of the last upload run, by status.",
        "gauge",
        &per_status,
    );
    if let Some(t) = r.last_success_unix {
        metric(
            "fgbackup_last_success_timestamp_seconds",
            "End of the newest upload run without failures.",
            "gauge",
            &one(t.to_string()),
        );
    }
    s
}

/// Writes the textfile under a fresh, unpredictable name beside its final
/// one (created with `O_EXCL | O_NOFOLLOW`, so a link planted at a name
/// this process might use is never written through), syncs, then renames
/// it in place: node_exporter never reads half a file, and a link at the
/// final name is replaced, not followed.
pub fn write_textfile(path: &Path, r: &RunReport) -> Result<()> {
    let failed = |e: std::io::Error| Error::io("write metrics textfile", path, e);
    let (dir, name) = crate::dirfd::split_path(path).map_err(failed)?;
    // Not `*.prom`: the collector ignores it until the rename.
    let (tmp, mut f) = dir
        .create_unique(&format!(".{name}."), 0o644)
        .map_err(failed)?;
    let result = f
        .write_all(textfile(r).as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| dir.rename(&tmp, &dir, &name));
    result.map_err(|e| {
        let _ = dir.unlink(&tmp);
        failed(e)
    })
}
