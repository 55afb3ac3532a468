//! Every flag of every command and every setting read from the
//! environment alone, defined once: name, environment variables, default
//! and the line `--help` shows. Code reads a value through these constants
//! (`args.value(&flags::SINCE)`), so a misspelt flag does not compile
//! (ripgrep's `flags/defs.rs`). Which command takes which flag is
//! [`super::specs`].

use super::table::{Flag, Var, opt, secret, switch, var};
use crate::aws::env_names as aws;

/// The inventory's default location, owned by the inventory.
pub use crate::inventory::DEFAULT_PATH as DEFAULT_DB_PATH;

pub const DB: Flag = opt("--db", "PATH", "SQLite inventory")
    .env(&["DB_PATH"])
    .default(DEFAULT_DB_PATH);

pub const DIR: Flag = opt("--dir", "DIR", "Directory scanned recursively").env(&["DIR"]);

pub const INCLUDE: Flag = opt(
    "--include",
    "PATTERNS",
    "Comma-separated file name patterns",
)
.default("*.gz");

pub const MIN_AGE: Flag = opt(
    "--min-age",
    "AGE",
    "Skip files modified less than AGE ago (300, 90s, 5m, 1h)",
)
.default("5m");

pub const BUCKET: Flag = opt("--bucket", "NAME", "S3 bucket").env(&["BUCKET"]);

pub const ENDPOINT: Flag = opt(
    "--endpoint",
    "URL",
    "S3-compatible endpoint, path-style (MinIO, Ceph...) [env: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or endpoint_url in the profile]",
);

pub const REGION: Flag = opt(
    "--region",
    "REGION",
    "[env: AWS_REGION, AWS_DEFAULT_REGION, or the profile; default us-east-1]",
);

pub const PROFILE: Flag = opt(
    "--profile",
    "NAME",
    "Profile of ~/.aws/credentials and ~/.aws/config [env: AWS_PROFILE]",
);

pub const DEST: Flag = opt(
    "--dest",
    "URL",
    "file:///DIR for a directory (NFS, USB disk; outside --dir), or s3://BUCKET; instead of --bucket",
);

pub const PREFIX: Flag = opt(
    "--prefix",
    "PREFIX",
    "Key prefix; the key is PREFIX/<path relative to --dir>",
);

pub const CA_FILE: Flag = opt(
    "--ca-file",
    "PEM",
    "Also trust this CA for HTTPS (private CA of an air-gapped MinIO)",
);

pub const WORKERS: Flag = opt("--workers", "N", "Files processed in parallel, 1-64")
    .env(&["WORKERS"])
    .default("4");

pub const RETRIES: Flag = opt(
    "--retries",
    "N",
    "Retries of transient network/server errors, 0-20",
)
.default("3");

pub const DELETE: Flag = switch(
    "--delete",
    "Delete each local file after its copy is verified",
)
.env(&["DELETE_AFTER"]);

pub const NO_DELETE: Flag = switch("--no-delete", "Keep local files even if DELETE_AFTER=true");

pub const DRY_RUN: Flag = switch(
    "--dry-run",
    "Show what would happen; write nothing anywhere",
);

pub const ON_CONFLICT: Flag = opt(
            "--on-conflict",
            "MODE",
            "When the key holds other content: keep (report failed_conflict, keep the file) or suffix (archive it beside, as NAME.<sha256 prefix>.EXT)",
        )
        .default("keep");

pub const GZIP_CHECK: Flag = opt(
            "--gzip-check",
            "WHEN",
            "Inflate .gz files to prove them complete before they may be deleted: auto (only with --delete), always, or never",
        )
        .default("auto");

pub const NO_GZIP_CHECK: Flag = switch("--no-gzip-check", "Same as --gzip-check never");

pub const INDEX: Flag = opt(
            "--index",
            "WHEN",
            "Index what each .gz holds (for search and grep): auto (whenever the gzip check inflates it anyway), always (also inflate to index in copy mode), or never",
        )
        .env(&["CONTENT_INDEX"])
        .default("auto");

pub const BWLIMIT: Flag = opt(
            "--bwlimit",
            "RATE",
            "Bandwidth to S3 for the whole process: 512k, 10M (bare number = KiB/s), off, or a timetable \"08:00,512k 19:00,off\" (local time); a directory store copies at disk speed",
        )
        .default("off");

pub const MULTIPART_CUTOFF: Flag = opt(
    "--multipart-cutoff",
    "SIZE",
    "Files up to this size go in one PUT",
)
.default("256MiB");

