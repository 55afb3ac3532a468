//! `fgbackup demo`: the main job on an embedded default, no server needed.

use crate::cli::flags;
use std::path::PathBuf;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::loggen::{self, GenSpec};
use crate::settings::{self};

use super::inventory::print_inventory;
use super::upload::run_upload;
use super::*;

/// `fgbackup demo`.
pub fn demo(args: Args) -> Result<i32> {
    let workdir: PathBuf = args
        .get(&flags::WORKDIR, &process_env)
        .unwrap_or_default()
        .into();
    let logs = workdir.join("logs");
    let archive = std::path::absolute(workdir.join("archive"))
        .map_err(|e| Error::io("resolve", &workdir, e))?;
    // The directory store never creates its root (an unmounted disk must not
    // be mistaken for an empty archive): the demo owns this one.
    std::fs::create_dir_all(&archive).map_err(|e| Error::io("create", &archive, e))?;
    if !logs.exists() {
        let paths = loggen::generate(&GenSpec {
            out: logs.clone(),
            devices: 3,
            files_per_device: 4,
            file_size: 48 * 1024,
            seed: 1,
        })?;
        println!(
            "generated {} sample log files under {}",
            paths.len(),
            logs.display()
        );
    }
    // Upload's own flags, so the demo runs on the same defaults; no
    // environment, so a BUCKET or DIR set for real runs cannot leak in.
    let mut dest = std::ffi::OsString::from("file://");
    dest.push(&archive);
    let words: Vec<std::ffi::OsString> = vec![
        "--dir".into(),
        logs.into(),
        "--dest".into(),
        dest,
        "--db".into(),
        workdir.join("inventory.db").into(),
        "--min-age".into(),
        "0".into(),
        "--retries".into(),
        "0".into(),
        "--gzip-check".into(),
        "always".into(),
    ];
    let spec = crate::cli::specs::spec("upload").ok_or_else(|| Error::runtime("no upload spec"))?;
    let cfg = crate::build::upload(settings::parse_upload(&Args::parse(spec, words)?, &|_| {
        None
    })?)?;
    crate::logging::apply(cfg.output);
    let code = run_upload(&cfg)?;
    println!();
    print_inventory(&Inventory::open(&cfg.db_path)?, 20)?;
    Ok(code)
}
