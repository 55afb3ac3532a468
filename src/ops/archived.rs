//! The inventory's archived objects below a prefix (the newest archived row
//! of each key, pruned ones left out), in key order, read a page at a time:
//! what `grep`, `reindex --content` and `restore` walk. Nothing holds the whole list.

use std::collections::VecDeque;

use crate::error::Error;
use crate::inventory::status::Status;
use crate::inventory::{Archived, Expectations, Expected, Inventory, Selection};

/// Rows read per page.
const PAGE: usize = 1000;

/// An iterator over the archived objects; a database error ends it and
/// stays in `error` for the caller to return.
pub struct Pages<'a> {
    source: Archived<'a>,
    page: VecDeque<Expected>,
    after: Option<String>,
    pub error: Option<Error>,
}

impl<'a> Pages<'a> {
    /// The archived objects below `prefix`.
    pub fn new(inv: &'a Inventory, prefix: &str) -> Pages<'a> {
        Pages::of(Archived {
            inv,
            statuses: Status::archived_names(),
            selection: Selection {
                key_prefix: prefix.to_string(),
                ..Selection::default()
            },
        })
    }

    /// The objects of any selection (`restore`'s device, dates, prefix).
    pub fn of(source: Archived<'a>) -> Pages<'a> {
        Pages {
            source,
            page: VecDeque::new(),
            after: Some(String::new()),
            error: None,
        }
    }
}

impl Iterator for Pages<'_> {
    type Item = Expected;

    fn next(&mut self) -> Option<Expected> {
        while self.page.is_empty() {
            let after = self.after.take()?;
            match self.source.page(&after, PAGE) {
                Ok((rows, next)) => {
                    self.page.extend(rows);
                    self.after = next;
                }
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            }
        }
        self.page.pop_front()
    }
}
