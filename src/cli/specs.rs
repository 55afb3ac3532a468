//! The subcommands' help pages: their prose and which groups of
//! [`super::table`] flags each takes. Names and defaults of flags never
//! appear here; the table renders them.

use super::flags;
use super::table::{Group, Spec, group};

const MANIFEST_KEY: Group = group("SIGNED MANIFESTS", &[flags::MANIFEST_KEY]);

const DEVICE: Group = group("SELECTION", &[flags::DEVICE]);

const UPLOAD_EXIT: &str = "\
EXIT STATUS:
    0 every file archived (or already archived), 1 any file failed, the run could not start, it
    stopped early (stop signal or SIGHUP; endpoint unreachable: 5 connection failures in a row;
    credentials refused: 3 in a row), or the manifest chain has a problem,
    2 usage or configuration error.";

pub const UPLOAD: Spec = Spec {
    name: "upload",
    about: "Archive the .gz files of a directory (the job backup_fg.py did)",
    usage: "fgbackup upload --dir DIR (--bucket NAME | --dest file:///DIR) [OPTIONS]",
    intro: "Archives each file, verifies every copy, records each in SQLite.",
    groups: &[
        &SOURCE,
        &BUCKET,
        &ARCHIVE,
        &DB,
        &BEHAVIOUR,
        &MANIFEST_KEY,
        &TRANSFER,
        &NOTIFY,
        &OUTPUT,
    ],
    outro: UPLOAD_EXIT,
};

pub const LS: Spec = Spec {
    name: "ls",
    about: "List archived files from the inventory (or the archive itself), with totals",
    usage: "fgbackup ls [--since D] [--until D] [--device NAME] [--status S] [--prefix P] [OPTIONS]",
    intro: "Lists the inventory's newest row per key, oldest first, with human-readable sizes and
totals at the end. With --remote, lists the objects in the archive instead (needs
--bucket or --dest; the content index's sidecars under _index/ left out) and marks those the
inventory does not know.",
    groups: &[
        &DB,
        &DATES,
        &DEVICE,
        &group(
            "SELECTION",
            &[flags::STATUS, flags::LS_LIMIT, flags::REMOTE],
        ),
        &BUCKET,
        &ARCHIVE,
        &JSON_ONLY,
    ],
    outro: "--prefix selects keys starting with it (in the inventory and in the archive).

EXIT STATUS:
    0 listed (also when nothing matched), 1 the inventory or archive could not be read,
    2 a usage error.",
};

/// The filters of `search` and `grep` (and `GET /search`).
pub const LOG_FILTERS: Group = Group {
    title: "FILTERS (on each log line; the content index narrows the archives)",
    flags: &[
        flags::LOG_DEVICE,
        flags::LOG_SINCE,
        flags::LOG_UNTIL,
        flags::ACTION,
        flags::LOG_TYPE,
        flags::SUBTYPE,
        flags::VD,
        flags::IP,
    ],
    vars: &[],
    note: "",
};

pub const SEARCH: Spec = Spec {
    name: "search",
    about: "Find the archives holding matching log lines, from the content index",
    usage: "fgbackup search [--device NAME] [--since WHEN] [--until WHEN] [FILTERS] [OPTIONS]",
    intro: "Answers from the inventory's content index (built while uploads read each .gz, see
--index): one line per archive that may hold matching lines, with its first day, devices,
matching lines (exact without --ip, an upper bound with it), and first and last time (UTC).
An archive the index cannot speak for (uploaded before the index, with --index never, or
indexed in part) is not listed: the count of such archives is printed on stderr; `fgbackup
reindex --content` indexes them, and `fgbackup grep` reads them whatever the filters.

With --coverage and --device, lists the days in the range with no line of the device
(missing) and the days with fewer lines than --thin-below percent of its median day (thin),
apart; --by hour lists the hours no archive of the device spans (missing only). The range is
--since/--until, by default from the device's first day to the last whole day (or hour).",
    groups: &[
        &LOG_FILTERS,
        &group(
            "OUTPUT",
            &[
                flags::COVERAGE,
                flags::COVERAGE_BY,
                flags::THIN_BELOW,
                flags::SEARCH_LIMIT,
                flags::JSON_RESULT,
            ],
        ),
        &DB,
    ],
    outro: "EXIT STATUS:
    0 something matched (with --coverage: no day missing or thin); 1 nothing matched (with
    --coverage: a day or hour missing or thin), or the inventory could not be read;
    2 a usage error.",
};

