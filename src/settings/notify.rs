//! The notification settings: the suite's email flags and variables,
//! webhooks, flag file and textfile, read into a [`NotifyConfig`].

use std::path::PathBuf;

use crate::cli::flags;
use crate::error::{Error, Result};
use crate::notify::{NotifyConfig, When, email, webhook};
use crate::units::parse_bool;

/// Reads the notification settings: the suite's email flags and variables
/// (`--notify-email`, `--email-method`, `--smtp-host`, `--smtp-port`,
/// `GMAIL_USER`, `GMAIL_APP_PASSWORD`, `EMAIL_METHOD`, `SMTP_HOST`, `SMTP_PORT`,
/// `NOTIFY_EMAIL`, `EMAIL_DRY_RUN`), webhooks, flag file and textfile.
pub fn parse(
    args: &crate::cli::Args,
    env: crate::cli::Env,
    ca_file: Option<PathBuf>,
) -> Result<NotifyConfig> {
    // Empty flag values count as unset, like empty variables.
    let get = |flag: &crate::cli::table::Flag| args.get(flag, env).filter(|s| !s.trim().is_empty());
    // systemd expands an unset ${VAR} to an empty word: treat empty as unset.
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let recipients = get(&flags::NOTIFY_EMAIL);
    let flag_file = get(&flags::FLAG_FILE).map(PathBuf::from);
    let metrics_textfile = get(&flags::METRICS_TEXTFILE).map(PathBuf::from);

    let email = match recipients {
        None => None,
        Some(list) => Some(email_config(args, env, &list, ca_file)?),
    };
    let webhooks = webhook::from_env(&env_nonempty)?;
    Ok(NotifyConfig {
        email,
        webhooks,
        flag_file,
        metrics_textfile,
    })
}

/// The email channel's settings, once `--notify-email`/`NOTIFY_EMAIL` names
/// recipients: method, server, login and sender.
fn email_config(
    args: &crate::cli::Args,
    env: crate::cli::Env,
    list: &str,
    ca_file: Option<PathBuf>,
) -> Result<email::EmailConfig> {
    let get = |flag: &crate::cli::table::Flag| args.get(flag, env).filter(|s| !s.trim().is_empty());
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (method, host, port) = (
        get(&flags::EMAIL_METHOD),
        get(&flags::SMTP_HOST),
        get(&flags::SMTP_PORT),
    );
    let to: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = to.iter().find(|a| !looks_like_address(a)) {
        return Err(Error::usage(format!(
            "--notify-email/NOTIFY_EMAIL: '{bad}' is not an e-mail address"
        )));
    }
    let method = email::Method::parse(method.as_deref())?;
    let port = match port {
        None => method.default_port(),
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Error::usage(format!("--smtp-port/SMTP_PORT '{p}' is not a port number"))
            })?,
    };
    let (user, credentials) = smtp_login(env)?;
    if method == email::Method::Plain && credentials.is_some() {
        return Err(Error::usage(
            "EMAIL_METHOD=plain never sends a password without TLS: use starttls or smtps, or unset GMAIL_USER and GMAIL_APP_PASSWORD for a local relay",
        ));
    }
    let from = env_nonempty("EMAIL_FROM")
        .or(user)
        .unwrap_or_else(|| format!("fgbackup@{}", crate::host::hostname()));
    let dry_run = match env("EMAIL_DRY_RUN") {
        None => false,
        Some(v) => parse_bool(&v).ok_or_else(|| {
            Error::usage(format!("EMAIL_DRY_RUN='{v}' is not a boolean: use 1 or 0"))
        })?,
    };
    Ok(email::EmailConfig {
        to,
        from,
        host: host.unwrap_or_default(),
        port,
        method,
        credentials,
        dry_run,
        dry_run_to_stderr: args.flag(&flags::JSON),
        ca_file,
        when: When::parse("EMAIL_NOTIFY_ON", env("EMAIL_NOTIFY_ON"), When::Always)?,
    })
}

/// `GMAIL_USER` + `GMAIL_APP_PASSWORD` (or `SMTP_USER` + `SMTP_PASSWORD`):
/// both or neither. The password is registered for redaction at once.
fn smtp_login(env: crate::cli::Env) -> Result<(Option<String>, Option<email::Secret>)> {
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let user = env_nonempty("GMAIL_USER").or_else(|| env_nonempty("SMTP_USER"));
    let password = env_nonempty("GMAIL_APP_PASSWORD").or_else(|| env_nonempty("SMTP_PASSWORD"));
    if let Some(p) = &password {
        crate::redact::register_smtp_password(user.as_deref().unwrap_or(""), p);
    }
    let credentials = match (user.clone(), password) {
        (Some(u), Some(p)) => Some(email::Secret::new(u, p)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(Error::usage(
                "GMAIL_USER is set but GMAIL_APP_PASSWORD is not: set both, or neither for a relay without AUTH",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::usage(
                "GMAIL_APP_PASSWORD is set but GMAIL_USER is not: set both",
            ));
        }
    };
    Ok((user, credentials))
}

/// `local@domain`, no spaces or angle brackets: enough to catch a
/// mistyped list (`a@x.org;b@y.org`) before the SMTP server does.
fn looks_like_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !a.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ';' | ','))
        }
        None => false,
    }
}
