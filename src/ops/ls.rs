//! `fgbackup ls`: what the inventory (or the archive itself) holds, one line
//! per file with a human-readable size and totals at the end, filtered like
//! the API's `/backups`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use crate::config::Target;
use crate::db::Inventory;
use crate::db::{Current, Selection};
use crate::error::{Error, Result};
use crate::logging::one_line;
use crate::ops::restore::of_device;
use crate::status::StatusFilter;
use crate::units::human_bytes;

/// What to list.
pub struct LsOptions {
    pub selection: Selection,
    pub device: Option<String>,
    /// Keep rows this selects (`None`: every status).
    pub status: Option<StatusFilter>,
    /// At most this many lines (0: all); totals count every match.
    pub limit: usize,
    pub json: bool,
}

/// Lists the newest row of every matching key in the inventory at `db`.
pub fn inventory(db: &std::path::Path, opts: &LsOptions) -> Result<i32> {
    let mut out = String::new();
    if !db.exists() {
        return Err(Error::usage(format!(
            "no inventory at {}: pass --db PATH or set DB_PATH (it is created by the first upload)",
            db.display()
        )));
    }
    let rows: Vec<Current> = Inventory::open(db)?
        .current(&opts.selection)?
        .into_iter()
        .filter(|r| opts.device.as_deref().is_none_or(|d| of_device(&r.key, d)))
        .filter(|r| opts.status.is_none_or(|f| f.matches(&r.status)))
        .collect();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.status.as_str()).or_default() += 1;
    }
    let bytes: u64 = rows.iter().filter_map(|r| r.size).sum();
    if opts.json {
        let files: Vec<serde_json::Value> = rows
            .iter()
            .take(limit(opts, rows.len()))
            .map(|r| {
                serde_json::json!({
                    "key": r.key, "status": r.status, "size_bytes": r.size,
                    "sha256": r.sha256, "uploaded_at": r.uploaded_at,
                    "deleted_local": r.deleted_local,
                })
            })
            .collect();
        let total = serde_json::json!({
            "files": files, "total_files": rows.len(), "total_bytes": bytes, "counts": counts,
        });
        let _ = writeln!(out, "{total}");
        return emit(&out);
    }
    let _ = writeln!(
        out,
        "{:<19}  {:<21}  {:>10}  key",
        "uploaded_at", "status", "size"
    );
    for r in rows.iter().take(limit(opts, rows.len())) {
        let size = r.size.map(human_bytes).unwrap_or_else(|| "-".into());
        let at = r.uploaded_at.get(..19).unwrap_or(&r.uploaded_at);
        let _ = writeln!(
            out,
            "{at:<19}  {:<21}  {size:>10}  {}",
            one_line(&r.status),
            one_line(&r.key)
        );
    }
    let by_status: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let by_status = match by_status.is_empty() {
        true => "none".to_string(),
        false => by_status.join(", "),
    };
    let _ = writeln!(
        out,
        "{} file(s), {} ({by_status}){}",
        rows.len(),
        human_bytes(bytes),
        shown(opts, rows.len())
    );
    emit(&out)
}

/// `; 20 of 350 shown (--limit)` when the list was cut.
fn shown(opts: &LsOptions, all: usize) -> String {
    match limit(opts, all) {
        n if n < all => format!("; {n} of {all} shown (--limit)"),
        _ => String::new(),
    }
}

fn limit(opts: &LsOptions, all: usize) -> usize {
    if opts.limit == 0 { all } else { opts.limit }
}

/// Lists the objects in the archive under the selection's key prefix,
/// marking those the inventory (if there is one) has never recorded.
pub fn remote(target: &Target, opts: &LsOptions) -> Result<i32> {
    let store = crate::ops::archive::open_destination(
        &target.destination,
        &target.transfer,
        target.workers,
        true,
    )?;
    let known: Option<HashSet<String>> = if target.db_path.exists() {
        Some(Inventory::open(&target.db_path)?.known_keys()?)
    } else {
        eprintln!(
            "fgbackup: note: no inventory at {}: objects are listed without comparing them with it (--db/DB_PATH)",
            target.db_path.display()
        );
        None
    };
    let prefix = format!("{}{}", target.prefix, opts.selection.key_prefix);
    let mut objects = Vec::new();
    store
        .list_all(&prefix, &mut |o| {
            if opts.device.as_deref().is_none_or(|d| of_device(&o.key, d)) {
                objects.push(o);
            }
        })
        .map_err(|e| Error::runtime(format!("cannot list {}: {e}", store.describe())))?;
    print_objects(&objects, known.as_ref(), opts, &store.describe())
}

/// The archive's objects, as text or `--json`.
fn print_objects(
    objects: &[crate::store::Listed],
    known: Option<&HashSet<String>>,
    opts: &LsOptions,
    describe: &str,
) -> Result<i32> {
    let mut out = String::new();
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    let unknown = |k: &str| known.is_some_and(|set| !set.contains(k));
    if opts.json {
        let files: Vec<serde_json::Value> = objects
            .iter()
            .take(limit(opts, objects.len()))
            .map(|o| {
                serde_json::json!({
                    "key": o.key, "size_bytes": o.size, "modified_unix": o.modified,
                    "in_inventory": known.map(|s| s.contains(&o.key)),
                })
            })
            .collect();
        let total = serde_json::json!({
            "files": files, "total_files": objects.len(), "total_bytes": bytes,
        });
        let _ = writeln!(out, "{total}");
        return emit(&out);
    }
    let _ = writeln!(out, "{:<19}  {:>10}  key", "modified", "size");
    for o in objects.iter().take(limit(opts, objects.len())) {
        let at = o
            .modified
            .map(|t| {
                crate::timefmt::iso8601(crate::timefmt::from_unix(t))
                    .chars()
                    .take(19)
                    .collect::<String>()
            })
            .unwrap_or_else(|| "-".into());
        let mark = if unknown(&o.key) {
            "  (not in the inventory)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{at:<19}  {:>10}  {}{mark}",
            human_bytes(o.size),
            one_line(&o.key)
        );
    }
    let strangers = objects.iter().filter(|o| unknown(&o.key)).count();
    let _ = writeln!(
        out,
        "{} object(s), {} in {}{}{}",
        objects.len(),
        human_bytes(bytes),
        describe,
        shown(opts, objects.len()),
        if strangers > 0 {
            format!("; {strangers} not in the inventory")
        } else {
            String::new()
        }
    );
    emit(&out)
}

/// Writes a listing to stdout. A reader that goes away (`| head`) ends it
/// quietly; `println!` would panic on the broken pipe.
fn emit(text: &str) -> Result<i32> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::runtime(format!("cannot write the listing: {e}")))
        }
        _ => Ok(0),
    }
}
