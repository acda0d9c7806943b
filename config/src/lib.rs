//! The proxy's configuration: one serde type, read from TOML, overridden by environment and flags.
//!
//! The operator renders this same type into a ConfigMap, so every field here is part of the
//! contract between the two programs. Defaults are what a developer on a laptop expects.

mod access;
pub mod athens;
mod cli;
mod defaults;
pub mod policy;
mod redact;
pub mod reference;

pub use access::AccessConfig;
pub use cli::Cli;
pub use defaults::{default_storage_dir, resolve_from_go_env};
pub use redact::redact_userinfo;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The checksum database used when nothing is configured: the go command's default.
pub const DEFAULT_SUMDB: &str = "sum.golang.org";

/// Everything `athens-proxy` needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve HTTP on, `host:port`.
    pub listen: String,
    /// Where modules are stored.
    pub storage: StorageConfig,
    /// Where modules the storage lacks come from.
    pub upstream: UpstreamConfig,
    /// Limits on client connections.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Client credentials and the metrics address.
    pub access: AccessConfig,
    /// Traces (OpenTelemetry over OTLP).
    pub observability: ObservabilityConfig,
    /// Athens filter file and download modes: which modules are served, and what a miss does.
    pub policy: PolicyConfig,
}

/// Athens's `FilterFile`/`GlobalEndpoint` and `DownloadMode`/`DownloadURL`, same file formats.
/// Files named here are re-read when they change; a bad new file is logged and the last good
/// one stays in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// An Athens filter file: `+ path [versions]` include, `- path [versions]` exclude (403),
    /// `D path` direct (303 to `global_endpoint` + the request path), a bare sign sets the
    /// default; the deepest matching path rule wins. Empty: everything is included.
    pub filter_file: String,
    /// Where `D` rules send clients (a GOPROXY URL, e.g. the public module mirror).
    pub global_endpoint: String,
    /// What a storage miss of `.info`/`.mod`/`.zip` does: `sync` (fetch now), `async` (404 now,
    /// fetch in the background), `redirect` (301 to `download_url` + the request path),
    /// `async_redirect`, `none` (404); or `file:PATH` / `custom:BASE64` with Athens's HCL
    /// (`mode`, `downloadURL`, `download "<pattern>" { mode = ... }` blocks, first match wins).
    pub download_mode: String,
    /// Where redirect modes send clients, unless the HCL names its own `downloadURL`.
    pub download_url: String,
    /// How often the filter and download-mode files are checked for changes, in seconds.
    pub reload_seconds: u64,
}

/// The longest `storage.zip_redirect_seconds`: S3's limit for a pre-signed URL (7 days).
pub const MAX_ZIP_REDIRECT_SECONDS: u64 = 7 * 24 * 3600;

/// The bucket: the single source of truth for every module version served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Storage URL: `file:///abs/path`, `memory://`, `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix`.
    pub url: String,
    /// Backend options that are not secrets, passed to `object_store` by name
    /// (for S3: `endpoint`, `region`, `virtual_hosted_style_request`, `allow_http`).
    /// Credentials come from the environment (`AWS_ACCESS_KEY_ID`, `GOOGLE_SERVICE_ACCOUNT`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`, ...), never from this file.
    pub options: BTreeMap<String, String>,
    /// Answer `.zip` requests for versions already in the bucket with a `307` redirect to a
    /// pre-signed URL of the bucket itself, valid this many seconds, so the zip's bytes go from
    /// the bucket to the client without passing through the proxy (the go command follows the
    /// redirect and checks the zip's hash against go.sum as always). `0`: zips are streamed by
    /// the proxy. Only for `s3://`, `gs://` and `az://` buckets, whose credentials must be able
    /// to sign URLs (for GCS a service account key); clients must be able to reach the bucket's
    /// endpoint. At most 604800 (7 days, S3's limit). Filters and access control answer first;
    /// a version not in the bucket yet is filled and streamed as usual, the next request is
    /// redirected; if signing fails the zip is streamed.
    pub zip_redirect_seconds: u64,
    /// A local directory holding copies of zips read from a remote bucket (`s3://`, `gs://`,
    /// `az://`, `mongodb://`), so a warm zip is sent from local disk without copying instead of
    /// being read from the bucket again. Filled as a zip is first streamed from the bucket
    /// (the client never waits for the copy; it is kept only once complete and of the
    /// bucket's size) and trusted only for committed versions; files survive a restart. Only
    /// files this proxy names (`<sha256>.zip`, `*.part`) are ever touched. Empty: no copies,
    /// every zip comes from the bucket. Not for `file://` storage, which is local already.
    pub zip_cache_dir: String,
    /// Most bytes the copies in `zip_cache_dir` may take: the least recently served are
    /// removed to make room, and a zip larger than a quarter of this is never copied.
    pub zip_cache_max_bytes: u64,
}

