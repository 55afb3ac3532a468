//! The command line: one table of flags ([`table`], [`specs`]) from which
//! parsing ([`args`]) and `--help` ([`help`]) are derived.

pub mod args;
pub mod flags;
pub mod help;
pub mod markdown;
pub mod specs;
pub mod table;

use std::ffi::OsString;

pub use args::{Args, Env, Source};

use crate::error::{Error, Result};

/// What the words after `fgbackup` ask for.
pub enum Invocation {
    /// Print this help page (exit 0).
    Help(String),
    /// `--version`.
    Version,
    /// No command given: the main page goes to stderr, exit 2.
    Nothing,
    /// Run a subcommand with its checked flags.
    Command(Args),
}

/// Reads the command line (without the program name).
pub fn read(mut words: impl Iterator<Item = OsString>) -> Result<Invocation> {
    let Some(first) = words.next() else {
        return Ok(Invocation::Nothing);
    };
    let first = first.to_string_lossy().into_owned();
    match first.as_str() {
        "-h" | "--help" => return Ok(Invocation::Help(help::main_page())),
        "-V" | "--version" => return Ok(Invocation::Version),
        "help" => {
            return Ok(Invocation::Help(match words.next() {
                Some(cmd) => help::page(command(&cmd.to_string_lossy())?),
                None => help::main_page(),
            }));
        }
        _ => {}
    }
    let spec = command(&first)?;
    let words: Vec<OsString> = words.collect();
    // Help wins over any other mistake on the line.
    if words.iter().any(|w| w == "--help" || w == "-h") {
        return Ok(Invocation::Help(help::page(spec)));
    }
    let args = Args::parse(spec, words)?;
    Ok(if args.flag(&table::HELP) {
        Invocation::Help(help::page(spec))
    } else {
        Invocation::Command(args)
    })
}

/// The spec of command `name`, or an error suggesting the nearest one.
fn command(name: &str) -> Result<&'static table::Spec> {
    if let Some(spec) = specs::spec(name) {
        return Ok(spec);
    }
    let hint = match args::suggest(specs::COMMANDS.iter().map(|s| s.name), name) {
        Some(near) => format!("did you mean '{near}'? "),
        None => String::new(),
    };
    Err(Error::usage(format!(
        "unknown command '{name}': {hint}run 'fgbackup --help' for the list"
    )))
}
