//! Every file in `examples/` parses as the types the operator reads, renders, and carries the
//! Secrets it references (so it applies as it is). The cluster tests apply them for real.

use athens_operator::crd::AthensProxy;
use athens_operator::reconcile::check_secrets;
use athens_operator::render::{SecretVersion, Secrets, credentials, desired};
use serde::Deserialize;
use std::path::Path;

fn examples() -> Vec<(String, Vec<serde_json::Value>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde_json::Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect();
        out.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            docs,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn one_example_per_storage_kind() {
    let all = examples();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "filesystem.yaml",
        "s3.yaml",
        "gcs.yaml",
        "azure.yaml",
        "private-modules.yaml",
    ] {
        assert!(names.contains(&want), "examples/{want} missing: {names:?}");
    }
}

#[test]
fn examples_render_and_include_their_secrets() {
    for (file, docs) in examples() {
        let mut secrets = Secrets::new();
        for d in docs.iter().filter(|d| d["kind"] == "Secret") {
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            let keys = d["stringData"]
                .as_object()
                .unwrap_or_else(|| panic!("{file}: Secret {name} without stringData"))
                .keys()
                .cloned()
                .collect();
            let version = SecretVersion {
                keys,
                ..Default::default()
            };
            secrets.insert(name, version);
        }
        let proxies: Vec<_> = docs.iter().filter(|d| d["kind"] == "AthensProxy").collect();
        assert_eq!(proxies.len(), 1, "{file}: one AthensProxy per example");
        for d in proxies {
            let mut p: AthensProxy =
                serde_json::from_value(d.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
            p.metadata.namespace = Some("examples".into());
            p.metadata.uid = Some("uid".into());
            if let Some(e) = check_secrets(&credentials(&p.spec.storage), &secrets) {
                panic!("{file}: {e}");
            }
            let d = desired(&p, &secrets, &athens_operator::render::Settings::default()).unwrap();
            let toml = &d.config_map.data.as_ref().unwrap()["config.toml"];
            athens_config::Config::from_toml(toml, &file)
                .unwrap()
                .validate()
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}
