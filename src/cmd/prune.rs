//! `fgbackup prune`: delete archived objects past retention.

use crate::cli::flags;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::settings::{self};

use super::*;

/// `fgbackup prune`.
pub fn prune(args: Args) -> Result<i32> {
    let days = args.value(&flags::OLDER_THAN);
    let yes = args.flag(&flags::YES);
    let force = args.flag(&flags::FORCE);
    let target = crate::build::target(settings::parse_target(&args, &process_env)?)?;
    let days = days.ok_or_else(|| {
        Error::usage("prune needs --older-than DAYS: objects archived longer ago are removed")
    })?;
    let older_than_days = match days.trim_end_matches('d').parse::<u64>() {
        Ok(n) if (1..=36_500).contains(&n) => n,
        _ => {
            return Err(Error::usage(format!(
                "--older-than '{days}' must be a number of days from 1 to 36500, e.g. 400"
            )));
        }
    };
    let min = crate::ops::prune::MIN_DAYS;
    if older_than_days < min && !force {
        return Err(Error::usage(format!(
            "--older-than {older_than_days} is under {min} days (PCI DSS 10.5 keeps a year of logs): pass --force if your retention policy allows it"
        )));
    }
    let manifest_key = settings::manifest_key(&args, &process_env)?;
    crate::build::manifest_key(manifest_key.as_deref())?;
    let opts = crate::ops::prune::PruneOptions {
        older_than_days,
        yes,
        manifest_key,
    };
    crate::ops::prune::prune(&target, &opts)
}