pub const GREP: Spec = Spec {
    name: "grep",
    about: "Print the archived log lines that match, read and proven from the archive",
    usage: "fgbackup grep PATTERN [FILTERS] (--bucket NAME | --dest file:///DIR) [OPTIONS]",
    intro: "Reads the archived objects that may hold matching lines from the store, --workers at a
time, and prints each matching line as KEY:LINE. The content index (see `search`) chooses
them: an archive is left out only when its index, built from the very bytes archived, says
no line can match; an archive without a whole index is always read. Each archive is
streamed through SHA-256 and inflated on the way; its lines are printed only once its size
and SHA-256 are the inventory's, together and in order. An altered, missing or unreadable
archive is an error line on stderr and none of its lines. A line matches when it holds
PATTERN and its own fields pass every filter: with --ip, the address must be its srcip= or
dstip=, not anywhere in the line. A pattern that starts with - goes after -- or -e.",
    groups: &[
        &group(
            "MATCHING",
            &[
                flags::PATTERN,
                flags::FIXED,
                flags::COUNT,
                flags::MAX_COUNT,
                flags::GREP_JSON,
            ],
        ),
        &LOG_FILTERS,
        &BUCKET,
        &ARCHIVE,
        &DB,
        &READ_TRANSFER,
        &PROGRESS,
    ],
    outro:
        "The last line, on stderr, counts the lines, the archives read and those the index left out.
It stops early when its reader goes away (| head) or on SIGINT/SIGTERM.

EXIT STATUS:
    0 a line matched and every archive read was proven; 1 no line matched, or an archive
    could not be read or proven, or the run was cut short; 2 a usage or configuration error.",
};

pub const INVENTORY: Spec = Spec {
    name: "inventory",
    about: "Print the newest rows of the inventory database",
    usage: "fgbackup inventory [--db PATH] [--limit N]",
    intro: "",
    groups: &[&DB, &group("OPTIONS", &[flags::INVENTORY_LIMIT])],
    outro: "",
};

pub const SERVE_CMD: Spec = Spec {
    name: "serve",
    about: "Serve the inventory read-only over HTTP (the job backup_api.py did)",
    usage: "fgbackup serve [OPTIONS]",
    intro: "",
    groups: &[&SERVE, &DB, &PUSH_SERVER, &BUCKET, &ARCHIVE, &TRANSFER],
    outro: "The database is opened read-only; with --accept-uploads pushed files are archived (to
--bucket or --dest, the archive and transfer flags as for upload) and recorded in it.
Otherwise --bucket and the S3 options are only for --presign.

ENDPOINTS:
    GET /health                      no auth; 503 when the database cannot be read
    GET /backups                     ?status= &filename= &date_from= &date_to= &limit= &cursor=
                                     status: a row status, or failed (every failed_*);
                                     newest first; next page in the Link header
    GET /backups/last
    GET /backups/{id}
    GET /backups/{id}/presign        ?expires=SECONDS (with --presign)
    GET /stats                       per day: total (rows), files (distinct files), uploaded,
                                     skipped_exists, failed, bytes_uploaded, last_verify (the
                                     newest verify's verdict by that day) ?date_from= &date_to=
    GET /verifications/last          the newest finished verify; 404 before the first
    GET /metrics                     Prometheus text format
    PUT /upload/NAME                 with --accept-uploads and an upload token (HEAD, PATCH
                                     resume); see docs/PUSH.md

SIGTERM or Ctrl-C: in-flight requests are answered, then exit 0.",
};

pub const DAEMON: Spec = Spec {
    name: "daemon",
    about: "Run the API and an upload every --interval in one process",
    usage: "fgbackup daemon --interval 1h [UPLOAD OPTIONS] [API OPTIONS]",
    intro: "The API and a periodic upload in one process (no systemd timer needed).",
    groups: &[
        &group("SCHEDULE", &[flags::INTERVAL]),
        &SOURCE,
        &BUCKET,
        &ARCHIVE,
        &DB,
        &BEHAVIOUR,
        &MANIFEST_KEY,
        &TRANSFER,
        &NOTIFY,
        &SERVE,
        &PUSH_SERVER,
    ],
    outro:
        "A failed run (server down, bucket missing...) is logged and retried at the next interval.
/metrics also reports this process's runs (fgbackup_daemon_*). SIGTERM ends the current
run cleanly (see upload) and stops the API; exit 0.",
};

