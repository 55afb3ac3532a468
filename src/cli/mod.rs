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
                Some(cmd) => {
                    let cmd = cmd.to_string_lossy().into_owned();
                    match member(&cmd, &mut words)? {
                        Member::Spec(spec) => help::page(spec),
                        Member::Family(page) => page,
                    }
                }
                None => help::main_page(),
            }));
        }
        _ => {}
    }
    let spec = match member(&first, &mut words)? {
        Member::Spec(spec) => spec,
        Member::Family(page) => return Ok(Invocation::Help(page)),
    };
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

/// A command, or the page of a family named without (or with `--help`
/// for) its member.
enum Member {
    Spec(&'static table::Spec),
    Family(String),
}

/// The command `first` names, reading the member's word after a family's
/// (`token issue`).
fn member(first: &str, words: &mut impl Iterator<Item = OsString>) -> Result<Member> {
    if specs::family(first).is_none() {
        return command(first).map(Member::Spec);
    }
    match words.next().map(|w| w.to_string_lossy().into_owned()) {
        None => Ok(Member::Family(help::family_page(first))),
        Some(w) if w == "--help" || w == "-h" => Ok(Member::Family(help::family_page(first))),
        Some(w) => command(&format!("{first} {w}")).map(Member::Spec),
    }
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