pub const PART_SIZE: Flag = opt(
    "--part-size",
    "SIZE",
    "Part size above the cutoff, 5MiB-5GiB",
)
.default("64MiB");

pub const STORAGE_CLASS: Flag = opt(
    "--storage-class",
    "CLASS",
    "Storage class of new objects, e.g. STANDARD_IA (default: the bucket's)",
);

pub const SSE: Flag = opt(
    "--sse",
    "MODE",
    "Server-side encryption of new objects: AES256 or aws:kms",
);

pub const SSE_KMS_KEY_ID: Flag = opt(
    "--sse-kms-key-id",
    "ID",
    "KMS key for --sse aws:kms (default: the bucket's)",
);

pub const OBJECT_LOCK: Flag = opt(
            "--object-lock",
            "MODE",
            "Lock every new object (WORM): GOVERNANCE or COMPLIANCE; the bucket must have Object Lock enabled; needs --object-lock-days",
        )
        .env(&["OBJECT_LOCK_MODE"]);

pub const OBJECT_LOCK_DAYS: Flag = opt(
    "--object-lock-days",
    "N",
    "Days each new object stays locked, 1-36500",
)
.env(&["OBJECT_LOCK_DAYS"]);

pub const MAX_MEMORY: Flag = opt(
    "--max-memory",
    "SIZE",
    "Accepted and ignored: uploads stream from disk",
);

pub const NOTIFY_EMAIL: Flag = opt(
    "--notify-email",
    "LIST",
    "Comma-separated recipients of the summary email",
)
.env(&["NOTIFY_EMAIL"]);

pub const EMAIL_METHOD: Flag = opt(
    "--email-method",
    "M",
    "starttls (587), smtps (465), or plain (local relay: no TLS, no password)",
)
.env(&["EMAIL_METHOD"])
.default("starttls");

pub const SMTP_HOST: Flag = opt("--smtp-host", "HOST", "SMTP server")
    .env(&["SMTP_HOST"])
    .default("smtp.gmail.com");

pub const SMTP_PORT: Flag =
    opt("--smtp-port", "PORT", "SMTP port (default: by method)").env(&["SMTP_PORT"]);

pub const FLAG_FILE: Flag = opt(
    "--flag-file",
    "PATH",
    "Touched after each run without failures",
)
.env(&["FLAG_FILE"]);

pub const METRICS_TEXTFILE: Flag = opt(
    "--metrics-textfile",
    "PATH",
    "node_exporter textfile with the run's figures",
)
.env(&["METRICS_TEXTFILE"]);

pub const JSON: Flag = switch(
    "--json",
    "Print the summary as one JSON object on stdout (counts, bytes, failures, exit code)",
);

pub const JSON_RESULT: Flag = switch("--json", "Print the result as one JSON object on stdout");

pub const SINCE: Flag = opt(
    "--since",
    "YYYY-MM-DD",
    "Only files archived on or after this day (backup_date)",
);

pub const UNTIL: Flag = opt(
    "--until",
    "YYYY-MM-DD",
    "Only files archived on or before this day",
);

pub const LISTEN: Flag = opt("--listen", "ADDR", "Address to bind").default("127.0.0.1:8080");

pub const THREADS: Flag = opt(
    "--threads",
    "N",
    "Workers per lane (probes and refusals; queries), 1-64",
)
.default("4");

pub const TOKENS_FILE: Flag = opt(
    "--tokens-file",
    "PATH",
    "Bearer tokens, one per line, re-read when changed (also: APP_TOKENS=comma,separated)",
)
.env(&["APP_TOKENS_FILE"]);

pub const METRICS_NO_AUTH: Flag = switch(
    "--metrics-no-auth",
    "Serve /metrics without a token (for scrapers)",
);

pub const PRESIGN: Flag = switch(
    "--presign",
    "Enable GET /backups/{id}/presign (needs --bucket/BUCKET and S3 credentials)",
);

pub const EVENTS_MAX: Flag = opt(
    "--events-max",
    "N",
    "Most /events streams open at once, 1-256; more get 503",
)
.env(&["EVENTS_MAX"])
.default("8");

pub const TAIL_URL: Flag = opt(
    "--url",
    "URL",
    "The API of an fgbackup serve or daemon, e.g. http://127.0.0.1:8080",
)
.env(&["FGBACKUP_URL"]);

