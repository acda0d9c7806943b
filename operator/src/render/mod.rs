//! Desired objects as pure functions of an `AthensProxy` and the Secrets it references.
//!
//! Nothing here talks to the API server; every function is unit tested.

mod access;
mod config;
mod configmap;
mod deployment;
mod extras;
mod hash;
pub mod injection;
mod pvc;
mod secrets;
mod service;

pub use access::{access_credentials, serves_tls};
pub use config::{policy_files, proxy_config, storage_config};
pub use configmap::config_map;
pub use deployment::{deployment, image};
pub use extras::{
    MONITORING_API_VERSION, horizontal_pod_autoscaler, ingress, monitor, network_policy,
    pod_disruption_budget,
};
pub use hash::{config_hash, template_hash};
pub use pvc::{claim_name, persistent_volume_claim, wants_pvc};
pub use secrets::{Credential, Delivery, SecretVersion, Secrets, credentials, vcs_credentials};
pub use service::service;

use crate::crd::AthensProxy;
use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{ConfigMap, PersistentVolumeClaim, Service},
    networking::v1::{Ingress, NetworkPolicy},
    policy::v1::PodDisruptionBudget,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// The proxy image used when `spec.image` is unset: the one released with this operator.
pub const DEFAULT_IMAGE: &str = concat!("athens-proxy:", env!("CARGO_PKG_VERSION"));
/// The single field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "athens-operator";
/// The port the proxy container listens on.
pub const CONTAINER_PORT: i32 = 3000;
/// The Service port when `spec.service.port` is unset.
pub const DEFAULT_SERVICE_PORT: i32 = 80;
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/athens";
/// The ConfigMap key (and file name) of the proxy configuration.
pub const CONFIG_KEY: &str = "config.toml";
/// The filter file's key in the configuration ConfigMap (a file in [`CONFIG_DIR`]).
pub const FILTER_KEY: &str = "filter";
/// The download-mode HCL file's key in the configuration ConfigMap.
pub const DOWNLOAD_KEY: &str = "download.hcl";
/// Where ConfigMaps of the user's own (`configMapRef`) are mounted: `filter/`, `download/`.
pub const POLICY_REF_DIR: &str = "/etc/athens-policy";
/// Where a filesystem volume is mounted.
pub const STORAGE_DIR: &str = "/var/lib/athens/storage";
/// Where a GCS service account key is mounted.
pub const GCS_KEY_DIR: &str = "/var/run/secrets/athens/gcs";
/// Writable scratch space (the root filesystem is read-only).
pub const TMP_DIR: &str = "/tmp";
/// Where the git `.netrc` Secret key is mounted (as the file `netrc`).
pub const VCS_SECRET_DIR: &str = "/var/run/secrets/athens/vcs";
/// Where the git mirror cache emptyDir is mounted.
pub const VCS_CACHE_DIR: &str = "/var/cache/athens/vcs";
/// Where the zip cache emptyDir (copies of the bucket's zips) is mounted.
pub const ZIP_CACHE_DIR: &str = "/var/cache/athens/zips";
/// Pod-template annotation holding the hash of the configuration and referenced Secrets.
pub const CONFIG_HASH_ANNOTATION: &str = "athens.dev/config-hash";
/// Value of `app.kubernetes.io/name` on everything the operator creates.
pub const APP_NAME: &str = "athens-proxy";

/// Everything the reconciler applies for one `AthensProxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub config_map: ConfigMap,
    pub deployment: Deployment,
    pub service: Service,
    /// `None` when the operator should not own a claim (and must delete one it made before).
    pub pvc: Option<PersistentVolumeClaim>,
    /// The optional objects around the proxy; `None`: not wanted (one made before is deleted).
    pub pdb: Option<PodDisruptionBudget>,
    pub hpa: Option<HorizontalPodAutoscaler>,
    pub network_policy: Option<NetworkPolicy>,
    pub ingress: Option<Ingress>,
}

