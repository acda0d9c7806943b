//! Preflight: everything that must hold before anything is applied: the referenced Secrets and
//! keys, and an existing claim. Reads only; the checks themselves are pure functions.

use super::Error;
use crate::crd::AthensProxy;
use crate::render::{Credential, Meta, SecretData, credentials};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::{Api, Client};

/// Why a spec cannot be applied as it is: reported as `Degraded` (reason and message), published
/// as a Warning Event, retried with backoff; nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("Secret {secret:?} referenced by spec.storage does not exist")]
    SecretNotFound { secret: String },
    #[error("Secret {secret:?} has no key {key:?}")]
    SecretKeyNotFound { secret: String, key: String },
    #[error("PersistentVolumeClaim {claim:?} (storage.filesystem.existingClaim) does not exist")]
    ClaimNotFound { claim: String },
    #[error(
        "{replicas} replicas need a ReadWriteMany volume, but PersistentVolumeClaim {claim:?} allows {modes:?}"
    )]
    ClaimNotShared {
        claim: String,
        replicas: i32,
        modes: Vec<String>,
    },
}

impl Problem {
    /// CamelCase reason for the condition, the Event and the failure metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::SecretNotFound { .. } => "SecretNotFound",
            Problem::SecretKeyNotFound { .. } => "SecretKeyNotFound",
            Problem::ClaimNotFound { .. } => "ClaimNotFound",
            Problem::ClaimNotShared { .. } => "ClaimNotShared",
        }
    }
}

/// What preflight read, and the first problem found (if any).
#[derive(Debug, Default)]
pub struct Preflight {
    /// The proxy's Deployment, if it exists.
    pub deployment: Option<Deployment>,
    /// Data of the referenced Secrets that exist.
    pub secrets: SecretData,
    pub problem: Option<Problem>,
}

/// Reads what the checks need and runs them; stops at the first problem.
pub async fn run(client: &Client, proxy: &AthensProxy, meta: &Meta) -> Result<Preflight, Error> {
    let mut out = Preflight::default();
    let ns = meta.namespace.as_str();
    // The Deployment is read in any case: its rollout feeds the status even when degraded.
    out.deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&meta.name)
        .await?;
    out.secrets = read_secrets(client, ns, proxy).await?;
    out.problem = check_secrets(&credentials(&proxy.spec.storage), &out.secrets);
    if out.problem.is_none() {
        out.problem = check_existing_claim(client, ns, proxy).await?;
    }
    Ok(out)
}

/// Every required credential's Secret exists and has its key (an optional one may be absent).
pub fn check_secrets(credentials: &[Credential], secrets: &SecretData) -> Option<Problem> {
    credentials
        .iter()
        .filter(|c| !c.optional)
        .find_map(|c| match secrets.get(&c.secret) {
            None => Some(Problem::SecretNotFound {
                secret: c.secret.clone(),
            }),
            Some(data) if !data.contains_key(&c.key) => Some(Problem::SecretKeyNotFound {
                secret: c.secret.clone(),
                key: c.key.clone(),
            }),
            Some(_) => None,
        })
}

/// Reads the Secrets the spec references; absent ones are left out.
async fn read_secrets(client: &Client, ns: &str, proxy: &AthensProxy) -> Result<SecretData, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut out = SecretData::new();
    for name in proxy.spec.storage.secret_names() {
        if let Some(s) = api.get_opt(name).await? {
            let data = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            out.insert(name.to_string(), data);
        }
    }
    Ok(out)
}

/// An existing claim must exist, and be shareable when there is more than one replica.
async fn check_existing_claim(
    client: &Client,
    ns: &str,
    proxy: &AthensProxy,
) -> Result<Option<Problem>, Error> {
    let Some(claim) = proxy
        .spec
        .storage
        .filesystem
        .as_ref()
        .and_then(|f| f.existing_claim.as_deref())
    else {
        return Ok(None);
    };
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get_opt(claim)
        .await?;
    Ok(claim_problem(claim, pvc.as_ref(), proxy.spec.replicas))
}

/// What is wrong with existing claim `claim` (`pvc`, if it exists) for `replicas` replicas.
pub fn claim_problem(
    claim: &str,
    pvc: Option<&PersistentVolumeClaim>,
    replicas: i32,
) -> Option<Problem> {
    let Some(pvc) = pvc else {
        return Some(Problem::ClaimNotFound {
            claim: claim.to_string(),
        });
    };
    let modes = pvc
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default();
    (replicas > 1 && !modes.iter().any(|m| m == "ReadWriteMany")).then(|| Problem::ClaimNotShared {
        claim: claim.to_string(),
        replicas,
        modes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::{fs, s3};
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
    use std::collections::BTreeMap;

    fn secret(keys: &[&str]) -> BTreeMap<String, Vec<u8>> {
        keys.iter()
            .map(|k| (k.to_string(), b"v".to_vec()))
            .collect()
    }

    #[test]
    fn missing_secret_and_key() {
        let creds = credentials(&s3());
        let err = check_secrets(&creds, &SecretData::new()).unwrap();
        assert_eq!(err.reason(), "SecretNotFound");
        let mut data = SecretData::from([("s3-creds".to_string(), secret(&["AWS_ACCESS_KEY_ID"]))]);
        let err = check_secrets(&creds, &data).unwrap();
        assert_eq!(err.reason(), "SecretKeyNotFound");
        assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"));
        // The session token is optional.
        data.insert(
            "s3-creds".into(),
            secret(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        );
        assert_eq!(check_secrets(&creds, &data), None);
        assert_eq!(check_secrets(&credentials(&fs()), &SecretData::new()), None);
    }

    #[test]
    fn existing_claim_must_exist_and_be_shared_for_replicas() {
        assert_eq!(
            claim_problem("data", None, 1).map(|p| p.reason()),
            Some("ClaimNotFound")
        );
        let pvc = |mode: &str| PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![mode.into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(claim_problem("data", Some(&pvc("ReadWriteOnce")), 1), None);
        let p = claim_problem("data", Some(&pvc("ReadWriteOnce")), 2).unwrap();
        assert_eq!(p.reason(), "ClaimNotShared");
        assert!(
            p.to_string()
                .starts_with("2 replicas need a ReadWriteMany volume")
        );
        assert_eq!(claim_problem("data", Some(&pvc("ReadWriteMany")), 2), None);
    }
}
