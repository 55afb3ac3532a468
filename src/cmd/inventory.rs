//! `fgbackup inventory`: the newest rows of the inventory.

use crate::cli::flags;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::settings::{self};

use super::*;

/// `fgbackup inventory`.
pub fn inventory(args: Args) -> Result<i32> {
    let db = settings::db_path(&args, &process_env)?;
    let limit = args.number_or_default(&flags::INVENTORY_LIMIT, &process_env, 1..=1_000_000)?;
    if !db.exists() {
        return Err(Error::usage(format!(
            "no inventory at {}: pass --db PATH or set DB_PATH (it is created by the first upload)",
            db.display()
        )));
    }
    print_inventory(&Inventory::open(&db)?, limit)?;
    Ok(0)
}

pub(super) fn print_inventory(inv: &Inventory, limit: u32) -> Result<()> {
    let rows = inv.recent(limit)?;
    println!(
        "inventory {} ({} newest rows)",
        inv.path().display(),
        rows.len()
    );
    println!(
        "{:>5}  {:<20}  {:<15}  {:>7}  {:>10}  {:<12}  key",
        "id", "uploaded_at", "status", "deleted", "bytes", "sha256"
    );
    for r in rows {
        println!(
            "{:>5}  {:<20}  {:<15}  {:>7}  {:>10}  {:<12}  {}",
            r.id,
            r.uploaded_at,
            r.status,
            if r.deleted_local { "yes" } else { "no" },
            r.size_bytes.map(|b| b.to_string()).unwrap_or_default(),
            r.sha256.get(..12).unwrap_or(&r.sha256),
            crate::logging::one_line(&r.object_key)
        );
        if let Some(err) = r.error.filter(|e| !e.is_empty()) {
            println!("       ! {}", crate::logging::one_line(&err));
        }
    }
    if let Some(run) = inv.last_run()? {
        println!(
            "last run #{}: {}, started {}, finished {}",
            run.id,
            run.status,
            run.started_at,
            run.finished_at.unwrap_or_else(|| "-".to_string())
        );
    }
    Ok(())
}
