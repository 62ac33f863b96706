//! Mutual TLS for TCP listeners, as dockerd's `--tlsverify`: the daemon presents its own
//! certificate and requires every client to present one signed by the configured CA. A client
//! without a certificate, or with one from another CA, is refused during the handshake, before
//! any HTTP is read.

use rustls::RootCertStore;
pub use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The three files of `--tlsverify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA that signs client certificates (`--tlscacert`).
    pub ca: PathBuf,
    /// The daemon's certificate chain (`--tlscert`).
    pub cert: PathBuf,
    /// The daemon's private key (`--tlskey`).
    pub key: PathBuf,
}

/// The cryptography used for the API: rustls with ring, the provider already in the tree.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("could not read {what} {}: {e}", path.display()))
}

/// Reads every certificate of a PEM file; an empty or unparsable file is an error.
pub fn load_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid {what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "invalid {what} {}: no PEM certificate found",
            path.display()
        ));
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read("private key", path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("invalid private key {}: {e}", path.display()))
}

/// A root store holding every certificate of the CA file.
pub fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs("CA certificate", path)? {
        roots
            .add(cert)
            .map_err(|e| format!("invalid CA certificate {}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// The server side of `--tlsverify`: TLS 1.2/1.3, HTTP/1.1 only, client certificates required
/// and verified against the CA.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = provider();
    let roots = load_roots(&files.ca)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("--tlscacert {}: {e}", files.ca.display()))?;
    let chain = load_certs("certificate", &files.cert)?;
    let key = load_key(&files.key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "--tlscert {} / --tlskey {}: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
