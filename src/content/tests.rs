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
    for chunk in long.as_bytes().chunks(1000) {
        ix.feed(chunk);
    }
    for n in 0..(MAX_FACETS + 50) {
        ix.feed(format!("devname=\"d{n}\" action=\"deny\"\n").as_bytes());
    }
    let ix = ix.finish();
    assert_eq!(ix.summary.lines, MAX_FACETS as u64 + 51);
    assert!(ix.facets.len() <= MAX_FACETS + 1);
    let more = ix
        .facets
        .iter()
        .find(|(k, _)| k.action == "(more)")
        .expect("overflow row");
    assert_eq!(more.1.lines, 51, "every line past the cap is still counted");
}
