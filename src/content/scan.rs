//! One FortiGate log line to the fields the content index keeps.
//!
//! The line is read as `key=value` pairs matched by name, in any order
//! (FortiOS does not fix the order, and forwarded or templated logs move
//! keys around). A quoted value is read whole, `\"` and `\\` escapes
//! included, so the text inside `url="/a?srcip=1.2.3.4&action=accept"` can
//! never set `srcip` or `action` (the log-evasion bug of regex extractors).
//! Anything before the first pair (`<189>`, an RFC 3164 or RFC 3339 syslog
//! header a collector added) is skipped. CEF lines are read through their
//! own field names (`deviceExternalId`, `act`, `src`, `dst`,
//! `FTNTFGTeventtime`...). Bytes, not text: a line that is not UTF-8 is still
//! scanned, and its values are kept only when they are.

use memchr::memchr2;

/// The layout a line was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// The device's own `date= time= devname= ...` (FortiOS default).
    KeyValue,
    /// Forwarded by FortiAnalyzer: `logver= timestamp= tz= ...` first.
    Forwarded,
    /// ArcSight CEF: `CEF:0|Fortinet|Fortigate|...|ext`.
    Cef,
}

impl Format {
    /// As the inventory and `search --json` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::KeyValue => "key_value",
            Format::Forwarded => "forwarded",
            Format::Cef => "cef",
        }
    }
}

/// What the index keeps of one line; values borrow the line (quotes
/// removed, escapes left as written).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    pub eventtime: Option<&'a [u8]>,
    /// FortiAnalyzer's `timestamp=` (seconds), when there is no eventtime.
    pub timestamp: Option<&'a [u8]>,
    pub date: Option<&'a [u8]>,
    pub time: Option<&'a [u8]>,
    pub tz: Option<&'a [u8]>,
    pub devname: Option<&'a [u8]>,
    pub devid: Option<&'a [u8]>,
    pub vd: Option<&'a [u8]>,
    pub log_type: Option<&'a [u8]>,
    pub subtype: Option<&'a [u8]>,
    pub action: Option<&'a [u8]>,
    pub srcip: Option<&'a [u8]>,
    pub dstip: Option<&'a [u8]>,
    /// CEF's `cat=traffic:forward`: type and subtype when they are not apart.
    pub category: Option<&'a [u8]>,
}

/// The fields of `line` (without its line end), and the layout it was
/// written in; `None` when no `key=value` pair was found at all.
pub fn line(line: &[u8]) -> Option<(Format, Fields<'_>)> {
    // CEF only when nothing before `CEF:` is a pair: a quoted `msg` of a
    // key=value line may well mention it.
    // Looked for only before the first `=` (a few bytes into a key=value
    // line), not through the whole line.
    let before_pairs = memchr::memchr(b'=', line).map_or(line, |eq| &line[..eq]);
    if let Some(at) = find(before_pairs, b"CEF:") {
        return cef(&line[at..]).map(|f| (Format::Cef, f));
    }
    let mut fields = Fields::default();
    let mut format = None;
    let mut filled = 0u16;
    for (key, value) in Pairs::new(line) {
        format.get_or_insert(if key == b"logver" {
            Format::Forwarded
        } else {
            Format::KeyValue
        });
        filled |= set(&mut fields, key, value);
        if filled & COMPLETE == COMPLETE {
            // The rest of the line (policy, service, bytes, msg...) holds
            // nothing the index keeps; the first value of a key wins anyway.
            break;
        }
    }
    format.map(|f| (f, fields))
}

/// The bits of [`set`]'s answer: which kept field a key was.
const EVENTTIME: u16 = 1;
const DATE: u16 = 1 << 1;
const TIME: u16 = 1 << 2;
const TZ: u16 = 1 << 3;
const DEVNAME: u16 = 1 << 4;
const DEVID: u16 = 1 << 5;
const VD: u16 = 1 << 6;
const TYPE: u16 = 1 << 7;
const SUBTYPE: u16 = 1 << 8;
const ACTION: u16 = 1 << 9;
const SRCIP: u16 = 1 << 10;
const DSTIP: u16 = 1 << 11;
const TIMESTAMP: u16 = 1 << 12;
/// Every field the index keeps is there. The date, time and zone are
/// waited for too: they give the time when `eventtime` cannot be read,
/// and a line's time must not depend on where its keys stand (FortiOS
/// writes them first, so the early stop still comes early).
const COMPLETE: u16 = (1 << 12) - 1;