pub const TAIL_TOKEN: Flag = opt(
    "--token",
    "TOKEN",
    "An API token of that server (better: FGBACKUP_TOKEN, kept out of the process list)",
)
.env(&["FGBACKUP_TOKEN"]);

pub const TAIL_JSON: Flag = switch(
    "--json",
    "One JSON object per event and line: {\"id\", \"event\", \"data\"}",
);

pub const UI: Flag = switch(
    "--ui",
    "Serve the dashboard page at /ui/ (signs in with an API token)",
)
.env(&["UI"]);

pub const PRESIGN_MAX: Flag =
    opt("--presign-max", "SECS", "Longest allowed expiry, 1-604800").default("3600");

pub const MANIFEST_KEY: Flag = opt(
            "--manifest-key",
            "PATH",
            "Sign a hash-chained manifest of what was archived (and at least daily) with this key from 'fgbackup keygen'",
        ).env(&["MANIFEST_KEY"]);

pub const DEVICE: Flag = opt(
    "--device",
    "NAME",
    "Only this FortiGate: a directory NAME/ or files named NAME-<date>...",
);

pub const STATUS: Flag = opt(
    "--status",
    "STATUS",
    "Only rows with this status; 'failed' means every failed_* status",
);

pub const CONTENT: Flag = switch(
    "--content",
    "Then index what each archived object holds (for search and grep) where the inventory has no whole index of it: read back, proven against its SHA-256",
);

pub const READ_OBJECTS: Flag = switch(
    "--read-objects",
    "With --content: ignore the index sidecars uploads wrote beside the archives, and read every archive back",
);

pub const LOG_DEVICE: Flag = opt(
    "--device",
    "NAME",
    "Only lines of this FortiGate: its devname or devid",
);

pub const LOG_SINCE: Flag = opt(
    "--since",
    "WHEN",
    "Only lines at or after this UTC day (2026-03-03) or RFC 3339 time (2026-03-03T14:00:00Z)",
);

pub const LOG_UNTIL: Flag = opt(
    "--until",
    "WHEN",
    "Only lines at or before this UTC day (its last second) or RFC 3339 time",
);

pub const ACTION: Flag = opt(
    "--action",
    "ACTION",
    "Only lines with this action= (deny, accept, close...)",
);

pub const LOG_TYPE: Flag = opt(
    "--type",
    "TYPE",
    "Only lines with this type= (traffic, event, utm)",
);

pub const SUBTYPE: Flag = opt(
    "--subtype",
    "SUBTYPE",
    "Only lines with this subtype= (forward, system...)",
);

pub const VD: Flag = opt("--vd", "VDOM", "Only lines of this virtual domain (vd=)");

pub const IP: Flag = opt(
    "--ip",
    "ADDR",
    "Only lines whose srcip= or dstip= is this IPv4 or IPv6 address",
);

pub const COVERAGE: Flag = switch(
    "--coverage",
    "For --device: the days (or hours) in the range with no archive, and the days with few lines",
);

pub const COVERAGE_BY: Flag = opt("--by", "UNIT", "--coverage per day or per hour").default("day");

pub const THIN_BELOW: Flag = opt(
    "--thin-below",
    "PCT",
    "--coverage: a day with fewer lines than this percentage of the device's median day is thin",
)
.default("25");

pub const PATTERN: Flag = opt(
    "--regexp",
    "PATTERN",
    "What a line must contain: a regular expression (Rust regex syntax), or with -F a fixed string; also given as the first bare word",
)
.short("-e")
.operand();

pub const FIXED: Flag = switch(
    "--fixed-strings",
    "PATTERN is a fixed string, not a regular expression",
)
.short("-F");

pub const COUNT: Flag = switch(
    "--count",
    "Print KEY:N (matching lines) per archive instead of the lines",
)
.short("-c");

pub const MAX_COUNT: Flag = opt(
    "--max-count",
    "N",
    "Print at most N matching lines of each archive (it is still read whole, to prove it)",
)
.short("-m");

pub const GREP_JSON: Flag = switch(
    "--json",
    "One JSON object per matching line: {\"key\": ..., \"line\": ...}",
);

pub const SEARCH_LIMIT: Flag =
    opt("--limit", "N", "Print at most N archives (0: all)").default("0");

pub const LS_LIMIT: Flag = opt("--limit", "N", "Print at most N files (0: all)").default("0");

pub const REMOTE: Flag = switch(
    "--remote",
    "List the archive (--bucket or --dest) instead of the inventory",
);

