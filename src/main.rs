//! fgbackup: archive FortiGate syslog `.gz` files into S3/MinIO or a
//! directory, prove every copy intact, and keep an inventory in SQLite.
//!
//! `main` only sets up logging, picks the subcommand and turns its result
//! into an exit status; each concern lives in its own module.

mod api;
mod aws;
mod build;
mod changes;
mod cli;
mod cmd;
mod content;
mod digest;
mod dirfd;
mod engine;
mod envfile;
mod error;
mod fsafe;
mod host;
mod in_flight;
mod inventory;
mod loggen;
mod logging;
mod metrics;
mod notify;
mod ops;
mod outdir;
mod paths;
mod progress;
mod push;
mod redact;
mod scan;
mod settings;
mod sign;
mod signal;
mod store;
mod timefmt;
mod tls;
mod units;

use std::process::ExitCode;

fn main() -> ExitCode {
    tune_allocator();
    // One TLS crypto provider for the whole process (rust-s3, SMTP, webhooks):
    // rustls panics at the first handshake if it has to guess between two.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // RUST_LOG, other crates capped at warn, registered secrets masked.
    logging::init();

    let code = cli::read(std::env::args_os().skip(1)).and_then(|invocation| match invocation {
        cli::Invocation::Help(page) => {
            print!("{page}");
            Ok(0)
        }
        cli::Invocation::Version => {
            println!("{}", version());
            Ok(0)
        }
        cli::Invocation::Nothing => {
            eprint!("{}", cli::help::main_page());
            Ok(2)
        }
        cli::Invocation::Command(args) => cmd::dispatch(args),
    });
    match code {
        Ok(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        Err(e) => {
            eprintln!(
                "fgbackup: error: {}",
                logging::one_line(&redact::redact(&e.to_string()))
            );
            json_error(&e);
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// With `--json` anywhere on the line, a command that fails (a usage error
/// included) still prints one JSON object on stdout, for the wrapper that
/// parses it.
fn json_error(e: &error::Error) {
    // args_os: args() panics on a word that is not UTF-8.
    let words: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    if !words.iter().any(|w| w == "--json") {
        return;
    }
    let command = words.first().map(String::as_str).unwrap_or("");
    println!(
        "{}",
        serde_json::json!({"command": command, "ok": false, "exit_code": e.exit_code(),
                           "error": redact::redact(&e.to_string())})
    );
}

/// Version, git commit, target triple and TLS stack: what a support request needs.
fn version() -> String {
    format!(
        "fgbackup {} (commit {}, target {}, TLS rustls with aws-lc-rs, SQLite {})",
        env!("CARGO_PKG_VERSION"),
        env!("FGBACKUP_COMMIT"),
        env!("FGBACKUP_TARGET"),
        rusqlite::version()
    )
}

/// glibc keeps freed multi-megabyte buffers in per-thread arenas, so RSS
/// would grow with `--workers`; a fixed mmap threshold returns them at once.
/// musl (the static release builds) already does this.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any
    // allocation-heavy work and before threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
