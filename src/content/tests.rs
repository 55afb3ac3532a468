//! The golden fixture: one small archive with every case the scanner must
//! read, and counts written by hand.

use super::*;

/// 2026-11-02 13:00:00 UTC.
const T: i64 = 1_793_624_400;

/// One line per case; the comment says what each must give.
const FIXTURE: &str = concat!(
    // 1: eventtime in seconds, quoted values (FortiOS 5.6+), deny.
    "<189>date=2026-11-02 time=10:00:00 devname=\"FGT-A\" devid=\"FG1\" eventtime=1793624400 tz=\"-0300\" type=\"traffic\" subtype=\"forward\" vd=\"root\" srcip=10.1.2.3 dstip=8.8.8.8 action=\"deny\"\n",
    // 2: milliseconds, same facet as 1, one second later.
    "<189>date=2026-11-02 time=10:00:01 devname=\"FGT-A\" devid=\"FG1\" eventtime=1793624401000 tz=\"-0300\" type=\"traffic\" subtype=\"forward\" vd=\"root\" srcip=10.1.2.4 dstip=8.8.4.4 action=\"deny\"\n",
    // 3: microseconds, unquoted values (older FortiOS), accept.
    "date=2026-11-02 time=10:00:02 devname=FGT-A devid=FG1 eventtime=1793624402000000 tz=-0300 type=traffic subtype=forward vd=root srcip=10.1.2.5 dstip=1.1.1.1 action=accept\n",
    // 4: nanoseconds behind an RFC 3164 syslog header.
    "Nov  2 10:00:03 FGT-A date=2026-11-02 time=10:00:03 devname=\"FGT-A\" devid=\"FG1\" eventtime=1793624403000000000 tz=\"-0300\" type=\"traffic\" subtype=\"forward\" vd=\"root\" action=\"accept\"\n",
    // 5: a url= that embeds action= and srcip=: the real action is blocked.
    "2026-11-02T10:00:04-03:00 10.0.0.1 date=2026-11-02 time=10:00:04 devname=\"FGT-A\" devid=\"FG1\" eventtime=1793624404 tz=\"-0300\" type=\"utm\" subtype=\"webfilter\" vd=\"root\" url=\"/x?action=accept&srcip=6.6.6.6 \\\"type=event\\\"\" srcip=10.1.2.6 action=\"blocked\"\n",
    // 6: forwarded by FortiAnalyzer: timestamp, no eventtime, another device.
    "logver=700000000 timestamp=1793624405 tz=\"UTC+2:00\" devname=\"FGT-B\" devid=\"FG2\" vd=\"root\" type=\"event\" subtype=\"system\" action=\"login\"\n",
    // 7: CEF, eventtime in seconds, next UTC day.
    "CEF:0|Fortinet|Fortigate|v7.2.0|00013|traffic:forward close|3|deviceExternalId=FG3 cat=traffic:forward FTNTFGTvd=root FTNTFGTeventtime=1793664000 src=10.9.9.9 dst=9.9.9.9 act=close dvchost=FGT-C\n",
    // 8: no time at all (no eventtime, no date).
    "devname=\"FGT-A\" devid=\"FG1\" type=\"event\" subtype=\"system\" vd=\"root\" action=\"logout\"\n",
    // 9: binary garbage.
    "\u{1}\u{2}\u{7f} not a log line\n",
    // 10: a blank line.
    "\n",
    // 11: a line cut short by a crash: no line end, an open quote.
    "date=2026-11-02 time=10:00:06 devname=\"FGT-A\" devid=\"FG1\" eventtime=1793624406 tz=\"-0300\" type=\"traffic\" subtype=\"forward\" vd=\"root\" action=\"dea",
);

fn index_in_chunks(n: usize) -> Index {
    let mut ix = Indexer::default();
    for chunk in FIXTURE.as_bytes().chunks(n) {
        ix.feed(chunk);
    }
    ix.finish()
}

fn key(day: &str, devid: &str, devname: &str, t: &str, sub: &str, action: &str) -> FacetKey {
    FacetKey {
        day: day.into(),
        devid: devid.into(),
        devname: devname.into(),
        vd: if devid.is_empty() { "" } else { "root" }.into(),
        log_type: t.into(),
        subtype: sub.into(),
        action: action.into(),
    }
}

