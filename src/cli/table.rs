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

/// The spec of subcommand `name`.
pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

pub(super) const fn flag(
    name: &'static str,
    value: Option<&'static str>,
    doc: &'static str,
) -> Flag {
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

pub(super) const fn switch(name: &'static str, doc: &'static str) -> Flag {
    flag(name, None, doc)
}

pub(super) const fn opt(name: &'static str, value: &'static str, doc: &'static str) -> Flag {
    flag(name, Some(value), doc)
}

impl Flag {
    pub(super) const fn env(mut self, vars: &'static [&'static str]) -> Flag {
        self.env = vars;
        self
    }
    pub(super) const fn default(mut self, value: &'static str) -> Flag {
        self.default = Some(value);
        self
    }
    pub(super) const fn short(mut self, s: &'static str) -> Flag {
        self.short = Some(s);
        self
    }
    pub(super) const fn repeat(mut self) -> Flag {
        self.repeat = true;
        self
    }
}

/// A group without a note.
pub(super) const fn group(title: &'static str, flags: &'static [Flag]) -> Group {
    Group {
        title,
        flags,
        note: "",
    }
}

pub const HELP: Flag = switch("--help", "Print this help").short("-h");

/// The Python suite's database location, kept so deployments need no change.
pub const DEFAULT_DB_PATH: &str = "/var/lib/backup_fg/backup_records.db";

pub const DB: Group = Group {
    title: "INVENTORY",
    flags: &[opt("--db", "PATH", "SQLite inventory")
        .env(&["DB_PATH"])
        .default(DEFAULT_DB_PATH)],
    note: "",
};

pub const SOURCE: Group = Group {
    title: "SOURCE",
    flags: &[
        opt("--dir", "DIR", "Directory scanned recursively").env(&["DIR"]),
        opt(
            "--include",
            "PATTERNS",
            "Comma-separated file name patterns",
        )
        .default("*.gz"),
        opt(
            "--min-age",
            "AGE",
            "Skip files modified less than AGE ago (300, 90s, 5m, 1h)",
        )
        .default("5m"),
    ],
    note: "",
};

pub const BUCKET: Group = Group {
    title: "S3 BUCKET",
    flags: &[
        opt("--bucket", "NAME", "S3 bucket").env(&["BUCKET"]),
        opt(
            "--endpoint",
            "URL",
            "S3-compatible endpoint, path-style (MinIO, Ceph...) [env: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or endpoint_url in the profile]",
        ),
        opt(
            "--region",
            "REGION",
            "[env: AWS_REGION, AWS_DEFAULT_REGION, or the profile; default us-east-1]",
        ),
        opt(
            "--profile",
            "NAME",
            "Profile of ~/.aws/credentials and ~/.aws/config [env: AWS_PROFILE]",
        ),
    ],
    note: "Credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), or the profile.",
};

pub const ARCHIVE: Group = Group {
    title: "ARCHIVE",
    flags: &[
        opt(
            "--dest",
            "URL",
            "file:///DIR for a directory (NFS, USB disk; outside --dir), or s3://BUCKET; instead of --bucket",
        ),
        opt(
            "--prefix",
            "PREFIX",
            "Key prefix; the key is PREFIX/<path relative to --dir>",
        ),
        opt(
            "--ca-file",
            "PEM",
            "Also trust this CA for HTTPS (private CA of an air-gapped MinIO)",
        ),
        opt("--workers", "N", "Files processed in parallel, 1-64")
            .env(&["WORKERS"])
            .default("4"),
        opt(
            "--retries",
            "N",
            "Retries of transient network/server errors, 0-20",
        )
        .default("3"),
    ],
    note: "",
};

pub const BEHAVIOUR: Group = Group {
    title: "BEHAVIOUR",
    flags: &[
        switch(
            "--delete",
            "Delete each local file after its copy is verified",
        )
        .env(&["DELETE_AFTER"]),
        switch("--no-delete", "Keep local files even if DELETE_AFTER=true"),
        switch("--dry-run", "Show what would happen; write nothing anywhere"),
        opt(
            "--on-conflict",
            "MODE",
            "When the key holds other content: keep (report failed_conflict, keep the file) or suffix (archive it beside, as NAME.<sha256 prefix>.EXT)",
        )
        .default("keep"),
    ],
    note: "",
};

pub const TRANSFER: Group = Group {
    title: "TRANSFER",
    flags: &[
        opt(
            "--gzip-check",
            "WHEN",
            "Inflate .gz files to prove them complete before they may be deleted: auto (only with --delete), always, or never",
        )
        .default("auto"),
        switch("--no-gzip-check", "Same as --gzip-check never"),
        opt(
            "--bwlimit",
            "RATE",
            "Bandwidth to S3 for the whole process: 512k, 10M (bare number = KiB/s), off, or a timetable \"08:00,512k 19:00,off\" (local time); a directory store copies at disk speed",
        )
        .default("off"),
        opt("--multipart-cutoff", "SIZE", "Files up to this size go in one PUT").default("256MiB"),
        opt("--part-size", "SIZE", "Part size above the cutoff, 5MiB-5GiB").default("64MiB"),
        opt(
            "--storage-class",
            "CLASS",
            "Storage class of new objects, e.g. STANDARD_IA (default: the bucket's)",
        ),
        opt(
            "--sse",
            "MODE",
            "Server-side encryption of new objects: AES256 or aws:kms",
        ),
        opt(
            "--sse-kms-key-id",
            "ID",
            "KMS key for --sse aws:kms (default: the bucket's)",
        ),
        opt(
            "--object-lock",
            "MODE",
            "Lock every new object (WORM): GOVERNANCE or COMPLIANCE; the bucket must have Object Lock enabled; needs --object-lock-days",
        )
        .env(&["OBJECT_LOCK_MODE"]),
        opt(
            "--object-lock-days",
            "N",
            "Days each new object stays locked, 1-36500",
        )
        .env(&["OBJECT_LOCK_DAYS"]),
        opt(
            "--max-memory",
            "SIZE",
            "Accepted and ignored: uploads stream from disk",
        ),
    ],
    note: "",
};