pub const INVENTORY_LIMIT: Flag = opt("--limit", "N", "Rows to print, newest first").default("20");

pub const INTERVAL: Flag = opt(
    "--interval",
    "AGE",
    "Time between the starts of two upload runs",
)
.default("1h");

pub const ENV_FILE: Flag = opt(
    "--env-file",
    "PATH",
    "Check this env file's permissions (repeatable)",
)
.repeat();

pub const ALL: Flag = switch("--all", "Read back every object (the default)");

pub const SAMPLE: Flag = opt(
    "--sample",
    "PERCENT",
    "Read back a random PERCENT of the objects (0.1-100); the rest are checked for presence and size by the listing",
);

pub const MANIFESTS: Flag = switch(
    "--manifests",
    "Check the signed manifest chain instead of the inventory: every signature and link, then every object the chain records",
);

pub const PUBLIC_KEY: Flag = opt(
    "--public-key",
    "FILE",
    "The manifests' public key (keygen's .pub file); without it the copy stored in the archive is trusted",
);

pub const TO: Flag = opt("--to", "DIR", "Where to restore (created if missing)");

pub const RESTORE_KEY: Flag = opt(
    "--key",
    "KEY",
    "One archived key (repeatable); default: every selected file",
)
.repeat();

pub const RESTORE_DRY_RUN: Flag =
    switch("--dry-run", "Print what would be restored, fetch nothing");

pub const READ: Flag = switch(
    "--read",
    "Read back objects without a stored checksum, to prove their SHA-256",
);

pub const KEYGEN_KEY: Flag =
    opt("--key", "PATH", "Where to write the private key").env(&["MANIFEST_KEY"]);

pub const OLDER_THAN: Flag = opt(
    "--older-than",
    "DAYS",
    "Retention in days; under 365 is refused unless --force",
);

pub const YES: Flag = switch("--yes", "Delete for real");

pub const FORCE: Flag = switch("--force", "Allow a retention under 365 days");

pub const DEMO_SERVE: Flag = switch(
    "--serve",
    "Then verify the archive and serve the API and dashboard on loopback until Ctrl-C",
);

pub const WORKDIR: Flag =
    opt("--workdir", "DIR", "Where the demo keeps its files").default("fgbackup-demo");

pub const OUT: Flag = opt(
    "--out",
    "DIR",
    "Where to write (one sub-directory per device)",
);

pub const DEVICES: Flag = opt("--devices", "N", "Number of FortiGate devices").default("3");

pub const FILES: Flag = opt("--files", "N", "Hourly files per device").default("4");

pub const SIZE: Flag = opt(
    "--size",
    "SIZE",
    "Compressed size of each file, e.g. 100K, 64M",
)
.default("100K");

pub const SEED: Flag = opt("--seed", "N", "Random seed; same seed, same content").default("1");

pub const PROGRESS_ON: Flag = switch(
    "--progress",
    "Show live progress even when stderr is not a terminal",
)
.short("-P");
pub const NO_PROGRESS: Flag = switch(
    "--no-progress",
    "No live progress, even on a terminal (it is on by default there)",
);
pub const VERBOSE: Flag = switch(
    "--verbose",
    "One line per file even while progress is shown",
)
.short("-v");
pub const QUIET: Flag =
    switch("--quiet", "Errors only: no progress, no per-file lines").short("-q");

// Settings only the environment gives: the suite's variables.