/// How the proxy reaches the outside world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// A `GOPROXY`-syntax list: URLs separated by `,` (fall through on 404/410) or `|` (fall
    /// through on any error), and the keywords `direct` and `off`. Empty: `$GOPROXY`, else
    /// `go env GOPROXY`. Credentials are better kept out of it (see `netrc_file`); any user
    /// info in it is replaced by `***` wherever the proxy prints it.
    pub goproxy: String,
    /// A `.netrc` file with credentials for upstream hosts (`machine <host> login <user>
    /// password <secret>`), as the go command reads one. Empty: `$NETRC` when set. The
    /// environment variable `ATHENS_UPSTREAM_NETRC` may hold the same text instead of a file.
    pub netrc_file: String,
    /// The checksum database, in `GOSUMDB` syntax (`name+hash+key`, optionally followed by a URL),
    /// or `off`. A bare name needs a built-in key: only `sum.golang.org`'s, as in the go command;
    /// any other database named without its key is refused at startup. Empty: `$GOSUMDB`, else
    /// `go env GOSUMDB`, else `sum.golang.org`. `off` stores modules unverified and is logged as
    /// a warning at startup and shown by `/version`.
    pub sumdb: String,
    /// Module path patterns (`GONOSUMDB`/`GOPRIVATE` glob syntax) that are never checked against
    /// or looked up in the checksum database.
    pub nosum_patterns: Vec<String>,
    /// Private module path patterns (`GOPRIVATE` glob syntax: comma-separated, each matching a
    /// path prefix element by element, `*` within an element). Matching modules are fetched
    /// straight from version control (git over HTTPS, as `direct` does), never from a proxy in
    /// `goproxy` and never looked up in the checksum database, so their names never leave in a
    /// request to a public host. Empty: `$GOPRIVATE`.
    pub private: Vec<String>,
    /// Directory for the bare git mirrors `direct` and private modules are fetched into (one
    /// per repository, fetched incrementally). Empty: `athens-vcs` in the system's temporary
    /// directory.
    pub vcs_cache_dir: String,
    /// SSH private keys (OpenSSH or PEM format, without a passphrase) for `ssh://` git
    /// remotes, offered in order. Empty: whichever of `~/.ssh/id_ed25519`, `id_ecdsa` and
    /// `id_rsa` exist. The proxy has its own SSH client: `ssh` programs, `~/.ssh/config` and
    /// `GIT_SSH_COMMAND` are not used. The user name is the URL's, else `git`.
    pub vcs_ssh_keys: Vec<String>,
    /// The `known_hosts` file that must list every SSH git server's host key (OpenSSH format,
    /// `[host]:port` for other ports than 22, hashed names allowed; list every key type the
    /// server has, as `ssh-keyscan` prints them). Unknown or changed host keys are refused;
    /// there is no trust on first use. Empty: `~/.ssh/known_hosts`.
    pub vcs_known_hosts: String,
    /// A git config file (git's syntax) applied to every repository fetched, as git applies
    /// `GIT_CONFIG_GLOBAL`: `url.<base>.insteadOf`, `http.extraHeader` (also in URL-scoped
    /// `[http "https://host/"]` sections, e.g. a bearer token per host), other `http.*` keys,
    /// and `credential.helper` (also in `[credential "<url>"]` sections; asked in order after
    /// `.netrc` and `vcs_tokens`, when the git host asks for a login): `store --file=<path>` is
    /// read by the proxy; an absolute path, a bare name `<name>` (the program
    /// `git-credential-<name>` on `PATH`) or a `!<shell command>` (run by `sh -c`) is run with
    /// `get` and git's credential protocol, stopped after 10 s; `cache` is not supported (it
    /// needs git's daemon). The proxy's container image has no shell and no git: there, only a
    /// static helper executable mounted into the pod can run. Read again at every fetch, so a
    /// changed file applies without a restart. `http.sslCAInfo` (also URL-scoped) names the CAs trusted for git fetches of the
    /// matching remotes, replacing the default roots as in git; `SSL_CERT_FILE` applies to all
    /// HTTPS, `go-import` discovery included. Empty: none.
    pub vcs_git_config: String,
    /// Access tokens per git host, sent as HTTPS basic auth (`username`, token as password)
    /// for `go-import` discovery and git fetches, ahead of `.netrc` entries for the same host.
    /// GitHub and GitLab accept a personal or project access token this way. Each entry:
    /// `host`, `file` (holding the token, read at startup) and `username` (default
    /// `x-access-token`), e.g. `[[upstream.vcs_tokens]]` tables in TOML.
    pub vcs_tokens: Vec<VcsToken>,
    /// Most bytes the git mirrors in `vcs_cache_dir` may take: after a fetch, the least
    /// recently used mirrors not in use are removed until the rest fit (a removed mirror is
    /// fetched again in full when next needed). 0: no limit.
    pub vcs_cache_max_bytes: u64,
    /// A `go` binary run for modules whose repository is Mercurial, Subversion, Bazaar or
    /// Fossil (the proxy fetches only git itself): `go list -m` and `go mod download` with
    /// `GOPROXY=direct`, so versions, zips and hashes are the go command's own. It runs with
    /// its own `HOME`, module cache and `.netrc` (the proxy's credentials) under
    /// `vcs_cache_dir`/`go`, `GOSUMDB=off` (the proxy verifies what it returns as any other
    /// fill), `GOPRIVATE` = `private`, `GOTOOLCHAIN=local`, and only `PATH`, `GOVCS`,
    /// `HGRCPATH`, `SSL_CERT_FILE`, `SSL_CERT_DIR` and the proxy variables from the proxy's
    /// environment; the VCS tool (`hg`, `svn`, ...) must be on `PATH`. Each run is killed
    /// after 10 minutes. Zips (and the trees extracted from them) leave its module cache once
    /// served; its VCS clones there are not bounded by `vcs_cache_max_bytes`. Empty:
    /// such modules are answered 404 naming their VCS (the proxy image has no Go toolchain).
    pub vcs_go_binary: String,
    /// `strict`, `fallback` or `offline`.
    pub network_mode: NetworkMode,
    /// Per-request timeout for upstream calls, in seconds (zips get this long per idle read).
    pub timeout_seconds: u64,
    /// Retries for 429 and 5xx answers and connection errors, with backoff.
    pub retries: u32,
    /// How long a "not found" answer from upstream is remembered, in seconds (0 disables).
    pub negative_cache_seconds: u64,
    /// Replicas sharing a bucket take a lease object before fetching a version, so each version
    /// is fetched once per cluster. A lease not renewed for this many seconds (its holder died)
    /// is taken over.
    pub fill_lease_seconds: u64,
    /// Most fills (upstream fetch, verify, commit) running at once in this process; more wait.
    pub max_concurrent_fills: usize,
    /// Temporary disk for zips being fetched and verified, in bytes, across all fills. A fill
    /// reserves the zip's size (the 500 MiB limit when upstream does not say); one that does
    /// not fit is answered 503 at once rather than filling the disk.
    pub max_temp_bytes: u64,
    /// How long a failed fill (verification rejected, upstream error) is remembered, in seconds:
    /// requests for that version meanwhile get the same error without fetching again (0
    /// disables).
    pub failed_fill_seconds: u64,
    /// After a `.mod` or `.info` request was answered from the checksum database's `go.mod`
    /// hash alone (the version's zip not fetched yet), fetch the zip in the background so the
    /// version is complete in storage before anyone asks for it. `false`: the zip is fetched on
    /// its own request only (a build graph's many `.mod`-only modules then never cost their
    /// zip's download). Private and no-sum modules always fetch the zip before answering, as
    /// nothing else can vouch for their `.mod`.
    pub prefetch_zips: bool,
}

