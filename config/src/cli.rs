//! Command-line flags and their environment variables, laid over the TOML file.
//!
//! Precedence, highest first: flag, environment variable, `--config` file, built-in default.

use super::{Config, ConfigError, LogFormat, NetworkMode};
use clap::Parser;
use std::path::PathBuf;

/// A Go module proxy (the GOPROXY protocol) backed by object storage.
#[derive(Debug, Default, Parser)]
#[command(name = "athens-proxy", version)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "ATHENS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, host:port.
    #[arg(long, env = "ATHENS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Storage URL: file:///abs/path, memory://, s3://bucket/prefix, gs://..., az://...
    #[arg(long, env = "ATHENS_STORAGE", value_name = "URL")]
    pub storage: Option<String>,
    /// Upstream GOPROXY list (`,` and `|` separators, `direct`, `off`).
    #[arg(long, env = "ATHENS_UPSTREAM", value_name = "GOPROXY-LIST")]
    pub upstream: Option<String>,
    /// Checksum database in GOSUMDB syntax, or `off`.
    #[arg(long, env = "ATHENS_SUMDB", value_name = "GOSUMDB")]
    pub sumdb: Option<String>,
    /// Comma-separated module path patterns never checked against the checksum database.
    #[arg(long, env = "ATHENS_NOSUM", value_name = "PATTERNS")]
    pub nosum: Option<String>,
    /// Comma-separated private module path patterns (GOPRIVATE syntax): fetched from version
    /// control only, never from a proxy or the checksum database.
    #[arg(long, env = "ATHENS_PRIVATE", value_name = "PATTERNS")]
    pub private: Option<String>,
    /// A `go` binary run for modules in hg, svn, bzr or fossil repositories.
    #[arg(long, env = "ATHENS_VCS_GO_BINARY", value_name = "PATH")]
    pub vcs_go_binary: Option<String>,
    /// strict, fallback or offline.
    #[arg(long, env = "ATHENS_NETWORK_MODE", value_name = "MODE")]
    pub network_mode: Option<NetworkMode>,
    /// Seconds to remember an upstream "not found".
    #[arg(long, env = "ATHENS_NEGATIVE_CACHE_SECONDS", value_name = "SECONDS")]
    pub negative_cache_seconds: Option<u64>,
    /// Seconds to remember a failed fill (rejected by verification, upstream error).
    #[arg(long, env = "ATHENS_FAILED_FILL_SECONDS", value_name = "SECONDS")]
    pub failed_fill_seconds: Option<u64>,
    /// Athens filter file (include/exclude/direct rules by module path).
    #[arg(long, env = "ATHENS_FILTER_FILE", value_name = "FILE")]
    pub filter_file: Option<String>,
    /// Where `D` rules of the filter file redirect to.
    #[arg(long, env = "ATHENS_GLOBAL_ENDPOINT", value_name = "URL")]
    pub global_endpoint: Option<String>,
    /// sync, async, redirect, async_redirect, none, file:PATH or custom:BASE64 (Athens's HCL).
    #[arg(long, env = "ATHENS_DOWNLOAD_MODE", value_name = "MODE")]
    pub download_mode: Option<String>,
    /// Where redirect download modes send clients.
    #[arg(long, env = "ATHENS_DOWNLOAD_URL", value_name = "URL")]
    pub download_url: Option<String>,
    /// text or json.
    #[arg(long, env = "ATHENS_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// OTLP/HTTP base URL for traces (e.g. http://otel-collector:4318); overrides
    /// OTEL_EXPORTER_OTLP_ENDPOINT. Unset: no traces.
    #[arg(long, env = "ATHENS_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Print the configuration reference (every key, default, flag) as Markdown and exit.
    #[arg(long)]
    pub print_config_reference: bool,
    /// Read an Athens configuration file (and Athens's environment variables), print our
    /// equivalent configuration with every Athens key accounted for, and exit.
    #[arg(long, value_name = "ATHENS-TOML")]
    pub convert_athens_config: Option<PathBuf>,
    /// Write the missing `/index` rows of the configured storage (versions stored before rows
    /// existed, or by other tools), print how many, and exit.
    #[arg(long)]
    pub reindex: bool,
    /// Import an Athens bucket (`s3://...`, `gs://...`, `az://...`, `file:///...`; Athens's
    /// layout, module paths not case-escaped) into the configured storage, verifying every
    /// version like a fill (checksum database, no-sum patterns), then exit: non-zero when a
    /// version failed.
    #[arg(long, value_name = "URL")]
    pub import_from: Option<String>,
    /// A `key=value` storage option for `--import-from` (as `storage.options`), repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub import_option: Vec<String>,
}

