//! `fgbackup ls`: what is archived, from the inventory or the archive itself.

use crate::cli::flags;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::inventory::Selection;
use crate::inventory::status::StatusFilter;
use crate::ops::ls::LsOptions;
use crate::settings::{self};

use super::*;

/// `fgbackup ls`.
pub fn ls(args: Args) -> Result<i32> {
    let env = &process_env;
    let since = date_flag(&args, &flags::SINCE)?;
    let until = date_flag(&args, &flags::UNTIL)?;
    date_range(&since, &until)?;
    let status = match args.value(&flags::STATUS) {
        None => None,
        Some(v) => Some(StatusFilter::parse(&v).map_err(|e| Error::usage(format!("--{e}")))?),
    };
    let mut opts = LsOptions {
        selection: Selection {
            key_prefix: args.value(&flags::PREFIX).unwrap_or_default(),
            since,
            until,
        },
        device: args.value(&flags::DEVICE),
        status,
        limit: args.number_or_default(&flags::LS_LIMIT, env, 0..=usize::MAX)?,
        json: args.flag(&flags::JSON),
    };
    if !args.flag(&flags::REMOTE) {
        return crate::ops::ls::inventory(&settings::db_path(&args, env)?, &opts);
    }
    if let Some(f) = [&flags::STATUS, &flags::SINCE, &flags::UNTIL]
        .into_iter()
        .find(|f| args.flag(f))
        .map(|f| f.name)
    {
        return Err(Error::usage(format!(
            "{f} filters the inventory's rows; the archive's objects have no {}: drop it or --remote",
            if f == "--status" {
                "status"
            } else {
                "archive date"
            }
        )));
    }
    // --prefix is the archive's prefix here, as for every archive command.
    opts.selection.key_prefix.clear();
    crate::ops::ls::remote(
        &crate::build::target(settings::parse_target(&args, env)?)?,
        &opts,
    )
}
