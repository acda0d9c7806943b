//! Reading an OCI image layout (what tests/image/layout writes): the index, the manifest, the
//! image configuration and the layer, each checked against its digest.

use super::runtime_config::ImageConfig;
use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One image of a layout with a single manifest.
#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
    /// `org.opencontainers.image.ref.name` of the manifest (the tag).
    pub tag: String,
    /// `sha256:…` of the manifest.
    pub digest: String,
    pub config: ImageConfig,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    /// Gzipped layer blobs, bottom first.
    pub layers: Vec<PathBuf>,
    pub layer_bytes: u64,
}

impl Image {
    /// Opens the layout in `dir`, checking every blob it reads against its digest and size.
    pub fn open(dir: &Path) -> Result<Image> {
        let layout: Value = json_file(&dir.join("oci-layout"))?;
        ensure!(layout["imageLayoutVersion"] == "1.0.0", "not an OCI layout");
        let index: Value = json_file(&dir.join("index.json"))?;
        let [m] = index["manifests"]
            .as_array()
            .context("index has no manifests")?
            .as_slice()
        else {
            bail!("index must hold exactly one manifest");
        };
        let tag = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .context("manifest has no ref.name")?
            .to_string();
        let digest = m["digest"].as_str().context("no digest")?.to_string();
        let manifest: Value = serde_json::from_slice(&blob(dir, m)?)?;
        let config: Value = serde_json::from_slice(&blob(dir, &manifest["config"])?)?;
        let mut layers = Vec::new();
        let mut layer_bytes = 0;
        for l in manifest["layers"].as_array().context("no layers")? {
            blob(dir, l)?;
            layers.push(blob_path(dir, l)?);
            layer_bytes += l["size"].as_u64().unwrap_or(0);
        }
        let c = &config["config"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        };
        let labels = c["Labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        Ok(Image {
            dir: dir.to_path_buf(),
            tag,
            digest,
            config: ImageConfig {
                user: c["User"].as_str().map(String::from),
                env: strings(&c["Env"]),
                entrypoint: strings(&c["Entrypoint"]),
                cmd: strings(&c["Cmd"]),
                working_dir: c["WorkingDir"]
                    .as_str()
                    .filter(|w| !w.is_empty())
                    .map(String::from),
            },
            labels,
            exposed_ports: c["ExposedPorts"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect(),
            layers,
            layer_bytes,
        })
    }

    /// Every non-directory entry of the layers, as absolute paths.
    pub fn files(&self) -> Result<Vec<String>> {
        let mut files = Vec::new();
        for layer in &self.layers {
            let out = Command::new("tar")
                .arg("-tvzf")
                .arg(layer)
                .output()
                .context("running tar")?;
            ensure!(out.status.success(), "tar -t {} failed", layer.display());
            for line in String::from_utf8(out.stdout)?.lines() {
                // `-rwxr-xr-x 0/0 123 1970-01-01 00:00 usr/local/bin/x`
                if line.starts_with('d') {
                    continue;
                }
                let name = line.split_whitespace().nth(5).context("odd tar line")?;
                files.push(format!("/{name}"));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Extracts one file of the image into `to`.
    pub fn extract(&self, path: &str, to: &Path) -> Result<()> {
        let member = path.trim_start_matches('/');
        for layer in self.layers.iter().rev() {
            let out = Command::new("tar")
                .arg("-xzOf")
                .arg(layer)
                .arg(member)
                .output()?;
            if out.status.success() {
                std::fs::write(to, out.stdout)?;
                return Ok(());
            }
        }
        bail!("{path} is in no layer of {}", self.dir.display())
    }
}

fn json_file(p: &Path) -> Result<Value> {
    serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
        .with_context(|| format!("parsing {}", p.display()))
}

fn blob_path(dir: &Path, descriptor: &Value) -> Result<PathBuf> {
    let digest = descriptor["digest"]
        .as_str()
        .context("descriptor has no digest")?;
    let hex = digest
        .strip_prefix("sha256:")
        .context("digest is not sha256")?;
    Ok(dir.join("blobs/sha256").join(hex))
}

/// The blob a descriptor names, after checking its digest and size.
fn blob(dir: &Path, descriptor: &Value) -> Result<Vec<u8>> {
    let path = blob_path(dir, descriptor)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let actual = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
    ensure!(
        descriptor["digest"] == actual.as_str(),
        "{} has digest {actual}",
        path.display()
    );
    ensure!(
        descriptor["size"].as_u64() == Some(bytes.len() as u64),
        "{} has the wrong size",
        path.display()
    );
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an ELF file is statically linked: it has no program interpreter (PT_INTERP).
pub fn is_static_elf(bytes: &[u8]) -> Result<bool> {
    ensure!(
        bytes.len() > 64 && &bytes[..4] == b"\x7fELF",
        "not an ELF file"
    );
    ensure!(
        bytes[4] == 2 && bytes[5] == 1,
        "not a little-endian 64-bit ELF"
    );
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[32..40].try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        ensure!(o + 4 <= bytes.len(), "truncated program headers");
        if u32::from_le_bytes(bytes[o..o + 4].try_into()?) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_is_dynamic() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me).unwrap());
        assert!(is_static_elf(b"#!/bin/sh\n").is_err());
    }
}
