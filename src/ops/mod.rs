//! Operations on the archive. `archive` is one run of `fgbackup upload`;
//! `step` carries one file through it. `verify` checks objects against
//! expectations and `audit` runs a whole `fgbackup verify`; `restore`,
//! `reindex`, `manifest` and `prune` are the other proof commands. `retry` is
//! shared by all of them (status names live in `crate::inventory::status`).

pub mod archive;
pub mod audit;
pub mod listing;
pub mod ls;
pub mod manifest;
pub mod pool;
pub mod prune;
pub mod reindex;
pub mod restore;
pub mod retry;
pub mod step;
pub mod verify;