pub const GMAIL_USER: Var = var(
    "GMAIL_USER",
    "SMTP login (or SMTP_USER); also the sender unless EMAIL_FROM is set",
);
pub const GMAIL_APP_PASSWORD: Var = secret(
    "GMAIL_APP_PASSWORD",
    "SMTP password (or SMTP_PASSWORD): set with the login, or neither for a relay",
);
pub const SMTP_USER: Var = var("SMTP_USER", "SMTP login when GMAIL_USER is not set");
pub const SMTP_PASSWORD: Var = secret(
    "SMTP_PASSWORD",
    "SMTP password when GMAIL_APP_PASSWORD is not set",
);
pub const EMAIL_FROM: Var = var(
    "EMAIL_FROM",
    "Sender address (default: the login, else fgbackup@<host name>)",
);
pub const EMAIL_DRY_RUN: Var = var(
    "EMAIL_DRY_RUN",
    "1: print the message instead of sending it",
);
pub const EMAIL_NOTIFY_ON: Var = var(
    "EMAIL_NOTIFY_ON",
    "When to send: always, success or failure",
)
.default("always");
pub const SLACK_WEBHOOK_URL: Var = secret("SLACK_WEBHOOK_URL", "Slack incoming webhook");
pub const SLACK_NOTIFY_ON: Var = var(
    "SLACK_NOTIFY_ON",
    "When to post: always, success or failure",
)
.default("failure");
pub const DISCORD_WEBHOOK_URL: Var = secret("DISCORD_WEBHOOK_URL", "Discord webhook");
pub const DISCORD_NOTIFY_ON: Var = var(
    "DISCORD_NOTIFY_ON",
    "When to post: always, success or failure",
)
.default("failure");
pub const WEBHOOK_URL: Var = secret(
    "WEBHOOK_URL",
    "Any http(s) URL: the run's summary is POSTed as JSON",
);
pub const WEBHOOK_NOTIFY_ON: Var = var(
    "WEBHOOK_NOTIFY_ON",
    "When to post: always, success or failure",
)
.default("always");
pub const TELEGRAM_BOT_TOKEN: Var = secret(
    "TELEGRAM_BOT_TOKEN",
    "Telegram bot token; needs TELEGRAM_CHAT_ID",
);
pub const TELEGRAM_CHAT_ID: Var = var("TELEGRAM_CHAT_ID", "Telegram chat to post to");
pub const TELEGRAM_API_URL: Var =
    var("TELEGRAM_API_URL", "Telegram API host").default("https://api.telegram.org");
pub const TELEGRAM_NOTIFY_ON: Var = var(
    "TELEGRAM_NOTIFY_ON",
    "When to post: always, success or failure",
)
.default("failure");

pub const AWS_ACCESS_KEY_ID: Var = var(
    aws::AWS_ACCESS_KEY_ID,
    "Access key, with AWS_SECRET_ACCESS_KEY; else the profile's",
);
pub const AWS_SECRET_ACCESS_KEY: Var = secret(aws::AWS_SECRET_ACCESS_KEY, "Secret key");
pub const AWS_SESSION_TOKEN: Var = secret(
    aws::AWS_SESSION_TOKEN,
    "Session token of temporary credentials",
);
pub const AWS_PROFILE: Var =
    var(aws::AWS_PROFILE, "Profile, when --profile is not given").default(aws::DEFAULT_PROFILE);
pub const AWS_REGION: Var = var(aws::AWS_REGION, "Region, when --region is not given");
pub const AWS_DEFAULT_REGION: Var = var(
    aws::AWS_DEFAULT_REGION,
    "Region, when AWS_REGION is not set",
);
pub const AWS_ENDPOINT_URL_S3: Var = var(
    aws::AWS_ENDPOINT_URL_S3,
    "Endpoint, when --endpoint is not given",
);
pub const AWS_ENDPOINT_URL: Var = var(
    aws::AWS_ENDPOINT_URL,
    "Endpoint, when AWS_ENDPOINT_URL_S3 is not set",
);
pub const AWS_CONFIG_FILE: Var =
    var(aws::AWS_CONFIG_FILE, "The profiles' config file").default("~/.aws/config");
pub const AWS_SHARED_CREDENTIALS_FILE: Var = var(
    aws::AWS_SHARED_CREDENTIALS_FILE,
    "The profiles' credentials file",
)
.default("~/.aws/credentials");
pub const HOME: Var = var(aws::HOME, "Where ~/.aws is");

pub const APP_TOKENS: Var = secret(
    "APP_TOKENS",
    "API bearer tokens, comma-separated (also --tokens-file)",
);

/// Every variable the table knows, for checks that cover them all (doctor's
/// private env files, help pages). Doctor names the secrets it finds in
/// this order: credentials first.
pub const VARS: &[&Var] = &[
    &AWS_ACCESS_KEY_ID,
    &AWS_SECRET_ACCESS_KEY,
    &AWS_SESSION_TOKEN,
    &AWS_PROFILE,
    &AWS_REGION,
    &AWS_DEFAULT_REGION,
    &AWS_ENDPOINT_URL_S3,
    &AWS_ENDPOINT_URL,
    &AWS_CONFIG_FILE,
    &AWS_SHARED_CREDENTIALS_FILE,
    &HOME,
    &GMAIL_USER,
    &GMAIL_APP_PASSWORD,
    &SMTP_USER,
    &SMTP_PASSWORD,
    &EMAIL_FROM,
    &EMAIL_DRY_RUN,
    &EMAIL_NOTIFY_ON,
    &APP_TOKENS,
    &TELEGRAM_BOT_TOKEN,
    &TELEGRAM_CHAT_ID,
    &TELEGRAM_API_URL,
    &TELEGRAM_NOTIFY_ON,
    &SLACK_WEBHOOK_URL,
    &SLACK_NOTIFY_ON,
    &DISCORD_WEBHOOK_URL,
    &DISCORD_NOTIFY_ON,
    &WEBHOOK_URL,
    &WEBHOOK_NOTIFY_ON,
];