pub const DOCTOR: Spec = Spec {
    name: "doctor",
    about: "Check a deployment end to end and say how to fix what is wrong",
    usage: "fgbackup doctor [--env-file PATH]... [UPLOAD OPTIONS]",
    intro: "Takes the same options and environment as 'fgbackup upload' and checks, one line each:
env file permissions (secrets must not be readable by others; default: the suite's
/etc/default/backup_fg and /etc/default/backup_api), the configuration, the log directory
(readable; writable when --delete is set), the database (writable, schema version), the S3
endpoint (reachable, TLS trusted, credentials valid, bucket exists), a probe object (written,
verified, read back, deleted), and the SMTP server when email is configured.",
    groups: &[
        &group("DOCTOR", &[flags::ENV_FILE]),
        &JSON_ONLY,
        &SOURCE,
        &BUCKET,
        &ARCHIVE,
        &DB,
        &BEHAVIOUR,
        &MANIFEST_KEY,
        &TRANSFER,
        &NOTIFY,
    ],
    outro: "Exit status 1 when any check fails, 0 otherwise (warnings included).",
};

pub const VERIFY: Spec = Spec {
    name: "verify",
    about: "Read the archive back and prove it holds what the inventory says",
    usage: "fgbackup verify (--bucket NAME | --dest file:///DIR) [OPTIONS]",
    intro: "Lists the prefix once, then reads every object the inventory says was archived (newest
row per key) and hashes it: each object is ok, missing, altered (content, stored checksum
or sha256 metadata differ), size_mismatch, or error (could not be read). Objects in the
prefix the inventory never recorded are reported as extra. Each problem is printed as one
line; the summary is the last line; the run and its problems are recorded in the
inventory (verifications, verification_findings) and served at /verifications/last.",
    groups: &[
        &group(
            "VERIFY",
            &[
                flags::ALL,
                flags::SAMPLE,
                flags::MANIFESTS,
                flags::PUBLIC_KEY,
            ],
        ),
        &DATES,
        &BUCKET,
        &ARCHIVE,
        &DB,
        &READ_TRANSFER,
        &NOTIFY,
        &OUTPUT,
    ],
    outro: "With --since/--until no extras are reported.

EXIT STATUS:
    0 every object ok and nothing extra; 1 any problem, or the run was stopped;
    2 a usage or configuration error.",
};

pub const RESTORE: Spec = Spec {
    name: "restore",
    about: "Fetch archived files into a directory, each proven before it appears",
    usage: "fgbackup restore --to DIR (--bucket NAME | --dest file:///DIR) [OPTIONS]",
    intro: "Chooses archived files from the inventory (newest row per key), streams each into a
temporary file in DIR while hashing it, and only when size and SHA-256 equal the
inventory's gives it its name (link(2): an existing file is never replaced; one that
already holds the same bytes counts as present). Keys keep their path below --prefix.",
    groups: &[
        &group(
            "RESTORE",
            &[flags::TO, flags::RESTORE_KEY, flags::RESTORE_DRY_RUN],
        ),
        &DATES,
        &DEVICE,
        &BUCKET,
        &ARCHIVE,
        &DB,
        &READ_TRANSFER,
        &PROGRESS,
    ],
    outro: "EXIT STATUS:
    0 everything selected is restored or already present; 1 any file failed,
    held other bytes, or nothing matched, or the run was cut short (a stop signal,
    the endpoint unreachable); 2 a usage or configuration error.",
};

