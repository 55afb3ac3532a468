//! Env files (`/etc/default/backup_fg`, `--env-file`) read the way systemd's
//! `EnvironmentFile=` reads them, so `doctor` sees the same variables the
//! service gets: `#`/`;` comment lines, blank lines, an optional `export `,
//! whitespace around `=`, single quotes (literal), double quotes (with `\"`,
//! `\\`, `` \` `` and `\$` escapes), backslash escapes outside quotes, and
//! trailing whitespace of an unquoted value dropped.
//!
//! One line at a time: a value that systemd would continue onto the next
//! line (an open quote, a trailing backslash) ends at the end of its line.
//! That is enough to know which variables a file sets; values are only
//! compared, never shown.

use std::fmt;

/// `KEY=VALUE` from one line. `Debug` shows the key only: values are secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    pub value: String,
}

impl fmt::Debug for Assignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Assignment({}=<{} chars>)",
            self.key,
            self.value.chars().count()
        )
    }
}

/// Whitespace as systemd's parser knows it, within a line.
const BLANKS: [char; 2] = [' ', '\t'];

/// The assignment on `line`, or `None` for a comment, a blank line, a line
/// without `=` and an invalid name (systemd ignores those too).
pub fn parse_line(line: &str) -> Option<Assignment> {
    // systemd ends a line at '\r' as well as '\n'.
    let line = line.split(['\r', '\n']).next().unwrap_or("");
    let body = line.trim_start_matches(BLANKS);
    if body.starts_with(['#', ';']) {
        return None;
    }
    let (raw_key, raw_value) = body.split_once('=')?;
    let key = raw_key.trim_end_matches(BLANKS);
    let key = key
        .strip_prefix("export")
        .filter(|rest| rest.starts_with(BLANKS))
        .map_or(key, |rest| rest.trim_start_matches(BLANKS));
    valid_name(key).then(|| Assignment {
        key: key.to_string(),
        value: parse_value(raw_value),
    })
}

/// Every assignment of a file's text, in order.
pub fn parse(text: &str) -> Vec<Assignment> {
    text.split(['\r', '\n']).filter_map(parse_line).collect()
}

/// A shell variable name: a letter or `_`, then letters, digits or `_`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where the value parser is, as in systemd's `parse_env_file_internal`.
#[derive(Clone, Copy)]
enum State {
    /// Before a value or between quoted parts: blanks are skipped.
    Pre,
    Plain,
    PlainEscape,
    Single,
    Double,
    DoubleEscape,
}

