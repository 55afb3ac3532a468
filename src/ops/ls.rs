//! `fgbackup ls`: what the inventory (or the archive itself) holds, one line
//! per file with a human-readable size and totals at the end, filtered like
//! the API's `/backups`.
//!
//! Both listings stream: each line is written as its row (or object) is
//! read, and only the totals are kept, so `ls` of a year of archives (half
//! a million rows) holds one row at a time. With `--json` the document is
//! written the same way, element by element.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::inventory::status::StatusFilter;
use crate::inventory::{Current, Selection};
use crate::logging::one_line;
use crate::ops::restore::of_device;
use crate::settings::Target;
use crate::store::Listed;
use crate::units::human_bytes;

use super::stdout::Out;

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
    if !db.exists() {
        return Err(Error::usage(format!(
            "no inventory at {}: pass --db PATH or set DB_PATH (it is created by the first upload)",
            db.display()
        )));
    }
    let inv = Inventory::open(db)?;
    let mut out = Out::new(opts.json);
    out.write(match opts.json {
        true => "{\"files\":[",
        false => "",
    });
    if !opts.json {
        out.write(&format!(
            "{:<19}  {:<21}  {:>10}  key\n",
            "uploaded_at", "status", "size"
        ));
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut files, mut bytes) = (0usize, 0u64);
    inv.each_current(&opts.selection, &mut |r: Current| {
        if !opts.device.as_deref().is_none_or(|d| of_device(&r.key, d))
            || !opts.status.is_none_or(|f| f.matches(&r.status))
        {
            return true;
        }
        files += 1;
        bytes += r.size.unwrap_or(0);
        *counts.entry(r.status.clone()).or_default() += 1;
        out.entry(opts.limit, &row_text(&r, opts.json));
        !out.gone
    })?;
    if opts.json {
        let tail =
            serde_json::json!({"total_files": files, "total_bytes": bytes, "counts": counts});
        let tail = tail.to_string();
        out.write(&format!("],{}\n", &tail[1..]));
    } else {
        let by_status: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let by_status = match by_status.is_empty() {
            true => "none".to_string(),
            false => by_status.join(", "),
        };
        out.write(&format!(
            "{files} file(s), {} ({by_status}){}\n",
            human_bytes(bytes),
            shown(out.shown, files)
        ));
    }
    out.finish("the listing")
}

/// One inventory row: a text line, or its JSON object.
fn row_text(r: &Current, json: bool) -> String {
    if json {
        return serde_json::json!({
            "key": r.key, "status": r.status, "size_bytes": r.size,
            "sha256": r.sha256, "uploaded_at": r.uploaded_at,
            "deleted_local": r.deleted_local,
        })
        .to_string();
    }
    let size = r.size.map(human_bytes).unwrap_or_else(|| "-".into());
    let at = r.uploaded_at.get(..19).unwrap_or(&r.uploaded_at);
    format!(
        "{at:<19}  {:<21}  {size:>10}  {}",
        one_line(&r.status),
        one_line(&r.key)
    )
}

/// `; 20 of 350 shown (--limit)` when the list was cut.
fn shown(shown: usize, all: usize) -> String {
    match shown < all {
        true => format!("; {shown} of {all} shown (--limit)"),
        false => String::new(),
    }
}

/// Lists the objects in the archive under the selection's key prefix
/// (index sidecars left out), marking those the inventory (if there is
/// one) has never recorded.
/// One streaming loop on purpose: the listing is never held whole.
pub fn remote(target: &Target, opts: &LsOptions) -> Result<i32> {
    // A stop signal ends the listing between pages with a line.
    crate::signal::install();
    let store = crate::build::open_destination(
        &target.destination,
        &target.transfer,
        target.workers,
        true,
    )?;
    let inv = if target.db_path.exists() {
        Some(Inventory::open(&target.db_path)?)
    } else {
        eprintln!(
            "fgbackup: note: no inventory at {}: objects are listed without comparing them with it (--db/DB_PATH)",
            target.db_path.display()
        );
        None
    };
    let prefix = format!("{}{}", target.prefix, opts.selection.key_prefix);
    let mut out = Out::new(opts.json);
    out.write(&match opts.json {
        true => "{\"files\":[".to_string(),
        false => format!("{:<19}  {:>10}  key\n", "modified", "size"),
    });
    let (mut files, mut bytes, mut strangers) = (0usize, 0u64, 0usize);
    let mut db_error = None;
    let listed = store.list_all(&prefix, &mut |o: Listed| {
        // The content index's sidecars are no archives (nor strangers).
        if out.gone
            || crate::scan::is_sidecar_object(&o.key)
            || !opts.device.as_deref().is_none_or(|d| of_device(&o.key, d))
        {
            return;
        }
        let known = match inv.as_ref().map(|i| i.is_known(&o.key)).transpose() {
            Ok(k) => k,
            Err(e) => {
                db_error.get_or_insert(e);
                None
            }
        };
        files += 1;
        bytes += o.size;
        strangers += usize::from(known == Some(false));
        out.entry(opts.limit, &object_text(&o, known, opts.json));
    });
    listed.map_err(|e| Error::runtime(format!("cannot list {}: {e}", store.describe())))?;
    if let Some(e) = db_error {
        return Err(e);
    }
    let footer = match opts.json {
        true => format!("],\"total_files\":{files},\"total_bytes\":{bytes}}}\n"),
        false => format!(
            "{files} object(s), {} in {}{}{}\n",
            human_bytes(bytes),
            store.describe(),
            shown(out.shown, files),
            match strangers {
                0 => String::new(),
                n => format!("; {n} not in the inventory"),
            }
        ),
    };
    out.write(&footer);
    out.finish("the listing")
}

/// One archived object: a text line, or its JSON object.
fn object_text(o: &Listed, known: Option<bool>, json: bool) -> String {
    if json {
        return serde_json::json!({
            "key": o.key, "size_bytes": o.size, "modified_unix": o.modified,
            "in_inventory": known,
        })
        .to_string();
    }
    let at = o
        .modified
        .map(|t| {
            crate::timefmt::iso8601(crate::timefmt::from_unix(t))
                .chars()
                .take(19)
                .collect::<String>()
        })
        .unwrap_or_else(|| "-".into());
    let mark = match known {
        Some(false) => "  (not in the inventory)",
        _ => "",
    };
    format!(
        "{at:<19}  {:>10}  {}{mark}",
        human_bytes(o.size),
        one_line(&o.key)
    )
}