pub const REINDEX: Spec = Spec {
    name: "reindex",
    about: "Rebuild or fill in the inventory from the archive (after losing the database)",
    usage: "fgbackup reindex (--bucket NAME | --dest file:///DIR) [--read] [OPTIONS]",
    intro:
        "Lists the prefix and adds a row (status reindexed) for every object the inventory has no
archived row for, with its size, key, URL and modification time. The SHA-256 comes from
the server's stored checksum when it keeps one, else from reading the object back with
--read (always for a directory store). Without either, the row records the sha256 the
object's metadata claims (or none) and is marked reindexed_unproven. Idempotent: a second
run adds nothing. Creates the database if it does not exist. With --content it then reads back
every archived object the content index cannot speak for (uploaded before the index, with
--index never, or indexed in part), --workers at a time, and indexes it once its size and
SHA-256 are the inventory's. An archive whose sidecar (PREFIX_index/KEY.fgix, written by the
upload that indexed it) names the same key, size and SHA-256 is indexed from the sidecar
instead, without reading the archive: how a central box searches what the sites uploaded.
--read-objects ignores the sidecars.",
    groups: &[
        &group(
            "REINDEX",
            &[
                flags::READ,
                flags::CONTENT,
                flags::READ_OBJECTS,
                flags::WORKERS,
            ],
        ),
        &BUCKET,
        &ARCHIVE_SERIAL,
        &DB,
        &READ_TRANSFER,
    ],
    outro: "EXIT STATUS:
    0 every object indexed; 1 an object could not be read; 2 a usage error.",
};

pub const KEYGEN: Spec = Spec {
    name: "keygen",
    about: "Create the Ed25519 key pair that signs the manifest chain",
    usage: "fgbackup keygen --key PATH",
    intro:
        "Writes an Ed25519 private key to PATH (PEM, mode 0600; an existing file is never replaced)
and its public key to PATH.pub (one line: ed25519 BASE64). Then run uploads with
--manifest-key PATH (or MANIFEST_KEY=PATH): after each run, and at least daily, a signed
manifest of what was archived goes to PREFIX_manifests/HOST/. Auditors check the chain with
'fgbackup verify --manifests --public-key PATH.pub'. The private key is never printed.",
    groups: &[&group("OPTIONS", &[flags::KEYGEN_KEY])],
    outro: "",
};

pub const PRUNE: Spec = Spec {
    name: "prune",
    about: "Remove archived objects older than a retention period (dry run unless --yes)",
    usage: "fgbackup prune --older-than DAYS (--bucket NAME | --dest file:///DIR) [--yes] [OPTIONS]",
    intro:
        "For stores fgbackup owns (a directory; a bucket without lifecycle rules). Chooses archived
files from the inventory whose upload is more than DAYS days old. A dry run unless --yes.
Never deletes an object under Object Lock retention or legal hold. Each removal is recorded
in the inventory (prunes) and listed in the next signed manifest, so pruning is part of the
record, not tampering. Also prints the equivalent S3 lifecycle rule.",
    groups: &[
        &group("PRUNE", &[flags::OLDER_THAN, flags::YES, flags::FORCE]),
        &MANIFEST_KEY,
        &BUCKET,
        &ARCHIVE_SERIAL,
        &DB,
        &READ_TRANSFER,
    ],
    outro: "EXIT STATUS:
    0 done (or dry run); 1 an object could not be deleted; 2 a usage error.",
};

pub const DEMO: Spec = Spec {
    name: "demo",
    about: "Generate sample logs, archive them to a local directory, print the inventory",
    usage: "fgbackup demo [--workdir DIR] [--serve]",
    intro: "A complete run on sample data, no server needed. Generates FortiGate-style logs under
WORKDIR/logs, archives them to the directory store WORKDIR/archive with the inventory in
WORKDIR/inventory.db, then prints the inventory. Running it again shows files skipped as
already archived.

With --serve it then verifies the archive (every object read back and compared) and serves
the API with the dashboard on 127.0.0.1 (a free port), printing the page's URL and a token
made for this run only; open the URL, paste the token, and watch. Ctrl-C stops it.",
    groups: &[&group("OPTIONS", &[flags::WORKDIR, flags::DEMO_SERVE])],
    outro: "",
};