/// Settings of this operator installation that shape what it renders and what it accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// DNS domain of the cluster, for `status.url`.
    pub cluster_domain: String,
    /// Images a proxy may run, by prefix (empty: any image).
    pub allowed_image_prefixes: Vec<String>,
    /// ServiceAccounts a proxy may run as, by name (empty: any).
    pub allowed_service_accounts: Vec<String>,
    /// The chart's MutatingAdmissionPolicy that each proxy's binding names (cluster-wide
    /// GOPROXY); `None`: no bindings (and those of earlier runs are removed).
    pub goproxy_policy: Option<String>,
    /// Check injection with a server-side dry-run pod in a namespace that opted in.
    pub goproxy_verify: bool,
    /// The operator's own namespace, admitted by each proxy's NetworkPolicy (when known).
    pub operator_namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            allowed_image_prefixes: Vec::new(),
            allowed_service_accounts: Vec::new(),
            goproxy_policy: None,
            goproxy_verify: true,
            operator_namespace: None,
        }
    }
}

/// Why an `AthensProxy` cannot be rendered at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("the resource has no {0}")]
    MissingMetadata(&'static str),
}

/// All desired objects. `secrets` holds the versions of the Secrets the spec references (by
/// name); it only feeds the pod-template hash, so a rotated credential rolls the pods.
pub fn desired(
    proxy: &AthensProxy,
    secrets: &Secrets,
    settings: &Settings,
) -> Result<Desired, RenderError> {
    let meta = Meta::of(proxy)?;
    let config = proxy_config(&proxy.spec);
    let toml = config.to_toml();
    let hash = config_hash(&toml, secrets);
    Ok(Desired {
        config_map: config_map(&meta, &toml, policy_files(&proxy.spec)),
        deployment: deployment(&meta, &proxy.spec, &hash),
        service: service(&meta, &proxy.spec),
        pvc: persistent_volume_claim(&meta, &proxy.spec),
        pdb: pod_disruption_budget(&meta, &proxy.spec),
        hpa: horizontal_pod_autoscaler(&meta, &proxy.spec),
        network_policy: network_policy(&meta, &proxy.spec, settings.operator_namespace.as_deref()),
        ingress: ingress(&meta, &proxy.spec),
    })
}

/// Name, namespace and owner of the children of one `AthensProxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    pub owner: OwnerReference,
}

impl Meta {
    pub fn of(proxy: &AthensProxy) -> Result<Self, RenderError> {
        let name = proxy
            .metadata
            .name
            .clone()
            .ok_or(RenderError::MissingMetadata("name"))?;
        let namespace = proxy
            .namespace()
            .ok_or(RenderError::MissingMetadata("namespace"))?;
        let owner = proxy
            .controller_owner_ref(&())
            .ok_or(RenderError::MissingMetadata("uid"))?;
        Ok(Self {
            name,
            namespace,
            owner,
        })
    }

    /// Metadata of a child named `name`, with our labels and a controller owner reference.
    pub fn child(&self, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels(&self.name)),
            owner_references: Some(vec![self.owner.clone()]),
            ..Default::default()
        }
    }
}

/// Name of the ConfigMap of proxy `name`.
pub fn config_map_name(name: &str) -> String {
    format!("{name}-config")
}

/// Labels that select the pods of proxy `name`.
pub fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP_NAME.to_string()),
        ("app.kubernetes.io/instance".to_string(), name.to_string()),
    ])
}

