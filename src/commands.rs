//! The subcommands: each takes its remaining arguments and returns the exit
//! status, or an error that `main` prints as one line.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;
use std::time::Instant;

use crate::api::{self, Presign, ServeConfig};
use crate::cli::Args;
use crate::config::{self, Destination, ServeFlags, UploadConfig};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::inventory::Selection;
use crate::inventory::status::StatusFilter;
use crate::loggen::{self, GenSpec};
use crate::metrics::Metrics;
use crate::ops::archive as upload;
use crate::ops::ls::LsOptions;
use crate::store::s3::{S3Options, S3Store};
use crate::{signal, timefmt};

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `fgbackup upload`.
pub fn upload(args: Args) -> Result<i32> {
    let cfg = config::parse_upload(&args, &process_env)?;
    crate::logging::apply(cfg.output);
    run_upload(&cfg)
}

fn run_upload(cfg: &UploadConfig) -> Result<i32> {
    signal::install();
    let result = upload::run(cfg);
    match &result {
        Ok(summary) if cfg.json => println!("{}", summary.to_json(cfg.dry_run)),
        // -q: a clean run prints nothing at all (cron mails only failures).
        Ok(summary) if cfg.output.quiet() && summary.exit_code() == 0 => {}
        Ok(summary) => println!("{}", summary.render(cfg.dry_run)),
        // main prints the error (and, with --json, its JSON object).
        Err(_) => {}
    }
    if let Ok(summary) = &result
        && let Some(why) = &summary.aborted
    {
        eprintln!(
            "fgbackup: error: {why}; the run stopped, {} file(s) not attempted are left in place for the next run",
            summary.not_attempted
        );
    }
    notify_run(cfg, &result);
    let summary = result?;
    Ok(summary.exit_code())
}

/// Tells the configured channels about a run (also one that could not start).
/// Notifiers never change the run's outcome or exit status.
fn notify_run(cfg: &UploadConfig, result: &Result<upload::Summary>) {
    let n = &cfg.notify;
    if n.email.is_none()
        && n.webhooks.is_empty()
        && n.flag_file.is_none()
        && n.metrics_textfile.is_none()
    {
        return;
    }
    let failures = crate::notify::notify_all(n, &run_report(cfg, result));
    if failures > 0 {
        log::error!("{failures} notification(s) failed; the upload results above stand");
    }
}

/// The notifiers' view of a run: its figures plus the newest inventory row.
fn run_report(cfg: &UploadConfig, result: &Result<upload::Summary>) -> crate::notify::RunReport {
    let mut r = crate::notify::RunReport {
        host: crate::host::hostname(),
        dry_run: cfg.dry_run,
        finished_unix: timefmt::unix_seconds(std::time::SystemTime::now()),
        ..Default::default()
    };
    match result {
        Ok(s) => {
            r.ok = s.exit_code() == 0;
            r.files = s.files;
            r.failed = s.failed;
            r.deleted = s.deleted;
            r.bytes_uploaded = s.bytes_sent;
            r.duration_secs = s.duration.as_secs_f64();
            r.counts = s
                .counts
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect();
            r.problems = s.problems.iter().map(ToString::to_string).collect();
            r.problems.extend(
                s.manifest_problems
                    .iter()
                    .map(|p| format!("manifest chain: {p}")),
            );
            r.problems_omitted = s.problems_omitted;
            r.manifest = s
                .manifest
                .as_ref()
                .map(|m| (m.key.clone(), m.sequence, m.sha256.clone()));
            if let Some(why) = &s.aborted {
                r.fatal = Some(why.clone());
            } else if s.interrupted {
                r.fatal = Some("interrupted by a stop signal".to_string());
            }
        }
        Err(e) => {
            r.ok = false;
            r.fatal = Some(e.to_string());
        }
    }
    if !cfg.dry_run && cfg.db_path.exists() {
        match Inventory::open(&cfg.db_path) {
            Ok(inv) => {
                r.latest = inv.latest_fields().unwrap_or_default();
                r.last_success_unix = inv.last_success_unix().unwrap_or_default();
            }
            Err(e) => log::warn!("notifications without the latest entry: {e}"),
        }
    }
    r
}

