//! `fgbackup verify`: read the archive back and compare it with the inventory.

use crate::cli::flags;
use std::path::PathBuf;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::settings::{self};

use super::*;

/// `fgbackup verify`.
pub fn verify(args: Args) -> Result<i32> {
    let all = args.flag(&flags::ALL);
    let sample = args.value(&flags::SAMPLE);
    let since = date_flag(&args, &flags::SINCE)?;
    let until = date_flag(&args, &flags::UNTIL)?;
    let manifests = args.flag(&flags::MANIFESTS);
    let public_key = args.value(&flags::PUBLIC_KEY).map(PathBuf::from);
    let output = crate::settings::parse_output(&args)?;
    let target = crate::build::target(settings::parse_target(&args, &process_env)?)?;
    crate::logging::apply(output);
    date_range(&since, &until)?;
    if manifests && (since.is_some() || until.is_some()) {
        return Err(Error::usage(
            "--manifests checks the whole chain: drop --since/--until",
        ));
    }
    let sample = match (all, sample) {
        (true, Some(_)) => {
            return Err(Error::usage(
                "--all and --sample contradict each other: pass one",
            ));
        }
        (_, None) => 100.0,
        (false, Some(v)) => match v.trim_end_matches('%').parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => p,
            _ => {
                return Err(Error::usage(format!(
                    "--sample '{v}' must be a percentage above 0 and up to 100, e.g. 10"
                )));
            }
        },
    };
    let opts = crate::ops::verify::VerifyOptions {
        since,
        until,
        sample,
        manifests,
        public_key,
        output,
        json: args.flag(&flags::JSON),
    };
    crate::ops::verify::verify(&target, &opts)
}
