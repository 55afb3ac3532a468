//! `fgbackup tail`: a server's live events in a terminal.

use crate::cli::Args;
use crate::cli::flags;
use crate::error::{Error, Result};
use crate::ops::tail::TailOptions;

use super::*;

/// `fgbackup tail`.
pub fn tail(args: Args) -> Result<i32> {
    let env = &process_env;
    let url = args.get(&flags::TAIL_URL, env).unwrap_or_default();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::usage(format!(
            "--url '{url}' is not an http:// or https:// URL: give the server's API, e.g. --url http://127.0.0.1:8080"
        )));
    }
    let token = args.get(&flags::TAIL_TOKEN, env).unwrap_or_default();
    if token.is_empty() {
        return Err(Error::usage(
            "no token: set FGBACKUP_TOKEN (or pass --token) to one of the server's API tokens",
        ));
    }
    crate::redact::register(&token);
    let ca = match args.get(&flags::CA_FILE, env) {
        Some(path) => crate::tls::load_ca_file(std::path::Path::new(&path))?,
        None => Vec::new(),
    };
    crate::ops::tail::run(&TailOptions {
        url,
        token,
        json: args.flag(&flags::TAIL_JSON),
        tls: crate::tls::ureq_config(ca),
    })
}