impl Cli {
    /// The configuration these flags describe: file (if any), then overrides.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        self.apply(&mut cfg);
        Ok(cfg)
    }

    fn apply(&self, cfg: &mut Config) {
        if let Some(v) = &self.listen {
            cfg.listen = v.clone();
        }
        if let Some(v) = &self.storage {
            cfg.storage.url = v.clone();
        }
        if let Some(v) = &self.upstream {
            cfg.upstream.goproxy = v.clone();
        }
        if let Some(v) = &self.sumdb {
            cfg.upstream.sumdb = v.clone();
        }
        if let Some(v) = &self.nosum {
            cfg.upstream.nosum_patterns = split_patterns(v);
        }
        if let Some(v) = &self.private {
            cfg.upstream.private = split_patterns(v);
        }
        if let Some(v) = &self.vcs_go_binary {
            cfg.upstream.vcs_go_binary = v.clone();
        }
        if let Some(v) = self.network_mode {
            cfg.upstream.network_mode = v;
        }
        if let Some(v) = self.negative_cache_seconds {
            cfg.upstream.negative_cache_seconds = v;
        }
        if let Some(v) = self.failed_fill_seconds {
            cfg.upstream.failed_fill_seconds = v;
        }
        if let Some(v) = &self.filter_file {
            cfg.policy.filter_file = v.clone();
        }
        if let Some(v) = &self.global_endpoint {
            cfg.policy.global_endpoint = v.clone();
        }
        if let Some(v) = &self.download_mode {
            cfg.policy.download_mode = v.clone();
        }
        if let Some(v) = &self.download_url {
            cfg.policy.download_url = v.clone();
        }
        if let Some(v) = self.log_format {
            cfg.log.format = v;
        }
        if let Some(v) = &self.otlp_endpoint {
            cfg.observability.otlp_endpoint = v.clone();
        }
    }
}

/// A comma-separated pattern list as the go command splits `GOPRIVATE`.
fn split_patterns(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:8080\"\n[upstream]\nnetwork_mode = \"offline\"\ngoproxy = \"off\"\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "athens-proxy",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9",
        ])
        .unwrap();
        let cfg = cli.resolve().unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9");
        assert_eq!(cfg.upstream.network_mode, NetworkMode::Offline);
        assert_eq!(cfg.upstream.goproxy, "off");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("lisen = \"x\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn rendered_toml_round_trips() {
        let mut cfg = Config::default();
        cfg.upstream.goproxy = "http://a,http://b|direct".into();
        cfg.storage.options.insert("region".into(), "x".into());
        let back = Config::from_toml(&cfg.to_toml(), "t").unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_named() {
        let none = |_: &str| None;
        let cfg = Config::default();
        assert_eq!(cfg.observability.traces_endpoint(none), None);
        let env = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://c:4318".into());
        assert_eq!(cfg.observability.traces_endpoint(env), Some(String::new()));
        let blank = |_: &str| Some(" ".to_string());
        assert_eq!(cfg.observability.traces_endpoint(blank), None);
        let cli =
            Cli::try_parse_from(["athens-proxy", "--otlp-endpoint", "http://col:4318/"]).unwrap();
        let cfg = cli.resolve().unwrap();
        assert_eq!(
            cfg.observability.traces_endpoint(env).as_deref(),
            Some("http://col:4318/v1/traces")
        );
        let mut bad = Config::default();
        bad.observability.otlp_endpoint = "col:4318".into();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn zip_redirects_need_a_signing_bucket_and_s3s_limit() {
        let mut cfg = Config::default();
        cfg.upstream.goproxy = "off".into();
        cfg.validate().unwrap();
        cfg.storage.zip_redirect_seconds = 60;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("storage.zip_redirect_seconds"), "{err}");
        for url in ["s3://b/p", "gs://b", "az://c"] {
            cfg.storage.url = url.into();
            cfg.validate().unwrap();
        }
        cfg.storage.zip_redirect_seconds = crate::MAX_ZIP_REDIRECT_SECONDS + 1;
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn a_zip_cache_is_for_remote_buckets_and_needs_room() {
        let mut cfg = Config::default();
        cfg.upstream.goproxy = "off".into();
        cfg.storage.zip_cache_dir = "/var/cache/athens/zips".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("storage.zip_cache_dir"), "{err}");
        cfg.storage.url = "s3://b/p".into();
        cfg.validate().unwrap();
        cfg.storage.zip_cache_max_bytes = 0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("storage.zip_cache_max_bytes"), "{err}");
    }

    #[test]
    fn bad_network_mode_is_an_error() {
        assert!(Cli::try_parse_from(["athens-proxy", "--network-mode", "sometimes"]).is_err());
    }
}
