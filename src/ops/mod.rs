//! Operations, one per command that works on the archive, named after it:
//! `upload` (one run; `upload::step` carries one file through it), `verify`
//! (`verify::compare` checks objects against expectations, also for
//! `restore`), `restore`, `reindex`, `prune`, `ls`, `doctor`. `manifest`,
//! `pool`, `retry` and `stdout` are shared by them (status names live in the
//! inventory). Each takes built settings and returns a report or an exit
//! status; none reads the command line.

pub mod archived;
pub mod doctor;
pub mod grep;
pub mod ls;
pub mod manifest;
pub mod pool;
pub mod prune;
pub mod push;
pub mod reindex;
pub mod reindex_content;
pub mod restore;
pub mod retry;
pub mod search;
pub mod stdout;
pub mod tail;
pub mod upload;
pub mod verify;
