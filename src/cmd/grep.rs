//! `fgbackup grep`: matching lines of archived logs, proven as they are read.

use crate::cli::Args;
use crate::cli::flags;
use crate::error::{Error, Result};
use crate::ops::grep::GrepOptions;
use crate::ops::grep::matcher::{Format, Pattern, Spec};
use crate::settings::{self, search::parse_query};

use super::*;

/// `fgbackup grep`.
pub fn grep(args: Args) -> Result<i32> {
    let env = &process_env;
    let Some(text) = args.value(&flags::PATTERN) else {
        return Err(Error::usage(
            "grep needs a PATTERN: fgbackup grep PATTERN [FILTERS] (use -F for a fixed string)",
        ));
    };
    let pattern = if args.flag(&flags::FIXED) {
        Pattern::Fixed(Box::new(
            memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
        ))
    } else {
        // Bytes and ASCII classes: log lines need not be UTF-8, and this
        // build carries no Unicode tables.
        let re = regex::bytes::RegexBuilder::new(&text)
            .unicode(false)
            .size_limit(16 << 20)
            .build()
            .map_err(|e| {
                let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                Error::usage(format!(
                    "PATTERN '{text}' is not a regular expression ({first}): fix it, or pass -F to search for it as written"
                ))
            })?;
        Pattern::Regex(re)
    };
    let query =
        parse_query(|f| args.value(f.flag), false).map_err(|e| Error::usage(e.to_string()))?;
    let format = match (args.flag(&flags::COUNT), args.flag(&flags::GREP_JSON)) {
        (true, true) => {
            return Err(Error::usage(
                "--count and --json contradict each other: pass one",
            ));
        }
        (true, false) => Format::Count,
        (false, true) => Format::Json,
        (false, false) => Format::Text,
    };
    let max_count = match args.value(&flags::MAX_COUNT) {
        None => None,
        Some(_) => Some(args.number_or_default(&flags::MAX_COUNT, env, 1..=u64::MAX)?),
    };
    let output = settings::parse_output(&args)?;
    let target = crate::build::target(settings::parse_target(&args, env)?)?;
    crate::logging::apply(output);
    let opts = GrepOptions {
        spec: Spec {
            pattern,
            query,
            format,
            max_count,
        },
        output,
    };
    crate::ops::grep::grep(&target, opts)
}
