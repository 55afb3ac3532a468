//! The command line of one subcommand, read against its table of flags.
//!
//! Every word must be a flag the command takes (`--name VALUE`,
//! `--name=VALUE`, or a switch), so a typo fails at once with the nearest
//! flag suggested, instead of surfacing later as "unexpected argument". The
//! getters then combine flag, environment and default from the same table
//! entry, so an error can name both spellings (`--workers/WORKERS`).

use std::ffi::OsString;
use std::ops::RangeInclusive;

use super::specs;
use super::table::{Flag, Spec};

use crate::error::{Error, Result};

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    Default,
}

/// The flags given to one command, checked against its [`Spec`].
#[derive(Debug, Clone)]
pub struct Args {
    spec: &'static Spec,
    given: Vec<(&'static Flag, Option<String>)>,
}

/// The environment the settings read (the process's, or a test's).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Args {
    /// Reads `words` (what follows the subcommand) as flags of `spec`.
    pub fn parse(spec: &'static Spec, words: Vec<OsString>) -> Result<Args> {
        let mut given: Vec<(&'static Flag, Option<String>)> = Vec::new();
        let mut words = words.into_iter();
        // After `--`, the next word is the operand even if it starts with `-`.
        let mut operand_next = false;
        while let Some(word) = words.next() {
            let word = utf8(word, "an argument")?;
            if word == "--" && !operand_next {
                operand_next = true;
                continue;
            }
            if let Some(flag) = operand(spec, &word, operand_next, &given) {
                operand_next = false;
                given.push((flag, Some(word)));
                continue;
            }
            let (name, inline) = match word.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (word.as_str(), None),
            };
            let flag = find(spec, name)?;
            let value = match (flag.value, inline) {
                (None, Some(_)) => {
                    return Err(Error::usage(format!(
                        "{} takes no value: write it alone, e.g. 'fgbackup {} {}'",
                        flag.name, spec.name, flag.name
                    )));
                }
                (None, None) => None,
                (Some(_), Some(v)) => Some(v),
                (Some(meta), None) => match words.next() {
                    // `--prefix --dry-run`: the value is missing, not `--dry-run`.
                    Some(v) if is_flag_of(spec, &v) => {
                        return Err(Error::usage(format!(
                            "{} needs a value before {}: {} {meta}",
                            flag.name,
                            v.to_string_lossy(),
                            flag.name
                        )));
                    }
                    Some(v) => Some(utf8(v, flag.name)?),
                    None => {
                        return Err(Error::usage(format!(
                            "{} needs a value: {} {meta}",
                            flag.name, flag.name
                        )));
                    }
                },
            };
            if !flag.repeat && given.iter().any(|(f, _)| f.name == flag.name) {
                return Err(Error::usage(format!(
                    "{} is given twice: pass it once",
                    flag.name
                )));
            }
            given.push((flag, value));
        }
        Ok(Args { spec, given })
    }

    /// Parses literal words (unit tests).
    #[cfg(test)]
    pub fn words(spec: &'static Spec, words: &[&str]) -> Result<Args> {
        Args::parse(spec, words.iter().map(OsString::from).collect())
    }

