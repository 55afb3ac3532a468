//! `--help` pages, rendered from the flags table: a flag's name, value,
//! environment variable and default are written once, in
//! [`super::table`]. They name settings, never their values.

use std::fmt::Write;

use super::specs::{COMMANDS, FAMILIES};
use super::table::{Flag, HELP, Spec, Var};

/// Column where a flag's description starts.
const DOC_COLUMN: usize = 25;
/// Stands for a space that must not break a line (inside `[default: X]`).
const NBSP_MARK: &str = "\u{1}";
/// Width the descriptions are wrapped to.
const WIDTH: usize = 100;

/// `fgbackup --help`: the command list.
pub fn main_page() -> String {
    let mut out = String::from(
        "fgbackup - archive FortiGate syslog .gz files to S3/MinIO or a directory, verified\n\n\
         USAGE:\n    fgbackup <COMMAND> [OPTIONS]\n\nCOMMANDS:\n",
    );
    for spec in COMMANDS {
        let _ = writeln!(out, "    {:<13} {}", spec.name, spec.about);
    }
    out.push_str(
        "\nOPTIONS:\n    -h, --help       Print help (also: fgbackup <COMMAND> --help)\n    \
         -V, --version    Print version\n\n\
         Options take their value as --name VALUE or --name=VALUE.\n\
         Log level: RUST_LOG=debug|info|warn|error (default info).\n",
    );
    out
}

/// `fgbackup token`: the members of a family.
pub fn family_page(word: &str) -> String {
    let about = FAMILIES
        .iter()
        .find(|(w, _)| *w == word)
        .map_or("", |(_, a)| *a);
    let mut out = format!(
        "fgbackup {word} - {about}\n\nUSAGE:\n    fgbackup {word} <COMMAND> [OPTIONS]\n\nCOMMANDS:\n"
    );
    let family = format!("{word} ");
    for spec in COMMANDS.iter().filter(|s| s.name.starts_with(&family)) {
        let _ = writeln!(out, "    {:<13} {}", spec.name, spec.about);
    }
    let _ = write!(
        out,
        "\nEach has its page: fgbackup {word} <COMMAND> --help\n"
    );
    out
}

/// `fgbackup COMMAND --help`.
pub fn page(spec: &Spec) -> String {
    let mut out = format!(
        "fgbackup {} - {}\n\nUSAGE:\n    {}\n",
        spec.name, spec.about, spec.usage
    );
    if !spec.intro.is_empty() {
        let _ = write!(out, "\n{}\n", spec.intro);
    }
    let mut title = "";
    for group in spec.groups {
        if group.title != title {
            let _ = write!(out, "\n{}:\n", group.title);
            title = group.title;
        }
        for flag in group.flags {
            out.push_str(&flag_lines(flag));
        }
        for var in group.vars {
            out.push_str(&var_lines(var));
        }
        for line in group.note.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = write!(out, "\n{}", flag_lines(&HELP));
    if !spec.outro.is_empty() {
        let _ = write!(out, "\n{}\n", spec.outro);
    }
    out
}

/// `    NAME                 doc [default: Y]`: a setting only the
/// environment gives, in its group, aligned with the flags.
fn var_lines(var: &Var) -> String {
    let mut doc = var.doc.to_string();
    if let Some(d) = var.default {
        let _ = write!(
            doc,
            " {}",
            format!("[default: {d}]").replace(' ', NBSP_MARK)
        );
    }
    lines(var.name, &doc)
}

/// `    -P, --progress VALUE    doc [env: X] [default: Y]`, wrapped.
fn flag_lines(flag: &Flag) -> String {
    let mut left = match flag.short {
        Some(s) => format!("{s}, {}", flag.name),
        None => flag.name.to_string(),
    };
    if let Some(v) = flag.value {
        left = format!("{left} {v}");
    }
    // NBSP_MARK keeps a tag on one line; it becomes a space when printed.
    let unbroken = |t: String| t.replace(' ', NBSP_MARK);
    let mut doc = flag.doc.to_string();
    if !flag.env.is_empty() {
        let _ = write!(
            doc,
            " {}",
            unbroken(format!("[env: {}]", flag.env.join(", ")))
        );
    }
    if let Some(d) = flag.default {
        let _ = write!(doc, " {}", unbroken(format!("[default: {d}]")));
    }
    lines(&left, &doc)
}

/// `left` at the margin and `doc` wrapped at [`DOC_COLUMN`].
fn lines(left: &str, doc: &str) -> String {
    let mut out = format!("    {left}");
    let mut column = 4 + left.len();
    if column + 1 >= DOC_COLUMN {
        out.push('\n');
        column = 0;
    }
    let mut first = true;
    for line in wrap(doc, WIDTH - DOC_COLUMN) {
        let pad = if first {
            DOC_COLUMN - column
        } else {
            DOC_COLUMN
        };
        let _ = writeln!(out, "{:pad$}{}", "", line.replace(NBSP_MARK, " "));
        first = false;
    }
    out
}

/// Greedy word wrap to `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_is_on_its_page_with_env_and_default() {
        for spec in COMMANDS {
            let text = page(spec);
            for flag in spec.flags() {
                assert!(
                    text.contains(flag.name),
                    "{} lacks {}",
                    spec.name,
                    flag.name
                );
                for var in flag.env {
                    assert!(text.contains(var), "{} lacks {var}", spec.name);
                }
                if let Some(d) = flag.default {
                    assert!(text.contains(&format!("[default: {d}]")), "{d}");
                }
            }
            for var in spec.vars() {
                assert!(text.contains(var.name), "{} lacks {}", spec.name, var.name);
            }
            assert!(text.lines().all(|l| l.len() <= WIDTH), "{}", spec.name);
        }
    }

    /// `doctor` finds secrets in env files through [`super::super::flags::VARS`]:
    /// every variable a command reads must be in it.
    #[test]
    fn every_variable_of_a_group_is_in_the_list_of_variables() {
        for spec in COMMANDS {
            for var in spec.vars() {
                assert!(
                    super::super::flags::VARS.iter().any(|v| v.name == var.name),
                    "{} is not in flags::VARS",
                    var.name
                );
            }
        }
    }

    #[test]
    fn flag_names_are_unique_within_a_command() {
        for spec in COMMANDS {
            let mut names: Vec<&str> = spec.flags().map(|f| f.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{} defines a flag twice", spec.name);
        }
    }
}
