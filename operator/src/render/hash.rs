//! The pod-template hash: the configuration plus the version of every referenced Secret.
//!
//! Secrets enter by identity (uid and resourceVersion), never by content: the hash sits on the
//! Deployment, and a hash of Secret values would let anyone who can read Deployments confirm a
//! guessed credential offline. A keyed hash (HMAC) would avoid that only with a key kept stable
//! across operator restarts, i.e. one more Secret to manage. Any write to a Secret changes its
//! resourceVersion, so a rotation still rolls the pods (so does a metadata-only edit: harmless).

use super::{CONFIG_HASH_ANNOTATION, Secrets};
use k8s_openapi::api::apps::v1::Deployment;
use sha2::{Digest, Sha256};

/// A short stable hash of the configuration file and the referenced Secrets' versions. It is
/// put on the pod template, so any change to either rolls the pods.
pub fn config_hash(config_toml: &str, secrets: &Secrets) -> String {
    let mut h = Sha256::new();
    feed(&mut h, b"config");
    feed(&mut h, config_toml.as_bytes());
    // BTreeMaps iterate in key order: the hash does not depend on API ordering.
    for (name, s) in secrets {
        feed(&mut h, b"secret");
        feed(&mut h, name.as_bytes());
        feed(&mut h, s.uid.as_bytes());
        feed(&mut h, s.resource_version.as_bytes());
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
    use super::super::SecretVersion;
    use super::*;

    fn secrets(uid: &str, rv: &str) -> Secrets {
        Secrets::from([(
            "creds".to_string(),
            SecretVersion {
                uid: uid.into(),
                resource_version: rv.into(),
                keys: ["KEY".to_string()].into(),
            },
        )])
    }

    #[test]
    fn stable_and_sensitive() {
        let a = config_hash("x", &secrets("u1", "7"));
        assert_eq!(a, config_hash("x", &secrets("u1", "7")));
        assert_eq!(a.len(), 20);
        assert_ne!(a, config_hash("y", &secrets("u1", "7")));
        assert_ne!(a, config_hash("x", &secrets("u1", "8")), "a new version");
        assert_ne!(
            a,
            config_hash("x", &secrets("u2", "7")),
            "a recreated Secret"
        );
        assert_ne!(a, config_hash("x", &Secrets::new()));
    }
}
