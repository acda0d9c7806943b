//! Mercurial for the delegation tests: `hg` from `tests/peers/hg-install` (or the directory in
//! `$ATHENS_HG_DIR`), repositories made with it, and `hg serve` over HTTPS on a loopback
//! address, stopped when dropped.

use anyhow::{Context, Result, bail, ensure};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The directory holding `hg`.
pub fn hg_dir() -> Result<PathBuf> {
    crate::peer::installed("ATHENS_HG_DIR", "hg-install")
}

/// `PATH` with `hg`'s directory first.
pub fn path_with_hg(dir: &Path) -> Result<OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::join_paths(
        std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)),
    )?)
}

/// Runs `hg` in `repo` as a fixed user, with no user configuration; `date` is the commit
/// date when committing or tagging.
pub fn hg(hg_dir: &Path, repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(hg_dir.join("hg"))
        .args(args)
        .current_dir(repo)
        .env("HGRCPATH", "")
        .env("HGUSER", "dev <dev@athens.test>")
        .env("HGPLAIN", "1")
        .output()
        .context("running hg")?;
    ensure!(
        out.status.success(),
        "hg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running `hg serve`; killed when dropped.
pub struct HgServe {
    /// `https://<ip>:<port>`.
    pub url: String,
    child: Child,
}

impl HgServe {
    /// Serves `repo` at `https://<ip>:<port>/<prefix>` with the certificate and key in `pem`,
    /// logging requests and errors to `<repo>.log`.
    pub fn start(hg_dir: &Path, repo: &Path, ip: &str, prefix: &str, pem: &Path) -> Result<Self> {
        let log = repo.with_extension("log");
        let mut child = Command::new(hg_dir.join("hg"))
            .args(["serve", "-R"])
            .arg(repo)
            .arg("--accesslog")
            .arg(&log)
            .arg("--errorlog")
            .arg(&log)
            .args(["-a", ip, "-p", "0", "--prefix", prefix, "--certificate"])
            .arg(pem)
            .env("HGRCPATH", "")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running hg serve")?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        // "listening at http://ip:port/prefix/ (bound to ip:port)", with port 0 resolved.
        let port = line
            .rsplit_once(':')
            .map(|(_, p)| p.trim().trim_end_matches(')').to_string())
            .filter(|p| p.parse::<u16>().is_ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("hg serve said {line:?}");
        };
        Ok(Self {
            url: format!("https://{ip}:{port}"),
            child,
        })
    }
}

impl Drop for HgServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
