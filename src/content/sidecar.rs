//! The index of one archive as an object beside it in the store (its
//! "sidecar"), so that any machine that can read the bucket rebuilds a
//! search index with `reindex --content` from a few bytes per archive
//! instead of reading every archive back: one indexer per site writes
//! them, a central box searches the fleet.
//!
//! Layout: a first line naming the format, a line of JSON (what archive it
//! describes, the summary, the facets, the IP filter's length), then the IP
//! filter's bytes. The JSON names the archive's SHA-256 and size: a reader
//! takes a sidecar only for the very bytes its inventory says are archived
//! (a sidecar left from an object pruned and written again says other
//! bytes, and is not taken).
//!
//! Anyone who can write the bucket can write a sidecar, as they can write
//! an object's metadata: `reindex --content --read-objects` ignores them
//! and reads every archive (docs/SAFETY.md S32).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ips::IpFilter;
use super::scan::Format;
use super::when::Unit;
use super::{FacetCount, FacetKey, Index, Summary};

/// The first line of every sidecar this build writes.
const MAGIC: &[u8] = b"fgbackup-index-1\n";

/// The archive a sidecar describes, and what it says of it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    key: String,
    sha256: String,
    size: u64,
    summary: Sum,
    /// `[day, devid, devname, vd, type, subtype, action, lines, first, last]`.
    facets: Vec<Facet>,
    ips_bytes: usize,
}

type Facet = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    u64,
    Option<i64>,
    Option<i64>,
);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sum {
    format: Option<String>,
    unit: Option<String>,
    first: Option<i64>,
    last: Option<i64>,
    lines: u64,
    bytes: u64,
    unparsed: u64,
    without_time: u64,
}

/// The largest sidecar read for an archive of `size` bytes: its IP filter
/// stays within 2% of the archive, its facets within a few MiB.
pub fn max_bytes(size: u64) -> u64 {
    size / 50 + 8 * 1024 * 1024
}

/// The sidecar of the archive at `key` holding `sha256` (`size` bytes),
/// whose whole index is `index`.
pub fn encode(key: &str, sha256: &str, size: u64, index: &Index) -> Vec<u8> {
    let s = &index.summary;
    let ips = index.ips.as_bytes();
    let head = Head {
        key: key.to_string(),
        sha256: sha256.to_string(),
        size,
        summary: Sum {
            format: s.format.map(|f| f.as_str().to_string()),
            unit: s.unit.map(|u| u.as_str().to_string()),
            first: s.first,
            last: s.last,
            lines: s.lines,
            bytes: s.bytes,
            unparsed: s.unparsed,
            without_time: s.without_time,
        },
        facets: index
            .facets
            .iter()
            .map(|(k, c)| {
                (
                    k.day.clone(),
                    k.devid.clone(),
                    k.devname.clone(),
                    k.vd.clone(),
                    k.log_type.clone(),
                    k.subtype.clone(),
                    k.action.clone(),
                    c.lines,
                    c.first,
                    c.last,
                )
            })
            .collect(),
        ips_bytes: ips.len(),
    };
    // Serializing plain strings and numbers cannot fail.
    let json = serde_json::to_vec(&head).unwrap_or_default();
    let mut out = Vec::with_capacity(MAGIC.len() + json.len() + 1 + ips.len());
    out.extend_from_slice(MAGIC);
    out.extend(json);
    out.push(b'\n');
    out.extend_from_slice(&ips);
    out
}

