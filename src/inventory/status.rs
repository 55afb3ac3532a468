//! The `status` columns: their values are defined here and nowhere else.
//! A file's status ([`Status`], the `backups` table) is compatible with the
//! suite's `uploaded | skipped_exists | failed_*`; a run's ([`RunStatus`],
//! the `runs` and `verifications` tables) is ours.

/// Defines a status enum, its column text and its `ALL` list from one list,
/// so no value can be left out of the list the API validates filters
/// against, and no query or caller writes the text a second time.
macro_rules! statuses {
    ($(#[$enum_doc:meta])* enum $name:ident;
     $($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        $(#[$enum_doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$doc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            /// The text stored in the `status` column.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value a column holds, `None` for a text this version
            /// does not know (a newer version's, or the suite's).
            pub fn from_column(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }
    };
}

statuses! {
    /// What happened to one file.
    enum Status;

    /// Stored and verified (size, sha256, and the very object we wrote).
    Uploaded => "uploaded",
    /// Already stored with the same content: nothing sent.
    SkippedExists => "skipped_exists",
    /// Dry run: would be uploaded. Never recorded (a dry run writes no rows).
    WouldUpload => "would_upload",
    /// Written to since the scan, younger than `--min-age` when opened: left
    /// for a later run, like the scan leaves young files. Never recorded.
    Deferred => "deferred",
    /// Another process holds the file open for writing (rsyslog between two
    /// gzip members): left for a later run. Never recorded.
    Busy => "busy",
    /// The local file could not be opened or read.
    FailedRead => "failed_read",
    /// The file changed, was replaced or became a link while being archived.
    FailedChanged => "failed_changed",
    /// An object with other content holds the key; never overwritten.
    FailedConflict => "failed_conflict",
    /// The stored object has no sha256 metadata, so it cannot be matched.
    FailedNometa => "failed_nometa",
    /// After upload the stored size or sha256 differs from the local file.
    FailedVerify => "failed_verify",
    /// The existing archived copy does not hold the bytes it claims to.
    FailedRemoteCorrupt => "failed_remote_corrupt",
    /// The upload itself failed (network, server error, permissions).
    FailedUpload => "failed_upload",
    /// Archived and verified, but the file is not a complete gzip stream; kept.
    FailedGzip => "failed_gzip",
    /// A stop signal arrived before the file was finished.
    FailedInterrupted => "failed_interrupted",
    /// Found in the archive by `fgbackup reindex`, its SHA-256 proven by the
    /// server's stored checksum or by reading it back.
    Reindexed => "reindexed",
    /// Found by `reindex` with nothing proving its content (no stored
    /// checksum; the SHA-256, if any, is only what its metadata claims).
    ReindexedUnproven => "reindexed_unproven",
}

statuses! {
    /// How an upload run (`runs`) or a verify (`verifications`) ended, or
    /// that it has not yet: a row is written `running` at the start and
    /// given its outcome at the end.
    enum RunStatus;

    /// Started and not finished. After a crash or kill the row stays so
    /// until the next run (under the run lock) closes it as interrupted.
    Running => "running",
    /// Finished with nothing failed.
    Ok => "ok",
    /// Finished, with at least one failure (or did not get going).
    Failed => "failed",
    /// Stopped by a signal, or found still running after a crash.
    Interrupted => "interrupted",
}

impl Status {
    /// What the column text of every failure starts with (the suite's
    /// `failed_*`); also the API's filter word for all of them.
    pub const FAILED_PREFIX: &str = "failed";

    /// Whether rows with this status are ever written: a dry run writes no
    /// rows, and a deferred file is left for a later run.
    pub fn is_recorded(self) -> bool {
        !matches!(self, Status::WouldUpload | Status::Deferred | Status::Busy)
    }

    /// Column texts of every status a row can have, in declaration order.
    pub fn recorded_names() -> Vec<&'static str> {
        Status::ALL
            .iter()
            .filter(|s| s.is_recorded())
            .map(|s| s.as_str())
            .collect()
    }

    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Status::Uploaded
                | Status::SkippedExists
                | Status::WouldUpload
                | Status::Deferred
                | Status::Busy
                | Status::Reindexed
                | Status::ReindexedUnproven
        )
    }

    /// Statuses of rows whose object is in the archive: what `verify`
    /// expects to find and `restore` may fetch.
    pub const ARCHIVED: &[Status] = &[
        Status::Uploaded,
        Status::SkippedExists,
        Status::FailedGzip,
        Status::Reindexed,
        Status::ReindexedUnproven,
    ];

    /// [`Status::ARCHIVED`] as column values.
    pub fn archived_names() -> Vec<&'static str> {
        Status::ARCHIVED.iter().map(|s| s.as_str()).collect()
    }
}

/// Which rows a `status` filter selects (`ls --status`, `/backups?status=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Rows with exactly this status.
    One(Status),
    /// Rows of every failure status (`failed`): the suite's `failed_*`, also
    /// ones this version does not know.
    AnyFailure,
}

impl StatusFilter {
    /// A status a row can have, or `failed`; else a message listing both.
    pub fn parse(v: &str) -> Result<StatusFilter, UnknownStatus> {
        if v == Status::FAILED_PREFIX {
            return Ok(StatusFilter::AnyFailure);
        }
        Status::from_column(v)
            .filter(|s| s.is_recorded())
            .map(StatusFilter::One)
            .ok_or_else(|| UnknownStatus(v.to_string()))
    }

    /// The value that selects these rows.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::One(s) => s.as_str(),
            StatusFilter::AnyFailure => Status::FAILED_PREFIX,
        }
    }

    /// Whether a row with column text `status` is selected.
    pub fn matches(self, status: &str) -> bool {
        match self {
            StatusFilter::One(s) => s.as_str() == status,
            StatusFilter::AnyFailure => status
                .strip_prefix(Status::FAILED_PREFIX)
                .is_some_and(|rest| rest.starts_with('_')),
        }
    }
}

/// A `status` filter value that names no status a row can have. Its text
/// lists the valid ones, so the CLI (`--status`) and the API
/// (`?status=`) refuse it with the same help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus(String);

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status '{}' is not valid: use {} (every failed_* status) or one of {}",
            self.0,
            Status::FAILED_PREFIX,
            Status::recorded_names().join(", ")
        )
    }
}

impl std::error::Error for UnknownStatus {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API's `status=failed` and `/stats`'s `failed` select rows by this
    /// prefix: it must pick exactly the failures.
    #[test]
    fn failures_are_exactly_the_failed_prefix() {
        for s in Status::ALL {
            assert_eq!(
                s.is_failure(),
                s.as_str()
                    .starts_with(&format!("{}_", Status::FAILED_PREFIX)),
                "{s:?}"
            );
        }
        let names = Status::recorded_names();
        assert!(names.contains(&"failed_interrupted") && names.contains(&"reindexed_unproven"));
        assert!(!names.contains(&"deferred") && !names.contains(&"would_upload"));
    }
}