/// The value after `=`: quoted parts and plain text may follow each other
/// (`"a"'b'c` is `abc`); a plain tail loses its trailing blanks.
fn parse_value(raw: &str) -> String {
    let mut out = String::new();
    // Start of the trailing blanks of the plain tail, if any.
    let mut blanks_from: Option<usize> = None;
    let mut state = State::Pre;
    for c in raw.chars() {
        state = match (state, c) {
            (State::Pre, '\'') => State::Single,
            (State::Pre, '"') => State::Double,
            (State::Pre, '\\') | (State::Plain, '\\') => {
                blanks_from = None;
                State::PlainEscape
            }
            (State::Pre, c) if BLANKS.contains(&c) => State::Pre,
            (State::Pre | State::Plain | State::PlainEscape, c) => {
                if !BLANKS.contains(&c) || matches!(state, State::PlainEscape) {
                    blanks_from = None;
                } else if blanks_from.is_none() {
                    blanks_from = Some(out.len());
                }
                out.push(c);
                State::Plain
            }
            (State::Single, '\'') | (State::Double, '"') => State::Pre,
            (State::Single, c) => {
                out.push(c);
                State::Single
            }
            (State::Double, '\\') => State::DoubleEscape,
            (State::Double, c) => {
                out.push(c);
                State::Double
            }
            (State::DoubleEscape, c) => {
                // Like the shell: only these lose their backslash.
                if !matches!(c, '"' | '\\' | '`' | '$') {
                    out.push('\\');
                }
                out.push(c);
                State::Double
            }
        };
    }
    if let Some(at) = blanks_from {
        out.truncate(at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kv(line: &str) -> Option<(String, String)> {
        parse_line(line).map(|a| (a.key, a.value))
    }

    fn some(k: &str, v: &str) -> Option<(String, String)> {
        Some((k.to_string(), v.to_string()))
    }

    // docs/SAFETY.md S30
    #[test]
    fn systemd_forms() {
        assert_eq!(kv("A=b"), some("A", "b"));
        assert_eq!(kv("  export  A = b c  "), some("A", "b c"));
        assert_eq!(kv("A='x \"y\" \\n'"), some("A", "x \"y\" \\n"));
        assert_eq!(kv(r#"A="x \"y\" \$z \n""#), some("A", r#"x "y" $z \n"#));
        assert_eq!(kv(r#"A="a"'b'c"#), some("A", "abc"));
        assert_eq!(kv(r"A=a\ "), some("A", "a "));
        assert_eq!(kv("A=a#b"), some("A", "a#b"), "no comments after a value");
        assert_eq!(kv("A="), some("A", ""));
        assert_eq!(kv("export=1"), some("export", "1"));
        assert_eq!(kv("A=b\r"), some("A", "b"));
        for ignored in [
            "# A=b",
            "  ; A=b",
            "",
            "   ",
            "no equals",
            "1A=b",
            "A B=c",
            "=x",
        ] {
            assert_eq!(kv(ignored), None, "{ignored:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_value() {
        let a = parse_line("GMAIL_APP_PASSWORD=hunter2-zz").unwrap();
        assert!(!format!("{a:?}").contains("hunter2"), "{a:?}");
    }

    /// Values as they appear in env files: any characters but line ends.
    fn value() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range(' ', '~'),
                1 => Just('\t'),
                1 => any::<char>().prop_filter("one line", |c| *c != '\n' && *c != '\r'),
            ],
            0..40,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    /// `value` written so systemd reads it back unchanged, in one of three styles.
    fn encode(value: &str, style: u8) -> String {
        match style {
            0 => value
                .chars()
                .map(|c| match c {
                    ' ' | '\t' | '\\' | '"' | '\'' => format!("\\{c}"),
                    c => c.to_string(),
                })
                .collect(),
            1 if !value.contains('\'') => format!("'{value}'"),
            _ => {
                let escaped: String = value
                    .chars()
                    .map(|c| match c {
                        '"' | '\\' | '`' | '$' => format!("\\{c}"),
                        c => c.to_string(),
                    })
                    .collect();
                format!("\"{escaped}\"")
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics(line in any::<String>()) {
            if let Some(a) = parse_line(&line) {
                prop_assert!(valid_name(&a.key));
            }
            let _ = parse(&line);
        }

        #[test]
        fn key_value_lines_round_trip(
            key in "[A-Za-z_][A-Za-z0-9_]{0,30}",
            value in value(),
            style in 0u8..3,
            lead in "[ \t]{0,3}",
            export in any::<bool>(),
            before_eq in "[ \t]{0,2}",
            after_eq in "[ \t]{0,2}",
        ) {
            let export = if export { "export " } else { "" };
            let line = format!("{lead}{export}{key}{before_eq}={after_eq}{}", encode(&value, style));
            prop_assert_eq!(kv(&line), Some((key, value)), "line {:?}", line);
        }

        #[test]
        fn comment_lines_yield_nothing(
            lead in "[ \t]{0,3}",
            mark in prop_oneof![Just('#'), Just(';')],
            rest in any::<String>(),
        ) {
            let rest = rest.split(['\r', '\n']).next().unwrap_or("").to_string();
            prop_assert_eq!(kv(&format!("{lead}{mark}{rest}")), None);
        }
    }
}