/// Stores `value` if `key` is one the index keeps (the first one wins);
/// its bit, or 0. Dispatched on length and first byte, each candidate
/// then compared at its known length (profiled: a plain match on byte
/// strings called `memcmp` per candidate, a tenth of the scan).
fn set<'a>(f: &mut Fields<'a>, key: &[u8], value: &'a [u8]) -> u16 {
    let (slot, bit) = match (key.len(), key.first()) {
        (9, Some(b'e')) if key == b"eventtime" => (&mut f.eventtime, EVENTTIME),
        (9, Some(b't')) if key == b"timestamp" => (&mut f.timestamp, TIMESTAMP),
        (4, Some(b'd')) if key == b"date" => (&mut f.date, DATE),
        (4, Some(b't')) if key == b"time" => (&mut f.time, TIME),
        (4, Some(b't')) if key == b"type" => (&mut f.log_type, TYPE),
        (2, Some(b't')) if key == b"tz" => (&mut f.tz, TZ),
        (2, Some(b'v')) if key == b"vd" => (&mut f.vd, VD),
        (7, Some(b'd')) if key == b"devname" => (&mut f.devname, DEVNAME),
        (7, Some(b's')) if key == b"subtype" => (&mut f.subtype, SUBTYPE),
        (5, Some(b'd')) if key == b"devid" => (&mut f.devid, DEVID),
        (5, Some(b'd')) if key == b"dstip" => (&mut f.dstip, DSTIP),
        (5, Some(b's')) if key == b"srcip" => (&mut f.srcip, SRCIP),
        (6, Some(b'a')) if key == b"action" => (&mut f.action, ACTION),
        _ => return 0,
    };
    slot.get_or_insert(value);
    bit
}

/// The `key=value` pairs of a line, in order, apart by spaces or commas
/// (CSV format). A word without `=` before the first pair is a header and
/// skipped; a key is letters, digits and `_`; a quoted value ends at the
/// first `"` not escaped by `\`.
struct Pairs<'a> {
    line: &'a [u8],
    at: usize,
}

impl<'a> Pairs<'a> {
    fn new(line: &'a [u8]) -> Pairs<'a> {
        Pairs { line, at: 0 }
    }

    /// Moves past the current word (a header word or a broken pair).
    fn skip_word(&mut self) {
        while self.at < self.line.len() && !is_separator(self.line[self.at]) {
            self.at += 1;
        }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let line = self.line;
        loop {
            while self.at < line.len() && is_separator(line[self.at]) {
                self.at += 1;
            }
            if self.at >= line.len() {
                return None;
            }
            let start = self.at;
            // Keys and most values are a few bytes: a scalar loop beats
            // SIMD search here (FORTIGATE-LOGS.md, measured).
            let mut end = start;
            while end < line.len() && is_key_byte(line[end]) {
                end += 1;
            }
            if end > start && line.get(end) == Some(&b'=') {
                let key = &line[start..end];
                let (value, next) = value(line, end + 1);
                self.at = next;
                return Some((key, value));
            }
            // `<189>date=`: the priority is glued to the first key. The `>`
            // is looked for in this word only, so a line of many `<` costs
            // no more than its length.
            match priority_end(&line[start..]) {
                Some(n) => self.at = start + n,
                None => self.skip_word(),
            }
        }
    }
}

/// After `<PRI>` at the start of `word`: where the rest of the word begins.
fn priority_end(word: &[u8]) -> Option<usize> {
    if word.first() != Some(&b'<') {
        return None;
    }
    let end = memchr::memchr(b' ', word).unwrap_or(word.len());
    memchr::memchr(b'>', &word[..end]).map(|n| n + 1)
}

/// The value starting at `at` and where the next pair may start.
fn value(line: &[u8], at: usize) -> (&[u8], usize) {
    if line.get(at) != Some(&b'"') {
        let end = line[at..]
            .iter()
            .position(|&b| is_separator(b))
            .map_or(line.len(), |n| at + n);
        return (&line[at..end], end);
    }
    let open = at + 1;
    let mut i = open;
    while let Some(n) = memchr2(b'"', b'\\', &line[i..]) {
        let hit = i + n;
        if line[hit] == b'\\' {
            i = (hit + 2).min(line.len());
            continue;
        }
        return (&line[open..hit], hit + 1);
    }
    // No closing quote: a cut line; the value runs to its end.
    (&line[open..], line.len())
}

/// Byte classes, one table lookup each in the scan's inner loops.
const KEY: u8 = 1;
const SEPARATOR: u8 = 2;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[b] = KEY;
        }
        if c == b' ' || c == b',' {
            t[b] = SEPARATOR;
        }
        b += 1;
    }
    t
};