/// `fgbackup ls`.
pub fn ls(args: Args) -> Result<i32> {
    let env = &process_env;
    let since = date_flag(&args, "--since")?;
    let until = date_flag(&args, "--until")?;
    date_range(&since, &until)?;
    let status = match args.value("--status") {
        None => None,
        Some(v) => Some(StatusFilter::parse(&v).map_err(|e| Error::usage(format!("--{e}")))?),
    };
    let mut opts = LsOptions {
        selection: Selection {
            key_prefix: args.value("--prefix").unwrap_or_default(),
            since,
            until,
        },
        device: args.value("--device"),
        status,
        limit: args.number("--limit", env, 0..=usize::MAX)?.unwrap_or(0),
        json: args.flag("--json"),
    };
    if !args.flag("--remote") {
        return crate::ops::ls::inventory(&config::db_path(&args, env)?, &opts);
    }
    if let Some(f) = ["--status", "--since", "--until"]
        .into_iter()
        .find(|f| args.flag(f))
    {
        return Err(Error::usage(format!(
            "{f} filters the inventory's rows; the archive's objects have no {}: drop it or --remote",
            if f == "--status" {
                "status"
            } else {
                "archive date"
            }
        )));
    }
    // --prefix is the archive's prefix here, as for every archive command.
    opts.selection.key_prefix.clear();
    crate::ops::ls::remote(&config::parse_target(&args, env)?, &opts)
}

/// `fgbackup inventory`.
pub fn inventory(args: Args) -> Result<i32> {
    let db = config::db_path(&args, &process_env)?;
    let limit = args.number("--limit", &process_env, 1..=1_000_000)?;
    if !db.exists() {
        return Err(Error::usage(format!(
            "no inventory at {}: pass --db PATH or set DB_PATH (it is created by the first upload)",
            db.display()
        )));
    }
    print_inventory(&Inventory::open(&db)?, limit.unwrap_or(1))?;
    Ok(0)
}

fn print_inventory(inv: &Inventory, limit: u32) -> Result<()> {
    let rows = inv.recent(limit)?;
    println!(
        "inventory {} ({} newest rows)",
        inv.path().display(),
        rows.len()
    );
    println!(
        "{:>5}  {:<20}  {:<15}  {:>7}  {:>10}  {:<12}  key",
        "id", "uploaded_at", "status", "deleted", "bytes", "sha256"
    );
    for r in rows {
        println!(
            "{:>5}  {:<20}  {:<15}  {:>7}  {:>10}  {:<12}  {}",
            r.id,
            r.uploaded_at,
            r.status,
            if r.deleted_local { "yes" } else { "no" },
            r.size_bytes.map(|b| b.to_string()).unwrap_or_default(),
            r.sha256.get(..12).unwrap_or(&r.sha256),
            crate::logging::one_line(&r.object_key)
        );
        if let Some(err) = r.error.filter(|e| !e.is_empty()) {
            println!("       ! {}", crate::logging::one_line(&err));
        }
    }
    if let Some(run) = inv.last_run()? {
        println!(
            "last run #{}: {}, started {}, finished {}",
            run.id,
            run.status,
            run.started_at,
            run.finished_at.unwrap_or_else(|| "-".to_string())
        );
    }
    Ok(())
}

