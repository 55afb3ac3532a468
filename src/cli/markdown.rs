//! `docs/commands/<name>.md`, rendered from the flags table like `--help`
//! ([`super::help`]): the same flags, environment variables, defaults and
//! prose, as Markdown tables (rclone's generated per-command pages). A unit
//! test fails when a page in `docs/` is stale.
//!
//! Only that test renders pages; the binary compiles them (so a change to
//! the table that breaks them breaks the build) but never calls them.
#![cfg_attr(not(test), allow(dead_code))]

use std::fmt::Write;

use super::specs::COMMANDS;
use super::table::{Flag, Spec, Var};

/// The line every generated page starts with.
const GENERATED: &str = "<!-- Generated from the flags table (src/cli/flags.rs, src/cli/specs.rs) by \
src/cli/markdown.rs: do not edit. After changing a flag: FGBACKUP_BLESS_DOCS=1 cargo test --bin \
fgbackup markdown -->\n";

/// The page of one subcommand: what `fgbackup NAME --help` says.
pub fn page(spec: &Spec) -> String {
    let mut out = format!(
        "{GENERATED}# fgbackup {}\n\n{}\n\n```text\n{}\n```\n",
        spec.name,
        escape(spec.about),
        spec.usage
    );
    if !spec.intro.is_empty() {
        let _ = write!(out, "\n{}\n", prose(spec.intro));
    }
    // Groups that share a title in a row are one section and one table,
    // as they are one block in `--help`.
    let mut i = 0;
    while i < spec.groups.len() {
        let title = spec.groups[i].title;
        let mut j = i;
        while j < spec.groups.len() && spec.groups[j].title == title {
            j += 1;
        }
        let _ = write!(out, "\n## {}\n\n", heading(title));
        out.push_str("| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n");
        for group in &spec.groups[i..j] {
            for flag in group.flags.iter() {
                out.push_str(&row(flag));
            }
            for var in group.vars.iter() {
                out.push_str(&var_row(var));
            }
        }
        for group in &spec.groups[i..j] {
            if !group.note.is_empty() {
                let _ = write!(out, "\n{}\n", prose(group.note));
            }
        }
        i = j;
    }
    if let Some(help) = spec.flags().find(|f| f.name == "--help") {
        let _ = write!(out, "\n{}: {}\n", names(help), escape(help.doc));
    }
    if !spec.outro.is_empty() {
        out.push_str(&outro(spec.outro));
    }
    out
}

/// `docs/commands/README.md`: the command list of `fgbackup --help`.
pub fn index() -> String {
    let mut out = format!(
        "{GENERATED}# Commands\n\n\
         One page per subcommand, generated from the same table as `fgbackup <COMMAND> --help`,\n\
         so each lists exactly the options the command takes, with their environment names and\n\
         defaults. A flag beats the environment; the environment beats the default. Options take\n\
         their value as `--name VALUE` or `--name=VALUE`; `RUST_LOG` sets the log level.\n\n\
         | Command | What it does |\n|---|---|\n"
    );
    for spec in COMMANDS {
        let _ = writeln!(
            out,
            "| [`{}`]({}) | {} |",
            spec.name,
            file_name(spec),
            escape(spec.about)
        );
    }
    out
}

/// `token-issue.md` for `token issue`.
pub fn file_name(spec: &Spec) -> String {
    format!("{}.md", spec.name.replace(' ', "-"))
}

/// One table row: flag, environment, default, meaning.
fn row(flag: &Flag) -> String {
    let env: Vec<String> = flag.env.iter().map(|v| format!("`{v}`")).collect();
    let default = flag.default.map(|d| format!("`{d}`")).unwrap_or_default();
    format!(
        "| {} | {} | {} | {} |\n",
        names(flag),
        env.join(", "),
        default,
        escape(&flag.doc.replace('\n', " "))
    )
}

/// A setting only the environment gives: no flag, its variable.
fn var_row(var: &Var) -> String {
    let default = var.default.map(|d| format!("`{d}`")).unwrap_or_default();
    format!(
        "| (none) | `{}` | {} | {} |\n",
        var.name,
        default,
        escape(var.doc)
    )
}

/// `` `-P`, `--progress` `` or `` `--dir DIR` ``.
fn names(flag: &Flag) -> String {
    let long = match flag.value {
        Some(v) => format!("`{} {v}`", flag.name),
        None => format!("`{}`", flag.name),
    };
    match flag.short {
        Some(s) => format!("`{s}`, {long}"),
        None => long,
    }
}

