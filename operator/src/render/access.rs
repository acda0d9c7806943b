//! `spec.access` in the pod: each referenced Secret key mounted read-only as a file in its own
//! folder, and the proxy configuration pointing at those files. Kubernetes updates a mounted
//! Secret in place (no `subPath`), and the proxy reads the files again when they change.

use super::secrets::{Credential, Delivery};
use crate::crd::{AccessSpec, AthensProxySpec, SecretKeyFile};
use athens_config::Config;
use k8s_openapi::api::core::v1::{KeyToPath, SecretVolumeSource, Volume, VolumeMount};

/// Where access Secrets are mounted, one folder per reference.
pub const ACCESS_DIR: &str = "/var/run/secrets/athens/access";
pub const USERS_KEY: &str = "users";
pub const TOKENS_KEY: &str = "tokens";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

/// One mounted Secret: volume name, folder, and (Secret key, file name) items.
struct Mounted {
    volume: String,
    secret: String,
    items: Vec<(String, &'static str)>,
}

impl Mounted {
    fn dir(&self) -> String {
        format!("{ACCESS_DIR}/{}", self.volume)
    }
}

fn refs(access: &AccessSpec) -> Vec<Mounted> {
    let one = |prefix: &str, i: usize, r: &SecretKeyFile, default: &'static str| Mounted {
        volume: format!("{prefix}-{i}"),
        secret: r.secret_name.clone(),
        items: vec![(r.key.clone().unwrap_or_else(|| default.into()), default)],
    };
    let mut v: Vec<Mounted> = access
        .basic_auth
        .iter()
        .enumerate()
        .map(|(i, r)| one("access-basic", i, r, USERS_KEY))
        .collect();
    v.extend(
        access
            .bearer_tokens
            .iter()
            .enumerate()
            .map(|(i, r)| one("access-tokens", i, r, TOKENS_KEY)),
    );
    if let Some(s) = &access.tls_secret_name {
        v.push(Mounted {
            volume: "access-tls".into(),
            secret: s.clone(),
            items: vec![(TLS_CERT.into(), TLS_CERT), (TLS_KEY.into(), TLS_KEY)],
        });
    }
    v
}

/// Whether the proxy serves HTTPS itself.
pub fn serves_tls(spec: &AthensProxySpec) -> bool {
    spec.access
        .as_ref()
        .is_some_and(|a| a.tls_secret_name.is_some())
}

/// The container port serving `/metrics` without credentials (`spec.access.metricsPort`).
pub fn metrics_port(spec: &AthensProxySpec) -> Option<i32> {
    spec.access.as_ref().and_then(|a| a.metrics_port)
}

/// The Secret keys the pods need (for the preflight check): all required.
pub fn access_credentials(spec: &AthensProxySpec) -> Vec<Credential> {
    let Some(access) = &spec.access else {
        return Vec::new();
    };
    refs(access)
        .into_iter()
        .flat_map(|m| {
            let secret = m.secret.clone();
            m.items.into_iter().map(move |(key, file)| Credential {
                secret: secret.clone(),
                key,
                delivery: Delivery::File(file),
                optional: false,
            })
        })
        .collect()
}