/// `fgbackup demo`.
pub fn demo(args: Args) -> Result<i32> {
    let workdir: PathBuf = args
        .get("--workdir", &process_env)
        .unwrap_or_default()
        .into();
    let logs = workdir.join("logs");
    let archive = std::path::absolute(workdir.join("archive"))
        .map_err(|e| Error::io("resolve", &workdir, e))?;
    // The directory store never creates its root (an unmounted disk must not
    // be mistaken for an empty archive): the demo owns this one.
    std::fs::create_dir_all(&archive).map_err(|e| Error::io("create", &archive, e))?;
    if !logs.exists() {
        let paths = loggen::generate(&GenSpec {
            out: logs.clone(),
            devices: 3,
            files_per_device: 4,
            file_size: 48 * 1024,
            seed: 1,
        })?;
        println!(
            "generated {} sample log files under {}",
            paths.len(),
            logs.display()
        );
    }
    // Upload's own flags, so the demo runs on the same defaults; no
    // environment, so a BUCKET or DIR set for real runs cannot leak in.
    let mut dest = std::ffi::OsString::from("file://");
    dest.push(&archive);
    let words: Vec<std::ffi::OsString> = vec![
        "--dir".into(),
        logs.into(),
        "--dest".into(),
        dest,
        "--db".into(),
        workdir.join("inventory.db").into(),
        "--min-age".into(),
        "0".into(),
        "--retries".into(),
        "0".into(),
        "--gzip-check".into(),
        "always".into(),
    ];
    let spec = crate::cli::table::spec("upload").ok_or_else(|| Error::runtime("no upload spec"))?;
    let cfg = config::parse_upload(&Args::parse(spec, words)?, &|_| None)?;
    crate::logging::apply(cfg.output);
    let code = run_upload(&cfg)?;
    println!();
    print_inventory(&Inventory::open(&cfg.db_path)?, 20)?;
    Ok(code)
}

/// `fgbackup gen-logs`.
pub fn gen_logs(args: Args) -> Result<i32> {
    let env = &process_env;
    let out = args
        .get("--out", env)
        .ok_or_else(|| Error::usage("gen-logs needs --out DIR"))?;
    let file_size = args.parse_with(
        "--size",
        env,
        |s| crate::units::parse_size(s).filter(|&n| n > 0),
        "is not a size such as 100K or 64M",
    )?;
    let spec = GenSpec {
        out: out.into(),
        devices: args.number("--devices", env, 1..=100_000)?.unwrap_or(1),
        files_per_device: args.number("--files", env, 1..=1_000_000)?.unwrap_or(1),
        file_size: file_size.unwrap_or(1),
        seed: args.number("--seed", env, 0..=u64::MAX)?.unwrap_or(0),
    };
    let paths = loggen::generate(&spec)?;
    println!("wrote {} files under {}", paths.len(), spec.out.display());
    Ok(0)
}

fn serve_config(
    flags: ServeFlags,
    db_path: std::path::PathBuf,
    presign: Option<Presign>,
    daemon_mode: bool,
) -> ServeConfig {
    ServeConfig {
        listen: flags.listen,
        db_path,
        tokens: flags.tokens,
        threads: flags.threads,
        metrics_public: flags.metrics_public,
        presign,
        daemon_mode,
    }
}

/// `fgbackup serve`.
pub fn serve(args: Args) -> Result<i32> {
    let flags = config::parse_serve_flags(&args, &process_env)?;
    let presign = if flags.presign {
        let (bucket, settings) = config::parse_presign_bucket(&args, &process_env)?;
        Some(Presign {
            store: S3Store::new(&bucket, &settings, S3Options::default())?,
            max_expires: flags.presign_max,
        })
    } else {
        None
    };
    signal::install_service();
    let db_path = flags.db_path.clone();
    let server = api::start(
        serve_config(flags, db_path, presign, false),
        Arc::new(Metrics::default()),
    )?;
    server.join();
    log::info!("stop signal received; in-flight requests answered, API stopped");
    Ok(0)
}

/// `fgbackup daemon`: the API plus an upload run every `--interval`.
pub fn daemon(args: Args) -> Result<i32> {
    let flags = config::parse_serve_flags(&args, &process_env)?;
    let interval = args
        .parse_with(
            "--interval",
            &process_env,
            |v| crate::units::parse_duration(v).filter(|d| d.as_secs() >= 1),
            "is not a duration: use e.g. 15m, 1h, 3600",
        )?
        .unwrap_or(Duration::from_secs(1));
    let mut cfg = config::parse_upload(&args, &process_env)?;
    // A service writes a log, not a display; -q and -v still apply.
    cfg.output.progress = false;
    crate::logging::apply(cfg.output);
    if cfg.dry_run {
        return Err(Error::usage(
            "--dry-run does not combine with daemon: use 'fgbackup upload --dry-run'",
        ));
    }
    let presign = daemon_presign(&cfg, &flags)?;
    signal::install_service();
    let metrics = Arc::new(Metrics::default());
    let server = api::start(
        serve_config(flags, cfg.db_path.clone(), presign, true),
        Arc::clone(&metrics),
    )?;
    log::info!("daemon: uploading every {} s", interval.as_secs());
    while !signal::stop_requested() {
        let started = Instant::now();
        daemon_cycle(&cfg, &metrics, interval);
        while !signal::stop_requested() && started.elapsed() < interval {
            server.reload_if_asked();
            std::thread::sleep((interval - started.elapsed()).min(Duration::from_millis(200)));
        }
    }
    server.join();
    log::info!("stop signal received; daemon stopped");
    Ok(0)
}

