//! Query strings: percent-decoding and typed parameters with errors that
//! name the parameter.

/// A query string that does not decode: a bad `%` escape or invalid UTF-8.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// In a parameter's name: the raw pair.
    Near(String),
    /// In the value of this (decoded) parameter.
    Value(String),
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Near(pair) => write!(f, "malformed query string near '{pair}'"),
            Malformed::Value(k) => write!(f, "malformed value for '{k}'"),
        }
    }
}

/// Decoded `key=value` pairs in order.
pub fn parse(query: &str) -> Result<Vec<(String, String)>, Malformed> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k).ok_or_else(|| Malformed::Near(pair.to_string()))?;
        let v = decode(v).ok_or_else(|| Malformed::Value(k.clone()))?;
        out.push((k, v));
    }
    Ok(out)
}

/// `%41+b` → `A b`; `None` for bad escapes or invalid UTF-8.
///
/// A `%` must be followed by exactly two hex digits: `u8::from_str_radix`
/// alone also takes a sign, so `%+1` used to decode to byte 0x01.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_digit(*bytes.get(i + 1)?)?;
                let lo = hex_digit(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of one hex digit, upper or lower case.
fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Percent-encodes a value for a link we hand back (the `next` page).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/SAFETY.md S20
    #[test]
    fn decodes_and_rejects() {
        assert_eq!(
            parse("a=1&b=x%20y&c=&d").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "".into()),
                ("d".into(), "".into())
            ]
        );
        assert!(parse("a=%zz").is_err());
        assert!(parse("a=%e2%28").is_err());
        assert_eq!(encode("a b/ç"), "a%20b%2F%C3%A7");
    }

    #[test]
    fn signs_are_not_hex_digits() {
        for bad in ["%+1", "%-1", "%+f", "% 1", "%1", "%", "%%41", "%é1"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(decode("%4a%4A").as_deref(), Some("JJ"));
    }

    /// True when some `%` in `s` is not followed by two hex digits: written
    /// independently of `decode`, byte by byte.
    fn has_bad_escape(s: &str) -> bool {
        let b = s.as_bytes();
        (0..b.len()).any(|i| {
            b[i] == b'%'
                && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        })
    }

    proptest::proptest! {
        #[test]
        fn encode_then_decode_gives_the_value_back(key in "[a-z_]{1,12}", value in ".*") {
            proptest::prop_assert_eq!(decode(&encode(&value)), Some(value.clone()));
            let query = format!("{key}={}&other=1", encode(&value));
            proptest::prop_assert_eq!(
                parse(&query),
                Ok(vec![(key, value), ("other".to_string(), "1".to_string())])
            );
        }

        #[test]
        fn never_panics_on_any_input(query in ".*") {
            let _ = parse(&query);
        }

        #[test]
        fn never_panics_on_escape_like_input(query in "([a-z=&+%]|%[0-9a-fA-F+-]{0,2}|%[^0-9a-fA-F])*") {
            let _ = parse(&query);
        }

        #[test]
        fn every_bad_escape_is_rejected(
            head in "[a-z%0-9A-F]{0,8}",
            after in proptest::option::of("[^0-9a-fA-F]"),
            digit in proptest::option::of("[0-9a-fA-F]"),
            tail in ".{0,8}",
        ) {
            // '%', then at most one hex digit, then a non-hex character or the end.
            let s = format!(
                "{head}%{}{}{tail}",
                digit.unwrap_or_default(),
                after.unwrap_or_default()
            );
            if has_bad_escape(&s) {
                let query = format!("k={s}");
                proptest::prop_assert_eq!(decode(&s), None, "{}", s);
                proptest::prop_assert!(parse(&query).is_err(), "{}", query);
            }
        }

        #[test]
        fn decoding_succeeds_only_without_bad_escapes(s in "([a-z+%]|%[0-9a-fA-F]{2}|%[0-9a-zA-Z+ -]{0,2})*") {
            if decode(&s).is_some() {
                proptest::prop_assert!(!has_bad_escape(&s), "{}", s);
            }
        }
    }
}