#[test]
fn the_golden_fixture_gives_the_summary_written_by_hand() {
    let ix = index_in_chunks(FIXTURE.len());
    let s = &ix.summary;
    assert_eq!(s.lines, 11);
    assert_eq!(s.bytes, FIXTURE.len() as u64);
    assert_eq!(s.unparsed, 2, "the garbage line and the blank one");
    assert_eq!(s.without_time, 1, "line 8");
    assert_eq!(s.first, Some(T));
    assert_eq!(
        s.last,
        Some(1_793_664_000),
        "the CEF line, 2026-11-03 00:00 UTC"
    );
    assert_eq!(s.format, Some(Format::KeyValue));
    assert_eq!(s.unit, Some(Unit::Seconds), "lines 1, 5, 7 and 11");
}

#[test]
fn the_golden_fixture_gives_the_facets_written_by_hand() {
    let ix = index_in_chunks(FIXTURE.len());
    let day = "2026-11-02";
    let want = [
        (
            key(day, "FG1", "FGT-A", "traffic", "forward", "deny"),
            2,
            T,
            T + 1,
        ),
        (
            key(day, "FG1", "FGT-A", "traffic", "forward", "accept"),
            2,
            T + 2,
            T + 3,
        ),
        (
            key(day, "FG1", "FGT-A", "traffic", "forward", "dea"),
            1,
            T + 6,
            T + 6,
        ),
        (
            key(day, "FG1", "FGT-A", "utm", "webfilter", "blocked"),
            1,
            T + 4,
            T + 4,
        ),
        (
            key(day, "FG2", "FGT-B", "event", "system", "login"),
            1,
            T + 5,
            T + 5,
        ),
        (
            key("2026-11-03", "FG3", "FGT-C", "traffic", "forward", "close"),
            1,
            1_793_664_000,
            1_793_664_000,
        ),
    ];
    for (k, lines, first, last) in &want {
        let got = ix
            .facets
            .get(k)
            .unwrap_or_else(|| panic!("no facet {k:?} in {:?}", ix.facets));
        assert_eq!(
            (got.lines, got.first, got.last),
            (*lines, Some(*first), Some(*last)),
            "{k:?}"
        );
    }
    let untimed = key("", "FG1", "FGT-A", "event", "system", "logout");
    assert_eq!(
        ix.facets.get(&untimed).map(|c| (c.lines, c.first)),
        Some((1, None))
    );
    assert_eq!(ix.facets.len(), want.len() + 1, "{:?}", ix.facets);
    assert!(
        !ix.facets
            .keys()
            .any(|k| k.action == "accept" && k.log_type == "utm"),
        "the url= text set no field"
    );
}

#[test]
fn the_golden_fixture_gives_the_addresses_it_holds() {
    let ix = index_in_chunks(FIXTURE.len());
    let ip = |t: &str| ips::parse(t.as_bytes()).expect("an address");
    for held in [
        "10.1.2.3", "8.8.8.8", "10.1.2.4", "8.8.4.4", "10.1.2.5", "1.1.1.1", "10.1.2.6",
        "10.9.9.9", "9.9.9.9",
    ] {
        assert!(ix.ips.may_contain(ip(held)), "{held} is in the archive");
    }
    assert!(
        !ix.ips.may_contain(ip("6.6.6.6")),
        "only inside a url= value"
    );
}

#[test]
fn chunk_boundaries_change_nothing() {
    let whole = index_in_chunks(FIXTURE.len());
    for n in [1, 2, 7, 64, 1000] {
        assert_eq!(index_in_chunks(n), whole, "chunks of {n}");
    }
}

#[test]
fn overlong_lines_and_facet_floods_stay_bounded() {
    let mut ix = Indexer::default();
    let long = format!(
        "devname=\"a\" action=\"deny\" msg=\"{}\"\n",
        "x".repeat(3 * MAX_LINE)
    );
    for chunk in long.as_bytes().chunks(64 * 1024) {
        ix.feed(chunk);
    }
    let flood = MAX_FACETS + MAX_DEVICE_OVERFLOWS + 50;
    for n in 0..flood {
        ix.feed(format!("devname=\"d{n}\" action=\"deny\"\n").as_bytes());
    }
    let ix = ix.finish();
    assert_eq!(ix.summary.lines, flood as u64 + 1);
    assert_eq!(ix.summary.overlong, 1);
    let incomplete = Indexed::new(ix.clone(), None::<&String>).incomplete;
    assert!(incomplete.unwrap().contains("over 1 MiB"));
    assert!(ix.facets.len() <= MAX_FACETS + MAX_DEVICE_OVERFLOWS + 1);
    let overflow: Vec<(&FacetKey, &FacetCount)> =
        ix.facets.iter().filter(|(k, _)| k.is_overflow()).collect();
    let lines: u64 = overflow.iter().map(|(_, c)| c.lines).sum();
    assert_eq!(
        lines,
        51 + MAX_DEVICE_OVERFLOWS as u64,
        "every line past the cap is still counted"
    );
    // Past the cap a device keeps its name (its overflow row), until the
    // device rows run out too; then one row for the day.
    assert!(
        overflow
            .iter()
            .any(|(k, _)| k.devname == format!("d{}", MAX_FACETS - 1))
    );
    let day_row = overflow.iter().find(|(k, _)| k.devname.is_empty()).unwrap();
    assert_eq!(day_row.1.lines, 51);
}

