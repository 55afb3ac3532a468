//! Every flag of every command, defined once: name, environment variable,
//! default, and the line `--help` shows. Parsing ([`super::args`]), the
//! `--name/ENV` prefix of errors and the help pages ([`super::help`]) are all
//! derived from here, so a default or an env name cannot disagree between
//! the code and the documentation (ripgrep's `flags/defs.rs` pattern).

/// One flag.
#[derive(Debug)]
pub struct Flag {
    /// `--name`.
    pub name: &'static str,
    /// `-x`, for the few flags that have one.
    pub short: Option<&'static str>,
    /// The value's placeholder in help (`DIR`); `None` for a switch.
    pub value: Option<&'static str>,
    /// Environment variables read when the flag is absent, first wins.
    pub env: &'static [&'static str],
    /// Used when neither flag nor environment gives a value.
    pub default: Option<&'static str>,
    pub doc: &'static str,
    /// May be given more than once (`--key`, `--env-file`).
    pub repeat: bool,
}

/// A titled block of flags in `--help`, with an optional note under it.
#[derive(Debug)]
pub struct Group {
    pub title: &'static str,
    pub flags: &'static [Flag],
    pub note: &'static str,
}

/// One subcommand: its help page and the groups of flags it takes.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    /// One line: the command list in `fgbackup --help` and the page title.
    pub about: &'static str,
    pub usage: &'static str,
    pub intro: &'static str,
    pub groups: &'static [&'static Group],
    /// Exit status, endpoints: what follows the flags.
    pub outro: &'static str,
}

impl Spec {
    /// Every flag the command takes, `--help` included.
    pub fn flags(&self) -> impl Iterator<Item = &'static Flag> + '_ {
        self.groups
            .iter()
            .flat_map(|g| g.flags.iter())
            .chain(std::iter::once(&HELP))
    }

    /// The entry for `name`, if this command takes it.
    pub fn flag(&self, name: &str) -> Option<&'static Flag> {
        self.flags().find(|f| f.name == name)
    }
}

pub const fn flag(name: &'static str, value: Option<&'static str>, doc: &'static str) -> Flag {
    Flag {
        name,
        short: None,
        value,
        env: &[],
        default: None,
        doc,
        repeat: false,
    }
}

pub const fn switch(name: &'static str, doc: &'static str) -> Flag {
    flag(name, None, doc)
}

pub const fn opt(name: &'static str, value: &'static str, doc: &'static str) -> Flag {
    flag(name, Some(value), doc)
}

impl Flag {
    pub const fn env(mut self, vars: &'static [&'static str]) -> Flag {
        self.env = vars;
        self
    }
    pub const fn default(mut self, value: &'static str) -> Flag {
        self.default = Some(value);
        self
    }
    pub const fn short(mut self, s: &'static str) -> Flag {
        self.short = Some(s);
        self
    }
    pub const fn repeat(mut self) -> Flag {
        self.repeat = true;
        self
    }
}

/// A group without a note.
pub const fn group(title: &'static str, flags: &'static [Flag]) -> Group {
    Group {
        title,
        flags,
        note: "",
    }
}

pub const HELP: Flag = switch("--help", "Print this help").short("-h");
