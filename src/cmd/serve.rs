//! `fgbackup serve`: the inventory API.

use std::sync::Arc;

use crate::api::{self, Presign, ServeConfig};
use crate::cli::Args;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::settings::{self, ServeFlags};
use crate::signal;
use crate::store::s3::{S3Options, S3Store};

use super::*;

pub(super) fn serve_config(
    flags: ServeFlags,
    db_path: std::path::PathBuf,
    presign: Option<Presign>,
    daemon_mode: bool,
    push: Option<Arc<api::PushServer>>,
) -> ServeConfig {
    ServeConfig {
        listen: flags.listen,
        db_path,
        tokens: api::Tokens::new(flags.app_tokens.as_deref(), flags.tokens_file),
        threads: flags.threads,
        metrics_public: flags.metrics_public,
        presign,
        daemon_mode,
        events_max: flags.events_max,
        ui: flags.ui,
        push,
    }
}

/// `--accept-uploads`: the push receiver, archiving with `cfg`'s store and
/// settings; bodies a restart left whole are archived at once.
pub(super) fn push_server(
    settings: settings::PushServerSettings,
    cfg: &crate::settings::UploadConfig,
    scans_dir: bool,
) -> Result<Arc<api::PushServer>> {
    settings::refuse_spool_overlap(&settings.spool, cfg, scans_dir)?;
    let store: Arc<dyn crate::store::Store> = Arc::from(crate::build::open_store(cfg)?);
    // Said at start rather than at the first push; pushes still come in
    // (and get 503 until the destination answers).
    if let Err(e) = store.check() {
        log::error!(
            "pushes cannot be archived yet: {} ({}); they are answered 503 until it works",
            e.message,
            store.describe()
        );
    }
    let archiver = crate::ops::push::Archiver::new(store, cfg.clone());
    let spool = settings.spool.clone();
    let server = Arc::new(api::PushServer::new(
        settings,
        archiver,
        cfg.db_path.clone(),
    )?);
    log::info!("accepting pushes (spool {})", spool.display());
    server.sweep();
    Ok(server)
}

/// `fgbackup serve`.
pub fn serve(args: Args) -> Result<i32> {
    let flags = settings::parse_serve_flags(&args, &process_env)?;
    let presign = if flags.presign {
        let (bucket, settings) = settings::parse_presign_bucket(&args, &process_env)?;
        Some(Presign {
            store: S3Store::new(&bucket, &settings, S3Options::default())?,
            max_expires: flags.presign_max,
        })
    } else {
        None
    };
    let push = match settings::parse_push_server(&args, &process_env)? {
        Some(p) => {
            let cfg = settings::parse_push_upload(&args, &process_env, &p.spool)?;
            let cfg = crate::build::upload(cfg)?;
            Some(push_server(p, &cfg, false)?)
        }
        None => None,
    };
    signal::install_service();
    let db_path = flags.db_path.clone();
    let server = api::start(
        serve_config(flags, db_path, presign, false, push),
        Arc::new(Metrics::default()),
    )?;
    server.join();
    log::info!("stop signal received; in-flight requests answered, API stopped");
    Ok(0)
}
