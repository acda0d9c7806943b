//! Preflight: everything that must hold before anything is applied. The operator's policy, the
//! referenced Secrets and keys, an existing claim, and that no object the operator would write
//! belongs to someone else. Reads only; the checks themselves are pure functions.

use super::Error;
use crate::crd::AthensProxy;
use crate::render::{
    Credential, DOWNLOAD_KEY, FILTER_KEY, Meta, SecretVersion, Secrets, Settings, claim_name,
    config_map_name, credentials, image, policy_files, vcs_credentials, wants_pvc,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Api, Client};

/// Why a spec cannot be applied as it is: reported as `Degraded` (reason and message), published
/// as a Warning Event, retried with backoff; nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "image {image:?} is not allowed: this operator runs only images starting with {allowed:?}"
    )]
    ImageNotAllowed { image: String, allowed: Vec<String> },
    #[error(
        "serviceAccountName {name:?} is not allowed: this operator runs proxies only as {allowed:?} (or with no ServiceAccount)"
    )]
    ServiceAccountNotAllowed { name: String, allowed: Vec<String> },
    #[error("spec.filter: {reason}")]
    InvalidFilter { reason: String },
    #[error("spec.downloadModes: {reason}")]
    InvalidDownloadModes { reason: String },
    #[error("ConfigMap {name:?} referenced by {field} does not exist or has no key {key:?}")]
    ConfigMapNotFound {
        field: &'static str,
        name: String,
        key: String,
    },
    #[error("Secret {secret:?} referenced by spec.storage or spec.access does not exist")]
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
    #[error(
        "{kind} {name:?} already exists and is not controlled by this AthensProxy ({owner}); the operator leaves it alone: delete or rename it, or rename the AthensProxy"
    )]
    NameConflict {
        kind: &'static str,
        name: String,
        /// Who controls it, in words.
        owner: String,
    },
}

impl Problem {
    /// CamelCase reason for the condition, the Event and the failure metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::ImageNotAllowed { .. } => "ImageNotAllowed",
            Problem::ServiceAccountNotAllowed { .. } => "ServiceAccountNotAllowed",
            Problem::InvalidFilter { .. } => "InvalidFilter",
            Problem::InvalidDownloadModes { .. } => "InvalidDownloadModes",
            Problem::ConfigMapNotFound { .. } => "ConfigMapNotFound",
            Problem::SecretNotFound { .. } => "SecretNotFound",
            Problem::SecretKeyNotFound { .. } => "SecretKeyNotFound",
            Problem::ClaimNotFound { .. } => "ClaimNotFound",
            Problem::ClaimNotShared { .. } => "ClaimNotShared",
            Problem::NameConflict { .. } => "NameConflict",
        }
    }
}

/// What preflight read, and the first problem found (if any).
#[derive(Debug, Default)]
pub struct Preflight {
    /// The proxy's Deployment, if it exists and is this proxy's.
    pub deployment: Option<Deployment>,
    /// Versions of the referenced Secrets that exist.
    pub secrets: Secrets,
    pub problem: Option<Problem>,
}

/// Reads what the checks need and runs them; stops at the first problem.
pub async fn run(
    client: &Client,
    proxy: &AthensProxy,
    meta: &Meta,
    settings: &Settings,
) -> Result<Preflight, Error> {
    let mut out = Preflight::default();
    let ns = meta.namespace.as_str();
    // The Deployment is read in any case: its rollout feeds the status even when degraded.
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&meta.name)
        .await?;
    match deployment {
        Some(d) if !controlled_by(&d.metadata, &meta.owner.uid) => {
            out.problem = Some(conflict("Deployment", &d.metadata));
            return Ok(out);
        }
        d => out.deployment = d,
    }
    out.problem = check_policy(proxy, settings).or_else(|| check_rules(proxy));
    if out.problem.is_none() {
        out.problem = check_rule_refs(client, ns, proxy).await?;
    }
    if out.problem.is_some() {
        return Ok(out);
    }
    out.secrets = read_secrets(client, ns, proxy).await?;
    let mut needed = credentials(&proxy.spec.storage);
    needed.extend(crate::render::access_credentials(&proxy.spec));
    needed.extend(vcs_credentials(&proxy.spec.upstream));
    out.problem = check_secrets(&needed, &out.secrets);
    if out.problem.is_none() {
        out.problem = check_existing_claim(client, ns, proxy).await?;
    }
    if out.problem.is_none() {
        out.problem = name_conflict(client, proxy, meta).await?;
    }
    Ok(out)
}

