//! Shared test harness: a real S3-compatible server (s3s-fs, which checks
//! SigV4 signatures and checksums) on a free loopback port, the fgbackup
//! binary run as a user would run it, and helpers to inspect results.

pub mod api;
pub mod fakes3;
pub mod held;
pub mod listeners;
pub mod moto;
pub mod pki;
pub mod proxy;
pub mod rawhttp;
pub mod sse;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "fgtestaccess";
pub const SECRET_KEY: &str = "fgtest-secret-0123456789";
pub const BUCKET: &str = "fg-logs";

/// A running s3s-fs process, killed on drop.
pub struct S3Server {
    child: Child,
    pub port: u16,
    pub root: tempfile::TempDir,
}

/// Finds s3s-fs: `$S3S_FS`, then `PATH`, then `~/.cargo/bin`.
fn s3s_fs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS") {
        return PathBuf::from(p);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
        .expect("s3s-fs not found: install it with `cargo install s3s-fs@0.14.1 --features binary --locked` (.ci/run does)")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not listen on port {port} within 30 s");
}

impl S3Server {
    /// Starts s3s-fs with an existing bucket [`BUCKET`].
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        // The port may be taken between probe and bind; try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(s3s_fs_binary())
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(root.path())
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start s3s-fs");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return S3Server { child, port, root };
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start s3s-fs");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where s3s-fs keeps the bytes of `key` in `bucket`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }

    /// A real S3 client on this server, for checks independent of fgbackup.
    pub fn client(&self, bucket: &str) -> Box<s3::Bucket> {
        let region = s3::Region::Custom {
            region: "us-east-1".into(),
            endpoint: self.endpoint(),
        };
        let creds =
            s3::creds::Credentials::new(Some(ACCESS_KEY), Some(SECRET_KEY), None, None, None)
                .unwrap();
        let mut b = s3::Bucket::new(bucket, region, creds).unwrap();
        b.set_path_style();
        b
    }

    /// The `sha256` metadata of `key`, or `None` when absent; panics if the
    /// object does not exist.
    pub fn head_sha256(&self, key: &str) -> Option<String> {
        let (head, status) = self.client(BUCKET).head_object(key).unwrap();
        assert_eq!(status, 200, "HEAD {key}");
        head.metadata.and_then(|m| m.get("sha256").cloned())
    }

    /// Files s3s-fs keeps for multipart uploads that were neither completed
    /// nor aborted (`.upload-<id>.json`, `.upload_id-<id>.part-<n>`).
    pub fn open_multipart_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }

    /// Stops the server (simulates an outage).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A workspace: a log directory, a database path, a private HOME.
