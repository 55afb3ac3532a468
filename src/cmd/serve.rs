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
    }
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
    signal::install_service();
    let db_path = flags.db_path.clone();
    let server = api::start(
        serve_config(flags, db_path, presign, false),
        Arc::new(Metrics::default()),
    )?;
    server.join();
    log::info!("stop signal received; in-flight requests answered, API stopped");
    Ok(0)
}
