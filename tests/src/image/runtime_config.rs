//! A pod's container as an OCI runtime configuration (runc's `config.json`), the way a kubelet
//! with containerd would run it: command and args over the image's entrypoint, env with Secret
//! references resolved, user and groups, read-only root, capabilities, the volumes where the pod
//! mounts them, resource limits, and the kubelet's own /etc/hosts, /etc/hostname, /etc/resolv.conf.
//!
//! Pure: the caller puts volumes and kubelet files on disk and says where ([`Host`]).

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the image's own configuration says about how to run it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    pub user: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
}

/// Where the caller put what the container mounts, and how it is isolated.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Host folder of each pod volume, by volume name.
    pub volumes: BTreeMap<String, PathBuf>,
    /// Secret name → key → value, for `env[].valueFrom.secretKeyRef`.
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// A network namespace to join (`/var/run/netns/<name>`); `None`: a new, empty one.
    pub netns: Option<PathBuf>,
    /// cgroup path (relative to each hierarchy's root) that runc creates and removes.
    pub cgroups_path: String,
    pub hostname: String,
    /// The kubelet's per-pod files: /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(String, PathBuf)>,
}

/// Why a pod cannot be run here as Kubernetes would run it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TranslateError {
    #[error("the pod must have exactly one container, it has {0}")]
    Containers(usize),
    #[error("not supported in this tier: {0}")]
    Unsupported(String),
    #[error("env {var}: Secret {secret} has no key {key}")]
    MissingSecretKey {
        var: String,
        secret: String,
        key: String,
    },
    #[error("volume {0} is mounted but has no host folder")]
    MissingVolume(String),
    #[error("runAsNonRoot is set but the container would run as {0}")]
    RunsAsRoot(String),
    #[error("bad quantity {0:?}")]
    Quantity(String),
    #[error("probe: {0}")]
    Probe(String),
}

/// The capabilities containerd gives a container before `add`/`drop`.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Syscalls the runtime's default seccomp profile refuses that a program could plausibly try.
/// containerd's real profile is an allow-list of ~350 calls; this deny-list keeps the file short
/// and still makes a program that needs one of them fail here as it would in a cluster.
const SECCOMP_DENIED: [&str; 22] = [
    "acct",
    "add_key",
    "bpf",
    "clock_settime",
    "delete_module",
    "finit_module",
    "init_module",
    "kexec_load",
    "keyctl",
    "mount",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "ptrace",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "umount2",
    "unshare",
];

/// The runtime configuration of the pod's only container.
pub fn runtime_config(
    pod: &PodSpec,
    image: &ImageConfig,
    host: &Host,
) -> Result<Value, TranslateError> {
    let c = only_container(pod)?;
    if pod.init_containers.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(TranslateError::Unsupported("init containers".into()));
    }
    if pod.automount_service_account_token != Some(false) {
        return Err(TranslateError::Unsupported(
            "a service account token (automountServiceAccountToken must be false)".into(),
        ));
    }
    let sc = c.security_context.clone().unwrap_or_default();
    if sc.privileged == Some(true) {
        return Err(TranslateError::Unsupported("privileged containers".into()));
    }
    let user = user(pod, c, image)?;

    let caps = capabilities(c);
    // A non-root process keeps no effective capabilities (no ambient set, as in containerd).
    let effective: Vec<&str> = if user.uid == 0 { caps.clone() } else { vec![] };

    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.groups},
            "args": args(c, image),
            "env": env(c, image, host)?,
            "cwd": c.working_dir.clone().or(image.working_dir.clone()).unwrap_or_else(|| "/".into()),
            "capabilities": {
                "bounding": caps, "effective": effective, "permitted": effective,
                "inheritable": [], "ambient": []
            },
            "noNewPrivileges": sc.allow_privilege_escalation == Some(false),
        },
        "root": {"path": "rootfs", "readonly": sc.read_only_root_filesystem == Some(true)},
        "hostname": host.hostname,
        "mounts": mounts(pod, c, host)?,
        "linux": {
            "namespaces": namespaces(host),
            "cgroupsPath": host.cgroups_path,
            "resources": resources(c)?,
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ],
        },
    });
    let seccomp = c
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
        .or(pod
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref()));
    if let Some(p) = seccomp {
        match p.type_.as_str() {
            "RuntimeDefault" => {
                config["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": seccomp_architectures(),
                    "syscalls": [{"names": SECCOMP_DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
                })
            }
            "Unconfined" => {}
            other => return Err(TranslateError::Unsupported(format!("seccomp {other}"))),
        }
    }
    Ok(config)
}

