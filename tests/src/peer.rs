//! What the storage peers (MinIO, Azurite, the GCS emulator, FerretDB) share: the binary from
//! its installer under `tests/peers/`, a free port, and a child process with a log file in a
//! temporary folder, stopped (by its own handle) and removed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// `$<env_var>`, or whatever `tests/peers/<script>` installs (cached after the first time).
pub fn installed(env_var: &str, script: &str) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os(env_var) {
        return Ok(bin.into());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(script);
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    Ok(String::from_utf8(out.stdout)?.trim().into())
}

/// A loopback port nobody listens on right now (the kernel picks it), for peers that cannot
/// listen on port 0 themselves.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running peer process.
pub struct Peer {
    name: &'static str,
    child: Child,
    dir: tempfile::TempDir,
}

impl Peer {
    /// Runs the command `build` makes from the peer's temporary folder, with stdout and stderr
    /// into `<folder>/peer.log`.
    pub fn spawn(name: &'static str, build: impl FnOnce(&Path) -> Command) -> Result<Peer> {
        let dir = tempfile::tempdir()?;
        let log = std::fs::File::create(dir.path().join("peer.log"))?;
        let mut cmd = build(dir.path());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("running {name} ({:?})", cmd.get_program()))?;
        Ok(Peer { name, child, dir })
    }

    /// The peer's temporary folder (data lives under it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Fails with the log's tail if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}): {}", self.name, self.log_tail());
        }
        Ok(())
    }

    /// Waits for a log line containing `marker` and returns the rest of that line after it
    /// (peers that listen on port 0 say there which port they got).
    pub async fn wait_for_log(&mut self, marker: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(self.dir.path().join("peer.log")).unwrap_or_default();
            if let Some(line) = log.lines().find_map(|l| l.split_once(marker)) {
                return Ok(line.1.trim().to_string());
            }
            self.check_running()?;
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} did not log {marker:?} within {timeout:?}: {}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last 20 lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("peer.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Our own child, by handle; the folder goes with `dir`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
