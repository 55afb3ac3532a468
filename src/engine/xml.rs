//! The few fields fgbackup reads from S3's XML answers (error documents,
//! multipart uploads, listings). S3 documents are flat and small enough
//! that finding `<Name>...</Name>` and unescaping its text is all we need.

use std::borrow::Cow;

/// The unescaped text of the first `<name>...</name>` in `doc`.
pub fn field(doc: &str, name: &str) -> Option<String> {
    fields(doc, name).next()
}

/// The unescaped text of every `<name>...</name>` in `doc`, in order.
pub fn fields<'a>(doc: &'a str, name: &str) -> impl Iterator<Item = String> + 'a {
    elements(doc, name).map(|raw| unescape(raw).into_owned())
}

/// The raw inner text of every `<name>...</name>` (nested elements included).
pub fn elements<'a>(doc: &'a str, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut rest = doc;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = rest[start..].find(&close)? + start;
        let inner = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(inner)
    })
}

/// XML text to plain text: the five named entities and numeric references.
/// Anything malformed is kept as it is rather than guessed at.
pub fn unescape(text: &str) -> Cow<'_, str> {
    match quick_xml::escape::unescape(text) {
        Ok(t) => t,
        Err(_) => Cow::Borrowed(text),
    }
}

/// Plain text to XML text, for the bodies we send.
pub fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_entities() {
        let doc = "<R><Contents><Key>a&amp;b.gz</Key><Size>3</Size></Contents><Contents><Key>c&#47;d</Key></Contents><Code>NoSuchBucket</Code></R>";
        assert_eq!(fields(doc, "Key").collect::<Vec<_>>(), ["a&b.gz", "c/d"]);
        assert_eq!(field(doc, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(field(doc, "Missing"), None);
        assert_eq!(elements(doc, "Contents").count(), 2);
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
        assert_eq!(unescape("bad &bogus; text"), "bad &bogus; text");
    }
}
