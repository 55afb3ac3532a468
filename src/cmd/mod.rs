//! One room per subcommand: each file reads its flags into settings,
//! builds what the run needs and calls the operation in `ops`, returning
//! the exit status or an error that `main` prints as one line.

pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod gen_logs;
pub mod grep;
pub mod inventory;
pub mod keygen;
pub mod ls;
pub mod prune;
pub mod push;
pub mod reindex;
pub mod restore;
pub mod search;
pub mod serve;
pub mod tail;
pub mod token;
pub mod upload;
pub mod verify;

use crate::cli::table::Flag;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::timefmt;

/// Runs the subcommand the flags were checked for.
pub fn dispatch(args: Args) -> Result<i32> {
    // Only reports printed with println! that change nothing (ls, search,
    // grep and tail stop on a closed stdout themselves, with 0): one that
    // archives, deletes or records must not die at a log line because
    // journald restarted or a `| head` left; it finishes its work.
    if matches!(args.spec().name, "doctor" | "inventory") {
        crate::signal::end_quietly_on_closed_stdout();
    }
    match args.spec().name {
        "upload" => upload::upload(args),
        "ls" => ls::ls(args),
        "search" => search::search(args),
        "tail" => tail::tail(args),
        "grep" => grep::grep(args),
        "inventory" => inventory::inventory(args),
        "serve" => serve::serve(args),
        "doctor" => doctor::doctor(args),
        "verify" => verify::verify(args),
        "restore" => restore::restore(args),
        "reindex" => reindex::reindex(args),
        "keygen" => keygen::keygen(args),
        "push" => push::push(args),
        "token keygen" => token::keygen(args),
        "token issue" => token::issue(args),
        "token list" => token::list(args),
        "token revoke" => token::revoke(args),
        "prune" => prune::prune(args),
        "daemon" => daemon::daemon(args),
        "demo" => demo::demo(args),
        "gen-logs" => gen_logs::gen_logs(args),
        other => Err(Error::runtime(format!("command '{other}' has no handler"))),
    }
}

pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A `YYYY-MM-DD` flag: a real calendar day.
pub(crate) fn date_flag(args: &Args, flag: &Flag) -> Result<Option<String>> {
    let name = flag.name;
    match args.value(flag) {
        Some(v) if !timefmt::is_day(&v) => Err(Error::usage(format!(
            "{name} '{v}' is not a date: use YYYY-MM-DD, e.g. 2026-11-01"
        ))),
        other => Ok(other),
    }
}

/// `--since` after `--until` selects nothing: surely a typo.
pub(crate) fn date_range(since: &Option<String>, until: &Option<String>) -> Result<()> {
    match (since, until) {
        (Some(s), Some(u)) if s > u => Err(Error::usage(format!(
            "--since {s} is after --until {u}: swap them"
        ))),
        _ => Ok(()),
    }
}
