//! The pod-template hash: configuration plus the data of every referenced Secret.

use super::{CONFIG_HASH_ANNOTATION, SecretData};
use k8s_openapi::api::apps::v1::Deployment;
use sha2::{Digest, Sha256};

/// A short stable hash of the configuration file and the referenced Secrets' contents. It is
/// put on the pod template, so any change to either rolls the pods.
pub fn config_hash(config_toml: &str, secrets: &SecretData) -> String {
    let mut h = Sha256::new();
    feed(&mut h, b"config");
    feed(&mut h, config_toml.as_bytes());
    // BTreeMaps iterate in key order: the hash does not depend on API ordering.
    for (name, data) in secrets {
        feed(&mut h, b"secret");
        feed(&mut h, name.as_bytes());
        for (k, v) in data {
            feed(&mut h, k.as_bytes());
            feed(&mut h, v);
        }
    }
    let digest = h.finalize();
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash a Deployment's pod template carries, if any.
pub fn template_hash(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .cloned()
}

/// Length-prefixed, so ("ab","c") and ("a","bc") differ.
fn feed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn secrets(v: &[u8]) -> SecretData {
        BTreeMap::from([(
            "creds".to_string(),
            BTreeMap::from([("KEY".to_string(), v.to_vec())]),
        )])
    }

    #[test]
    fn stable_and_sensitive() {
        let a = config_hash("x", &secrets(b"1"));
        assert_eq!(a, config_hash("x", &secrets(b"1")));
        assert_eq!(a.len(), 20);
        assert_ne!(a, config_hash("y", &secrets(b"1")));
        assert_ne!(a, config_hash("x", &secrets(b"2")));
        assert_ne!(a, config_hash("x", &SecretData::new()));
    }
}
