//! The proxy configuration: `athens_config::Config`, the type the proxy itself parses.

use super::secrets::{
    GIT_CONFIG_FILE, KNOWN_HOSTS_FILE, NETRC_DEFAULT_KEY, SSH_KEY_FILE, TOKEN_FILES,
};
use super::{
    CONFIG_DIR, CONTAINER_PORT, DOWNLOAD_KEY, FILTER_KEY, POLICY_REF_DIR, STORAGE_DIR,
    VCS_CACHE_DIR, VCS_SECRET_DIR, ZIP_CACHE_DIR,
};
use crate::crd::{AthensProxySpec, NetworkModeSpec, StorageSpec};
use athens_config::{Config, LogFormat, NetworkMode, StorageConfig};
use std::collections::BTreeMap;

/// The filter and download-mode files next to `config.toml`, by ConfigMap key.
pub fn policy_files(spec: &AthensProxySpec) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if let Some(f) = spec.filter.as_ref().filter(|f| f.config_map_ref.is_none()) {
        let mut text = f.rules.join("\n");
        text.push('\n');
        files.insert(FILTER_KEY.to_string(), text);
    }
    if let Some(d) = spec
        .download_modes
        .as_ref()
        .filter(|d| d.config_map_ref.is_none())
    {
        let text = match &d.hcl {
            Some(hcl) => hcl.clone(),
            // A keyword is written as HCL too, so changing it is a reload, not a rollout.
            None => format!(
                "mode = {:?}\ndownloadURL = {:?}\n",
                d.mode.as_deref().unwrap_or("sync"),
                d.download_url.as_deref().unwrap_or("").trim()
            ),
        };
        files.insert(DOWNLOAD_KEY.to_string(), text);
    }
    files
}

/// Default size limit of the git mirror cache emptyDir.
pub const DEFAULT_VCS_CACHE_LIMIT: &str = "2Gi";

/// The git mirror cache's size limit, when the proxy fetches from version control at all
/// (private patterns, `direct` in the list, or `vcs` settings).
pub fn vcs_cache_limit(spec: &AthensProxySpec) -> Option<String> {
    let up = &spec.upstream;
    let direct = up.goproxy.split([',', '|']).any(|e| e.trim() == "direct");
    if up.private.is_empty() && up.vcs.is_none() && !direct {
        return None;
    }
    Some(
        up.vcs
            .as_ref()
            .and_then(|v| v.cache_size_limit.clone())
            .unwrap_or_else(|| DEFAULT_VCS_CACHE_LIMIT.into()),
    )
}

/// Default size limit of the zip cache emptyDir.
pub const DEFAULT_ZIP_CACHE_LIMIT: &str = "1Gi";

/// The zip cache's size limit: for remote buckets only, off with `0`, and by default only
/// when zips are streamed (with redirects, warm zips never pass through the proxy).
pub fn zip_cache_limit(storage: &StorageSpec) -> Option<String> {
    if storage.filesystem.is_some() {
        return None;
    }
    let limit = match &storage.zip_cache_size_limit {
        Some(limit) => limit.trim().to_string(),
        None if storage.zip_redirect_seconds.unwrap_or(0) > 0 => return None,
        None => DEFAULT_ZIP_CACHE_LIMIT.into(),
    };
    // Off for `0`, and for a limit leaving no room (the proxy refuses a cache of 0 bytes).
    (zip_cache_room(&limit) > 0).then_some(limit)
}

/// 80% of the limit, as for the mirror cache: the proxy removes copies before the kubelet
/// evicts the pod for a full emptyDir.
fn zip_cache_room(limit: &str) -> u64 {
    quantity_bytes(limit).unwrap_or(0) / 5 * 4
}

