//! ListObjectsV2, one page at a time, guarded against servers that would
//! make a naive loop page forever.

use std::collections::HashSet;

use super::S3Store;
use crate::engine::client::Call;
use crate::engine::xml;
use crate::store::{Listed, StoreError};

/// Keys asked for per LIST page (the S3 maximum).
const LIST_PAGE: &str = "1000";

impl S3Store {
    /// One page of ListObjectsV2.
    pub(super) fn list_page(&self, prefix: &str, token: Option<&str>) -> Result<Page, StoreError> {
        let mut query = vec![
            ("list-type", "2"),
            ("max-keys", LIST_PAGE),
            ("prefix", prefix),
        ];
        if let Some(t) = token {
            query.push(("continuation-token", t));
        }
        let call = Call {
            query: &query,
            ..Call::new("GET", "")
        };
        let answer = self.expect("list", &call)?;
        let body = answer
            .text()
            .map_err(|e| self.classify("list", prefix, e))?;
        Ok(Page {
            objects: xml::elements(&body, "Contents")
                .filter_map(|c| {
                    Some(Listed {
                        key: xml::field(c, "Key")?,
                        size: xml::field(c, "Size")?.trim().parse().ok()?,
                        modified: xml::field(c, "LastModified")
                            .and_then(|t| crate::timefmt::parse_iso8601(&t)),
                    })
                })
                .collect(),
            truncated: xml::field(&body, "IsTruncated").as_deref() == Some("true"),
            next: xml::field(&body, "NextContinuationToken").filter(|t| !t.is_empty()),
        })
    }
}

/// Walks the pages of one listing. A server that says "more" without a way
/// on (no continuation token), or gives a token it gave before, would make
/// a naive loop page forever, growing with every page: either is an error
/// naming the server. A stop signal ends the walk between pages.
pub(super) struct Pages<'a> {
    store: &'a S3Store,
    prefix: &'a str,
    /// The token of the next page; `None` before the first and after the last.
    next: Option<String>,
    pub(super) done: bool,
    /// Every token given so far: a repeat is a loop.
    tokens: HashSet<String>,
    /// The last key of the pages so far: keys must come in S3's order.
    last: Option<String>,
}

impl<'a> Pages<'a> {
    pub(super) fn new(store: &'a S3Store, prefix: &'a str) -> Pages<'a> {
        Pages {
            store,
            prefix,
            next: None,
            done: false,
            tokens: HashSet::new(),
            last: None,
        }
    }

    /// The next page's objects; `Ok(None)` once the listing is complete.
    pub(super) fn next_page(&mut self) -> Result<Option<Vec<Listed>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        if crate::signal::stop_requested() {
            return Err(StoreError::permanent(format!(
                "listing {} at {}: stopped by a signal",
                self.prefix, self.store.endpoint_label
            )));
        }
        let page = self.store.list_page(self.prefix, self.next.as_deref())?;
        // Whoever merges a listing with sorted records (verify) relies on
        // S3's key order; a page out of order is refused before any of it
        // is used.
        for o in &page.objects {
            if let Some(prev) = self.last.as_ref().filter(|p| o.key <= **p) {
                return Err(StoreError::permanent(format!(
                    "listing {} at {}: the server lists keys out of order (or twice): {} came after {prev}",
                    self.prefix, self.store.endpoint_label, o.key
                )));
            }
            self.last = Some(o.key.clone());
        }
        let broken = |why: &str| {
            StoreError::permanent(format!(
                "listing {} at {}: the server says there is more but {why}: its listing cannot be trusted (a bug or a proxy in the way)",
                self.prefix, self.store.endpoint_label
            ))
        };
        match (page.truncated, page.next) {
            (false, _) => self.done = true,
            (true, None) => return Err(broken("gives no continuation token")),
            (true, Some(t)) if !self.tokens.insert(t.clone()) => {
                return Err(broken("repeats a continuation token it gave before"));
            }
            (true, Some(t)) => self.next = Some(t),
        }
        Ok(Some(page.objects))
    }
}

/// One page of a listing, as the server described it.
pub(super) struct Page {
    objects: Vec<Listed>,
    truncated: bool,
    next: Option<String>,
}
