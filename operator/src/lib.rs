//! athens-operator: reconciles `AthensProxy` resources into running `athens-proxy` proxies.

pub mod crd;
pub mod first_proxy;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod migrate;
pub mod reconcile;
pub mod render;
