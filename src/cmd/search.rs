//! `fgbackup search`: archives whose logs match, from the content index.

use crate::cli::Args;
use crate::cli::flags;
use crate::error::{Error, Result};
use crate::ops::search::{By, CoverageOptions, SearchOptions};
use crate::settings::{self, search::parse_query};

use super::*;

/// `fgbackup search`.
pub fn search(args: Args) -> Result<i32> {
    let env = &process_env;
    let db = settings::db_path(&args, env)?;
    let query =
        parse_query(|f| args.value(f.flag), false).map_err(|e| Error::usage(e.to_string()))?;
    let json = args.flag(&flags::JSON_RESULT);
    if !args.flag(&flags::COVERAGE) {
        if let Some(f) = [&flags::COVERAGE_BY, &flags::THIN_BELOW]
            .into_iter()
            .find(|f| args.flag(f))
        {
            return Err(Error::usage(format!(
                "{} only applies with --coverage: add --coverage or drop it",
                f.name
            )));
        }
        let opts = SearchOptions {
            query,
            limit: args.number_or_default(&flags::SEARCH_LIMIT, env, 0..=usize::MAX)?,
            json,
        };
        return crate::ops::search::search(&db, &opts);
    }
    let Some(device) = query.device.clone() else {
        return Err(Error::usage(
            "--coverage needs --device NAME: the device whose days to check",
        ));
    };
    if query.action.is_some()
        || query.log_type.is_some()
        || query.subtype.is_some()
        || query.vd.is_some()
        || query.ip.is_some()
    {
        return Err(Error::usage(
            "--coverage counts all lines of a device: use only --device, --since and --until with it",
        ));
    }
    let by = args.parse_or_default(
        &flags::COVERAGE_BY,
        env,
        |v| match v {
            "day" => Some(By::Day),
            "hour" => Some(By::Hour),
            _ => None,
        },
        "is not understood: use day or hour",
    )?;
    let opts = CoverageOptions {
        device,
        since: query.since,
        until: query.until,
        by,
        thin_below: args.number_or_default(&flags::THIN_BELOW, env, 1..=100)?,
        json,
    };
    crate::ops::search::coverage(&db, &opts)
}