pub struct Workspace {
    pub tmp: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("logs")).unwrap();
        std::fs::create_dir(tmp.path().join("home")).unwrap();
        // The admin's database directory exists: only the default location
        // is ever created by fgbackup.
        std::fs::create_dir(tmp.path().join("db")).unwrap();
        Workspace { tmp }
    }
    pub fn logs(&self) -> PathBuf {
        self.tmp.path().join("logs")
    }
    pub fn db(&self) -> PathBuf {
        self.tmp.path().join("db/backup_records.db")
    }
    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// Writes a complete gzip file of `size` uncompressed pseudo-random log
    /// lines at `logs/rel`, with an mtime an hour in the past.
    pub fn write_gz(&self, rel: &str, lines: usize, seed: u64) -> PathBuf {
        let path = self.logs().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for i in 0..lines {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            writeln!(e, "date=2026-11-22 time=01:00:{:02} devname=\"FGT-{seed}\" srcip=10.0.{}.{} sessionid={x} line={i}", i % 60, x % 256, (x >> 8) % 256).unwrap();
        }
        std::fs::write(&path, e.finish().unwrap()).unwrap();
        set_old_mtime(&path);
        path
    }

    /// Writes raw bytes at `logs/rel` with an old mtime.
    pub fn write_raw(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.logs().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        set_old_mtime(&path);
        path
    }

    /// A manifest signing key made by `fgbackup keygen` in the private HOME
    /// (`KEY` and `KEY.pub`); returns the private key's path.
    pub fn manifest_key(&self) -> String {
        let key = self.home().join("m.key").display().to_string();
        assert_exit(&self.run(&["keygen", "--key", &key], &[]), 0);
        key
    }

    /// `fgbackup ARGS` with a clean environment: only the S3 credentials,
    /// a private HOME, and `extra_env`.
    pub fn command<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        extra_env: &[(&str, &str)],
    ) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fgbackup"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("RUST_LOG", "info")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `fgbackup ARGS` to completion.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], extra_env: &[(&str, &str)]) -> Output {
        self.command(args, extra_env).output().unwrap()
    }

    /// `upload` against `server` with the usual flags plus `extra`.
    pub fn upload(&self, server: &S3Server, extra: &[&str]) -> Output {
        self.upload_to(&server.endpoint(), extra)
    }

    /// `upload` of `logs/` to [`BUCKET`] at `endpoint` (a server or a proxy
    /// in front of it), `--min-age 0`, `--retries 1` unless `extra` sets it.
    pub fn upload_to(&self, endpoint: &str, extra: &[&str]) -> Output {
        self.run(&self.s3_upload_args(endpoint, extra), &[])
    }

    /// The arguments [`Workspace::upload_to`] runs.
    pub fn s3_upload_args(&self, endpoint: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["upload", "--dir"].map(String::from).to_vec();
        args.push(self.logs().display().to_string());
        args.extend(["--bucket", BUCKET, "--endpoint", endpoint].map(String::from));
        args.extend(["--db".to_string(), self.db().display().to_string()]);
        args.extend(["--min-age", "0"].map(String::from));
        if !extra.contains(&"--retries") {
            // Fast failure by default; tests about retries pass their own.
            args.extend(["--retries", "1"].map(String::from));
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// `fgbackup COMMAND --bucket BUCKET --endpoint ENDPOINT --db DB` plus
    /// `extra`: verify, restore, reindex, prune against the test bucket.
    pub fn on_bucket(&self, command: &str, endpoint: &str, extra: &[&str]) -> Output {
        self.run(&self.bucket_args(command, endpoint, extra), &[])
    }

    /// The arguments [`Workspace::on_bucket`] runs.
    pub fn bucket_args(&self, command: &str, endpoint: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![command.to_string()];
        args.extend(["--bucket", BUCKET, "--endpoint", endpoint].map(String::from));
        args.extend(["--db".to_string(), self.db().display().to_string()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// `fgbackup COMMAND --dest file://ARCHIVE --db DB` plus `extra`.
    pub fn on_archive(&self, command: &str, extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec![
            command.to_string(),
            "--dest".into(),
            format!("file://{}", self.archive().display()),
            "--db".into(),
            self.db().display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        self.run(&args, &[])
    }

    /// The directory store used by the local-upload helpers.
    pub fn archive(&self) -> PathBuf {
        self.tmp.path().join("archive")
    }

    /// `upload --dir logs/ --dest file://archive/ --db DB --min-age 0` plus `extra`.
    pub fn local_upload_args(&self, extra: &[&str]) -> Vec<String> {
        // The directory store requires its root to exist.
        std::fs::create_dir_all(self.archive()).unwrap();
        let mut args: Vec<String> = vec![
            "upload".into(),
            "--dir".into(),
            self.logs().display().to_string(),
            "--dest".into(),
            format!("file://{}", self.archive().display()),
            "--db".into(),
            self.db().display().to_string(),
            "--min-age".into(),
            "0".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// Runs [`Workspace::local_upload_args`] with `env`.
    pub fn upload_local(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        self.run(&self.local_upload_args(extra), env)
    }

    /// A `.gz` of `mib` MiB of incompressible data (stored, not deflated):
    /// large enough for multipart uploads, cheap to make.
    pub fn write_noise_gz(&self, rel: &str, mib: usize) -> PathBuf {
        let mut data = Vec::with_capacity(mib << 20);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        while data.len() < mib << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        e.write_all(&data).unwrap();
        self.write_raw(rel, &e.finish().unwrap())
    }

    /// All rows of `backups`, oldest first.
    pub fn rows(&self) -> Vec<Row> {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT id, filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status,
                        object_key, size_bytes, error FROM backups ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                filename: r.get(1)?,
                s3_url: r.get(2)?,
                sha256: r.get(3)?,
                uploaded_at: r.get(4)?,
                backup_date: r.get(5)?,
                deleted_local: r.get(6)?,
                status: r.get(7)?,
                object_key: r.get(8)?,
                size_bytes: r.get(9)?,
                error: r.get(10)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// (status, exit_code) of every run, oldest first.
    pub fn runs(&self) -> Vec<(String, Option<i64>)> {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        let mut stmt = conn
            .prepare("SELECT status, exit_code FROM runs ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub filename: String,
    pub s3_url: Option<String>,
    pub sha256: Option<String>,
    pub uploaded_at: Option<String>,
    pub backup_date: Option<String>,
    pub deleted_local: Option<i64>,
    pub status: Option<String>,
    pub object_key: Option<String>,
    /// No test reads it yet; kept so a printed row shows every column.
    #[allow(dead_code)]
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
}

impl Row {
    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }
}

/// Row for `key`; panics when there is not exactly one.
/// A database as the Python suite creates it (its `backups` table only)
/// holding one uploaded row, at `path`.
pub fn write_suite_db(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE backups (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT NOT NULL, s3_url TEXT, sha256 TEXT,
           uploaded_at TEXT, backup_date TEXT, deleted_local INTEGER DEFAULT 0, status TEXT);
         INSERT INTO backups (filename, s3_url, sha256, uploaded_at, backup_date, deleted_local, status)
           VALUES ('a.log.gz', 'https://b.s3.amazonaws.com/a.log.gz', 'aa', '2025-01-01T01:00:00Z', '2025-01-01', 1, 'uploaded');",
    )
    .unwrap();
}

pub fn row_for<'a>(rows: &'a [Row], key: &str) -> &'a Row {
    let found: Vec<&Row> = rows
        .iter()
        .filter(|r| r.object_key.as_deref() == Some(key))
        .collect();
    assert_eq!(found.len(), 1, "rows for {key}: {rows:#?}");
    found[0]
}

pub fn set_old_mtime(path: &Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// Hex SHA-256 of a file, computed independently of fgbackup.
/// The SHA-256 of `data`.
pub fn sha256_bytes(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let data = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Asserts `out`'s exit status, showing both outputs when it differs.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Makes every row of the inventory at `db` look archived at `iso`.
pub fn age_rows(db: &Path, iso: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute("UPDATE backups SET uploaded_at = ?1", [iso])
        .unwrap();
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Where the directory store at `archive` records the sha256 of `key`:
/// `.fgbackup/meta/<2 hex>/<sha256 of the key>.sha256`.
pub fn meta_path(archive: &Path, key: &str) -> PathBuf {
    use sha2::Digest;
    let h: String = sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    archive
        .join(".fgbackup/meta")
        .join(&h[..2])
        .join(format!("{h}.sha256"))
}
