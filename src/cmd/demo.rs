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
    if !args.flag(&flags::DEMO_SERVE) {
        return Ok(code);
    }
    println!();
    demo_verify(&archive, &cfg.db_path)?;
    serve_page(cfg.db_path.clone())
}

/// `fgbackup verify` of the demo's archive, its report printed as usual.
fn demo_verify(archive: &std::path::Path, db: &std::path::Path) -> Result<i32> {
    let mut dest = std::ffi::OsString::from("file://");
    dest.push(archive);
    let words: Vec<std::ffi::OsString> = vec!["--dest".into(), dest, "--db".into(), db.into()];
    let spec = crate::cli::specs::spec("verify").ok_or_else(|| Error::runtime("no verify spec"))?;
    super::verify::verify(Args::parse(spec, words)?)
}

/// The API and the dashboard on loopback, with a token made for this run,
/// until Ctrl-C.
fn serve_page(db_path: PathBuf) -> Result<i32> {
    let token = one_time_token()?;
    crate::signal::install_service();
    let server = crate::api::start(
        crate::api::ServeConfig {
            push: None,
            listen: "127.0.0.1:0".into(),
            db_path,
            tokens: crate::api::Tokens::new(Some(&token), None),
            threads: 2,
            metrics_public: false,
            presign: None,
            daemon_mode: false,
            events_max: 8,
            ui: true,
        },
        std::sync::Arc::new(crate::metrics::Metrics::default()),
    )?;
    println!(
        "\nThe dashboard: http://{}/ui/\nIts token (for this run only): {token}\nCtrl-C stops the server.",
        server.addr
    );
    server.join();
    Ok(0)
}

/// 128 random bits as hex, from the kernel.
fn one_time_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `len` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(Error::runtime(format!(
            "cannot draw a random token: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
