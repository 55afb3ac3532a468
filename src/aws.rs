//! Finding S3 credentials, region and endpoint the way AWS tools do.
//!
//! Order of precedence, highest first: command-line flags, environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT_URL`...), then the
//! profile's sections in `~/.aws/credentials` and `~/.aws/config`.
//! Instance-metadata credentials are deliberately not probed: on a syslog box
//! that is a surprise network call, and the error would hide the real fix.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variables the AWS tools read, named once here and
/// documented in the flags table (`cli::flags`), which refers to them.
pub mod env_names {
    pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    pub const AWS_PROFILE: &str = "AWS_PROFILE";
    pub const AWS_REGION: &str = "AWS_REGION";
    pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
    pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
    pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    pub const AWS_CONFIG_FILE: &str = "AWS_CONFIG_FILE";
    pub const AWS_SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
    pub const HOME: &str = "HOME";
    /// The profile read when neither `--profile` nor `AWS_PROFILE` names one.
    pub const DEFAULT_PROFILE: &str = "default";
}

/// Access key pair plus optional session token. `Debug` never prints secrets.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Everything needed to talk to one S3-compatible service.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub credentials: Credentials,
    pub region: String,
    /// `None` means AWS itself (virtual-hosted style); `Some` is MinIO, Ceph,
    /// Garage... addressed path-style.
    pub endpoint: Option<String>,
}

/// What the command line said about S3, before looking anywhere else.
#[derive(Default, Debug)]
pub struct S3Flags {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
}