/// This machine's syscall ABIs (a filter naming a foreign one fails to load).
fn seccomp_architectures() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "aarch64" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        _ => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    }
}

fn only_container(pod: &PodSpec) -> Result<&Container, TranslateError> {
    match pod.containers.as_slice() {
        [c] => Ok(c),
        v => Err(TranslateError::Containers(v.len())),
    }
}

/// Kubernetes' rule: `command` replaces the entrypoint (and drops the image's cmd); `args`
/// replaces the cmd.
fn args(c: &Container, image: &ImageConfig) -> Vec<String> {
    match (&c.command, &c.args) {
        (Some(cmd), args) => cmd.iter().chain(args.iter().flatten()).cloned().collect(),
        (None, Some(args)) => image.entrypoint.iter().chain(args).cloned().collect(),
        (None, None) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
    }
}

/// The image's env, then the container's (which wins for the same name).
fn env(c: &Container, image: &ImageConfig, host: &Host) -> Result<Vec<String>, TranslateError> {
    let mut vars: Vec<(String, String)> = image
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (_, Some(from)) => {
                let Some(r) = &from.secret_key_ref else {
                    return Err(TranslateError::Unsupported(format!(
                        "env {}: only secretKeyRef sources",
                        e.name
                    )));
                };
                match host.secrets.get(&r.name).and_then(|s| s.get(&r.key)) {
                    Some(v) => String::from_utf8_lossy(v).into_owned(),
                    None if r.optional == Some(true) => continue,
                    None => {
                        return Err(TranslateError::MissingSecretKey {
                            var: e.name.clone(),
                            secret: r.name.clone(),
                            key: r.key.clone(),
                        });
                    }
                }
            }
            (v, None) => v.clone().unwrap_or_default(),
        };
        vars.retain(|(k, _)| *k != e.name);
        vars.push((e.name.clone(), value));
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

struct User {
    uid: i64,
    gid: i64,
    groups: Vec<i64>,
}

/// runAsUser/runAsGroup of the container, else of the pod, else the image's numeric USER;
/// fsGroup and supplementalGroups become additional groups.
fn user(pod: &PodSpec, c: &Container, image: &ImageConfig) -> Result<User, TranslateError> {
    let psc = pod.security_context.clone().unwrap_or_default();
    let csc = c.security_context.clone().unwrap_or_default();
    let (image_uid, image_gid) = match image.user.as_deref().filter(|u| !u.is_empty()) {
        None => (Some(0), None),
        Some(u) => {
            let (uid, gid) = u.split_once(':').map_or((u, None), |(a, b)| (a, Some(b)));
            (uid.parse::<i64>().ok(), gid.and_then(|g| g.parse().ok()))
        }
    };
    let uid = csc.run_as_user.or(psc.run_as_user).or(image_uid);
    let non_root = csc.run_as_non_root.or(psc.run_as_non_root) == Some(true);
    let uid = match uid {
        Some(0) if non_root => return Err(TranslateError::RunsAsRoot("uid 0".into())),
        Some(u) => u,
        // A user name: the kubelet cannot check it is not root, nor can we.
        None => {
            return Err(TranslateError::Unsupported(format!(
                "image user {:?} is not numeric",
                image.user
            )));
        }
    };
    let gid = csc
        .run_as_group
        .or(psc.run_as_group)
        .or(image_gid)
        .unwrap_or(0);
    let mut groups: Vec<i64> = psc.fs_group.into_iter().collect();
    groups.extend(psc.supplemental_groups.iter().flatten());
    groups.sort_unstable();
    groups.dedup();
    Ok(User { uid, gid, groups })
}