pub const NOTIFY: Group = Group {
    title: "NOTIFICATIONS (after every run; they never change its outcome)",
    flags: &[
        opt(
            "--notify-email",
            "LIST",
            "Comma-separated recipients of the summary email",
        )
        .env(&["NOTIFY_EMAIL"]),
        opt(
            "--email-method",
            "M",
            "starttls (587), smtps (465), or plain (local relay: no TLS, no password)",
        )
        .env(&["EMAIL_METHOD"])
        .default("starttls"),
        opt("--smtp-host", "HOST", "SMTP server")
            .env(&["SMTP_HOST"])
            .default("smtp.gmail.com"),
        opt("--smtp-port", "PORT", "SMTP port (default: by method)").env(&["SMTP_PORT"]),
        opt(
            "--flag-file",
            "PATH",
            "Touched after each run without failures",
        )
        .env(&["FLAG_FILE"]),
        opt(
            "--metrics-textfile",
            "PATH",
            "node_exporter textfile with the run's figures",
        )
        .env(&["METRICS_TEXTFILE"]),
    ],
    note: "SMTP login: GMAIL_USER + GMAIL_APP_PASSWORD. EMAIL_DRY_RUN=1 prints the message instead.
Webhooks: SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, TELEGRAM_BOT_TOKEN + TELEGRAM_CHAT_ID,
WEBHOOK_URL (JSON), each with <NAME>_NOTIFY_ON=always|success|failure (see docs/GUIDE.md).",
};

const PROGRESS_ON: Flag = switch(
    "--progress",
    "Show live progress even when stderr is not a terminal",
)
.short("-P");
const NO_PROGRESS: Flag = switch(
    "--no-progress",
    "No live progress, even on a terminal (it is on by default there)",
);
const VERBOSE: Flag = switch(
    "--verbose",
    "One line per file even while progress is shown",
)
.short("-v");
const QUIET: Flag = switch("--quiet", "Errors only: no progress, no per-file lines").short("-q");

pub const OUTPUT: Group = Group {
    title: "OUTPUT",
    flags: &[
        PROGRESS_ON,
        NO_PROGRESS,
        VERBOSE,
        QUIET,
        switch(
            "--json",
            "Print the summary as one JSON object on stdout (counts, bytes, failures, exit code)",
        ),
    ],
    note: "",
};

/// The display and verbosity flags without `--json` (restore: its summary
/// is one line).
pub const PROGRESS: Group = Group {
    title: "OUTPUT",
    flags: &[PROGRESS_ON, NO_PROGRESS, VERBOSE, QUIET],
    note: "",
};

/// `--json` alone, for commands without progress (doctor).
pub const JSON_ONLY: Group = Group {
    title: "OUTPUT",
    flags: &[switch(
        "--json",
        "Print the result as one JSON object on stdout",
    )],
    note: "",
};

pub const DATES: Group = Group {
    title: "SELECTION",
    flags: &[
        opt(
            "--since",
            "YYYY-MM-DD",
            "Only files archived on or after this day (backup_date)",
        ),
        opt(
            "--until",
            "YYYY-MM-DD",
            "Only files archived on or before this day",
        ),
    ],
    note: "",
};

pub const SERVE: Group = Group {
    title: "API",
    flags: &[
        opt("--listen", "ADDR", "Address to bind").default("127.0.0.1:8080"),
        opt(
            "--threads",
            "N",
            "Workers per lane (probes and refusals; queries), 1-64",
        )
        .default("4"),
        opt(
            "--tokens-file",
            "PATH",
            "Bearer tokens, one per line, re-read when changed (also: APP_TOKENS=comma,separated)",
        )
        .env(&["APP_TOKENS_FILE"]),
        switch(
            "--metrics-no-auth",
            "Serve /metrics without a token (for scrapers)",
        ),
        switch(
            "--presign",
            "Enable GET /backups/{id}/presign (needs --bucket/BUCKET and S3 credentials)",
        ),
        opt("--presign-max", "SECS", "Longest allowed expiry, 1-604800").default("3600"),
    ],
    note: "",
};

/// Every subcommand, in the order `fgbackup --help` lists them.
pub static COMMANDS: &[Spec] = &[
    super::specs::UPLOAD,
    super::specs::LS,
    super::specs::INVENTORY,
    super::specs::SERVE_CMD,
    super::specs::DAEMON,
    super::specs::DOCTOR,
    super::specs::VERIFY,
    super::specs::RESTORE,
    super::specs::REINDEX,
    super::specs::KEYGEN,
    super::specs::PRUNE,
    super::specs::DEMO,
    super::specs::GEN_LOGS,
];
