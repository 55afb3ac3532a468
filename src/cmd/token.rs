//! `fgbackup token keygen|issue|list|revoke`: upload tokens for pushes.

use std::time::SystemTime;

use serde_json::json;

use crate::cli::{Args, flags};
use crate::error::{Error, Result};
use crate::inventory::{Inventory, Revoked, TokenRow};
use crate::push::token::{Claims, Key, new_id};
use crate::settings;
use crate::timefmt;
use crate::units::human_bytes;

use super::*;

/// `fgbackup token keygen`.
pub fn keygen(args: Args) -> Result<i32> {
    let path = settings::key_path(&args, &process_env);
    if path.as_os_str() == crate::push::token::DEFAULT_KEY_PATH {
        crate::inventory::create_default_dir(&path)?;
    }
    Key::generate(&path)?;
    println!(
        "upload token key: {} (mode 0600; keep it on the server, never share it)",
        path.display()
    );
    println!(
        "issue tokens with: fgbackup token issue --prefix SITE/ --token-key {}",
        path.display()
    );
    Ok(0)
}

/// `fgbackup token issue`: signs the claims, records the row, prints the
/// token once.
pub fn issue(args: Args) -> Result<i32> {
    let req = settings::parse_token_request(&args, &process_env)?;
    let key = Key::load(&req.key)?;
    let inv = Inventory::open(&req.db_path)?;
    let now = SystemTime::now();
    let exp = timefmt::unix_seconds(now)
        .saturating_add(i64::try_from(req.lifetime.as_secs()).unwrap_or(i64::MAX));
    let claims = Claims {
        id: new_id()?,
        prefix: req.prefix.clone(),
        exp,
        max_bytes: req.max_bytes,
        max_files: req.max_files,
        max_attempts: req.max_attempts,
        any_name: req.any_name,
    };
    let row = TokenRow {
        id: claims.id.clone(),
        prefix: req.prefix.clone(),
        created_at: timefmt::iso8601(now),
        expires_unix: exp,
        max_bytes: req.max_bytes,
        max_files: req.max_files,
        max_attempts: req.max_attempts,
        any_name: req.any_name,
        note: req.note.clone(),
        revoked_at: None,
        attempts: 0,
        files: 0,
        bytes: 0,
        last_used_at: None,
    };
    inv.insert_token(&row)?;
    let token = key.sign(&claims);
    let expires = timefmt::iso8601(timefmt::from_unix(exp));
    if req.json {
        let mut out = row_json(&row, now);
        out["token"] = json!(token);
        println!("{out}");
    } else {
        println!("{token}");
        eprintln!(
            "token {} for {} until {expires}: shown once, hand it over like a password",
            claims.id, claims.prefix
        );
    }
    Ok(0)
}

/// `fgbackup token list`.
pub fn list(args: Args) -> Result<i32> {
    let db = settings::db_path(&args, &process_env)?;
    let inv = Inventory::open(&db)?;
    let rows = inv.tokens()?;
    let now = SystemTime::now();
    if args.flag(&flags::JSON_RESULT) {
        let all: Vec<_> = rows.iter().map(|r| row_json(r, now)).collect();
        println!("{}", json!({ "tokens": all }));
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no upload tokens: fgbackup token issue --prefix SITE/");
        return Ok(0);
    }
    println!(
        "{:<16}  {:<20}  {:<8}  {:<20}  {:<10}  {:<18}  {:<9}  NOTE",
        "ID", "PREFIX", "STATE", "EXPIRES", "FILES", "BYTES", "ATTEMPTS"
    );
    for r in &rows {
        println!(
            "{:<16}  {:<20}  {:<8}  {:<20}  {:<10}  {:<18}  {:<9}  {}",
            r.id,
            r.prefix.escape_debug().to_string(),
            state(r, now),
            timefmt::iso8601(timefmt::from_unix(r.expires_unix)),
            used(r.files, r.max_files, |n| n.to_string()),
            used(r.bytes, r.max_bytes, human_bytes),
            used(r.attempts, r.max_attempts, |n| n.to_string()),
            r.note.as_deref().unwrap_or("").escape_debug()
        );
    }
    Ok(0)
}

/// `fgbackup token revoke ID`.
pub fn revoke(args: Args) -> Result<i32> {
    let id = args
        .value(&flags::TOKEN_ID)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| {
            Error::usage("token revoke needs the token's ID, as 'fgbackup token list' shows it")
        })?;
    let db = settings::db_path(&args, &process_env)?;
    let inv = Inventory::open(&db)?;
    match inv.revoke_token(&id, SystemTime::now())? {
        Revoked::Now => println!("token {id} revoked: its next request gets 403"),
        Revoked::Already => println!("token {id} was revoked already"),
        Revoked::NoSuchToken => {
            return Err(Error::runtime(format!(
                "no upload token with id '{}' in {}: see 'fgbackup token list'",
                id.escape_debug(),
                db.display()
            )));
        }
    }
    Ok(0)
}

/// `active`, `expired` or `revoked`.
fn state(r: &TokenRow, now: SystemTime) -> &'static str {
    if r.revoked_at.is_some() {
        "revoked"
    } else if r.expires_unix <= timefmt::unix_seconds(now) {
        "expired"
    } else {
        "active"
    }
}

/// `3/500` or `3` without a limit.
fn used(n: u64, max: Option<u64>, show: impl Fn(u64) -> String) -> String {
    match max {
        Some(m) => format!("{}/{}", show(n), show(m)),
        None => show(n),
    }
}

fn row_json(r: &TokenRow, now: SystemTime) -> serde_json::Value {
    json!({
        "id": r.id,
        "prefix": r.prefix,
        "state": state(r, now),
        "created_at": r.created_at,
        "expires_at": timefmt::iso8601(timefmt::from_unix(r.expires_unix)),
        "revoked_at": r.revoked_at,
        "max_bytes": r.max_bytes,
        "max_files": r.max_files,
        "max_attempts": r.max_attempts,
        "any_name": r.any_name,
        "note": r.note,
        "files": r.files,
        "bytes": r.bytes,
        "attempts": r.attempts,
        "last_used_at": r.last_used_at,
    })
}