/// What separates pairs: a space (the default format) or a comma
/// (FortiOS's CSV format, `date=...,time=...`); values holding either are
/// quoted.
fn is_separator(b: u8) -> bool {
    CLASS[usize::from(b)] == SEPARATOR
}

fn is_key_byte(b: u8) -> bool {
    CLASS[usize::from(b)] == KEY
}

/// CEF's extension: `key=value` pairs whose values may hold spaces; a value
/// ends where the next ` key=` begins (`\=` is an escaped `=`).
fn cef(line: &[u8]) -> Option<Fields<'_>> {
    // CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|Extension
    let mut bars = 0;
    let mut ext = None;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 1,
            b'|' => {
                bars += 1;
                if bars == 7 {
                    ext = Some(i + 1);
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let ext = &line[ext?..];
    let mut fields = Fields::default();
    for (key, value) in cef_pairs(ext) {
        let key: &[u8] = match key {
            b"deviceExternalId" => b"devid",
            b"dvchost" | b"FTNTFGTdevname" => b"devname",
            b"act" => b"action",
            b"src" => b"srcip",
            b"dst" => b"dstip",
            b"FTNTFGTeventtime" => b"eventtime",
            b"FTNTFGTvd" => b"vd",
            b"FTNTFGTtype" => b"type",
            b"FTNTFGTsubtype" => b"subtype",
            b"FTNTFGTtz" => b"tz",
            b"cat" => {
                fields.category.get_or_insert(value);
                continue;
            }
            _ => continue,
        };
        let _ = set(&mut fields, key, value);
    }
    if fields.log_type.is_none()
        && let Some(cat) = fields.category
    {
        let (t, s) = match cat.iter().position(|&b| b == b':') {
            Some(n) => (&cat[..n], Some(&cat[n + 1..])),
            None => (cat, None),
        };
        fields.log_type = Some(t);
        if fields.subtype.is_none() {
            fields.subtype = s;
        }
    }
    Some(fields)
}

/// The pairs of a CEF extension.
fn cef_pairs(ext: &[u8]) -> Vec<(&[u8], &[u8])> {
    // Where each `key=` starts: a key after the start or a space, followed
    // by an unescaped `=`.
    let mut starts = Vec::new();
    let mut i = 0;
    while i < ext.len() {
        if i == 0 || ext[i - 1] == b' ' {
            let mut end = i;
            while end < ext.len() && is_key_byte(ext[end]) {
                end += 1;
            }
            if end > i && ext.get(end) == Some(&b'=') {
                starts.push((i, end));
                i = end + 1;
                continue;
            }
        }
        if ext[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    let mut pairs = Vec::with_capacity(starts.len());
    for (n, &(k, eq)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(ext.len(), |&(next, _)| next);
        let value = &ext[eq + 1..end];
        let value = value.strip_suffix(b" ").unwrap_or(value);
        pairs.push((&ext[k..eq], value));
    }
    pairs
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(l: &'a str) -> (Format, Fields<'a>) {
        line(l.as_bytes()).expect("parses")
    }

    #[test]
    fn keys_in_any_order_quoted_or_not() {
        let (f, x) = get(
            r#"<189>date=2026-11-02 time=10:00:00 devname="FGT-A" devid="FGT60F" eventtime=1793613600 tz="-0300" type="traffic" subtype="forward" vd="root" srcip=10.1.2.3 dstip=8.8.8.8 action="deny""#,
        );
        assert_eq!(f, Format::KeyValue);
        assert_eq!(x.devname, Some(&b"FGT-A"[..]));
        assert_eq!(x.action, Some(&b"deny"[..]));
        assert_eq!(x.srcip, Some(&b"10.1.2.3"[..]));
        let (_, y) = get(
            "action=accept dstip=1.1.1.1 vd=root srcip=10.0.0.9 devid=FG100E devname=old-box type=traffic subtype=local date=2016-01-01 time=00:00:01",
        );
        assert_eq!(y.action, Some(&b"accept"[..]));
        assert_eq!(y.devid, Some(&b"FG100E"[..]));
        assert_eq!(y.dstip, Some(&b"1.1.1.1"[..]));
    }

    #[test]
    fn a_quoted_value_never_sets_another_field() {
        let (_, x) = get(
            r#"date=2026-11-02 devname="a" url="/x?srcip=6.6.6.6&action=accept \"q\" dstip=7.7.7.7" action="blocked" srcip=10.0.0.1 msg="say \\" dstip=9.9.9.9"#,
        );
        assert_eq!(x.action, Some(&b"blocked"[..]));
        assert_eq!(x.srcip, Some(&b"10.0.0.1"[..]));
        assert_eq!(x.dstip, Some(&b"9.9.9.9"[..]));
    }

    #[test]
    fn syslog_headers_before_the_pairs_are_skipped() {
        for header in [
            "Dec 22 14:15:18 fg200d ",
            "2020-08-10T11:00:00+03:00 172.2.3.3 ",
            "<14>",
            "",
        ] {
            let l =
                format!("{header}date=2020-08-10 time=11:00:00 devname=\"fg200d\" action=\"deny\"");
            let (f, x) = get(&l);
            assert_eq!(f, Format::KeyValue, "{l}");
            assert_eq!(x.devname, Some(&b"fg200d"[..]), "{l}");
            assert_eq!(x.date, Some(&b"2020-08-10"[..]), "{l}");
        }
    }

    #[test]
    fn forwarded_and_cef_lines() {
        let (f, x) = get(
            r#"logver=700000000 timestamp=1793613600 tz="UTC+2:00" devname="FGT-B" devid="FGVM01" vd="root" type="event" subtype="system" action="login""#,
        );
        assert_eq!(f, Format::Forwarded);
        assert_eq!(x.timestamp, Some(&b"1793613600"[..]));
        assert_eq!(x.devid, Some(&b"FGVM01"[..]));
        let (f, x) = get(
            "Dec 27 11:07:25 FGT-C CEF:0|Fortinet|Fortigate|v6.0.3|00013|traffic:forward close|3|deviceExternalId=FGT5HD3915800610 FTNTFGTlogid=0000000013 cat=traffic:forward FTNTFGTsubtype=forward FTNTFGTlevel=notice FTNTFGTvd=vdom1 FTNTFGTeventtime=1545927387 src=10.1.100.11 spt=54190 dst=52.53.140.235 act=close msg=a message with spaces and a\\=b dvchost=FGT-C",
        );
        assert_eq!(f, Format::Cef);
        assert_eq!(x.devid, Some(&b"FGT5HD3915800610"[..]));
        assert_eq!(x.devname, Some(&b"FGT-C"[..]));
        assert_eq!(x.action, Some(&b"close"[..]));
        assert_eq!(x.srcip, Some(&b"10.1.100.11"[..]));
        assert_eq!(x.dstip, Some(&b"52.53.140.235"[..]));
        assert_eq!(x.eventtime, Some(&b"1545927387"[..]));
        assert_eq!(x.vd, Some(&b"vdom1"[..]));
        assert_eq!(x.log_type, Some(&b"traffic"[..]));
        assert_eq!(x.subtype, Some(&b"forward"[..]));
    }

    #[test]
    fn a_key_value_line_that_mentions_cef_stays_key_value() {
        let (f, x) =
            get(r#"devname="a" msg="forwarded as CEF:0|x|y|z|1|n|3|act=deny" action="pass""#);
        assert_eq!(f, Format::KeyValue);
        assert_eq!(x.action, Some(&b"pass"[..]));
    }

    #[test]
    fn garbage_and_cut_lines_never_panic() {
        assert_eq!(line(b""), None);
        assert_eq!(line(b"\x00\xff\xfe binary junk"), None);
        assert!(line(b"date=2026-11-02 devname=\"cut in the mid").is_some());
        assert!(line(b"devname=\"a\\").is_some());
        assert!(line(b"<189").is_none());
        assert!(line(b"CEF:0|broken").is_none());
        assert!(line(b"a= b== =c \"=\" k=\"").is_some());
    }

    /// Scanning is linear in the line, whatever it holds: a line of a
    /// thousand `<` words and open quotes is read in one pass.
    #[test]
    fn hostile_lines_cost_their_length() {
        let hostile = "<a ".repeat(20_000) + &"k=\\\"".repeat(5_000);
        let started = std::time::Instant::now();
        for _ in 0..10 {
            let _ = line(hostile.as_bytes());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    proptest::proptest! {
        /// Whatever the bytes, the scanner returns (it is fed every line of
        /// every archive, and a panic would lose an upload).
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = line(&bytes);
        }
    }
}