pub const TAIL: Spec = Spec {
    name: "tail",
    about: "Follow a server's live events (runs, files, verifies) in a terminal",
    usage: "fgbackup tail --url URL [--token TOKEN] [--json]",
    intro: "Reads GET /events of an fgbackup serve or daemon and prints one line per event as it
happens: runs started and finished, each file archived or failed, verifies finished, the content
index growing. When the server ends the stream (after 30 minutes), drops it (this terminal fell
behind) or restarts, tail reconnects and asks for the events after the last one it printed;
if the server no longer keeps them, it says so. Stop it with Ctrl-C.",
    groups: &[&group(
        "OPTIONS",
        &[
            flags::TAIL_URL,
            flags::TAIL_TOKEN,
            flags::TAIL_JSON,
            flags::CA_FILE,
        ],
    )],
    outro: "Keys and reasons are printed with control characters escaped (\\u{1b}, \\n), so a
file name cannot move the cursor or forge a line; --json prints them as JSON strings.

Exit status: 0 when stopped, 1 when the server cannot be reached at first (a wrong --url) or
the connection went silent (45 s without even a keepalive comment), 2 when the token is
refused or the flags are wrong.",
};

pub const GEN_LOGS: Spec = Spec {
    name: "gen-logs",
    about: "Write realistic FortiGate .gz log files (for tests, demos, benchmarks)",
    usage: "fgbackup gen-logs --out DIR [--devices N] [--files N] [--size SIZE] [--seed N]",
    intro: "",
    groups: &[&group(
        "OPTIONS",
        &[
            flags::OUT,
            flags::DEVICES,
            flags::FILES,
            flags::SIZE,
            flags::SEED,
        ],
    )],
    outro: "",
};

const TOKEN_KEY: Group = group("KEY", &[flags::TOKEN_KEY]);

const TOKEN_FORMAT: &str =
    "A token is fgpush1.PAYLOAD.MAC: PAYLOAD the base64url JSON of its id, prefix, limits and
expiry, MAC the HMAC-SHA256 of 'fgpush1.PAYLOAD' under the key file (docs/PUSH.md). Its row
in the inventory holds what it used and whether it is revoked.";

pub const TOKEN_KEYGEN: Spec = Spec {
    name: "token keygen",
    about: "Create the key file that signs upload tokens",
    usage: "fgbackup token keygen [--token-key PATH]",
    intro: "Writes 32 random bytes (hex) to --token-key, mode 0600, and never replaces a key file:
every token it signed would stop working. Keep it on the server only.",
    groups: &[&TOKEN_KEY],
    outro: "EXIT STATUS:
    0 written; 1 it could not be written (or one is there already); 2 a usage error.",
};

pub const TOKEN_ISSUE: Spec = Spec {
    name: "token issue",
    about: "Issue an upload token for one key prefix, with limits and an expiry",
    usage: "fgbackup token issue --prefix site7/ [--expires 7d] [--max-bytes 20G] [OPTIONS]",
    intro: TOKEN_FORMAT,
    groups: &[
        &group(
            "TOKEN",
            &[
                flags::TOKEN_PREFIX,
                flags::TOKEN_EXPIRES,
                flags::TOKEN_MAX_BYTES,
                flags::TOKEN_MAX_FILES,
                flags::TOKEN_MAX_ATTEMPTS,
                flags::TOKEN_NOTE,
                flags::TOKEN_ANY_NAME,
                flags::TOKEN_FORCE,
            ],
        ),
        &TOKEN_KEY,
        &DB,
        &JSON_ONLY,
    ],
    outro: "The token is printed on stdout once and stored nowhere: hand it over like a password.

EXIT STATUS:
    0 issued; 1 the key or the inventory could not be used; 2 a usage error.",
};

pub const TOKEN_LIST: Spec = Spec {
    name: "token list",
    about: "List upload tokens: id, prefix, limits, use, expiry, note (never the token)",
    usage: "fgbackup token list [--db PATH] [--json]",
    intro: "",
    groups: &[&DB, &JSON_ONLY],
    outro: "",
};

pub const TOKEN_REVOKE: Spec = Spec {
    name: "token revoke",
    about: "Revoke an upload token: its next request is refused (403)",
    usage: "fgbackup token revoke ID [--db PATH]",
    intro: "A push already being received completes; every later request with the token gets 403.",
    groups: &[&group("TOKEN", &[flags::TOKEN_ID]), &DB],
    outro: "EXIT STATUS:
    0 revoked (or already revoked); 1 no such token, or the inventory could not be written;
    2 a usage error.",
};