fn capabilities(c: &Container) -> Vec<&str> {
    let caps = c
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.clone())
        .unwrap_or_default();
    let drop: Vec<String> = caps.drop.unwrap_or_default();
    if drop.iter().any(|d| d == "ALL") {
        return vec![];
    }
    DEFAULT_CAPS
        .into_iter()
        .filter(|cap| !drop.iter().any(|d| format!("CAP_{d}") == *cap))
        .collect()
}

fn namespaces(host: &Host) -> Vec<Value> {
    let mut v: Vec<Value> = ["pid", "ipc", "uts", "mount", "cgroup"]
        .iter()
        .map(|t| json!({"type": t}))
        .collect();
    v.push(match &host.netns {
        Some(p) => json!({"type": "network", "path": p}),
        None => json!({"type": "network"}),
    });
    v
}

/// What every container gets, the kubelet's files, then the pod's volumes.
fn mounts(pod: &PodSpec, c: &Container, host: &Host) -> Result<Vec<Value>, TranslateError> {
    let m = |dest: &str, typ: &str, src: &str, opts: &[&str]| json!({"destination": dest, "type": typ, "source": src, "options": opts});
    let mut v = vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ];
    for (dest, src) in &host.etc_files {
        v.push(bind(dest, &src.to_string_lossy(), false));
    }
    let volumes: BTreeMap<&str, _> = pod
        .volumes
        .iter()
        .flatten()
        .map(|vol| (vol.name.as_str(), vol))
        .collect();
    for vm in c.volume_mounts.iter().flatten() {
        let vol = volumes.get(vm.name.as_str()).ok_or_else(|| {
            TranslateError::Unsupported(format!("mount of undeclared volume {}", vm.name))
        })?;
        let always_ro = vol.config_map.is_some() || vol.secret.is_some();
        if !(always_ro || vol.empty_dir.is_some() || vol.persistent_volume_claim.is_some()) {
            return Err(TranslateError::Unsupported(format!(
                "volume {} of this kind",
                vm.name
            )));
        }
        let mut src = host
            .volumes
            .get(&vm.name)
            .ok_or_else(|| TranslateError::MissingVolume(vm.name.clone()))?
            .clone();
        if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            src.push(sub);
        }
        v.push(bind(
            &vm.mount_path,
            &src.to_string_lossy(),
            always_ro || vm.read_only == Some(true),
        ));
    }
    Ok(v)
}

fn bind(dest: &str, src: &str, read_only: bool) -> Value {
    let mut opts = vec!["rbind", "rprivate", "nosuid", "nodev"];
    if read_only {
        opts.push("ro");
    }
    json!({"destination": dest, "type": "bind", "source": src, "options": opts})
}

/// Limits as the cgroup settings containerd writes; cpu requests as shares.
fn resources(c: &Container) -> Result<Value, TranslateError> {
    let r = c.resources.clone().unwrap_or_default();
    let mut out = json!({});
    let limits = r.limits.unwrap_or_default();
    if let Some(q) = limits.get("memory") {
        out["memory"] = json!({"limit": memory_bytes(&q.0)?});
    }
    let mut cpu = json!({});
    if let Some(q) = limits.get("cpu") {
        cpu["period"] = json!(100_000);
        cpu["quota"] = json!(cpu_millis(&q.0)? * 100);
    }
    if let Some(q) = r.requests.unwrap_or_default().get("cpu") {
        cpu["shares"] = json!((cpu_millis(&q.0)? * 1024 / 1000).max(2));
    }
    if cpu != json!({}) {
        out["cpu"] = cpu;
    }
    Ok(out)
}

/// A memory quantity (`256Mi`, `1G`, `1048576`) in bytes.
pub fn memory_bytes(q: &str) -> Result<i64, TranslateError> {
    let bad = || TranslateError::Quantity(q.to_string());
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    Ok((n * mult).ceil() as i64)
}

