// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Certificate and key files (`--ca`, `--server-ca`, `--tls-cert`, `--tls-key`), checked before
//! anything starts, each mistake one line that says what to do: not PEM, a key that does not
//! belong to its certificate, a server's own certificate given as an authority, a key others
//! can read.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::console::say;

/// How to make an authority and a certificate it signs, for the messages.
const HOW: &str = "make a certificate authority and sign the server's certificate with it \
                   (README: \"TLS certificates\"), and give the authority here";

/// The PEM certificates in `file` (`flag` names it in errors).
fn certificates(flag: &str, file: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let shown = file.display();
    std::fs::metadata(file).map_err(|e| anyhow!("{flag} {shown}: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .map_err(|e| anyhow!("{flag} {shown}: {e}"))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow!("{flag} {shown}: not a PEM certificate ({e})"))?;
    if certs.is_empty() {
        bail!("{flag} {shown}: not a PEM certificate (no -----BEGIN CERTIFICATE----- in it)");
    }
    Ok(certs)
}

/// A certificate authority to trust: PEM certificates of authorities, not a server's own.
pub(crate) fn check_authority(flag: &str, file: &Path) -> Result<()> {
    for der in certificates(flag, file)? {
        let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
            anyhow!(
                "{flag} {}: a certificate that does not parse ({e})",
                file.display()
            )
        })?;
        let is_ca = cert.is_ca();
        let names_a_host = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .is_some_and(|san| !san.value.general_names.is_empty());
        let self_signed = cert.subject() == cert.issuer();
        if !is_ca || names_a_host {
            let what = if self_signed {
                "a server's own self-signed certificate, not a certificate authority: a client \
                 that checks certificates refuses a certificate used as its own authority"
            } else {
                "a server's certificate, not the authority that signed it"
            };
            bail!("{flag} {}: {what}; {HOW}", file.display());
        }
    }
    Ok(())
}

/// A server's certificate and its key: both PEM, the key the certificate's, the key private.
pub(crate) fn check_pair(cert: &Path, key: &Path) -> Result<()> {
    let certs = certificates("--tls-cert", cert)?;
    let shown = key.display();
    std::fs::metadata(key).map_err(|e| anyhow!("--tls-key {shown}: {e}"))?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        anyhow!("--tls-key {shown}: not a PEM private key (-----BEGIN … PRIVATE KEY-----)")
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| anyhow!("--tls-key {shown}: a key beitseg cannot use ({e})"))?;
    rustls::sign::CertifiedKey::new(certs, signing)
        .keys_match()
        .map_err(|_| {
            anyhow!(
                "--tls-key {shown} is not the key of --tls-cert {} (their public keys differ)",
                cert.display()
            )
        })?;
    crate::server::warn_if_shared(key);
    if let Some(der) = CertificateDer::pem_file_iter(cert)
        .ok()
        .and_then(|mut i| i.next())
        .and_then(|c| c.ok())
    {
        if let Ok((_, c)) = x509_parser::parse_x509_certificate(&der) {
            if c.subject() == c.issuer() {
                say!(
                    "warning: --tls-cert {} is self-signed: clients must turn certificate \
                     checks off to watch; {HOW} (clients then trust the authority)",
                    cert.display()
                );
            }
        }
    }
    Ok(())
}