/// One git host's access token (`upstream.vcs_tokens`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcsToken {
    /// The host name, as in a module path or repository URL (`github.com`, `git.corp.example`).
    pub host: String,
    /// The basic-auth user name sent with the token. Default `x-access-token` (GitHub; GitLab
    /// accepts any name with a personal access token, `oauth2` with an OAuth token).
    #[serde(default = "default_token_user")]
    pub username: String,
    /// The file holding the token (surrounding whitespace ignored), read at startup.
    pub file: String,
}

fn default_token_user() -> String {
    "x-access-token".into()
}

/// Client connections: nothing from outside is trusted for time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    pub header_timeout_seconds: u64,
    /// Most client connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// On SIGTERM: seconds in-flight requests get to finish before the process exits.
    pub shutdown_seconds: u64,
}

/// What the proxy does when upstream is unreachable or failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Upstream errors fail the request.
    #[default]
    Strict,
    /// Serve what storage has when upstream fails.
    Fallback,
    /// Never call upstream: everything comes from storage.
    Offline,
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `athens_proxy=debug,info`.
    pub level: String,
}

/// OpenTelemetry traces. Off unless an endpoint is configured here or in the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` environment variables;
/// off, nothing is recorded or sent. On, every request is a span (a client's W3C `traceparent`
/// is its parent), a fill adds child spans (lease, each upstream fetch, the checksum database
/// lookup, verification, commit), and every log line inside a request carries its `trace_id`.
/// The standard `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_TRACES_SAMPLER[_ARG]` and `OTEL_BSP_*` variables are honoured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Base URL of an OTLP/HTTP receiver (protobuf), e.g. `http://otel-collector:4318`; spans
    /// go to `<url>/v1/traces`. gRPC (port 4317) is not supported. Takes precedence over
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: String,
}

