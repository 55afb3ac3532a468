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
    let (mut archived, mut exists, mut failed, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for path in &s.files {
        if crate::signal::stop_requested() {
            break;
        }
        let name = match path.file_name().and_then(|n| n.to_str()) {
            Some(n) => n.to_string(),
            None => {
                failed += 1;
                say_failure(&s, path, "", "the file name is not UTF-8: rename it");
                continue;
            }
        };
        let pushed = match client::hash(path) {
            Ok(local) => client.push(path, &name, &local, s.delete),
            Err(e) => {
                failed += 1;
                progress.file_done(0, crate::in_flight::take_file(), true);
                say_failure(&s, path, &name, &e.to_string());
                continue;
            }
        };
        progress.file_done(
            pushed.size,
            crate::in_flight::take_file(),
            pushed.status == "failed",
        );
        match pushed.status {
            "archived" => archived += 1,
            "exists" => exists += 1,
            _ => failed += 1,
        }
        bytes += pushed.sent;
        report(&s, path, &name, &pushed);
    }
    progress.finish();
    if s.json {
        println!(
            "{}",
            json!({"files": s.files.len(), "archived": archived, "exists": exists, "failed": failed, "bytes_sent": bytes})
        );
    } else {
        eprintln!(
            "push: {archived} archived, {exists} already archived, {failed} failed, {} sent",
            crate::units::human_bytes(bytes)
        );
    }
    if crate::signal::stop_requested() {
        return Err(Error::runtime(
            "stopped by a signal; files not confirmed are kept",
        ));
    }
    Ok(i32::from(
        failed > 0 || archived + exists < s.files.len() as u64,
    ))
}

fn report(
    s: &settings::PushClientSettings,
    path: &std::path::Path,
    name: &str,
    p: &client::Pushed,
) {
    if s.json {
        println!("{}", client::json_line(path, name, p));
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
    crate::progress::suspend(|| println!("{}", crate::logging::one_line(&line)));
    if let Some(note) = &p.error {
        eprintln!("push: {}: {note}", path.display());
    }
}

fn say_failure(s: &settings::PushClientSettings, path: &std::path::Path, name: &str, why: &str) {
    if s.json {
        println!(
            "{}",
            json!({"file": path.display().to_string(), "name": name, "status": "failed", "error": why})
        );
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