/// `--presign` in the daemon: the upload's own S3 destination signs links.
fn daemon_presign(cfg: &UploadConfig, flags: &ServeFlags) -> Result<Option<Presign>> {
    Ok(match (&cfg.destination, flags.presign) {
        (_, false) => None,
        (
            Destination::S3 {
                bucket, settings, ..
            },
            true,
        ) => Some(Presign {
            store: S3Store::new(
                bucket,
                settings,
                upload::s3_options(&cfg.destination, &cfg.transfer, cfg.workers)?,
            )?,
            max_expires: flags.presign_max,
        }),
        (Destination::Local { .. }, true) => {
            return Err(Error::usage(
                "--presign needs an S3 destination (--bucket), not --dest file://",
            ));
        }
    })
}

/// One upload run of the daemon, its notifications and its metrics. A failed
/// run (server down, lock held...) is logged and must not stop the daemon.
fn daemon_cycle(cfg: &UploadConfig, metrics: &Metrics, interval: Duration) {
    metrics.cycle_started(interval);
    let result = upload::run(cfg);
    metrics.cycle_finished();
    notify_run(cfg, &result);
    let now = timefmt::unix_seconds(std::time::SystemTime::now());
    match result {
        Ok(summary) => {
            log::info!("{}", summary.render(false));
            let ok = summary.exit_code() == 0;
            metrics.record_run(|m| {
                if ok {
                    m.runs_ok += 1;
                    m.last_success_unix = Some(now);
                } else {
                    m.runs_failed += 1;
                }
                m.last_run_unix = Some(now);
                m.last_files = summary.files;
                m.last_failed = summary.failed;
                m.last_bytes = summary.bytes_sent;
                m.last_duration_secs = summary.duration.as_secs_f64();
            });
        }
        Err(e) => {
            log::error!(
                "upload run failed: {e}; next try in {} s",
                interval.as_secs()
            );
            metrics.record_run(|m| {
                m.runs_failed += 1;
                m.last_run_unix = Some(now);
            });
        }
    }
}

/// `fgbackup doctor`.
pub fn doctor(args: Args) -> Result<i32> {
    crate::doctor::run(&args, &process_env)
}

/// `fgbackup verify`.
pub fn verify(args: Args) -> Result<i32> {
    let all = args.flag("--all");
    let sample = args.value("--sample");
    let since = date_flag(&args, "--since")?;
    let until = date_flag(&args, "--until")?;
    let manifests = args.flag("--manifests");
    let public_key = args.value("--public-key").map(PathBuf::from);
    let output = crate::progress::parse_output(&args)?;
    let target = config::parse_target(&args, &process_env)?;
    crate::logging::apply(output);
    date_range(&since, &until)?;
    if manifests && (since.is_some() || until.is_some()) {
        return Err(Error::usage(
            "--manifests checks the whole chain: drop --since/--until",
        ));
    }
    let sample = match (all, sample) {
        (true, Some(_)) => {
            return Err(Error::usage(
                "--all and --sample contradict each other: pass one",
            ));
        }
        (_, None) => 100.0,
        (false, Some(v)) => match v.trim_end_matches('%').parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => p,
            _ => {
                return Err(Error::usage(format!(
                    "--sample '{v}' must be a percentage above 0 and up to 100, e.g. 10"
                )));
            }
        },
    };
    let opts = crate::ops::audit::VerifyOptions {
        since,
        until,
        sample,
        manifests,
        public_key,
        output,
        json: args.flag("--json"),
    };
    crate::ops::audit::verify(&target, &opts)
}

