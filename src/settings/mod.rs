//! Settings: flags first, then the Python suite's environment names (`DIR`,
//! `BUCKET`, `DELETE_AFTER`, `WORKERS`, `DB_PATH`), then the table's
//! defaults. Every problem becomes one line naming the flag or variable and
//! the fix.

mod notify;
mod output;
mod push;
pub mod search;
mod serve;
mod target;
mod transfer;
mod upload;

pub use notify::parse as parse_notify;
pub use output::parse_output;
pub use push::*;
pub use serve::*;
pub use target::*;
pub use transfer::*;
pub use upload::*;

pub use crate::cli::flags::DEFAULT_DB_PATH;
