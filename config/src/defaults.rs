//! Defaults: serve on loopback from a local folder, with the go command's own upstream.
//!
//! An empty `upstream.goproxy` or `upstream.sumdb` means "what the go command on this machine
//! would use": `$GOPROXY`/`$GOSUMDB`, else `go env`. That keeps registry hosts out of our code and
//! follows the user's own go settings.

use super::{
    Config, LogConfig, NetworkMode, PolicyConfig, ServerConfig, StorageConfig, UpstreamConfig,
};
use std::path::PathBuf;

/// Where modules are stored with no configuration: `$XDG_DATA_HOME/athens-proxy/storage`,
/// else `~/.local/share/athens-proxy/storage`, else `./athens-storage`.
pub fn default_storage_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("athens-proxy/storage");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".local/share/athens-proxy/storage");
    }
    PathBuf::from("athens-storage")
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            storage: StorageConfig::default(),
            upstream: UpstreamConfig::default(),
            server: ServerConfig::default(),
            log: LogConfig::default(),
            access: Default::default(),
            observability: Default::default(),
            policy: PolicyConfig::default(),
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            filter_file: String::new(),
            global_endpoint: String::new(),
            download_mode: "sync".into(),
            download_url: String::new(),
            reload_seconds: 5,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        let dir = default_storage_dir();
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Self {
            url: format!("file://{}", dir.display()),
            options: Default::default(),
            zip_redirect_seconds: 0,
            zip_cache_dir: String::new(),
            zip_cache_max_bytes: 1 << 30,
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            goproxy: String::new(),
            netrc_file: String::new(),
            sumdb: String::new(),
            nosum_patterns: Vec::new(),
            private: Vec::new(),
            vcs_cache_dir: String::new(),
            vcs_ssh_keys: Vec::new(),
            vcs_known_hosts: String::new(),
            vcs_git_config: String::new(),
            vcs_tokens: Vec::new(),
            vcs_cache_max_bytes: 0,
            vcs_go_binary: String::new(),
            network_mode: NetworkMode::Strict,
            timeout_seconds: 60,
            retries: 2,
            negative_cache_seconds: 30,
            fill_lease_seconds: 60,
            max_concurrent_fills: 32,
            max_temp_bytes: 4 << 30,
            failed_fill_seconds: 30,
            prefetch_zips: true,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_timeout_seconds: 30,
            max_connections: 4096,
            // Inside Kubernetes' default 30 s grace period.
            shutdown_seconds: 20,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: Default::default(),
            level: "info".into(),
        }
    }
}

/// Fills empty upstream settings the way the go command would choose them.
pub fn resolve_from_go_env(upstream: &mut UpstreamConfig) -> Result<(), super::ConfigError> {
    if upstream.goproxy.trim().is_empty() {
        upstream.goproxy = go_env("GOPROXY").ok_or(super::ConfigError::Invalid {
            field: "upstream.goproxy",
            reason: "not set, and neither $GOPROXY nor `go env GOPROXY` gives one".into(),
        })?;
    }
    if upstream.sumdb.trim().is_empty() {
        // Fail closed: with nothing configured, verify against the go command's own default.
        upstream.sumdb = go_env("GOSUMDB").unwrap_or_else(|| super::DEFAULT_SUMDB.into());
    }
    if upstream.private.is_empty()
        && let Ok(v) = std::env::var("GOPRIVATE")
    {
        // Only the environment: `go env` would read a developer's settings, not the proxy's.
        upstream.private = v
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
    }
    Ok(())
}

/// `$NAME` if set and non-empty, else `go env NAME` (which knows the go command's defaults).
fn go_env(name: &str) -> Option<String> {
    if let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        return Some(v);
    }
    let out = std::process::Command::new("go")
        .args(["env", name])
        .output()
        .ok()?;
    let v = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}