/// Bytes of a quantity as the CRD allows it (`<n>` with an optional Ki/Mi/Gi/Ti suffix).
pub fn quantity_bytes(q: &str) -> Option<u64> {
    let (num, shift) = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40)]
        .iter()
        .find_map(|(suffix, shift)| q.strip_suffix(suffix).map(|n| (n, *shift)))
        .unwrap_or((q, 0));
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The configuration file the proxy pods read.
///
/// `upstream.sumdb` is left empty when the spec does not set it: the proxy then resolves it
/// from its environment, as the go command would.
pub fn proxy_config(spec: &AthensProxySpec) -> Config {
    let mut c = Config {
        listen: format!("0.0.0.0:{CONTAINER_PORT}"),
        storage: storage_config(&spec.storage),
        ..Config::default()
    };
    let up = &spec.upstream;
    c.upstream.goproxy = up.goproxy.trim().to_string();
    c.upstream.sumdb = up.sumdb.as_deref().unwrap_or("").trim().to_string();
    c.upstream.nosum_patterns = up
        .no_sum_patterns
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    c.upstream.private = up
        .private
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(vcs) = &up.vcs {
        let file = |name: &str| format!("{VCS_SECRET_DIR}/{name}");
        if vcs.netrc.is_some() {
            c.upstream.netrc_file = file(NETRC_DEFAULT_KEY);
        }
        if vcs.ssh_key.is_some() {
            c.upstream.vcs_ssh_keys = vec![file(SSH_KEY_FILE)];
        }
        if vcs.known_hosts.is_some() {
            c.upstream.vcs_known_hosts = file(KNOWN_HOSTS_FILE);
        }
        if vcs.git_config.is_some() {
            c.upstream.vcs_git_config = file(GIT_CONFIG_FILE);
        }
        c.upstream.vcs_go_binary = vcs.go_binary.clone().unwrap_or_default();
        c.upstream.vcs_tokens = vcs
            .tokens
            .iter()
            .zip(TOKEN_FILES)
            .map(|(t, name)| athens_config::VcsToken {
                host: t.host.trim().to_string(),
                username: t
                    .username
                    .clone()
                    .unwrap_or_else(|| "x-access-token".into()),
                file: file(name),
            })
            .collect();
    }
    if let Some(limit) = vcs_cache_limit(spec) {
        c.upstream.vcs_cache_dir = VCS_CACHE_DIR.to_string();
        // 80%: the proxy removes mirrors before the kubelet evicts the pod for the emptyDir.
        c.upstream.vcs_cache_max_bytes = quantity_bytes(&limit).unwrap_or(0) / 5 * 4;
    }
    if let Some(m) = up.network_mode {
        c.upstream.network_mode = match m {
            NetworkModeSpec::Strict => NetworkMode::Strict,
            NetworkModeSpec::Fallback => NetworkMode::Fallback,
            NetworkModeSpec::Offline => NetworkMode::Offline,
        };
    }
    if let Some(v) = up.timeout_seconds {
        c.upstream.timeout_seconds = v;
    }
    if let Some(v) = up.retries {
        c.upstream.retries = v;
    }
    if let Some(v) = up.negative_cache_seconds {
        c.upstream.negative_cache_seconds = v;
    }
    if let Some(v) = up.fill_lease_seconds {
        c.upstream.fill_lease_seconds = v;
    }
    // The rules live in files next to config.toml, so editing them changes only those files:
    // the pods re-read them without a rollout (config.toml, which is hashed, names only paths).
    if let Some(f) = &spec.filter {
        c.policy.filter_file = match &f.config_map_ref {
            Some(_) => format!("{POLICY_REF_DIR}/filter/{FILTER_KEY}"),
            None => format!("{CONFIG_DIR}/{FILTER_KEY}"),
        };
        c.policy.global_endpoint = f.global_endpoint.as_deref().unwrap_or("").trim().into();
    }
    if let Some(d) = &spec.download_modes {
        c.policy.download_mode = match &d.config_map_ref {
            Some(_) => format!("file:{POLICY_REF_DIR}/download/{DOWNLOAD_KEY}"),
            None => format!("file:{CONFIG_DIR}/{DOWNLOAD_KEY}"),
        };
        if d.hcl.is_some() || d.config_map_ref.is_some() {
            c.policy.download_url = d.download_url.as_deref().unwrap_or("").trim().into();
        }
    }
    super::access::apply_access(&mut c, spec);
    if let Some(t) = &spec.tracing {
        c.observability.otlp_endpoint = t.otlp_endpoint.trim().to_string();
    }
    if let Some(log) = &spec.log {
        if let Some(f) = log
            .format
            .as_deref()
            .and_then(|f| f.parse::<LogFormat>().ok())
        {
            c.log.format = f;
        }
        if let Some(l) = log.level.as_deref().filter(|l| !l.trim().is_empty()) {
            c.log.level = l.trim().to_string();
        }
    }
    c
}

