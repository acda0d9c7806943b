//! The storage part of the pod the operator renders, made runnable on this machine: the storage
//! URL and options from the rendered ConfigMap, the container's environment with Secret
//! references resolved, and mounted Secret files written under a temporary root. Lets the
//! storage suite run the proxy exactly as the operator would configure it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use athens_operator::crd::{AthensProxy, StorageSpec};
use athens_operator::render::{SecretVersion, Secrets, desired};

/// Secret values by Secret name and key: what the cluster would hold. The operator itself only
/// sees versions and key names ([`Secrets`]); the pod gets the values.
pub type SecretData = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

fn versions(secrets: &SecretData) -> Secrets {
    secrets
        .iter()
        .map(|(name, data)| {
            let v = SecretVersion {
                uid: format!("uid-{name}"),
                resource_version: "1".into(),
                keys: data.keys().cloned().collect(),
            };
            (name.clone(), v)
        })
        .collect()
}

pub struct RenderedStorage {
    pub url: String,
    pub options: BTreeMap<String, String>,
    /// Credentials and settings the proxy reads from its environment (pod scratch paths left
    /// out); paths point under `root`.
    pub env: Vec<(String, String)>,
    pub root: tempfile::TempDir,
    /// `storage.zip_redirect_seconds`, from `spec.storage.zipRedirectSeconds`.
    pub zip_redirect_seconds: u64,
    /// `storage.zip_cache_dir` under `root` (created, as the pod's emptyDir is), from
    /// `spec.storage.zipCacheSizeLimit`; `None` when the operator renders no zip cache.
    pub zip_cache_dir: Option<PathBuf>,
    /// `storage.zip_cache_max_bytes`.
    pub zip_cache_max_bytes: u64,
}

/// Renders an AthensProxy with `storage` and the Secrets `secrets` (name → key → value).
pub fn render_storage(storage: &StorageSpec, secrets: &SecretData) -> Result<RenderedStorage> {
    let p: AthensProxy = serde_json::from_value(serde_json::json!({
        "apiVersion": "athens.dev/v1alpha1",
        "kind": "AthensProxy",
        "metadata": {"name": "t", "namespace": "local", "uid": "local"},
        "spec": {"storage": storage, "upstream": {"goproxy": "off"}},
    }))?;
    let d = desired(
        &p,
        &versions(secrets),
        &athens_operator::render::Settings::default(),
    )?;
    let toml = &d.config_map.data.context("ConfigMap data")?["config.toml"];
    let config = athens_proxy::config::Config::from_toml(toml, "configmap")?;
    let pod = d
        .deployment
        .spec
        .and_then(|s| s.template.spec)
        .context("pod spec")?;
    let container = &pod.containers[0];
    let root = tempfile::tempdir()?;
    let remap = |path: &str| -> PathBuf { root.path().join(path.trim_start_matches('/')) };

    // Secret volumes: each item's value at <mount path>/<item path>.
    for v in pod.volumes.iter().flatten() {
        let Some(secret) = &v.secret else { continue };
        let name = secret.secret_name.as_deref().unwrap_or_default();
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == v.name)
            .with_context(|| format!("no mount for volume {}", v.name))?;
        for item in secret.items.iter().flatten() {
            let value = secret_value(secrets, name, &item.key)
                .with_context(|| format!("Secret {name} has no key {}", item.key))?;
            let file = remap(&mount.mount_path).join(&item.path);
            std::fs::create_dir_all(file.parent().context("file path")?)?;
            std::fs::write(file, value)?;
        }
    }
    let mut env = Vec::new();
    for e in container.env.iter().flatten() {
        if e.name == "HOME" || e.name == "TMPDIR" {
            continue;
        }
        let value = if let Some(v) = &e.value {
            if v.starts_with('/') {
                remap(v).to_string_lossy().into_owned()
            } else {
                v.clone()
            }
        } else if let Some(r) = e
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
        {
            match secret_value(secrets, &r.name, &r.key) {
                Some(v) => String::from_utf8(v.to_vec())?,
                None if r.optional == Some(true) => continue,
                None => anyhow::bail!("Secret {} has no key {}", r.name, r.key),
            }
        } else {
            continue;
        };
        env.push((e.name.clone(), value));
    }
    let zip_cache_dir = match config.storage.zip_cache_dir.as_str() {
        "" => None,
        dir => {
            let dir = remap(dir);
            std::fs::create_dir_all(&dir)?;
            Some(dir)
        }
    };
    Ok(RenderedStorage {
        url: config.storage.url,
        options: config.storage.options,
        env,
        root,
        zip_redirect_seconds: config.storage.zip_redirect_seconds,
        zip_cache_dir,
        zip_cache_max_bytes: config.storage.zip_cache_max_bytes,
    })
}

impl RenderedStorage {
    /// The `[storage]` section of a proxy config file, as the ConfigMap has it with the pod's
    /// paths remapped (the zip cache under `root`).
    pub fn storage_toml(&self) -> String {
        let cache = self
            .zip_cache_dir
            .as_deref()
            .map(|d| (d, self.zip_cache_max_bytes));
        storage_toml(&self.url, &self.options, self.zip_redirect_seconds, cache)
    }

    /// A proxy with the config `head` (everything but `[storage]`) and this storage, in the
    /// pod's environment. The config file lives as long as the returned handle.
    pub fn start_proxy(&self, head: &str) -> (crate::proxy::ProxyProcess, tempfile::NamedTempFile) {
        let f = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(f.path(), format!("{head}\n{}", self.storage_toml()))
            .expect("write the config");
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let path = f.path().to_string_lossy().into_owned();
        (
            crate::proxy::ProxyProcess::start(&["--config", &path], &env),
            f,
        )
    }
}

/// A proxy config's `[storage]` section: the bucket, its options, zip redirects, and the zip
/// cache's folder and room when there is one.
pub fn storage_toml(
    url: &str,
    options: &BTreeMap<String, String>,
    zip_redirect_seconds: u64,
    zip_cache: Option<(&std::path::Path, u64)>,
) -> String {
    let mut text =
        format!("[storage]\nurl = \"{url}\"\nzip_redirect_seconds = {zip_redirect_seconds}\n");
    if let Some((dir, max_bytes)) = zip_cache {
        text.push_str(&format!(
            "zip_cache_dir = {:?}\nzip_cache_max_bytes = {max_bytes}\n",
            dir.to_string_lossy()
        ));
    }
    text.push_str("[storage.options]\n");
    for (k, v) in options {
        text.push_str(&format!("{k} = \"{v}\"\n"));
    }
    text
}

fn secret_value<'a>(secrets: &'a SecretData, name: &str, key: &str) -> Option<&'a [u8]> {
    secrets.get(name)?.get(key).map(Vec::as_slice)
}

/// One Secret with string values, as the tests write them.
pub fn secret(name: &str, data: &[(&str, &str)]) -> SecretData {
    let values = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    BTreeMap::from([(name.to_string(), values)])
}
