//! `spec.access`: who may use the proxy. Credentials live in Secrets of the proxy's namespace
//! and reach the pods as read-only files, which the proxy reads again when they change.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Client access control. Without it every client that reaches the Service is served. With
/// any credential set, every route except `/healthz` and `/readyz` needs one; a refused
/// request gets 401 with `WWW-Authenticate: Basic`, and the go command then uses the proxy
/// host's `.netrc` entry (the go command sends `.netrc` credentials only over HTTPS).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccessSpec {
    /// Secrets holding basic-auth users: the key's value is `user:password` lines (`#`
    /// comments allowed). Several Secrets are merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub basic_auth: Vec<SecretKeyFile>,
    /// Secrets holding bearer tokens, one per line (`Authorization: Bearer <token>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub bearer_tokens: Vec<SecretKeyFile>,
    /// The name of a `kubernetes.io/tls` Secret (keys `tls.crt` and `tls.key`): the proxy then
    /// serves HTTPS itself, for installs without an ingress. A renewed certificate is picked up
    /// without a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    /// A second container port serving only `/metrics`, `/healthz` and `/readyz`, over plain
    /// HTTP and without credentials, for an in-cluster scraper. The Service gets a `metrics`
    /// port, `spec.monitoring` scrapes it, and `spec.networkPolicy` admits its peers to it.
    /// Unset: `/metrics` is served on the `http` port, behind the same credentials (and TLS) as
    /// everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 65535))]
    #[x_kube(validation = Rule::new("self != 3000").message("access.metricsPort: 3000 is the proxy's own port; choose another"))]
    pub metrics_port: Option<i32>,
}

/// One key of a Secret in the proxy's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyFile {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// The key in the Secret. Default: `users` for basicAuth, `tokens` for bearerTokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl AccessSpec {
    /// Names of the Secrets this section references.
    pub fn secret_names(&self) -> Vec<&str> {
        self.basic_auth
            .iter()
            .chain(&self.bearer_tokens)
            .map(|s| s.secret_name.as_str())
            .chain(self.tls_secret_name.as_deref())
            .collect()
    }
}
