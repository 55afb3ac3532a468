//! How the bytes travel: the data-path flags.

use crate::cli::flags;
use crate::cli::table::Flag;
use crate::cli::{Args, Env};
use crate::error::{Error, Result};
use crate::store::s3::ObjectLock;
use crate::units::parse_size;

/// Smallest part S3 accepts in a multipart upload (all but the last part).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Largest part S3 accepts.
pub(super) const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Longest `--object-lock-days` (100 years, S3's limit).
pub(super) const MAX_LOCK_DAYS: u32 = 36_500;

/// `--gzip-check`: when to inflate `.gz` files to prove them complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipCheck {
    /// Only when the file will be deleted: that is what the proof protects.
    Auto,
    Always,
    Never,
}

impl GzipCheck {
    /// Whether a run with `delete` inflates `.gz` files.
    pub fn enabled(self, delete: bool) -> bool {
        match self {
            GzipCheck::Auto => delete,
            GzipCheck::Always => true,
            GzipCheck::Never => false,
        }
    }
}

/// `--index`: when to build the content index of a `.gz` (issue 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMode {
    /// Whenever the file is inflated anyway (the gzip check): the index
    /// then costs only the scan.
    Auto,
    /// Always: inflates `.gz` files to index them even in copy mode.
    Always,
    Never,
}

impl IndexMode {
    /// Whether a `.gz` that the gzip check does (or does not) inflate is indexed.
    pub fn wanted(self, inflated_anyway: bool) -> bool {
        match self {
            IndexMode::Auto => inflated_anyway,
            IndexMode::Always => true,
            IndexMode::Never => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            IndexMode::Auto => "content index auto (with the gzip check)",
            IndexMode::Always => "content index always",
            IndexMode::Never => "content index never",
        }
    }
}

/// How the bytes travel: the data-path flags of `upload`, `daemon` and `doctor`.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Files larger than this go in parts (`--multipart-cutoff`).
    pub multipart_cutoff: u64,
    /// `--part-size`, for those files.
    pub part_size: u64,
    pub gzip: GzipCheck,
    /// `--index`.
    pub index: IndexMode,
    /// `--bwlimit`, `None` when off.
    pub bwlimit: Option<crate::engine::throttle::BwLimit>,
    /// `--storage-class`, `--sse`, `--sse-kms-key-id` (S3 only).
    pub storage_class: Option<String>,
    pub sse: Option<String>,
    pub sse_kms_key_id: Option<String>,
    /// `--object-lock MODE --object-lock-days N` (S3 only).
    pub object_lock: Option<ObjectLock>,
}

/// Reads the data-path flags; each error names its flag and a valid example.
pub(super) fn parse_transfer(args: &Args, env: Env) -> Result<Transfer> {
    let size = |flag: &Flag| {
        args.parse_or_default(
            flag,
            env,
            |v| parse_size(v).filter(|n| (MIN_PART_SIZE..=MAX_PART_SIZE).contains(n)),
            "must be a size from 5MiB to 5GiB, e.g. 64MiB",
        )
    };
    if args.flag(&flags::MAX_MEMORY) {
        log::warn!(
            "--max-memory is no longer used and is ignored: uploads stream from disk, so memory does not grow with file size; remove the flag"
        );
    }
    let bwlimit = match args.get(&flags::BWLIMIT, env) {
        None => None,
        Some(v) => {
            let limit = crate::engine::throttle::BwLimit::parse(&v).map_err(|why| {
                Error::usage(format!(
                    "--bwlimit '{v}': {why}; e.g. 512k, 10M, or \"08:00,512k 19:00,off\""
                ))
            })?;
            (!limit.is_off()).then_some(limit)
        }
    };
    let storage_class = args.parse_with(
        &flags::STORAGE_CLASS,
        env,
        |c| {
            (!c.is_empty() && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
                .then(|| c.to_string())
        },
        "is not an S3 storage class such as STANDARD_IA or GLACIER_IR",
    )?;
    let (sse, sse_kms_key_id) = parse_sse(args, env)?;
    Ok(Transfer {
        multipart_cutoff: size(&flags::MULTIPART_CUTOFF)?,
        part_size: size(&flags::PART_SIZE)?,
        gzip: parse_gzip_check(args, env)?,
        index: args.parse_or_default(
            &flags::INDEX,
            env,
            |v| match v {
                "auto" => Some(IndexMode::Auto),
                "always" => Some(IndexMode::Always),
                "never" => Some(IndexMode::Never),
                _ => None,
            },
            "is not understood: use auto (index when the gzip check inflates anyway), always or never",
        )?,
        bwlimit,
        storage_class,
        sse,
        sse_kms_key_id,
        object_lock: parse_object_lock(args, env)?,
    })
}

/// `--sse AES256|aws:kms` and `--sse-kms-key-id` (only with `aws:kms`).
pub(super) fn parse_sse(args: &Args, env: Env) -> Result<(Option<String>, Option<String>)> {
    let sse = args.get(&flags::SSE, env);
    let key = args.get(&flags::SSE_KMS_KEY_ID, env);
    match (sse.as_deref(), &key) {
        (None | Some("AES256"), None) | (Some("aws:kms"), _) => Ok((sse, key)),
        (None | Some("AES256"), Some(_)) => {
            Err(Error::usage("--sse-kms-key-id needs --sse aws:kms"))
        }
        (Some(other), _) => Err(Error::usage(format!(
            "--sse '{other}' is not understood: use AES256 or aws:kms"
        ))),
    }
}

/// `--object-lock MODE` with `--object-lock-days N` (or `OBJECT_LOCK_MODE`
/// with `OBJECT_LOCK_DAYS`): both or neither. An empty value is unset, as
/// systemd passes an unset variable.
pub(super) fn parse_object_lock(args: &Args, env: Env) -> Result<Option<ObjectLock>> {
    let read = |flag: &Flag| args.get(flag, env).filter(|v| !v.trim().is_empty());
    let (mode, days) = match (read(&flags::OBJECT_LOCK), read(&flags::OBJECT_LOCK_DAYS)) {
        (None, None) => return Ok(None),
        (Some(m), Some(d)) => (m, d),
        _ => {
            return Err(Error::usage(
                "--object-lock/OBJECT_LOCK_MODE and --object-lock-days/OBJECT_LOCK_DAYS go together: give both (e.g. --object-lock GOVERNANCE --object-lock-days 30) or neither",
            ));
        }
    };
    let upper = mode.trim().to_ascii_uppercase();
    if upper != "GOVERNANCE" && upper != "COMPLIANCE" {
        return Err(Error::usage(format!(
            "--object-lock/OBJECT_LOCK_MODE '{mode}' is not understood: use GOVERNANCE (deletable only with s3:BypassGovernanceRetention) or COMPLIANCE (by nobody until the date)"
        )));
    }
    let days = match days.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_LOCK_DAYS).contains(&n) => n,
        _ => {
            return Err(Error::usage(format!(
                "--object-lock-days/OBJECT_LOCK_DAYS '{days}' must be a whole number of days from 1 to {MAX_LOCK_DAYS}"
            )));
        }
    };
    Ok(Some(ObjectLock { mode: upper, days }))
}

