//! `fgbackup doctor`: check the setup without archiving anything.

use crate::cli::Args;
use crate::error::Result;

use super::*;

/// `fgbackup doctor`.
pub fn doctor(args: Args) -> Result<i32> {
    crate::ops::doctor::run(&args, &process_env)
}
