//! Object Lock (WORM): what `--object-lock` asks of each new object, and
//! what the bucket's own configuration says, read before any file so a
//! bucket that would not keep the locks is refused up front.

use std::time::{Duration, SystemTime};

use super::S3Store;
use crate::engine::client::Call;
use crate::engine::error::EngineError;
use crate::engine::xml;
use crate::store::StoreError;

/// `--object-lock MODE --object-lock-days N`: every new object is locked
/// (write once, read many) until N days after its upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLock {
    /// `GOVERNANCE` (who holds `s3:BypassGovernanceRetention` may still
    /// delete) or `COMPLIANCE` (nobody may, until the date).
    pub mode: String,
    /// 1 to 36500.
    pub days: u32,
}

impl ObjectLock {
    /// `x-amz-object-lock-retain-until-date` of an object created at `now`.
    pub fn retain_until(&self, now: SystemTime) -> String {
        crate::timefmt::iso8601(now + Duration::from_secs(u64::from(self.days) * 86_400))
    }
}

/// What a bucket says about Object Lock (`GET /?object-lock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockConfig {
    /// Objects may be locked; `default` is the retention the bucket gives
    /// objects created without one.
    Enabled { default: Option<Retention> },
    /// Objects cannot be locked here; the server's word for it
    /// (`ObjectLockConfigurationNotFoundError`, `NotImplemented`...).
    Absent(String),
}

/// A bucket's default retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub mode: String,
    pub days: Option<u32>,
    pub years: Option<u32>,
}

impl LockConfig {
    /// Reads a `<ObjectLockConfiguration>` document.
    fn parse(doc: &str) -> LockConfig {
        match xml::field(doc, "ObjectLockEnabled").as_deref() {
            Some("Enabled") => {}
            Some(other) => return LockConfig::Absent(format!("ObjectLockEnabled is '{other}'")),
            None => return LockConfig::Absent("no ObjectLockEnabled in the answer".into()),
        }
        let default = xml::elements(doc, "DefaultRetention").next().and_then(|r| {
            Some(Retention {
                mode: xml::field(r, "Mode")?,
                days: positive(xml::field(r, "Days")),
                years: positive(xml::field(r, "Years")),
            })
        });
        LockConfig::Enabled { default }
    }

    /// `enabled, default retention GOVERNANCE 30 days`, `enabled, no
    /// default retention`, `not enabled (NotImplemented)`.
    pub fn describe(&self) -> String {
        match self {
            LockConfig::Enabled { default: None } => "enabled, no default retention".into(),
            LockConfig::Enabled { default: Some(r) } => {
                let period = match (r.days, r.years) {
                    (Some(d), _) => format!("{d} days"),
                    (None, Some(y)) => format!("{y} years"),
                    (None, None) => "(no period)".into(),
                };
                format!("enabled, default retention {} {period}", r.mode)
            }
            LockConfig::Absent(why) => format!("not enabled ({why})"),
        }
    }
}

impl S3Store {
    /// The bucket's Object Lock configuration. A bucket without one, and a
    /// server that does not implement Object Lock, answer `Absent`.
    pub fn object_lock_config(&self) -> Result<LockConfig, StoreError> {
        let action = "GET ?object-lock of bucket";
        let call = Call {
            query: &[("object-lock", "")],
            ..Call::new("GET", "")
        };
        let answer = self
            .client
            .send(&call)
            .map_err(|e| self.classify(action, &self.name, e))?;
        let status = answer.status;
        let body = answer
            .text()
            .map_err(|e| self.classify(action, &self.name, e))?;
        if (200..300).contains(&status) {
            return Ok(LockConfig::parse(&body));
        }
        match EngineError::from_answer(status, &body) {
            EngineError::Status { code, .. }
                if status == 501
                    || matches!(
                        code.as_str(),
                        "ObjectLockConfigurationNotFoundError" | "NotImplemented"
                    ) =>
            {
                Ok(LockConfig::Absent(if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    code
                }))
            }
            err @ EngineError::Status { status: 403, .. } => Err(StoreError::permanent(format!(
                "{action} {} at {}: {err}: grant s3:GetBucketObjectLockConfiguration to these credentials, or drop --object-lock/OBJECT_LOCK_MODE",
                self.name, self.endpoint_label
            ))),
            err => Err(self.classify(action, &self.name, err)),
        }
    }

    /// With `--object-lock`, the bucket must keep locks: one clear error
    /// before any file, rather than objects anyone may delete.
    pub(super) fn check_object_lock(&self) -> Result<(), StoreError> {
        match self.object_lock_config()? {
            LockConfig::Enabled { .. } => Ok(()),
            LockConfig::Absent(why) => Err(StoreError::permanent(format!(
                "bucket '{}' at {}: Object Lock is not enabled ({why}): create the bucket with Object Lock enabled, or drop --object-lock/OBJECT_LOCK_MODE",
                self.name, self.endpoint_label
            ))),
        }
    }
}

/// A count from an XML field; `None` when absent, not a number, or 0
/// (moto writes `<Years>0</Years>` beside `<Days>30</Days>`).
fn positive(field: Option<String>) -> Option<u32> {
    field
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_configurations() {
        use super::{LockConfig, Retention};
        let doc = |inner: &str| {
            format!(
                "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{inner}</ObjectLockConfiguration>"
            )
        };
        let moto = doc(
            "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>30</Days><Years>0</Years></DefaultRetention></Rule>",
        );
        let c = LockConfig::parse(&moto);
        assert_eq!(
            c,
            LockConfig::Enabled {
                default: Some(Retention {
                    mode: "GOVERNANCE".into(),
                    days: Some(30),
                    years: None
                })
            }
        );
        assert_eq!(
            c.describe(),
            "enabled, default retention GOVERNANCE 30 days"
        );
        let years = doc(
            "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>7</Years></DefaultRetention></Rule>",
        );
        assert_eq!(
            LockConfig::parse(&years).describe(),
            "enabled, default retention COMPLIANCE 7 years"
        );
        let bare = doc("<ObjectLockEnabled>Enabled</ObjectLockEnabled>");
        assert_eq!(
            LockConfig::parse(&bare).describe(),
            "enabled, no default retention"
        );
        assert!(matches!(LockConfig::parse("<x/>"), LockConfig::Absent(_)));
    }

    #[test]
    fn retain_until_is_days_ahead_in_utc() {
        let lock = super::ObjectLock {
            mode: "GOVERNANCE".into(),
            days: 1,
        };
        let at = crate::timefmt::from_unix(1_709_210_096);
        assert_eq!(lock.retain_until(at), "2024-03-01T12:34:56Z");
    }
}
