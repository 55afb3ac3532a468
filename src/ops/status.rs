//! The `status` column: its values are defined here and nowhere else.
//! Compatible with the suite's `uploaded | skipped_exists | failed_*`.

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Stored and verified (size, sha256, and the very object we wrote).
    Uploaded,
    /// Already stored with the same content: nothing sent.
    SkippedExists,
    /// Dry run: would be uploaded.
    WouldUpload,
    /// Written to since the scan, younger than `--min-age` when opened: left
    /// for a later run, like the scan leaves young files. Never recorded.
    Deferred,
    /// The local file could not be opened or read.
    FailedRead,
    /// The file changed, was replaced or became a link while being archived.
    FailedChanged,
    /// An object with other content holds the key; never overwritten.
    FailedConflict,
    /// The stored object has no sha256 metadata, so it cannot be matched.
    FailedNometa,
    /// After upload the stored size or sha256 differs from the local file.
    FailedVerify,
    /// The existing archived copy does not hold the bytes it claims to.
    FailedRemoteCorrupt,
    /// The upload itself failed (network, server error, permissions).
    FailedUpload,
    /// Archived and verified, but the file is not a complete gzip stream; kept.
    FailedGzip,
    /// A stop signal arrived before the file was finished.
    FailedInterrupted,
    /// Found in the archive by `fgbackup reindex`, its SHA-256 proven by the
    /// server's stored checksum or by reading it back.
    Reindexed,
    /// Found by `reindex` with nothing proving its content (no stored
    /// checksum; the SHA-256, if any, is only what its metadata claims).
    ReindexedUnproven,
}

impl Status {
    /// The text stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Uploaded => "uploaded",
            Status::SkippedExists => "skipped_exists",
            Status::WouldUpload => "would_upload",
            Status::Deferred => "deferred",
            Status::FailedRead => "failed_read",
            Status::FailedChanged => "failed_changed",
            Status::FailedConflict => "failed_conflict",
            Status::FailedNometa => "failed_nometa",
            Status::FailedVerify => "failed_verify",
            Status::FailedRemoteCorrupt => "failed_remote_corrupt",
            Status::FailedUpload => "failed_upload",
            Status::FailedGzip => "failed_gzip",
            Status::FailedInterrupted => "failed_interrupted",
            Status::Reindexed => "reindexed",
            Status::ReindexedUnproven => "reindexed_unproven",
        }
    }

    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Status::Uploaded
                | Status::SkippedExists
                | Status::WouldUpload
                | Status::Deferred
                | Status::Reindexed
                | Status::ReindexedUnproven
        )
    }

    /// Every status, in the order help and errors list them.
    pub const ALL: &[Status] = &[
        Status::Uploaded,
        Status::SkippedExists,
        Status::WouldUpload,
        Status::Deferred,
        Status::FailedRead,
        Status::FailedChanged,
        Status::FailedConflict,
        Status::FailedNometa,
        Status::FailedVerify,
        Status::FailedRemoteCorrupt,
        Status::FailedUpload,
        Status::FailedGzip,
        Status::FailedInterrupted,
        Status::Reindexed,
        Status::ReindexedUnproven,
    ];

    /// The statuses a filter value names (`ls --status`, `/backups?status=`):
    /// one status by its column value, or `failed` for every failure.
    pub fn select(value: &str) -> Option<Vec<Status>> {
        if value == "failed" {
            return Some(
                Status::ALL
                    .iter()
                    .copied()
                    .filter(|s| s.is_failure())
                    .collect(),
            );
        }
        Status::ALL
            .iter()
            .find(|s| s.as_str() == value)
            .map(|s| vec![*s])
    }

    /// The values [`Status::select`] accepts, for error messages.
    pub fn filter_values() -> String {
        let mut names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        names.push("failed");
        names.join(", ")
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
