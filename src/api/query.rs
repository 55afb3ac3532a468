//! Query strings: percent-decoding and typed parameters with errors that
//! name the parameter.

/// Decoded `key=value` pairs in order.
pub fn parse(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k).ok_or_else(|| format!("malformed query string near '{pair}'"))?;
        let v = decode(v).ok_or_else(|| format!("malformed value for '{k}'"))?;
        out.push((k, v));
    }
    Ok(out)
}

/// `%41+b` → `A b`; `None` for bad escapes or invalid UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
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
}