/// Storage URL and non-secret options for the one backend the spec selects.
pub fn storage_config(storage: &StorageSpec) -> StorageConfig {
    let mut options = BTreeMap::new();
    let url = if let Some(s3) = &storage.s3 {
        if let Some(r) = &s3.region {
            options.insert("region".into(), r.clone());
        }
        if let Some(e) = &s3.endpoint {
            options.insert("endpoint".into(), e.clone());
            if e.starts_with("http://") {
                options.insert("allow_http".into(), "true".into());
            }
        }
        if let Some(path_style) = s3.path_style {
            options.insert(
                "virtual_hosted_style_request".into(),
                (!path_style).to_string(),
            );
        }
        bucket_url("s3", &s3.bucket, s3.prefix.as_deref())
    } else if let Some(gcs) = &storage.gcs {
        bucket_url("gs", &gcs.bucket, gcs.prefix.as_deref())
    } else if let Some(az) = &storage.azure {
        options.insert("account_name".into(), az.account.clone());
        if let Some(e) = &az.endpoint {
            options.insert("endpoint".into(), e.clone());
            if e.starts_with("http://") {
                options.insert("allow_http".into(), "true".into());
            }
        }
        bucket_url("az", &az.container, az.prefix.as_deref())
    } else if let Some(m) = &storage.mongodb {
        // Credentials reach the proxy as MONGODB_USERNAME/MONGODB_PASSWORD, not in the URL.
        m.url.trim().to_string()
    } else {
        // Filesystem (the schema guarantees exactly one kind is set).
        format!("file://{STORAGE_DIR}")
    };
    let zip_cache = zip_cache_limit(storage);
    StorageConfig {
        url,
        options,
        zip_redirect_seconds: storage.zip_redirect_seconds.unwrap_or(0),
        zip_cache_dir: zip_cache
            .as_ref()
            .map(|_| ZIP_CACHE_DIR.to_string())
            .unwrap_or_default(),
        zip_cache_max_bytes: zip_cache.as_deref().map(zip_cache_room).unwrap_or(0),
    }
}

