//! HTTPS on the proxy's own listener, with the certificate read again when its files change.

use crate::config::AccessConfig;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// A certificate or key that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The files' bytes, so a reload can tell whether anything changed.
type Pems = (Vec<u8>, Vec<u8>);

fn read(path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.into(),
        source,
    })
}

fn certified(cfg: &AccessConfig, pems: &Pems) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &str, e: rustls::pki_types::pem::Error| TlsError::Pem {
        path: path.into(),
        reason: e.to_string(),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pems.0)
        .collect::<Result<_, _>>()
        .map_err(|e| pem(&cfg.tls_cert_file, e))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cfg.tls_cert_file.clone(),
            reason: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&pems.1).map_err(|e| pem(&cfg.tls_key_file, e))?;
    Ok(CertifiedKey::from_der(
        chain,
        key,
        &aws_lc_rs::default_provider(),
    )?)
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Current {
    key: RwLock<(Pems, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.key.read().ok().map(|k| k.1.clone())
    }
}

/// The acceptor for `listen`, or `None` when no certificate is configured. Starts the reload
/// task (a bad new certificate is logged and the old one kept).
pub fn acceptor(cfg: &AccessConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    if cfg.tls_cert_file.is_empty() {
        return Ok(None);
    }
    let pems = (read(&cfg.tls_cert_file)?, read(&cfg.tls_key_file)?);
    let key = Arc::new(certified(cfg, &pems)?);
    let current = Arc::new(Current {
        key: RwLock::new((pems, key)),
    });
    let mut server =
        rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    spawn_reloader(cfg.clone(), Arc::downgrade(&current));
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn spawn_reloader(cfg: AccessConfig, current: std::sync::Weak<Current>) {
    let every = Duration::from_secs(cfg.reload_seconds.max(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(cur) = current.upgrade() else { return };
            let cfg = cfg.clone();
            let _ = tokio::task::spawn_blocking(move || reload(&cfg, &cur)).await;
        }
    });
}

fn reload(cfg: &AccessConfig, cur: &Current) {
    let pems = match (read(&cfg.tls_cert_file), read(&cfg.tls_key_file)) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the old one");
            return;
        }
    };
    if cur.key.read().is_ok_and(|k| k.0 == pems) {
        return;
    }
    match certified(cfg, &pems) {
        Ok(key) => {
            if let Ok(mut k) = cur.key.write() {
                *k = (pems, Arc::new(key));
                tracing::info!("TLS certificate reloaded");
            }
        }
        // A cert and key written one after the other can mismatch for a moment: try again
        // at the next tick.
        Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the old one"),
    }
}
