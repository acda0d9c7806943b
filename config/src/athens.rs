//! Migration aid: an Athens configuration (its `config.toml` and `ATHENS_*` environment) turned
//! into ours, with every key it sets accounted for: mapped, or named with the reason it is not.
//!
//! Pure: the caller reads the file and the environment. Secret values (passwords, keys,
//! tokens) are never copied into the output: our configuration file holds no secrets, so each
//! is named with where it goes instead.

use super::{Config, LogFormat, NetworkMode};
use std::collections::BTreeMap;

/// What happened to one Athens key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Mapped onto our configuration key(s) named.
    Mapped(String),
    /// Not converted, and why (what to do instead).
    Unsupported(String),
    /// Has no effect on this install (another storage type's settings, Athens's own default).
    Ignored(String),
}

/// The result: our configuration, and one outcome per Athens key that was set.
#[derive(Debug)]
pub struct Conversion {
    pub config: Config,
    pub keys: BTreeMap<String, Outcome>,
}

/// An Athens file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AthensError {
    #[error("parsing the Athens configuration: {0}")]
    Parse(#[from] Box<toml::de::Error>),
    #[error("Athens key {key}: {reason}")]
    Value { key: String, reason: String },
}

/// Athens's environment overrides (from its `pkg/config`), by the key they set.
pub const ENV: &[(&str, &str)] = &[
    ("GO_BINARY_PATH", "GoBinary"),
    ("GO_ENV", "GoEnv"),
    ("ATHENS_GO_BINARY_ENV_VARS", "GoBinaryEnvVars"),
    ("ATHENS_GOGET_WORKERS", "GoGetWorkers"),
    ("ATHENS_GOGET_DIR", "GoGetDir"),
    ("ATHENS_PROTOCOL_WORKERS", "ProtocolWorkers"),
    ("ATHENS_LOG_LEVEL", "LogLevel"),
    ("ATHENS_LOG_FORMAT", "LogFormat"),
    ("ATHENS_CLOUD_RUNTIME", "CloudRuntime"),
    ("ATHENS_ENABLE_PPROF", "EnablePprof"),
    ("ATHENS_PPROF_PORT", "PprofPort"),
    ("ATHENS_FILTER_FILE", "FilterFile"),
    ("ATHENS_ROBOTS_FILE", "RobotsFile"),
    ("ATHENS_TIMEOUT", "Timeout"),
    ("ATHENS_STASH_TIMEOUT", "StashTimeout"),
    ("ATHENS_STORAGE_TYPE", "StorageType"),
    ("ATHENS_TLSCERT_FILE", "TLSCertFile"),
    ("ATHENS_TLSKEY_FILE", "TLSKeyFile"),
    ("PORT", "Port"),
    ("ATHENS_PORT", "Port"),
    ("ATHENS_UNIX_SOCKET", "UnixSocket"),
    ("ATHENS_GLOBAL_ENDPOINT", "GlobalEndpoint"),
    ("BASIC_AUTH_USER", "BasicAuthUser"),
    ("BASIC_AUTH_PASS", "BasicAuthPass"),
    ("ATHENS_HOME_TEMPLATE_PATH", "HomeTemplatePath"),
    ("PROXY_FORCE_SSL", "ForceSSL"),
    ("ATHENS_PROXY_VALIDATOR", "ValidatorHook"),
    ("ATHENS_PATH_PREFIX", "PathPrefix"),
    ("ATHENS_NETRC_PATH", "NETRCPath"),
    ("ATHENS_GITHUB_TOKEN", "GithubToken"),
    ("ATHENS_HGRC_PATH", "HGRCPath"),
    ("ATHENS_TRACE_EXPORTER", "TraceExporter"),
    ("ATHENS_TRACE_EXPORTER_URL", "TraceExporterURL"),
    ("ATHENS_TRACE_SAMPLING_FRACTION", "TraceSamplingFraction"),
    ("ATHENS_STATS_EXPORTER", "StatsExporter"),
    ("ATHENS_SUM_DBS", "SumDBs"),
    ("ATHENS_GONOSUM_PATTERNS", "NoSumPatterns"),
    ("ATHENS_DOWNLOAD_MODE", "DownloadMode"),
    ("ATHENS_NETWORK_MODE", "NetworkMode"),
    ("ATHENS_DOWNLOAD_URL", "DownloadURL"),
    ("ATHENS_SINGLE_FLIGHT_TYPE", "SingleFlightType"),
    ("ATHENS_INDEX_TYPE", "IndexType"),
    ("ATHENS_SHUTDOWN_TIMEOUT", "ShutdownTimeout"),
    ("ATHENS_ETCD_ENDPOINTS", "SingleFlight.Etcd.Endpoints"),
    ("ATHENS_REDIS_ENDPOINT", "SingleFlight.Redis.Endpoint"),
    ("ATHENS_REDIS_PASSWORD", "SingleFlight.Redis.Password"),
    (
        "ATHENS_REDIS_SENTINEL_ENDPOINTS",
        "SingleFlight.RedisSentinel.Endpoints",
    ),
    (
        "ATHENS_REDIS_SENTINEL_MASTER_NAME",
        "SingleFlight.RedisSentinel.MasterName",
    ),
    (
        "ATHENS_REDIS_SENTINEL_PASSWORD",
        "SingleFlight.RedisSentinel.SentinelPassword",
    ),
    ("CDN_ENDPOINT", "Storage.CDN.Endpoint"),
    ("ATHENS_DISK_STORAGE_ROOT", "Storage.Disk.RootPath"),
    ("GOOGLE_CLOUD_PROJECT", "Storage.GCP.ProjectID"),
    ("ATHENS_STORAGE_GCP_BUCKET", "Storage.GCP.Bucket"),
    ("ATHENS_STORAGE_GCP_JSON_KEY", "Storage.GCP.JSONKey"),
    ("ATHENS_MINIO_ENDPOINT", "Storage.Minio.Endpoint"),
    ("ATHENS_MINIO_ACCESS_KEY_ID", "Storage.Minio.Key"),
    ("ATHENS_MINIO_SECRET_ACCESS_KEY", "Storage.Minio.Secret"),
    ("ATHENS_MINIO_USE_SSL", "Storage.Minio.EnableSSL"),
    ("ATHENS_MINIO_BUCKET_NAME", "Storage.Minio.Bucket"),
    ("ATHENS_MINIO_REGION", "Storage.Minio.Region"),
    ("ATHENS_MONGO_STORAGE_URL", "Storage.Mongo.URL"),
    (
        "ATHENS_MONGO_DEFAULT_DATABASE",
        "Storage.Mongo.DefaultDBName",
    ),
    ("ATHENS_MONGO_CERT_PATH", "Storage.Mongo.CertPath"),
    ("ATHENS_MONGO_INSECURE", "Storage.Mongo.Insecure"),
    ("AWS_REGION", "Storage.S3.Region"),
    ("AWS_ACCESS_KEY_ID", "Storage.S3.Key"),
    ("AWS_SECRET_ACCESS_KEY", "Storage.S3.Secret"),
    ("AWS_SESSION_TOKEN", "Storage.S3.Token"),
    ("ATHENS_S3_BUCKET_NAME", "Storage.S3.Bucket"),
    ("AWS_FORCE_PATH_STYLE", "Storage.S3.ForcePathStyle"),
    ("AWS_ENDPOINT", "Storage.S3.Endpoint"),
    ("ATHENS_AZURE_ACCOUNT_NAME", "Storage.AzureBlob.AccountName"),
    ("ATHENS_AZURE_ACCOUNT_KEY", "Storage.AzureBlob.AccountKey"),
    (
        "ATHENS_AZURE_MANAGED_IDENTITY_RESOURCE_ID",
        "Storage.AzureBlob.ManagedIdentityResourceId",
    ),
    (
        "ATHENS_AZURE_CREDENTIAL_SCOPE",
        "Storage.AzureBlob.CredentialScope",
    ),
    (
        "ATHENS_AZURE_CONTAINER_NAME",
        "Storage.AzureBlob.ContainerName",
    ),
    ("ATHENS_EXTERNAL_STORAGE_URL", "Storage.External.URL"),
    ("ATHENS_INDEX_MYSQL_HOST", "Index.MySQL.Host"),
    ("ATHENS_INDEX_POSTGRES_HOST", "Index.Postgres.Host"),
];