/// Resolves S3 settings from flags, the environment (through `env`) and the
/// AWS profile files. `env` is a parameter so tests need not touch the real
/// process environment.
pub fn resolve(flags: &S3Flags, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Settings> {
    let profile = flags
        .profile
        .clone()
        .or_else(|| env(env_names::AWS_PROFILE))
        .or(Some(env_names::DEFAULT_PROFILE.to_string()))
        .unwrap_or_default();
    let (config_section, creds_section, creds_path) = profile_sections(env, &profile)?;

    let lookup = |k: &str| {
        creds_section
            .get(k)
            .or_else(|| config_section.get(k))
            .cloned()
    };
    let credentials = credentials(env, &lookup, &profile, creds_path.as_deref())?;

    // No log line may show them, whatever a dependency prints.
    crate::redact::register(&credentials.secret_key);
    if let Some(token) = &credentials.session_token {
        crate::redact::register(token);
    }

    let region = flags
        .region
        .clone()
        .or_else(|| env(env_names::AWS_REGION))
        .or_else(|| env(env_names::AWS_DEFAULT_REGION))
        .or_else(|| config_section.get("region").cloned())
        .unwrap_or_else(|| "us-east-1".to_string());

    let endpoint = flags
        .endpoint
        .clone()
        .or_else(|| env(env_names::AWS_ENDPOINT_URL_S3))
        .or_else(|| env(env_names::AWS_ENDPOINT_URL))
        .or_else(|| config_section.get("endpoint_url").cloned())
        .filter(|e| !e.is_empty());
    if let Some(e) = &endpoint {
        check_endpoint(e)?;
    }

    Ok(S3Settings {
        credentials,
        region,
        endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
    })
}

/// The profile's sections of the AWS config and credentials files (empty
/// when a file does not exist), and where the credentials file is.
type Sections = (
    HashMap<String, String>,
    HashMap<String, String>,
    Option<PathBuf>,
);

fn profile_sections(env: &dyn Fn(&str) -> Option<String>, profile: &str) -> Result<Sections> {
    let home = env(env_names::HOME).map(PathBuf::from);
    let config_path = env(env_names::AWS_CONFIG_FILE)
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let creds_path = env(env_names::AWS_SHARED_CREDENTIALS_FILE)
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config_section = match &config_path {
        Some(p) => {
            let name = if profile == "default" {
                "default".to_string()
            } else {
                format!("profile {profile}")
            };
            read_ini_section(p, &name)?
        }
        None => HashMap::new(),
    };
    let creds_section = match &creds_path {
        Some(p) => read_ini_section(p, profile)?,
        None => HashMap::new(),
    };
    Ok((config_section, creds_section, creds_path))
}

/// The key pair: from the environment if set there (both halves), else from
/// the profile (`lookup` reads its credentials and config sections).
fn credentials(
    env: &dyn Fn(&str) -> Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    profile: &str,
    creds_path: Option<&Path>,
) -> Result<Credentials> {
    match (
        env(env_names::AWS_ACCESS_KEY_ID),
        env(env_names::AWS_SECRET_ACCESS_KEY),
    ) {
        (Some(access_key), Some(secret_key)) => Ok(Credentials {
            access_key,
            secret_key,
            session_token: env(env_names::AWS_SESSION_TOKEN),
        }),
        (Some(_), None) => Err(Error::usage(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither to use a profile",
        )),
        _ => match (lookup("aws_access_key_id"), lookup("aws_secret_access_key")) {
            (Some(access_key), Some(secret_key)) => Ok(Credentials {
                access_key,
                secret_key,
                session_token: lookup("aws_session_token"),
            }),
            _ => Err(Error::usage(format!(
                "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 or add aws_access_key_id/aws_secret_access_key to profile '{profile}' in {}",
                creds_path
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.aws/credentials".into())
            ))),
        },
    }
}

/// An endpoint is a scheme, a host, an optional port and at most a path:
/// credentials in it would be recorded in every row and log line, and a
/// query or fragment would change what every request means.
fn check_endpoint(e: &str) -> Result<()> {
    if !(e.starts_with("http://") || e.starts_with("https://")) {
        return Err(Error::usage(format!(
            "S3 endpoint '{e}' must start with http:// or https:// (--endpoint, AWS_ENDPOINT_URL or endpoint_url)"
        )));
    }
    let bad = |why: &str| {
        // The text may hold a password: name the problem, not the value.
        Err(Error::usage(format!(
            "S3 endpoint (--endpoint, AWS_ENDPOINT_URL or endpoint_url) {why}: give scheme, host and port only, e.g. https://minio.site.lan:9000"
        )))
    };
    let Ok(url) = url::Url::parse(e) else {
        return bad("is not a valid URL");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return bad(
            "must not carry credentials (user:password@); use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return bad("must not have a query (?...) or fragment (#...)");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("has no host");
    }
    Ok(())
}

/// Reads one `[section]` of an AWS-style INI file; a missing file is an empty
/// section (most boxes have no `~/.aws` at all), an unreadable one an error.
fn read_ini_section(path: &Path, section: &str) -> Result<HashMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    Ok(parse_ini_section(&text, section))
}

/// Parses `key = value` lines under `[section]`; comments start with `#` or `;`.
/// Indented lines (nested service settings) are skipped.
fn parse_ini_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profile_sections() {
        let text = "[default]\nregion = eu-west-1\n\n[profile minio]\nregion=us-east-1\nendpoint_url = http://10.0.0.5:9000\ns3 =\n  addressing_style = path\n";
        let d = parse_ini_section(text, "default");
        assert_eq!(d.get("region").map(String::as_str), Some("eu-west-1"));
        let m = parse_ini_section(text, "profile minio");
        assert_eq!(
            m.get("endpoint_url").map(String::as_str),
            Some("http://10.0.0.5:9000")
        );
        assert!(!m.contains_key("addressing_style"));
    }

    #[test]
    fn env_beats_profile_and_debug_hides_secret() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id=FILEKEY\naws_secret_access_key=FILESECRET\n",
        )
        .unwrap();
        let home = dir.path().to_string_lossy().to_string();
        let env = |k: &str| match k {
            "HOME" => Some(home.clone()),
            "AWS_REGION" => Some("ap-south-1".to_string()),
            _ => None,
        };
        let s = resolve(&S3Flags::default(), &env).unwrap();
        assert_eq!(s.credentials.access_key, "FILEKEY");
        assert_eq!(s.region, "ap-south-1");
        assert!(!format!("{s:?}").contains("FILESECRET"));

        let env2 = |k: &str| match k {
            "HOME" => Some(home.clone()),
            "AWS_ACCESS_KEY_ID" => Some("ENVKEY".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("ENVSECRET".to_string()),
            _ => None,
        };
        let s = resolve(&S3Flags::default(), &env2).unwrap();
        assert_eq!(s.credentials.access_key, "ENVKEY");
        assert_eq!(s.region, "us-east-1");
    }

    #[test]
    fn endpoints_with_credentials_or_queries_are_refused() {
        assert!(check_endpoint("https://minio.lan:9000").is_ok());
        assert!(check_endpoint("http://10.0.0.5:9000/").is_ok());
        let err = check_endpoint("http://AK:SECRETINURL@minio:9000").unwrap_err();
        assert!(err.to_string().contains("credentials"));
        assert!(!err.to_string().contains("SECRETINURL"));
        assert!(check_endpoint("http://minio:9000?x=1").is_err());
        assert!(check_endpoint("http://minio:9000#frag").is_err());
    }

    #[test]
    fn missing_credentials_is_a_usage_error_naming_the_fix() {
        let env = |_: &str| None;
        let err = resolve(&S3Flags::default(), &env).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"));
    }
}
