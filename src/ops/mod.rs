//! Operations on the archive. `archive` is one run of `fgbackup upload`;
//! `step` carries one file through it; `retry` and `status` are shared by
//! the operations to come (verify, restore).

pub mod archive;
pub mod audit;
pub mod listing;
pub mod restore;
pub mod retry;
pub mod status;
pub mod step;
pub mod verify;
