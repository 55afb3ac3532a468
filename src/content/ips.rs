//! Which IP addresses an archive holds in `srcip`/`dstip`: a Bloom filter
//! that never answers "absent" for an address it was given, sized from the
//! compressed archive so it stays within 2% of it (issue 21).
//!
//! Why a Bloom filter and not an exact set: traffic logs hold many distinct
//! addresses (840k per GB of log in FORTIGATE-LOGS.md's test), and an exact
//! list (4 or 16 bytes each) is 5-10× the 2% budget there, while the filter
//! costs what the budget allows whatever the count: more addresses only
//! raise its false "maybe" rate, never lose one. The hashes are fixed
//! (no per-process seed), so a filter written by one box is read by another.
//!
//! An archive with few addresses should not pay the whole budget: the
//! filter has a power-of-two size, and [`IpFilter::compact`] folds it in
//! half (bit `i` or bit `i + n/2`: a position taken modulo `n` and then
//! modulo `n/2` is the position modulo `n/2`) while it stays sparse.

use std::net::IpAddr;

/// Hash functions per address: near the best for ~10 bits per address.
const HASHES: u32 = 7;
/// The smallest filter (a tiny archive still gets a useful one).
const MIN_BITS: u64 = 4096;
/// The largest filter: 2% of a 1 GiB archive.
const MAX_BITS: u64 = 8 * 20 * 1024 * 1024;

/// A Bloom filter of IP addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpFilter {
    bits: Vec<u64>,
}

impl IpFilter {
    /// A filter using at most 2% of `archive_bytes` (the compressed size),
    /// a power of two of bits (so that [`IpFilter::compact`] can halve it).
    pub fn for_archive(archive_bytes: u64) -> IpFilter {
        let budget = (archive_bytes / 50 * 8).clamp(MIN_BITS, MAX_BITS);
        let bits = 1u64 << (63 - budget.leading_zeros());
        IpFilter {
            bits: vec![0; (bits / 64) as usize],
        }
    }

    /// Folds the filter in half while the result stays sparse (at most a
    /// fifth of its bits set, a false "maybe" rate under 1 in 75,000):
    /// an archive with few addresses stores a small filter.
    pub fn compact(&mut self) {
        while self.bits.len().is_multiple_of(2) && self.bits.len() as u64 * 64 > MIN_BITS {
            let half = self.bits.len() / 2;
            // Counted before anything is allocated: a dense filter stays as it is.
            let set: u64 = (0..half)
                .map(|i| u64::from((self.bits[i] | self.bits[i + half]).count_ones()))
                .sum();
            if set * 5 > half as u64 * 64 {
                break;
            }
            for i in 0..half {
                self.bits[i] |= self.bits[i + half];
            }
            self.bits.truncate(half);
            self.bits.shrink_to_fit();
        }
    }