/// A cpu quantity (`500m`, `2`, `0.5`) in millicores.
pub fn cpu_millis(q: &str) -> Result<i64, TranslateError> {
    let bad = || TranslateError::Quantity(q.to_string());
    match q.strip_suffix('m') {
        Some(m) => m.parse().map_err(|_| bad()),
        None => q
            .parse::<f64>()
            .map(|c| (c * 1000.0).ceil() as i64)
            .map_err(|_| bad()),
    }
}

/// `scheme://<pod_ip>:<port><path>` of an httpGet probe, with a named port looked up in the
/// container's ports.
pub fn probe_url(c: &Container, probe: &Probe, pod_ip: &str) -> Result<String, TranslateError> {
    let get = probe
        .http_get
        .as_ref()
        .ok_or_else(|| TranslateError::Probe("only httpGet probes".into()))?;
    let port = match &get.port {
        IntOrString::Int(p) => *p,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| TranslateError::Probe(format!("no container port named {name}")))?,
    };
    let scheme = get.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
    let host = get.host.as_deref().unwrap_or(pod_ip);
    let path = get.path.as_deref().unwrap_or("/");
    Ok(format!("{scheme}://{host}:{port}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, ConfigMapVolumeSource, ContainerPort, EmptyDirVolumeSource, EnvVar,
        EnvVarSource, HTTPGetAction, PodSecurityContext, SecretKeySelector, SecurityContext,
        Volume, VolumeMount,
    };

    fn image() -> ImageConfig {
        ImageConfig {
            user: Some("65532:65532".into()),
            env: vec!["PATH=/usr/local/bin".into(), "HOME=/".into()],
            entrypoint: vec!["/bin/app".into()],
            cmd: vec!["run".into()],
            working_dir: None,
        }
    }

    fn secret_env(name: &str, key: &str, optional: bool) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "creds".into(),
                    key: key.into(),
                    optional: optional.then_some(true),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod() -> PodSpec {
        PodSpec {
            automount_service_account_token: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1000),
                run_as_group: Some(2000),
                fs_group: Some(3000),
                ..Default::default()
            }),
            containers: vec![Container {
                name: "app".into(),
                args: Some(vec!["--config".into(), "/etc/app/c.toml".into()]),
                env: Some(vec![
                    EnvVar {
                        name: "HOME".into(),
                        value: Some("/tmp".into()),
                        ..Default::default()
                    },
                    secret_env("KEY", "k", false),
                    secret_env("TOKEN", "t", true),
                ]),
                ports: Some(vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: 3000,
                    ..Default::default()
                }]),
                volume_mounts: Some(vec![
                    VolumeMount {
                        name: "config".into(),
                        mount_path: "/etc/app".into(),
                        ..Default::default()
                    },
                    VolumeMount {
                        name: "tmp".into(),
                        mount_path: "/tmp".into(),
                        ..Default::default()
                    },
                ]),
                security_context: Some(SecurityContext {
                    read_only_root_filesystem: Some(true),
                    allow_privilege_escalation: Some(false),
                    capabilities: Some(Capabilities {
                        drop: Some(vec!["ALL".into()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: Some(vec![
                Volume {
                    name: "config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: "cm".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "tmp".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    fn host() -> Host {
        Host {
            volumes: BTreeMap::from([
                ("config".into(), "/h/config".into()),
                ("tmp".into(), "/h/tmp".into()),
            ]),
            secrets: BTreeMap::from([(
                "creds".into(),
                BTreeMap::from([("k".into(), b"secret".to_vec())]),
            )]),
            netns: Some("/var/run/netns/t".into()),
            cgroups_path: "/t".into(),
            hostname: "pod".into(),
            etc_files: vec![("/etc/hosts".into(), "/h/hosts".into())],
        }
    }

    fn mount<'a>(c: &'a Value, dest: &str) -> &'a Value {
        c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
            .unwrap_or_else(|| panic!("no mount at {dest}"))
    }

    #[test]
    fn hardened_pod_becomes_a_locked_down_process() {
        let c = runtime_config(&pod(), &image(), &host()).unwrap();
        let p = &c["process"];
        assert_eq!(
            p["args"],
            json!(["/bin/app", "--config", "/etc/app/c.toml"])
        );
        assert_eq!(
            p["env"],
            json!(["PATH=/usr/local/bin", "HOME=/tmp", "KEY=secret"])
        );
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 2000, "additionalGids": [3000]})
        );
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["capabilities"]["bounding"], json!([]));
        assert_eq!(c["root"]["readonly"], true);
        assert_eq!(mount(&c, "/etc/app")["source"], "/h/config");
        assert!(
            mount(&c, "/etc/app")["options"]
                .as_array()
                .unwrap()
                .contains(&json!("ro")),
            "ConfigMap volumes are read-only"
        );
        assert!(
            !mount(&c, "/tmp")["options"]
                .as_array()
                .unwrap()
                .contains(&json!("ro"))
        );
        assert_eq!(mount(&c, "/etc/hosts")["source"], "/h/hosts");
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.contains(&json!({"type": "network", "path": "/var/run/netns/t"})));
    }

    #[test]
    fn command_replaces_entrypoint_and_cmd() {
        let mut p = pod();
        p.containers[0].command = Some(vec!["/other".into()]);
        p.containers[0].args = None;
        let c = runtime_config(&p, &image(), &host()).unwrap();
        assert_eq!(c["process"]["args"], json!(["/other"]));
        p.containers[0].command = None;
        let c = runtime_config(&p, &image(), &host()).unwrap();
        assert_eq!(c["process"]["args"], json!(["/bin/app", "run"]));
    }

    #[test]
    fn refuses_what_kubernetes_would_refuse_or_we_cannot_mount() {
        let mut p = pod();
        p.security_context.as_mut().unwrap().run_as_user = Some(0);
        assert_eq!(
            runtime_config(&p, &image(), &host()),
            Err(TranslateError::RunsAsRoot("uid 0".into()))
        );
        let mut h = host();
        h.secrets.clear();
        assert!(matches!(
            runtime_config(&pod(), &image(), &h),
            Err(TranslateError::MissingSecretKey { .. })
        ));
        let mut h = host();
        h.volumes.remove("tmp");
        assert_eq!(
            runtime_config(&pod(), &image(), &h),
            Err(TranslateError::MissingVolume("tmp".into()))
        );
        let mut p = pod();
        p.automount_service_account_token = None;
        assert!(matches!(
            runtime_config(&p, &image(), &host()),
            Err(TranslateError::Unsupported(_))
        ));
        let mut p = pod();
        p.containers.push(p.containers[0].clone());
        assert_eq!(
            runtime_config(&p, &image(), &host()),
            Err(TranslateError::Containers(2))
        );
    }

    #[test]
    fn quantities_and_limits() {
        assert_eq!(memory_bytes("256Mi"), Ok(256 << 20));
        assert_eq!(memory_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(cpu_millis("500m"), Ok(500));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert!(memory_bytes("12Qi").is_err());
        let mut p = pod();
        p.containers[0].resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            limits: Some(BTreeMap::from([
                (
                    "memory".into(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity("64Mi".into()),
                ),
                (
                    "cpu".into(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity("250m".into()),
                ),
            ])),
            ..Default::default()
        });
        let c = runtime_config(&p, &image(), &host()).unwrap();
        assert_eq!(c["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(c["linux"]["resources"]["cpu"]["quota"], 25_000);
    }

    #[test]
    fn probe_urls_resolve_named_ports() {
        let c = &pod().containers[0];
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/readyz".into()),
                port: IntOrString::String("http".into()),
                scheme: Some("HTTP".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            probe_url(c, &probe, "10.0.0.2").unwrap(),
            "http://10.0.0.2:3000/readyz"
        );
        let mut bad = probe.clone();
        bad.http_get.as_mut().unwrap().port = IntOrString::String("grpc".into());
        assert!(probe_url(c, &bad, "10.0.0.2").is_err());
    }
}
