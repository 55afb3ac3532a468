//! `fgbackup gen-logs`: sample FortiGate logs.

use crate::cli::flags;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::loggen::{self, GenSpec};

use super::*;

/// `fgbackup gen-logs`.
pub fn gen_logs(args: Args) -> Result<i32> {
    let env = &process_env;
    let out = args
        .get(&flags::OUT, env)
        .ok_or_else(|| Error::usage("gen-logs needs --out DIR"))?;
    let file_size = args.parse_or_default(
        &flags::SIZE,
        env,
        |s| crate::units::parse_size(s).filter(|&n| n > 0),
        "is not a size such as 100K or 64M",
    )?;
    let spec = GenSpec {
        out: out.into(),
        devices: args.number_or_default(&flags::DEVICES, env, 1..=100_000)?,
        files_per_device: args.number_or_default(&flags::FILES, env, 1..=1_000_000)?,
        file_size,
        seed: args.number_or_default(&flags::SEED, env, 0..=u64::MAX)?,
    };
    let paths = loggen::generate(&spec)?;
    println!("wrote {} files under {}", paths.len(), spec.out.display());
    Ok(0)
}
