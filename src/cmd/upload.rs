//! `fgbackup upload`: archive a directory, then tell the notifiers.

use crate::cli::Args;
use crate::error::Result;
use crate::ops::upload;
use crate::settings::{self, UploadConfig};
use crate::signal;

use super::*;

/// `fgbackup upload`.
pub fn upload(args: Args) -> Result<i32> {
    let cfg = crate::build::upload(settings::parse_upload(&args, &process_env)?)?;
    crate::logging::apply(cfg.output);
    run_upload(&cfg)
}

pub(super) fn run_upload(cfg: &UploadConfig) -> Result<i32> {
    signal::install();
    let result = upload::run(cfg);
    match &result {
        Ok(summary) if cfg.json => println!("{}", summary.to_json(cfg.dry_run)),
        // -q: a clean run prints nothing at all (cron mails only failures).
        Ok(summary) if cfg.output.quiet() && summary.exit_code() == 0 => {}
        Ok(summary) => println!("{}", summary.render(cfg.dry_run)),
        // main prints the error (and, with --json, its JSON object).
        Err(_) => {}
    }
    if let Ok(summary) = &result
        && let Some(why) = &summary.aborted
    {
        eprintln!(
            "fgbackup: error: {why}; the run stopped, {} file(s) not attempted are left in place for the next run",
            summary.not_attempted
        );
    }
    upload::notify_run(cfg, &result);
    let summary = result?;
    Ok(summary.exit_code())
}
