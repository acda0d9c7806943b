//! Running an image under runc: a bundle unpacked from the OCI layout by umoci, the pod's
//! volumes and the kubelet's files on disk, and the runtime configuration translated from the
//! pod spec. runc keeps its state in a folder of ours; dropping a [`Container`] kills it and
//! deletes it by id, which removes its cgroups.

use super::layout::Image;
use super::runtime_config::{Host, runtime_config};
use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Why runc cannot run here at all, if it cannot (the image tests then skip, loudly).
pub fn unavailable() -> Option<String> {
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return Some("not root: runc needs root for namespaces, mounts and cgroups".into());
    }
    for tool in ["runc", "umoci", "ip"] {
        if Command::new(tool).arg("--version").output().is_err()
            && Command::new(tool).arg("-V").output().is_err()
        {
            return Some(format!(
                "{tool} is not installed (tests/peers/image-tools installs it)"
            ));
        }
    }
    None
}

/// A pod's files on disk: volumes and the kubelet's per-pod /etc files.
pub struct PodFiles {
    pub dir: tempfile::TempDir,
    pub host: Host,
}

/// Puts the pod's volumes on disk as the kubelet would: ConfigMap and Secret keys as files
/// (read-only mounts), emptyDirs as world-writable folders owned by the fsGroup. `hosts` is the
/// extra /etc/hosts content (what cluster DNS would answer).
pub fn pod_files(
    pod: &PodSpec,
    config_maps: &[ConfigMap],
    secrets: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    hostname: &str,
    hosts: &str,
) -> Result<PodFiles> {
    let dir = tempfile::Builder::new().prefix("athens-pod-").tempdir()?;
    let fs_group = pod
        .security_context
        .as_ref()
        .and_then(|s| s.fs_group)
        .map(|g| g as u32);
    let mut volumes = BTreeMap::new();
    for v in pod.volumes.iter().flatten() {
        let path = dir.path().join("volumes").join(&v.name);
        std::fs::create_dir_all(&path)?;
        if let Some(cm) = &v.config_map {
            let data = config_maps
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(cm.name.as_str()))
                .and_then(|c| c.data.clone())
                .with_context(|| format!("no ConfigMap {}", cm.name))?;
            for (k, value) in data {
                write_file(&path.join(k), value.as_bytes(), 0o644, None)?;
            }
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let data = secrets
                .get(&name)
                .with_context(|| format!("no Secret {name}"))?;
            let mode = s.default_mode.unwrap_or(0o644) as u32;
            for (k, value) in data {
                let file = s.items.iter().flatten().find(|i| &i.key == k);
                if s.items.is_some() && file.is_none() {
                    continue;
                }
                let at = file.map_or(k.as_str(), |i| i.path.as_str());
                write_file(&path.join(at), value, mode, fs_group)?;
            }
        } else if v.empty_dir.is_some() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o2777))?;
            chown(&path, None, fs_group)?;
        } else {
            bail!("volume {} of a kind this tier does not make", v.name);
        }
        volumes.insert(v.name.clone(), path);
    }
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc)?;
    let hosts_text = format!(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{hosts}"
    );
    write_file(&etc.join("hosts"), hosts_text.as_bytes(), 0o644, None)?;
    write_file(
        &etc.join("hostname"),
        format!("{hostname}\n").as_bytes(),
        0o644,
        None,
    )?;
    // No DNS server in the namespace: names resolve from /etc/hosts or not at all.
    write_file(&etc.join("resolv.conf"), b"options ndots:5\n", 0o644, None)?;
    let etc_files = ["hosts", "hostname", "resolv.conf"]
        .iter()
        .map(|f| (format!("/etc/{f}"), etc.join(f)))
        .collect();
    Ok(PodFiles {
        dir,
        host: Host {
            volumes,
            secrets: secrets.clone(),
            etc_files,
            hostname: hostname.into(),
            ..Default::default()
        },
    })
}

fn write_file(path: &Path, bytes: &[u8], mode: u32, group: Option<u32>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    chown(path, None, group)?;
    Ok(())
}

/// A container made from an image layout and a pod spec; killed and deleted on drop.
pub struct Container {
    pub id: String,
    pub cgroups_path: String,
    state: tempfile::TempDir,
    bundle: tempfile::TempDir,
    /// runc's foreground process (a lock so that readiness polls can check it through `&self`).
    child: std::sync::Mutex<Option<Child>>,
    log: PathBuf,
}

impl Container {
    /// Unpacks `image` and writes the runtime configuration for `pod` (with `host` describing
    /// where its files are); runs nothing yet. `host.cgroups_path` is set here, from the id.
    pub fn create(image: &Image, pod: &PodSpec, mut host: Host) -> Result<Container> {
        let id = format!(
            "athens-image-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let bundle = tempfile::Builder::new()
            .prefix("athens-bundle-")
            .tempdir()?;
        let dest = bundle.path().join("b");
        let out = Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{}", image.dir.display(), image.tag))
            .arg(&dest)
            .output()
            .context("running umoci")?;
        ensure!(out.status.success(), "umoci unpack: {}", text(&out));
        host.cgroups_path = format!("/{id}");
        let config = runtime_config(pod, &image.config, &host)?;
        std::fs::write(
            dest.join("config.json"),
            serde_json::to_vec_pretty(&config)?,
        )?;
        let state = tempfile::Builder::new().prefix("athens-runc-").tempdir()?;
        let log = bundle.path().join("container.log");
        Ok(Container {
            cgroups_path: host.cgroups_path,
            id,
            state,
            bundle,
            child: Default::default(),
            log,
        })
    }

    fn runc(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(self.state.path());
        c
    }

    /// `runc run` in the foreground: runc stays the container's parent until it exits.
    fn run(&self) -> Command {
        let mut c = self.runc();
        c.args(["run", "--bundle"])
            .arg(self.bundle.path().join("b"))
            .arg(&self.id)
            .stdin(Stdio::null());
        c
    }

    /// Starts the container in the background; its stdout and stderr go to [`Container::log`].
    pub fn start(&mut self) -> Result<()> {
        let log = std::fs::File::create(&self.log)?;
        let child = self
            .run()
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("running runc")?;
        *self.child.lock().expect("lock") = Some(child);
        Ok(())
    }

    /// Runs the container to completion and returns its output.
    pub fn run_to_end(&mut self) -> Result<Output> {
        self.run().output().context("running runc")
    }

    /// The container's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether runc's foreground process has exited (the container stopped).
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().expect("lock");
        child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Host pid of the container's process, from `runc state`.
    pub fn pid(&self) -> Result<u32> {
        let out = self.runc().args(["state", &self.id]).output()?;
        ensure!(out.status.success(), "runc state: {}", text(&out));
        let state: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        state["pid"]
            .as_u64()
            .map(|p| p as u32)
            .context("runc state has no pid")
    }

    /// Kills and deletes the container (idempotent); its cgroups go with it.
    pub fn stop(&mut self) {
        let _ = self.runc().args(["kill", &self.id, "KILL"]).output();
        if let Some(mut c) = self.child.lock().expect("lock").take() {
            let _ = c.wait();
        }
        let _ = self.runc().args(["delete", "--force", &self.id]).output();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.stop();
    }
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// cgroup folders named `path` that still exist, in any hierarchy (v1 controllers, unified).
pub fn leftover_cgroups(path: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return vec![];
    };
    entries
        .flatten()
        .map(|e| e.path().join(path.trim_start_matches('/')))
        .chain(std::iter::once(
            Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')),
        ))
        .filter(|p| p.exists())
        .collect()
}
