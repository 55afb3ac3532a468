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
    /// Also given as the command's one bare word (`fgbackup grep PATTERN`).
    pub operand: bool,
}

/// A setting only the environment gives (the suite's variables: SMTP login,
/// webhooks, AWS credentials): no flag, but in the same table, so `--help`,
/// the docs and `doctor` know it, and code reads it through its constant.
#[derive(Debug)]
pub struct Var {
    pub name: &'static str,
    pub doc: &'static str,
    /// A password, token or URL with a secret in it: never printed, and an
    /// env file that sets it must not be readable by others.
    pub secret: bool,
    /// Used when the variable is not set (or empty).
    pub default: Option<&'static str>,
}

impl Var {
    pub const fn default(mut self, value: &'static str) -> Var {
        self.default = Some(value);
        self
    }
}

/// A variable.
pub const fn var(name: &'static str, doc: &'static str) -> Var {
    Var {
        name,
        doc,
        secret: false,
        default: None,
    }
}

/// A variable holding a secret.
pub const fn secret(name: &'static str, doc: &'static str) -> Var {
    Var {
        name,
        doc,
        secret: true,
        default: None,
    }
}

/// A titled block of flags in `--help`, the variables read with them, and
/// an optional note under them.
#[derive(Debug)]
pub struct Group {
    pub title: &'static str,
    pub flags: &'static [Flag],
    pub vars: &'static [Var],
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

    /// Every environment-only setting the command reads.
    #[cfg(test)]
    pub fn vars(&self) -> impl Iterator<Item = &'static Var> + '_ {
        self.groups.iter().flat_map(|g| g.vars.iter())
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
        operand: false,
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
    pub const fn operand(mut self) -> Flag {
        self.operand = true;
        self
    }
}

/// A group without a note.
pub const fn group(title: &'static str, flags: &'static [Flag]) -> Group {
    Group {
        title,
        flags,
        vars: &[],
        note: "",
    }
}

pub const HELP: Flag = switch("--help", "Print this help").short("-h");