/// The selector of the pods of proxy `name`, as a label selector string.
pub fn selector_string(name: &str) -> String {
    selector_labels(name)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels on every child of proxy `name`.
pub fn labels(name: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(name);
    l.insert(
        "app.kubernetes.io/managed-by".into(),
        FIELD_MANAGER.to_string(),
    );
    l
}

/// The in-cluster URL of the proxy's Service, for `GOPROXY`: fully qualified, so it resolves
/// from any namespace; the port is left out when it is the scheme's default (80, or 443 when
/// the proxy serves HTTPS itself).
pub fn url(name: &str, namespace: &str, port: i32, settings: &Settings) -> String {
    tls_url(name, namespace, port, settings, false)
}

/// [`url`] for a proxy that serves HTTP (`tls` false) or HTTPS.
pub fn tls_url(name: &str, namespace: &str, port: i32, settings: &Settings, tls: bool) -> String {
    let host = format!("{name}.{namespace}.svc.{}", settings.cluster_domain);
    let (scheme, default) = if tls { ("https", 443) } else { ("http", 80) };
    if port == default {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

/// The Service port of a spec.
pub fn service_port(spec: &crate::crd::AthensProxySpec) -> i32 {
    spec.service.port.unwrap_or(DEFAULT_SERVICE_PORT)
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::crd::*;

    /// A minimal valid resource with uid and namespace, as the API server returns it.
    pub fn proxy(storage: StorageSpec) -> AthensProxy {
        let mut p = AthensProxy::new(
            "gomods",
            AthensProxySpec {
                replicas: 1,
                image: None,
                image_pull_policy: None,
                image_pull_secrets: vec![],
                resources: None,
                node_selector: Default::default(),
                tolerations: vec![],
                affinity: None,
                topology_spread_constraints: vec![],
                pod_annotations: Default::default(),
                pod_labels: Default::default(),
                service_account_name: None,
                storage,
                upstream: UpstreamSpec {
                    goproxy: "https://mirror.internal.test".into(),
                    ..Default::default()
                },
                service: Default::default(),
                log: None,
                tracing: None,
                filter: None,
                download_modes: None,
                access: None,
                pod_disruption_budget: None,
                autoscaling: None,
                network_policy: None,
                ingress: None,
                monitoring: None,
            },
        );
        p.metadata.namespace = Some("build".into());
        p.metadata.uid = Some("0000-1111".into());
        p
    }

    pub fn fs() -> StorageSpec {
        StorageSpec {
            filesystem: Some(FilesystemStorage::default()),
            ..Default::default()
        }
    }

    pub fn s3() -> StorageSpec {
        StorageSpec {
            s3: Some(S3Storage {
                bucket: "mods".into(),
                prefix: Some("/team-a/".into()),
                region: Some("eu-west-1".into()),
                endpoint: Some("http://minio.storage.svc:9000".into()),
                path_style: Some(true),
                credentials: Some(S3Credentials {
                    secret_name: "s3-creds".into(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn url_is_fully_qualified_and_drops_port_80() {
        let s = Settings::default();
        assert_eq!(url("a", "b", 80, &s), "http://a.b.svc.cluster.local");
        assert_eq!(url("a", "b", 3000, &s), "http://a.b.svc.cluster.local:3000");
    }

    #[test]
    fn children_are_owned_and_labelled() {
        let d = desired(&proxy(fs()), &Secrets::new(), &Settings::default()).unwrap();
        for meta in [
            &d.config_map.metadata,
            &d.deployment.metadata,
            &d.service.metadata,
            &d.pvc.as_ref().unwrap().metadata,
        ] {
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(owner.kind, "AthensProxy");
            assert_eq!(owner.controller, Some(true));
            assert_eq!(meta.namespace.as_deref(), Some("build"));
            assert_eq!(
                meta.labels.as_ref().unwrap()["app.kubernetes.io/instance"],
                "gomods"
            );
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let p = proxy(s3());
        let a = desired(&p, &Secrets::new(), &Settings::default()).unwrap();
        let b = desired(&p, &Secrets::new(), &Settings::default()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn no_uid_is_an_error() {
        let mut p = proxy(fs());
        p.metadata.uid = None;
        assert_eq!(
            desired(&p, &Secrets::new(), &Settings::default()),
            Err(RenderError::MissingMetadata("uid"))
        );
    }
}
