//! `GET /search`: `fgbackup search` over HTTP, from the content index, with
//! the same filters (named as query parameters), the same JSON and a cap.

use serde_json::Value;

use super::routes::{Failure, number_param, only_params, param};
use super::{Answer, MAX_LIMIT, json_answer};
use crate::inventory::{Reader, SearchTotals};
use crate::settings::search::{FILTERS, parse_query};

/// Archives in one answer unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;

/// Longest a search may hold a query worker: an index of millions of
/// facets and a filter that narrows little would otherwise keep the lane
/// busy for as long as they take, and a few such requests starve
/// `/backups` (hostile review of issue 21).
const TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The archives matching the filters, at most `limit` of them (the totals
/// count them all); a bad filter is a 400 naming it.
pub(super) fn search(params: &[(String, String)], db: &Reader) -> Result<Answer, Failure> {
    let mut allowed: Vec<&str> = FILTERS.iter().map(|f| f.param).collect();
    allowed.push("limit");
    only_params(params, &allowed)?;
    if let Some((k, _)) = params
        .iter()
        .enumerate()
        .find(|(i, (k, _))| params[..*i].iter().any(|(e, _)| e == k))
        .map(|(_, p)| p)
    {
        return Err(Failure::Client(
            400,
            format!("parameter '{k}' is given twice: give it once"),
        ));
    }
    let query = parse_query(|f| param(params, f.param).map(str::to_string), true)
        .map_err(|e| Failure::Client(400, e.to_string()))?;
    let limit = number_param(params, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let mut archives = Vec::new();
    let mut totals = SearchTotals::default();
    let whole = db.search_within(&query, TIME_LIMIT, |hit| {
        totals.matched += 1;
        totals.lines += hit.lines;
        if archives.len() < limit as usize {
            archives.push(hit.to_json());
        }
        true
    })?;
    if !whole {
        return Err(Failure::Client(
            503,
            format!(
                "the search took longer than {} s and was stopped: narrow it (device, day, action)",
                TIME_LIMIT.as_secs()
            ),
        ));
    }
    totals.unindexed = db.unindexed()?;
    let mut doc = serde_json::Map::new();
    doc.insert("archives".into(), Value::Array(archives));
    if let Value::Object(t) = totals.to_json() {
        doc.extend(t);
    }
    Ok(json_answer(200, &Value::Object(doc)))
}