/// The administrator's limits on what a proxy may run (see `--allowed-image-prefixes` and
/// `--allowed-service-accounts`); an empty list allows anything.
pub fn check_policy(proxy: &AthensProxy, settings: &Settings) -> Option<Problem> {
    let image = image(&proxy.spec);
    let prefixes = &settings.allowed_image_prefixes;
    if !prefixes.is_empty() && !prefixes.iter().any(|p| image.starts_with(p.as_str())) {
        return Some(Problem::ImageNotAllowed {
            image,
            allowed: prefixes.clone(),
        });
    }
    let allowed = &settings.allowed_service_accounts;
    // No serviceAccountName: the namespace's default account, with no token mounted.
    match &proxy.spec.service_account_name {
        Some(name) if !allowed.is_empty() && !allowed.contains(name) => {
            Some(Problem::ServiceAccountNotAllowed {
                name: name.clone(),
                allowed: allowed.clone(),
            })
        }
        _ => None,
    }
}

/// The filter rules and download modes parse as the proxy will parse them (what the schema's
/// rules cannot see: the HCL text, version qualifiers). A proxy given bad files would refuse to
/// start, or keep its old rules on reload; this says why in the status instead.
pub fn check_rules(proxy: &AthensProxy) -> Option<Problem> {
    use athens_config::policy::{download::DownloadModes, filter::Filter};
    let files = policy_files(&proxy.spec);
    if let Some(Err(e)) = files.get(FILTER_KEY).map(|t| Filter::parse(t)) {
        return Some(Problem::InvalidFilter {
            reason: e.to_string(),
        });
    }
    if let Some(text) = files.get(DOWNLOAD_KEY) {
        let url = proxy
            .spec
            .download_modes
            .as_ref()
            .and_then(|d| d.download_url.as_deref())
            .unwrap_or("");
        if let Err(e) = DownloadModes::parse(text, url.trim()) {
            return Some(Problem::InvalidDownloadModes {
                reason: e.to_string(),
            });
        }
    }
    None
}

/// ConfigMaps of the user's own holding the filter or download-mode file: they exist, have the
/// key, and parse. Their contents are not hashed into the pod template: edits reach pods by the
/// proxy's reload (and are checked again here at every reconcile).
async fn check_rule_refs(
    client: &Client,
    ns: &str,
    proxy: &AthensProxy,
) -> Result<Option<Problem>, Error> {
    use athens_config::policy::{download::DownloadModes, filter::Filter};
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let spec = &proxy.spec;
    let refs = [
        (
            "spec.filter.configMapRef",
            spec.filter.as_ref().and_then(|f| f.config_map_ref.as_ref()),
        ),
        (
            "spec.downloadModes.configMapRef",
            spec.download_modes
                .as_ref()
                .and_then(|d| d.config_map_ref.as_ref()),
        ),
    ];
    for (field, r) in refs {
        let Some(r) = r else { continue };
        let text = api
            .get_opt(&r.name)
            .await?
            .and_then(|cm| cm.data.unwrap_or_default().remove(&r.key));
        let Some(text) = text else {
            return Ok(Some(Problem::ConfigMapNotFound {
                field,
                name: r.name.clone(),
                key: r.key.clone(),
            }));
        };
        let problem = if field == "spec.filter.configMapRef" {
            Filter::parse(&text).err().map(|e| Problem::InvalidFilter {
                reason: format!("ConfigMap {:?}: {e}", r.name),
            })
        } else {
            let url = spec
                .download_modes
                .as_ref()
                .and_then(|d| d.download_url.as_deref())
                .unwrap_or("");
            DownloadModes::parse(&text, url.trim())
                .err()
                .map(|e| Problem::InvalidDownloadModes {
                    reason: format!("ConfigMap {:?}: {e}", r.name),
                })
        };
        if problem.is_some() {
            return Ok(problem);
        }
    }
    Ok(None)
}

/// Every required credential's Secret exists and has its key (an optional one may be absent).
pub fn check_secrets(credentials: &[Credential], secrets: &Secrets) -> Option<Problem> {
    credentials
        .iter()
        .filter(|c| !c.optional)
        .find_map(|c| match secrets.get(&c.secret) {
            None => Some(Problem::SecretNotFound {
                secret: c.secret.clone(),
            }),
            Some(s) if !s.keys.contains(&c.key) => Some(Problem::SecretKeyNotFound {
                secret: c.secret.clone(),
                key: c.key.clone(),
            }),
            Some(_) => None,
        })
}

/// Whether `meta` has a controller owner reference to the owner with `uid`.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// A name conflict with the existing object `meta` of `kind`.
pub fn conflict(kind: &'static str, meta: &ObjectMeta) -> Problem {
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let owner = match controller {
        Some(o) => format!("it is controlled by {} {:?}", o.kind, o.name),
        None => "it has no controller".to_string(),
    };
    Problem::NameConflict {
        kind,
        name: meta.name.clone().unwrap_or_default(),
        owner,
    }
}

