//! Client access control: who may use the proxy, and where `/metrics` is served.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Client access. With no files configured every client is served (the default, as in Athens).
/// With any file configured, every route except `/healthz` and `/readyz` needs credentials
/// from one of them; a refused request gets 401 with `WWW-Authenticate: Basic`, which makes the
/// go command use the host's `.netrc` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Files of `user:password` lines (`#` comments and blank lines skipped), for HTTP basic
    /// authentication. Several files are merged; they are read again when they change (a
    /// Kubernetes Secret update), and a file that cannot be read then keeps the old users.
    pub basic_auth_files: Vec<String>,
    /// Files of bearer tokens, one per line (`Authorization: Bearer <token>`), merged and
    /// reloaded like `basic_auth_files`.
    pub bearer_token_files: Vec<String>,
    /// The realm named in `WWW-Authenticate`.
    pub realm: String,
    /// Seconds between checks of the credential files for changes.
    pub reload_seconds: u64,
    /// A second `host:port` serving only `/metrics`, `/healthz` and `/readyz`, without
    /// credentials (for an in-cluster scraper). Empty: `/metrics` is on `listen` only, behind
    /// the same credentials as everything else.
    pub metrics_listen: String,
    /// PEM certificate chain for serving HTTPS on `listen` (with `tls_key_file`), for installs
    /// without an ingress. The go command sends `.netrc` credentials only over HTTPS. Both
    /// files are read again when they change (a renewed certificate), like the credential files.
    pub tls_cert_file: String,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: String,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            basic_auth_files: Vec::new(),
            bearer_token_files: Vec::new(),
            realm: "athens-proxy".into(),
            reload_seconds: 5,
            metrics_listen: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
        }
    }
}

impl AccessConfig {
    /// Whether clients must authenticate.
    pub fn enabled(&self) -> bool {
        !self.basic_auth_files.is_empty() || !self.bearer_token_files.is_empty()
    }
}
