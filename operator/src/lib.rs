//! athens-operator: reconciles `AthensProxy` resources into running `athens-proxy` proxies.

pub mod crd;
pub mod first_proxy;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod render;

/// Selects rustls' process-wide crypto provider (ring). Two providers are compiled into this
/// binary (kube's and the proxy library's HTTP client's), so rustls cannot choose one itself and
/// a Kubernetes client would panic. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
