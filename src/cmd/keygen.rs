//! `fgbackup keygen`: the manifest signing key.

use crate::cli::flags;

use crate::cli::Args;
use crate::error::{Error, Result};

use super::*;

/// `fgbackup keygen`.
pub fn keygen(args: Args) -> Result<i32> {
    let key = args
        .get(&flags::RESTORE_KEY, &process_env)
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
