//! The Deployment of proxy pods: hardened, probed, rolled when the configuration changes.

use super::access::serves_tls;
use super::secrets::{Credential, Delivery, GCS_DEFAULT_KEY, credentials, vcs_credentials};
use super::{
    CONFIG_DIR, CONFIG_HASH_ANNOTATION, CONFIG_KEY, CONTAINER_PORT, DEFAULT_IMAGE, DOWNLOAD_KEY,
    FILTER_KEY, GCS_KEY_DIR, Meta, POLICY_REF_DIR, STORAGE_DIR, TMP_DIR, VCS_CACHE_DIR,
    VCS_SECRET_DIR, ZIP_CACHE_DIR, claim_name, config_map_name, pvc::access_modes, selector_labels,
};
use crate::crd::AthensProxySpec;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, LocalObjectReference,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, SeccompProfile, SecretKeySelector, SecretProjection, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// User and group the proxy runs as (no root, and the image need not name a user).
pub const RUN_AS: i64 = 65532;
/// Name of the proxy container.
pub const CONTAINER: &str = "athens-proxy";

/// The image the pods run: `spec.image`, else the one released with this operator.
pub fn image(spec: &AthensProxySpec) -> String {
    spec.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.into())
}

/// Deployment `<name>`. `hash` goes on the pod template so a change rolls the pods.
pub fn deployment(meta: &Meta, spec: &AthensProxySpec, hash: &str) -> Deployment {
    let selector = selector_labels(&meta.name);
    let mut pod_labels = spec.pod_labels.clone();
    pod_labels.extend(selector.clone());
    let mut pod_annotations = spec.pod_annotations.clone();
    pod_annotations.insert(CONFIG_HASH_ANNOTATION.into(), hash.to_string());

    let (volumes, mounts) = volumes(meta, spec);
    let container = Container {
        name: CONTAINER.into(),
        image: Some(image(spec)),
        image_pull_policy: spec.image_pull_policy.clone(),
        args: Some(vec![
            "--config".into(),
            format!("{CONFIG_DIR}/{CONFIG_KEY}"),
        ]),
        ports: Some(container_ports(spec)),
        env: Some(env(spec)),
        volume_mounts: Some(mounts),
        resources: spec.resources.clone(),
        liveness_probe: Some(probe("/healthz", 10, 3, serves_tls(spec))),
        readiness_probe: Some(probe("/readyz", 5, 2, serves_tls(spec))),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    let mut spread = spec.topology_spread_constraints.clone();
    for c in &mut spread {
        if c.label_selector.is_none() {
            c.label_selector = Some(LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            });
        }
    }
    let has_sa = spec.service_account_name.is_some();
    let pod = PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        service_account_name: spec.service_account_name.clone(),
        automount_service_account_token: Some(has_sa),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        node_selector: non_empty_map(&spec.node_selector),
        tolerations: non_empty(&spec.tolerations),
        affinity: spec.affinity.clone(),
        topology_spread_constraints: non_empty(&spread),
        image_pull_secrets: non_empty(
            &spec
                .image_pull_secrets
                .iter()
                .map(|n| LocalObjectReference { name: n.clone() })
                .collect::<Vec<_>>(),
        ),
        ..Default::default()
    };

    Deployment {
        metadata: meta.child(meta.name.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            strategy: Some(strategy(spec)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A volume only one node can mount cannot be rolled with surge: the new pod would wait for a
/// volume the old pod holds. Such proxies are replaced (`Recreate`), the rest rolled.
fn strategy(spec: &AthensProxySpec) -> DeploymentStrategy {
    let single_node_volume = spec.storage.filesystem.is_some()
        && !access_modes(spec).iter().any(|m| m == "ReadWriteMany");
    DeploymentStrategy {
        type_: Some(
            if single_node_volume {
                "Recreate"
            } else {
                "RollingUpdate"
            }
            .into(),
        ),
        ..Default::default()
    }
}

/// `http`, and `metrics` when `/metrics` has a port of its own.
fn container_ports(spec: &AthensProxySpec) -> Vec<ContainerPort> {
    let port = |name: &str, n: i32| ContainerPort {
        name: Some(name.into()),
        container_port: n,
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let mut ports = vec![port("http", CONTAINER_PORT)];
    ports.extend(super::access::metrics_port(spec).map(|n| port("metrics", n)));
    ports
}

fn probe(path: &str, period: i32, failures: i32, tls: bool) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            scheme: Some(if tls { "HTTPS" } else { "HTTP" }.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn from_secret(name: &str, secret: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: optional.then_some(true),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Environment: scratch locations, settings of the backend, and credentials by reference to
/// the user's Secrets (exactly one backend is set, so this keeps each backend's order).
fn env(spec: &AthensProxySpec) -> Vec<EnvVar> {
    let mut env = vec![value("HOME", TMP_DIR), value("TMPDIR", TMP_DIR)];
    let st = &spec.storage;
    if st.gcs.as_ref().is_some_and(|g| g.credentials.is_some()) {
        env.push(value(
            "GOOGLE_SERVICE_ACCOUNT",
            &format!("{GCS_KEY_DIR}/{GCS_DEFAULT_KEY}"),
        ));
    }
    if let Some(az) = &st.azure {
        env.push(value("AZURE_STORAGE_ACCOUNT_NAME", &az.account));
    }
    for c in credentials(st) {
        if let Delivery::Env(name) = c.delivery {
            env.push(from_secret(name, &c.secret, &c.key, c.optional));
        }
    }
    env
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// Volumes and their mounts: configuration, scratch, storage, GCS key.
fn volumes(meta: &Meta, spec: &AthensProxySpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map_name(&meta.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    let mut mounts = vec![
        mount("config", CONFIG_DIR, true),
        mount("tmp", TMP_DIR, false),
    ];
    if let Some(fs) = &spec.storage.filesystem {
        let claim = fs
            .existing_claim
            .clone()
            .unwrap_or_else(|| claim_name(&meta.name));
        volumes.push(Volume {
            name: "storage".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim,
                read_only: None,
            }),
            ..Default::default()
        });
        mounts.push(mount("storage", STORAGE_DIR, false));
    }
    // A user's ConfigMap, mounted whole-folder (no subPath) so the kubelet updates the file.
    let refs = [
        (
            "filter",
            FILTER_KEY,
            spec.filter.as_ref().and_then(|f| f.config_map_ref.as_ref()),
        ),
        (
            "download",
            DOWNLOAD_KEY,
            spec.download_modes
                .as_ref()
                .and_then(|d| d.config_map_ref.as_ref()),
        ),
    ];
    for (name, file, r) in refs {
        let Some(r) = r else { continue };
        let volume = format!("policy-{name}");
        volumes.push(Volume {
            name: volume.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: r.name.clone(),
                items: Some(vec![KeyToPath {
                    key: r.key.clone(),
                    path: file.into(),
                    mode: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(mount(&volume, &format!("{POLICY_REF_DIR}/{name}"), true));
    }
    for c in credentials(&spec.storage) {
        if let Delivery::File(file) = c.delivery {
            volumes.push(secret_file_volume(&c, file, CREDENTIALS_VOLUME));
            mounts.push(mount(CREDENTIALS_VOLUME, GCS_KEY_DIR, true));
        }
    }
    let (access_volumes, access_mounts) = super::access::access_volumes(spec);
    volumes.extend(access_volumes);
    mounts.extend(access_mounts);
    // Every git credential in one projected volume: one directory, each key a 0440 file.
    let sources: Vec<VolumeProjection> = vcs_credentials(&spec.upstream)
        .iter()
        .filter_map(|c| match c.delivery {
            Delivery::File(file) => Some(VolumeProjection {
                secret: Some(SecretProjection {
                    name: c.secret.clone(),
                    items: Some(vec![KeyToPath {
                        key: c.key.clone(),
                        path: file.into(),
                        mode: None,
                    }]),
                    optional: None,
                }),
                ..Default::default()
            }),
            Delivery::Env(_) => None,
        })
        .collect();
    if !sources.is_empty() {
        volumes.push(Volume {
            name: VCS_VOLUME.into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(0o440),
                sources: Some(sources),
            }),
            ..Default::default()
        });
        mounts.push(mount(VCS_VOLUME, VCS_SECRET_DIR, true));
    }
    // The git mirror cache and the zip cache (copies of the bucket's zips): each its own
    // emptyDir with a size limit the proxy keeps under.
    let caches = [
        (
            VCS_CACHE_VOLUME,
            VCS_CACHE_DIR,
            super::config::vcs_cache_limit(spec),
        ),
        (
            ZIP_CACHE_VOLUME,
            ZIP_CACHE_DIR,
            super::config::zip_cache_limit(&spec.storage),
        ),
    ];
    for (name, dir, limit) in caches {
        let Some(limit) = limit else { continue };
        volumes.push(Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity(limit)),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(mount(name, dir, false));
    }
    (volumes, mounts)
}

/// The one credentials file volume (the GCS key), mounted at [`GCS_KEY_DIR`].
const CREDENTIALS_VOLUME: &str = "gcs-credentials";

/// The git credentials volume (`.netrc`, tokens, SSH key, known_hosts, git config), mounted
/// at [`VCS_SECRET_DIR`].
const VCS_VOLUME: &str = "vcs-credentials";

/// The git mirror cache volume, mounted at [`VCS_CACHE_DIR`].
const VCS_CACHE_VOLUME: &str = "vcs-cache";

/// The zip cache volume, mounted at [`ZIP_CACHE_DIR`].
const ZIP_CACHE_VOLUME: &str = "zip-cache";

/// One Secret key as a read-only file, readable by the pod's group (fsGroup) only.
fn secret_file_volume(c: &Credential, file: &str, volume: &str) -> Volume {
    Volume {
        name: volume.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(c.secret.clone()),
            items: Some(vec![KeyToPath {
                key: c.key.clone(),
                path: file.into(),
                mode: None,
            }]),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn non_empty<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn non_empty_map(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then(|| m.clone())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::*;
    use crate::crd::*;
    use k8s_openapi::api::core::v1::TopologySpreadConstraint;

    fn pod(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn env_of<'a>(d: &'a Deployment, name: &str) -> Option<&'a EnvVar> {
        pod(d).containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == name)
    }

    #[test]
    fn hardened_probed_container() {
        let d = desired(&proxy(fs()), &Secrets::new(), &Settings::default())
            .unwrap()
            .deployment;
        let c = &pod(&d).containers[0];
        assert_eq!(c.image.as_deref(), Some(DEFAULT_IMAGE));
        assert_eq!(
            c.args.as_ref().unwrap(),
            &["--config", "/etc/athens/config.toml"]
        );
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_ref().unwrap(),
            &["ALL"]
        );
        let live = c
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(live.path.as_deref(), Some("/healthz"));
        let ready = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(ready.path.as_deref(), Some("/readyz"));
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, CONTAINER_PORT);
        assert_eq!(
            pod(&d).security_context.as_ref().unwrap().run_as_user,
            Some(RUN_AS)
        );
        assert_eq!(pod(&d).automount_service_account_token, Some(false));
    }

    #[test]
    fn filesystem_mounts_claim_and_recreates() {
        let d = desired(&proxy(fs()), &Secrets::new(), &Settings::default())
            .unwrap()
            .deployment;
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(
            spec.strategy.as_ref().unwrap().type_.as_deref(),
            Some("Recreate")
        );
        let vols = pod(&d).volumes.as_ref().unwrap();
        let storage = vols.iter().find(|v| v.name == "storage").unwrap();
        assert_eq!(
            storage.persistent_volume_claim.as_ref().unwrap().claim_name,
            "gomods-storage"
        );
        let mounts = pod(&d).containers[0].volume_mounts.as_ref().unwrap();
        assert!(mounts.iter().any(|m| m.mount_path == STORAGE_DIR));
        assert!(mounts.iter().any(|m| m.mount_path == "/etc/athens"));
    }

    #[test]
    fn s3_credentials_come_from_the_secret() {
        let d = desired(&proxy(s3()), &Secrets::new(), &Settings::default())
            .unwrap()
            .deployment;
        let id = env_of(&d, "AWS_ACCESS_KEY_ID").unwrap();
        assert!(id.value.is_none());
        let r = id
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (r.name.as_str(), r.key.as_str()),
            ("s3-creds", "AWS_ACCESS_KEY_ID")
        );
        let tok = env_of(&d, "AWS_SESSION_TOKEN").unwrap();
        assert_eq!(
            tok.value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap()
                .optional,
            Some(true)
        );
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(
            spec.strategy.as_ref().unwrap().type_.as_deref(),
            Some("RollingUpdate")
        );
        assert!(
            !pod(&d)
                .volumes
                .as_ref()
                .unwrap()
                .iter()
                .any(|v| v.name == "storage")
        );
    }

    #[test]
    fn the_git_netrc_is_a_read_only_file_never_env() {
        let mut p = proxy(fs());
        p.spec.upstream.vcs = Some(crate::crd::VcsSpec {
            netrc: Some(crate::crd::SecretFileRef {
                secret_name: "git".into(),
                key: None,
            }),
            ..Default::default()
        });
        let d = desired(&p, &Secrets::new(), &crate::render::Settings::default())
            .unwrap()
            .deployment;
        let files = vcs_files(&d);
        assert_eq!(files, [("git", "netrc", "netrc")]);
        let c = &pod(&d).containers[0];
        let m = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "vcs-credentials")
            .unwrap();
        assert_eq!(m.mount_path, "/var/run/secrets/athens/vcs");
        assert_eq!(m.read_only, Some(true));
        let env = c.env.as_ref().unwrap();
        assert!(env.iter().all(|e| e.value_from.is_none()), "{env:?}");
        let cfg = crate::render::proxy_config(&p.spec);
        assert_eq!(cfg.upstream.netrc_file, "/var/run/secrets/athens/vcs/netrc");
        assert_eq!(p.spec.secret_names(), ["git"]);
    }

    /// (Secret, key, file) of each source of the projected git credentials volume, which
    /// must be 0440.
    fn vcs_files(d: &Deployment) -> Vec<(&str, &str, &str)> {
        let v = pod(d)
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "vcs-credentials")
            .unwrap();
        let projected = v.projected.as_ref().unwrap();
        assert_eq!(projected.default_mode, Some(0o440));
        projected
            .sources
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| {
                let sec = s.secret.as_ref().unwrap();
                let item = &sec.items.as_ref().unwrap()[0];
                (sec.name.as_str(), item.key.as_str(), item.path.as_str())
            })
            .collect()
    }

    #[test]
    fn ssh_key_known_hosts_git_config_and_tokens_are_files_in_one_read_only_volume() {
        let mut p = proxy(fs());
        let file = |s: &str, k: Option<&str>| {
            Some(crate::crd::SecretFileRef {
                secret_name: s.into(),
                key: k.map(Into::into),
            })
        };
        p.spec.upstream.private = vec!["git.corp.test".into()];
        p.spec.upstream.vcs = Some(crate::crd::VcsSpec {
            ssh_key: file("deploy-key", None),
            known_hosts: file("deploy-key", Some("hosts")),
            git_config: file("gitcfg", None),
            tokens: vec![
                crate::crd::VcsTokenRef {
                    host: "github.com".into(),
                    username: None,
                    secret_name: "gh".into(),
                    key: None,
                },
                crate::crd::VcsTokenRef {
                    host: "gitlab.corp.test".into(),
                    username: Some("oauth2".into()),
                    secret_name: "gl".into(),
                    key: Some("pat".into()),
                },
            ],
            cache_size_limit: Some("500Mi".into()),
            go_binary: Some("/usr/local/go/bin/go".into()),
            ..Default::default()
        });
        let d = desired(&p, &Secrets::new(), &crate::render::Settings::default())
            .unwrap()
            .deployment;
        assert_eq!(
            vcs_files(&d),
            [
                ("deploy-key", "ssh-privatekey", "ssh-key"),
                ("deploy-key", "hosts", "known_hosts"),
                ("gitcfg", "gitconfig", "gitconfig"),
                ("gh", "token", "token-0"),
                ("gl", "pat", "token-1"),
            ]
        );
        let env = pod(&d).containers[0].env.as_ref().unwrap();
        assert!(env.iter().all(|e| e.value_from.is_none()), "{env:?}");
        let cfg = crate::render::proxy_config(&p.spec);
        let dir = "/var/run/secrets/athens/vcs";
        assert_eq!(cfg.upstream.vcs_ssh_keys, [format!("{dir}/ssh-key")]);
        assert_eq!(cfg.upstream.vcs_known_hosts, format!("{dir}/known_hosts"));
        assert_eq!(cfg.upstream.vcs_git_config, format!("{dir}/gitconfig"));
        assert_eq!(cfg.upstream.vcs_go_binary, "/usr/local/go/bin/go");
        let tokens: Vec<_> = cfg
            .upstream
            .vcs_tokens
            .iter()
            .map(|t| (t.host.as_str(), t.username.as_str(), t.file.as_str()))
            .collect();
        assert_eq!(
            tokens,
            [
                (
                    "github.com",
                    "x-access-token",
                    "/var/run/secrets/athens/vcs/token-0"
                ),
                (
                    "gitlab.corp.test",
                    "oauth2",
                    "/var/run/secrets/athens/vcs/token-1"
                ),
            ]
        );
        assert_eq!(p.spec.secret_names(), ["deploy-key", "gh", "gitcfg", "gl"]);
        // The mirror cache: its own emptyDir with the size limit, 80% of it for the proxy.
        let cache = pod(&d)
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "vcs-cache")
            .unwrap();
        assert_eq!(
            cache.empty_dir.as_ref().unwrap().size_limit,
            Some(Quantity("500Mi".into()))
        );
        assert_eq!(cfg.upstream.vcs_cache_dir, "/var/cache/athens/vcs");
        assert_eq!(cfg.upstream.vcs_cache_max_bytes, 500 * 1024 * 1024 / 5 * 4);
        let m = pod(&d).containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "vcs-cache")
            .unwrap();
        assert_eq!(m.mount_path, "/var/cache/athens/vcs");
    }

    #[test]
    fn no_mirror_cache_without_version_control() {
        let p = proxy(fs());
        let d = desired(&p, &Secrets::new(), &crate::render::Settings::default())
            .unwrap()
            .deployment;
        let vols = pod(&d).volumes.as_ref().unwrap();
        assert!(
            vols.iter()
                .all(|v| v.name != "vcs-cache" && v.name != "vcs-credentials")
        );
        let mut p = proxy(fs());
        p.spec.upstream.goproxy = "https://proxy.corp.test|direct".into();
        let cfg = crate::render::proxy_config(&p.spec);
        assert_eq!(
            cfg.upstream.vcs_cache_max_bytes,
            2 * 1024 * 1024 * 1024 / 5 * 4
        );
    }

    /// The zip cache as rendered: the emptyDir's size limit (checked mounted read-write at
    /// the config's directory) and the config's byte bound; None when neither is rendered.
    fn zip_cache(storage: StorageSpec) -> Option<(String, u64)> {
        let p = proxy(storage);
        let d = desired(&p, &Secrets::new(), &Settings::default())
            .unwrap()
            .deployment;
        let cfg = crate::render::proxy_config(&p.spec);
        cfg.validate().unwrap();
        let volume = pod(&d)
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "zip-cache");
        let mount = pod(&d).containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "zip-cache");
        let Some(volume) = volume else {
            assert!(mount.is_none());
            assert_eq!(cfg.storage.zip_cache_dir, "");
            return None;
        };
        let mount = mount.unwrap();
        assert_eq!(mount.mount_path, "/var/cache/athens/zips");
        assert_ne!(mount.read_only, Some(true));
        assert_eq!(cfg.storage.zip_cache_dir, mount.mount_path);
        let limit = volume.empty_dir.as_ref().unwrap().size_limit.clone();
        Some((limit.unwrap().0, cfg.storage.zip_cache_max_bytes))
    }

    #[test]
    fn buckets_get_a_zip_cache_of_1gi_by_default() {
        let gib = 1024 * 1024 * 1024;
        assert_eq!(zip_cache(s3()), Some(("1Gi".into(), gib / 5 * 4)));
        let mongo = StorageSpec {
            mongodb: Some(MongoDbStorage {
                url: "mongodb://mongo.db.svc:27017/mods".into(),
                credentials: None,
            }),
            ..Default::default()
        };
        assert_eq!(zip_cache(mongo), Some(("1Gi".into(), gib / 5 * 4)));
    }

    #[test]
    fn an_explicit_zip_cache_limit_is_the_size_limit_and_80_percent_of_it_the_bound() {
        let mut st = s3();
        st.zip_cache_size_limit = Some("256Mi".into());
        assert_eq!(
            zip_cache(st),
            Some(("256Mi".into(), 256 * 1024 * 1024 / 5 * 4))
        );
    }

    #[test]
    fn no_zip_cache_when_off_local_or_redirected() {
        let mut off = s3();
        off.zip_cache_size_limit = Some("0".into());
        assert_eq!(zip_cache(off), None);
        // Too small to leave the proxy a byte: off, rather than a config the proxy refuses.
        let mut tiny = s3();
        tiny.zip_cache_size_limit = Some("4".into());
        assert_eq!(zip_cache(tiny), None);
        assert_eq!(zip_cache(fs()), None);
        let mut redirected = s3();
        redirected.zip_redirect_seconds = Some(300);
        assert_eq!(zip_cache(redirected.clone()), None);
        // An explicit limit holds with redirects too.
        redirected.zip_cache_size_limit = Some("2Gi".into());
        assert_eq!(
            zip_cache(redirected),
            Some(("2Gi".into(), 2 * 1024 * 1024 * 1024 / 5 * 4))
        );
    }

    #[test]
    fn gcs_key_is_a_mounted_file() {
        let st = StorageSpec {
            gcs: Some(GcsStorage {
                bucket: "b".into(),
                prefix: None,
                credentials: Some(GcsCredentials {
                    secret_name: "gcs".into(),
                    key: Some("key.json".into()),
                }),
            }),
            ..Default::default()
        };
        let d = desired(&proxy(st), &Secrets::new(), &Settings::default())
            .unwrap()
            .deployment;
        assert_eq!(
            env_of(&d, "GOOGLE_SERVICE_ACCOUNT")
                .unwrap()
                .value
                .as_deref(),
            Some("/var/run/secrets/athens/gcs/service-account.json")
        );
        let v = pod(&d)
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "gcs-credentials")
            .unwrap();
        let items = v.secret.as_ref().unwrap().items.as_ref().unwrap();
        assert_eq!(items[0].key, "key.json");
    }

    #[test]
    fn azure_env() {
        let st = StorageSpec {
            azure: Some(AzureStorage {
                account: "acct".into(),
                container: "c".into(),
                credentials: Some(AzureCredentials {
                    secret_name: "az".into(),
                    account_key_key: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = desired(&proxy(st), &Secrets::new(), &Settings::default())
            .unwrap()
            .deployment;
        assert_eq!(
            env_of(&d, "AZURE_STORAGE_ACCOUNT_NAME")
                .unwrap()
                .value
                .as_deref(),
            Some("acct")
        );
        assert!(
            env_of(&d, "AZURE_STORAGE_ACCOUNT_KEY")
                .unwrap()
                .value_from
                .is_some()
        );
    }

    #[test]
    fn scheduling_labels_annotations() {
        let mut p = proxy(s3());
        p.spec.replicas = 3;
        p.spec.node_selector.insert("pool".into(), "build".into());
        p.spec.pod_labels.insert("team".into(), "go".into());
        p.spec
            .pod_labels
            .insert("app.kubernetes.io/instance".into(), "hijack".into());
        p.spec.pod_annotations.insert("note".into(), "x".into());
        p.spec
            .topology_spread_constraints
            .push(TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "topology.kubernetes.io/zone".into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                ..Default::default()
            });
        let d = desired(&p, &Secrets::new(), &Settings::default())
            .unwrap()
            .deployment;
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        let meta = spec.template.metadata.as_ref().unwrap();
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "go");
        assert_eq!(labels["app.kubernetes.io/instance"], "gomods");
        let ann = meta.annotations.as_ref().unwrap();
        assert_eq!(ann["note"], "x");
        assert!(ann.contains_key(CONFIG_HASH_ANNOTATION));
        assert_eq!(pod(&d).node_selector.as_ref().unwrap()["pool"], "build");
        let tsc = &pod(&d).topology_spread_constraints.as_ref().unwrap()[0];
        assert_eq!(
            tsc.label_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap(),
            &selector_labels("gomods")
        );
    }

    #[test]
    fn spec_and_secret_changes_change_the_template_hash() {
        let hash = |p: &AthensProxy, s: &Secrets| {
            desired(p, s, &Settings::default())
                .unwrap()
                .deployment
                .spec
                .unwrap()
                .template
                .metadata
                .unwrap()
                .annotations
                .unwrap()[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let p = proxy(s3());
        let none = Secrets::new();
        let base = hash(&p, &none);
        let mut p2 = p.clone();
        p2.spec.upstream.goproxy = "off".into();
        assert_ne!(base, hash(&p2, &none));
        let rotated = Secrets::from([(
            "s3-creds".to_string(),
            SecretVersion {
                uid: "u".into(),
                resource_version: "2".into(),
                keys: ["AWS_SECRET_ACCESS_KEY".to_string()].into(),
            },
        )]);
        assert_ne!(base, hash(&p, &rotated));
        let mut p3 = p.clone();
        p3.spec.replicas = 2;
        assert_eq!(base, hash(&p3, &none), "scaling does not roll pods");
    }
}