impl ObservabilityConfig {
    /// Where spans go: the configured base URL (with `/v1/traces`), else `Some("")` when the
    /// standard environment variables name one (the exporter reads them itself), else `None`:
    /// tracing is off. `env` is the process environment, passed in to keep this pure.
    pub fn traces_endpoint(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        let base = self.otlp_endpoint.trim();
        if !base.is_empty() {
            return Some(format!("{}/v1/traces", base.trim_end_matches('/')));
        }
        let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
        (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .then(String::new)
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A configuration that could not be read or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl std::str::FromStr for NetworkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Self::Strict),
            "fallback" => Ok(Self::Fallback),
            "offline" => Ok(Self::Offline),
            other => Err(format!(
                "unknown network mode {other:?} (want strict, fallback or offline)"
            )),
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?} (want text or json)")),
        }
    }
}

impl Config {
    /// Parses a TOML document.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            source: Box::new(e),
        })
    }

    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_toml(&text, &shown)
    }

    /// Renders the TOML document the proxy reads (used by the operator for its ConfigMap).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("Config has only TOML-representable fields")
    }

    /// The same configuration with credentials in URLs replaced, for printing and logs.
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        c.storage.url = redact_userinfo(&c.storage.url);
        c.upstream.goproxy = redact_userinfo(&c.upstream.goproxy);
        c.upstream.sumdb = redact_userinfo(&c.upstream.sumdb);
        c.observability.otlp_endpoint = redact_userinfo(&c.observability.otlp_endpoint);
        c
    }

    /// Checks what serde cannot: values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                field: "listen",
                reason: format!("{:?} is not host:port with a numeric host", self.listen),
            });
        }
        if self.storage.url.trim().is_empty() {
            return Err(ConfigError::Invalid {
                field: "storage.url",
                reason: "empty".into(),
            });
        }
        let redirect = self.storage.zip_redirect_seconds;
        if redirect > 0
            && !["s3://", "gs://", "az://"]
                .iter()
                .any(|s| self.storage.url.starts_with(s))
        {
            return Err(ConfigError::Invalid {
                field: "storage.zip_redirect_seconds",
                reason: format!(
                    "pre-signed zip redirects need an s3://, gs:// or az:// bucket, not {:?}",
                    redact_userinfo(&self.storage.url)
                ),
            });
        }
        if !self.storage.zip_cache_dir.trim().is_empty() {
            if self.storage.url.starts_with("file://") {
                return Err(ConfigError::Invalid {
                    field: "storage.zip_cache_dir",
                    reason: "a file:// bucket is local already; copies of its zips would only \
                        take space"
                        .into(),
                });
            }
            if self.storage.zip_cache_max_bytes == 0 {
                return Err(ConfigError::Invalid {
                    field: "storage.zip_cache_max_bytes",
                    reason: "0 with a zip_cache_dir (leave zip_cache_dir empty for no copies)"
                        .into(),
                });
            }
        }
        // S3 refuses pre-signed URLs valid for longer than seven days.
        if redirect > MAX_ZIP_REDIRECT_SECONDS {
            return Err(ConfigError::Invalid {
                field: "storage.zip_redirect_seconds",
                reason: format!("{redirect} is more than {MAX_ZIP_REDIRECT_SECONDS} (7 days)"),
            });
        }
        if self.upstream.goproxy.trim().is_empty() {
            return Err(ConfigError::Invalid {
                field: "upstream.goproxy",
                reason: "empty (use \"off\" for none)".into(),
            });
        }
        let positive = [
            (
                "server.header_timeout_seconds",
                self.server.header_timeout_seconds,
            ),
            ("server.max_connections", self.server.max_connections as u64),
            (
                "upstream.max_concurrent_fills",
                self.upstream.max_concurrent_fills as u64,
            ),
            ("upstream.max_temp_bytes", self.upstream.max_temp_bytes),
            ("policy.reload_seconds", self.policy.reload_seconds),
        ];
        if !self.access.metrics_listen.is_empty()
            && self
                .access
                .metrics_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return Err(ConfigError::Invalid {
                field: "access.metrics_listen",
                reason: format!(
                    "{:?} is not host:port with a numeric host",
                    self.access.metrics_listen
                ),
            });
        }
        if self.access.tls_cert_file.is_empty() != self.access.tls_key_file.is_empty() {
            return Err(ConfigError::Invalid {
                field: "access.tls_cert_file",
                reason: "set both tls_cert_file and tls_key_file, or neither".into(),
            });
        }
        let otlp = self.observability.otlp_endpoint.trim();
        if !(otlp.is_empty() || otlp.starts_with("http://") || otlp.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                field: "observability.otlp_endpoint",
                reason: format!("{otlp:?} is not an http:// or https:// URL"),
            });
        }
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid {
                field,
                reason: "must be greater than 0".into(),
            });
        }
        Ok(())
    }
}
