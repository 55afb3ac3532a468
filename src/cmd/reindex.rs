//! `fgbackup reindex`: rebuild inventory rows from the archive.

use crate::cli::flags;

use crate::cli::Args;
use crate::error::Result;
use crate::settings::{self};

use super::*;

/// `fgbackup reindex`.
pub fn reindex(args: Args) -> Result<i32> {
    let read = args.flag(&flags::READ);
    let content = args.flag(&flags::CONTENT);
    let read_objects = args.flag(&flags::READ_OBJECTS);
    if read_objects && !content {
        return Err(crate::error::Error::usage(
            "--read-objects only changes how --content indexes: add --content",
        ));
    }
    let target = crate::build::target(settings::parse_target(&args, &process_env)?)?;
    crate::ops::reindex::reindex(&target, read, content, read_objects)
}
