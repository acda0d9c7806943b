//! Referenced Secrets: which keys the pods read, and whether the Secrets can satisfy them.

use crate::crd::StorageSpec;
use std::collections::BTreeMap;

/// Data of the referenced Secrets that exist: Secret name → key → value.
pub type SecretData = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Default key names, which are also the environment variables the proxy reads.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const AZURE_STORAGE_ACCOUNT_KEY: &str = "AZURE_STORAGE_ACCOUNT_KEY";
pub const GCS_DEFAULT_KEY: &str = "service-account.json";
pub const MONGODB_USERNAME: &str = "MONGODB_USERNAME";
pub const MONGODB_PASSWORD: &str = "MONGODB_PASSWORD";

/// A spec the cluster cannot satisfy as it is: reported as `Degraded`, never applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecProblem {
    /// CamelCase reason for the condition and the Event.
    pub reason: &'static str,
    pub message: String,
}

/// The (Secret, key) pairs the pods need; optional keys (a session token) are left out.
pub fn required_keys(storage: &StorageSpec) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if let Some(c) = storage.s3.as_ref().and_then(|s| s.credentials.as_ref()) {
        let key = |k: &Option<String>, d: &str| k.clone().unwrap_or_else(|| d.to_string());
        v.push((
            c.secret_name.clone(),
            key(&c.access_key_id_key, AWS_ACCESS_KEY_ID),
        ));
        v.push((
            c.secret_name.clone(),
            key(&c.secret_access_key_key, AWS_SECRET_ACCESS_KEY),
        ));
    }
    if let Some(c) = storage.gcs.as_ref().and_then(|s| s.credentials.as_ref()) {
        v.push((
            c.secret_name.clone(),
            c.key.clone().unwrap_or_else(|| GCS_DEFAULT_KEY.to_string()),
        ));
    }
    if let Some(c) = storage.azure.as_ref().and_then(|s| s.credentials.as_ref()) {
        v.push((
            c.secret_name.clone(),
            c.account_key_key
                .clone()
                .unwrap_or_else(|| AZURE_STORAGE_ACCOUNT_KEY.to_string()),
        ));
    }
    if let Some(c) = storage
        .mongodb
        .as_ref()
        .and_then(|s| s.credentials.as_ref())
    {
        for (k, default) in [
            (&c.username_key, MONGODB_USERNAME),
            (&c.password_key, MONGODB_PASSWORD),
        ] {
            v.push((
                c.secret_name.clone(),
                k.clone().unwrap_or_else(|| default.to_string()),
            ));
        }
    }
    v
}

/// Checks that every referenced Secret exists and has the keys the pods will read.
pub fn check_secrets(storage: &StorageSpec, secrets: &SecretData) -> Result<(), SpecProblem> {
    for (name, key) in required_keys(storage) {
        let Some(data) = secrets.get(&name) else {
            return Err(SpecProblem {
                reason: "SecretNotFound",
                message: format!("Secret {name:?} referenced by spec.storage does not exist"),
            });
        };
        if !data.contains_key(&key) {
            return Err(SpecProblem {
                reason: "SecretKeyNotFound",
                message: format!("Secret {name:?} has no key {key:?}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn missing_secret_and_key() {
        let st = s3();
        let err = check_secrets(&st, &SecretData::new()).unwrap_err();
        assert_eq!(err.reason, "SecretNotFound");
        let mut data = SecretData::new();
        data.insert(
            "s3-creds".into(),
            BTreeMap::from([(AWS_ACCESS_KEY_ID.to_string(), b"a".to_vec())]),
        );
        let err = check_secrets(&st, &data).unwrap_err();
        assert_eq!(err.reason, "SecretKeyNotFound");
        assert!(err.message.contains(AWS_SECRET_ACCESS_KEY));
        data.get_mut("s3-creds")
            .unwrap()
            .insert(AWS_SECRET_ACCESS_KEY.into(), b"b".to_vec());
        check_secrets(&st, &data).unwrap();
        check_secrets(&fs(), &SecretData::new()).unwrap();
    }
}
