//! Which certificate authorities HTTPS connections to S3 trust.
//!
//! rust-s3's blocking client (attohttpc + rustls) builds its TLS settings per
//! request from the bundled Mozilla roots plus the "native" roots, which
//! rustls-native-certs reads from `SSL_CERT_FILE` when that is set. We point
//! that variable at `--ca-file` (an air-gapped MinIO's private CA), or at an
//! empty file otherwise so each request does not re-parse the system bundle.
//! The result: bundled public roots, plus exactly the CA the user named.

use std::path::Path;

/// Sets the trust anchors for this process.
///
/// Must be called before any thread is spawned: it changes the environment.
pub fn configure_trust(ca_file: Option<&Path>) {
    let value = ca_file.map_or_else(
        || std::ffi::OsString::from("/dev/null"),
        |p| p.as_os_str().to_os_string(),
    );
    // SAFETY: called from `main` before the worker pool or any other thread
    // exists, so no other thread can be reading the environment.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", value);
        std::env::remove_var("SSL_CERT_DIR");
    }
}
