//! Which certificate authorities HTTPS connections to S3 trust: the
//! bundled Mozilla roots (no system CA path is needed on a bare collector),
//! plus exactly the CAs of `--ca-file` (an air-gapped MinIO's private CA).

use std::path::Path;

use crate::error::{Error, Result};

/// The certificates of a `--ca-file` PEM (one or more CAs).
pub fn load_ca_file(path: &Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut out = Vec::new();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::usage(format!("cannot read --ca-file {}: {e}", path.display())))?;
    for cert in certs {
        out.push(cert.map_err(|e| {
            Error::usage(format!(
                "bad certificate in --ca-file {}: {e}",
                path.display()
            ))
        })?);
    }
    if out.is_empty() {
        return Err(Error::usage(format!(
            "--ca-file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(out)
}

/// ureq's TLS settings: the bundled Mozilla roots plus `extra` (the
/// `--ca-file` CAs), on the crypto provider `main` installs.
pub fn ureq_config(extra: Vec<rustls_pki_types::CertificateDer<'static>>) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let roots = if extra.is_empty() {
        RootCerts::WebPki
    } else {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .chain(extra.iter())
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .into()
    };
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .build()
}