/// `--gzip-check auto|always|never`, or the older `--no-gzip-check`.
pub(super) fn parse_gzip_check(args: &Args, env: Env) -> Result<GzipCheck> {
    if args.flag(&flags::NO_GZIP_CHECK) {
        if args.flag(&flags::GZIP_CHECK) {
            return Err(Error::usage(
                "--gzip-check and --no-gzip-check contradict each other: pass one",
            ));
        }
        return Ok(GzipCheck::Never);
    }
    args.parse_or_default(
        &flags::GZIP_CHECK,
        env,
        |v| match v {
            "auto" => Some(GzipCheck::Auto),
            "always" => Some(GzipCheck::Always),
            "never" => Some(GzipCheck::Never),
            _ => None,
        },
        "is not understood: use auto (check when --delete is set), always or never",
    )
}

impl Transfer {
    /// One line for `doctor`: how files will travel and what objects carry.
    pub fn describe(&self, s3: bool) -> String {
        let mib = |n: u64| n / (1024 * 1024);
        let mut parts = vec![
            format!(
                "one PUT per file up to {} MiB, {} MiB parts above",
                mib(self.multipart_cutoff),
                mib(self.part_size)
            ),
            format!(
                "gzip check {}",
                match self.gzip {
                    GzipCheck::Auto => "auto (on with --delete)",
                    GzipCheck::Always => "always",
                    GzipCheck::Never => "never",
                }
            ),
            self.index.describe().into(),
            match &self.bwlimit {
                None => "bandwidth unlimited".into(),
                Some(l) => format!("--bwlimit {}", l.describe()),
            },
        ];
        if s3 {
            parts.push(format!(
                "storage class {}",
                self.storage_class.as_deref().unwrap_or("(bucket default)")
            ));
            parts.push(match (&self.sse, &self.sse_kms_key_id) {
                (None, _) => "encryption: bucket default".into(),
                (Some(s), None) => format!("encryption {s}"),
                (Some(s), Some(k)) => format!("encryption {s} with key {k}"),
            });
            parts.push(match &self.object_lock {
                None => "Object Lock (bucket default)".into(),
                Some(l) => format!("Object Lock {} for {} days", l.mode, l.days),
            });
        }
        parts.join("; ")
    }

    /// The flags that only mean something for an S3 destination, if set.
    pub(super) fn s3_only_flag(&self) -> Option<&'static str> {
        if self.storage_class.is_some() {
            Some("--storage-class")
        } else if self.sse.is_some() {
            Some("--sse")
        } else if self.object_lock.is_some() {
            Some("--object-lock/OBJECT_LOCK_MODE")
        } else {
            None
        }
    }
}
