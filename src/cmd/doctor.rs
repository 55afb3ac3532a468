//! `fgbackup doctor`: check the setup without archiving anything.

use crate::cli::{Args, flags};
use crate::error::Result;
use crate::settings;

use super::*;

/// `fgbackup doctor`.
pub fn doctor(args: Args) -> Result<i32> {
    crate::ops::doctor::run(crate::ops::doctor::Checkup {
        settings: settings::parse_upload(&args, &process_env).and_then(crate::build::upload),
        env_files: args
            .values(&flags::ENV_FILE)
            .into_iter()
            .map(std::path::PathBuf::from)
            .collect(),
        json: args.flag(&flags::JSON),
    })
}
