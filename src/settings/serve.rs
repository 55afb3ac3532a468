//! The API's settings (`serve`, `daemon`).

use std::path::PathBuf;

use crate::aws::S3Settings;
use crate::cli::flags;
use crate::cli::{Args, Env};
use crate::error::{Error, Result};

use super::*;

/// API settings parsed from flags and environment, before the presign store
/// is built (that needs the S3 settings, which differ for `serve` and `daemon`).
pub struct ServeFlags {
    pub listen: String,
    pub db_path: PathBuf,
    /// `APP_TOKENS`, comma-separated; the API builds its token set from
    /// these and the file.
    pub app_tokens: Option<String>,
    pub tokens_file: Option<PathBuf>,
    pub threads: usize,
    pub metrics_public: bool,
    pub presign: bool,
    pub presign_max: u32,
    pub events_max: usize,
    /// Serve the dashboard page (`--ui`, `UI=1`).
    pub ui: bool,
}

/// Reads the API flags (`--listen`, `--threads`, `--metrics-no-auth`,
/// `--presign`, `--presign-max`, `--tokens-file`, `--db`) and `APP_TOKENS`.
pub fn parse_serve_flags(args: &Args, env: Env) -> Result<ServeFlags> {
    let listen = args.get(&flags::LISTEN, env).unwrap_or_default();
    if listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(Error::usage(format!(
            "--listen '{listen}' is not an address: use IP:PORT, e.g. 127.0.0.1:8080"
        )));
    }
    let presign_max = args.parse_or_default(
        &flags::PRESIGN_MAX,
        env,
        |v| v.parse::<u32>().ok().filter(|n| (1..=604_800).contains(n)),
        "must be seconds from 1 to 604800 (7 days, the S3 limit)",
    )?;
    let tokens_file = args
        .get(&flags::TOKENS_FILE, env)
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    Ok(ServeFlags {
        listen,
        db_path: db_path(args, env)?,
        app_tokens: env(flags::APP_TOKENS.name),
        tokens_file,
        threads: args.number_or_default(&flags::THREADS, env, 1..=64)?,
        metrics_public: args.flag(&flags::METRICS_NO_AUTH),
        presign: args.flag(&flags::PRESIGN),
        presign_max,
        events_max: args.number_or_default(&flags::EVENTS_MAX, env, 1..=256)?,
        ui: args.switch_or_env(&flags::UI, env)?.unwrap_or(false),
    })
}

/// `--bucket`/`BUCKET` and the S3 connection flags, for `serve --presign`.
pub fn parse_presign_bucket(args: &Args, env: Env) -> Result<(String, S3Settings)> {
    let bucket = args.get(&flags::BUCKET, env).ok_or_else(|| {
        Error::usage("--presign needs the bucket: pass --bucket NAME or set BUCKET")
    })?;
    match s3_destination(bucket, &s3_flags(args), None, env)? {
        Destination::S3 {
            bucket, settings, ..
        } => Ok((bucket, settings)),
        Destination::Local { .. } => Err(Error::usage("--presign needs an S3 bucket")),
    }
}
