//! `GET /overview`: what the dashboard shows at a glance, in one answer:
//! today per device (counted as `/stats` counts, so the devices add up to
//! its day), and each device's coverage calendar from the content index,
//! missing and thin days apart (`ops::search::gaps`, as `search --coverage`).

use serde_json::{Value, json};

use super::routes::{Failure, number_param, only_params};
use super::{Answer, json_answer};
use crate::content::day;
use crate::inventory::Reader;
use crate::ops::search::gaps;

/// Days of coverage unless `days` says otherwise, and the most allowed.
const DEFAULT_DAYS: u32 = 30;
const MAX_DAYS: u32 = 366;
/// Devices in one answer: a page cannot show more, and the answer stays small.
const MAX_DEVICES: usize = 200;
/// A day below this percentage of the device's median day is thin (the
/// default of `search --coverage --thin-below`).
const THIN_BELOW: u32 = 25;

pub(super) fn overview(params: &[(String, String)], db: &Reader) -> Result<Answer, Failure> {
    only_params(params, &["days"])?;
    let days = number_param(params, "days", DEFAULT_DAYS, MAX_DAYS)?;
    let now = crate::timefmt::unix_seconds(std::time::SystemTime::now());
    let today = day(now);
    let devices: Vec<Value> = db
        .day_by_device(&today)?
        .into_iter()
        .take(MAX_DEVICES)
        .map(|(device, files, bytes, failed)| {
            json!({"device": device, "files": files, "bytes": bytes, "failed": failed})
        })
        .collect();
    // The calendar ends yesterday: today is still arriving.
    let (since, until) = (now - i64::from(days) * 86_400, now - 86_400);
    let (from, to) = (day(since), day(until));
    let coverage: Vec<Value> = db
        .devices_days(&from, &to, MAX_DEVICES)?
        .into_iter()
        .map(|(device, days)| device_coverage(device, &days, until))
        .collect();
    // The last verify as `/verifications/last` gives it, or null: a page
    // showing it need not ask for an answer that is a 404 until then.
    let verify = match db.last_verification()? {
        Some(mut v) => {
            let id = v.json["id"].as_i64().unwrap_or(0);
            v.json["findings"] = Value::Array(db.findings(id, super::routes::MAX_FINDINGS)?);
            v.json
        }
        None => Value::Null,
    };
    Ok(json_answer(
        200,
        &json!({"today": today, "devices": devices, "verify": verify,
                "coverage": {"from": from, "to": to, "thin_below": THIN_BELOW,
                             "unindexed": db.unindexed()?, "devices": coverage}}),
    ))
}

/// One device's calendar: from its first day with lines in the window to
/// the window's end (a device that stopped sending shows its missing days).
fn device_coverage(device: String, days: &[(String, u64, u64)], until: i64) -> Value {
    let first = days
        .first()
        .and_then(|(d, _, _)| crate::content::query::parse_bound(d, false))
        .unwrap_or(until);
    let report = gaps::by_day(days, first, until, THIN_BELOW);
    let thin: Vec<Value> = report
        .thin
        .iter()
        .map(|t| json!({"day": t.day, "lines": t.lines, "percent": t.percent}))
        .collect();
    let days: Vec<Value> = days
        .iter()
        .map(|(d, lines, archives)| json!({"day": d, "lines": lines, "archives": archives}))
        .collect();
    json!({"device": device, "median": report.median, "days": days,
           "missing": report.missing, "thin": thin})
}
