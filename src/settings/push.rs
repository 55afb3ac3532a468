//! Settings of upload tokens (`token issue`), of receiving pushes (`serve`
//! and `daemon --accept-uploads`) and of sending them (`push`).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::flags;
use crate::cli::{Args, Env};
use crate::error::{Error, Result};
use crate::push::token::MAX_LIFETIME_SECS;
use crate::units::{parse_duration, parse_size};

/// What `token issue` was asked for, checked.
pub struct TokenRequest {
    pub prefix: String,
    pub lifetime: Duration,
    pub max_bytes: Option<u64>,
    pub max_files: Option<u64>,
    pub max_attempts: Option<u64>,
    pub note: Option<String>,
    pub any_name: bool,
    pub key: PathBuf,
    pub db_path: PathBuf,
    pub json: bool,
}

const SIZE_HINT: &str = "is not a size: use bytes or K, M, G, e.g. 20G";

pub fn parse_token_request(args: &Args, env: Env) -> Result<TokenRequest> {
    let prefix = token_prefix(args, env)?;
    let lifetime = args.parse_or_default(
        &flags::TOKEN_EXPIRES,
        env,
        |v| parse_duration(v).filter(|d| d.as_secs() > 0),
        "is not a duration: use e.g. 12h or 7d",
    )?;
    if lifetime.as_secs() > MAX_LIFETIME_SECS && !args.flag(&flags::TOKEN_FORCE) {
        return Err(Error::usage(format!(
            "--expires {} s is beyond 30 days: issue a shorter token, or add --force",
            lifetime.as_secs()
        )));
    }
    let count = |flag| {
        args.parse_with(
            flag,
            env,
            |v| v.trim().parse::<u64>().ok().filter(|n| *n > 0),
            "must be a whole number above 0",
        )
    };
    let note = args.get(&flags::TOKEN_NOTE, env).filter(|n| !n.is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().any(char::is_control))
    {
        return Err(Error::usage("--note holds a control character"));
    }
    Ok(TokenRequest {
        prefix,
        lifetime,
        max_bytes: args.parse_with(
            &flags::TOKEN_MAX_BYTES,
            env,
            |v| parse_size(v).filter(|n| *n > 0),
            SIZE_HINT,
        )?,
        max_files: count(&flags::TOKEN_MAX_FILES)?,
        max_attempts: count(&flags::TOKEN_MAX_ATTEMPTS)?,
        note,
        any_name: args.flag(&flags::TOKEN_ANY_NAME),
        key: key_path(args, env),
        db_path: super::target::db_path(args, env)?,
        json: args.flag(&flags::JSON_RESULT),
    })
}

/// `--prefix` of `token issue`: required, a plain path, not the archive's
/// own (`_index/`, `_manifests/`).
fn token_prefix(args: &Args, env: Env) -> Result<String> {
    let raw = args.get(&flags::TOKEN_PREFIX, env).unwrap_or_default();
    let prefix = super::target::normalize_prefix(&raw)?;
    if prefix.is_empty() {
        return Err(Error::usage(
            "token issue needs --prefix, e.g. --prefix site7/: a token writes below one prefix only",
        ));
    }
    if prefix.starts_with('_') || prefix.starts_with(crate::store::local::STORE_DIR) {
        return Err(Error::usage(format!(
            "--prefix '{prefix}' is the archive's own (_index/, _manifests/, the directory store's .fgbackup/): choose another"
        )));
    }
    if prefix.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Error::usage(format!(
            "--prefix '{}' holds a control character or a backslash",
            prefix.escape_debug()
        )));
    }
    Ok(prefix)
}

/// `--token-key`/`PUSH_TOKEN_KEY`.
pub fn key_path(args: &Args, env: Env) -> PathBuf {
    PathBuf::from(
        args.get(&flags::TOKEN_KEY, env)
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| crate::push::token::DEFAULT_KEY_PATH.to_string()),
    )
}