    /// The command these flags were given to.
    pub fn spec(&self) -> &'static Spec {
        self.spec
    }

    /// `--name/ENV`, how errors name a setting.
    pub fn label(&self, flag: &Flag) -> String {
        match self.entry(flag).and_then(|f| f.env.first()) {
            Some(var) => format!("{}/{var}", flag.name),
            None => flag.name.to_string(),
        }
    }

    /// This command's table entry for `flag`; settings shared by several
    /// commands ask for flags some of them do not take, which then read as
    /// absent.
    fn entry(&self, flag: &Flag) -> Option<&'static Flag> {
        self.spec.flag(flag.name)
    }

    /// Whether switch (or flag) `flag` was given.
    pub fn flag(&self, flag: &Flag) -> bool {
        self.given.iter().any(|(f, _)| f.name == flag.name)
    }

    /// The value given to `flag` on the command line, if any.
    pub fn value(&self, flag: &Flag) -> Option<String> {
        self.given
            .iter()
            .find(|(f, _)| f.name == flag.name)
            .and_then(|(_, v)| v.clone())
    }

    /// Every value of a repeatable flag, in order.
    pub fn values(&self, flag: &Flag) -> Vec<String> {
        self.given
            .iter()
            .filter(|(f, _)| f.name == flag.name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// The flag's value, else its first environment variable that is set and
    /// not empty (systemd expands an unset `${VAR}` to an empty word), else
    /// its default, with where it came from.
    pub fn lookup(&self, flag: &Flag, env: Env) -> Option<(String, Source)> {
        if let Some(v) = self.value(flag) {
            return Some((v, Source::Flag));
        }
        let entry = self.entry(flag)?;
        for var in entry.env {
            if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
                return Some((v, Source::Env(var)));
            }
        }
        entry.default.map(|d| (d.to_string(), Source::Default))
    }

    /// [`Args::lookup`] without the source.
    pub fn get(&self, flag: &Flag, env: Env) -> Option<String> {
        self.lookup(flag, env).map(|(v, _)| v)
    }

    /// The setting read by `parse`; a value it rejects is a usage error
    /// `--name/ENV 'value' {expect}`.
    pub fn parse_with<T>(
        &self,
        flag: &Flag,
        env: Env,
        parse: impl Fn(&str) -> Option<T>,
        expect: &str,
    ) -> Result<Option<T>> {
        match self.get(flag, env) {
            None => Ok(None),
            Some(v) => parse(&v)
                .map(Some)
                .ok_or_else(|| Error::usage(format!("{} '{v}' {expect}", self.label(flag)))),
        }
    }

    /// [`Args::parse_with`], falling back on the default the flags table
    /// gives `flag` when the command does not take it: defaults live in the
    /// table alone, never in the code that reads them.
    pub fn parse_or_default<T>(
        &self,
        flag: &Flag,
        env: Env,
        parse: impl Fn(&str) -> Option<T>,
        expect: &str,
    ) -> Result<T> {
        if let Some(v) = self.parse_with(flag, env, &parse, expect)? {
            return Ok(v);
        }
        flag.default.and_then(&parse).ok_or_else(|| {
            Error::runtime(format!(
                "{} has no usable default in the flags table: give it a value",
                flag.name
            ))
        })
    }

    /// [`Args::number`] with the table's default (see [`Args::parse_or_default`]).
    pub fn number_or_default<T>(&self, flag: &Flag, env: Env, range: RangeInclusive<T>) -> Result<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let expect = format!(
            "must be a whole number from {} to {}",
            range.start(),
            range.end()
        );
        self.parse_or_default(
            flag,
            env,
            |v| v.trim().parse::<T>().ok().filter(|n| range.contains(n)),
            &expect,
        )
    }

    /// A switch that an environment variable may also set (`--delete` /
    /// `DELETE_AFTER=true`): `None` when neither says anything.
    pub fn switch_or_env(&self, flag: &Flag, env: Env) -> Result<Option<bool>> {
        if self.flag(flag) {
            return Ok(Some(true));
        }
        for var in self.entry(flag).map(|f| f.env).unwrap_or_default() {
            if let Some(v) = env(var) {
                return crate::units::parse_bool(&v).map(Some).ok_or_else(|| {
                    Error::usage(format!("{var}='{v}' is not a boolean: use true or false"))
                });
            }
        }
        Ok(None)
    }
}

fn utf8(word: OsString, what: &str) -> Result<String> {
    word.into_string().map_err(|w| {
        Error::usage(format!(
            "{what} is not valid UTF-8 ({}): use a UTF-8 path or name",
            w.to_string_lossy()
        ))
    })
}

/// Whether `word` is (or starts as `--name=`) a flag `spec` takes.
fn is_flag_of(spec: &Spec, word: &std::ffi::OsStr) -> bool {
    let word = word.to_string_lossy();
    let name = word.split_once('=').map_or(word.as_ref(), |(n, _)| n);
    spec.flags()
        .any(|f| f.name == name || f.short.is_some_and(|s| s == name))
}