/// Volumes and read-only mounts for the access Secrets.
pub fn access_volumes(spec: &AthensProxySpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let Some(access) = &spec.access else {
        return (Vec::new(), Vec::new());
    };
    refs(access)
        .into_iter()
        .map(|m| {
            let volume = Volume {
                name: m.volume.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(m.secret.clone()),
                    items: Some(
                        m.items
                            .iter()
                            .map(|(key, file)| KeyToPath {
                                key: key.clone(),
                                path: (*file).into(),
                                mode: None,
                            })
                            .collect(),
                    ),
                    default_mode: Some(0o440),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let mount = VolumeMount {
                name: m.volume.clone(),
                mount_path: m.dir(),
                read_only: Some(true),
                ..Default::default()
            };
            (volume, mount)
        })
        .unzip()
}

/// Points the proxy configuration at the mounted files.
pub fn apply_access(cfg: &mut Config, spec: &AthensProxySpec) {
    let Some(access) = &spec.access else { return };
    if let Some(port) = access.metrics_port {
        cfg.access.metrics_listen = format!("0.0.0.0:{port}");
    }
    for m in refs(access) {
        for (_, file) in &m.items {
            let path = format!("{}/{file}", m.dir());
            match *file {
                USERS_KEY => cfg.access.basic_auth_files.push(path),
                TOKENS_KEY => cfg.access.bearer_token_files.push(path),
                TLS_CERT => cfg.access.tls_cert_file = path,
                _ => cfg.access.tls_key_file = path,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn with_access() -> AthensProxySpec {
        let mut spec = proxy(fs()).spec;
        spec.access = Some(AccessSpec {
            basic_auth: vec![
                SecretKeyFile {
                    secret_name: "team-a".into(),
                    key: None,
                },
                SecretKeyFile {
                    secret_name: "team-b".into(),
                    key: Some("htpasswd".into()),
                },
            ],
            bearer_tokens: vec![SecretKeyFile {
                secret_name: "ci".into(),
                key: None,
            }],
            tls_secret_name: Some("proxy-tls".into()),
            metrics_port: None,
        });
        spec
    }

    #[test]
    fn each_reference_is_a_read_only_file_the_config_names() {
        let spec = with_access();
        let (volumes, mounts) = access_volumes(&spec);
        assert_eq!(volumes.len(), 4);
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        let b = volumes[1].secret.as_ref().unwrap();
        assert_eq!(b.secret_name.as_deref(), Some("team-b"));
        let item = &b.items.as_ref().unwrap()[0];
        assert_eq!(
            (item.key.as_str(), item.path.as_str()),
            ("htpasswd", "users")
        );
        // As the operator renders it for the pods.
        let cfg = crate::render::proxy_config(&spec);
        assert_eq!(
            cfg.access.basic_auth_files,
            [
                format!("{ACCESS_DIR}/access-basic-0/users"),
                format!("{ACCESS_DIR}/access-basic-1/users")
            ]
        );
        assert_eq!(
            cfg.access.bearer_token_files,
            [format!("{ACCESS_DIR}/access-tokens-0/tokens")]
        );
        assert_eq!(
            cfg.access.tls_cert_file,
            format!("{ACCESS_DIR}/access-tls/tls.crt")
        );
        assert_eq!(
            cfg.access.tls_key_file,
            format!("{ACCESS_DIR}/access-tls/tls.key")
        );
        let mut checked = cfg.clone();
        checked.upstream.goproxy = "off".into();
        checked.validate().unwrap();
        // Every mount path the config names is under a mount.
        for f in cfg
            .access
            .basic_auth_files
            .iter()
            .chain(&cfg.access.bearer_token_files)
        {
            assert!(mounts.iter().any(|m| f.starts_with(&m.mount_path)), "{f}");
        }
        let creds = access_credentials(&spec);
        let keys: Vec<_> = creds
            .iter()
            .map(|c| (c.secret.as_str(), c.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("team-a", "users"),
                ("team-b", "htpasswd"),
                ("ci", "tokens"),
                ("proxy-tls", "tls.crt"),
                ("proxy-tls", "tls.key")
            ]
        );
        assert!(serves_tls(&spec));
    }

    #[test]
    fn the_pod_mounts_them_and_probes_over_https() {
        let mut p = proxy(fs());
        p.spec = with_access();
        let d = crate::render::desired(
            &p,
            &crate::render::Secrets::new(),
            &crate::render::Settings::default(),
        )
        .unwrap()
        .deployment;
        let pod = d.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        for probe in [&c.liveness_probe, &c.readiness_probe] {
            let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        }
        let mounts = c.volume_mounts.as_ref().unwrap();
        let access: Vec<_> = mounts
            .iter()
            .filter(|m| m.mount_path.starts_with(ACCESS_DIR))
            .collect();
        assert_eq!(access.len(), 4);
        let names: Vec<_> = pod.volumes.unwrap().into_iter().map(|v| v.name).collect();
        assert!(access.iter().all(|m| names.contains(&m.name)));
    }

    #[test]
    fn no_access_section_changes_nothing() {
        let spec = proxy(fs()).spec;
        assert_eq!(access_volumes(&spec), (vec![], vec![]));
        assert!(access_credentials(&spec).is_empty());
        let mut cfg = Config::default();
        apply_access(&mut cfg, &spec);
        assert_eq!(cfg, Config::default());
        assert!(!serves_tls(&spec));
    }
}
