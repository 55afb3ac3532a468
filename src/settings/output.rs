//! `-v`, `-q`, `-P`, `--no-progress`: how a command shows its run.

use crate::cli::flags;
use crate::progress::{Output, stderr_can_draw};

/// `-v`/`--verbose`, `-q`/`--quiet`, `-P`/`--progress`, `--no-progress`,
/// resolved against whether stderr is a terminal.
pub fn parse_output(args: &crate::cli::Args) -> crate::error::Result<Output> {
    let verbose = args.flag(&flags::VERBOSE);
    let quiet = args.flag(&flags::QUIET);
    let on = args.flag(&flags::PROGRESS_ON);
    let off = args.flag(&flags::NO_PROGRESS);
    if verbose && quiet {
        return Err(crate::error::Error::usage(
            "--verbose and --quiet contradict each other: pass one",
        ));
    }
    if on && off {
        return Err(crate::error::Error::usage(
            "--progress and --no-progress contradict each other: pass one",
        ));
    }
    let progress = (on || off).then_some(on);
    Ok(Output::resolve(verbose, quiet, progress, stderr_can_draw()))
}
