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
/// The key `kubernetes.io/ssh-auth` Secrets hold their private key under.
pub const SSH_KEY_DEFAULT_KEY: &str = "ssh-privatekey";
pub const KNOWN_HOSTS_DEFAULT_KEY: &str = "known_hosts";
pub const GIT_CONFIG_DEFAULT_KEY: &str = "gitconfig";
pub const TOKEN_DEFAULT_KEY: &str = "token";
/// File names in the git credentials directory.
pub const SSH_KEY_FILE: &str = "ssh-key";
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";
pub const GIT_CONFIG_FILE: &str = "gitconfig";
/// One file per host token, by position (the CRD allows at most 16).
pub const TOKEN_FILES: [&str; 16] = [
    "token-0", "token-1", "token-2", "token-3", "token-4", "token-5", "token-6", "token-7",
    "token-8", "token-9", "token-10", "token-11", "token-12", "token-13", "token-14", "token-15",
];

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

/// The git credentials of `upstream`, each a file in the git credentials directory: the
/// `.netrc`, the SSH key and known_hosts, the git config, then the host tokens in order.
pub fn vcs_credentials(upstream: &UpstreamSpec) -> Vec<Credential> {
    let Some(vcs) = upstream.vcs.as_ref() else {
        return Vec::new();
    };
    let files = [
        (&vcs.netrc, NETRC_DEFAULT_KEY, NETRC_DEFAULT_KEY),
        (&vcs.ssh_key, SSH_KEY_DEFAULT_KEY, SSH_KEY_FILE),
        (&vcs.known_hosts, KNOWN_HOSTS_DEFAULT_KEY, KNOWN_HOSTS_FILE),
        (&vcs.git_config, GIT_CONFIG_DEFAULT_KEY, GIT_CONFIG_FILE),
    ];
    let mut v: Vec<Credential> = files
        .into_iter()
        .filter_map(|(r, key, file)| {
            r.as_ref()
                .map(|r| credential(&r.secret_name, &r.key, key, Delivery::File(file), false))
        })
        .collect();
    v.extend(vcs.tokens.iter().zip(TOKEN_FILES).map(|(t, file)| {
        credential(
            &t.secret_name,
            &t.key,
            TOKEN_DEFAULT_KEY,
            Delivery::File(file),
            false,
        )
    }));
    v
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