/// How `serve`/`daemon` receive pushes.
#[derive(Clone, Debug)]
pub struct PushServerSettings {
    pub spool: PathBuf,
    pub min_free: u64,
    pub max_at_once: usize,
    pub max_file: u64,
    pub key: PathBuf,
}

/// `None` unless `--accept-uploads` (or `ACCEPT_UPLOADS=true`).
pub fn parse_push_server(args: &Args, env: Env) -> Result<Option<PushServerSettings>> {
    if !args
        .switch_or_env(&flags::ACCEPT_UPLOADS, env)?
        .unwrap_or(false)
    {
        return Ok(None);
    }
    let db = super::target::db_path(args, env)?;
    let spool = args
        .get(&flags::SPOOL, env)
        .filter(|s| !s.is_empty())
        .map_or_else(
            || PathBuf::from(format!("{}.spool", db.display())),
            PathBuf::from,
        );
    Ok(Some(PushServerSettings {
        spool,
        min_free: args.parse_or_default(&flags::SPOOL_MIN_FREE, env, parse_size, SIZE_HINT)?,
        max_at_once: args.number_or_default(&flags::PUSH_MAX, env, 1..=64)?,
        max_file: args.parse_or_default(
            &flags::PUSH_MAX_FILE,
            env,
            |v| parse_size(v).filter(|n| *n > 0),
            SIZE_HINT,
        )?,
        key: key_path(args, env),
    }))
}

/// The spool must lie apart from what is archived: inside a directory
/// store its bodies would be taken for archived objects, and inside the
/// daemon's `--dir` its own uploads would archive them under wrong keys
/// (and delete them).
pub fn refuse_spool_overlap(
    spool: &std::path::Path,
    cfg: &super::UploadConfig,
    scans_dir: bool,
) -> Result<()> {
    let resolve =
        |p: &std::path::Path| crate::paths::resolve(p).unwrap_or_else(|_| p.to_path_buf());
    let s = resolve(spool);
    let mut apart = Vec::new();
    if let super::Destination::Local { root } = &cfg.destination {
        apart.push(("--dest", root.clone()));
    }
    if scans_dir {
        apart.push(("--dir", cfg.dir.clone()));
    }
    for (flag, path) in apart {
        if crate::paths::overlap(&s, &resolve(&path)) {
            return Err(Error::usage(format!(
                "--spool {} and {flag} {} overlap: put the spool apart from what is archived",
                spool.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// What `fgbackup push` sends where.
pub struct PushClientSettings {
    pub files: Vec<PathBuf>,
    pub url: String,
    pub token: String,
    pub delete: bool,
    pub json: bool,
    pub ca_file: Option<PathBuf>,
    pub progress: bool,
}

pub fn parse_push_client(args: &Args, env: Env) -> Result<PushClientSettings> {
    let files: Vec<PathBuf> = args
        .values(&flags::PUSH_FILES)
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if files.is_empty() {
        return Err(Error::usage(
            "push needs at least one FILE: fgbackup push FILE... --url URL --token TOKEN",
        ));
    }
    let url = args
        .get(&flags::PUSH_URL, env)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::usage("push needs --url (or FGBACKUP_PUSH_URL): the server's address")
        })?;
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::usage(format!(
            "--url '{url}' is not an http:// or https:// address"
        )));
    }
    let token = args
        .get(&flags::PUSH_TOKEN, env)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::usage(
                "push needs an upload token: set FGBACKUP_PUSH_TOKEN (or --token) to what 'fgbackup token issue' printed",
            )
        })?;
    crate::redact::register(&token);
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::usage(
            "the upload token holds a space or a control character: paste it exactly as 'token issue' printed it",
        ));
    }
    let json = args.flag(&flags::PUSH_JSON);
    let output = crate::settings::parse_output(args)?;
    Ok(PushClientSettings {
        files,
        url,
        token,
        delete: args.flag(&flags::PUSH_DELETE),
        json,
        ca_file: args.get(&flags::CA_FILE, env).map(PathBuf::from),
        progress: output.progress && !json,
    })
}
