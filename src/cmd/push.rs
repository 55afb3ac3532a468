//! `fgbackup push FILE...`: sends files to a server that accepts pushes.

use serde_json::json;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::progress::{Job, Progress};
use crate::push::client::{self, Client};
use crate::settings;

use super::*;

/// `fgbackup push`.
pub fn push(args: Args) -> Result<i32> {
    let s = settings::parse_push_client(&args, &process_env)?;
    let ca = match &s.ca_file {
        Some(path) => crate::tls::load_ca_file(path)?,
        None => Vec::new(),
    };
    crate::signal::install();
    let client = Client::new(&s.url, &s.token, crate::tls::ureq_config(ca));
    let mut output = settings::parse_output(&args)?;
    output.progress = s.progress;
    let total: u64 = s
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut progress = Progress::start(output, Job::Upload, s.files.len() as u64, total);
    let mut t = Totals::default();
    for path in &s.files {
        if crate::signal::stop_requested() {
            break;
        }
        let pushed = push_one(&client, &s, path);
        let failed = pushed.as_ref().is_none_or(|p| p.status == "failed");
        let size = pushed.as_ref().map_or(0, |p| p.size);
        progress.file_done(size, crate::in_flight::take_file(), failed);
        match pushed.as_ref().map(|p| p.status) {
            Some("archived") => t.archived += 1,
            Some("exists") => t.exists += 1,
            _ => t.failed += 1,
        }
        t.bytes += pushed.as_ref().map_or(0, |p| p.sent);
    }
    progress.finish();
    if s.json {
        say(&json!({"files": s.files.len(), "archived": t.archived, "exists": t.exists, "failed": t.failed, "bytes_sent": t.bytes}).to_string());
    } else {
        eprintln!(
            "push: {} archived, {} already archived, {} failed, {} sent",
            t.archived,
            t.exists,
            t.failed,
            crate::units::human_bytes(t.bytes)
        );
    }
    if crate::signal::stop_requested() {
        return Err(Error::runtime(
            "stopped by a signal; files not confirmed are kept",
        ));
    }
    Ok(i32::from(
        t.failed > 0 || t.archived + t.exists < s.files.len() as u64,
    ))
}

#[derive(Default)]
struct Totals {
    archived: u64,
    exists: u64,
    failed: u64,
    bytes: u64,
}

/// A line on stdout; a reader that went away (`| head`) must not stop the
/// run (a later file's --delete still waits on its server's answer).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// One file: hashed, pushed, reported; `None` when it could not be read.
fn push_one(
    client: &Client,
    s: &settings::PushClientSettings,
    path: &std::path::Path,
) -> Option<client::Pushed> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        say_failure(s, path, "", "the file name is not UTF-8: rename it");
        return None;
    };
    let local = match client::hash(path) {
        Ok(l) => l,
        Err(e) => {
            say_failure(s, path, name, &e.to_string());
            return None;
        }
    };
    let pushed = client.push(path, name, &local, s.delete);
    report(s, path, name, &pushed);
    Some(pushed)
}

fn report(
    s: &settings::PushClientSettings,
    path: &std::path::Path,
    name: &str,
    p: &client::Pushed,
) {
    if s.json {
        say(&client::json_line(path, name, p).to_string());
        return;
    }
    if p.status == "failed" {
        return say_failure(s, path, name, p.error.as_deref().unwrap_or("failed"));
    }
    let deleted = if p.deleted { ", deleted" } else { "" };
    let line = format!(
        "{} {} -> {} ({} bytes{deleted})",
        p.status,
        path.display(),
        p.key.as_deref().unwrap_or(name),
        p.size
    );
    crate::progress::suspend(|| say(&crate::logging::one_line(&line)));
    if let Some(note) = &p.error {
        eprintln!("push: {}: {note}", path.display());
    }
}

fn say_failure(s: &settings::PushClientSettings, path: &std::path::Path, name: &str, why: &str) {
    if s.json {
        say(&json!({"file": path.display().to_string(), "name": name, "status": "failed", "error": why}).to_string());
    } else {
        crate::progress::suspend(|| {
            eprintln!(
                "push: {} kept: {}",
                path.display(),
                crate::logging::one_line(why)
            )
        });
    }
}
