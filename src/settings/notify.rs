//! The notification settings: the suite's email flags and variables,
//! webhooks, flag file and textfile, read into a [`NotifyConfig`].

use std::path::PathBuf;

use crate::cli::flags;
use crate::cli::table::Var;
use crate::error::{Error, Result};
use crate::notify::webhook::{self, Kind, Webhook};
use crate::notify::{NotifyConfig, When, email};
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
    let webhooks = from_env(&env_nonempty)?;
    Ok(NotifyConfig {
        email,
        webhooks,
        flag_file,
        metrics_textfile,
    })
}

/// The email channel's settings, once `--notify-email`/`NOTIFY_EMAIL` names
/// recipients: method, server, login and sender. Long because it reads
/// each email setting in the order the suite documents them, one check each.
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
    let from = env_nonempty(flags::EMAIL_FROM.name)
        .or(user)
        .unwrap_or_else(|| format!("fgbackup@{}", crate::host::hostname()));
    let dry_run = match env(flags::EMAIL_DRY_RUN.name) {
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
        when: when(&flags::EMAIL_NOTIFY_ON, env)?,
    })
}

/// `GMAIL_USER` + `GMAIL_APP_PASSWORD` (or `SMTP_USER` + `SMTP_PASSWORD`):
/// both or neither. The password is registered for redaction at once.
fn smtp_login(env: crate::cli::Env) -> Result<(Option<String>, Option<email::Secret>)> {
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let user = env_nonempty(flags::GMAIL_USER.name).or_else(|| env_nonempty(flags::SMTP_USER.name));
    let password = env_nonempty(flags::GMAIL_APP_PASSWORD.name)
        .or_else(|| env_nonempty(flags::SMTP_PASSWORD.name));
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

/// Reads the webhook variables of the table (`SLACK_WEBHOOK_URL`,
/// `DISCORD_WEBHOOK_URL`, `WEBHOOK_URL`, `TELEGRAM_BOT_TOKEN` with
/// `TELEGRAM_CHAT_ID`), each with its `<NAME>_NOTIFY_ON`.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Webhook>> {
    let mut hooks = Vec::new();
    for (kind, var, when_var) in [
        (
            Kind::Slack,
            &flags::SLACK_WEBHOOK_URL,
            &flags::SLACK_NOTIFY_ON,
        ),
        (
            Kind::Discord,
            &flags::DISCORD_WEBHOOK_URL,
            &flags::DISCORD_NOTIFY_ON,
        ),
        (
            Kind::Generic,
            &flags::WEBHOOK_URL,
            &flags::WEBHOOK_NOTIFY_ON,
        ),
    ] {
        if let Some(url) = env(var.name) {
            crate::redact::register_url(&url);
            webhook::check_url(var.name, &url)?;
            hooks.push(Webhook::new(kind, url, None, when(when_var, env)?));
        }
    }
    let token = env(flags::TELEGRAM_BOT_TOKEN.name);
    if let Some(t) = &token {
        crate::redact::register(t);
    }
    match (token, env(flags::TELEGRAM_CHAT_ID.name)) {
        (Some(token), Some(chat)) => {
            let api = env(flags::TELEGRAM_API_URL.name)
                .or(flags::TELEGRAM_API_URL.default.map(String::from))
                .unwrap_or_default();
            webhook::check_url(flags::TELEGRAM_API_URL.name, &api)?;
            let url = format!("{}/bot{token}/sendMessage", api.trim_end_matches('/'));
            crate::redact::register_url(&url);
            let when = when(&flags::TELEGRAM_NOTIFY_ON, env)?;
            hooks.push(Webhook::new(Kind::Telegram, url, Some(chat), when));
        }
        (None, None) => {}
        _ => {
            return Err(Error::usage(
                "Telegram needs both TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID",
            ));
        }
    }
    Ok(hooks)
}

/// A `<NAME>_NOTIFY_ON` variable, or its default in the table.
fn when(var: &Var, env: &dyn Fn(&str) -> Option<String>) -> Result<When> {
    let given = env(var.name).filter(|v| !v.trim().is_empty());
    match given.as_deref().or(var.default) {
        Some(v) => When::parse(var.name, Some(v.to_string()), When::Always),
        None => Err(Error::runtime(format!(
            "{} has no default in the flags table",
            var.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_parsing() {
        let env = |k: &str| match k {
            "SLACK_WEBHOOK_URL" => Some("https://hooks.slack.com/services/a".to_string()),
            "SLACK_NOTIFY_ON" => Some("always".to_string()),
            "TELEGRAM_BOT_TOKEN" => Some("123:abc".to_string()),
            _ => None,
        };
        let err = from_env(&env).unwrap_err();
        assert!(err.to_string().contains("TELEGRAM_CHAT_ID"));
        let env2 = |k: &str| match k {
            "WEBHOOK_URL" => Some("ftp://x".to_string()),
            _ => None,
        };
        assert!(
            from_env(&env2)
                .unwrap_err()
                .to_string()
                .contains("WEBHOOK_URL")
        );
    }
}
