//! Referenced Secrets: each credential resolved once (Secret, key, default, how the pod reads
//! it), so the preflight check and the pod spec can never disagree; and what the operator keeps
//! of a Secret (its identity and key names, never its values).

use crate::crd::{StorageSpec, UpstreamSpec};
use std::collections::{BTreeMap, BTreeSet};

/// Default key names, which are also the environment variables the proxy reads.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const AZURE_STORAGE_ACCOUNT_KEY: &str = "AZURE_STORAGE_ACCOUNT_KEY";
pub const GCS_DEFAULT_KEY: &str = "service-account.json";
pub const MONGODB_USERNAME: &str = "MONGODB_USERNAME";
pub const MONGODB_PASSWORD: &str = "MONGODB_PASSWORD";
pub const NETRC_DEFAULT_KEY: &str = "netrc";

/// One existing referenced Secret as the operator sees it: which version it is (for the
/// pod-template hash) and which keys it has (for the preflight check). Values are not kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretVersion {
    pub uid: String,
    pub resource_version: String,
    pub keys: BTreeSet<String>,
}

/// The referenced Secrets that exist, by name.
pub type Secrets = BTreeMap<String, SecretVersion>;

/// How the pod reads a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// As this environment variable.
    Env(&'static str),
    /// As this file name in the credentials directory (a mounted Secret volume).
    File(&'static str),
}

/// One credential the pods read from a Secret of their namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub secret: String,
    pub key: String,
    pub delivery: Delivery,
    /// An optional credential (a session token) may be absent from the Secret.
    pub optional: bool,
}

fn credential(
    secret: &str,
    key: &Option<String>,
    default: &'static str,
    delivery: Delivery,
    optional: bool,
) -> Credential {
    Credential {
        secret: secret.to_string(),
        key: key.clone().unwrap_or_else(|| default.to_string()),
        delivery,
        optional,
    }
}

/// Every credential of `storage`, in the order the pod spec lists them.
pub fn credentials(storage: &StorageSpec) -> Vec<Credential> {
    let mut v = Vec::new();
    if let Some(c) = storage.s3.as_ref().and_then(|s| s.credentials.as_ref()) {
        let s = c.secret_name.as_str();
        v.push(credential(
            s,
            &c.access_key_id_key,
            AWS_ACCESS_KEY_ID,
            Delivery::Env(AWS_ACCESS_KEY_ID),
            false,
        ));
        v.push(credential(
            s,
            &c.secret_access_key_key,
            AWS_SECRET_ACCESS_KEY,
            Delivery::Env(AWS_SECRET_ACCESS_KEY),
            false,
        ));
        v.push(credential(
            s,
            &c.session_token_key,
            AWS_SESSION_TOKEN,
            Delivery::Env(AWS_SESSION_TOKEN),
            true,
        ));
    }
    if let Some(c) = storage.gcs.as_ref().and_then(|s| s.credentials.as_ref()) {
        v.push(credential(
            &c.secret_name,
            &c.key,
            GCS_DEFAULT_KEY,
            Delivery::File(GCS_DEFAULT_KEY),
            false,
        ));
    }
    if let Some(c) = storage.azure.as_ref().and_then(|s| s.credentials.as_ref()) {
        v.push(credential(
            &c.secret_name,
            &c.account_key_key,
            AZURE_STORAGE_ACCOUNT_KEY,
            Delivery::Env(AZURE_STORAGE_ACCOUNT_KEY),
            false,
        ));
    }
    if let Some(c) = storage
        .mongodb
        .as_ref()
        .and_then(|s| s.credentials.as_ref())
    {
        for (key, name) in [
            (&c.username_key, MONGODB_USERNAME),
            (&c.password_key, MONGODB_PASSWORD),
        ] {
            v.push(credential(
                &c.secret_name,
                key,
                name,
                Delivery::Env(name),
                false,
            ));
        }
    }
    v
}

/// The git credentials of `upstream`: the `.netrc` file, if any.
pub fn vcs_credentials(upstream: &UpstreamSpec) -> Vec<Credential> {
    let netrc = upstream.vcs.as_ref().and_then(|v| v.netrc.as_ref());
    netrc
        .map(|n| {
            credential(
                &n.secret_name,
                &n.key,
                NETRC_DEFAULT_KEY,
                Delivery::File(NETRC_DEFAULT_KEY),
                false,
            )
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::crd::{AzureCredentials, AzureStorage, GcsCredentials, GcsStorage};

    #[test]
    fn defaults_and_overrides() {
        let mut st = s3();
        let c = credentials(&st);
        let keys: Vec<_> = c.iter().map(|c| (c.key.as_str(), c.optional)).collect();
        assert_eq!(
            keys,
            [
                (AWS_ACCESS_KEY_ID, false),
                (AWS_SECRET_ACCESS_KEY, false),
                (AWS_SESSION_TOKEN, true)
            ]
        );
        assert!(c.iter().all(|c| c.secret == "s3-creds"));
        let creds = st.s3.as_mut().unwrap().credentials.as_mut().unwrap();
        creds.secret_access_key_key = Some("secret".into());
        assert_eq!(credentials(&st)[1].key, "secret");
        assert_eq!(
            credentials(&st)[1].delivery,
            Delivery::Env(AWS_SECRET_ACCESS_KEY)
        );
        assert!(credentials(&fs()).is_empty());
    }

    #[test]
    fn gcs_is_a_file_and_azure_an_env_var() {
        let gcs = StorageSpec {
            gcs: Some(GcsStorage {
                bucket: "b".into(),
                prefix: None,
                credentials: Some(GcsCredentials {
                    secret_name: "g".into(),
                    key: None,
                }),
            }),
            ..Default::default()
        };
        let c = &credentials(&gcs)[0];
        assert_eq!(
            (c.key.as_str(), c.delivery),
            (GCS_DEFAULT_KEY, Delivery::File(GCS_DEFAULT_KEY))
        );
        let az = StorageSpec {
            azure: Some(AzureStorage {
                account: "a".into(),
                container: "c".into(),
                credentials: Some(AzureCredentials {
                    secret_name: "az".into(),
                    account_key_key: Some("k".into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = &credentials(&az)[0];
        assert_eq!(
            (c.secret.as_str(), c.key.as_str(), c.delivery),
            ("az", "k", Delivery::Env(AZURE_STORAGE_ACCOUNT_KEY))
        );
    }
}