/// A line's time does not depend on where its keys stand, a year that
/// would not sort as text is no time, and CSV lines read like the default
/// format (hostile review of issue 21).
#[test]
fn times_do_not_depend_on_key_order_and_csv_reads() {
    let time = |l: &str| {
        let (_, f) = scan::line(l.as_bytes()).unwrap();
        line_time(&f).map(|(t, _)| t)
    };
    let rest = "devname=A devid=B vd=root type=traffic subtype=forward action=deny srcip=1.1.1.1 dstip=2.2.2.2";
    // An eventtime of 11 digits cannot be read: the date and time give it,
    // whether they come before the other keys or after them.
    let first = time(&format!(
        "date=2026-11-02 time=10:00:00 tz=+0000 eventtime=17936244001 {rest}"
    ));
    let last = time(&format!(
        "eventtime=17936244001 {rest} date=2026-11-02 time=10:00:00 tz=+0000"
    ));
    let ten_utc = crate::timefmt::days_from_civil(2026, 11, 2) * 86_400 + 10 * 3600;
    assert_eq!(first, Some(ten_utc));
    assert_eq!(
        last,
        Some(ten_utc),
        "the same time with date= and time= last"
    );
    assert_eq!(
        time(&format!("date=10000-01-01 time=10:00:00 {rest}")),
        None
    );
    let (_, csv) = scan::line(
        b"date=2026-11-02,time=10:00:00,devname=\"FGT, A\",devid=FG1,action=deny,srcip=10.0.0.1",
    )
    .unwrap();
    assert_eq!(csv.devname, Some(&b"FGT, A"[..]));
    assert_eq!(csv.action, Some(&b"deny"[..]));
    assert_eq!(csv.srcip, Some(&b"10.0.0.1"[..]));
}

/// Times before 1970 show as themselves, not as 1970.
#[test]
fn instants_before_1970() {
    assert_eq!(instant(-1), "1969-12-31T23:59:59Z");
    assert_eq!(instant(query::FIRST_SECOND), "0001-01-01T00:00:00Z");
    assert_eq!(instant(T), "2026-11-02T13:00:00Z");
}

proptest::proptest! {
    /// Whatever bytes an archive holds, in whatever chunks they come, the
    /// indexer neither panics (an upload thread would take the process
    /// down) nor depends on the chunking; every line is counted. The bytes
    /// are drawn from the characters logs are made of, so keys, quotes,
    /// escapes, separators and line ends meet often.
    #[test]
    fn any_bytes_in_any_chunks(
        picks in proptest::collection::vec(0usize..ALPHABET.len(), 0..2000),
        cut in 1usize..97,
    ) {
        let data: Vec<u8> = picks.iter().map(|&i| ALPHABET[i]).collect();
        let whole = {
            let mut ix = Indexer::for_archive(1 << 20);
            ix.feed(&data);
            ix.finish()
        };
        let mut ix = Indexer::for_archive(1 << 20);
        for c in data.chunks(cut) {
            ix.feed(c);
        }
        let chunked = ix.finish();
        proptest::prop_assert_eq!(&chunked, &whole);
        let lines = data.split(|&b| b == b'\n').count() as u64
            - u64::from(data.is_empty() || data.ends_with(b"\n"));
        proptest::prop_assert_eq!(whole.summary.lines, lines);
    }
}

/// What the fuzzed logs are made of.
const ALPHABET: &[u8] =
    b"=\"\\ ,\n\r<>:|-.0123456789abcdefCEFxtypeactiondevnamsrcipdtzvsubeventtimestamp\xff\x00";