    /// The filter as stored: its words, little-endian.
    #[cfg(any(test, not(target_endian = "little")))]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bits.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// [`IpFilter::to_bytes`] without a copy where the words already are
    /// little-endian in memory: a big archive's filter is 2% of it (16 MiB
    /// for 1 GiB), and every copy of it counts in the uploader's memory.
    pub fn as_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        #[cfg(target_endian = "little")]
        {
            // SAFETY: a u64 slice is valid as bytes: same memory, 8 bytes
            // per word, no padding, alignment of u8 is 1; on little-endian
            // targets those bytes are the words' little-endian form.
            let bytes = unsafe {
                std::slice::from_raw_parts(self.bits.as_ptr().cast::<u8>(), self.bits.len() * 8)
            };
            std::borrow::Cow::Borrowed(bytes)
        }
        #[cfg(not(target_endian = "little"))]
        {
            std::borrow::Cow::Owned(self.to_bytes())
        }
    }

    /// A filter read back; `None` unless `bytes` is whole words, at least one.
    pub fn from_bytes(bytes: &[u8]) -> Option<IpFilter> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
            return None;
        }
        let bits = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        Some(IpFilter { bits })
    }

    /// Its size in bytes, as stored.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bits.len() * 8
    }

    /// The share of bits set: the false "maybe" rate is about this to the
    /// power of the hash count.
    #[cfg(test)]
    pub fn fill(&self) -> f64 {
        let set: u64 = self.bits.iter().map(|w| u64::from(w.count_ones())).sum();
        set as f64 / (self.bits.len() as f64 * 64.0)
    }

    /// Adds the address written in `text` (`10.1.2.3`, `2001:db8::1`);
    /// anything else is not an address and is ignored.
    pub fn insert_text(&mut self, text: &[u8]) {
        if let Some(ip) = parse(text) {
            self.insert(ip);
        }
    }

    pub fn insert(&mut self, ip: IpAddr) {
        let n = self.bits.len() as u64 * 64;
        for bit in positions(ip, n) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// `false` only when `ip` was never inserted; `true` may be a false
    /// "maybe", which `grep` settles by reading the archive.
    pub fn may_contain(&self, ip: IpAddr) -> bool {
        let n = self.bits.len() as u64 * 64;
        positions(ip, n).all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

/// An address as text, IPv4 or IPv6; `None` otherwise. Dotted quads, most
/// of a log's addresses, are read here byte by byte (as the standard
/// parser reads them: 1 to 3 digits, no leading zero, at most 255);
/// anything else goes to the standard parser.
pub fn parse(text: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = dotted_quad(text) {
        return Some(IpAddr::V4(v4));
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn dotted_quad(text: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        let mut n: u16 = 0;
        for &d in p {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u16::from(d - b'0');
        }
        *o = u8::try_from(n).ok()?;
    }
    parts
        .next()
        .is_none()
        .then(|| std::net::Ipv4Addr::from(octets))
}

/// The filter's bit positions for `ip` among `n` bits (double hashing).
/// IPv4 and its IPv6-mapped form are one address.
fn positions(ip: IpAddr, n: u64) -> impl Iterator<Item = u64> {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let word = u128::from(v6);
    let h1 = mix((word >> 64) as u64 ^ mix(word as u64));
    let h2 = mix(h1 ^ 0x9e37_79b9_7f4a_7c15) | 1;
    (0..u64::from(HASHES)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % n)
}

/// splitmix64's finaliser: a fixed, well-mixing 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    // docs/SAFETY.md S32
    #[test]
    fn never_absent_for_an_inserted_address_and_rarely_maybe_for_others() {
        // A 4 MiB archive: an 80 KiB filter, 655,360 bits; 65,536 addresses
        // (10 bits each) of a /16.
        let mut f = IpFilter::for_archive(4 << 20);
        for n in 0..65_536u32 {
            f.insert(v4(0x0a01_0000 + n));
        }
        for n in 0..65_536u32 {
            assert!(f.may_contain(v4(0x0a01_0000 + n)), "{n}");
        }
        let maybe = (0..100_000u32)
            .filter(|n| f.may_contain(v4(0xc0a8_0000 + n)))
            .count();
        assert!(maybe < 3_000, "false maybe rate {maybe} in 100,000");
    }

    #[test]
    fn text_ipv6_and_mapped_forms() {
        let mut f = IpFilter::for_archive(0);
        assert_eq!(f.bytes(), (MIN_BITS / 8) as usize);
        f.insert_text(b"2001:db8::1");
        f.insert_text(b"10.1.2.3");
        f.insert_text(b"not-an-ip");
        f.insert_text(b"\xff\xfe");
        assert!(f.may_contain(parse(b"2001:db8::1").unwrap()));
        assert!(f.may_contain(IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | 1))));
        assert!(f.may_contain(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
        assert!(
            f.may_contain(mapped),
            "IPv4 and its mapped form are one address"
        );
    }

    /// The fast path reads dotted quads exactly as the standard parser
    /// does, and leaves everything else to it.
    #[test]
    fn dotted_quads_parse_like_the_standard_parser() {
        for t in [
            "10.1.2.3",
            "255.255.255.255",
            "0.0.0.0",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1..2.3",
            "1.2.3.4 ",
            "a.b.c.d",
            "::ffff:1.2.3.4",
            "2001:db8::1",
            "",
            "1.2.3.-4",
            "999.1.1.1",
            "1.2.3.0400",
        ] {
            let std: Option<IpAddr> = t.parse().ok();
            assert_eq!(parse(t.as_bytes()), std, "{t}");
        }
    }

    #[test]
    fn the_fill_says_how_sure_a_maybe_is() {
        let mut f = IpFilter::for_archive(0);
        assert_eq!(f.fill(), 0.0);
        f.insert(v4(1));
        assert_eq!(f.fill(), f64::from(HASHES) / MIN_BITS as f64);
    }

    // docs/SAFETY.md S32
    #[test]
    fn a_sparse_filter_folds_small_and_keeps_every_address() {
        let mut f = IpFilter::for_archive(64 << 20);
        assert_eq!(f.bytes(), 1 << 20, "a power of two within 2% of 64 MiB");
        for n in 0..1_000u32 {
            f.insert(v4(0x0a00_0000 + n * 7));
        }
        f.compact();
        // 1,000 addresses, 7 bits each: at most a fifth set means >= 35,000 bits.
        assert!(f.bytes() <= 8 << 10, "{} bytes", f.bytes());
        assert!(f.fill() <= 0.2, "{}", f.fill());
        for n in 0..1_000u32 {
            assert!(f.may_contain(v4(0x0a00_0000 + n * 7)), "{n}");
        }
        assert_eq!(f.as_bytes(), f.to_bytes());
        let back = IpFilter::from_bytes(&f.to_bytes()).unwrap();
        assert_eq!(back, f);
        assert_eq!(IpFilter::from_bytes(&[0; 7]), None);
        assert_eq!(IpFilter::from_bytes(&[]), None);
    }

    #[test]
    fn within_two_percent_of_the_archive() {
        for size in [1u64 << 20, 8 << 20, 100 << 20, 1 << 30] {
            let f = IpFilter::for_archive(size);
            assert!(f.bytes() as u64 <= size / 50 + 8, "{size}: {}", f.bytes());
        }
    }

    proptest::proptest! {
        /// Whatever the addresses and the size: every one inserted is "maybe".
        #[test]
        fn no_false_absent(addrs in proptest::collection::vec(proptest::num::u128::ANY, 1..500),
                           size in 0u64..(64 << 20)) {
            let mut f = IpFilter::for_archive(size);
            let ips: Vec<IpAddr> = addrs.iter().map(|a| IpAddr::V6(Ipv6Addr::from(*a))).collect();
            for ip in &ips {
                f.insert(*ip);
            }
            let whole = f.clone();
            f.compact();
            for ip in &ips {
                proptest::prop_assert!(whole.may_contain(*ip));
                proptest::prop_assert!(f.may_contain(*ip), "after folding");
            }
        }
    }
}