/// Where the converted configuration expects Athens's basic-auth user: the password is never
/// printed, so the user writes this file (the proxy refuses to start until it exists).
pub const BASIC_AUTH_FILE: &str = "/etc/athens-proxy/basic-auth";

/// A scalar as text (Athens's env values are text; TOML ones are typed).
fn text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn flatten(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => flatten(&key, inner, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

fn unsupported(r: &str) -> Outcome {
    Outcome::Unsupported(r.into())
}

/// Reasons for keys with no counterpart, by key or key prefix (the longest match wins).
const NOT_CONVERTED: &[(&str, &str)] = &[
    (
        "GoBinary",
        "no go binary: modules are fetched natively (HTTP upstreams; git for direct)",
    ),
    ("GoEnv", "no development/production switch"),
    (
        "GoBinaryEnvVars",
        "no go binary: only its GOPROXY and GOSUMDB entries have counterparts",
    ),
    (
        "GoGetDir",
        "no go binary; zips being verified go to the temp folder (upstream.max_temp_bytes bounds it)",
    ),
    (
        "ProtocolWorkers",
        "requests are not pooled; server.max_connections bounds clients",
    ),
    ("CloudRuntime", "no cloud-specific logging"),
    ("EnablePprof", "no profiling endpoint"),
    ("PprofPort", "no profiling endpoint"),
    ("RobotsFile", "no robots.txt route"),
    (
        "StashTimeout",
        "fills are bounded by upstream.timeout_seconds and upstream.fill_lease_seconds",
    ),
    ("UnixSocket", "TCP only (listen)"),
    ("HomeTemplatePath", "no home page"),
    (
        "ForceSSL",
        "no HTTP-to-HTTPS redirect: serve TLS (access.tls_*) or terminate it at the ingress",
    ),
    (
        "ValidatorHook",
        "no validator hook; every module is verified against the checksum database",
    ),
    (
        "PathPrefix",
        "no path prefix: serve at the root, or strip the prefix at the ingress",
    ),
    (
        "GithubToken",
        "put `machine github.com login x-access-token password <token>` in upstream.netrc_file",
    ),
    ("HGRCPath", "Mercurial is not supported"),
    (
        "TraceExporter",
        "traces go over OTLP/HTTP only: set observability.otlp_endpoint to an OpenTelemetry Collector (which can forward to Jaeger, Datadog or Cloud Trace)",
    ),
    (
        "TraceExporterURL",
        "not an OTLP endpoint: set observability.otlp_endpoint to an OpenTelemetry Collector",
    ),
    (
        "TraceSamplingFraction",
        "set OTEL_TRACES_SAMPLER=parentbased_traceidratio and OTEL_TRACES_SAMPLER_ARG=<fraction> in the proxy's environment",
    ),
    (
        "FilterFile",
        "not converted by this tool: filter files are configured separately",
    ),
    (
        "GlobalEndpoint",
        "not converted by this tool: it only matters with a filter file's D rules",
    ),
    (
        "DownloadMode",
        "not converted by this tool: download modes are configured separately",
    ),
    (
        "DownloadURL",
        "not converted by this tool: download modes are configured separately",
    ),
    (
        "SingleFlightType",
        "not needed: replicas coordinate through a lease object in the bucket",
    ),
    (
        "SingleFlight",
        "not needed: replicas coordinate through a lease object in the bucket (no etcd or Redis)",
    ),
    (
        "IndexType",
        "not needed: /index is answered from rows kept in the bucket (no SQL database)",
    ),
    (
        "Index",
        "not needed: /index is answered from rows kept in the bucket (no SQL database)",
    ),
    ("Storage.CDN", "no CDN storage"),
    ("Storage.External", "no external storage protocol"),
    (
        "Storage.S3.UseDefaultConfiguration",
        "credentials always come from the environment and instance metadata, as the AWS SDK's default chain does",
    ),
    (
        "Storage.S3.CredentialsEndpoint",
        "set AWS_CONTAINER_CREDENTIALS_FULL_URI in the proxy's environment",
    ),
    (
        "Storage.S3.AwsContainerCredentialsRelativeURI",
        "set AWS_CONTAINER_CREDENTIALS_RELATIVE_URI in the proxy's environment",
    ),
    (
        "Storage.Mongo.CertPath",
        "give TLS options in the mongodb:// URL",
    ),
    (
        "Storage.Mongo.Insecure",
        "give TLS options in the mongodb:// URL",
    ),
    (
        "Storage.AzureBlob.ManagedIdentityResourceId",
        "not supported: use an account key (AZURE_STORAGE_ACCOUNT_KEY)",
    ),
    (
        "Storage.AzureBlob.CredentialScope",
        "not supported: use an account key (AZURE_STORAGE_ACCOUNT_KEY)",
    ),
];

fn reason_for(key: &str) -> Option<&'static str> {
    NOT_CONVERTED
        .iter()
        .filter(|(k, _)| key == *k || key.starts_with(&format!("{k}.")))
        .max_by_key(|(k, _)| k.len())
        .map(|(_, r)| *r)
}

/// Converts Athens's file text and environment (name, value pairs; only Athens's names are
/// read) into our configuration.
pub fn convert(toml_text: &str, env: &[(String, String)]) -> Result<Conversion, AthensError> {
    let table: toml::Table = toml::from_str(toml_text).map_err(Box::new)?;
    let mut set = BTreeMap::new();
    flatten("", &table, &mut set);
    // The environment wins over the file, as in Athens; ATHENS_PORT over PORT.
    for (name, key) in ENV {
        if let Some((_, v)) = env.iter().find(|(n, _)| n == name) {
            set.insert(key.to_string(), toml::Value::String(v.clone()));
        }
    }
    let get = |k: &str| set.get(k).map(text).filter(|v| !v.trim().is_empty());
    let mut cfg = Config::default();
    let mut keys = BTreeMap::new();
    let mapped = |keys: &mut BTreeMap<String, Outcome>, k: &str, to: &str| {
        keys.insert(k.to_string(), Outcome::Mapped(to.to_string()));
    };
    let bad = |key: &str, reason: String| AthensError::Value {
        key: key.into(),
        reason,
    };
    let seconds = |k: &str| -> Result<Option<u64>, AthensError> {
        get(k)
            .map(|v| v.trim().parse::<u64>().map_err(|e| bad(k, e.to_string())))
            .transpose()
    };

    if let Some(p) = get("Port") {
        let port = p.trim().trim_start_matches(':');
        port.parse::<u16>()
            .map_err(|_| bad("Port", format!("{p:?} is not a port")))?;
        cfg.listen = format!("0.0.0.0:{port}");
        mapped(&mut keys, "Port", "listen");
    }
    if let Some(l) = get("LogLevel") {
        cfg.log.level = match l.trim().to_ascii_lowercase().as_str() {
            "fatal" | "panic" => "error".into(),
            "warning" => "warn".into(),
            other => other.to_string(),
        };
        mapped(&mut keys, "LogLevel", "log.level");
    }
    if let Some(f) = get("LogFormat") {
        cfg.log.format = match f.trim() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        mapped(&mut keys, "LogFormat", "log.format");
    }
    if let Some(v) = seconds("Timeout")? {
        cfg.upstream.timeout_seconds = v;
        mapped(&mut keys, "Timeout", "upstream.timeout_seconds");
    }
    if let Some(v) = seconds("ShutdownTimeout")? {
        cfg.server.shutdown_seconds = v;
        mapped(&mut keys, "ShutdownTimeout", "server.shutdown_seconds");
    }
    if let Some(v) = seconds("GoGetWorkers")? {
        cfg.upstream.max_concurrent_fills = v.max(1) as usize;
        mapped(&mut keys, "GoGetWorkers", "upstream.max_concurrent_fills");
    }
    if let Some(m) = get("NetworkMode") {
        cfg.upstream.network_mode = m
            .trim()
            .parse::<NetworkMode>()
            .map_err(|e| bad("NetworkMode", e))?;
        mapped(&mut keys, "NetworkMode", "upstream.network_mode");
    }
    if let Some(p) = set.get("NoSumPatterns") {
        cfg.upstream.nosum_patterns = text(p)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        mapped(&mut keys, "NoSumPatterns", "upstream.nosum_patterns");
    }
    if let Some(dbs) = get("SumDBs") {
        let list: Vec<&str> = dbs
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        match list.as_slice() {
            [one] if one.trim_end_matches('/') == "https://sum.golang.org" => {
                cfg.upstream.sumdb = crate::DEFAULT_SUMDB.into();
                mapped(&mut keys, "SumDBs", "upstream.sumdb");
            }
            _ => {
                keys.insert(
                    "SumDBs".into(),
                    unsupported(
                        "only one checksum database is used, named with its public key in \
                         GOSUMDB syntax (name+hash+key [URL]): set upstream.sumdb",
                    ),
                );
            }
        }
    }
    if let Some(vars) = set.get("GoBinaryEnvVars") {
        let vars = text(vars);
        let find = |name: &str| {
            vars.split(',')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let mut used = Vec::new();
        if let Some(p) = find("GOPROXY") {
            cfg.upstream.goproxy = p;
            used.push("upstream.goproxy (its GOPROXY)");
        }
        if let Some(db) = find("GOSUMDB") {
            cfg.upstream.sumdb = db;
            used.push("upstream.sumdb (its GOSUMDB)");
        }
        if !used.is_empty() {
            let others = "; other variables have no counterpart (no go binary)";
            mapped(
                &mut keys,
                "GoBinaryEnvVars",
                &format!("{}{others}", used.join(", ")),
            );
        }
    }
    if let Some(p) = get("NETRCPath") {
        cfg.upstream.netrc_file = p;
        mapped(&mut keys, "NETRCPath", "upstream.netrc_file");
    }
    if let Some(s) = get("StatsExporter") {
        let outcome = if s.trim() == "prometheus" {
            Outcome::Mapped("(always on: /metrics, or access.metrics_listen)".into())
        } else {
            unsupported("only Prometheus metrics (/metrics)")
        };
        keys.insert("StatsExporter".into(), outcome);
    }
    match (get("TLSCertFile"), get("TLSKeyFile")) {
        (Some(c), Some(k)) => {
            cfg.access.tls_cert_file = c;
            cfg.access.tls_key_file = k;
            mapped(&mut keys, "TLSCertFile", "access.tls_cert_file");
            mapped(&mut keys, "TLSKeyFile", "access.tls_key_file");
        }
        (None, None) => {}
        _ => return Err(bad("TLSCertFile", "set with TLSKeyFile, or neither".into())),
    }
    if get("BasicAuthUser").is_some() || get("BasicAuthPass").is_some() {
        cfg.access.basic_auth_files = vec![BASIC_AUTH_FILE.into()];
        let to = format!(
            "access.basic_auth_files: write `<user>:<password>` into {BASIC_AUTH_FILE} (not printed here)"
        );
        mapped(&mut keys, "BasicAuthUser", &to);
        mapped(&mut keys, "BasicAuthPass", &to);
    }
    storage(&set, &get, &mut cfg, &mut keys)?;

    // Everything else that was set: a reason, or unknown.
    for k in set.keys() {
        if keys.contains_key(k) {
            continue;
        }
        let empty = set.get(k).is_some_and(|v| text(v).trim().is_empty());
        let outcome = match reason_for(k) {
            _ if empty => Outcome::Ignored("empty: nothing to convert".into()),
            Some(r) => unsupported(r),
            None if k.starts_with("Storage.") => Outcome::Ignored(format!(
                "settings of a storage type other than StorageType ({})",
                get("StorageType").unwrap_or_else(|| "memory".into())
            )),
            None => unsupported("not an Athens key this tool knows"),
        };
        keys.insert(k.clone(), outcome);
    }
    Ok(Conversion { config: cfg, keys })
}

fn storage(
    set: &BTreeMap<String, toml::Value>,
    get: &impl Fn(&str) -> Option<String>,
    cfg: &mut Config,
    keys: &mut BTreeMap<String, Outcome>,
) -> Result<(), AthensError> {
    let kind = get("StorageType").unwrap_or_else(|| "memory".into());
    let need = |k: &str| {
        get(k).ok_or_else(|| AthensError::Value {
            key: k.into(),
            reason: format!("needed for StorageType {kind}"),
        })
    };
    let mut map = |k: &str, o: Outcome| {
        if set.contains_key(k) {
            keys.insert(k.to_string(), o);
        }
    };
    let to = |s: &str| Outcome::Mapped(s.to_string());
    let secret = |env: &str| {
        Outcome::Unsupported(format!(
            "a secret: give it to the proxy as the environment variable {env} (from a Secret), \
             never in the configuration file"
        ))
    };
    let opts = &mut cfg.storage.options;
    match kind.trim() {
        "memory" => cfg.storage.url = "memory://".into(),
        "disk" => {
            cfg.storage.url = format!("file://{}", need("Storage.Disk.RootPath")?);
            map("Storage.Disk.RootPath", to("storage.url"));
        }
        "s3" => {
            cfg.storage.url = format!("s3://{}", need("Storage.S3.Bucket")?);
            map("Storage.S3.Bucket", to("storage.url"));
            if let Some(r) = get("Storage.S3.Region") {
                opts.insert("region".into(), r);
                map("Storage.S3.Region", to("storage.options.region"));
            }
            if let Some(e) = get("Storage.S3.Endpoint") {
                opts.insert("endpoint".into(), e);
                map("Storage.S3.Endpoint", to("storage.options.endpoint"));
            }
            if let Some(p) = get("Storage.S3.ForcePathStyle") {
                opts.insert(
                    "virtual_hosted_style_request".into(),
                    (p.trim() != "true").to_string(),
                );
                map(
                    "Storage.S3.ForcePathStyle",
                    to("storage.options.virtual_hosted_style_request"),
                );
            }
            map("Storage.S3.Key", secret("AWS_ACCESS_KEY_ID"));
            map("Storage.S3.Secret", secret("AWS_SECRET_ACCESS_KEY"));
            map("Storage.S3.Token", secret("AWS_SESSION_TOKEN"));
        }
        "minio" => {
            cfg.storage.url = format!("s3://{}", need("Storage.Minio.Bucket")?);
            map("Storage.Minio.Bucket", to("storage.url"));
            let tls = get("Storage.Minio.EnableSSL").is_none_or(|v| v.trim() == "true");
            let endpoint = need("Storage.Minio.Endpoint")?;
            let endpoint = if endpoint.contains("://") {
                endpoint
            } else {
                format!("{}://{endpoint}", if tls { "https" } else { "http" })
            };
            opts.insert("endpoint".into(), endpoint);
            opts.insert("virtual_hosted_style_request".into(), "false".into());
            if !tls {
                opts.insert("allow_http".into(), "true".into());
            }
            map("Storage.Minio.Endpoint", to("storage.options.endpoint"));
            map("Storage.Minio.EnableSSL", to("storage.options.allow_http"));
            let region = get("Storage.Minio.Region").unwrap_or_else(|| "us-east-1".into());
            opts.insert("region".into(), region);
            map("Storage.Minio.Region", to("storage.options.region"));
            map("Storage.Minio.Key", secret("AWS_ACCESS_KEY_ID"));
            map("Storage.Minio.Secret", secret("AWS_SECRET_ACCESS_KEY"));
        }
        "gcp" => {
            cfg.storage.url = format!("gs://{}", need("Storage.GCP.Bucket")?);
            map("Storage.GCP.Bucket", to("storage.url"));
            map(
                "Storage.GCP.ProjectID",
                Outcome::Ignored("a bucket name is enough".into()),
            );
            map("Storage.GCP.JSONKey", secret("GOOGLE_SERVICE_ACCOUNT_KEY"));
        }
        "azureblob" => {
            cfg.storage.url = format!("az://{}", need("Storage.AzureBlob.ContainerName")?);
            map("Storage.AzureBlob.ContainerName", to("storage.url"));
            if let Some(a) = get("Storage.AzureBlob.AccountName") {
                opts.insert("account_name".into(), a);
                map(
                    "Storage.AzureBlob.AccountName",
                    to("storage.options.account_name"),
                );
            }
            map(
                "Storage.AzureBlob.AccountKey",
                secret("AZURE_STORAGE_ACCOUNT_KEY"),
            );
        }
        "mongo" => {
            let url = need("Storage.Mongo.URL")?;
            let db = get("Storage.Mongo.DefaultDBName").unwrap_or_else(|| "athens".into());
            let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(&url);
            cfg.storage.url = if rest.contains('/') {
                url.clone()
            } else {
                format!("{}/{db}", url.trim_end_matches('/'))
            };
            map(
                "Storage.Mongo.URL",
                to(
                    "storage.url (our MongoDB layout differs from Athens's: import the modules, \
                    do not point at Athens's database)",
                ),
            );
            map("Storage.Mongo.DefaultDBName", to("storage.url"));
        }
        other => {
            keys.insert(
                "StorageType".into(),
                Outcome::Unsupported(format!("storage type {other:?} has no counterpart")),
            );
            return Ok(());
        }
    }
    if set.contains_key("StorageType") {
        keys.insert("StorageType".into(), to("storage.url"));
    }
    Ok(())
}

impl Conversion {
    /// Our configuration as TOML, headed by comments that account for every Athens key.
    pub fn render(&self, source: &str) -> String {
        let mut out = format!(
            "# Converted from the Athens configuration {source} (and ATHENS_* environment) by\n\
             # `athens-proxy --convert-athens-config`. Every Athens key that was set:\n"
        );
        for (k, o) in &self.keys {
            let line = match o {
                Outcome::Mapped(to) => format!("#   {k} -> {to}\n"),
                Outcome::Unsupported(r) => format!("#   {k}: NOT CONVERTED: {r}\n"),
                Outcome::Ignored(r) => format!("#   {k}: ignored: {r}\n"),
            };
            out.push_str(&line);
        }
        out.push('\n');
        out.push_str(&self.config.to_toml());
        out
    }
}