pub const PUSH: Spec = Spec {
    name: "push",
    about: "Send files to a server that accepts pushes, resuming after a cut",
    usage: "fgbackup push FILE... --url URL --token TOKEN [--delete] [--json]",
    intro: "For each file: hashes it, asks the server what it holds of it already (HEAD), sends
the rest (PUT, or PATCH from Upload-Offset after a cut), and retries with backoff on a
connection failure, 408 or 5xx (not 507: a full spool waits for its admin). The name
pushed is the file's name; the key is the token's prefix plus that name.",
    groups: &[
        &group(
            "PUSH",
            &[
                flags::PUSH_FILES,
                flags::PUSH_URL,
                flags::PUSH_TOKEN,
                flags::PUSH_DELETE,
                flags::CA_FILE,
            ],
        ),
        &group(
            "OUTPUT",
            &[flags::PROGRESS_ON, flags::NO_PROGRESS, flags::PUSH_JSON],
        ),
    ],
    outro: "EXIT STATUS:
    0 every file archived (201) or already archived (200); 1 any file was refused or could
    not be sent; 2 a usage error.",
};

const PUSH_SERVER: Group = Group {
    title: "RECEIVING PUSHES",
    flags: &[
        flags::ACCEPT_UPLOADS,
        flags::SPOOL,
        flags::SPOOL_MIN_FREE,
        flags::PUSH_MAX,
        flags::PUSH_MAX_FILE,
        flags::TOKEN_KEY,
    ],
    vars: &[],
    note: "PUT /upload/NAME with an upload token; the archive flags say where files go (docs/PUSH.md).",
};

pub const DB: Group = Group {
    title: "INVENTORY",
    flags: &[flags::DB],
    vars: &[],
    note: "",
};

pub const SOURCE: Group = Group {
    title: "SOURCE",
    flags: &[flags::DIR, flags::INCLUDE, flags::MIN_AGE],
    vars: &[],
    note: "",
};

pub const BUCKET: Group = Group {
    title: "S3 BUCKET",
    flags: &[
        flags::BUCKET,
        flags::ENDPOINT,
        flags::REGION,
        flags::PROFILE,
    ],
    vars: &[
        flags::AWS_ACCESS_KEY_ID,
        flags::AWS_SECRET_ACCESS_KEY,
        flags::AWS_SESSION_TOKEN,
        flags::AWS_PROFILE,
        flags::AWS_REGION,
        flags::AWS_DEFAULT_REGION,
        flags::AWS_ENDPOINT_URL_S3,
        flags::AWS_ENDPOINT_URL,
        flags::AWS_CONFIG_FILE,
        flags::AWS_SHARED_CREDENTIALS_FILE,
        flags::HOME,
    ],
    note: "",
};

pub const ARCHIVE: Group = Group {
    title: "ARCHIVE",
    flags: &[
        flags::DEST,
        flags::PREFIX,
        flags::CA_FILE,
        flags::WORKERS,
        flags::RETRIES,
    ],
    vars: &[],
    note: "",
};

/// What `prune` and `reindex` read of the archive: they work one object
/// at a time, so they take no `--workers`.
pub const ARCHIVE_SERIAL: Group = Group {
    title: "ARCHIVE",
    flags: &[flags::DEST, flags::PREFIX, flags::CA_FILE, flags::RETRIES],
    vars: &[],
    note: "",
};

/// The one transfer setting of commands that only read the archive
/// (`verify`, `restore`, `reindex`, `prune`): what they send is not an
/// object, so multipart, storage class, encryption and locks do not apply.
pub const READ_TRANSFER: Group = Group {
    title: "TRANSFER",
    flags: &[flags::BWLIMIT],
    vars: &[],
    note: "",
};

pub const BEHAVIOUR: Group = Group {
    title: "BEHAVIOUR",
    flags: &[
        flags::DELETE,
        flags::NO_DELETE,
        flags::DRY_RUN,
        flags::ON_CONFLICT,
    ],
    vars: &[],
    note: "",
};

