//! athens-operator: reconciles `AthensProxy` resources into running `athens-proxy` proxies.

pub mod crd;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod render;
