//! Waiting on the control plane, and finding the workspace's binaries.

use anyhow::{Context as _, Result, bail};
use athens_operator::crd::{AthensProxy, READY};
use kube::Api;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A binary of this workspace build (tests/run builds them all first). Test executables live in
/// target/<profile>/deps; the binaries in target/<profile>.
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target dir")?;
    let bin = dir.join(name);
    if !bin.exists() {
        bail!(
            "{} does not exist: run `cargo build -p {name}` first (tests/run does)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Runs a setup script that builds or installs something (cached) and prints its path.
pub fn script_output(script: &Path) -> Result<PathBuf> {
    let out = std::process::Command::new(script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    Ok(String::from_utf8(out.stdout)?.trim().into())
}

/// Polls `check` every 250 ms until it returns true, failing after `timeout` with the last error.
pub async fn poll<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the proxy is Ready with a URL for its current generation; returns it.
pub async fn wait_ready(
    timeout: Duration,
    api: &Api<AthensProxy>,
    name: &str,
) -> Result<AthensProxy> {
    let ready = poll(timeout, &format!("AthensProxy {name} Ready"), || async {
        let p = api.get(name).await?;
        Ok(p.status.as_ref().is_some_and(|s| {
            s.is_true(READY) && s.url.is_some() && s.observed_generation == p.metadata.generation
        }))
    })
    .await;
    if let Err(e) = ready {
        let status = api.get(name).await.ok().and_then(|p| p.status);
        bail!("{e:#}; last status: {status:?}");
    }
    Ok(api.get(name).await?)
}