fn bucket_url(scheme: &str, bucket: &str, prefix: Option<&str>) -> String {
    let prefix = prefix.unwrap_or("").trim_matches('/');
    if prefix.is_empty() {
        format!("{scheme}://{bucket}")
    } else {
        format!("{scheme}://{bucket}/{prefix}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::crd::*;

    #[test]
    fn filesystem_config() {
        let c = proxy_config(&proxy(fs()).spec);
        assert_eq!(c.listen, "0.0.0.0:3000");
        assert_eq!(c.storage.url, "file:///var/lib/athens/storage");
        assert!(c.storage.options.is_empty());
        assert_eq!(c.upstream.goproxy, "https://mirror.internal.test");
        assert_eq!(c.upstream.sumdb, "");
        c.validate().unwrap();
    }

    #[test]
    fn s3_config() {
        let c = proxy_config(&proxy(s3()).spec);
        assert_eq!(c.storage.url, "s3://mods/team-a");
        assert_eq!(c.storage.options["region"], "eu-west-1");
        assert_eq!(
            c.storage.options["endpoint"],
            "http://minio.storage.svc:9000"
        );
        assert_eq!(c.storage.options["allow_http"], "true");
        assert_eq!(c.storage.options["virtual_hosted_style_request"], "false");
        assert!(
            !c.to_toml().contains("s3-creds"),
            "no credentials in the config"
        );
    }

    #[test]
    fn zip_redirects_are_rendered() {
        let mut p = proxy(s3());
        assert_eq!(proxy_config(&p.spec).storage.zip_redirect_seconds, 0);
        p.spec.storage.zip_redirect_seconds = Some(300);
        let c = proxy_config(&p.spec);
        assert_eq!(c.storage.zip_redirect_seconds, 300);
        assert!(c.to_toml().contains("zip_redirect_seconds = 300"));
        c.validate().unwrap();
    }

    #[test]
    fn gcs_and_azure_urls() {
        let gcs = StorageSpec {
            gcs: Some(GcsStorage {
                bucket: "b".into(),
                prefix: None,
                credentials: None,
            }),
            ..Default::default()
        };
        assert_eq!(storage_config(&gcs).url, "gs://b");
        let az = StorageSpec {
            azure: Some(AzureStorage {
                account: "acct".into(),
                container: "c".into(),
                prefix: Some("p/q".into()),
                endpoint: Some("https://blob.internal.test".into()),
                credentials: None,
            }),
            ..Default::default()
        };
        let c = storage_config(&az);
        assert_eq!(c.url, "az://c/p/q");
        assert_eq!(c.options["account_name"], "acct");
        assert!(!c.options.contains_key("allow_http"));
    }

    #[test]
    fn mongodb_url_is_rendered() {
        let c = storage_config(&StorageSpec {
            mongodb: Some(MongoDbStorage {
                url: " mongodb://mongo.db.svc:27017/mods ".into(),
                credentials: None,
            }),
            ..Default::default()
        });
        assert_eq!(c.url, "mongodb://mongo.db.svc:27017/mods");
        assert!(c.options.is_empty());
    }

    #[test]
    fn the_private_modules_example_renders_its_patterns() {
        let text = include_str!("../../../examples/private-modules.yaml");
        let p: crate::crd::AthensProxy = serde_yaml::from_str(text).unwrap();
        let c = proxy_config(&p.spec);
        assert_eq!(c.upstream.private, vec!["git.corp.example"]);
        assert!(!c.upstream.goproxy.contains("direct"));
        assert_eq!(c.upstream.netrc_file, "/var/run/secrets/athens/vcs/netrc");
    }

    #[test]
    fn upstream_settings_are_rendered() {
        let mut p = proxy(fs());
        p.spec.upstream = UpstreamSpec {
            goproxy: " https://a.internal.test,direct ".into(),
            sumdb: Some("off".into()),
            no_sum_patterns: vec!["corp.internal.test/*".into(), " ".into()],
            private: vec![" git.corp.internal.test ".into()],
            vcs: None,
            network_mode: Some(NetworkModeSpec::Fallback),
            timeout_seconds: Some(5),
            retries: Some(0),
            negative_cache_seconds: Some(0),
            fill_lease_seconds: Some(45),
        };
        p.spec.log = Some(LogSpec {
            format: Some("json".into()),
            level: Some("debug".into()),
        });
        p.spec.tracing = Some(TracingSpec {
            otlp_endpoint: "http://otel-collector.monitoring:4318".into(),
        });
        let c = proxy_config(&p.spec);
        assert_eq!(c.upstream.goproxy, "https://a.internal.test,direct");
        assert_eq!(c.upstream.sumdb, "off");
        assert_eq!(c.upstream.nosum_patterns, vec!["corp.internal.test/*"]);
        assert_eq!(c.upstream.private, vec!["git.corp.internal.test"]);
        assert_eq!(c.upstream.network_mode, NetworkMode::Fallback);
        assert_eq!(c.upstream.timeout_seconds, 5);
        assert_eq!(c.upstream.retries, 0);
        assert_eq!(c.upstream.fill_lease_seconds, 45);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(
            c.observability.otlp_endpoint,
            "http://otel-collector.monitoring:4318"
        );
        c.validate().unwrap();
        // The proxy parses what we render.
        let back = Config::from_toml(&c.to_toml(), "configmap").unwrap();
        assert_eq!(back, c);
    }
}
