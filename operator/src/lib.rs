//! athens-operator: reconciles `AthensProxy` resources into running `athens-proxy` proxies.

pub mod crd;
pub mod render;