/// A `YYYY-MM-DD` flag: a real calendar day.
fn date_flag(args: &Args, name: &'static str) -> Result<Option<String>> {
    match args.value(name) {
        Some(v) if !timefmt::is_day(&v) => Err(Error::usage(format!(
            "{name} '{v}' is not a date: use YYYY-MM-DD, e.g. 2026-11-01"
        ))),
        other => Ok(other),
    }
}

/// `--since` after `--until` selects nothing: surely a typo.
fn date_range(since: &Option<String>, until: &Option<String>) -> Result<()> {
    match (since, until) {
        (Some(s), Some(u)) if s > u => Err(Error::usage(format!(
            "--since {s} is after --until {u}: swap them"
        ))),
        _ => Ok(()),
    }
}

/// `fgbackup restore`.
pub fn restore(args: Args) -> Result<i32> {
    let to = args.value("--to");
    let keys = args.values("--key");
    let device = args.value("--device");
    let since = date_flag(&args, "--since")?;
    let until = date_flag(&args, "--until")?;
    let dry_run = args.flag("--dry-run");
    let output = crate::progress::parse_output(&args)?;
    let target = config::parse_target(&args, &process_env)?;
    crate::logging::apply(output);
    date_range(&since, &until)?;
    let to = to
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::usage("restore needs --to DIR: the directory to restore into"))?;
    // --to itself (and links above it) are the admin's choice; below it,
    // restore refuses links.
    if !dry_run {
        std::fs::create_dir_all(&to)
            .map_err(|e| Error::usage(format!("--to {to} cannot be created ({e})")))?;
    }
    let to = std::fs::canonicalize(&to)
        .or_else(|_| std::env::current_dir().map(|d| d.join(&to)))
        .map_err(|e| Error::usage(format!("--to {to} cannot be resolved ({e})")))?;
    let opts = crate::ops::restore::RestoreOptions {
        to,
        keys,
        since,
        until,
        device,
        dry_run,
        output,
    };
    crate::ops::restore::restore(&target, &opts)
}

/// `fgbackup reindex`.
pub fn reindex(args: Args) -> Result<i32> {
    let read = args.flag("--read");
    let target = config::parse_target(&args, &process_env)?;
    crate::ops::reindex::reindex(&target, read)
}

/// `fgbackup keygen`.
pub fn keygen(args: Args) -> Result<i32> {
    let key = args
        .get("--key", &process_env)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Error::usage(
                "keygen needs --key PATH (or MANIFEST_KEY): where to write the private key",
            )
        })?;
    let (pub_path, public) = crate::sign::keygen(std::path::Path::new(&key))?;
    println!("private key: {key} (mode 0600; keep it on this collector, never share it)");
    println!("public key:  {} (ed25519 {public})", pub_path.display());
    println!(
        "give the public key file to your auditors: fgbackup verify --manifests --public-key FILE"
    );
    Ok(0)
}

/// `fgbackup prune`.
pub fn prune(args: Args) -> Result<i32> {
    let days = args.value("--older-than");
    let yes = args.flag("--yes");
    let force = args.flag("--force");
    let target = config::parse_target(&args, &process_env)?;
    let days = days.ok_or_else(|| {
        Error::usage("prune needs --older-than DAYS: objects archived longer ago are removed")
    })?;
    let older_than_days = match days.trim_end_matches('d').parse::<u64>() {
        Ok(n) if (1..=36_500).contains(&n) => n,
        _ => {
            return Err(Error::usage(format!(
                "--older-than '{days}' must be a number of days from 1 to 36500, e.g. 400"
            )));
        }
    };
    let min = crate::ops::prune::MIN_DAYS;
    if older_than_days < min && !force {
        return Err(Error::usage(format!(
            "--older-than {older_than_days} is under {min} days (PCI DSS 10.5 keeps a year of logs): pass --force if your retention policy allows it"
        )));
    }
    let manifest_key = config::manifest_key(&args, &process_env)?;
    let opts = crate::ops::prune::PruneOptions {
        older_than_days,
        yes,
        manifest_key,
    };
    crate::ops::prune::prune(&target, &opts)
}
