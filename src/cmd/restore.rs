//! `fgbackup restore`: fetch archived files, proven, into a directory.

use crate::cli::flags;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::settings::{self};

use super::*;

/// `fgbackup restore`.
pub fn restore(args: Args) -> Result<i32> {
    let to = args.value(&flags::TO);
    let keys = args.values(&flags::RESTORE_KEY);
    let device = args.value(&flags::DEVICE);
    let since = date_flag(&args, &flags::SINCE)?;
    let until = date_flag(&args, &flags::UNTIL)?;
    let dry_run = args.flag(&flags::DRY_RUN);
    let output = crate::settings::parse_output(&args)?;
    let target = crate::build::target(settings::parse_target(&args, &process_env)?)?;
    crate::logging::apply(output);
    date_range(&since, &until)?;
    let to = to
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::usage("restore needs --to DIR: the directory to restore into"))?;
    // --to itself (and links above it) are the admin's choice; below it,
    // restore refuses links.
    if !dry_run {
        std::fs::create_dir_all(&to)
            .map_err(|e| Error::usage(format!("--to {to} cannot be created ({e})")))?;
    }
    let to = std::fs::canonicalize(&to)
        .or_else(|_| std::env::current_dir().map(|d| d.join(&to)))
        .map_err(|e| Error::usage(format!("--to {to} cannot be resolved ({e})")))?;
    let opts = crate::ops::restore::RestoreOptions {
        to,
        keys,
        since,
        until,
        device,
        dry_run,
        output,
    };
    crate::ops::restore::restore(&target, &opts)
}
