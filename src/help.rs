//! `--help` texts. They name settings, never their values.

pub const MAIN: &str = "\
fgbackup - archive FortiGate syslog .gz files to S3/MinIO or a directory, verified

USAGE:
    fgbackup <COMMAND> [OPTIONS]

COMMANDS:
    upload      Archive the .gz files of a directory (the job backup_fg.py did)
    inventory   Print the newest rows of the inventory database
    serve       Serve the inventory read-only over HTTP (the job backup_api.py did)
    daemon      Run the API and an upload every --interval in one process
    doctor      Check a deployment end to end and say how to fix what is wrong
    verify      Read the archive back and prove it holds what the inventory says
    restore     Fetch archived files into a directory, each proven before it appears
    reindex     Rebuild or fill in the inventory from the archive (after losing the database)
    keygen      Create the Ed25519 key pair that signs the manifest chain
    prune       Remove archived objects older than a retention period (dry run unless --yes)
    demo        Generate sample logs, archive them to a local directory, print the inventory
    gen-logs    Write realistic FortiGate .gz log files (for tests, demos, benchmarks)

OPTIONS:
    -h, --help       Print help (also: fgbackup <COMMAND> --help)
    -V, --version    Print version

Log level: RUST_LOG=debug|info|warn|error (default info).
";

pub const UPLOAD: &str = "\
fgbackup upload - archive .gz files, verify every copy, record each in SQLite

USAGE:
    fgbackup upload --dir DIR (--bucket NAME | --dest file:///DIR) [OPTIONS]

SOURCE:
    --dir DIR            Directory scanned recursively [env: DIR]
    --include PATTERNS   Comma-separated file name patterns [default: *.gz]
    --min-age AGE        Skip files modified less than AGE ago (300, 90s, 5m, 1h) [default: 5m]

DESTINATION (one of):
    --bucket NAME        S3 bucket [env: BUCKET]
    --dest URL           file:///DIR for a directory (NFS, USB disk; outside --dir), or s3://BUCKET
    --prefix PREFIX      Key prefix; the key is PREFIX/<path relative to --dir>

S3 CONNECTION:
    --endpoint URL       S3-compatible endpoint, path-style (MinIO, Ceph...)
                         [env: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or endpoint_url in the profile]
    --region REGION      [env: AWS_REGION, AWS_DEFAULT_REGION, or the profile; default us-east-1]
    --profile NAME       Profile of ~/.aws/credentials and ~/.aws/config [env: AWS_PROFILE]
    --ca-file PEM        Also trust this CA for HTTPS (private CA of an air-gapped MinIO)
    Credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), or the profile.

BEHAVIOUR:
    --delete             Delete each local file after its copy is verified [env: DELETE_AFTER=true]
    --no-delete          Keep local files even if DELETE_AFTER=true
    --dry-run            Show what would happen; write nothing anywhere
    --on-conflict MODE   When the key holds other content: keep (report failed_conflict, keep the
                         file) or suffix (archive it beside, as NAME.<sha256 prefix>.EXT)
                         [default: keep]
    --gzip-check WHEN    Inflate .gz files to prove them complete before they may be deleted:
                         auto (only with --delete), always, or never [default: auto]
    --no-gzip-check      Same as --gzip-check never (a truncated .gz is then archived and
                         deleted like any other file)
    --workers N          Files processed in parallel, 1-64 [env: WORKERS] [default: 4]
    --retries N          Retries of transient network/server errors [default: 3]
    --manifest-key PATH  Sign a hash-chained manifest of what was archived after each run (and
                         at least daily) with this key from 'fgbackup keygen' [env: MANIFEST_KEY]