pub const TRANSFER: Group = Group {
    title: "TRANSFER",
    flags: &[
        flags::GZIP_CHECK,
        flags::NO_GZIP_CHECK,
        flags::INDEX,
        flags::BWLIMIT,
        flags::MULTIPART_CUTOFF,
        flags::PART_SIZE,
        flags::STORAGE_CLASS,
        flags::SSE,
        flags::SSE_KMS_KEY_ID,
        flags::OBJECT_LOCK,
        flags::OBJECT_LOCK_DAYS,
        flags::MAX_MEMORY,
    ],
    vars: &[],
    note: "",
};

pub const NOTIFY: Group = Group {
    title: "NOTIFICATIONS (after every run; they never change its outcome)",
    flags: &[
        flags::NOTIFY_EMAIL,
        flags::EMAIL_METHOD,
        flags::SMTP_HOST,
        flags::SMTP_PORT,
        flags::FLAG_FILE,
        flags::METRICS_TEXTFILE,
    ],
    vars: &[
        flags::GMAIL_USER,
        flags::GMAIL_APP_PASSWORD,
        flags::SMTP_USER,
        flags::SMTP_PASSWORD,
        flags::EMAIL_FROM,
        flags::EMAIL_DRY_RUN,
        flags::EMAIL_NOTIFY_ON,
        flags::SLACK_WEBHOOK_URL,
        flags::SLACK_NOTIFY_ON,
        flags::DISCORD_WEBHOOK_URL,
        flags::DISCORD_NOTIFY_ON,
        flags::WEBHOOK_URL,
        flags::WEBHOOK_NOTIFY_ON,
        flags::TELEGRAM_BOT_TOKEN,
        flags::TELEGRAM_CHAT_ID,
        flags::TELEGRAM_API_URL,
        flags::TELEGRAM_NOTIFY_ON,
    ],
    note: "Webhooks and the SMTP login come from these variables only (see docs/GUIDE.md).",
};

pub const OUTPUT: Group = Group {
    title: "OUTPUT",
    flags: &[
        flags::PROGRESS_ON,
        flags::NO_PROGRESS,
        flags::VERBOSE,
        flags::QUIET,
        flags::JSON,
    ],
    vars: &[],
    note: "",
};

/// The display and verbosity flags without `--json` (restore: its summary
/// is one line).
pub const PROGRESS: Group = Group {
    title: "OUTPUT",
    flags: &[
        flags::PROGRESS_ON,
        flags::NO_PROGRESS,
        flags::VERBOSE,
        flags::QUIET,
    ],
    vars: &[],
    note: "",
};

/// `--json` alone, for commands without progress (doctor).
pub const JSON_ONLY: Group = Group {
    title: "OUTPUT",
    flags: &[flags::JSON_RESULT],
    vars: &[],
    note: "",
};

pub const DATES: Group = Group {
    title: "SELECTION",
    flags: &[flags::SINCE, flags::UNTIL],
    vars: &[],
    note: "",
};

pub const SERVE: Group = Group {
    title: "API",
    flags: &[
        flags::LISTEN,
        flags::THREADS,
        flags::TOKENS_FILE,
        flags::METRICS_NO_AUTH,
        flags::PRESIGN,
        flags::PRESIGN_MAX,
        flags::EVENTS_MAX,
        flags::UI,
    ],
    vars: &[flags::APP_TOKENS],
    note: "",
};

/// Every subcommand, in the order `fgbackup --help` lists them.
pub static COMMANDS: &[Spec] = &[
    UPLOAD,
    LS,
    SEARCH,
    GREP,
    INVENTORY,
    SERVE_CMD,
    DAEMON,
    DOCTOR,
    VERIFY,
    RESTORE,
    REINDEX,
    KEYGEN,
    PRUNE,
    DEMO,
    TAIL,
    PUSH,
    TOKEN_KEYGEN,
    TOKEN_ISSUE,
    TOKEN_LIST,
    TOKEN_REVOKE,
    GEN_LOGS,
];

/// Words that name a family of subcommands (`fgbackup token issue`): the
/// word, and what `fgbackup token` alone says.
pub static FAMILIES: &[(&str, &str)] = &[(
    "token",
    "Upload tokens for 'fgbackup push' and curl: keygen, issue, list, revoke",
)];

/// The spec of subcommand `name` (`token issue` for a family's member).
pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

/// What `fgbackup WORD` alone says, when WORD names a family.
pub fn family(word: &str) -> Option<&'static str> {
    FAMILIES
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, about)| *about)
}
