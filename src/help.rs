//! `--help` texts. They name settings, never their values.

pub const MAIN: &str = "\
fgbackup - archive FortiGate syslog .gz files to S3/MinIO or a directory, verified

USAGE:
    fgbackup <COMMAND> [OPTIONS]

COMMANDS:
    upload      Archive the .gz files of a directory (the job backup_fg.py did)
    inventory   Print the newest rows of the inventory database
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
    --dest URL           file:///DIR for a directory (NFS, USB disk), or s3://BUCKET
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
    --no-gzip-check      Do not inflate .gz files to prove them complete (saves CPU; a
                         truncated .gz is then archived and deleted like any other file)
    --workers N          Files processed in parallel, 1-64 [env: WORKERS] [default: 4]
    --retries N          Retries of transient network/server errors [default: 3]
    --part-size SIZE     Multipart part size; files up to this size use one PUT [default: 5MiB]
    --max-memory SIZE    Upload buffers shared by all workers [default: part size + 2MiB]
    --db PATH            SQLite inventory [env: DB_PATH] [default: /var/lib/backup_fg/backup_records.db]

EXIT STATUS:
    0 every file archived (or already archived), 1 any file failed, 2 usage or configuration error.
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