TRANSFER (S3):
    --bwlimit RATE       Bandwidth for the whole process: 512k, 10M (bare number = KiB/s), off,
                         or a timetable \"08:00,512k 19:00,off\" (local time) [default: off]
    --multipart-cutoff SIZE  Files up to this size go in one PUT [default: 256MiB]
    --part-size SIZE     Part size above the cutoff, 5MiB-5GiB [default: 64MiB]
    --storage-class C    Storage class of new objects, e.g. STANDARD_IA [default: the bucket's]
    --sse MODE           Server-side encryption of new objects: AES256 or aws:kms
    --sse-kms-key-id ID  KMS key for --sse aws:kms [default: the bucket's]
    --object-lock MODE   Lock every new object (WORM): GOVERNANCE or COMPLIANCE; the bucket must
                         have Object Lock enabled; needs --object-lock-days [env: OBJECT_LOCK_MODE]
    --object-lock-days N Days each new object stays locked, 1-36500 [env: OBJECT_LOCK_DAYS]
    (--max-memory is accepted and ignored: uploads stream from disk.)
    --db PATH            SQLite inventory [env: DB_PATH] [default: /var/lib/backup_fg/backup_records.db]

OUTPUT:
    -P, --progress       Live progress (files, bytes, rate, ETA, failures) even when stderr is
                         not a terminal [default: on when stderr is a terminal]
    --no-progress        No progress display
    -v, --verbose        One log line per file also under the progress display
    -q, --quiet          Errors only: no progress, no per-file lines, no summary after a clean run
    RUST_LOG, when set, decides the log level instead.

NOTIFICATIONS (after every run; they never change its outcome):
    --notify-email LIST  Comma-separated recipients of the summary email [env: NOTIFY_EMAIL]
    --email-method M     starttls (587), smtps (465), or plain (local relay: no TLS, no password)
                         [env: EMAIL_METHOD] [default: starttls]
    --smtp-host HOST     [env: SMTP_HOST] [default: smtp.gmail.com]
    --smtp-port PORT     [env: SMTP_PORT] [default: by method]
    --flag-file PATH     Touched after each run without failures [env: FLAG_FILE]
    --metrics-textfile PATH
                         node_exporter textfile with the run's figures [env: METRICS_TEXTFILE]
    SMTP login: GMAIL_USER + GMAIL_APP_PASSWORD. EMAIL_DRY_RUN=1 prints the message instead.
    Webhooks: SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, TELEGRAM_BOT_TOKEN + TELEGRAM_CHAT_ID,
    WEBHOOK_URL (JSON), each with <NAME>_NOTIFY_ON=always|success|failure (see README).

EXIT STATUS:
    0 every file archived (or already archived), 1 any file failed, the run could not start, or
    it stopped early (stop signal; endpoint unreachable: 5 connection failures in a row),
    2 usage or configuration error.
";

pub const INVENTORY: &str = "\
fgbackup inventory - print the newest rows of the inventory

USAGE:
    fgbackup inventory [--db PATH] [--limit N]

OPTIONS:
    --db PATH     SQLite inventory [env: DB_PATH] [default: /var/lib/backup_fg/backup_records.db]
    --limit N     Rows to print, newest first [default: 20]
";

pub const DEMO: &str = "\
fgbackup demo - a complete run on sample data, no server needed

Generates FortiGate-style logs under WORKDIR/logs, archives them to the
directory store WORKDIR/archive with the inventory in WORKDIR/inventory.db,
then prints the inventory. Running it again shows files skipped as already
archived.

USAGE:
    fgbackup demo [--workdir DIR]    [default: ./fgbackup-demo]
";

pub const GEN_LOGS: &str = "\
fgbackup gen-logs - write realistic FortiGate syslog .gz files

USAGE:
    fgbackup gen-logs --out DIR [--devices N] [--files N] [--size SIZE] [--seed N]

OPTIONS:
    --out DIR      Where to write (one sub-directory per device)
    --devices N    Number of FortiGate devices [default: 3]
    --files N      Hourly files per device [default: 4]
    --size SIZE    Compressed size of each file, e.g. 100K, 64M [default: 100K]
    --seed N       Random seed; same seed, same content [default: 1]
";

pub const SERVE: &str = "\
fgbackup serve - the read-only inventory API

USAGE:
    fgbackup serve [OPTIONS]

OPTIONS:
    --listen ADDR        Address to bind [default: 127.0.0.1:8080]
    --db PATH            SQLite inventory, opened read-only [env: DB_PATH]
                         [default: /var/lib/backup_fg/backup_records.db]
    --threads N          Worker threads answering requests, 1-64 [default: 4]
    --tokens-file PATH   Bearer tokens, one per line, re-read when changed [env: APP_TOKENS_FILE]
                         Also: APP_TOKENS=comma,separated,tokens
    --metrics-no-auth    Serve /metrics without a token (for scrapers)
    --presign            Enable GET /backups/{id}/presign (needs --bucket/BUCKET and S3 credentials;
                         --endpoint, --region, --profile as for upload)
    --presign-max SECS   Longest allowed expiry [default: 3600]

ENDPOINTS:
    GET /health                      no auth; 503 when the database cannot be read
    GET /backups                     ?status= &filename= &date_from= &date_to= &limit= &cursor=
                                     newest first; next page in the Link header
    GET /backups/last
    GET /backups/{id}
    GET /backups/{id}/presign        ?expires=SECONDS (with --presign)
    GET /stats                       per-day counts by status and bytes ?date_from= &date_to=
    GET /metrics                     Prometheus text format

SIGTERM or Ctrl-C: in-flight requests are answered, then exit 0.
";

pub const DAEMON: &str = "\
fgbackup daemon - the API and a periodic upload in one process (no systemd timer needed)

USAGE:
    fgbackup daemon --interval 1h [UPLOAD OPTIONS] [API OPTIONS]

OPTIONS:
    --interval AGE       Time between the starts of two upload runs [default: 1h]
    Upload options: as 'fgbackup upload --help' (--dir, --bucket or --dest, --delete, --db...).
    API options: as 'fgbackup serve --help' (--listen, --threads, --metrics-no-auth, --presign...).

A failed run (server down, bucket missing...) is logged and retried at the next interval.
/metrics also reports this process's runs (fgbackup_daemon_*). SIGTERM ends the current
run cleanly (see upload) and stops the API; exit 0.
";

pub const DOCTOR: &str = "\
fgbackup doctor - check a deployment end to end

USAGE:
    fgbackup doctor [--env-file PATH]... [UPLOAD OPTIONS]

Takes the same options and environment as 'fgbackup upload' and checks, one line each:
env file permissions (secrets must not be readable by others; default: the suite's
/etc/default/backup_fg and /etc/default/backup_api), the configuration, the log directory
(readable; writable when --delete is set), the database (writable, schema version), the S3
endpoint (reachable, TLS trusted, credentials valid, bucket exists), a probe object (written,
verified, read back, deleted), and the SMTP server when email is configured.

Exit status 1 when any check fails, 0 otherwise (warnings included).
";

/// Options every command that works on the archive shares with upload.
const TARGET_OPTIONS: &str = "\
ARCHIVE OPTIONS (as for upload, same environment names):
    --bucket NAME | --dest s3://NAME | --dest file:///DIR
    --prefix P, --endpoint URL, --region R, --profile P, --ca-file PEM
    --db PATH (DB_PATH), --workers N (WORKERS), --retries N, --bwlimit RATE
";

pub fn verify() -> String {
    format!(
        "\
fgbackup verify - read the archive back and prove it holds what was archived

USAGE:
    fgbackup verify (--bucket NAME | --dest file:///DIR) [OPTIONS]

Lists the prefix once, then reads every object the inventory says was archived (newest
row per key) and hashes it: each object is ok, missing, altered (content, stored checksum
or sha256 metadata differ), size_mismatch, or error (could not be read). Objects in the
prefix the inventory never recorded are reported as extra. Each problem is printed as one
line; the summary is the last line; the run and its problems are recorded in the
inventory (verifications, verification_findings) and served at /verifications/last.

OPTIONS:
    --all                Read back every object (the default)
    --sample PERCENT     Read back a random PERCENT of the objects (0.1-100); the rest are
                         checked for presence and size by the listing
    --since YYYY-MM-DD   Only files archived on or after this day (backup_date)
    --until YYYY-MM-DD   Only files archived on or before this day (no extras reported
                         with --since/--until)
    --manifests          Check the signed manifest chain instead of the inventory: every
                         signature and link, then every object the chain records
    --public-key FILE    The manifests' public key (keygen's .pub file); without it the
                         copy stored in the archive is trusted
    -P, --progress       Live progress even when stderr is not a terminal [default: on when
                         stderr is a terminal]; --no-progress turns it off
    -v, --verbose        One log line per object checked
    -q, --quiet          Errors only: problems, and the summary only when there are some
    Email and webhook options: as for upload (NOTIFY_EMAIL, WEBHOOK_URL...).

{TARGET_OPTIONS}
Exit status: 0 every object ok and nothing extra; 1 any problem, or the run was stopped;
2 a usage or configuration error.
"
    )
}

pub fn restore() -> String {
    format!(
        "\
fgbackup restore - fetch archived files into a directory, proven against the inventory

USAGE:
    fgbackup restore --to DIR (--bucket NAME | --dest file:///DIR) [OPTIONS]

Chooses archived files from the inventory (newest row per key), streams each into a
temporary file in DIR while hashing it, and only when size and SHA-256 equal the
inventory's gives it its name (link(2): an existing file is never replaced; one that
already holds the same bytes counts as present). Keys keep their path below --prefix.

OPTIONS:
    --to DIR             Where to restore (created if missing)
    --key KEY            One archived key (repeatable); default: every selected file
    --device NAME        Only this FortiGate: a directory NAME/ or files named NAME-...
    --since YYYY-MM-DD   Only files archived on or after this day
    --until YYYY-MM-DD   Only files archived on or before this day
    --dry-run            Print what would be restored, fetch nothing

{TARGET_OPTIONS}
Exit status: 0 everything selected is restored or already present; 1 any file failed,
held other bytes, or nothing matched; 2 a usage or configuration error.
"
    )
}

pub fn reindex() -> String {
    format!(
        "\
fgbackup reindex - rebuild or fill in the inventory from the archive

USAGE:
    fgbackup reindex (--bucket NAME | --dest file:///DIR) [--read] [OPTIONS]

Lists the prefix and adds a row (status reindexed) for every object the inventory has no
archived row for, with its size, key, URL and modification time. The SHA-256 comes from
the server's stored checksum when it keeps one, else from reading the object back with
--read (always for a directory store). Without either, the row records the sha256 the
object's metadata claims (or none) and is marked reindexed_unproven. Idempotent: a second
run adds nothing. Creates the database if it does not exist.

OPTIONS:
    --read    Read back objects without a stored checksum, to prove their SHA-256

{TARGET_OPTIONS}
Exit status: 0 every object indexed; 1 an object could not be read; 2 a usage error.
"
    )
}

pub const KEYGEN: &str = "\
fgbackup keygen - create the key pair that signs the manifest chain

USAGE:
    fgbackup keygen --key PATH

Writes an Ed25519 private key to PATH (PEM, mode 0600; an existing file is never replaced)
and its public key to PATH.pub (one line: ed25519 BASE64). Then run uploads with
--manifest-key PATH (or MANIFEST_KEY=PATH): after each run, and at least daily, a signed
manifest of what was archived goes to PREFIX_manifests/HOST/. Auditors check the chain with
'fgbackup verify --manifests --public-key PATH.pub'. The private key is never printed.

OPTIONS:
    --key PATH    Where to write the private key (env MANIFEST_KEY)
";

pub fn prune() -> String {
    format!(
        "\
fgbackup prune - remove archived objects older than a retention period

USAGE:
    fgbackup prune --older-than DAYS (--bucket NAME | --dest file:///DIR) [--yes] [OPTIONS]

For stores fgbackup owns (a directory; a bucket without lifecycle rules). Chooses archived
files from the inventory whose upload is more than DAYS days old. A dry run unless --yes.
Never deletes an object under Object Lock retention or legal hold. Each removal is recorded
in the inventory (prunes) and listed in the next signed manifest, so pruning is part of the
record, not tampering. Also prints the equivalent S3 lifecycle rule.

OPTIONS:
    --older-than DAYS    Retention in days; under 365 is refused unless --force
    --yes                Delete for real
    --force              Allow a retention under 365 days
    --manifest-key PATH  Write the next manifest right after pruning [env: MANIFEST_KEY]

{TARGET_OPTIONS}
Exit status: 0 done (or dry run); 1 an object could not be deleted; 2 a usage error.
"
    )
}
