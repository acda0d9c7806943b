//! `athens-operator from-athens-values` against Athens's own chart values file
//! (`fixtures/athens-chart-values.yaml`, verbatim) and variations of it.

use athens_operator::crd::AthensProxy;
use athens_operator::migrate::from_athens_values;

const VALUES: &str = include_str!("fixtures/athens-chart-values.yaml");

/// The fixture with `overrides` (a YAML mapping) merged in, key by key at any depth.
fn with(overrides: &str) -> String {
    fn merge(base: &mut serde_yaml::Value, over: serde_yaml::Value) {
        match (base, over) {
            (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
                for (k, v) in o {
                    match b.get_mut(&k) {
                        Some(bv) => merge(bv, v),
                        None => {
                            b.insert(k, v);
                        }
                    }
                }
            }
            (b, o) => *b = o,
        }
    }
    let mut base: serde_yaml::Value = serde_yaml::from_str(VALUES).unwrap();
    merge(&mut base, serde_yaml::from_str(overrides).unwrap());
    serde_yaml::to_string(&base).unwrap()
}

fn round_trip(text: &str) -> AthensProxy {
    serde_yaml::from_str(text).expect("the printed manifest is an AthensProxy")
}

#[test]
fn chart_defaults_become_a_filesystem_proxy_with_notes() {
    let c = from_athens_values(VALUES, "gomods", "build").unwrap();
    let text = c.render().unwrap();
    let p = round_trip(&text);
    assert_eq!(p.metadata.namespace.as_deref(), Some("build"));
    assert_eq!(p.spec.replicas, 1);
    assert!(p.spec.storage.filesystem.is_some());
    assert_eq!(
        p.spec.storage.filesystem.as_ref().unwrap().access_modes,
        Some(vec!["ReadWriteOnce".to_string()])
    );
    assert_eq!(p.spec.upstream.goproxy, "direct");
    assert_eq!(p.spec.service.port, Some(80));
    for want in ["image: not mapped", "emptyDir", "upstream.goproxy"] {
        assert!(
            c.notes.iter().any(|n| n.contains(want)),
            "{want}: {:?}",
            c.notes
        );
    }
    // Sections left disabled are not reported.
    assert!(
        !c.notes
            .iter()
            .any(|n| n.starts_with("jaeger") || n.starts_with("autoscaling"))
    );
    assert!(text.starts_with("# AthensProxy converted"));
}

#[test]
fn s3_upstream_auth_and_env_map_and_secrets_stay_out() {
    let values = with(
        r#"
replicaCount: 3
storage:
  type: s3
  s3: {region: eu-west-1, bucket: go-modules, forcePathStyle: true, accessKey: AKIAEXAMPLE, secretKey: very-secret}
upstreamProxy: {enabled: true, url: "https://mirror.internal.example"}
configEnvVars:
  - {name: ATHENS_GONOSUM_PATTERNS, value: "corp.example.com/*,git.internal"}
  - {name: ATHENS_NETWORK_MODE, value: fallback}
  - {name: ATHENS_STORAGE_GCP_JSON_KEY, value: xyz}
basicAuth: {enabled: true}
autoscaling: {enabled: true}
resources: {requests: {cpu: 100m, memory: 128Mi}}
"#,
    );
    let c = from_athens_values(&values, "gomods", "build").unwrap();
    let text = c.render().unwrap();
    let p = round_trip(&text);
    assert_eq!(p.spec.replicas, 3);
    let s3 = p.spec.storage.s3.as_ref().unwrap();
    assert_eq!(
        (s3.bucket.as_str(), s3.region.as_deref(), s3.path_style),
        ("go-modules", Some("eu-west-1"), Some(true))
    );
    assert_eq!(s3.credentials.as_ref().unwrap().secret_name, "gomods-s3");
    assert_eq!(p.spec.upstream.goproxy, "https://mirror.internal.example");
    assert_eq!(
        p.spec.upstream.no_sum_patterns,
        ["corp.example.com/*", "git.internal"]
    );
    assert!(p.spec.upstream.network_mode.is_some());
    let access = p.spec.access.as_ref().unwrap();
    assert_eq!(access.basic_auth[0].secret_name, "gomods-basic-auth");
    assert!(p.spec.resources.is_some());
    for secret in ["AKIAEXAMPLE", "very-secret", "xyz"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    for want in [
        "Secret \"gomods-s3\"",
        "Secret \"gomods-basic-auth\"",
        "autoscaling: not mapped",
        "configEnvVars ATHENS_STORAGE_GCP_JSON_KEY",
    ] {
        assert!(
            c.notes.iter().any(|n| n.contains(want)),
            "{want}: {:?}",
            c.notes
        );
    }
}

#[test]
fn minio_and_incomplete_values() {
    let c = from_athens_values(
        &with("storage: {type: minio, minio: {endpoint: 'minio.storage:9000', bucket: gomods}}"),
        "a",
        "b",
    )
    .unwrap();
    let s3 = c.proxy.spec.storage.s3.unwrap();
    assert_eq!(s3.endpoint.as_deref(), Some("http://minio.storage:9000"));
    assert_eq!(s3.path_style, Some(true));
    assert!(from_athens_values(&with("storage: {type: s3}"), "a", "b").is_err());
    assert!(from_athens_values(&with("storage: {type: azureblob}"), "a", "b").is_err());
    assert!(from_athens_values("replicaCount: [", "a", "b").is_err());
}
