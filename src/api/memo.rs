//! Answers kept per worker while the inventory has not changed: a
//! dashboard asks for the same page of `/backups` or the same `/stats`
//! again and again, and between two commits the answer is the same bytes.
//! SQLite's `PRAGMA data_version` changes whenever another connection
//! commits (every writer is another connection: the API only reads), so an
//! answer is never served after the data it came from changed.

use std::collections::VecDeque;

use tiny_http::{Header, Response};

use super::Answer;

/// Answers kept per worker, and their bytes at most: a few pages of 1000
/// rows, within the server's memory budget with 2 × `--threads` workers.
const MAX_ENTRIES: usize = 16;
const MAX_BYTES: usize = 1 << 20;

struct Kept {
    target: String,
    status: u16,
    headers: Vec<Header>,
    body: Vec<u8>,
}

/// One worker's kept answers, all of one `data_version`.
#[derive(Default)]
pub(super) struct Memo {
    version: Option<i64>,
    kept: VecDeque<Kept>,
    bytes: usize,
}

impl Memo {
    /// The answer kept for `target` (path and query) at `version`; a new
    /// version drops every kept answer.
    pub(super) fn get(&mut self, version: i64, target: &str) -> Option<Answer> {
        if self.version != Some(version) {
            self.kept.clear();
            self.bytes = 0;
            self.version = Some(version);
            return None;
        }
        let k = self.kept.iter().find(|k| k.target == target)?;
        let mut answer = Response::from_data(k.body.clone()).with_status_code(k.status);
        for h in &k.headers {
            answer = answer.with_header(h.clone());
        }
        Some(answer)
    }

    /// Keeps a successful `answer` to `target` and gives it back to send.
    pub(super) fn put(&mut self, version: i64, target: &str, answer: Answer) -> Answer {
        let (status, headers) = (answer.status_code().0, answer.headers().to_vec());
        let body = answer.into_reader().into_inner();
        if status == 200 && self.version == Some(version) && body.len() <= MAX_BYTES {
            while self.kept.len() >= MAX_ENTRIES || self.bytes + body.len() > MAX_BYTES {
                let Some(old) = self.kept.pop_front() else {
                    break;
                };
                self.bytes -= old.body.len();
            }
            self.bytes += body.len();
            self.kept.push_back(Kept {
                target: target.to_string(),
                status,
                headers: headers.clone(),
                body: body.clone(),
            });
        }
        let mut answer = Response::from_data(body).with_status_code(status);
        for h in headers {
            answer = answer.with_header(h);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(a: Answer) -> String {
        String::from_utf8(a.into_reader().into_inner()).unwrap()
    }

    #[test]
    fn kept_until_the_version_changes() {
        let mut m = Memo::default();
        assert!(m.get(1, "/a").is_none());
        let a = Response::from_data(b"one".to_vec()).with_header(super::super::header("Link", "x"));
        assert_eq!(text(m.put(1, "/a", a)), "one");
        let again = m.get(1, "/a").unwrap();
        assert_eq!(again.headers().len(), 1);
        assert_eq!(text(again), "one");
        assert!(m.get(1, "/b").is_none());
        assert!(m.get(2, "/a").is_none(), "a commit drops it");
        let failed = Response::from_data(b"no".to_vec()).with_status_code(500);
        m.put(2, "/c", failed);
        assert!(m.get(2, "/c").is_none(), "only 200s are kept");
    }
}
