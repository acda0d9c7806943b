//! The Athens configuration converter against Athens's own example configuration
//! (`fixtures/athens-config.dev.toml`, gomods/athens `config.dev.toml` at v0.18.0-6, verbatim).

use athens_config::athens::{BASIC_AUTH_FILE, Outcome, convert};
use athens_config::{Config, NetworkMode};
use std::collections::BTreeMap;

const DEV: &str = include_str!("fixtures/athens-config.dev.toml");

fn keys_of(text: &str) -> Vec<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                _ => out.push(key),
            }
        }
    }
    let mut out = Vec::new();
    walk("", &toml::from_str(text).unwrap(), &mut out);
    out
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_key_of_athens_example_is_accounted_for() {
    let c = convert(DEV, &[]).unwrap();
    let keys = keys_of(DEV);
    assert!(keys.len() > 90, "{}", keys.len());
    for k in &keys {
        let o = c
            .keys
            .get(k)
            .unwrap_or_else(|| panic!("{k} not accounted for"));
        if let Outcome::Unsupported(r) = o {
            assert!(!r.contains("not an Athens key"), "{k}: {r}");
        }
    }
    assert_eq!(
        c.keys.len(),
        keys.len(),
        "{:?}",
        c.keys.keys().collect::<Vec<_>>()
    );
    let cfg = &c.config;
    assert_eq!(cfg.listen, "0.0.0.0:3000");
    assert_eq!(cfg.storage.url, "memory://");
    assert_eq!(cfg.log.level, "debug");
    assert_eq!(cfg.upstream.timeout_seconds, 300);
    assert_eq!(cfg.server.shutdown_seconds, 60);
    assert_eq!(cfg.upstream.max_concurrent_fills, 10);
    assert_eq!(cfg.upstream.network_mode, NetworkMode::Strict);
    assert_eq!(cfg.upstream.goproxy, "direct");
    assert_eq!(cfg.upstream.sumdb, "sum.golang.org");
    assert!(matches!(
        c.keys["SingleFlightType"],
        Outcome::Unsupported(_)
    ));
    assert!(matches!(c.keys["Storage.S3.Bucket"], Outcome::Ignored(_)));
    // The printed file is a valid configuration of ours.
    let text = c.render("config.dev.toml");
    let back = Config::from_toml(&text, "converted").unwrap();
    assert_eq!(&back, cfg);
    back.validate().unwrap();
    assert!(
        text.contains("#   SingleFlightType: NOT CONVERTED: not needed"),
        "{text}"
    );
    assert!(text.contains("#   PathPrefix: ignored: empty"), "{text}");
}

#[test]
fn environment_overrides_the_file_and_secrets_stay_out() {
    let c = convert(
        DEV,
        &env(&[
            ("ATHENS_STORAGE_TYPE", "s3"),
            ("ATHENS_S3_BUCKET_NAME", "modules"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
            ("ATHENS_PORT", ":8080"),
            ("ATHENS_NETWORK_MODE", "offline"),
            ("ATHENS_GONOSUM_PATTERNS", "corp.example.com/*,git.internal"),
            ("BASIC_AUTH_USER", "ci"),
            ("BASIC_AUTH_PASS", "hunter2"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    let cfg = &c.config;
    assert_eq!(cfg.storage.url, "s3://modules");
    assert_eq!(
        cfg.storage.options,
        BTreeMap::from([
            ("region".to_string(), "eu-west-1".to_string()),
            (
                "virtual_hosted_style_request".to_string(),
                "true".to_string()
            ),
        ])
    );
    assert_eq!(cfg.listen, "0.0.0.0:8080");
    assert_eq!(cfg.upstream.network_mode, NetworkMode::Offline);
    assert_eq!(
        cfg.upstream.nosum_patterns,
        ["corp.example.com/*", "git.internal"]
    );
    assert_eq!(cfg.access.basic_auth_files, [BASIC_AUTH_FILE]);
    let text = c.render("x");
    for secret in [
        "very-secret-value",
        "hunter2",
        "MY_AWS_SECRET_ACCESS_KEY",
        "minio123",
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(text.contains("Storage.S3.Secret: NOT CONVERTED: a secret: give it to the proxy as the environment variable AWS_SECRET_ACCESS_KEY"), "{text}");
}

#[test]
fn minio_disk_and_bad_values() {
    let c = convert(DEV, &env(&[("ATHENS_STORAGE_TYPE", "minio")])).unwrap();
    assert_eq!(c.config.storage.url, "s3://gomods");
    assert_eq!(
        c.config.storage.options["endpoint"],
        "http://127.0.0.1:9001"
    );
    assert_eq!(c.config.storage.options["allow_http"], "true");
    let c = convert(DEV, &env(&[("ATHENS_STORAGE_TYPE", "disk")])).unwrap();
    assert_eq!(c.config.storage.url, "file:///path/on/disk");
    let c = convert(DEV, &env(&[("ATHENS_STORAGE_TYPE", "external")])).unwrap();
    assert!(matches!(c.keys["StorageType"], Outcome::Unsupported(_)));
    assert!(convert(DEV, &env(&[("ATHENS_PORT", "http")])).is_err());
    assert!(convert(DEV, &env(&[("ATHENS_NETWORK_MODE", "sometimes")])).is_err());
    assert!(convert("Port = [", &[]).is_err());
}