/// The index a sidecar holds, if it is one and describes the archive at
/// `key` holding `sha256` in `size` bytes; otherwise why not.
pub fn decode(bytes: &[u8], key: &str, sha256: &str, size: u64) -> Result<Index, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not an index sidecar of this format")?;
    let end = memchr::memchr(b'\n', rest).ok_or("its description is cut")?;
    let head: Head =
        serde_json::from_slice(&rest[..end]).map_err(|e| format!("unreadable description: {e}"))?;
    if (head.key.as_str(), head.sha256.as_str(), head.size) != (key, sha256, size) {
        return Err(format!(
            "it describes {} with sha256 {} ({} bytes), not the archived object",
            head.key, head.sha256, head.size
        ));
    }
    let ips = &rest[end + 1..];
    if ips.len() != head.ips_bytes {
        return Err(format!(
            "its IP filter has {} bytes, {} announced",
            ips.len(),
            head.ips_bytes
        ));
    }
    let ips = IpFilter::from_bytes(ips).ok_or("its IP filter is malformed")?;
    let summary = summary(head.summary)?;
    let mut facets = BTreeMap::new();
    for f in head.facets {
        let k = FacetKey {
            day: f.0,
            devid: f.1,
            devname: f.2,
            vd: f.3,
            log_type: f.4,
            subtype: f.5,
            action: f.6,
        };
        let c = FacetCount {
            lines: f.7,
            first: f.8,
            last: f.9,
        };
        if facets.insert(k, c).is_some() {
            return Err("a facet is listed twice".into());
        }
    }
    Ok(Index {
        summary,
        facets,
        ips,
    })
}

fn summary(s: Sum) -> Result<Summary, String> {
    let format = match s.format.as_deref() {
        None => None,
        Some(name) => Some(
            [Format::KeyValue, Format::Forwarded, Format::Cef]
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| format!("unknown format {name:?}"))?,
        ),
    };
    let unit = match s.unit.as_deref() {
        None => None,
        Some(name) => Some(
            [Unit::Seconds, Unit::Millis, Unit::Micros, Unit::Nanos]
                .into_iter()
                .find(|u| u.as_str() == name)
                .ok_or_else(|| format!("unknown eventtime unit {name:?}"))?,
        ),
    };
    Ok(Summary {
        format,
        unit,
        first: s.first,
        last: s.last,
        lines: s.lines,
        bytes: s.bytes,
        unparsed: s.unparsed,
        without_time: s.without_time,
        overlong: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Indexer;
    use std::io::Write;

    fn index() -> Index {
        let mut ix = Indexer::for_archive(10_000);
        ix.write_all(b"<189>date=2026-03-03 time=01:02:03 devname=\"FGT-A\" devid=\"FG1\" eventtime=1772499723 type=\"traffic\" subtype=\"forward\" vd=\"root\" srcip=10.1.2.3 dstip=2001:db8::1 action=\"deny\"\nCEF:0|Fortinet|Fortigate|7.2|1|x|5|rt=1772499724000 dvchost=FGT-B act=accept src=10.9.9.9\ngarbage\n")
            .unwrap();
        ix.finish()
    }

    /// What is written is read back whole, for the archive it names only.
    #[test]
    fn a_sidecar_gives_back_its_index_for_its_archive_only() {
        let ix = index();
        assert_eq!(ix.facets.len(), 2);
        let bytes = encode("site/a.log.gz", "ab12", 10_000, &ix);
        assert_eq!(decode(&bytes, "site/a.log.gz", "ab12", 10_000), Ok(ix));
        for (key, sha, size) in [
            ("site/b.log.gz", "ab12", 10_000),
            ("site/a.log.gz", "ab13", 10_000),
            ("site/a.log.gz", "ab12", 10_001),
        ] {
            let e = decode(&bytes, key, sha, size).unwrap_err();
            assert!(e.contains("not the archived object"), "{e}");
        }
    }

    /// Cut, padded or edited sidecars are refused, never taken in part.
    #[test]
    fn a_damaged_sidecar_is_refused() {
        let bytes = encode("k", "s", 1, &index());
        let ok = |b: &[u8]| decode(b, "k", "s", 1).is_ok();
        assert!(ok(&bytes));
        assert!(!ok(&bytes[..bytes.len() - 8]));
        assert!(!ok(&[&bytes[..], &[0u8; 8]].concat()));
        assert!(!ok(&bytes[1..]));
        let text = String::from_utf8_lossy(&bytes).replace("\"lines\"", "\"linez\"");
        assert!(!ok(text.as_bytes()));
        for cut in [0, 5, MAGIC.len(), MAGIC.len() + 10] {
            assert!(!ok(&bytes[..cut]), "{cut}");
        }
    }
}