/// The flag of `spec` called `name`, or an error suggesting the nearest one.
/// The flag `word` gives as the command's bare word (`grep PATTERN`): a
/// word not starting with `-` (or any word after `--`), when the command
/// takes one and has not had it yet.
fn operand(
    spec: &'static Spec,
    word: &str,
    after_dashes: bool,
    given: &[(&'static Flag, Option<String>)],
) -> Option<&'static Flag> {
    let flag = spec.flags().find(|f| f.operand)?;
    let fits = after_dashes || !word.starts_with('-');
    let taken = !flag.repeat && given.iter().any(|(f, _)| f.name == flag.name);
    (fits && !taken).then_some(flag)
}

fn find(spec: &'static Spec, name: &str) -> Result<&'static Flag> {
    if let Some(f) = spec
        .flags()
        .find(|f| f.name == name || f.short.is_some_and(|s| s == name))
    {
        return Ok(f);
    }
    let see = format!("see 'fgbackup {} --help'", spec.name);
    if !name.starts_with('-') {
        return Err(Error::usage(format!(
            "unexpected argument '{name}' for '{}': options start with --; {see}",
            spec.name
        )));
    }
    if let Some(near) = suggest(spec.flags().map(|f| f.name), name) {
        return Err(Error::usage(format!(
            "unknown option '{name}' for '{}': did you mean {near}? ({see})",
            spec.name
        )));
    }
    if let Some(other) = specs::COMMANDS
        .iter()
        .find(|s| s.flags().any(|f| f.name == name))
    {
        return Err(Error::usage(format!(
            "{name} is an option of 'fgbackup {}', not of '{}'; {see}",
            other.name, spec.name
        )));
    }
    Err(Error::usage(format!(
        "unknown option '{name}' for '{}'; {see}",
        spec.name
    )))
}

/// The candidate nearest to `typed`: within a third of its length in edits,
/// or the only one it is a prefix of.
pub fn suggest<'a>(candidates: impl Iterator<Item = &'a str>, typed: &str) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.collect();
    let best = candidates
        .iter()
        .map(|c| (edit_distance(c, typed), *c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= (typed.len() / 3).max(1))
        .map(|(_, c)| c);
    best.or_else(|| {
        let mut starts = candidates
            .iter()
            .filter(|c| typed.len() > 3 && c.starts_with(typed));
        match (starts.next(), starts.next()) {
            (Some(only), None) => Some(*only),
            _ => None,
        }
    })
}

/// Edits between two words (insert, delete, substitute, or swap two
/// neighbours: `--dri` is one slip from `--dir`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags;

    #[test]
    fn both_value_forms_and_suggestions() {
        let spec = specs::spec("upload").expect("upload spec");
        let a = Args::words(spec, &["--dir=/var/log/fg", "--workers", "8", "--delete"])
            .expect("parses");
        assert_eq!(a.value(&flags::DIR).as_deref(), Some("/var/log/fg"));
        assert_eq!(a.value(&flags::WORKERS).as_deref(), Some("8"));
        assert!(a.flag(&flags::DELETE));
        let e = Args::words(spec, &["--buckt", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean --bucket?"), "{e}");
        let e = Args::words(spec, &["--to", "x"]).unwrap_err().to_string();
        assert!(e.contains("option of 'fgbackup restore'"), "{e}");
        let e = Args::words(spec, &["--delete=yes"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--delete takes no value"), "{e}");
        let e = Args::words(spec, &["--dir"]).unwrap_err().to_string();
        assert!(e.contains("--dir needs a value"), "{e}");
        let e = Args::words(spec, &["--dir", "a", "--dir", "b"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("given twice"), "{e}");
        let e = Args::words(spec, &["stray"]).unwrap_err().to_string();
        assert!(e.contains("unexpected argument 'stray'"), "{e}");
    }

    #[test]
    fn environment_and_defaults_come_from_the_table() {
        let spec = specs::spec("upload").expect("upload spec");
        let a = Args::words(spec, &[]).expect("parses");
        let env = |k: &str| (k == "WORKERS").then(|| "7".to_string());
        assert_eq!(
            a.lookup(&flags::WORKERS, &env),
            Some(("7".into(), Source::Env("WORKERS")))
        );
        let none = |_: &str| None;
        assert_eq!(
            a.lookup(&flags::WORKERS, &none).map(|x| x.1),
            Some(Source::Default)
        );
        let e = Args::words(spec, &["--workers", "99"])
            .expect("parses")
            .number_or_default::<usize>(&flags::WORKERS, &none, 1..=64)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--workers/WORKERS '99' must be a whole number from 1 to 64"
        );
    }

    /// A default lives in the table alone: a command that does not take
    /// the flag still gets the table's value, never a second one in code.
    #[test]
    fn defaults_come_from_the_table() {
        let none = |_: &str| None;
        let env = |k: &str| (k == "WORKERS").then(|| "9".to_string());
        let prune = specs::spec("prune").expect("prune");
        let a = Args::words(prune, &[]).expect("parses");
        assert_eq!(
            a.number_or_default::<usize>(&flags::WORKERS, &env, 1..=64)
                .unwrap(),
            4
        );
        assert_eq!(
            a.number_or_default::<u32>(&flags::RETRIES, &none, 0..=20)
                .unwrap(),
            3
        );
        let upload = specs::spec("upload").expect("upload");
        let a = Args::words(upload, &[]).expect("parses");
        assert_eq!(
            a.number_or_default::<usize>(&flags::WORKERS, &env, 1..=64)
                .unwrap(),
            9
        );
        assert_eq!(
            a.number_or_default::<usize>(&flags::WORKERS, &none, 1..=64)
                .unwrap(),
            4
        );
        let e = a
            .parse_or_default(&flags::DIR, &none, |v| Some(v.to_string()), "")
            .unwrap_err();
        assert!(e.to_string().contains("--dir has no usable default"), "{e}");
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("bucket", "buckt"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            suggest(["--dest", "--dir"].into_iter(), "--dri"),
            Some("--dir")
        );
        assert_eq!(suggest(["--dest", "--dir"].into_iter(), "--zzzzzz"), None);
    }
}