/// The first child name (other than the Deployment's, read above) taken by an object this
/// proxy does not control. Metadata only: their contents are not the operator's business.
async fn name_conflict(
    client: &Client,
    proxy: &AthensProxy,
    meta: &Meta,
) -> Result<Option<Problem>, Error> {
    let ns = meta.namespace.as_str();
    let uid = meta.owner.uid.as_str();
    let found = |m: Option<ObjectMeta>, kind| {
        m.filter(|m| !controlled_by(m, uid))
            .map(|m| conflict(kind, &m))
    };
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_metadata_opt(&config_map_name(&meta.name))
        .await?;
    if let Some(p) = found(cm.map(|m| m.metadata), "ConfigMap") {
        return Ok(Some(p));
    }
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get_metadata_opt(&meta.name)
        .await?;
    if let Some(p) = found(svc.map(|m| m.metadata), "Service") {
        return Ok(Some(p));
    }
    if wants_pvc(&proxy.spec) {
        let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .get_metadata_opt(&claim_name(&meta.name))
            .await?;
        if let Some(p) = found(pvc.map(|m| m.metadata), "PersistentVolumeClaim") {
            return Ok(Some(p));
        }
    }
    // The optional objects, only when wanted (one not wanted is deleted only if ours).
    let spec = &proxy.spec;
    let name = meta.name.as_str();
    if spec.pod_disruption_budget.is_some() {
        let m = Api::<PodDisruptionBudget>::namespaced(client.clone(), ns)
            .get_metadata_opt(name)
            .await?;
        if let Some(p) = found(m.map(|m| m.metadata), "PodDisruptionBudget") {
            return Ok(Some(p));
        }
    }
    if spec.autoscaling.is_some() {
        let m = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
            .get_metadata_opt(name)
            .await?;
        if let Some(p) = found(m.map(|m| m.metadata), "HorizontalPodAutoscaler") {
            return Ok(Some(p));
        }
    }
    if spec.network_policy.is_some() {
        let m = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
            .get_metadata_opt(name)
            .await?;
        if let Some(p) = found(m.map(|m| m.metadata), "NetworkPolicy") {
            return Ok(Some(p));
        }
    }
    if spec.ingress.is_some() {
        let m = Api::<Ingress>::namespaced(client.clone(), ns)
            .get_metadata_opt(name)
            .await?;
        if let Some(p) = found(m.map(|m| m.metadata), "Ingress") {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// Reads the Secrets the spec references: identity and key names; absent ones are left out.
async fn read_secrets(client: &Client, ns: &str, proxy: &AthensProxy) -> Result<Secrets, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut out = Secrets::new();
    for name in proxy.spec.secret_names() {
        if let Some(s) = api.get_opt(name).await? {
            let version = SecretVersion {
                uid: s.metadata.uid.unwrap_or_default(),
                resource_version: s.metadata.resource_version.unwrap_or_default(),
                keys: s.data.unwrap_or_default().into_keys().collect(),
            };
            out.insert(name.to_string(), version);
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
    use crate::render::testing::{fs, proxy, s3};
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    #[test]
    fn rules_the_schema_cannot_check_are_problems() {
        use crate::crd::{DownloadModesSpec, FilterSpec};
        let mut p = proxy(fs());
        assert_eq!(check_rules(&p), None);
        p.spec.filter = Some(FilterSpec {
            rules: vec![
                "-".into(),
                "+ github.com/gomods/athens v0.1,v0.2,v0.4.1".into(),
            ],
            global_endpoint: None,
            config_map_ref: None,
        });
        p.spec.download_modes = Some(DownloadModesSpec {
            hcl: Some("mode = \"sync\"\ndownload \"a.b/*\" { mode = \"none\" }\n".into()),
            ..Default::default()
        });
        assert_eq!(check_rules(&p), None);

        let mut bad = p.clone();
        bad.spec
            .filter
            .as_mut()
            .unwrap()
            .rules
            .push("+ a.b/c v1,,v2".into());
        let problem = check_rules(&bad).unwrap();
        assert_eq!(problem.reason(), "InvalidFilter");
        assert!(problem.to_string().contains("line 3"), "{problem}");

        let mut bad = p.clone();
        bad.spec.download_modes.as_mut().unwrap().hcl =
            Some("mode = \"sync\"\ndownload \"a/*\" { url = \"http://x\" }\n".into());
        assert_eq!(check_rules(&bad).unwrap().reason(), "InvalidDownloadModes");
    }

    fn secret(keys: &[&str]) -> SecretVersion {
        SecretVersion {
            uid: "u".into(),
            resource_version: "1".into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn missing_secret_and_key() {
        let creds = credentials(&s3());
        let err = check_secrets(&creds, &Secrets::new()).unwrap();
        assert_eq!(err.reason(), "SecretNotFound");
        let mut data = Secrets::from([("s3-creds".to_string(), secret(&["AWS_ACCESS_KEY_ID"]))]);
        let err = check_secrets(&creds, &data).unwrap();
        assert_eq!(err.reason(), "SecretKeyNotFound");
        assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"));
        // The session token is optional.
        data.insert(
            "s3-creds".into(),
            secret(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        );
        assert_eq!(check_secrets(&creds, &data), None);
        assert_eq!(check_secrets(&credentials(&fs()), &Secrets::new()), None);
    }

    #[test]
    fn the_git_netrc_secret_must_have_its_key() {
        let up = crate::crd::UpstreamSpec {
            vcs: Some(crate::crd::VcsSpec {
                netrc: Some(crate::crd::SecretFileRef {
                    secret_name: "git".into(),
                    key: Some("corp-netrc".into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let creds = vcs_credentials(&up);
        let data = Secrets::from([("git".to_string(), secret(&["netrc"]))]);
        let err = check_secrets(&creds, &data).unwrap();
        assert_eq!(err.reason(), "SecretKeyNotFound");
        let data = Secrets::from([("git".to_string(), secret(&["corp-netrc"]))]);
        assert_eq!(check_secrets(&creds, &data), None);
    }

    #[test]
    fn an_ssh_key_or_token_secret_must_exist_with_its_key() {
        let up = crate::crd::UpstreamSpec {
            vcs: Some(crate::crd::VcsSpec {
                ssh_key: Some(crate::crd::SecretFileRef {
                    secret_name: "deploy".into(),
                    key: None,
                }),
                known_hosts: Some(crate::crd::SecretFileRef {
                    secret_name: "deploy".into(),
                    key: None,
                }),
                tokens: vec![crate::crd::VcsTokenRef {
                    host: "github.com".into(),
                    secret_name: "gh".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let creds = vcs_credentials(&up);
        let deploy = (
            "deploy".to_string(),
            secret(&["ssh-privatekey", "known_hosts"]),
        );
        let data = Secrets::from([deploy.clone()]);
        assert_eq!(
            check_secrets(&creds, &data).unwrap().reason(),
            "SecretNotFound"
        );
        let data = Secrets::from([
            ("deploy".to_string(), secret(&["ssh-privatekey"])),
            ("gh".to_string(), secret(&["token"])),
        ]);
        assert_eq!(
            check_secrets(&creds, &data).unwrap().reason(),
            "SecretKeyNotFound"
        );
        let data = Secrets::from([deploy, ("gh".to_string(), secret(&["token"]))]);
        assert_eq!(check_secrets(&creds, &data), None);
    }

    #[test]
    fn policy_limits_image_and_service_account() {
        let mut settings = Settings::default();
        let mut p = proxy(fs());
        p.spec.service_account_name = Some("builder".into());
        assert_eq!(check_policy(&p, &settings), None, "no limits by default");

        settings.allowed_image_prefixes = vec!["registry.internal.test/athens/".into()];
        let err = check_policy(&p, &settings).unwrap();
        assert_eq!(err.reason(), "ImageNotAllowed");
        assert!(err.to_string().contains("athens-proxy:"), "{err}");
        p.spec.image = Some("registry.internal.test/athens/proxy:1".into());
        assert_eq!(check_policy(&p, &settings), None);

        settings.allowed_service_accounts = vec!["athens".into()];
        let err = check_policy(&p, &settings).unwrap();
        assert_eq!(err.reason(), "ServiceAccountNotAllowed");
        assert!(err.to_string().contains("\"builder\""), "{err}");
        p.spec.service_account_name = None;
        assert_eq!(check_policy(&p, &settings), None, "no account, no token");
        p.spec.service_account_name = Some("athens".into());
        assert_eq!(check_policy(&p, &settings), None);
    }

    fn owned(uid: &str, controller: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("gomods-config".into()),
            owner_references: Some(vec![OwnerReference {
                kind: "Thing".into(),
                name: "other".into(),
                uid: uid.into(),
                controller: Some(controller),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_controller_reference_with_our_uid_counts() {
        assert!(controlled_by(&owned("me", true), "me"));
        assert!(!controlled_by(&owned("me", false), "me"));
        assert!(!controlled_by(&owned("them", true), "me"));
        assert!(!controlled_by(&ObjectMeta::default(), "me"));
        let p = conflict("ConfigMap", &owned("them", true));
        assert_eq!(p.reason(), "NameConflict");
        let text = p.to_string();
        assert!(text.contains("ConfigMap \"gomods-config\""), "{text}");
        assert!(text.contains("controlled by Thing \"other\""), "{text}");
        let unowned = ObjectMeta {
            name: Some("x".into()),
            ..Default::default()
        };
        assert!(
            conflict("Service", &unowned)
                .to_string()
                .contains("no controller")
        );
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
