//! Operations on the archive. `archive` is one run of `fgbackup upload`.

pub mod archive;
