//! HTTPS: rustls with the *ring* provider only. Two providers compiled into one binary
//! (ring and aws-lc-rs, which some crates' default features pull in) make
//! `ServerConfig::builder()` panic, so the provider is named, not guessed.

use std::io;
use std::path::Path;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A server config from PEM files, offering HTTP/2 and HTTP/1.1 by ALPN.
pub async fn config(cert: &Path, key: &Path) -> io::Result<RustlsConfig> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid("reading --tls-cert", &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("parsing --tls-cert", &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid("reading --tls-key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("TLS certificate/key", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