// ---- push tokens, receiving pushes, and `fgbackup push` ----

pub const TOKEN_KEY: Flag = opt(
    "--token-key",
    "PATH",
    "Key file of the upload tokens (from 'fgbackup token keygen'; not the manifest key)",
)
.env(&["PUSH_TOKEN_KEY"])
.default(crate::push::token::DEFAULT_KEY_PATH);

pub const TOKEN_PREFIX: Flag = opt(
    "--prefix",
    "PREFIX",
    "Keys the token may write: PREFIX + the pushed name (e.g. site7/); required",
);

pub const TOKEN_EXPIRES: Flag = opt(
    "--expires",
    "DURATION",
    "Lifetime, e.g. 12h or 7d; at most 30d unless --force",
)
.default("7d");

pub const TOKEN_MAX_BYTES: Flag = opt(
    "--max-bytes",
    "SIZE",
    "Bytes the token may archive in all, e.g. 20G (none: no limit of its own)",
);

pub const TOKEN_MAX_FILES: Flag = opt(
    "--max-files",
    "N",
    "Files the token may archive (none: no limit)",
);

pub const TOKEN_MAX_ATTEMPTS: Flag = opt(
    "--max-attempts",
    "N",
    "Upload requests the token may make, refused ones included (none: no limit)",
);

pub const TOKEN_NOTE: Flag = opt(
    "--note",
    "TEXT",
    "Shown by 'token list' (a ticket number, who it is for)",
);

pub const TOKEN_ANY_NAME: Flag = switch(
    "--any-name",
    "Accept names not ending in .gz (they are archived byte for byte, no gzip proof)",
);

pub const TOKEN_FORCE: Flag = switch("--force", "Allow --expires beyond 30 days");

pub const TOKEN_ID: Flag = opt("--id", "ID", "The token's id, as 'token list' shows it").operand();

pub const ACCEPT_UPLOADS: Flag = switch(
    "--accept-uploads",
    "Accept PUT /upload/NAME from holders of upload tokens (needs the destination flags)",
)
.env(&["ACCEPT_UPLOADS"]);

pub const SPOOL: Flag = opt(
    "--spool",
    "DIR",
    "Where pushed bodies wait until archived (default: the database path + .spool)",
)
.env(&["SPOOL_DIR"]);

pub const SPOOL_MIN_FREE: Flag = opt(
    "--spool-min-free",
    "SIZE",
    "Free space the spool's file system keeps; a push that would go below gets 507",
)
.env(&["SPOOL_MIN_FREE"])
.default("1G");

pub const PUSH_MAX: Flag = opt(
    "--push-max",
    "N",
    "Pushes received at once, 1-64; more get 503 with Retry-After",
)
.env(&["PUSH_MAX"])
.default("4");

pub const PUSH_MAX_FILE: Flag = opt(
    "--push-max-file",
    "SIZE",
    "Largest file one push may send (413 beyond)",
)
.env(&["PUSH_MAX_FILE"])
.default("8G");

pub const PUSH_URL: Flag = opt(
    "--url",
    "URL",
    "The server that accepts pushes, e.g. https://backup.example:8443",
)
.env(&["FGBACKUP_PUSH_URL"]);

pub const PUSH_TOKEN: Flag = opt(
    "--token",
    "TOKEN",
    "An upload token from 'fgbackup token issue' (better: FGBACKUP_PUSH_TOKEN, out of ps)",
)
.env(&["FGBACKUP_PUSH_TOKEN"]);

pub const PUSH_DELETE: Flag = switch(
    "--delete",
    "Delete each file once the server answered 201 or 200 with the file's own sha256",
);

pub const PUSH_JSON: Flag = switch(
    "--json",
    "One JSON object per file and line on stdout, then the totals",
);

pub const PUSH_FILES: Flag = opt(
    "--file",
    "FILE",
    "A file to push (or name files after the flags)",
)
.operand()
.repeat();