/// `S3 BUCKET` → `S3 bucket`, `NOTIFICATIONS (after...)` → `Notifications
/// (after...)`; acronyms (`API`) stay.
fn heading(title: &str) -> String {
    let mut out = Vec::new();
    for (n, word) in title.split(' ').enumerate() {
        let shouted = word.len() > 3 && word.chars().all(|c| c.is_ascii_uppercase());
        out.push(if !shouted {
            word.to_string()
        } else if n == 0 {
            let (first, rest) = word.split_at(1);
            format!("{first}{}", rest.to_ascii_lowercase())
        } else {
            word.to_ascii_lowercase()
        });
    }
    escape(&out.join(" "))
}

/// What follows the flags: prose paragraphs, and titled blocks (`EXIT
/// STATUS:`, `ENDPOINTS:`) whose indented lines keep their layout.
fn outro(text: &str) -> String {
    let mut out = String::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines();
        let first = lines.next().unwrap_or("");
        let rest: Vec<&str> = lines.collect();
        let titled = first.ends_with(':')
            && !first.starts_with(' ')
            && first.chars().any(|c| c.is_ascii_uppercase())
            && !first.chars().any(|c| c.is_ascii_lowercase());
        if titled && !rest.is_empty() {
            let body: Vec<&str> = rest
                .iter()
                .map(|l| l.strip_prefix("    ").unwrap_or(l))
                .collect();
            let _ = write!(
                out,
                "\n## {}\n\n```text\n{}\n```\n",
                heading(first.trim_end_matches(':')),
                body.join("\n")
            );
        } else {
            let _ = write!(out, "\n{}\n", prose(block));
        }
    }
    out
}

/// A paragraph as Markdown: line breaks kept, nothing read as markup.
fn prose(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = escape(line.trim_start());
            // A line must not start a list, a heading or a quote.
            let ordered = line
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if ordered {
                line.replacen(". ", "\\. ", 1)
            } else if line.starts_with(['-', '+', '#', '>', '=']) {
                format!("\\{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text that Markdown must show as written (`<NAME>`, `*.gz`, `a|b`).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '<' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands/");

    /// Every page in `docs/commands/` is what the table renders today.
    #[test]
    fn command_pages_are_generated_from_the_flags_table() {
        let mut pages: Vec<(String, String)> = COMMANDS
            .iter()
            .map(|spec| (file_name(spec), page(spec)))
            .collect();
        pages.push(("README.md".to_string(), index()));
        let bless = std::env::var("FGBACKUP_BLESS_DOCS").is_ok_and(|v| v == "1");
        let mut stale = Vec::new();
        for (name, want) in &pages {
            let path = format!("{DIR}{name}");
            if bless {
                std::fs::create_dir_all(DIR).unwrap();
                std::fs::write(&path, want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(name.clone());
            }
        }
        // A page of a command that no longer exists is stale too.
        for entry in std::fs::read_dir(DIR).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if !pages.iter().any(|(n, _)| *n == name) {
                stale.push(format!("{name} (no such command)"));
            }
        }
        assert!(
            stale.is_empty(),
            "docs/commands/ is stale: {stale:?}; run `FGBACKUP_BLESS_DOCS=1 cargo test --bin fgbackup markdown` and commit the result"
        );
    }

    #[test]
    fn every_flag_env_and_default_is_on_its_page() {
        for spec in COMMANDS {
            let text = page(spec);
            for flag in spec.flags() {
                assert!(
                    text.contains(&names(flag)),
                    "{} lacks {}",
                    spec.name,
                    flag.name
                );
                for var in flag.env {
                    assert!(
                        text.contains(&format!("`{var}`")),
                        "{} lacks {var}",
                        spec.name
                    );
                }
                if let Some(d) = flag.default {
                    assert!(text.contains(&format!("`{d}`")), "{} lacks {d}", spec.name);
                }
            }
        }
    }

    #[test]
    fn markup_in_the_prose_is_shown_as_written() {
        assert_eq!(
            escape("<NAME>_NOTIFY_ON=a|b *.gz"),
            "\\<NAME>_NOTIFY_ON=a\\|b \\*.gz"
        );
        assert_eq!(prose("x\n- y\n1. z\n  #w"), "x\n\\- y\n1\\. z\n\\#w");
        assert_eq!(heading("S3 BUCKET"), "S3 bucket");
        assert_eq!(heading("NOTIFICATIONS (after)"), "Notifications (after)");
        assert_eq!(heading("API"), "API");
    }
}
